/** API keys and webhooks of a domain (/api/domains/{name}/api-keys, …/webhooks; owner and admin). */
import { api, seg, type Id } from "./client";

export type ApiKey = {
  id: Id;
  name: string;
  /** `dm_live_` and the key's public characters: enough to recognise it, useless to use it. */
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
};

/** The answer to creating a key: the only time the whole key is shown. */
export type CreatedApiKey = ApiKey & { key: string };

export type Webhook = {
  id: Id;
  url: string;
  events: string[];
  createdAt: string;
};

/** The answer to creating a webhook: the only time its signing secret is shown. */
export type CreatedWebhook = Webhook & { secret: string };

export type WebhookTestResult = {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
};

export type WebhookAttempt = {
  id: Id;
  event: string;
  status: string;
  statusCode: number | null;
  attempts: number;
  createdAt: string;
  lastAttemptAt: string | null;
  error: string | null;
};

/** The events a webhook can subscribe to (core/webhooks.py WEBHOOK_EVENTS), in that order. */
export const WEBHOOK_EVENTS: { name: string; description: string }[] = [
  { name: "email.received", description: "Mail arrived in one of the domain's mailboxes" },
  { name: "email.delivered", description: "A recipient's server accepted a message" },
  { name: "email.deferred", description: "A delivery failed for now and will be retried" },
  { name: "email.bounced", description: "A delivery failed for good" },
  { name: "email.complained", description: "A recipient reported a message as spam" },
  { name: "email.opened", description: "A recipient opened a tracked message" },
  { name: "email.clicked", description: "A recipient clicked a tracked link" },
  { name: "email.canceled", description: "A scheduled recipient was withdrawn" },
];

const keys = (domain: string) => `/api/domains/${seg(domain)}/api-keys`;
const hooks = (domain: string) => `/api/domains/${seg(domain)}/webhooks`;

export const developerApi = {
  apiKeys: (domain: string) => api.get<ApiKey[]>(keys(domain)),
  createApiKey: (domain: string, name: string) => api.post<CreatedApiKey>(keys(domain), { name }),
  revokeApiKey: (domain: string, id: Id) => api.delete(`${keys(domain)}/${seg(String(id))}`),

  webhooks: (domain: string) => api.get<Webhook[]>(hooks(domain)),
  createWebhook: (domain: string, url: string, events: string[]) =>
    api.post<CreatedWebhook>(hooks(domain), { url, events }),
  deleteWebhook: (domain: string, id: Id) => api.delete(`${hooks(domain)}/${seg(String(id))}`),
  testWebhook: (domain: string, id: Id) =>
    api.post<WebhookTestResult>(`${hooks(domain)}/${seg(String(id))}/test`),
  webhookAttempts: (domain: string, id: Id) =>
    api.get<WebhookAttempt[]>(`${hooks(domain)}/${seg(String(id))}/attempts`),
  rotateWebhookSecret: (domain: string, id: Id) =>
    api.post<{ secret: string }>(`${hooks(domain)}/${seg(String(id))}/rotate-secret`),
};

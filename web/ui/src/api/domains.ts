/** Domains (/api/domains; owner and admin only). */
import { api, seg } from "./client";

export type DomainSummary = {
  name: string;
  status: string;
  verified: boolean;
  createdAt: string;
  mailboxCount: number;
  lastCheckedAt: string | null;
};

export const domainsApi = {
  list: () => api.get<DomainSummary[]>("/api/domains"),
};

export type RecordStatus = "ok" | "missing" | "mismatch" | "error" | "unchecked";

/** One DNS record the domain should publish, with what the last check found. */
export type DnsRecord = {
  type: string;
  /** Fully qualified, without the final dot. */
  host: string;
  /** The part a registrar's DNS panel wants: "@" for the apex, "_dmarc", "mail"… */
  relativeHost: string;
  value: string;
  priority: number | null;
  purpose: string;
  required: boolean;
  status: RecordStatus;
  found: string[];
  fix: string | null;
  checkedAt: string | null;
};

export type DomainDetail = {
  name: string;
  status: string;
  verified: boolean;
  createdAt: string;
  lastCheckedAt: string | null;
  /** What deleting the domain deletes. */
  contains: { mailboxes: number; messages: number; apiKeys: number; webhooks: number };
  records: DnsRecord[];
};

export const domainApi = {
  add: (name: string) => api.post<DomainDetail>("/api/domains", { name }),
  get: (name: string) => api.get<DomainDetail>(`/api/domains/${seg(name)}`),
  verify: (name: string) => api.post<DomainDetail>(`/api/domains/${seg(name)}/verify`),
  rotateDkim: (name: string) => api.post<DomainDetail>(`/api/domains/${seg(name)}/dkim/rotate`),
  remove: (name: string) => api.delete(`/api/domains/${seg(name)}`, { confirm: name }),
  /** The BIND zone fragment, downloaded by the browser through this link. */
  zoneUrl: (name: string) => `/api/domains/${seg(name)}/zone`,
};

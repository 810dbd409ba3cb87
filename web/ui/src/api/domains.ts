/** Domains (/api/domains; owner and admin only). */
import { api, seg, type Id } from "./client";

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

export type ApiKeySummary = {
  id: Id;
  name: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
};

export const apiKeysApi = {
  list: (domain: string) => api.get<ApiKeySummary[]>(`/api/domains/${seg(domain)}/api-keys`),
};

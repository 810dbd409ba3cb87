/** Domains (/api/domains; owner and admin only). */
import { api } from "./client";

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

/** Domains (/api/domains; owner and admin only). */
import { api, seg } from "./client";

export type DomainSummary = {
  name: string;
  status: string;
  verified: boolean;
  createdAt: string;
  mailboxCount: number;
  lastCheckedAt: string | null;
  /** The domain this alias domain delivers as; null for a domain of its own. */
  aliasOf: string | null;
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
  contains: { mailboxes: number; messages: number; apiKeys: number; webhooks: number; queued: number };
  records: DnsRecord[];
  /** The domain this alias domain delivers as; null for a domain of its own. */
  aliasOf: string | null;
  /** The alias domains delivering as this one. */
  aliasDomains: string[];
};

export const domainApi = {
  add: (name: string, aliasOf?: string | null) =>
    api.post<DomainDetail>("/api/domains", aliasOf ? { name, aliasOf } : { name }),
  get: (name: string) => api.get<DomainDetail>(`/api/domains/${seg(name)}`),
  verify: (name: string) => api.post<DomainDetail>(`/api/domains/${seg(name)}/verify`),
  rotateDkim: (name: string) => api.post<DomainDetail>(`/api/domains/${seg(name)}/dkim/rotate`),
  remove: (name: string) => api.delete(`/api/domains/${seg(name)}`, { confirm: name }),
  /** The BIND zone fragment, downloaded by the browser through this link. */
  zoneUrl: (name: string) => `/api/domains/${seg(name)}/zone`,
};

/** Mail from one source IP claiming to be the domain, as receivers' DMARC reports counted it. */
export type ReportSource = {
  sourceIp: string;
  messages: number;
  dmarcPass: number;
  spfPass: number;
  spfAligned: number;
  dkimPass: number;
  dkimAligned: number;
  quarantined: number;
  rejected: number;
  reporters: number;
};

export type ReceivedReport = {
  kind: "dmarc" | "tls";
  status: "parsed" | "failed";
  organization: string;
  reportId: string | null;
  begin: string | null;
  end: string | null;
  policy: Record<string, string>;
  messages: number;
  /** Why a failed report could not be read. */
  reason: string | null;
  receivedAt: string;
};

/** GET /api/domains/{name}/reports: what the DMARC and TLS reports sent to the domain say. */
export type ReportOverview = {
  domain: string;
  reports: number;
  failedReports: number;
  totals: ReportSource;
  sources: ReportSource[];
  tls: {
    successfulSessions: number;
    failedSessions: number;
    failures: { resultType: string; receivingMx: string; sessions: number }[];
  };
  recent: ReceivedReport[];
};

export const reportsApi = {
  get: (name: string) => api.get<ReportOverview>(`/api/domains/${seg(name)}/reports`),
};

/** An address delivering to one or more mailboxes of the account. */
export type Alias = {
  address: string;
  localPart: string;
  targets: string[];
  createdAt: string;
};

export const aliasesApi = {
  list: (domain: string) => api.get<Alias[]>(`/api/domains/${seg(domain)}/aliases`),
  add: (domain: string, localPart: string, targets: string[]) =>
    api.post<Alias>(`/api/domains/${seg(domain)}/aliases`, { localPart, targets }),
  remove: (domain: string, localPart: string) =>
    api.delete(`/api/domains/${seg(domain)}/aliases/${seg(localPart)}`),
  catchAll: (domain: string) => api.get<{ mailbox: string | null }>(`/api/domains/${seg(domain)}/catch-all`),
  setCatchAll: (domain: string, mailbox: string | null) =>
    api.put<{ mailbox: string | null }>(`/api/domains/${seg(domain)}/catch-all`, { mailbox }),
};

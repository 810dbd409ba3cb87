/** Mailboxes (/api/mailboxes): a member sees only the mailboxes assigned to them. */
import { api, seg, type Id } from "./client";

export type Mailbox = {
  id: Id;
  address: string;
  localPart: string;
  domain: string;
  displayName: string;
  signature: string;
  signatureFormat: "html" | "text";
  hasPassword: boolean;
  assignedUserIds: Id[];
  createdAt: string;
};

export type ConnectionEndpoint = { host: string; port: number; security: string };

export type Connection = {
  username: string;
  imap: ConnectionEndpoint;
  imaps: ConnectionEndpoint;
  submission: ConnectionEndpoint;
  submissions: ConnectionEndpoint;
  autoconfigUrl: string;
  mobileconfigUrl: string;
};

export const mailboxesApi = {
  list: (domain?: string) =>
    api.get<Mailbox[]>(domain ? `/api/mailboxes?domain=${seg(domain)}` : "/api/mailboxes"),
  get: (address: string) => api.get<Mailbox>(`/api/mailboxes/${seg(address)}`),
  connection: (address: string) => api.get<Connection>(`/api/mailboxes/${seg(address)}/connection`),
};

export type SignatureFormat = Mailbox["signatureFormat"];

export type NewMailbox = {
  domain: string;
  localPart: string;
  displayName?: string;
  password?: string;
};

export type MailboxChanges = {
  displayName?: string;
  signature?: string;
  signatureFormat?: SignatureFormat;
};

export const mailboxApi = {
  create: (body: NewMailbox) => api.post<Mailbox>("/api/mailboxes", body),
  update: (address: string, changes: MailboxChanges) => api.patch<Mailbox>(`/api/mailboxes/${seg(address)}`, changes),
  setPassword: (address: string, password: string) =>
    api.put<void>(`/api/mailboxes/${seg(address)}/password`, { password }),
  generatePassword: (address: string) =>
    api.post<{ password: string }>(`/api/mailboxes/${seg(address)}/password/generate`),
  remove: (address: string) => api.delete(`/api/mailboxes/${seg(address)}`, { confirm: address }),
};

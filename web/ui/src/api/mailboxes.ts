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

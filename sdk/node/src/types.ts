/** Request and response shapes of the Mailmark /v1 REST API. */

export interface Mailbox {
  _id: string;
  /** The local part, e.g. `hello`. */
  address: string;
  /** The full address, e.g. `hello@yourdomain.com`. */
  fullAddress: string;
  displayName: string;
}

export interface CreateMailboxParams {
  /** The local part only (`hello`, not `hello@yourdomain.com`). */
  address: string;
  displayName?: string;
}

export interface DeletedResponse {
  deleted: true;
}

/** Mailboxes of a sender group: addresses (a list or a comma-separated string) or `"all"`. */
export type SenderMailboxes = string[] | string;

export interface SenderGroup {
  _id: string;
  name: string;
  /** Full addresses of the sender mailboxes. */
  mailboxes: string[];
  /** The recipient list. */
  emails: string[];
}

export interface CreateSenderGroupParams {
  name: string;
  mailboxes?: SenderMailboxes;
  emails?: string[];
}

export interface UpdateSenderGroupParams {
  name?: string;
  addEmails?: string[];
  removeEmails?: string[];
  emails?: string[];
  mailboxes?: SenderMailboxes;
}

export type SendType = "transactional" | "campaign";

interface SendFields {
  /** Full address of an existing mailbox on the API key's domain. */
  from: string;
  /** One address or a list. */
  to: string | string[];
  subject: string;
  /** HTML body (`html` or `text` is required). */
  html?: string;
  /** Plain-text body (`html` or `text` is required). */
  text?: string;
  /** When to send: a future time, as a Date or unix milliseconds. */
  scheduledAt?: Date | number;
  /** Merge-tag values per recipient address: `{ "ann@example.com": { firstName: "Ann" } }`. */
  variables?: Record<string, Record<string, string>>;
  /** Sent as the `Idempotency-Key` header: a retried send with the same key is not sent twice. */
  idempotencyKey?: string;
}

export interface TransactionalSendParams extends SendFields {
  type?: "transactional";
}

export interface CampaignSendParams extends SendFields {
  type: "campaign";
}

export type SendParams = TransactionalSendParams | CampaignSendParams;

export interface TransactionalSendResult {
  messageId: string;
  status: "queued";
}

export interface CampaignSendResult {
  messageIds: string[];
  batchId: string;
  status: "queued";
}

export type SendResult = TransactionalSendResult | CampaignSendResult;

export interface Email {
  _id: string;
  from: string;
  to: string[];
  subject: string;
  status: string;
  batchId: string | null;
  createdAt: string;
  [field: string]: unknown;
}

export interface ListEmailsParams {
  status?: string;
  from?: string;
  batchId?: string;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
  limit?: number;
}

export interface EmailPage {
  data: Email[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
}

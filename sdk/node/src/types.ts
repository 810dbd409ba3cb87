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

/** An address that delivers to one or more mailboxes of the domain. */
export interface Alias {
  _id: string;
  /** The local part, e.g. `team`. */
  address: string;
  /** The full address, e.g. `team@yourdomain.com`. */
  fullAddress: string;
  /** Full addresses of the mailboxes it delivers to. */
  targets: string[];
  createdAt: string;
}

export interface CreateAliasParams {
  /** The local part only (`team`, not `team@yourdomain.com`). */
  address: string;
  /** Mailboxes of the domain, by local part or full address. */
  targets: string[];
}

/** Only the fields given change. */
export interface UpdateMailboxParams {
  displayName?: string;
  signature?: string;
  /** `text` (default) or `html` (sanitised by the server). */
  signatureFormat?: "text" | "html";
  /** The password IMAP and SMTP submission log in with. */
  password?: string;
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

/** A file sent with an email: its bytes as `content`, or a `path` to read them from. */
export interface Attachment {
  /** The name the recipient sees; defaults to the last segment of `path`. */
  filename?: string;
  /** The bytes (a Node `Buffer` is a `Uint8Array`). */
  content?: Uint8Array;
  /** A file to read instead (Node, Bun and Deno). */
  path?: string;
  /** `type/subtype`; guessed by the server from the filename when not given. */
  contentType?: string;
  /** Makes it an inline image, shown by the HTML as `<img src="cid:...">`. */
  contentId?: string;
}

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
  cc?: string | string[];
  bcc?: string | string[];
  replyTo?: string;
  /** Extra message headers (no CR, LF or NUL in names or values). */
  headers?: Record<string, string>;
  /** Rotate the From address over this sender group's mailboxes (campaign sends). */
  senderGroupId?: string;
  /** Files to attach (at most 20), inline images among them when they have a `contentId`. */
  attachments?: Attachment[];
  /** Up to 10 labels (letters, digits, `_.:-`) to find the email by: `listEmails({ tag })`. */
  tags?: string[];
  /** Sent as the `Idempotency-Key` header: a retried send with the same key is not sent twice. */
  idempotencyKey?: string;
}

export interface TransactionalSendParams extends SendFields {
  type?: "transactional";
}

export interface CampaignSendParams extends SendFields {
  type: "campaign";
  /** Track opens with a pixel (default true). */
  trackOpens?: boolean;
  /** Rewrite the HTML's links to signed redirects that record clicks (default true). */
  trackClicks?: boolean;
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
  /** Recipients left out: suppressed (bounce, complaint, manual) or unsubscribed. */
  skipped: { email: string; reason: string }[];
}

export type SendResult = TransactionalSendResult | CampaignSendResult;

export interface Email {
  _id: string;
  /** The Message-ID header. */
  messageId: string | null;
  from: string;
  to: string[];
  subject: string | null;
  /** Where its least advanced recipient stands: queued, deferred, bounced, complained, canceled, delivered. */
  status: string;
  batchId: string | null;
  /** How it was sent: api, campaign, submission, ... */
  source: string;
  createdAt: string | null;
  scheduledAt: string | null;
  /** The tags it was sent with. */
  tags: string[];
}

export interface EmailRecipient {
  address: string;
  status: string;
  attempts: number;
  updatedAt: string;
  lastCode: number | null;
  lastStatus: string | null;
  lastReply: string | null;
}

export interface EmailEvent {
  type: string;
  createdAt: string;
  data: Record<string, unknown>;
}

/** One sent email with each recipient's delivery and the event timeline, oldest first. */
export interface EmailDetail extends Email {
  recipients: EmailRecipient[];
  events: EmailEvent[];
}

export interface ListEmailsParams {
  status?: string;
  from?: string;
  batchId?: string;
  /** Only emails sent with this tag. */
  tag?: string;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
  limit?: number;
}

export interface EmailPage {
  data: Email[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
}

export type WebhookEvent =
  | "email.received"
  | "email.delivered"
  | "email.deferred"
  | "email.bounced"
  | "email.complained"
  | "email.opened"
  | "email.clicked"
  | "email.canceled";

export interface WebhookDelivery {
  eventId: string;
  event: string;
  status: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Webhook {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
  /** Recent deliveries (listings only). */
  deliveries?: WebhookDelivery[];
  /** The signing secret: in the answer to createWebhook only, never again. */
  secret?: string;
}

export interface CreateWebhookParams {
  /** An https URL on a public address. */
  url: string;
  /** The events to deliver (default: all). */
  events?: WebhookEvent[];
}

export interface Suppression {
  address: string;
  /** Why mail to it stopped: `bounce`, `complaint` or `manual`. */
  reason: string;
  detail: string;
  createdAt: string;
}

export interface ListSuppressionsParams {
  cursor?: string;
  limit?: number;
}

export interface SuppressionPage {
  data: Suppression[];
  nextCursor: string | null;
}

/** A recipient a cancel left alone: already attempted, or being attempted right now. */
export interface NotCanceled {
  address: string;
  status: string;
}

/** What cancelling an email did. */
export interface CancelResult {
  _id: string;
  messageId: string | null;
  /** The email's status afterwards (`canceled` unless some recipients were already tried). */
  status: string;
  /** The recipients withdrawn; each gets an `email.canceled` event. */
  canceled: string[];
  notCanceled: NotCanceled[];
}

// --- contacts and lists ----------------------------------------------------------------------

export type ContactStatus = "subscribed" | "unsubscribed" | "bounced" | "complained";
export type FieldValue = string | number | boolean | null;

export interface Contact {
  _id: string;
  email: string;
  firstName: string;
  lastName: string;
  company: string;
  fields: Record<string, FieldValue>;
  tags: string[];
  status: ContactStatus;
  /** On the account's suppression list: never mailed, whatever the status. */
  suppressed: boolean;
  createdAt: string;
  updatedAt: string;
  /** The lists (not segments) the contact is on. */
  listIds: string[];
}

export interface ContactPage {
  data: Contact[];
  nextCursor: string | null;
}

/** Filters of the contact listing and export. */
export interface ContactFilterParams {
  status?: ContactStatus;
  tag?: string;
  /** `name=value` of a custom field. */
  field?: string;
  suppressed?: boolean;
  /** A list's members, or whoever a segment matches. */
  listId?: string;
}

export interface ListContactsParams extends ContactFilterParams {
  cursor?: string;
  limit?: number;
}

export interface CreateContactParams {
  email: string;
  firstName?: string;
  lastName?: string;
  company?: string;
  fields?: Record<string, FieldValue>;
  tags?: string[];
  status?: ContactStatus;
}

/** All optional; `fields` and `tags` replace the old ones. */
export type UpdateContactParams = Partial<CreateContactParams>;

export interface ImportContactsParams {
  /** Column header → "email", "first_name", "last_name", "company", "tags", "status",
   * "field:<name>" or "" (left out). Unmapped headers are guessed. */
  mapping?: Record<string, string>;
  onDuplicate?: "update" | "skip";
  /** A list the imported contacts are added to. */
  listId?: string;
}

export interface ContactImport {
  _id: string;
  status: "running" | "done" | "failed";
  onDuplicate: "update" | "skip";
  mapping: Record<string, string>;
  listId: string | null;
  totalBytes: number;
  bytesRead: number;
  rowsDone: number;
  created: number;
  updated: number;
  skipped: number;
  failed: number;
  peakRowsHeld: number;
  /** The first 1000 row errors; rows as a spreadsheet numbers them (the header is 1). */
  errors: { row: number; reason: string }[];
  failure: string;
  createdAt: string;
  updatedAt: string;
}

export interface ImportPreview {
  columns: string[];
  mapping: Record<string, string>;
  rows: { row: number; contact: Contact | null; error: string | null }[];
}

/** A segment's saved filter. */
export interface SegmentFilter {
  status?: ContactStatus;
  tag?: string;
  field?: { name: string; value: string };
  suppressed?: boolean;
}

export interface ContactList {
  _id: string;
  name: string;
  /** Set for a segment (its members are whoever matches); null for a list. */
  filter: SegmentFilter | null;
  size: number;
  createdAt: string;
  updatedAt: string;
}

export interface CreateListParams {
  name: string;
  filter?: SegmentFilter;
}

export type UpdateListParams = Partial<CreateListParams>;

export interface ListMembersParams {
  contactIds?: string[];
  emails?: string[];
}

// --- campaigns ---------------------------------------------------------------------------------

export type CampaignStatus = "draft" | "running" | "paused" | "completed" | "canceled";

export type CampaignRecipientState =
  | "active"
  | "completed"
  | "replied"
  | "bounced"
  | "complained"
  | "unsubscribed"
  | "suppressed"
  | "failed"
  | "canceled";

/** One stage: stage 1 needs a subject; later stages wait `delayDays` after the previous one and
 * go as replies in its thread unless `newThread` is true. Merge tags: `{{firstName|fallback}}`. */
export interface CampaignStage {
  subject?: string;
  html: string;
  delayDays?: number;
  newThread?: boolean;
  /** A/B: other subjects, taking turns with `subject`. */
  subjectVariants?: string[];
}

export interface CampaignAudience {
  listIds?: string[];
  senderGroupRecipients?: boolean;
}

export interface CampaignSchedule {
  /** An IANA time zone, e.g. `Europe/Paris` (default UTC). */
  timezone?: string;
  /** A local date and time in `timezone`, e.g. `2030-01-07T09:00`; null: at launch. */
  startAt?: string | null;
  /** ISO weekdays, 1 (Monday) to 7 (Sunday). */
  days?: number[];
  /** [from, to] whole hours. */
  hours?: [number, number];
  /** Emails per mailbox per day. */
  dailyCap?: number | null;
  spacingSeconds?: number;
}

export interface Campaign {
  _id: string;
  name: string;
  status: CampaignStatus;
  from: string | null;
  senderGroupId: string | null;
  audience: CampaignAudience;
  stages: CampaignStage[];
  schedule: CampaignSchedule;
  /** Why a paused campaign is paused: by its owner, a guardrail, or the plan's quota. */
  pauseReason: string;
  batchId: string;
  createdAt: string;
  updatedAt: string;
  launchedAt: string | null;
  finishedAt: string | null;
}

export interface CampaignPage {
  data: Campaign[];
  nextCursor: string | null;
}

export interface CreateCampaignParams {
  name: string;
  from?: string;
  senderGroupId?: string;
  audience?: CampaignAudience;
  stages: CampaignStage[];
  schedule?: CampaignSchedule;
}

export type UpdateCampaignParams = Partial<CreateCampaignParams>;

export interface CampaignCounts {
  sent: number;
  delivered: number;
  bounced: number;
  complained: number;
  replied: number;
  opened: number;
  clicked: number;
  unsubscribed: number;
  /** Opened or clicked by a person: privacy proxies' opens and link scanners' clicks left out. */
  humanOpened: number;
  humanClicked: number;
}

export interface CampaignStats {
  campaignId: string;
  status: CampaignStatus;
  pauseReason: string;
  recipients: number;
  states: Record<CampaignRecipientState, number>;
  totals: CampaignCounts;
  stages: {
    stage: number;
    counts: CampaignCounts;
    variants: { variant: number; subject: string; counts: CampaignCounts }[];
  }[];
}

export interface CampaignRecipient {
  _id: string;
  email: string;
  contactId: string | null;
  state: CampaignRecipientState;
  stagesSent: number;
  nextStage: number;
  nextSendAt: string;
  stopReason: string;
  autoReplies: number;
  updatedAt: string;
}

export interface CampaignRecipientPage {
  data: CampaignRecipient[];
  nextCursor: string | null;
}

export interface ListCampaignRecipientsParams {
  state?: CampaignRecipientState;
  cursor?: string;
  limit?: number;
}

export interface CampaignPreview {
  stage: number;
  email: string;
  subject: string;
  html: string;
  text: string;
  headers: Record<string, string>;
}

export interface PreviewCampaignParams {
  stage?: number;
  contactId?: string;
}

export interface TestSendCampaignParams extends PreviewCampaignParams {
  to: string;
}

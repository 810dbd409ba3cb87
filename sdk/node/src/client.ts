import { APIConnectionError, errorFromResponse } from "./errors.js";
import type {
  Alias,
  CreateAliasParams,
  Attachment,
  CampaignSendParams,
  Campaign,
  CampaignPage,
  CampaignPreview,
  CampaignRecipientPage,
  CampaignStats,
  CreateCampaignParams,
  ListCampaignRecipientsParams,
  PreviewCampaignParams,
  TestSendCampaignParams,
  UpdateCampaignParams,
  CancelResult,
  CampaignSendResult,
  Contact,
  ContactImport,
  ContactList,
  ContactPage,
  ContactFilterParams,
  CreateContactParams,
  CreateListParams,
  ImportContactsParams,
  ImportPreview,
  ListContactsParams,
  ListMembersParams,
  UpdateContactParams,
  UpdateListParams,
  CreateMailboxParams,
  UpdateMailboxParams,
  CreateSenderGroupParams,
  CreateWebhookParams,
  DeletedResponse,
  Email,
  EmailDetail,
  EmailPage,
  ListEmailsParams,
  ListSuppressionsParams,
  Mailbox,
  SendParams,
  SendResult,
  SenderGroup,
  SuppressionPage,
  TransactionalSendParams,
  TransactionalSendResult,
  UpdateSenderGroupParams,
  Webhook,
} from "./types.js";

export const DEFAULT_BASE_URL = "https://api.mailmark.dev";
export const VERSION = "0.1.0";

export interface MailmarkOptions {
  /** Where the API is served; for a self-hosted Mailmark, e.g. `http://127.0.0.1:8025`. */
  baseUrl?: string;
  /** Abort a request after this many milliseconds (default 30000). */
  timeoutMs?: number;
  /** A fetch implementation (default: the global `fetch` of Node 18+, Bun and browsers). */
  fetch?: typeof fetch;
}

type Query = Record<string, string | number | boolean | undefined>;

interface RequestOptions {
  body?: unknown;
  /** A raw body (a CSV upload) sent as is, instead of JSON. */
  raw?: string | Uint8Array;
  query?: Query;
  headers?: Record<string, string>;
}

/** A client for one API key (one domain). */
export class Mailmark {
  readonly baseUrl: string;
  readonly #apiKey: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(apiKey: string, options: MailmarkOptions = {}) {
    if (typeof apiKey !== "string" || apiKey.trim() === "") {
      throw new TypeError("Mailmark: an API key (dm_live_...) is required");
    }
    this.#apiKey = apiKey.trim();
    this.baseUrl = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") {
      throw new TypeError("Mailmark: no fetch implementation (Node 18+ or Bun provide one)");
    }
    this.#fetch = fetchImpl;
  }

  // --- sending ---------------------------------------------------------------------------------

  /** Send (or schedule) an email: one message to every recipient, or one per recipient. */
  send(params: CampaignSendParams): Promise<CampaignSendResult>;
  send(params: TransactionalSendParams): Promise<TransactionalSendResult>;
  send(params: SendParams): Promise<SendResult>;
  async send(params: SendParams): Promise<SendResult> {
    const { idempotencyKey, scheduledAt, to, cc, bcc, attachments, ...fields } = params;
    const body: Record<string, unknown> = { ...fields, to: list(to) };
    if (attachments !== undefined) body["attachments"] = await Promise.all(attachments.map(encoded));
    if (cc !== undefined) body["cc"] = list(cc);
    if (bcc !== undefined) body["bcc"] = list(bcc);
    if (scheduledAt !== undefined) {
      body["scheduledAt"] = unixMs(scheduledAt);
    }
    const headers: Record<string, string> =
      idempotencyKey === undefined ? {} : { "Idempotency-Key": idempotencyKey };
    return this.#request<SendResult>("POST", "/v1/send", { body, headers });
  }

  // --- mailboxes -------------------------------------------------------------------------------

  /** Every mailbox on the API key's domain. */
  listMailboxes(): Promise<Mailbox[]> {
    return this.#request<Mailbox[]>("GET", "/v1/mailboxes");
  }

  /** Create a mailbox; `address` is the local part. A ConflictError if it exists. */
  createMailbox(params: CreateMailboxParams): Promise<Mailbox> {
    return this.#request<Mailbox>("POST", "/v1/mailboxes", { body: params });
  }

  /** Change a mailbox's display name, signature or password, by local part or full address. */
  updateMailbox(address: string, params: UpdateMailboxParams): Promise<Mailbox> {
    return this.#request<Mailbox>("PATCH", `/v1/mailboxes/${segment(address)}`, { body: params });
  }

  /** Delete a mailbox and all its emails, by local part or full address. Irreversible. */
  deleteMailbox(address: string): Promise<DeletedResponse> {
    return this.#request<DeletedResponse>("DELETE", `/v1/mailboxes/${segment(address)}`);
  }

  // --- aliases ---------------------------------------------------------------------------------

  /** Every alias on the API key's domain, with the mailboxes it delivers to. */
  listAliases(): Promise<Alias[]> {
    return this.#request<Alias[]>("GET", "/v1/aliases");
  }

  /** Create an alias; a ConflictError if a mailbox or alias has that address. */
  createAlias(params: CreateAliasParams): Promise<Alias> {
    return this.#request<Alias>("POST", "/v1/aliases", { body: params });
  }

  /** Delete an alias, by local part or full address; its mailboxes keep their mail. */
  deleteAlias(address: string): Promise<DeletedResponse> {
    return this.#request<DeletedResponse>("DELETE", `/v1/aliases/${segment(address)}`);
  }

  // --- sender groups ---------------------------------------------------------------------------

  listSenderGroups(): Promise<SenderGroup[]> {
    return this.#request<SenderGroup[]>("GET", "/v1/sender-groups");
  }

  createSenderGroup(params: CreateSenderGroupParams): Promise<SenderGroup> {
    return this.#request<SenderGroup>("POST", "/v1/sender-groups", { body: params });
  }

  updateSenderGroup(id: string, params: UpdateSenderGroupParams): Promise<SenderGroup> {
    return this.#request<SenderGroup>("PATCH", `/v1/sender-groups/${segment(id)}`, { body: params });
  }

  /** Delete a sender group; its mailboxes are not affected. */
  deleteSenderGroup(id: string): Promise<DeletedResponse> {
    return this.#request<DeletedResponse>("DELETE", `/v1/sender-groups/${segment(id)}`);
  }

  // --- emails ----------------------------------------------------------------------------------

  /** One page of sent emails, newest first. */
  listEmails(params: ListEmailsParams = {}): Promise<EmailPage> {
    const { status, from, batchId, tag, cursor, limit } = params;
    return this.#request<EmailPage>("GET", "/v1/emails", {
      query: { status, from, batchId, tag, cursor, limit },
    });
  }

  /** Every sent email matching the filters, newest first, fetching page after page. */
  async *iterateEmails(params: Omit<ListEmailsParams, "cursor"> = {}): AsyncGenerator<Email> {
    let page = await this.listEmails(params);
    yield* page.data;
    while (page.nextCursor !== null) {
      page = await this.listEmails({ ...params, cursor: page.nextCursor });
      yield* page.data;
    }
  }

  /** One sent email (by `_id` or `messageId`) with its recipients and event timeline. */
  getEmail(id: string): Promise<EmailDetail> {
    return this.#request<EmailDetail>("GET", `/v1/emails/${segment(id)}`);
  }

  // --- suppressions ---------------------------------------------------------------------------

  /** Addresses mail is no longer sent to (hard bounces, complaints), oldest first. */
  listSuppressions(params: ListSuppressionsParams = {}): Promise<SuppressionPage> {
    const { cursor, limit } = params;
    return this.#request<SuppressionPage>("GET", "/v1/suppressions", { query: { cursor, limit } });
  }

  /** Mail a suppressed address again; a NotFoundError when it is not on the list. */
  deleteSuppression(address: string): Promise<DeletedResponse> {
    return this.#request<DeletedResponse>("DELETE", `/v1/suppressions/${segment(address)}`);
  }

  // --- contacts and lists ----------------------------------------------------------------------

  /** Contacts oldest first, filtered; pass `nextCursor` as `cursor` for the next page. */
  listContacts(params: ListContactsParams = {}): Promise<ContactPage> {
    return this.#request<ContactPage>("GET", "/v1/contacts", { query: contactQuery(params) });
  }

  /** A ConflictError when the address is already a contact. */
  createContact(params: CreateContactParams): Promise<Contact> {
    return this.#request<Contact>("POST", "/v1/contacts", { body: params });
  }

  getContact(id: string): Promise<Contact> {
    return this.#request<Contact>("GET", `/v1/contacts/${segment(id)}`);
  }

  updateContact(id: string, params: UpdateContactParams): Promise<Contact> {
    return this.#request<Contact>("PATCH", `/v1/contacts/${segment(id)}`, { body: params });
  }

  deleteContact(id: string): Promise<DeletedResponse> {
    return this.#request<DeletedResponse>("DELETE", `/v1/contacts/${segment(id)}`);
  }

  /** Start importing a CSV file (header row first); poll `getContactImport` for progress. */
  importContacts(csv: string | Uint8Array, params: ImportContactsParams = {}): Promise<ContactImport> {
    return this.#request<ContactImport>("POST", "/v1/contacts/import", {
      raw: csv,
      headers: { "Content-Type": "text/csv" },
      query: importQuery(params),
    });
  }

  /** The header, the mapping as applied, and the first rows as contacts or errors. */
  previewContactImport(
    csv: string | Uint8Array,
    params: { mapping?: Record<string, string>; rows?: number } = {},
  ): Promise<ImportPreview> {
    return this.#request<ImportPreview>("POST", "/v1/contacts/import/preview", {
      raw: csv,
      headers: { "Content-Type": "text/csv" },
      query: { ...importQuery(params), rows: params.rows },
    });
  }

  getContactImport(id: string): Promise<ContactImport> {
    return this.#request<ContactImport>("GET", `/v1/contacts/import/${segment(id)}`);
  }

  /** The matching contacts as CSV text (it imports back as is). */
  exportContacts(params: ContactFilterParams = {}): Promise<string> {
    return this.#request<string>("GET", "/v1/contacts/export", {
      query: contactQuery(params),
      headers: { Accept: "text/csv" },
    });
  }

  listLists(): Promise<ContactList[]> {
    return this.#request<ContactList[]>("GET", "/v1/lists");
  }

  /** A list; with a `filter`, a segment whose members are whoever matches it. */
  createList(params: CreateListParams): Promise<ContactList> {
    return this.#request<ContactList>("POST", "/v1/lists", { body: params });
  }

  getList(id: string): Promise<ContactList> {
    return this.#request<ContactList>("GET", `/v1/lists/${segment(id)}`);
  }

  updateList(id: string, params: UpdateListParams): Promise<ContactList> {
    return this.#request<ContactList>("PATCH", `/v1/lists/${segment(id)}`, { body: params });
  }

  deleteList(id: string): Promise<DeletedResponse> {
    return this.#request<DeletedResponse>("DELETE", `/v1/lists/${segment(id)}`);
  }

  addListMembers(id: string, params: ListMembersParams): Promise<ContactList> {
    const path = `/v1/lists/${segment(id)}/members`;
    return this.#request<ContactList>("POST", path, { body: params });
  }

  removeListMember(id: string, contactId: string): Promise<DeletedResponse> {
    const path = `/v1/lists/${segment(id)}/members/${segment(contactId)}`;
    return this.#request<DeletedResponse>("DELETE", path);
  }

  // --- campaigns -------------------------------------------------------------------------------

  /** The domain's campaigns, newest first. */
  listCampaigns(params: { cursor?: string; limit?: number } = {}): Promise<CampaignPage> {
    return this.#request<CampaignPage>("GET", "/v1/campaigns", { query: { ...params } });
  }

  /** A draft campaign from one mailbox (`from`) or a sender group (`senderGroupId`). */
  createCampaign(params: CreateCampaignParams): Promise<Campaign> {
    return this.#request<Campaign>("POST", "/v1/campaigns", { body: params });
  }

  getCampaign(id: string): Promise<Campaign> {
    return this.#request<Campaign>("GET", `/v1/campaigns/${segment(id)}`);
  }

  /** While a draft or paused; a ConflictError otherwise. */
  updateCampaign(id: string, params: UpdateCampaignParams): Promise<Campaign> {
    return this.#request<Campaign>("PATCH", `/v1/campaigns/${segment(id)}`, { body: params });
  }

  /** Fix the audience and start sending; a PermissionDeniedError with the plan's text when the
   * account may not send. */
  launchCampaign(id: string): Promise<Campaign> {
    return this.#request<Campaign>("POST", `/v1/campaigns/${segment(id)}/launch`);
  }

  pauseCampaign(id: string): Promise<Campaign> {
    return this.#request<Campaign>("POST", `/v1/campaigns/${segment(id)}/pause`);
  }

  resumeCampaign(id: string): Promise<Campaign> {
    return this.#request<Campaign>("POST", `/v1/campaigns/${segment(id)}/resume`);
  }

  cancelCampaign(id: string): Promise<Campaign> {
    return this.#request<Campaign>("POST", `/v1/campaigns/${segment(id)}/cancel`);
  }

  /** Counts per campaign, stage and subject variant. */
  getCampaignStats(id: string): Promise<CampaignStats> {
    return this.#request<CampaignStats>("GET", `/v1/campaigns/${segment(id)}/stats`);
  }

  listCampaignRecipients(
    id: string,
    params: ListCampaignRecipientsParams = {},
  ): Promise<CampaignRecipientPage> {
    const path = `/v1/campaigns/${segment(id)}/recipients`;
    return this.#request<CampaignRecipientPage>("GET", path, { query: { ...params } });
  }

  /** A stage as a contact would get it. */
  previewCampaign(id: string, params: PreviewCampaignParams = {}): Promise<CampaignPreview> {
    const path = `/v1/campaigns/${segment(id)}/preview`;
    return this.#request<CampaignPreview>("POST", path, { body: params });
  }

  /** Send one stage to `to`, its subject starting "[Test] ". */
  testSendCampaign(
    id: string,
    params: TestSendCampaignParams,
  ): Promise<{ messageId: string; emailId: string }> {
    const path = `/v1/campaigns/${segment(id)}/test-send`;
    return this.#request<{ messageId: string; emailId: string }>("POST", path, { body: params });
  }

  // --- webhooks --------------------------------------------------------------------------------

  listWebhooks(): Promise<Webhook[]> {
    return this.#request<Webhook[]>("GET", "/v1/webhooks");
  }

  /** Subscribe a URL to events; the answer carries the signing `secret`, shown only once. */
  createWebhook(params: CreateWebhookParams): Promise<Webhook> {
    return this.#request<Webhook>("POST", "/v1/webhooks", { body: params });
  }

  deleteWebhook(id: string): Promise<DeletedResponse> {
    return this.#request<DeletedResponse>("DELETE", `/v1/webhooks/${segment(id)}`);
  }

  // --- scheduled emails ------------------------------------------------------------------------

  /**
   * Withdraw the recipients of a sent email (by `_id` or `messageId`) still waiting for their
   * first attempt. A ConflictError when none is waiting any more.
   */
  cancelEmail(id: string): Promise<CancelResult> {
    return this.#request<CancelResult>("POST", `/v1/emails/${segment(id)}/cancel`);
  }

  /**
   * Move the first attempt of the recipients still waiting for it to `scheduledAt` (a Date or
   * unix milliseconds). A ConflictError when none is waiting any more.
   */
  rescheduleEmail(id: string, scheduledAt: Date | number): Promise<Email> {
    const body = { scheduledAt: unixMs(scheduledAt) };
    return this.#request<Email>("PATCH", `/v1/emails/${segment(id)}`, { body });
  }

  // --- transport -------------------------------------------------------------------------------

  async #request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.#apiKey}`,
      Accept: "application/json",
      "User-Agent": `mailmark-sdk-node/${VERSION}`,
      ...options.headers,
    };
    const init: RequestInit = { method, headers, signal: AbortSignal.timeout(this.#timeoutMs) };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    } else if (options.raw !== undefined) {
      init.body = options.raw as BodyInit;
    }
    let response: Response;
    let text: string;
    try {
      response = await this.#fetch(url, init);
      text = await response.text();
    } catch (cause) {
      const timedOut = cause instanceof Error && cause.name === "TimeoutError";
      throw new APIConnectionError({
        status: 0,
        code: timedOut ? "timeout" : "connection_failed",
        message: timedOut
          ? `${method} ${path}: no response within ${this.#timeoutMs} ms`
          : `${method} ${path}: ${cause instanceof Error ? cause.message : String(cause)}`,
        body: cause,
      });
    }
    const body = decode(text);
    if (!response.ok) throw errorFromResponse(response.status, body, response.headers);
    return body as T;
  }
}

/** An attachment as the API takes it: the bytes in base64, read from `path` when given. */
async function encoded(attachment: Attachment): Promise<Record<string, string>> {
  const { filename, content, path, contentType, contentId } = attachment;
  if ((content === undefined) === (path === undefined)) {
    throw new TypeError("Mailmark: an attachment needs either content or path");
  }
  const name = filename ?? path?.split(/[\\/]/).pop();
  if (!name) throw new TypeError("Mailmark: an attachment given by content needs a filename");
  const bytes = content ?? (await readFile(path ?? ""));
  const body: Record<string, string> = { filename: name, content: base64(bytes) };
  if (contentType !== undefined) body["contentType"] = contentType;
  if (contentId !== undefined) body["contentId"] = contentId;
  return body;
}

/** Read a file with the runtime's `node:fs` (Node, Bun, Deno), loaded only when a path is given,
 * so the package still runs where there is no file system. */
async function readFile(path: string): Promise<Uint8Array> {
  const module = "node:fs/promises";
  const fs = (await import(module)) as { readFile(path: string): Promise<Uint8Array> };
  return fs.readFile(path);
}

/** Base64 with `btoa`, which every runtime has (Node 16+, Bun, Deno, browsers). */
function base64(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let start = 0; start < bytes.length; start += chunk) {
    binary += String.fromCharCode(...bytes.subarray(start, start + chunk));
  }
  return btoa(binary);
}

/** A time as the API takes it: unix milliseconds, from a Date or as given. */
function unixMs(when: Date | number): number {
  return when instanceof Date ? when.getTime() : when;
}

function list(value: string | string[]): string[] {
  return Array.isArray(value) ? value : [value];
}

function contactQuery(params: ListContactsParams): Query {
  const { status, tag, field, suppressed, listId, cursor, limit } = params;
  return { status, tag, field, suppressed, listId, cursor, limit };
}

function importQuery(params: ImportContactsParams): Query {
  const { mapping, onDuplicate, listId } = params;
  return { mapping: mapping && JSON.stringify(mapping), onDuplicate, listId };
}

/** A path segment; `@` stays as is (RFC 3986 §3.3 allows it in a segment). */
function segment(value: string): string {
  if (value === "") throw new TypeError("Mailmark: an empty id or address");
  return encodeURIComponent(value).replace(/%40/g, "@");
}

function decode(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

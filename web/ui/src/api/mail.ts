/**
 * Webmail (/api/mail): mailboxes, folders, conversations, messages, actions, search, compose.
 *
 * A message is referred to by `{folderId, uid}`: the folder and UID IMAP serves, so what the
 * browser does is the same message Thunderbird sees.
 */
import { ApiError, api, getCsrfToken, NETWORK_ERROR_MESSAGE, request, type Id } from "./client";

export type Address = { name: string; address: string };
export type FolderRole = "inbox" | "sent" | "drafts" | "trash" | "junk" | "archive" | "outbox" | null;
export type MessageRef = { folderId: Id; uid: number };

export type MailMailbox = { id: Id; address: string; displayName: string; unread: number };

export type Folder = {
  id: Id;
  name: string;
  role: FolderRole;
  total: number;
  unread: number;
  subscribed: boolean;
};

export type ConversationSummary = {
  threadId: Id;
  subject: string;
  snippet: string;
  participants: Address[];
  count: number;
  unread: boolean;
  starred: boolean;
  hasAttachments: boolean;
  date: string;
  latest: MessageRef;
  messages: MessageRef[];
};

export type ConversationPage = { items: ConversationSummary[]; nextCursor: string | null; total: number };

export type Attachment = {
  partId: string;
  filename: string;
  contentType: string;
  size: number;
  inline: boolean;
  url: string;
};

export type AuthResults = { spf: string; dkim: string; dmarc: string; warning: string | null };

export type MessageDetail = {
  folderId: Id;
  folder: string;
  role: FolderRole;
  uid: number;
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  from: Address | null;
  sender: Address | null;
  replyTo: Address[];
  to: Address[];
  cc: Address[];
  bcc: Address[];
  subject: string;
  date: string | null;
  receivedAt: string;
  flags: string[];
  seen: boolean;
  starred: boolean;
  snippet: string;
  size: number;
  text: string | null;
  hasHtml: boolean;
  htmlUrl: string | null;
  rawUrl: string;
  attachments: Attachment[];
  remoteImages: boolean;
  imagesAllowed: boolean;
  auth: AuthResults | null;
};

export type Thread = { threadId: Id; subject: string; messages: MessageDetail[] };

export type MailAction =
  | "read"
  | "unread"
  | "star"
  | "unstar"
  | "archive"
  | "move"
  | "trash"
  | "delete"
  | "spam"
  | "notspam";

export type ActionResult = { moved: { from: MessageRef; to: MessageRef }[]; updated: number };

export type Upload = { id: Id; filename: string; contentType: string; size: number };

export type OutgoingAttachment = { uploadId: Id } | { folderId: Id; uid: number; partId: string };

export type Outgoing = {
  draft: MessageRef | null;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  html: string;
  text: string | null;
  attachments: OutgoingAttachment[];
  replyTo: MessageRef | null;
  forwardOf: MessageRef | null;
};

export type SendResult = {
  id: Id;
  status: "scheduled" | "queued";
  sendAt: string | null;
  outbox: MessageRef | null;
};

export type DeliveryStatus =
  | "scheduled"
  | "queued"
  | "held"
  | "delivered"
  | "deferred"
  | "bounced"
  | "failed"
  | "suppressed";

export type Delivery = {
  recipients: { address: string; status: DeliveryStatus; detail: string | null; updatedAt: string | null }[];
  opens: { at: string }[];
};

export type FolderCounts = { id: Id; total: number; unread: number };

const base = (mb: Id) => `/api/mail/${encodeURIComponent(String(mb))}`;
const msg = (mb: Id, ref: MessageRef) =>
  `${base(mb)}/messages/${encodeURIComponent(String(ref.folderId))}/${ref.uid}`;

export const mailApi = {
  mailboxes: () => api.get<MailMailbox[]>("/api/mail/mailboxes"),
  folders: (mb: Id) => api.get<Folder[]>(`${base(mb)}/folders`),
  createFolder: (mb: Id, name: string) => api.post<Folder>(`${base(mb)}/folders`, { name }),
  renameFolder: (mb: Id, folderId: Id, name: string) =>
    api.patch<Folder>(`${base(mb)}/folders/${encodeURIComponent(String(folderId))}`, { name }),
  deleteFolder: (mb: Id, folderId: Id) =>
    api.delete(`${base(mb)}/folders/${encodeURIComponent(String(folderId))}`),
  emptyFolder: (mb: Id, folderId: Id) =>
    api.post<void>(`${base(mb)}/folders/${encodeURIComponent(String(folderId))}/empty`),
  conversations: (mb: Id, folderId: Id, cursor: string | null, limit = 50, signal?: AbortSignal) => {
    const query = new URLSearchParams({ limit: String(limit) });
    if (cursor) query.set("cursor", cursor);
    return api.get<ConversationPage>(
      `${base(mb)}/folders/${encodeURIComponent(String(folderId))}/conversations?${query}`,
      { signal },
    );
  },
  search: (mb: Id, q: string, cursor: string | null, limit = 50, signal?: AbortSignal) => {
    const query = new URLSearchParams({ q, limit: String(limit) });
    if (cursor) query.set("cursor", cursor);
    return api.get<ConversationPage>(`${base(mb)}/search?${query}`, { signal });
  },
  thread: (mb: Id, threadId: Id, folderId?: Id) =>
    api.get<Thread>(
      `${base(mb)}/threads/${encodeURIComponent(String(threadId))}` +
        (folderId !== undefined ? `?folderId=${encodeURIComponent(String(folderId))}` : ""),
    ),
  message: (mb: Id, ref: MessageRef) => api.get<MessageDetail>(msg(mb, ref)),
  act: (mb: Id, messages: MessageRef[], action: MailAction, folderId?: Id) =>
    api.post<ActionResult>(`${base(mb)}/actions`, {
      messages: messages.map(({ folderId: f, uid }) => ({ folderId: f, uid })),
      action,
      ...(folderId !== undefined ? { folderId } : {}),
    }),
  trustSender: (mb: Id, address: string) => api.post<void>(`${base(mb)}/trusted-senders`, { address }),
  saveDraft: (mb: Id, body: Outgoing) => api.put<MessageRef>(`${base(mb)}/drafts`, body),
  send: (mb: Id, body: Outgoing & { scheduledAt?: string; undoSeconds?: number }) =>
    api.post<SendResult>(`${base(mb)}/send`, body),
  cancelOutbox: (mb: Id, uid: number) => api.post<{ draft: MessageRef }>(`${base(mb)}/outbox/${uid}/cancel`),
  reschedule: (mb: Id, uid: number, scheduledAt: string) =>
    api.post<unknown>(`${base(mb)}/outbox/${uid}/reschedule`, { scheduledAt }),
  delivery: (mb: Id, ref: MessageRef) => api.get<Delivery>(`${msg(mb, ref)}/delivery`),
  contacts: (mb: Id, q: string, signal?: AbortSignal) =>
    api.get<Address[]>(`${base(mb)}/contacts?${new URLSearchParams({ q, limit: "8" })}`, { signal }),
  eventsUrl: (mb: Id) => `${base(mb)}/events`,
};

/** Ask for a fresh CSRF token when none is known yet (an upload is the page's first change). */
async function ensureCsrf(): Promise<string | null> {
  if (getCsrfToken() === null) {
    try {
      await request<unknown>("GET", "/api/session", undefined, { quietUnauthenticated: true });
    } catch {
      // The upload itself reports what is wrong.
    }
  }
  return getCsrfToken();
}

/**
 * Upload one attachment with XMLHttpRequest, the one browser API that reports upload progress.
 * `onProgress` gets 0..1; `abort` stops it (the promise rejects with an AbortError).
 */
export function uploadAttachment(
  mb: Id,
  file: File,
  onProgress: (fraction: number) => void,
): { promise: Promise<Upload>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const promise = (async () => {
    const token = await ensureCsrf();
    return new Promise<Upload>((resolve, reject) => {
      xhr.open("POST", `${base(mb)}/uploads`);
      xhr.withCredentials = true;
      xhr.setRequestHeader("Accept", "application/json");
      if (token) xhr.setRequestHeader("X-CSRF-Token", token);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      };
      xhr.onload = () => {
        let data: unknown = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch {
          data = null;
        }
        if (xhr.status >= 200 && xhr.status < 300) {
          resolve(data as Upload);
          return;
        }
        const problem = (data as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
        reject(
          new ApiError(
            xhr.status,
            problem?.code ?? `http_${xhr.status}`,
            problem?.message ??
              (xhr.status === 413 ? `${file.name} is too large to attach.` : `Uploading ${file.name} failed (HTTP ${xhr.status}).`),
            problem?.field ?? null,
          ),
        );
      };
      xhr.onerror = () => reject(new ApiError(0, "network", NETWORK_ERROR_MESSAGE));
      xhr.onabort = () => reject(new DOMException("Upload cancelled", "AbortError"));
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  })();
  return { promise, abort: () => xhr.abort() };
}

import type { Id } from "../../../api/client";
import type { Address } from "../../../api/mail";
import type { MessageRef } from "../../../api/mail";



/** An original part forwarded by reference (forward keeps the attachments). */
export type ForwardedPart = { folderId: Id; uid: number; partId: string; filename: string; size: number };

/** What the compose window opens with: new, reply, forward, a draft, or an undone send. */
export type ComposeInit = {
  to: Address[];
  cc: Address[];
  bcc: Address[];
  subject: string;
  html: string;
  replyTo: MessageRef | null;
  forwardOf: MessageRef | null;
  draft: MessageRef | null;
  forwarded: ForwardedPart[];
  /** Uploads already made (an undone send reopens with them). */
  uploads?: { id: Id; filename: string; size: number }[];
};

export function emptyCompose(html = ""): ComposeInit {
  return { to: [], cc: [], bcc: [], subject: "", html, replyTo: null, forwardOf: null, draft: null, forwarded: [] };
}

/** Reply, reply all and forward: subjects, recipients and the quoted original. */
import type { Address, MessageDetail } from "../../../api/mail";
import { formatChip } from "./addresses";

const PREFIX = /^\s*((re|fw|fwd|aw|wg|sv|vs)(\[\d+\])?\s*:\s*)+/i;

export function replySubject(subject: string): string {
  const bare = subject.replace(PREFIX, "");
  return `Re: ${bare}`.trim();
}

export function forwardSubject(subject: string): string {
  return `Fwd: ${subject.replace(PREFIX, "")}`.trim();
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** Plain text as editor paragraphs (blank lines split paragraphs; single new lines stay). */
export function textToHtml(text: string): string {
  return text
    .replace(/\r\n/g, "\n")
    .split(/\n{2,}/)
    .map((block) => `<p>${escapeHtml(block).replace(/\n/g, "<br>")}</p>`)
    .join("");
}

function sameAddress(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/** Who a reply goes to: Reply-To if set, else From (our own sent mail: its To). */
export function replyRecipients(
  message: MessageDetail,
  own: string,
  all: boolean,
): { to: Address[]; cc: Address[] } {
  const fromUs = message.from !== null && sameAddress(message.from.address, own);
  let to: Address[] = fromUs ? message.to : message.replyTo.length > 0 ? message.replyTo : message.from ? [message.from] : [];
  let cc: Address[] = [];
  if (all) {
    const others = fromUs ? message.cc : [...message.to, ...message.cc];
    cc = others;
  }
  const seen = new Set<string>([own.toLowerCase()]);
  const unique = (list: Address[]) =>
    list.filter((address) => {
      const key = address.address.toLowerCase();
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  to = unique(to);
  cc = unique(cc);
  if (to.length === 0 && fromUs) to = message.to.slice(0, 1);
  return { to, cc };
}

function when(message: MessageDetail): string {
  const date = new Date(message.date ?? message.receivedAt);
  return Number.isNaN(date.getTime())
    ? ""
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** "On <date>, <sender> wrote:" and the original's text in a blockquote. */
export function quoteForReply(message: MessageDetail): string {
  const sender = message.from ? formatChip(message.from) : "someone";
  const intro = `On ${when(message)}, ${sender} wrote:`.replace("On , ", "");
  const body = textToHtml(message.text ?? message.snippet ?? "");
  return `<p></p><p>${escapeHtml(intro)}</p><blockquote>${body}</blockquote>`;
}

/** The forwarded message's header block and text. */
export function quoteForForward(message: MessageDetail): string {
  const lines = [
    "---------- Forwarded message ----------",
    `From: ${message.from ? formatChip(message.from) : ""}`,
    `Date: ${when(message)}`,
    `Subject: ${message.subject}`,
    `To: ${message.to.map(formatChip).join(", ")}`,
  ];
  if (message.cc.length > 0) lines.push(`Cc: ${message.cc.map(formatChip).join(", ")}`);
  return (
    `<p></p><p>${lines.map(escapeHtml).join("<br>")}</p>` +
    `<blockquote>${textToHtml(message.text ?? message.snippet ?? "")}</blockquote>`
  );
}

/** Plain text of editor HTML (for a quick "is it empty" check and for the draft's preview). */
export function htmlToText(html: string): string {
  return html
    .replace(/<br\s*\/?>/gi, "\n")
    .replace(/<\/(p|div|li|blockquote|h[1-6])>/gi, "\n")
    .replace(/<[^>]+>/g, "")
    .replace(/&nbsp;/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

/** The signature as editor HTML, after the "-- " separator (RFC 3676 §4.3). */
export function signatureHtml(signature: string, format: "html" | "text"): string {
  if (signature.trim() === "") return "";
  const body = format === "html" ? signature : textToHtml(signature);
  return `<p>-- </p>${body}`;
}

/**
 * A saved draft's body (the server's sanitised document) as editor content: the body's inside
 * without <style> elements or style attributes. Parsing those, even in a detached document,
 * counts against the page's Content-Security-Policy (style-src 'self'), so they go first, as text.
 */
export function editableHtml(document: string): string {
  const body = /<body[^>]*>([\s\S]*)<\/body>/i.exec(document)?.[1] ?? document.replace(/<head[\s\S]*?<\/head>/i, "");
  return body
    .replace(/<style[\s\S]*?<\/style>/gi, "")
    .replace(/\sstyle\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi, "")
    .trim();
}

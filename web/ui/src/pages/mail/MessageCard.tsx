import { useEffect, useRef, useState, type FormEvent } from "react";
import type { Id } from "../../api/client";
import { mailApi, type Attachment, type MessageDetail } from "../../api/mail";
import { Alert } from "../../components/Alert";
import { Button } from "../../components/Button";
import { Dialog } from "../../components/Dialog";
import { Spinner } from "../../components/Spinner";
import { useAsync } from "../../lib/useAsync";
import { Icon, IconButton } from "./icons";
import { displayName, formatChip } from "./lib/addresses";
import { formatSize, fullDate, listDate, toLocalInput } from "./lib/dates";
import { linkify, withParam } from "./lib/text";
import { useMailToast } from "./MailToasts";

export type ReplyKind = "reply" | "replyAll" | "forward";

const PREVIEWABLE = /^(image\/(png|jpeg|gif|webp)|application\/pdf)$/i;

/** One message of a conversation: a one-line summary until opened, then headers, body and parts. */
export function MessageCard({
  mailboxId,
  message,
  expanded,
  onToggle,
  onReply,
  onStar,
  onEditDraft,
  onCancelOutbox,
}: {
  mailboxId: Id;
  message: MessageDetail;
  expanded: boolean;
  onToggle: () => void;
  onReply: (kind: ReplyKind, message: MessageDetail) => void;
  onStar: (message: MessageDetail) => void;
  onEditDraft: (message: MessageDetail) => void;
  onCancelOutbox: (message: MessageDetail) => void;
}) {
  const [showImages, setShowImages] = useState(message.imagesAllowed);
  const [details, setDetails] = useState(false);
  const toast = useMailToast();
  const sender = message.from ?? message.sender;

  if (!expanded) {
    return (
      <button
        type="button"
        onClick={onToggle}
        aria-expanded="false"
        className="flex w-full items-baseline gap-3 px-4 py-3 text-left hover:bg-zinc-50 sm:px-6 dark:hover:bg-zinc-800/50"
      >
        <span className={`w-40 shrink-0 truncate text-sm ${message.seen ? "text-zinc-800 dark:text-zinc-200" : "font-bold"}`}>
          {displayName(sender)}
        </span>
        <span className="min-w-0 flex-1 truncate text-sm text-zinc-600 dark:text-zinc-400">{message.snippet}</span>
        <span className="shrink-0 text-xs text-zinc-600 dark:text-zinc-400">{listDate(message.date ?? message.receivedAt)}</span>
      </button>
    );
  }

  const auth = message.auth;
  const authFailed = auth !== null && [auth.spf, auth.dkim, auth.dmarc].some((value) => value === "fail");
  const outgoing = message.role === "sent" || message.role === "outbox" || message.role === "drafts";

  async function trust() {
    if (!sender) return;
    try {
      await mailApi.trustSender(mailboxId, sender.address);
      setShowImages(true);
      toast.show(`Images from ${sender.address} will always be shown.`);
    } catch (caught) {
      toast.show(caught instanceof Error ? caught.message : String(caught), { tone: "error" });
    }
  }

  return (
    <article className="px-4 py-4 sm:px-6" aria-label={`Message from ${displayName(sender)}`}>
      <header className="flex items-start gap-3">
        <span
          className="flex size-10 shrink-0 items-center justify-center rounded-full bg-indigo-600 text-sm font-semibold text-white"
          aria-hidden="true"
        >
          {displayName(sender).slice(0, 1).toUpperCase()}
        </span>
        <div className="min-w-0 flex-1">
          <button type="button" onClick={onToggle} aria-expanded="true" className="block max-w-full truncate text-left">
            <span className="font-semibold text-zinc-900 dark:text-white">{displayName(sender)}</span>{" "}
            {sender?.name ? <span className="text-sm text-zinc-600 dark:text-zinc-400">&lt;{sender.address}&gt;</span> : null}
          </button>
          <p className="truncate text-sm text-zinc-600 dark:text-zinc-400">
            to {message.to.length > 0 ? message.to.map((a) => displayName(a)).join(", ") : "undisclosed recipients"}
            {message.cc.length > 0 ? `, cc ${message.cc.map((a) => displayName(a)).join(", ")}` : ""}
            <button
              type="button"
              className="ml-1 rounded px-1 text-xs text-indigo-700 underline-offset-2 hover:underline dark:text-indigo-300"
              aria-expanded={details}
              onClick={() => setDetails((open) => !open)}
            >
              {details ? "Hide details" : "Details"}
            </button>
          </p>
        </div>
        <div className="flex shrink-0 items-center">
          <time className="mr-1 hidden text-xs text-zinc-600 sm:inline dark:text-zinc-400" dateTime={message.date ?? message.receivedAt}>
            {fullDate(message.date ?? message.receivedAt)}
          </time>
          <IconButton
            icon="star"
            tone="star"
            label={message.starred ? "Unstar message" : "Star message"}
            filled={message.starred}
            pressed={message.starred}
            onClick={() => onStar(message)}
          />
          <IconButton icon="reply" label="Reply" onClick={() => onReply("reply", message)} />
        </div>
      </header>

      {details ? (
        <dl className="mt-3 grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 rounded-lg bg-zinc-50 p-3 text-xs text-zinc-700 dark:bg-zinc-800/60 dark:text-zinc-300">
          <dt className="font-medium">From</dt>
          <dd className="break-all">{sender ? formatChip(sender) : "—"}</dd>
          {message.replyTo.length > 0 ? (
            <>
              <dt className="font-medium">Reply to</dt>
              <dd className="break-all">{message.replyTo.map(formatChip).join(", ")}</dd>
            </>
          ) : null}
          <dt className="font-medium">To</dt>
          <dd className="break-all">{message.to.map(formatChip).join(", ") || "—"}</dd>
          {message.cc.length > 0 ? (
            <>
              <dt className="font-medium">Cc</dt>
              <dd className="break-all">{message.cc.map(formatChip).join(", ")}</dd>
            </>
          ) : null}
          {message.bcc.length > 0 ? (
            <>
              <dt className="font-medium">Bcc</dt>
              <dd className="break-all">{message.bcc.map(formatChip).join(", ")}</dd>
            </>
          ) : null}
          <dt className="font-medium">Date</dt>
          <dd>{fullDate(message.date ?? message.receivedAt)}</dd>
          <dt className="font-medium">Subject</dt>
          <dd className="break-words">{message.subject || "(no subject)"}</dd>
          {auth ? (
            <>
              <dt className="font-medium">Security</dt>
              <dd>
                SPF {auth.spf} · DKIM {auth.dkim} · DMARC {auth.dmarc}
              </dd>
            </>
          ) : null}
          <dt className="font-medium">Folder</dt>
          <dd>{message.folder}</dd>
        </dl>
      ) : null}

      {auth?.warning || authFailed ? (
        <div className="mt-3">
          <Alert tone="warning" title="Be careful with this message">
            {auth?.warning ??
              "This message failed sender authentication: it may not be from who it says. Do not trust its links or attachments."}
          </Alert>
        </div>
      ) : null}

      {message.role === "drafts" ? (
        <div className="mt-3">
          <Button size="sm" variant="secondary" onClick={() => onEditDraft(message)} icon={<Icon name="pencil" className="size-4" />}>
            Edit draft
          </Button>
        </div>
      ) : null}

      {message.role === "outbox" ? <OutboxControls mailboxId={mailboxId} message={message} onCancel={onCancelOutbox} /> : null}

      {message.hasHtml && message.remoteImages && !showImages ? (
        <div className="mt-3 flex items-start gap-3 rounded-lg bg-zinc-100 px-3 py-2 text-sm text-zinc-700 dark:bg-zinc-800 dark:text-zinc-300">
          <Icon name="image" className="mt-0.5 size-4" />
          <div className="min-w-0 flex-1">
            <p>Images from the sender are hidden to protect your privacy.</p>
            <p className="mt-1 flex flex-wrap gap-x-4 gap-y-1">
              <button type="button" className="font-medium text-indigo-700 hover:underline dark:text-indigo-300" onClick={() => setShowImages(true)}>
                Show images
              </button>
              {sender ? (
                <button
                  type="button"
                  className="font-medium text-indigo-700 hover:underline dark:text-indigo-300"
                  onClick={() => void trust()}
                  title={`Always show images from ${sender.address}`}
                >
                  Always show from this sender
                </button>
              ) : null}
            </p>
          </div>
        </div>
      ) : null}

      <div className="mt-4">
        {message.hasHtml && message.htmlUrl ? (
          <HtmlBody
            url={showImages ? withParam(message.htmlUrl, "images", "1") : message.htmlUrl}
            title={`Message from ${displayName(sender)}: ${message.subject || "(no subject)"}`}
          />
        ) : (
          <TextBody text={message.text ?? ""} />
        )}
      </div>

      {message.attachments.filter((part) => !part.inline || !message.hasHtml).length > 0 ? (
        <Attachments parts={message.attachments.filter((part) => !part.inline || !message.hasHtml)} />
      ) : null}

      {outgoing && message.role !== "drafts" ? <DeliveryStatus mailboxId={mailboxId} message={message} /> : null}

      <div className="mt-4 flex flex-wrap gap-2">
        <Button size="sm" variant="secondary" onClick={() => onReply("reply", message)} icon={<Icon name="reply" className="size-4" />}>
          Reply
        </Button>
        <Button size="sm" variant="secondary" onClick={() => onReply("replyAll", message)} icon={<Icon name="replyAll" className="size-4" />}>
          Reply all
        </Button>
        <Button size="sm" variant="secondary" onClick={() => onReply("forward", message)} icon={<Icon name="forward" className="size-4" />}>
          Forward
        </Button>
        <a
          href={message.rawUrl}
          target="_blank"
          rel="noopener noreferrer"
          className="inline-flex h-8 items-center gap-2 rounded-lg px-3 text-sm font-medium text-zinc-700 hover:bg-zinc-100 dark:text-zinc-300 dark:hover:bg-zinc-800"
        >
          <Icon name="code" className="size-4" />
          Show original
        </a>
      </div>
    </article>
  );
}

/**
 * The server's sanitised HTML in a sandboxed frame without scripts, as tall as its content
 * (measured from outside: the frame shares our origin but runs nothing).
 */
function HtmlBody({ url, title }: { url: string; title: string }) {
  const frame = useRef<HTMLIFrameElement>(null);
  const [measured, setMeasured] = useState(false);

  useEffect(() => {
    const node = frame.current;
    if (!node) return;
    let observer: ResizeObserver | null = null;
    function measure() {
      if (!node) return;
      let doc: Document | null = null;
      try {
        doc = node.contentDocument;
      } catch {
        doc = null;
      }
      if (!doc?.documentElement) {
        setMeasured(false);
        return;
      }
      const height = Math.max(doc.documentElement.scrollHeight, doc.body?.scrollHeight ?? 0);
      node.style.height = `${Math.min(height + 8, 20000)}px`;
      setMeasured(true);
      if (!observer && doc.body && typeof ResizeObserver !== "undefined") {
        observer = new ResizeObserver(() => measure());
        observer.observe(doc.body);
      }
    }
    node.addEventListener("load", measure);
    return () => {
      node.removeEventListener("load", measure);
      observer?.disconnect();
    };
  }, [url]);

  return (
    <iframe
      ref={frame}
      src={url}
      title={title}
      sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"
      referrerPolicy="no-referrer"
      className={`block w-full rounded-md bg-white ${measured ? "" : "h-[60vh]"}`}
    />
  );
}

function TextBody({ text }: { text: string }) {
  return (
    <div className="font-sans text-sm leading-relaxed break-words whitespace-pre-wrap text-zinc-900 dark:text-zinc-100">
      {linkify(text).map((piece, index) =>
        piece.kind === "link" ? (
          <a key={index} href={piece.href} target="_blank" rel="noopener noreferrer" className="text-indigo-700 underline dark:text-indigo-300">
            {piece.text}
          </a>
        ) : (
          <span key={index}>{piece.text}</span>
        ),
      )}
    </div>
  );
}

function Attachments({ parts }: { parts: Attachment[] }) {
  const [preview, setPreview] = useState<Attachment | null>(null);
  return (
    <section className="mt-4" aria-label="Attachments">
      <h3 className="mb-2 text-sm font-medium text-zinc-700 dark:text-zinc-300">
        {parts.length === 1 ? "1 attachment" : `${parts.length} attachments`}
      </h3>
      <ul className="flex flex-wrap gap-3">
        {parts.map((part) => {
          const image = /^image\/(png|jpeg|gif|webp)$/i.test(part.contentType);
          const previewable = PREVIEWABLE.test(part.contentType);
          return (
            <li key={part.partId} className="w-44 overflow-hidden rounded-lg ring-1 ring-zinc-200 dark:ring-zinc-700">
              {image ? (
                <button type="button" className="block w-full bg-zinc-100 dark:bg-zinc-800" onClick={() => setPreview(part)} aria-label={`Preview ${part.filename}`}>
                  <img src={withParam(part.url, "inline", "1")} alt="" className="h-24 w-full object-cover" loading="lazy" />
                </button>
              ) : (
                <div className="flex h-24 items-center justify-center bg-zinc-100 text-xs font-semibold text-zinc-600 uppercase dark:bg-zinc-800 dark:text-zinc-300">
                  {part.contentType.split("/")[1]?.slice(0, 8) ?? "file"}
                </div>
              )}
              <div className="p-2">
                <p className="truncate text-xs font-medium text-zinc-900 dark:text-zinc-100" title={part.filename}>
                  {part.filename || "(unnamed)"}
                </p>
                <p className="text-xs text-zinc-600 dark:text-zinc-400">{formatSize(part.size)}</p>
                <div className="mt-1 flex gap-2 text-xs">
                  <a href={part.url} download={part.filename || true} aria-label={`Download ${part.filename || "attachment"}`} className="font-medium text-indigo-700 hover:underline dark:text-indigo-300">
                    Download
                  </a>
                  {previewable && !image ? (
                    <a href={withParam(part.url, "inline", "1")} target="_blank" rel="noopener noreferrer" aria-label={`Open ${part.filename || "attachment"}`} className="font-medium text-indigo-700 hover:underline dark:text-indigo-300">
                      Open
                    </a>
                  ) : null}
                </div>
              </div>
            </li>
          );
        })}
      </ul>
      <Dialog open={preview !== null} onClose={() => setPreview(null)} title={preview?.filename ?? ""} size="lg"
        footer={<Button variant="secondary" onClick={() => setPreview(null)}>Close</Button>}>
        {preview ? <img src={withParam(preview.url, "inline", "1")} alt={preview.filename} className="mx-auto max-h-[70vh]" /> : null}
      </Dialog>
    </section>
  );
}

const STATUS_TONE: Record<string, string> = {
  delivered: "bg-emerald-100 text-emerald-800 dark:bg-emerald-500/15 dark:text-emerald-200",
  queued: "bg-zinc-200 text-zinc-800 dark:bg-zinc-700 dark:text-zinc-100",
  scheduled: "bg-sky-100 text-sky-800 dark:bg-sky-500/15 dark:text-sky-200",
  deferred: "bg-amber-100 text-amber-900 dark:bg-amber-500/15 dark:text-amber-100",
  held: "bg-amber-100 text-amber-900 dark:bg-amber-500/15 dark:text-amber-100",
  bounced: "bg-red-100 text-red-800 dark:bg-red-500/15 dark:text-red-200",
  failed: "bg-red-100 text-red-800 dark:bg-red-500/15 dark:text-red-200",
  suppressed: "bg-red-100 text-red-800 dark:bg-red-500/15 dark:text-red-200",
};

function DeliveryStatus({ mailboxId, message }: { mailboxId: Id; message: MessageDetail }) {
  const delivery = useAsync(() => mailApi.delivery(mailboxId, { folderId: message.folderId, uid: message.uid }), [mailboxId, message.folderId, message.uid]);
  if (delivery.loading && !delivery.data) {
    return (
      <div className="mt-4 text-zinc-500">
        <Spinner label="Loading delivery status" />
      </div>
    );
  }
  if (!delivery.data) return null;
  const { recipients, opens } = delivery.data;
  if (recipients.length === 0) return null;
  return (
    <section className="mt-4 rounded-lg ring-1 ring-zinc-200 dark:ring-zinc-700" aria-label="Delivery status">
      <h3 className="border-b border-zinc-200 px-3 py-2 text-sm font-medium text-zinc-800 dark:border-zinc-700 dark:text-zinc-200">Delivery</h3>
      <ul className="divide-y divide-zinc-200 dark:divide-zinc-700">
        {recipients.map((recipient) => (
          <li key={recipient.address} className="flex flex-wrap items-center gap-x-3 gap-y-1 px-3 py-2 text-sm">
            <span className="min-w-0 flex-1 break-all text-zinc-900 dark:text-zinc-100">{recipient.address}</span>
            <span className={`rounded-full px-2 py-0.5 text-xs font-medium capitalize ${STATUS_TONE[recipient.status] ?? STATUS_TONE.queued}`}>
              {recipient.status}
            </span>
            {recipient.detail ? <span className="w-full text-xs text-zinc-600 dark:text-zinc-400">{recipient.detail}</span> : null}
          </li>
        ))}
      </ul>
      {opens.length > 0 ? (
        <p className="border-t border-zinc-200 px-3 py-2 text-xs text-zinc-600 dark:border-zinc-700 dark:text-zinc-400">
          Opened {opens.length === 1 ? "once" : `${opens.length} times`}, last {fullDate(opens[opens.length - 1]!.at)}
        </p>
      ) : null}
    </section>
  );
}

function OutboxControls({ mailboxId, message, onCancel }: { mailboxId: Id; message: MessageDetail; onCancel: (message: MessageDetail) => void }) {
  const [editing, setEditing] = useState(false);
  const [when, setWhen] = useState(() => toLocalInput(new Date(Date.now() + 3600_000)));
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const toast = useMailToast();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const at = new Date(when);
    if (Number.isNaN(at.getTime()) || at.getTime() < Date.now()) {
      setError("Choose a time in the future.");
      return;
    }
    setPending(true);
    setError(null);
    try {
      await mailApi.reschedule(mailboxId, message.uid, at.toISOString());
      setEditing(false);
      toast.show(`Rescheduled for ${fullDate(at.toISOString())}.`);
    } catch (caught) {
      setError(caught instanceof Error ? caught.message : String(caught));
    } finally {
      setPending(false);
    }
  }

  return (
    <div className="mt-3 rounded-lg bg-sky-50 p-3 text-sm text-sky-900 dark:bg-sky-950/40 dark:text-sky-100">
      <p className="flex items-center gap-2">
        <Icon name="clock" className="size-4" />
        Waiting in the Outbox to be sent.
      </p>
      <div className="mt-2 flex flex-wrap gap-2">
        <Button size="sm" variant="secondary" onClick={() => onCancel(message)}>
          Cancel sending
        </Button>
        <Button size="sm" variant="secondary" onClick={() => setEditing((open) => !open)} aria-expanded={editing}>
          Reschedule
        </Button>
      </div>
      {editing ? (
        <form onSubmit={submit} className="mt-3 flex flex-wrap items-end gap-2">
          <label className="text-sm">
            <span className="mb-1 block font-medium">Send at</span>
            <input
              type="datetime-local"
              value={when}
              onChange={(event) => setWhen(event.target.value)}
              className="rounded-md border border-zinc-300 bg-white px-2 py-1.5 text-zinc-900 dark:border-zinc-600 dark:bg-zinc-900 dark:text-zinc-100"
            />
          </label>
          <Button size="sm" type="submit" loading={pending}>
            Save time
          </Button>
          {error ? <p className="w-full text-sm text-red-700 dark:text-red-300">{error}</p> : null}
        </form>
      ) : null}
    </div>
  );
}

import "./editor.css";
import { EditorContent, useEditor, type Editor } from "@tiptap/react";
import StarterKit from "@tiptap/starter-kit";
import { useCallback, useEffect, useId, useRef, useState, type DragEvent, type KeyboardEvent } from "react";
import type { Id } from "../../../api/client";
import { mailApi, uploadAttachment, type MessageRef, type Outgoing, type SendResult } from "../../../api/mail";
import { Button } from "../../../components/Button";
import { Icon, type IconName } from "../icons";
import { formatChip, type Chip } from "../lib/addresses";
import { formatSize, quickSchedules, toLocalInput } from "../lib/dates";
import { htmlToText } from "../lib/quote";
import { AddressField } from "./AddressField";
import type { ComposeInit, ForwardedPart } from "./types";

type Upload = {
  key: number;
  filename: string;
  size: number;
  progress: number;
  id: Id | null;
  error: string | null;
  abort: (() => void) | null;
};

const AUTOSAVE_MS = 2000;
export const UNDO_SECONDS = 5;

const asChips = (list: { name: string; address: string }[]): Chip[] => list.map((a) => ({ ...a, valid: true }));

/**
 * The compose window: recipients as chips, a rich text editor (TipTap), attachments with upload
 * progress, drafts saved while typing, send now (with an undo window) or at a chosen time.
 */
export default function Compose({
  mailboxId,
  fromAddress,
  init,
  onClose,
  onSent,
  onDraftSaved,
}: {
  mailboxId: Id;
  fromAddress: string;
  init: ComposeInit;
  onClose: (outcome: "discarded" | "saved" | "empty") => void;
  onSent: (result: SendResult, snapshot: ComposeInit, scheduled: boolean) => void;
  onDraftSaved: () => void;
}) {
  const [to, setTo] = useState<Chip[]>(asChips(init.to));
  const [cc, setCc] = useState<Chip[]>(asChips(init.cc));
  const [bcc, setBcc] = useState<Chip[]>(asChips(init.bcc));
  const [showCopies, setShowCopies] = useState(init.cc.length + init.bcc.length > 0);
  const [subject, setSubject] = useState(init.subject);
  const [uploads, setUploads] = useState<Upload[]>(
    (init.uploads ?? []).map((u, index) => ({ key: -1 - index, filename: u.filename, size: u.size, progress: 1, id: u.id, error: null, abort: null })),
  );
  const [forwarded, setForwarded] = useState<ForwardedPart[]>(init.forwarded);
  const [saveState, setSaveState] = useState<"idle" | "saving" | "saved" | "error">(init.draft ? "saved" : "idle");
  const [error, setError] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  const [scheduleOpen, setScheduleOpen] = useState(false);
  const [scheduleAt, setScheduleAt] = useState(() => toLocalInput(quickSchedules()[0]!.at));
  const [dragging, setDragging] = useState(false);
  const [changes, setChanges] = useState(0);
  const draft = useRef<MessageRef | null>(init.draft);
  const saving = useRef<Promise<void> | null>(null);
  const nextKey = useRef(1);
  const fileInput = useRef<HTMLInputElement>(null);
  const titleId = useId();
  const subjectId = useId();

  const editor = useEditor({
    extensions: [StarterKit.configure({ link: { openOnClick: false, autolink: true, defaultProtocol: "https" } })],
    content: init.html || "<p></p>",
    // The page's Content-Security-Policy refuses inline <style>: editor.css carries these rules.
    injectCSS: false,
    immediatelyRender: true,
    shouldRerenderOnTransaction: true,
    editorProps: { attributes: { "aria-label": "Message body", role: "textbox", "aria-multiline": "true" } },
    onUpdate: () => setChanges((n) => n + 1),
    autofocus: init.to.length > 0 ? "start" : false,
  });

  const touch = () => setChanges((n) => n + 1);

  const outgoing = useCallback((): Outgoing => {
    const html = editor?.getHTML() ?? "";
    return {
      draft: draft.current,
      to: to.map(formatChip),
      cc: cc.map(formatChip),
      bcc: bcc.map(formatChip),
      subject,
      html,
      text: null,
      attachments: [
        ...uploads.filter((u) => u.id !== null).map((u) => ({ uploadId: u.id! })),
        ...forwarded.map((part) => ({ folderId: part.folderId, uid: part.uid, partId: part.partId })),
      ],
      replyTo: init.replyTo,
      forwardOf: init.forwardOf,
    };
  }, [editor, to, cc, bcc, subject, uploads, forwarded, init.replyTo, init.forwardOf]);

  const isEmpty = useCallback(() => {
    const text = htmlToText(editor?.getHTML() ?? "").replace(/^--\s*$[\s\S]*/m, "").trim();
    return to.length + cc.length + bcc.length === 0 && subject.trim() === "" && text === "" && uploads.length === 0;
  }, [editor, to, cc, bcc, subject, uploads]);

  const saveDraft = useCallback(async (): Promise<void> => {
    if (saving.current) await saving.current;
    const body = outgoing();
    const run = (async () => {
      setSaveState("saving");
      try {
        draft.current = await mailApi.saveDraft(mailboxId, { ...body, draft: draft.current });
        setSaveState("saved");
        onDraftSaved();
      } catch {
        setSaveState("error");
      }
    })();
    saving.current = run;
    await run;
    if (saving.current === run) saving.current = null;
  }, [mailboxId, outgoing, onDraftSaved]);

  // Autosave: a while after the last change, into Drafts (replaced in place by the server).
  useEffect(() => {
    if (changes === 0 || sending) return;
    const timer = window.setTimeout(() => {
      if (!isEmpty() && !uploads.some((u) => u.id === null && u.error === null)) void saveDraft();
    }, AUTOSAVE_MS);
    return () => window.clearTimeout(timer);
  }, [changes, sending, isEmpty, saveDraft, uploads]);

  function addFiles(files: FileList | File[]) {
    for (const file of Array.from(files)) {
      const key = nextKey.current++;
      const { promise, abort } = uploadAttachment(mailboxId, file, (fraction) =>
        setUploads((list) => list.map((u) => (u.key === key ? { ...u, progress: fraction } : u))),
      );
      setUploads((list) => [...list, { key, filename: file.name, size: file.size, progress: 0, id: null, error: null, abort }]);
      promise
        .then((upload) => {
          setUploads((list) => list.map((u) => (u.key === key ? { ...u, id: upload.id, progress: 1, abort: null } : u)));
          touch();
        })
        .catch((caught: unknown) => {
          if (caught instanceof DOMException && caught.name === "AbortError") return;
          const message = caught instanceof Error ? caught.message : String(caught);
          setUploads((list) => list.map((u) => (u.key === key ? { ...u, error: message, abort: null } : u)));
        });
    }
  }

  function removeUpload(key: number) {
    setUploads((list) => {
      list.find((u) => u.key === key)?.abort?.();
      return list.filter((u) => u.key !== key);
    });
    touch();
  }

  function problem(): string | null {
    const all = [...to, ...cc, ...bcc];
    if (all.length === 0) return "Add at least one recipient.";
    const bad = all.find((chip) => !chip.valid);
    if (bad) return `“${bad.address}” is not a valid email address.`;
    if (uploads.some((u) => u.id === null && u.error === null)) return "Wait for the attachments to finish uploading.";
    if (uploads.some((u) => u.error !== null)) return "Remove the attachments that could not be uploaded.";
    return null;
  }

  async function send(scheduledAt: Date | null) {
    const wrong = problem();
    if (wrong) {
      setError(wrong);
      return;
    }
    if (scheduledAt && scheduledAt.getTime() <= Date.now()) {
      setError("Choose a time in the future to schedule the message.");
      return;
    }
    setError(null);
    setSending(true);
    try {
      if (saving.current) await saving.current;
      const body = outgoing();
      const result = await mailApi.send(mailboxId, {
        ...body,
        ...(scheduledAt ? { scheduledAt: scheduledAt.toISOString() } : { undoSeconds: UNDO_SECONDS }),
      });
      onSent(result, snapshot(), scheduledAt !== null);
    } catch (caught) {
      setError(caught instanceof Error ? caught.message : String(caught));
      setSending(false);
    }
  }

  function snapshot(): ComposeInit {
    return {
      to,
      cc,
      bcc,
      subject,
      html: editor?.getHTML() ?? "",
      replyTo: init.replyTo,
      forwardOf: init.forwardOf,
      draft: null,
      forwarded,
      uploads: uploads.filter((u) => u.id !== null).map((u) => ({ id: u.id!, filename: u.filename, size: u.size })),
    };
  }

  async function close() {
    if (isEmpty()) {
      if (draft.current) await mailApi.act(mailboxId, [draft.current], "trash").catch(() => undefined);
      onClose("empty");
      return;
    }
    await saveDraft();
    onClose("saved");
  }

  async function discard() {
    uploads.forEach((u) => u.abort?.());
    if (saving.current) await saving.current;
    if (draft.current) await mailApi.act(mailboxId, [draft.current], "trash").catch(() => undefined);
    onClose("discarded");
  }

  // Escape closes (saving a draft) wherever the focus is, even before the editor has taken it;
  // a suggestion list or a modal dialog open over the page keeps it for itself.
  const closeRef = useRef(close);
  closeRef.current = close;
  useEffect(() => {
    function onEscape(event: globalThis.KeyboardEvent) {
      if (event.key !== "Escape") return;
      if (document.querySelector("[role=dialog][aria-modal=true]")) return;
      event.preventDefault();
      void closeRef.current();
    }
    document.addEventListener("keydown", onEscape);
    return () => document.removeEventListener("keydown", onEscape);
  }, []);

  function onKeyDown(event: KeyboardEvent) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      void send(null);
    }
  }

  function onDrop(event: DragEvent) {
    event.preventDefault();
    setDragging(false);
    if (event.dataTransfer.files.length > 0) addFiles(event.dataTransfer.files);
  }

  const title = init.forwardOf ? "Forward" : init.replyTo ? "Reply" : init.draft ? "Draft" : "New message";

  return (
    <section
      role="dialog"
      aria-modal="false"
      aria-labelledby={titleId}
      onKeyDown={onKeyDown}
      onDragOver={(event) => {
        if (event.dataTransfer.types.includes("Files")) {
          event.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={(event) => {
        if (!event.currentTarget.contains(event.relatedTarget as Node | null)) setDragging(false);
      }}
      onDrop={onDrop}
      className="fixed inset-0 z-50 flex flex-col bg-white shadow-2xl sm:inset-auto sm:right-4 sm:bottom-0 sm:h-[min(40rem,92vh)] sm:w-[38rem] sm:rounded-t-xl sm:ring-1 sm:ring-zinc-300 dark:bg-zinc-900 dark:sm:ring-zinc-700"
    >
      <header className="flex items-center gap-2 bg-zinc-100 px-3 py-2 sm:rounded-t-xl dark:bg-zinc-800">
        <h2 id={titleId} className="flex-1 truncate text-sm font-semibold text-zinc-900 dark:text-white">
          {subject.trim() || title}
        </h2>
        <span className="text-xs text-zinc-600 dark:text-zinc-400" role="status">
          {saveState === "saving" ? "Saving…" : saveState === "saved" ? "Draft saved" : saveState === "error" ? "Draft not saved" : ""}
        </span>
        <button
          type="button"
          onClick={() => void close()}
          aria-label="Close (saves a draft)"
          title="Close"
          className="rounded p-1 text-zinc-600 hover:bg-zinc-200 dark:text-zinc-300 dark:hover:bg-zinc-700"
        >
          <Icon name="close" className="size-4" />
        </button>
      </header>

      <div className="border-b border-zinc-200 px-3 py-1.5 text-sm text-zinc-600 dark:border-zinc-800 dark:text-zinc-400">
        From <span className="text-zinc-900 dark:text-zinc-100">{fromAddress}</span>
      </div>
      <div className="relative">
        <AddressField label="To" mailboxId={mailboxId} chips={to} onChange={(c) => { setTo(c); touch(); }} autoFocus={init.to.length === 0} />
        {!showCopies ? (
          <button
            type="button"
            onClick={() => setShowCopies(true)}
            className="absolute top-1.5 right-2 rounded px-1.5 py-0.5 text-sm text-zinc-700 hover:bg-zinc-100 dark:text-zinc-300 dark:hover:bg-zinc-800"
          >
            Cc Bcc
          </button>
        ) : null}
      </div>
      {showCopies ? (
        <>
          <AddressField label="Cc" mailboxId={mailboxId} chips={cc} onChange={(c) => { setCc(c); touch(); }} />
          <AddressField label="Bcc" mailboxId={mailboxId} chips={bcc} onChange={(c) => { setBcc(c); touch(); }} />
        </>
      ) : null}
      <div className="border-b border-zinc-200 px-3 dark:border-zinc-800">
        <label htmlFor={subjectId} className="sr-only">
          Subject
        </label>
        <input
          id={subjectId}
          value={subject}
          onChange={(event) => {
            setSubject(event.target.value);
            touch();
          }}
          placeholder="Subject"
          maxLength={998}
          className="w-full border-0 bg-transparent py-2 text-sm text-zinc-900 outline-none placeholder:text-zinc-500 dark:text-zinc-100 dark:placeholder:text-zinc-400"
        />
      </div>

      <Toolbar editor={editor} />
      <div className="mail-editor relative min-h-0 flex-1 overflow-y-auto text-zinc-900 dark:text-zinc-100">
        <EditorContent editor={editor} />
        {dragging ? (
          <div className="pointer-events-none absolute inset-2 flex items-center justify-center rounded-lg border-2 border-dashed border-indigo-500 bg-indigo-50/90 text-sm font-medium text-indigo-800 dark:bg-indigo-950/90 dark:text-indigo-100">
            Drop files to attach them
          </div>
        ) : null}
      </div>

      {uploads.length + forwarded.length > 0 ? (
        <ul className="flex max-h-32 flex-wrap gap-2 overflow-y-auto border-t border-zinc-200 px-3 py-2 dark:border-zinc-800" aria-label="Attachments">
          {forwarded.map((part) => (
            <li key={`${part.folderId}-${part.uid}-${part.partId}`} className="flex max-w-full items-center gap-2 rounded-md bg-zinc-100 px-2 py-1 text-xs dark:bg-zinc-800">
              <Icon name="paperclip" className="size-3.5" />
              <span className="truncate">{part.filename}</span>
              <span className="text-zinc-600 dark:text-zinc-400">{formatSize(part.size)}</span>
              <button type="button" aria-label={`Remove ${part.filename}`} className="px-1" onClick={() => { setForwarded((list) => list.filter((p) => p !== part)); touch(); }}>
                ×
              </button>
            </li>
          ))}
          {uploads.map((upload) => (
            <li
              key={upload.key}
              className={`flex max-w-full flex-col gap-1 rounded-md px-2 py-1 text-xs ${
                upload.error ? "bg-red-50 text-red-900 dark:bg-red-950/50 dark:text-red-100" : "bg-zinc-100 dark:bg-zinc-800"
              }`}
            >
              <span className="flex items-center gap-2">
                <Icon name="paperclip" className="size-3.5" />
                <span className="truncate">{upload.filename}</span>
                <span className="text-zinc-600 dark:text-zinc-400">{formatSize(upload.size)}</span>
                <button type="button" aria-label={`Remove ${upload.filename}`} className="px-1" onClick={() => removeUpload(upload.key)}>
                  ×
                </button>
              </span>
              {upload.error ? (
                <span role="alert">{upload.error}</span>
              ) : upload.id === null ? (
                <progress className="h-1.5 w-full accent-indigo-600" max={1} value={upload.progress} aria-label={`Uploading ${upload.filename}`} />
              ) : null}
            </li>
          ))}
        </ul>
      ) : null}

      {error ? (
        <p role="alert" className="border-t border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800 dark:border-red-900 dark:bg-red-950/50 dark:text-red-200">
          {error}
        </p>
      ) : null}

      {scheduleOpen ? (
        <div className="flex flex-wrap items-end gap-2 border-t border-zinc-200 px-3 py-2 dark:border-zinc-800">
          {quickSchedules().map((option) => (
            <Button key={option.label} size="sm" variant="secondary" onClick={() => void send(option.at)} disabled={sending}>
              {option.label}
            </Button>
          ))}
          <label className="text-sm text-zinc-800 dark:text-zinc-200">
            <span className="mb-1 block text-xs font-medium">Send at</span>
            <input
              type="datetime-local"
              value={scheduleAt}
              onChange={(event) => setScheduleAt(event.target.value)}
              className="rounded-md border border-zinc-300 bg-white px-2 py-1 text-sm text-zinc-900 dark:border-zinc-600 dark:bg-zinc-900 dark:text-zinc-100"
            />
          </label>
          <Button size="sm" onClick={() => void send(new Date(scheduleAt))} loading={sending}>
            Schedule send
          </Button>
        </div>
      ) : null}

      <footer className="flex items-center gap-2 border-t border-zinc-200 px-3 py-2 dark:border-zinc-800">
        <div className="inline-flex">
          <Button onClick={() => void send(null)} loading={sending && !scheduleOpen} className="rounded-r-none">
            Send
          </Button>
          <button
            type="button"
            aria-label="More send options"
            title="Schedule send"
            aria-expanded={scheduleOpen}
            onClick={() => setScheduleOpen((open) => !open)}
            className="inline-flex h-10 items-center rounded-r-lg border-l border-indigo-400 bg-indigo-600 px-2 text-white hover:bg-indigo-700 dark:bg-indigo-500 dark:hover:bg-indigo-400"
          >
            <Icon name="clock" className="size-4" />
          </button>
        </div>
        <input
          ref={fileInput}
          type="file"
          multiple
          className="sr-only"
          tabIndex={-1}
          aria-hidden="true"
          onChange={(event) => {
            if (event.target.files) addFiles(event.target.files);
            event.target.value = "";
          }}
        />
        <button
          type="button"
          onClick={() => fileInput.current?.click()}
          aria-label="Attach files"
          title="Attach files"
          className="rounded-full p-2 text-zinc-600 hover:bg-zinc-100 dark:text-zinc-300 dark:hover:bg-zinc-800"
        >
          <Icon name="paperclip" />
        </button>
        <span className="flex-1" />
        <button
          type="button"
          onClick={() => void discard()}
          aria-label="Discard draft"
          title="Discard draft"
          className="rounded-full p-2 text-zinc-600 hover:bg-zinc-100 dark:text-zinc-300 dark:hover:bg-zinc-800"
        >
          <Icon name="trash" />
        </button>
      </footer>
    </section>
  );
}

function Toolbar({ editor }: { editor: Editor | null }) {
  if (!editor) return null;
  const tool = (label: string, active: boolean, run: () => void, content: string | IconName) => (
    <button
      type="button"
      aria-label={label}
      title={label}
      aria-pressed={active}
      onMouseDown={(event) => event.preventDefault()}
      onClick={run}
      className={`min-w-8 shrink-0 rounded px-1.5 py-1 text-sm ${
        active ? "bg-zinc-200 text-zinc-950 dark:bg-zinc-700 dark:text-white" : "text-zinc-700 hover:bg-zinc-100 dark:text-zinc-300 dark:hover:bg-zinc-800"
      }`}
    >
      {content}
    </button>
  );
  const chain = () => editor.chain().focus();
  return (
    <div role="toolbar" aria-label="Formatting" className="flex shrink-0 items-center gap-0.5 overflow-x-auto border-b border-zinc-200 px-2 py-1 dark:border-zinc-800">
      {tool("Bold", editor.isActive("bold"), () => chain().toggleBold().run(), "B")}
      {tool("Italic", editor.isActive("italic"), () => chain().toggleItalic().run(), "I")}
      {tool("Underline", editor.isActive("underline"), () => chain().toggleUnderline().run(), "U")}
      {tool("Strikethrough", editor.isActive("strike"), () => chain().toggleStrike().run(), "S")}
      {tool("Bulleted list", editor.isActive("bulletList"), () => chain().toggleBulletList().run(), "• List")}
      {tool("Numbered list", editor.isActive("orderedList"), () => chain().toggleOrderedList().run(), "1. List")}
      {tool("Quote", editor.isActive("blockquote"), () => chain().toggleBlockquote().run(), "❝")}
      {tool(
        "Link",
        editor.isActive("link"),
        () => {
          const current = editor.getAttributes("link").href as string | undefined;
          const href = window.prompt("Link address", current ?? "https://");
          if (href === null) return;
          if (href.trim() === "") chain().unsetLink().run();
          else chain().extendMarkRange("link").setLink({ href: href.trim() }).run();
        },
        "Link",
      )}
      {tool("Clear formatting", false, () => chain().unsetAllMarks().clearNodes().run(), "Tx")}
    </div>
  );
}

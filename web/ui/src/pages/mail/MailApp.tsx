import { lazy, Suspense, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { Link, Navigate, useLocation, useNavigate, useParams, useSearchParams } from "react-router";
import type { Id } from "../../api/client";
import { mailboxesApi } from "../../api/mailboxes";
import {
  mailApi,
  type ConversationSummary,
  type Folder,
  type FolderCounts,
  type MailAction,
  type MailMailbox,
  type MessageDetail,
  type MessageRef,
  type SendResult,
  type Thread,
} from "../../api/mail";
import { Button } from "../../components/Button";
import { ConfirmDialog } from "../../components/ConfirmDialog";
import { Dialog } from "../../components/Dialog";
import { FullPageSpinner } from "../../components/FullPage";
import { Logo } from "../../components/Logo";
import { Spinner } from "../../components/Spinner";
import { ThemeToggle } from "../../components/ThemeToggle";
import { asApiError, useAsync } from "../../lib/useAsync";
import { LoadError } from "../dashboard/LoadError";
import { emptyCompose, type ComposeInit } from "./compose/types";
import { ConversationList, threadKey } from "./ConversationList";
import { ConversationView } from "./ConversationView";
import { FolderNav } from "./FolderNav";
import { folderLabel } from "./folders";
import { Icon, IconButton } from "./icons";
import {
  editableHtml,
  forwardSubject,
  quoteForForward,
  quoteForReply,
  replyRecipients,
  replySubject,
  signatureHtml,
  textToHtml,
} from "./lib/quote";
import { checkQuery } from "./lib/search";
import { keyLabel, SHORTCUTS, shortcutFor } from "./lib/shortcuts";
import { MailToastProvider, useMailToast } from "./MailToasts";
import type { ReplyKind } from "./MessageCard";
import { MoveMenu } from "./MoveMenu";

// The editor (TipTap, ProseMirror) loads when compose first opens: reading mail does not need it.
const Compose = lazy(() => import("./compose/Compose"));
const UNDO_SECONDS = 5;
const PAGE = 50;

/** /mail/*: the webmail. Paths: /mail/:mb/:folderId[/:threadId] and /mail/:mb/search[/:threadId]?q=… */
export default function MailApp() {
  return (
    <MailToastProvider>
      <MailRoot />
    </MailToastProvider>
  );
}

function MailRoot() {
  const params = useParams();
  const parts = (params["*"] ?? "").split("/").filter(Boolean);
  const mailboxes = useAsync(() => mailApi.mailboxes(), []);

  if (mailboxes.error) {
    return (
      <div className="mx-auto max-w-xl p-8">
        <LoadError error={mailboxes.error} reload={mailboxes.reload} />
      </div>
    );
  }
  if (!mailboxes.data) return <FullPageSpinner />;
  const list = mailboxes.data;
  if (list.length === 0) {
    return (
      <div className="mx-auto max-w-xl p-8 text-center">
        <h1 className="text-xl font-semibold">No mailbox to read</h1>
        <p className="mt-2 text-zinc-600 dark:text-zinc-400">
          Create a mailbox (or ask an admin to assign you one) to read and send mail here.
        </p>
        <Link to="/dashboard/mailboxes" className="mt-4 inline-block font-medium text-indigo-700 underline dark:text-indigo-300">
          Go to Mailboxes
        </Link>
      </div>
    );
  }
  const mailbox = list.find((m) => String(m.id) === parts[0]);
  if (!mailbox) {
    // The folder last open on this device, so its list loads beside the folders.
    const last = lastFolder();
    const back = last && list.some((m) => String(m.id) === last.split("/")[0]) ? last : String(list[0]!.id);
    return <Navigate to={`/mail/${back}`} replace />;
  }
  return (
    <MailShell
      key={String(mailbox.id)}
      mailboxes={list}
      mailbox={mailbox}
      folderPart={parts[1] ?? null}
      threadId={parts[2] ?? null}
      onUnread={(unread) =>
        mailboxes.setData((current) => (current ?? []).map((m) => (m.id === mailbox.id ? { ...m, unread } : m)))
      }
    />
  );
}

const LAST_FOLDER = "mailmark.mail.last";

function lastFolder(): string | null {
  try {
    const value = window.localStorage.getItem(LAST_FOLDER);
    return value && /^\d+\/\d+$/.test(value) ? value : null;
  } catch {
    return null;
  }
}

function rememberFolder(path: string): void {
  try {
    window.localStorage.setItem(LAST_FOLDER, path);
  } catch {
    // Storage refused (private mode): /mail opens the first mailbox's Inbox instead.
  }
}

type ListState = {
  key: string;
  items: ConversationSummary[];
  nextCursor: string | null;
  total: number;
  loading: boolean;
  loadingMore: boolean;
  error: ReturnType<typeof asApiError> | null;
};

function MailShell({
  mailboxes,
  mailbox,
  folderPart,
  threadId,
  onUnread,
}: {
  mailboxes: MailMailbox[];
  mailbox: MailMailbox;
  folderPart: string | null;
  threadId: string | null;
  onUnread: (unread: number) => void;
}) {
  const mb = mailbox.id;
  const navigate = useNavigate();
  const location = useLocation();
  const [searchParams] = useSearchParams();
  const toast = useMailToast();
  const searching = folderPart === "search";
  const query = searching ? (searchParams.get("q") ?? "") : "";
  const [folders, setFolders] = useState<Folder[] | null>(null);
  const [foldersError, setFoldersError] = useState<ReturnType<typeof asApiError> | null>(null);
  const [list, setList] = useState<ListState>({ key: "", items: [], nextCursor: null, total: 0, loading: true, loadingMore: false, error: null });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [focusIndex, setFocusIndex] = useState(0);
  const [openThread, setOpenThread] = useState<Thread | null>(null);
  const [compose, setCompose] = useState<{ key: number; init: ComposeInit } | null>(null);
  const [menuOpen, setMenuOpen] = useState(false);
  const [helpOpen, setHelpOpen] = useState(false);
  const [emptying, setEmptying] = useState(false);
  const [renaming, setRenaming] = useState<Folder | null>(null);
  const [deleting, setDeleting] = useState<Folder | null>(null);
  const [searchText, setSearchText] = useState(query);
  const [searchError, setSearchError] = useState<string | null>(null);
  const signature = useRef<string>("");
  const searchInput = useRef<HTMLInputElement>(null);
  const listPane = useRef<HTMLDivElement>(null);
  const composeKey = useRef(1);

  const folder = useMemo(
    () => (folders && !searching ? (folders.find((f) => String(f.id) === folderPart) ?? null) : null),
    [folders, folderPart, searching],
  );
  const listKey = `${String(mb)}|${searching ? `search:${query}` : (folderPart ?? "")}`;
  const base = searching ? `/mail/${String(mb)}/search` : `/mail/${String(mb)}/${folderPart ?? ""}`;
  const suffix = searching ? `?${new URLSearchParams({ q: query })}` : "";

  useEffect(() => setSearchText(query), [query]);
  useEffect(() => setMenuOpen(false), [location.pathname, location.search]);

  // Folders, then the Inbox when the path names no folder.
  const loadFolders = useCallback(async () => {
    try {
      const found = await mailApi.folders(mb);
      setFolders(found);
      setFoldersError(null);
      const inbox = found.find((f) => f.role === "inbox");
      if (inbox) onUnread(inbox.unread);
      return found;
    } catch (caught) {
      setFoldersError(asApiError(caught));
      return null;
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [mb]);

  useEffect(() => {
    void loadFolders();
  }, [loadFolders]);

  useEffect(() => {
    if (!folders) return;
    if (folderPart === null || (!searching && !folders.some((f) => String(f.id) === folderPart))) {
      const inbox = folders.find((f) => f.role === "inbox") ?? folders[0];
      if (inbox) navigate(`/mail/${String(mb)}/${String(inbox.id)}`, { replace: true });
    }
  }, [folders, folderPart, searching, mb, navigate]);

  useEffect(() => {
    if (folder) rememberFolder(`${String(mb)}/${String(folder.id)}`);
  }, [mb, folder]);

  // The mailbox's signature, inserted into new messages (editable there).
  useEffect(() => {
    mailboxesApi
      .get(mailbox.address)
      .then((found) => {
        signature.current = signatureHtml(found.signature ?? "", found.signatureFormat ?? "text");
      })
      .catch(() => {
        signature.current = "";
      });
  }, [mailbox.address]);

  // The list: first page whenever the folder or the search changes.
  const loadList = useCallback(
    async (cursor: string | null, signal?: AbortSignal) => {
      if (searching) return mailApi.search(mb, query, cursor, PAGE, signal);
      return mailApi.conversations(mb, folderPart!, cursor, PAGE, signal);
    },
    [mb, searching, query, folderPart],
  );

  // A folder id from the path is asked for at once, beside the folders (not after them).
  const listReady = searching ? query.trim() !== "" : folder !== null || (folders === null && /^\d+$/.test(folderPart ?? ""));

  useEffect(() => {
    if (!listReady) return;
    const controller = new AbortController();
    setList((current) => ({
      key: listKey,
      items: current.key === listKey ? current.items : [],
      nextCursor: null,
      total: current.key === listKey ? current.total : 0,
      loading: true,
      loadingMore: false,
      error: null,
    }));
    setSelected(new Set());
    setFocusIndex(0);
    loadList(null, controller.signal)
      .then((page) =>
        setList({ key: listKey, items: page.items, nextCursor: page.nextCursor, total: page.total, loading: false, loadingMore: false, error: null }),
      )
      .catch((caught: unknown) => {
        if (caught instanceof DOMException && caught.name === "AbortError") return;
        setList((current) => ({ ...current, loading: false, error: asApiError(caught) }));
      });
    return () => controller.abort();
  }, [listKey, listReady, loadList]);

  const loadMore = useCallback(() => {
    setList((current) => {
      if (current.loadingMore || !current.nextCursor || current.key !== listKey) return current;
      const cursor = current.nextCursor;
      loadList(cursor)
        .then((page) =>
          setList((now) =>
            now.key !== listKey
              ? now
              : {
                  ...now,
                  items: [...now.items, ...page.items.filter((item) => !now.items.some((old) => threadKey(old) === threadKey(item)))],
                  nextCursor: page.nextCursor,
                  total: page.total,
                  loadingMore: false,
                },
          ),
        )
        .catch((caught: unknown) => {
          setList((now) => ({ ...now, loadingMore: false }));
          toast.show(asApiError(caught).message, { tone: "error" });
        });
      return { ...current, loadingMore: true };
    });
  }, [listKey, loadList, toast]);

  /** New mail or changes from elsewhere (IMAP): the first page again, merged into what is loaded. */
  const refreshFirstPage = useCallback(async () => {
    if (!listReady) return;
    try {
      const page = await loadList(null);
      setList((current) => {
        if (current.key !== listKey) return current;
        const fresh = new Set(page.items.map(threadKey));
        const oldest = page.items[page.items.length - 1]?.date ?? "";
        const rest = page.nextCursor
          ? current.items.filter((item) => !fresh.has(threadKey(item)) && item.date < oldest)
          : [];
        return { ...current, items: [...page.items, ...rest], total: page.total, nextCursor: current.nextCursor ?? page.nextCursor };
      });
    } catch {
      // The next event or a reload tries again; the list on screen stays.
    }
  }, [listReady, loadList, listKey]);

  // Live counts over server-sent events (the folder signals that wake IMAP IDLE).
  const refreshRef = useRef(refreshFirstPage);
  refreshRef.current = refreshFirstPage;
  const folderRef = useRef(folderPart);
  folderRef.current = folderPart;
  const searchingRef = useRef(searching);
  searchingRef.current = searching;
  const foldersRef = useRef(folders);
  foldersRef.current = folders;
  useEffect(() => {
    if (typeof EventSource === "undefined") return;
    const source = new EventSource(mailApi.eventsUrl(mb));
    let timer: number | undefined;
    // Changes made before the stream was (re)connected sent it no event: read the counts again,
    // and the list when the open folder's changed.
    source.addEventListener("open", () => {
      mailApi.folders(mb).then(
        (found) => {
          const known = foldersRef.current;
          if (!known) return; // the first load is still on its way and will bring these
          const here = (list: Folder[]) => list.find((f) => String(f.id) === folderRef.current);
          const before = here(known);
          const after = here(found);
          foldersRef.current = found;
          setFolders(found);
          const inbox = found.find((f) => f.role === "inbox");
          if (inbox) onUnread(inbox.unread);
          if (searchingRef.current || before?.total !== after?.total || before?.unread !== after?.unread) {
            void refreshRef.current();
          }
        },
        () => undefined,
      );
    });
    source.addEventListener("folders", (event) => {
      let counts: FolderCounts[] = [];
      try {
        counts = (JSON.parse((event as MessageEvent<string>).data) as { folders: FolderCounts[] }).folders ?? [];
      } catch {
        return;
      }
      const current = foldersRef.current;
      if (!current) return;
      let changedHere = searchingRef.current;
      const byId = new Map(counts.map((c) => [String(c.id), c]));
      const unknown = counts.some((c) => !current.some((f) => String(f.id) === String(c.id)));
      const updated = current.map((f) => {
        const count = byId.get(String(f.id));
        if (!count) return f;
        if (String(f.id) === folderRef.current && (count.total !== f.total || count.unread !== f.unread)) changedHere = true;
        if (f.role === "inbox") onUnread(count.unread);
        return { ...f, total: count.total, unread: count.unread };
      });
      foldersRef.current = updated;
      setFolders(updated);
      window.clearTimeout(timer);
      timer = window.setTimeout(() => {
        if (unknown) void loadFolders();
        if (changedHere) void refreshRef.current();
      }, 250);
    });
    return () => {
      window.clearTimeout(timer);
      source.close();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [mb, loadFolders]);

  const items = list.key === listKey ? list.items : [];
  const openIndex = threadId ? items.findIndex((item) => threadKey(item) === threadId) : -1;
  const linkFor = useCallback((c: ConversationSummary) => `${base}/${encodeURIComponent(threadKey(c))}${suffix}`, [base, suffix]);
  const closeThread = useCallback(() => navigate(`${base}${suffix}`), [navigate, base, suffix]);

  useEffect(() => {
    if (openIndex >= 0) setFocusIndex(openIndex);
  }, [openIndex]);
  useEffect(() => {
    if (!threadId) setOpenThread(null);
  }, [threadId]);

  // The messages an action applies to: a conversation's messages in this folder (all of them when searching).
  function refsOf(conversation: ConversationSummary): MessageRef[] {
    return conversation.messages.length > 0 ? conversation.messages : [conversation.latest];
  }

  function currentConversation(): ConversationSummary | null {
    if (!threadId) return null;
    const found = items.find((item) => threadKey(item) === threadId);
    if (found) return found;
    if (!openThread || String(openThread.threadId) !== threadId) return null;
    const here = openThread.messages.filter((m) => searching || String(m.folderId) === folderPart);
    const messages = (here.length > 0 ? here : openThread.messages).map((m) => ({ folderId: m.folderId, uid: m.uid }));
    const latest = messages[messages.length - 1]!;
    return {
      threadId: openThread.threadId,
      subject: openThread.subject,
      snippet: "",
      participants: [],
      count: messages.length,
      unread: false,
      starred: openThread.messages.some((m) => m.starred),
      hasAttachments: false,
      date: "",
      latest,
      messages,
    };
  }

  const MOVES: MailAction[] = ["archive", "move", "trash", "delete", "spam", "notspam"];
  const DONE: Partial<Record<MailAction, string>> = {
    archive: "Archived",
    trash: "Moved to Trash",
    spam: "Reported as spam",
    notspam: "Moved to the Inbox",
    delete: "Deleted for good",
    move: "Moved",
  };

  /** An action on conversations: shown at once, undone with an error toast if the server refuses. */
  async function act(targets: ConversationSummary[], action: MailAction, targetFolder?: Id) {
    if (targets.length === 0) return;
    const snapshot = list;
    const keys = new Set(targets.map(threadKey));
    const refs = action === "star" ? targets.map((t) => t.latest) : targets.flatMap(refsOf);
    const removes = MOVES.includes(action);
    setList((current) => ({
      ...current,
      items: removes
        ? current.items.filter((item) => !keys.has(threadKey(item)))
        : current.items.map((item) =>
            keys.has(threadKey(item))
              ? {
                  ...item,
                  unread: action === "unread" ? true : action === "read" ? false : item.unread,
                  starred: action === "star" ? true : action === "unstar" ? false : item.starred,
                }
              : item,
          ),
      total: removes ? Math.max(0, current.total - targets.length) : current.total,
    }));
    setSelected((current) => (removes ? new Set([...current].filter((key) => !keys.has(key))) : current));
    if (removes && threadId && keys.has(threadId)) {
      const next = items[openIndex + 1] ?? items[openIndex - 1];
      if (next && !keys.has(threadKey(next))) navigate(linkFor(next));
      else closeThread();
    }
    if (action === "unread" && threadId && keys.has(threadId)) closeThread();
    try {
      const result = await mailApi.act(mb, refs, action, targetFolder);
      if (removes) {
        const where = action === "move" ? folders?.find((f) => String(f.id) === String(targetFolder)) : null;
        const label = where ? `Moved to ${folderLabel(where)}` : DONE[action];
        const count = targets.length === 1 ? "Conversation" : `${targets.length} conversations`;
        toast.show(`${count}: ${label?.toLowerCase()}.`, {
          action:
            action !== "delete" && result.moved.length > 0
              ? { label: "Undo", run: () => void undoMove(result.moved) }
              : undefined,
        });
      }
    } catch (caught) {
      setList((current) => (current.key === snapshot.key ? snapshot : current));
      toast.show(`${asApiError(caught).message} Nothing was changed.`, { tone: "error" });
    }
  }

  async function undoMove(moved: { from: MessageRef; to: MessageRef }[]) {
    const byFolder = new Map<string, { folderId: Id; refs: MessageRef[] }>();
    for (const { from, to } of moved) {
      const key = String(from.folderId);
      if (!byFolder.has(key)) byFolder.set(key, { folderId: from.folderId, refs: [] });
      byFolder.get(key)!.refs.push(to);
    }
    try {
      for (const { folderId, refs } of byFolder.values()) await mailApi.act(mb, refs, "move", folderId);
      toast.show("Undone.");
      void refreshFirstPage();
    } catch (caught) {
      toast.show(asApiError(caught).message, { tone: "error" });
    }
  }

  function targetsForShortcut(): ConversationSummary[] {
    const open = currentConversation();
    if (open) return [open];
    if (selected.size > 0) return items.filter((item) => selected.has(threadKey(item)));
    const focused = items[focusIndex];
    return focused ? [focused] : [];
  }

  function toggleSelect(conversation: ConversationSummary) {
    const key = threadKey(conversation);
    setSelected((current) => {
      const next = new Set(current);
      if (next.has(key)) next.delete(key);
      else next.add(key);
      return next;
    });
  }

  function toggleStar(conversation: ConversationSummary) {
    void act([conversation], conversation.starred ? "unstar" : "star");
  }

  // Compose: new, reply, reply all, forward, a draft, an undone send.
  function openCompose(init: ComposeInit) {
    setCompose({ key: composeKey.current++, init });
  }

  function newMessage() {
    openCompose(emptyCompose(signature.current ? `<p></p>${signature.current}` : ""));
  }

  function reply(kind: ReplyKind, message: MessageDetail) {
    const sig = signature.current;
    if (kind === "forward") {
      openCompose({
        ...emptyCompose(`<p></p>${sig}${quoteForForward(message)}`),
        subject: forwardSubject(message.subject),
        forwardOf: { folderId: message.folderId, uid: message.uid },
        forwarded: message.attachments
          .filter((part) => !part.inline)
          .map((part) => ({ folderId: message.folderId, uid: message.uid, partId: part.partId, filename: part.filename, size: part.size })),
      });
      return;
    }
    const { to, cc } = replyRecipients(message, mailbox.address, kind === "replyAll");
    openCompose({
      ...emptyCompose(`<p></p>${sig}${quoteForReply(message)}`),
      to,
      cc,
      subject: replySubject(message.subject),
      replyTo: { folderId: message.folderId, uid: message.uid },
    });
  }

  async function editDraft(message: MessageDetail) {
    let html = "";
    if (message.hasHtml && message.htmlUrl) {
      try {
        const response = await fetch(message.htmlUrl, { credentials: "same-origin" });
        html = editableHtml(await response.text());
      } catch {
        html = "";
      }
    }
    if (!html && message.text) html = textToHtml(message.text);
    openCompose({
      to: message.to,
      cc: message.cc,
      bcc: message.bcc,
      subject: message.subject,
      html,
      replyTo: null,
      forwardOf: null,
      draft: { folderId: message.folderId, uid: message.uid },
      forwarded: message.attachments.map((part) => ({ folderId: message.folderId, uid: message.uid, partId: part.partId, filename: part.filename, size: part.size })),
    });
  }

  async function cancelOutbox(uid: number, snapshot: ComposeInit | null) {
    try {
      const { draft } = await mailApi.cancelOutbox(mb, uid);
      if (snapshot) {
        openCompose({ ...snapshot, draft });
        toast.show("Sending undone.");
      } else {
        toast.show("Sending cancelled: the message is back in Drafts.");
        closeThread();
      }
      void loadFolders();
      void refreshFirstPage();
    } catch (caught) {
      const error = asApiError(caught);
      toast.show(error.status === 409 ? "Too late: the message is already on its way." : error.message, { tone: "error" });
    }
  }

  function onSent(result: SendResult, snapshot: ComposeInit, scheduled: boolean) {
    setCompose(null);
    const outbox = result.outbox;
    if (scheduled) {
      const when = result.sendAt ? new Date(result.sendAt).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "later";
      toast.show(`Scheduled for ${when}. It waits in the Outbox.`, {
        duration: 8000,
        action: outbox ? { label: "Undo", run: () => void cancelOutbox(outbox.uid, snapshot) } : undefined,
      });
    } else {
      toast.show("Message sent.", {
        duration: UNDO_SECONDS * 1000,
        action: outbox ? { label: "Undo", run: () => void cancelOutbox(outbox.uid, snapshot) } : undefined,
      });
    }
    void loadFolders();
  }

  // Keyboard shortcuts (Gmail's letters), unless typing or a dialog is open. One listener calls
  // the handler of the latest commit, set in a layout effect: a key pressed right after the screen
  // changed acts on what is shown, not on the state of a render before.
  const shortcutHandler = useRef<(event: KeyboardEvent) => void>(() => undefined);
  useEffect(() => {
    const onKeyDown = (event: KeyboardEvent) => shortcutHandler.current(event);
    document.addEventListener("keydown", onKeyDown);
    return () => document.removeEventListener("keydown", onKeyDown);
  }, []);
  useLayoutEffect(() => {
    shortcutHandler.current = function onKeyDown(event: KeyboardEvent) {
      if (event.defaultPrevented) return;
      const action = shortcutFor(event);
      if (!action) return;
      if (compose && action !== "help") return;
      if (document.querySelector("[role=dialog][aria-modal=true]")) return;
      const focusRow = (index: number) => {
        setFocusIndex(index);
        listPane.current?.querySelector<HTMLElement>(`[data-row="${index}"]`)?.focus();
      };
      const open = currentConversation();
      // Only the conversation on screen: right after j/k the previous one may still be in state.
      const shown = openThread && String(openThread.threadId) === threadId ? openThread : null;
      const lastMessage = shown?.messages[shown.messages.length - 1];
      switch (action) {
        case "next":
        case "previous": {
          const step = action === "next" ? 1 : -1;
          if (threadId) {
            const next = items[openIndex + step];
            if (next) navigate(linkFor(next));
          } else if (items.length > 0) {
            focusRow(Math.min(items.length - 1, Math.max(0, focusIndex + step)));
          }
          break;
        }
        case "open":
          if (!threadId && items[focusIndex]) {
            if (event.key === "Enter" && (event.target as HTMLElement).closest?.("a, button")) return;
            navigate(linkFor(items[focusIndex]!));
          } else return;
          break;
        case "select":
          if (items[focusIndex]) toggleSelect(items[focusIndex]!);
          break;
        case "compose":
          newMessage();
          break;
        case "reply":
        case "replyAll":
        case "forward":
          if (!lastMessage) return;
          reply(action, lastMessage);
          break;
        case "archive":
          void act(targetsForShortcut(), "archive");
          break;
        case "trash":
          void act(targetsForShortcut(), folder?.role === "trash" ? "delete" : "trash");
          break;
        case "spam":
          void act(targetsForShortcut(), folder?.role === "junk" ? "notspam" : "spam");
          break;
        case "star": {
          const targets = targetsForShortcut();
          if (targets.length === 0) return;
          const starred = open ? shown?.messages.some((m) => m.starred) : targets.every((t) => t.starred);
          void act(targets, starred ? "unstar" : "star");
          if (open && shown) {
            setOpenThread({
              ...shown,
              messages: shown.messages.map((m, i) =>
                starred ? { ...m, starred: false } : i === shown.messages.length - 1 ? { ...m, starred: true } : m,
              ),
            });
          }
          break;
        }
        case "markUnread":
          void act(targetsForShortcut(), "unread");
          break;
        case "markRead":
          void act(targetsForShortcut(), "read");
          break;
        case "search":
          searchInput.current?.focus();
          searchInput.current?.select();
          break;
        case "help":
          setHelpOpen(true);
          break;
        case "close":
          if (threadId) closeThread();
          else if (selected.size > 0) setSelected(new Set());
          else return;
          break;
      }
      event.preventDefault();
    };
  });

  function submitSearch(event: FormEvent) {
    event.preventDefault();
    const q = searchText.trim();
    if (q === "") {
      if (searching) navigate(`/mail/${String(mb)}`);
      return;
    }
    const problem = checkQuery(q);
    setSearchError(problem);
    if (problem) return;
    navigate(`/mail/${String(mb)}/search?${new URLSearchParams({ q })}`);
    searchInput.current?.blur();
  }

  const onThreadLoaded = useCallback(
    (thread: Thread) => {
      setOpenThread(thread);
      const unseen = thread.messages.filter((m) => !m.seen).map((m) => ({ folderId: m.folderId, uid: m.uid }));
      if (unseen.length === 0) return;
      const key = String(thread.threadId);
      setList((current) => ({
        ...current,
        items: current.items.map((item) => (threadKey(item) === key ? { ...item, unread: false } : item)),
      }));
      mailApi.act(mb, unseen, "read").catch((caught: unknown) => {
        setList((current) => ({
          ...current,
          items: current.items.map((item) => (threadKey(item) === key ? { ...item, unread: true } : item)),
        }));
        toast.show(asApiError(caught).message, { tone: "error" });
      });
    },
    [mb, toast],
  );

  function starMessage(message: MessageDetail) {
    const action: MailAction = message.starred ? "unstar" : "star";
    mailApi.act(mb, [{ folderId: message.folderId, uid: message.uid }], action).then(
      () => {
        if (!threadId) return;
        setList((current) => ({
          ...current,
          items: current.items.map((item) =>
            threadKey(item) === threadId
              ? { ...item, starred: action === "star" ? true : (openThread?.messages ?? []).some((m) => m.starred && !(m.uid === message.uid && m.folderId === message.folderId)) }
              : item,
          ),
        }));
      },
      (caught: unknown) => toast.show(asApiError(caught).message, { tone: "error" }),
    );
  }

  if (foldersError) {
    return (
      <div className="mx-auto max-w-xl p-8">
        <LoadError error={foldersError} reload={loadFolders} />
      </div>
    );
  }
  if (!folders) return <FullPageSpinner />;

  const selectedItems = items.filter((item) => selected.has(threadKey(item)));
  const allSelected = items.length > 0 && selectedItems.length === items.length;
  const emptiable = folder?.role === "trash" || folder?.role === "junk";
  const heading = searching ? `Search: ${query}` : folder ? folderLabel(folder, true) : "";

  return (
    <div className="flex h-dvh flex-col bg-zinc-50 dark:bg-zinc-950">
      <a
        href="#mail-list"
        className="sr-only z-50 rounded-md bg-white px-3 py-2 text-sm font-medium text-zinc-900 focus:not-sr-only focus:fixed focus:top-2 focus:left-2 dark:bg-zinc-900 dark:text-white"
      >
        Skip to messages
      </a>
      <header className="flex h-14 shrink-0 items-center gap-2 border-b border-zinc-200 bg-white px-2 sm:px-3 dark:border-zinc-800 dark:bg-zinc-900">
        <IconButton icon={menuOpen ? "close" : "menu"} label="Folders" onClick={() => setMenuOpen((open) => !open)} className="lg:hidden" pressed={menuOpen} />
        <Link to="/dashboard" className="hidden shrink-0 rounded-md sm:block lg:w-52" aria-label="Mailmark dashboard">
          <Logo />
        </Link>
        <form role="search" onSubmit={submitSearch} className="relative min-w-0 flex-1 lg:max-w-2xl">
          <label htmlFor="mail-search" className="sr-only">
            Search mail
          </label>
          <span className="pointer-events-none absolute inset-y-0 left-3 flex items-center text-zinc-500 dark:text-zinc-400">
            <Icon name="search" className="size-4" />
          </span>
          <input
            ref={searchInput}
            id="mail-search"
            type="search"
            value={searchText}
            onChange={(event) => {
              setSearchText(event.target.value);
              setSearchError(null);
            }}
            onKeyDown={(event) => {
              if (event.key === "Escape") event.currentTarget.blur();
            }}
            placeholder="Search mail"
            aria-describedby={searchError ? "mail-search-error" : undefined}
            aria-invalid={searchError ? true : undefined}
            className="h-10 w-full rounded-full border-0 bg-zinc-100 pr-4 pl-9 text-sm text-zinc-900 placeholder:text-zinc-500 focus:bg-white focus:ring-2 focus:ring-indigo-600 focus:outline-none dark:bg-zinc-800 dark:text-zinc-100 dark:placeholder:text-zinc-400 dark:focus:bg-zinc-900"
          />
          {searchError ? (
            <p id="mail-search-error" role="alert" className="absolute top-full left-0 z-40 mt-1 rounded-md bg-red-700 px-3 py-1.5 text-sm text-white shadow">
              {searchError}
            </p>
          ) : null}
        </form>
        <span className="hidden flex-1 lg:block" />
        <span className="hidden sm:block">
          <IconButton icon="keyboard" label="Keyboard shortcuts" onClick={() => setHelpOpen(true)} />
        </span>
        <span className="hidden md:block">
          <ThemeToggle />
        </span>
        <Link
          to="/dashboard"
          className="hidden rounded-lg px-3 py-2 text-sm font-medium text-zinc-700 hover:bg-zinc-100 md:block dark:text-zinc-300 dark:hover:bg-zinc-800"
        >
          Dashboard
        </Link>
      </header>

      <div className="relative flex min-h-0 flex-1">
        {menuOpen ? <div className="fixed inset-0 z-30 bg-zinc-950/40 lg:hidden" aria-hidden="true" onClick={() => setMenuOpen(false)} /> : null}
        <aside
          className={`${menuOpen ? "fixed inset-y-0 left-0 z-40 flex w-72 shadow-xl" : "hidden"} shrink-0 flex-col bg-zinc-50 lg:static lg:flex lg:w-60 lg:shadow-none dark:bg-zinc-950`}
          aria-label="Mailbox"
        >
          <FolderNav
            mailboxes={mailboxes}
            mailboxId={String(mb)}
            onMailbox={(id) => navigate(`/mail/${id}`)}
            folders={folders}
            currentFolderId={searching ? null : folderPart}
            onCompose={() => {
              setMenuOpen(false);
              newMessage();
            }}
            onFoldersChanged={(deleted) => {
              void loadFolders();
              if (deleted !== undefined && String(deleted) === folderPart) navigate(`/mail/${String(mb)}`);
            }}
            linkFor={(f) => `/mail/${String(mb)}/${String(f.id)}`}
            renaming={renaming}
            onRenaming={setRenaming}
            deleting={deleting}
            onDeleting={setDeleting}
          />
          <div className="border-t border-zinc-200 p-3 md:hidden dark:border-zinc-800">
            <ThemeToggle />
            <Link to="/dashboard" className="mt-2 block text-sm font-medium text-indigo-700 dark:text-indigo-300">
              Dashboard
            </Link>
          </div>
        </aside>

        <section
          ref={listPane}
          id="mail-list"
          aria-label={heading || "Conversations"}
          className={`${threadId ? "hidden lg:flex" : "flex"} min-h-0 w-full min-w-0 flex-col border-zinc-200 bg-white lg:w-[26rem] lg:shrink-0 lg:border-r xl:w-[30rem] dark:border-zinc-800 dark:bg-zinc-900`}
        >
          <div className="flex items-center gap-1 border-b border-zinc-200 px-1 py-1 dark:border-zinc-800">
            <label className="flex size-9 cursor-pointer items-center justify-center rounded-full hover:bg-zinc-200/70 dark:hover:bg-zinc-700/70">
              <input
                type="checkbox"
                className="size-4 accent-indigo-600"
                aria-label="Select all conversations"
                checked={allSelected}
                ref={(node) => {
                  if (node) node.indeterminate = selectedItems.length > 0 && !allSelected;
                }}
                onChange={() => setSelected(allSelected ? new Set() : new Set(items.map(threadKey)))}
                disabled={items.length === 0}
              />
            </label>
            {selectedItems.length > 0 ? (
              <div className="flex min-w-0 flex-1 flex-wrap items-center" role="toolbar" aria-label="Selected conversations">
                <IconButton icon="archive" label="Archive" onClick={() => void act(selectedItems, "archive")} disabled={folder?.role === "archive"} />
                {folder?.role === "junk" ? (
                  <IconButton icon="spamOff" label="Not spam" onClick={() => void act(selectedItems, "notspam")} />
                ) : (
                  <IconButton icon="junk" label="Report spam" onClick={() => void act(selectedItems, "spam")} />
                )}
                <IconButton
                  icon="trash"
                  label={folder?.role === "trash" ? "Delete for good" : "Delete"}
                  onClick={() => void act(selectedItems, folder?.role === "trash" ? "delete" : "trash")}
                />
                <IconButton icon="mailRead" label="Mark as read" onClick={() => void act(selectedItems, "read")} />
                <IconButton icon="mailUnread" label="Mark as unread" onClick={() => void act(selectedItems, "unread")} />
                <IconButton
                  icon="star"
                  label={selectedItems.every((item) => item.starred) ? "Unstar" : "Star"}
                  onClick={() => void act(selectedItems, selectedItems.every((item) => item.starred) ? "unstar" : "star")}
                />
                <MoveMenu folders={folders} current={folder} onMove={(target) => void act(selectedItems, "move", target)} />
                <span className="ml-1 text-xs text-zinc-600 dark:text-zinc-400">{selectedItems.length} selected</span>
              </div>
            ) : (
              <div className="flex min-w-0 flex-1 items-center gap-1">
                <IconButton icon="refresh" label="Refresh" onClick={() => void refreshFirstPage()} />
                <h1 className="min-w-0 flex-1 truncate px-1 text-sm font-semibold text-zinc-900 dark:text-white">{heading}</h1>
                {folder && folder.role === null ? (
                  <>
                    <Button size="sm" variant="ghost" onClick={() => setRenaming(folder)} aria-label={`Rename ${folder.name}`}>
                      Rename
                    </Button>
                    <Button size="sm" variant="ghost" onClick={() => setDeleting(folder)} aria-label={`Delete ${folder.name}`}>
                      Delete
                    </Button>
                  </>
                ) : null}
                {emptiable && items.length > 0 ? (
                  <Button size="sm" variant="ghost" onClick={() => setEmptying(true)}>
                    Empty {folderLabel(folder!)}
                  </Button>
                ) : null}
                <span className="shrink-0 px-2 text-xs text-zinc-600 tabular-nums dark:text-zinc-400">
                  {list.total > 0 ? `${items.length.toLocaleString()} of ${list.total.toLocaleString()}` : ""}
                </span>
              </div>
            )}
          </div>
          <div className="min-h-0 flex-1 overflow-y-auto">
            {list.error && items.length === 0 ? (
              <div className="p-4">
                <LoadError error={list.error} reload={() => void refreshFirstPage()} />
              </div>
            ) : list.loading && items.length === 0 ? (
              <div className="flex justify-center p-10 text-zinc-500">
                <Spinner className="size-6" label="Loading conversations" />
              </div>
            ) : items.length === 0 ? (
              <EmptyList searching={searching} folder={folder} query={query} />
            ) : (
              <ConversationList
                items={items}
                folder={folder}
                openThreadId={threadId}
                linkFor={linkFor}
                selected={selected}
                onToggleSelect={toggleSelect}
                onToggleStar={toggleStar}
                focusIndex={focusIndex}
                onFocusIndex={setFocusIndex}
                loadingMore={list.loadingMore}
                hasMore={list.nextCursor !== null}
                onLoadMore={loadMore}
              />
            )}
          </div>
        </section>

        <section
          aria-label="Conversation"
          className={`${threadId ? "flex" : "hidden lg:flex"} min-h-0 min-w-0 flex-1 flex-col bg-white dark:bg-zinc-900`}
        >
          {threadId ? (
            <ConversationView
              key={threadId}
              mailboxId={mb}
              threadId={threadId}
              folder={folder}
              folders={folders}
              onLoaded={onThreadLoaded}
              onAction={(action, target) => {
                const open = currentConversation();
                if (open) void act([open], action, target);
              }}
              onStarMessage={starMessage}
              onReply={reply}
              onEditDraft={(message) => void editDraft(message)}
              onCancelOutbox={(message) => void cancelOutbox(message.uid, null)}
              onClose={closeThread}
              onPrevious={openIndex > 0 ? () => navigate(linkFor(items[openIndex - 1]!)) : null}
              onNext={openIndex >= 0 && openIndex < items.length - 1 ? () => navigate(linkFor(items[openIndex + 1]!)) : null}
            />
          ) : (
            <div className="flex flex-1 flex-col items-center justify-center gap-2 p-8 text-center text-sm text-zinc-600 dark:text-zinc-400">
              <Icon name="inbox" className="size-10 opacity-50" />
              <p>Select a conversation to read it.</p>
              <p>
                Press <kbd className="rounded bg-zinc-100 px-1.5 py-0.5 font-mono text-xs dark:bg-zinc-800">?</kbd> for keyboard shortcuts.
              </p>
            </div>
          )}
        </section>
      </div>

      {!compose && !threadId ? (
        <button
          type="button"
          onClick={newMessage}
          aria-label="Compose"
          className="fixed right-4 bottom-4 z-20 flex size-14 items-center justify-center rounded-2xl bg-indigo-600 text-white shadow-lg hover:bg-indigo-700 lg:hidden dark:bg-indigo-500"
        >
          <Icon name="pencil" className="size-6" />
        </button>
      ) : null}
      {compose ? (
        <Suspense
          fallback={
            <div className="fixed right-4 bottom-4 z-50 rounded-lg bg-white p-4 shadow-lg ring-1 ring-zinc-200 dark:bg-zinc-900 dark:ring-zinc-700">
              <Spinner label="Opening the editor" />
            </div>
          }
        >
          <Compose
            key={compose.key}
            mailboxId={mb}
            fromAddress={mailbox.displayName ? `${mailbox.displayName} <${mailbox.address}>` : mailbox.address}
            init={compose.init}
            onClose={(outcome) => {
              setCompose(null);
              if (outcome === "saved") toast.show("Draft saved.");
              if (outcome === "discarded") toast.show("Draft discarded.");
            }}
            onSent={onSent}
            onDraftSaved={() => {
              if (folder?.role === "drafts") void refreshFirstPage();
            }}
          />
        </Suspense>
      ) : null}

      <ShortcutHelp open={helpOpen} onClose={() => setHelpOpen(false)} />
      <ConfirmDialog
        open={emptying}
        onClose={() => setEmptying(false)}
        title={`Empty ${folder ? folderLabel(folder) : ""}?`}
        description={`Every message in ${folder ? folderLabel(folder) : "the folder"} is deleted for good, here and in every mail app.`}
        actionLabel="Delete for good"
        onConfirm={async () => {
          if (!folder) return;
          await mailApi.emptyFolder(mb, folder.id);
          setList((current) => ({ ...current, items: [], total: 0, nextCursor: null }));
          void loadFolders();
        }}
      />
    </div>
  );
}

function EmptyList({ searching, folder, query }: { searching: boolean; folder: Folder | null; query: string }) {
  let text = "Nothing here.";
  if (searching) text = query ? `No conversations match “${query}”.` : "Type what to look for in the search box.";
  else if (folder?.role === "inbox") text = "Your Inbox is empty. New mail shows up here as it arrives.";
  else if (folder?.role === "outbox") text = "Nothing is waiting to be sent.";
  else if (folder?.role === "drafts") text = "No drafts.";
  else if (folder) text = `No conversations in ${folderLabel(folder)}.`;
  return <p className="p-10 text-center text-sm text-zinc-600 dark:text-zinc-400">{text}</p>;
}

const OPERATORS_HELP: [string, string][] = [
  ["from:anna", "Sender contains “anna”"],
  ["to:sales@acme.test", "Sent to an address"],
  ["subject:invoice", "Word in the subject"],
  ['"exact phrase"', "Words next to each other"],
  ["has:attachment", "Has attachments"],
  ["is:unread · is:read · is:starred", "By state"],
  ["in:Archive", "In one folder (Trash and Junk only this way)"],
  ["after:2026-01-31 before:2026-03-01", "By date"],
];

function ShortcutHelp({ open, onClose }: { open: boolean; onClose: () => void }) {
  return (
    <Dialog
      open={open}
      onClose={onClose}
      title="Keyboard shortcuts"
      size="lg"
      footer={
        <Button variant="secondary" onClick={onClose}>
          Close
        </Button>
      }
    >
      <div className="grid gap-6 sm:grid-cols-2">
        <table className="w-full text-sm">
          <caption className="pb-2 text-left font-medium text-zinc-900 dark:text-white">Keys</caption>
          <tbody>
            {SHORTCUTS.map((shortcut) => (
              <tr key={shortcut.action}>
                <td className="py-1 pr-3 whitespace-nowrap">
                  {shortcut.keys.map((key) => (
                    <kbd key={key} className="mr-1 rounded bg-zinc-100 px-1.5 py-0.5 font-mono text-xs ring-1 ring-zinc-300 dark:bg-zinc-800 dark:ring-zinc-600">
                      {keyLabel(key)}
                    </kbd>
                  ))}
                </td>
                <td className="py-1 text-zinc-700 dark:text-zinc-300">{shortcut.label}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <table className="w-full text-sm">
          <caption className="pb-2 text-left font-medium text-zinc-900 dark:text-white">Search</caption>
          <tbody>
            {OPERATORS_HELP.map(([operator, meaning]) => (
              <tr key={operator}>
                <td className="py-1 pr-3 font-mono text-xs text-zinc-900 dark:text-zinc-100">{operator}</td>
                <td className="py-1 text-zinc-700 dark:text-zinc-300">{meaning}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Dialog>
  );
}

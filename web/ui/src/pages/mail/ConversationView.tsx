import { useLayoutEffect, useRef, useState } from "react";
import type { Id } from "../../api/client";
import { mailApi, type Folder, type MailAction, type MessageDetail, type Thread } from "../../api/mail";
import { Spinner } from "../../components/Spinner";
import { LoadError } from "../dashboard/LoadError";
import { useAsync } from "../../lib/useAsync";
import { IconButton } from "./icons";
import { MessageCard, type ReplyKind } from "./MessageCard";
import { MoveMenu } from "./MoveMenu";

/** A conversation: every message of the thread, the last and the unread ones open. */
export function ConversationView({
  mailboxId,
  threadId,
  folder,
  folders,
  onLoaded,
  onAction,
  onStarMessage,
  onReply,
  onEditDraft,
  onCancelOutbox,
  onClose,
  onPrevious,
  onNext,
}: {
  mailboxId: Id;
  threadId: string;
  folder: Folder | null;
  folders: Folder[];
  onLoaded: (thread: Thread) => void;
  onAction: (action: MailAction, folderId?: Id) => void;
  onStarMessage: (message: MessageDetail) => void;
  onReply: (kind: ReplyKind, message: MessageDetail) => void;
  onEditDraft: (message: MessageDetail) => void;
  onCancelOutbox: (message: MessageDetail) => void;
  onClose: () => void;
  onPrevious: (() => void) | null;
  onNext: (() => void) | null;
}) {
  const includeHidden = folder?.role === "trash" || folder?.role === "junk";
  const thread = useAsync(
    () => mailApi.thread(mailboxId, threadId, includeHidden ? folder?.id : undefined),
    [mailboxId, threadId, includeHidden, folder?.id],
  );
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  const heading = useRef<HTMLHeadingElement>(null);
  const loaded = useRef(onLoaded);
  loaded.current = onLoaded;

  // Before paint: the app knows which conversation is on screen as soon as it shows (a key
  // pressed at once, like r after j, acts on this one).
  useLayoutEffect(() => {
    const data = thread.data;
    if (!data) return;
    const keys = new Set<string>();
    data.messages.forEach((message, index) => {
      if (!message.seen || index === data.messages.length - 1) keys.add(`${message.folderId}:${message.uid}`);
    });
    setExpanded(keys);
    loaded.current(data);
    heading.current?.focus({ preventScroll: true });
  }, [thread.data]);

  const inJunk = folder?.role === "junk";

  return (
    <div className="flex min-h-0 flex-1 flex-col">
      <div className="sticky top-0 z-10 flex items-center gap-0.5 border-b border-zinc-200 bg-white/95 px-2 py-1 backdrop-blur dark:border-zinc-800 dark:bg-zinc-900/95">
        <IconButton icon="back" label="Back to the list" onClick={onClose} />
        <IconButton icon="archive" label="Archive" onClick={() => onAction("archive")} disabled={folder?.role === "archive"} />
        <IconButton icon={inJunk ? "spamOff" : "junk"} label={inJunk ? "Not spam" : "Report spam"} onClick={() => onAction(inJunk ? "notspam" : "spam")} />
        <IconButton icon="trash" label="Delete" onClick={() => onAction("trash")} disabled={folder?.role === "trash"} />
        <IconButton icon="mailUnread" label="Mark as unread" onClick={() => onAction("unread")} />
        <MoveMenu folders={folders} current={folder} onMove={(target) => onAction("move", target)} />
        <span className="flex-1" />
        <IconButton icon="back" label="Newer conversation" onClick={onPrevious ?? undefined} disabled={!onPrevious} className="rotate-90" />
        <IconButton icon="back" label="Older conversation" onClick={onNext ?? undefined} disabled={!onNext} className="-rotate-90" />
      </div>
      <div className="min-h-0 flex-1 overflow-y-auto">
        {thread.error ? (
          <div className="p-6">
            <LoadError error={thread.error} reload={thread.reload} />
          </div>
        ) : !thread.data ? (
          <div className="flex justify-center p-12 text-zinc-500">
            <Spinner className="size-6" label="Loading conversation" />
          </div>
        ) : (
          <>
            <h1
              ref={heading}
              tabIndex={-1}
              className="px-4 pt-5 pb-2 text-xl font-semibold break-words text-zinc-900 focus:outline-none sm:px-6 dark:text-white"
            >
              {thread.data.subject || "(no subject)"}
            </h1>
            <div className="divide-y divide-zinc-200 dark:divide-zinc-800">
              {thread.data.messages.map((message) => {
                const key = `${message.folderId}:${message.uid}`;
                return (
                  <MessageCard
                    key={key}
                    mailboxId={mailboxId}
                    message={message}
                    expanded={expanded.has(key)}
                    onToggle={() =>
                      setExpanded((current) => {
                        const next = new Set(current);
                        if (next.has(key)) next.delete(key);
                        else next.add(key);
                        return next;
                      })
                    }
                    onReply={onReply}
                    onStar={(m) => {
                      onStarMessage(m);
                      thread.setData((current) =>
                        current
                          ? {
                              ...current,
                              messages: current.messages.map((item) =>
                                item.folderId === m.folderId && item.uid === m.uid ? { ...item, starred: !m.starred } : item,
                              ),
                            }
                          : current!,
                      );
                    }}
                    onEditDraft={onEditDraft}
                    onCancelOutbox={onCancelOutbox}
                  />
                );
              })}
            </div>
            <div className="h-16" />
          </>
        )}
      </div>
    </div>
  );
}

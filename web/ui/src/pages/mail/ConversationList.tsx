import { useEffect, useRef } from "react";
import { Link } from "react-router";
import type { ConversationSummary, Folder } from "../../api/mail";
import { Spinner } from "../../components/Spinner";
import { Icon } from "./icons";
import { listDate } from "./lib/dates";

function participantLabel(conversation: ConversationSummary, outgoing: boolean): string {
  const names = conversation.participants.map((p) => p.name.split(/\s+/)[0] || p.address.split("@")[0] || p.address);
  const unique = [...new Set(names)].slice(0, 3);
  const label = unique.join(", ") || "(no sender)";
  return outgoing ? `To: ${label}` : label;
}

export function threadKey(conversation: ConversationSummary): string {
  return String(conversation.threadId);
}

/** The conversations of a folder or a search, newest first, with selection and the focus row (j/k). */
export function ConversationList({
  items,
  folder,
  openThreadId,
  linkFor,
  selected,
  onToggleSelect,
  onToggleStar,
  focusIndex,
  onFocusIndex,
  loadingMore,
  hasMore,
  onLoadMore,
}: {
  items: ConversationSummary[];
  folder: Folder | null;
  openThreadId: string | null;
  linkFor: (conversation: ConversationSummary) => string;
  selected: Set<string>;
  onToggleSelect: (conversation: ConversationSummary, range: boolean) => void;
  onToggleStar: (conversation: ConversationSummary) => void;
  focusIndex: number;
  onFocusIndex: (index: number) => void;
  loadingMore: boolean;
  hasMore: boolean;
  onLoadMore: () => void;
}) {
  const sentinel = useRef<HTMLDivElement>(null);
  const outgoing = folder?.role === "sent" || folder?.role === "drafts" || folder?.role === "outbox";
  const loadMore = useRef(onLoadMore);
  loadMore.current = onLoadMore;

  // Windowed paging: the next page loads as the end of the list scrolls into view.
  useEffect(() => {
    const node = sentinel.current;
    if (!node || !hasMore) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) loadMore.current();
    });
    observer.observe(node);
    return () => observer.disconnect();
  }, [hasMore, items.length]);

  return (
    <>
      <ul className="divide-y divide-zinc-200 dark:divide-zinc-800" aria-label="Conversations">
        {items.map((conversation, index) => {
          const key = threadKey(conversation);
          const isSelected = selected.has(key);
          const isOpen = openThreadId === key;
          const focused = index === focusIndex;
          return (
            <li
              key={key}
              data-thread={key}
              className={`group relative flex items-start gap-1 py-2 pr-3 pl-1 ${
                isOpen
                  ? "bg-indigo-50 dark:bg-indigo-500/15"
                  : isSelected
                    ? "bg-sky-50 dark:bg-sky-500/10"
                    : conversation.unread
                      ? "bg-white dark:bg-zinc-900"
                      : "bg-zinc-50 dark:bg-zinc-950"
              } ${focused ? "shadow-[inset_3px_0_0_#6366f1]" : ""}`}
            >
              <label className="flex size-9 shrink-0 cursor-pointer items-center justify-center rounded-full hover:bg-zinc-200/70 dark:hover:bg-zinc-700/70">
                <input
                  type="checkbox"
                  className="size-4 rounded border-zinc-400 accent-indigo-600"
                  checked={isSelected}
                  onChange={(event) =>
                    onToggleSelect(conversation, (event.nativeEvent as MouseEvent).shiftKey === true)
                  }
                  aria-label={`Select: ${conversation.subject || "(no subject)"}`}
                />
              </label>
              <button
                type="button"
                className={`flex size-9 shrink-0 items-center justify-center rounded-full hover:bg-zinc-200/70 dark:hover:bg-zinc-700/70 ${
                  conversation.starred ? "text-amber-500 dark:text-amber-400" : "text-zinc-500 dark:text-zinc-400"
                }`}
                aria-pressed={conversation.starred}
                aria-label={conversation.starred ? "Starred" : "Not starred"}
                title={conversation.starred ? "Unstar" : "Star"}
                onClick={() => onToggleStar(conversation)}
              >
                <Icon name="star" className="size-[18px]" filled={conversation.starred} />
              </button>
              <Link
                to={linkFor(conversation)}
                data-row={index}
                aria-current={isOpen ? "true" : undefined}
                onFocus={() => onFocusIndex(index)}
                className="min-w-0 flex-1 rounded-md py-1 pl-1 focus-visible:outline-offset-0"
              >
                <span className="flex items-baseline gap-2">
                  <span
                    className={`min-w-0 flex-1 truncate text-sm ${
                      conversation.unread ? "font-bold text-zinc-950 dark:text-white" : "text-zinc-700 dark:text-zinc-300"
                    }`}
                  >
                    {conversation.unread ? <span className="sr-only">Unread: </span> : null}
                    {participantLabel(conversation, outgoing)}
                    {conversation.count > 1 ? (
                      <span className="ml-1.5 text-xs font-normal text-zinc-600 dark:text-zinc-400">{conversation.count}</span>
                    ) : null}
                  </span>
                  {conversation.hasAttachments ? (
                    <span title="Has attachments" className="text-zinc-500 dark:text-zinc-400">
                      <Icon name="paperclip" className="size-4" />
                      <span className="sr-only">Has attachments</span>
                    </span>
                  ) : null}
                  <time
                    dateTime={conversation.date}
                    className={`shrink-0 text-xs ${
                      conversation.unread ? "font-bold text-zinc-900 dark:text-white" : "text-zinc-600 dark:text-zinc-400"
                    }`}
                  >
                    {listDate(conversation.date)}
                  </time>
                </span>
                <span
                  className={`mt-0.5 block truncate text-sm ${
                    conversation.unread ? "font-bold text-zinc-950 dark:text-white" : "text-zinc-800 dark:text-zinc-200"
                  }`}
                >
                  {conversation.subject || "(no subject)"}
                </span>
                {conversation.snippet ? (
                  <span className="block truncate text-sm text-zinc-600 dark:text-zinc-400">{conversation.snippet}</span>
                ) : null}
              </Link>
            </li>
          );
        })}
      </ul>
      {hasMore ? (
        <div ref={sentinel} className="flex justify-center py-4">
          {loadingMore ? (
            <Spinner className="size-5" label="Loading more conversations" />
          ) : (
            <button
              type="button"
              onClick={onLoadMore}
              className="rounded-md px-3 py-1.5 text-sm font-medium text-indigo-700 hover:bg-indigo-50 dark:text-indigo-300 dark:hover:bg-indigo-500/10"
            >
              Load older conversations
            </button>
          )}
        </div>
      ) : null}
    </>
  );
}

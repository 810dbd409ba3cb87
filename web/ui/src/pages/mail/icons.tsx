/** Stroked 24×24 icons of the mail pages. */
export const ICONS = {
  inbox: "M3 13h5l1.5 3h5L16 13h5M5 5h14l2 8v5a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1v-5l2-8Z",
  sent: "m4 12 16-8-6 16-2.5-6.5L4 12Zm7.5 1.5L20 4",
  drafts: "M4 20h4L19 9l-4-4L4 16v4Zm9-13 4 4",
  outbox: "M12 3v12m0-12-4 4m4-4 4 4M4 15v4a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-4",
  archive: "M4 7h16v3H4V7Zm1 3v9h14v-9M10 14h4",
  junk: "M12 9v4m0 4h.01M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0Z",
  trash: "M4 7h16M10 11v6m4-6v6M6 7l1 13h10l1-13M9 7V4h6v3",
  folder: "M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V7Z",
  star: "m12 3 2.8 5.7 6.2.9-4.5 4.4 1 6.2L12 17.3 6.5 20.2l1-6.2L3 9.6l6.2-.9L12 3Z",
  paperclip: "m20 11-8.5 8.5a5 5 0 0 1-7-7L13 4a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L14 7",
  back: "M15 18 9 12l6-6",
  reply: "M10 8 4 13l6 5m-6-5h10a6 6 0 0 1 6 6",
  replyAll: "M11 8l-5 5 5 5m-4-10-5 5 5 5m-1-5h10a6 6 0 0 1 6 6",
  forward: "m14 8 6 5-6 5m6-5H10a6 6 0 0 0-6 6",
  mailUnread: "M4 6h16v12H4V6Zm0 0 8 7 8-7",
  mailRead: "M4 10l8-6 8 6v9H4v-9Zm0 0 8 5 8-5",
  move: "M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V7Zm9 3 3 3-3 3m3-3H8",
  search: "m21 21-4.3-4.3M10.5 18a7.5 7.5 0 1 1 0-15 7.5 7.5 0 0 1 0 15Z",
  pencil: "M4 20h4L19 9l-4-4L4 16v4Zm9-13 4 4",
  menu: "M4 7h16M4 12h16M4 17h16",
  close: "M6 6l12 12M18 6 6 18",
  plus: "M12 5v14M5 12h14",
  more: "M12 6h.01M12 12h.01M12 18h.01",
  refresh: "M20 12a8 8 0 1 1-2.3-5.7M20 4v5h-5",
  clock: "M12 7v5l3 2m6-2a9 9 0 1 1-18 0 9 9 0 0 1 18 0Z",
  shield: "M12 3 4 6v6c0 4.5 3.4 8.3 8 9 4.6-.7 8-4.5 8-9V6l-8-3Z",
  image: "M4 5h16v14H4V5Zm0 11 5-5 4 4 2-2 5 5M15 9h.01",
  download: "M12 4v11m0 0-4-4m4 4 4-4M5 20h14",
  code: "m8 8-4 4 4 4m8-8 4 4-4 4",
  keyboard: "M3 7h18v10H3V7Zm4 3h.01M11 10h.01M15 10h.01M7 14h10",
  check: "m5 12 5 5 9-10",
  spamOff: "M12 3 4 6v6c0 4.5 3.4 8.3 8 9 4.6-.7 8-4.5 8-9V6l-8-3Zm-3 9 2 2 4-4",
} as const;

export type IconName = keyof typeof ICONS;

export function Icon({ name, className = "size-5", filled = false }: { name: IconName; className?: string; filled?: boolean }) {
  return (
    <svg
      viewBox="0 0 24 24"
      fill={filled ? "currentColor" : "none"}
      stroke="currentColor"
      strokeWidth="1.8"
      className={`shrink-0 ${className}`}
      aria-hidden="true"
    >
      <path d={ICONS[name]} strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}

/** A square icon button with its name for screen readers and a tooltip. */
export function IconButton({
  icon,
  label,
  onClick,
  disabled,
  pressed,
  filled,
  className = "",
  tone = "default",
}: {
  icon: IconName;
  label: string;
  onClick?: () => void;
  disabled?: boolean;
  pressed?: boolean;
  filled?: boolean;
  className?: string;
  tone?: "default" | "star";
}) {
  return (
    <button
      type="button"
      aria-label={label}
      title={label}
      aria-pressed={pressed}
      disabled={disabled}
      onClick={onClick}
      className={`inline-flex size-9 items-center justify-center rounded-full text-zinc-600 hover:bg-zinc-200/70 hover:text-zinc-900 disabled:opacity-40 dark:text-zinc-300 dark:hover:bg-zinc-700/70 dark:hover:text-white ${
        tone === "star" && filled ? "text-amber-500 dark:text-amber-400" : ""
      } ${className}`}
    >
      <Icon name={icon} filled={filled} />
    </button>
  );
}

export const ROLE_ICON: Record<string, IconName> = {
  inbox: "inbox",
  sent: "sent",
  drafts: "drafts",
  outbox: "outbox",
  archive: "archive",
  junk: "junk",
  trash: "trash",
};

export const ROLE_LABEL: Record<string, string> = {
  inbox: "Inbox",
  sent: "Sent",
  drafts: "Drafts",
  outbox: "Outbox",
  archive: "Archive",
  junk: "Junk",
  trash: "Trash",
};

/** Keyboard shortcuts of the mail pages (Gmail's letters). */

export type ShortcutAction =
  | "next"
  | "previous"
  | "open"
  | "compose"
  | "reply"
  | "replyAll"
  | "forward"
  | "archive"
  | "trash"
  | "star"
  | "search"
  | "help"
  | "close"
  | "select"
  | "markUnread"
  | "markRead"
  | "spam";

export const SHORTCUTS: { keys: string[]; action: ShortcutAction; label: string }[] = [
  { keys: ["j"], action: "next", label: "Next conversation" },
  { keys: ["k"], action: "previous", label: "Previous conversation" },
  { keys: ["o", "Enter"], action: "open", label: "Open conversation" },
  { keys: ["x"], action: "select", label: "Select conversation" },
  { keys: ["c"], action: "compose", label: "Compose" },
  { keys: ["r"], action: "reply", label: "Reply" },
  { keys: ["a"], action: "replyAll", label: "Reply all" },
  { keys: ["f"], action: "forward", label: "Forward" },
  { keys: ["e"], action: "archive", label: "Archive" },
  { keys: ["#"], action: "trash", label: "Delete" },
  { keys: ["!"], action: "spam", label: "Report spam" },
  { keys: ["s"], action: "star", label: "Star or unstar" },
  { keys: ["U"], action: "markUnread", label: "Mark as unread" },
  { keys: ["I"], action: "markRead", label: "Mark as read" },
  { keys: ["/"], action: "search", label: "Search" },
  { keys: ["?"], action: "help", label: "Keyboard shortcuts" },
  { keys: ["Escape", "u"], action: "close", label: "Back to the list" },
];

const BY_KEY = new Map<string, ShortcutAction>(SHORTCUTS.flatMap((s) => s.keys.map((key) => [key, s.action] as const)));

type KeyLike = {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
  target: EventTarget | null;
};

/** Whether keys typed here are text (inputs, the editor), not shortcuts. */
export function isTyping(target: EventTarget | null): boolean {
  if (!target || typeof (target as Element).closest !== "function") return false;
  const element = target as HTMLElement;
  if (element.isContentEditable) return true;
  return element.closest("input, textarea, select, [contenteditable=''], [contenteditable='true'], [role='dialog']") !== null;
}

/** The action for a key press, or null (modifiers, typing in a field, unknown keys). */
export function shortcutFor(event: KeyLike): ShortcutAction | null {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  if (isTyping(event.target)) return null;
  const key = event.key.length === 1 && event.key !== "U" && event.key !== "I" ? event.key.toLowerCase() : event.key;
  return BY_KEY.get(key) ?? BY_KEY.get(event.key) ?? null;
}

/** How a key is written in the help dialog. */
export function keyLabel(key: string): string {
  return key === "Escape" ? "Esc" : key === "U" ? "Shift+U" : key === "I" ? "Shift+I" : key;
}

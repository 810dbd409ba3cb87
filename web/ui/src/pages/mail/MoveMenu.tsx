import { useEffect, useId, useRef, useState } from "react";
import type { Id } from "../../api/client";
import type { Folder } from "../../api/mail";
import { Icon } from "./icons";
import { folderLabel } from "./folders";

/** "Move to…": a menu of the mailbox's folders except the current one and the Outbox/Drafts. */
export function MoveMenu({ folders, current, onMove }: { folders: Folder[]; current: Folder | null; onMove: (folderId: Id) => void }) {
  const [open, setOpen] = useState(false);
  const root = useRef<HTMLDivElement>(null);
  const menuId = useId();
  const targets = folders.filter(
    (folder) => String(folder.id) !== String(current?.id) && folder.role !== "outbox" && folder.role !== "drafts",
  );

  useEffect(() => {
    if (!open) return;
    function onPointer(event: PointerEvent) {
      if (!root.current?.contains(event.target as Node)) setOpen(false);
    }
    function onKey(event: KeyboardEvent) {
      if (event.key === "Escape") {
        event.stopPropagation();
        setOpen(false);
      }
    }
    document.addEventListener("pointerdown", onPointer);
    document.addEventListener("keydown", onKey, true);
    root.current?.querySelector<HTMLElement>("[role=menuitem]")?.focus();
    return () => {
      document.removeEventListener("pointerdown", onPointer);
      document.removeEventListener("keydown", onKey, true);
    };
  }, [open]);

  function onMenuKey(event: React.KeyboardEvent) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    event.preventDefault();
    const items = Array.from(root.current?.querySelectorAll<HTMLElement>("[role=menuitem]") ?? []);
    const index = items.indexOf(document.activeElement as HTMLElement);
    const next = items[(index + (event.key === "ArrowDown" ? 1 : -1) + items.length) % items.length];
    next?.focus();
  }

  return (
    <div ref={root} className="relative">
      <button
        type="button"
        aria-label="Move to"
        title="Move to"
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={menuId}
        onClick={() => setOpen((value) => !value)}
        className="inline-flex size-9 items-center justify-center rounded-full text-zinc-600 hover:bg-zinc-200/70 hover:text-zinc-900 dark:text-zinc-300 dark:hover:bg-zinc-700/70 dark:hover:text-white"
      >
        <Icon name="move" />
      </button>
      {open ? (
        <div
          id={menuId}
          role="menu"
          aria-label="Move to folder"
          onKeyDown={onMenuKey}
          className="absolute left-0 z-40 mt-1 max-h-80 w-56 overflow-y-auto rounded-lg bg-white p-1 shadow-lg ring-1 ring-zinc-200 dark:bg-zinc-900 dark:ring-zinc-700"
        >
          {targets.map((folder) => (
            <button
              key={String(folder.id)}
              type="button"
              role="menuitem"
              className="block w-full truncate rounded-md px-3 py-1.5 text-left text-sm text-zinc-800 hover:bg-zinc-100 focus:bg-zinc-100 dark:text-zinc-200 dark:hover:bg-zinc-800 dark:focus:bg-zinc-800"
              onClick={() => {
                setOpen(false);
                onMove(folder.id);
              }}
            >
              {folderLabel(folder, true)}
            </button>
          ))}
        </div>
      ) : null}
    </div>
  );
}

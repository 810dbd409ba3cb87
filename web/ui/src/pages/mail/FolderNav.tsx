import { useState, type FormEvent } from "react";
import { NavLink } from "react-router";
import type { Id } from "../../api/client";
import { mailApi, type Folder, type MailMailbox } from "../../api/mail";
import { Alert } from "../../components/Alert";
import { Button } from "../../components/Button";
import { ConfirmDialog } from "../../components/ConfirmDialog";
import { Dialog } from "../../components/Dialog";
import { Input, Select } from "../../components/Field";
import { folderDepth, folderLabel } from "./folders";
import { Icon, ROLE_ICON } from "./icons";

/** The sidebar: compose, the mailbox switcher, and the folder tree with unread counts. */
export function FolderNav({
  mailboxes,
  mailboxId,
  onMailbox,
  folders,
  currentFolderId,
  onCompose,
  onFoldersChanged,
  linkFor,
  renaming,
  onRenaming,
  deleting,
  onDeleting,
}: {
  mailboxes: MailMailbox[];
  mailboxId: string;
  onMailbox: (id: string) => void;
  folders: Folder[];
  currentFolderId: string | null;
  onCompose: () => void;
  onFoldersChanged: (deleted?: Id) => void;
  linkFor: (folder: Folder) => string;
  /** The folder being renamed or deleted (asked for from the list's header). */
  renaming: Folder | null;
  onRenaming: (folder: Folder | null) => void;
  deleting: Folder | null;
  onDeleting: (folder: Folder | null) => void;
}) {
  const [creating, setCreating] = useState(false);
  const setRenaming = onRenaming;
  const setDeleting = onDeleting;

  return (
    <div className="flex h-full flex-col">
      <div className="space-y-3 p-3">
        <Button className="w-full justify-start rounded-2xl" onClick={onCompose} icon={<Icon name="pencil" className="size-5" />}>
          Compose
        </Button>
        {mailboxes.length > 1 ? (
          <label className="block">
            <span className="sr-only">Mailbox</span>
            <select
              value={mailboxId}
              onChange={(event) => onMailbox(event.target.value)}
              className="block w-full rounded-lg border-0 bg-white px-2 py-1.5 text-sm text-zinc-900 ring-1 ring-zinc-300 ring-inset dark:bg-zinc-900 dark:text-zinc-100 dark:ring-zinc-700"
            >
              {mailboxes.map((mailbox) => (
                <option key={String(mailbox.id)} value={String(mailbox.id)}>
                  {mailbox.address}
                  {mailbox.unread > 0 ? ` (${mailbox.unread})` : ""}
                </option>
              ))}
            </select>
          </label>
        ) : mailboxes[0] ? (
          <p className="truncate px-1 text-sm text-zinc-600 dark:text-zinc-400">{mailboxes[0].address}</p>
        ) : null}
      </div>
      <nav aria-label="Folders" className="min-h-0 flex-1 overflow-y-auto px-2 pb-3">
        <ul className="space-y-px">
          {folders.map((folder) => {
            const id = String(folder.id);
            const depth = folderDepth(folder);
            const showCount = folder.role === "drafts" || folder.role === "outbox" ? folder.total : folder.unread;
            return (
              <li key={id}>
                <NavLink
                  to={linkFor(folder)}
                  aria-current={currentFolderId === id ? "page" : undefined}
                  className={`flex items-center gap-3 rounded-r-full py-1.5 pr-3 text-sm ${
                    currentFolderId === id
                      ? "bg-indigo-100 font-semibold text-indigo-900 dark:bg-indigo-500/20 dark:text-indigo-100"
                      : "text-zinc-800 hover:bg-zinc-200/70 dark:text-zinc-200 dark:hover:bg-zinc-800"
                  } ${folder.unread > 0 && folder.role !== "trash" ? "font-semibold" : ""}`}
                  // Nesting by indent: CSSOM style, which the Content-Security-Policy allows.
                  style={{ paddingLeft: `${12 + depth * 14}px` }}
                >
                  <Icon name={folder.role ? (ROLE_ICON[folder.role] ?? "folder") : "folder"} className="size-[18px]" />
                  <span className="min-w-0 flex-1 truncate">{folderLabel(folder)}</span>
                  {showCount > 0 ? (
                    <span className="text-xs tabular-nums" data-unread={folder.unread}>
                      {showCount}
                      <span className="sr-only">{folder.role === "drafts" || folder.role === "outbox" ? " messages" : " unread"}</span>
                    </span>
                  ) : null}
                </NavLink>
              </li>
            );
          })}
        </ul>
        <button
          type="button"
          onClick={() => setCreating(true)}
          className="mt-2 flex w-full items-center gap-3 rounded-r-full py-1.5 pr-3 pl-3 text-sm text-zinc-700 hover:bg-zinc-200/70 dark:text-zinc-300 dark:hover:bg-zinc-800"
        >
          <Icon name="plus" className="size-[18px]" />
          New folder
        </button>
      </nav>
      <FolderDialog
        key={creating ? "create" : renaming ? `rename-${String(renaming.id)}` : "closed"}
        open={creating || renaming !== null}
        folder={renaming}
        folders={folders}
        mailboxId={mailboxId}
        onClose={() => {
          setCreating(false);
          setRenaming(null);
        }}
        onDone={() => onFoldersChanged()}
      />
      <ConfirmDialog
        open={deleting !== null}
        onClose={() => setDeleting(null)}
        title={`Delete the folder ${deleting?.name ?? ""}?`}
        description="The folder and the messages in it are deleted for good, here and in every mail app."
        actionLabel="Delete folder"
        onConfirm={async () => {
          if (!deleting) return;
          await mailApi.deleteFolder(mailboxId, deleting.id);
          onFoldersChanged(deleting.id);
        }}
      />
    </div>
  );
}

function FolderDialog({
  open,
  folder,
  folders,
  mailboxId,
  onClose,
  onDone,
}: {
  open: boolean;
  folder: Folder | null;
  folders: Folder[];
  mailboxId: string;
  onClose: () => void;
  onDone: () => void;
}) {
  const parts = folder ? folder.name.split("/") : [];
  const [name, setName] = useState(folder ? (parts.pop() ?? "") : "");
  const [parent, setParent] = useState(folder ? parts.join("/") : "");
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const parents = folders.filter((f) => f.role === null && (!folder || (f.name !== folder.name && !f.name.startsWith(`${folder.name}/`))));

  async function submit(event: FormEvent) {
    event.preventDefault();
    const clean = name.trim();
    if (clean === "" || clean.includes("/")) {
      setError(clean === "" ? "Enter a name for the folder." : "A folder name cannot contain “/”; choose a parent folder instead.");
      return;
    }
    const full = parent ? `${parent}/${clean}` : clean;
    setPending(true);
    setError(null);
    try {
      if (folder) await mailApi.renameFolder(mailboxId, folder.id, full);
      else await mailApi.createFolder(mailboxId, full);
      onDone();
      onClose();
    } catch (caught) {
      setError(caught instanceof Error ? caught.message : String(caught));
    } finally {
      setPending(false);
    }
  }

  return (
    <Dialog
      open={open}
      onClose={onClose}
      title={folder ? "Rename folder" : "New folder"}
      busy={pending}
      size="sm"
      footer={
        <>
          <Button variant="secondary" onClick={onClose} disabled={pending}>
            Cancel
          </Button>
          <Button type="submit" form="folder-form" loading={pending}>
            {folder ? "Rename" : "Create"}
          </Button>
        </>
      }
    >
      <form id="folder-form" onSubmit={submit} className="space-y-4">
        {error ? <Alert tone="error">{error}</Alert> : null}
        <Input label="Folder name" value={name} onChange={(event) => setName(event.target.value)} data-autofocus maxLength={200} />
        <Select label="Inside" value={parent} onChange={(event) => setParent(event.target.value)}>
          <option value="">(top level)</option>
          {parents.map((f) => (
            <option key={String(f.id)} value={f.name}>
              {f.name}
            </option>
          ))}
        </Select>
      </form>
    </Dialog>
  );
}

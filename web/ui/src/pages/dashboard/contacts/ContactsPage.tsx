import { useEffect, useMemo, useState } from "react";
import {
  CONTACT_STATUSES,
  contactsApi,
  listsApi,
  type Contact,
  type ContactFilters,
  type ContactList,
  type ContactStatus,
} from "../../../api/contacts";
import { Button, ButtonLink, buttonClasses } from "../../../components/Button";
import { Badge, PageHeader } from "../../../components/Card";
import { ConfirmDialog } from "../../../components/ConfirmDialog";
import { EmptyState } from "../../../components/EmptyState";
import { InlineSelect } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { Table, type Column } from "../../../components/Table";
import { useToast } from "../../../components/Toast";
import { formatNumber, plural } from "../../../lib/format";
import { useAsync } from "../../../lib/useAsync";
import { LoadError } from "../LoadError";
import { ContactDialog } from "./ContactDialog";
import { NameDialog } from "./NameDialog";
import { StatusBadge, SuppressedBadge, statusLabel } from "./StatusBadge";

const PAGE_SIZE = 50;

type Paging = { key: string; cursor: string | null; cursors: (string | null)[] };
const SUPPRESSED = "suppressed";

const people = (
  <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.8" className="size-5" aria-hidden="true">
    <path
      d="M16 19v-1a4 4 0 0 0-4-4H7a4 4 0 0 0-4 4v1m18 0v-1a4 4 0 0 0-3-3.9M15 3.1a4 4 0 0 1 0 7.8M13.5 7a4 4 0 1 1-8 0 4 4 0 0 1 8 0Z"
      strokeLinecap="round"
      strokeLinejoin="round"
    />
  </svg>
);

/** The search box's text, passed on once typing pauses. */
function useSettled(value: string, delay = 300): string {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setSettled(value), delay);
    return () => window.clearTimeout(timer);
  }, [value, delay]);
  return settled;
}

export default function ContactsPage() {
  const toast = useToast();
  const lists = useAsync(() => listsApi.list(), []);
  const [search, setSearch] = useState("");
  const q = useSettled(search);
  const [status, setStatus] = useState<ContactStatus | typeof SUPPRESSED | "">("");
  const [tag, setTag] = useState("");
  const [listId, setListId] = useState("");
  // Where in the filtered contacts the table is: the cursor of this page and of the pages before
  // it ("Previous" goes back to the last of them), for the filters they were taken with.
  const [paging, setPaging] = useState<Paging>({ key: "", cursor: null, cursors: [] });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [editing, setEditing] = useState<Contact | null>(null);
  const [adding, setAdding] = useState(false);
  const [deleting, setDeleting] = useState<Contact | null>(null);
  const [listDialog, setListDialog] = useState<"new" | "rename" | null>(null);
  const [deletingList, setDeletingList] = useState(false);
  const [target, setTarget] = useState("");
  const [filing, setFiling] = useState(false);

  const filters: ContactFilters = useMemo(
    () => ({
      q,
      tag,
      listId,
      status: status === SUPPRESSED ? "" : status,
      suppressed: status === SUPPRESSED ? "true" : "",
    }),
    [q, tag, listId, status],
  );
  // A new filter starts again from the first page, with nothing selected.
  const key = JSON.stringify(filters);
  const { cursor, cursors } = paging.key === key ? paging : { cursor: null, cursors: [] };
  const page = useAsync(() => contactsApi.list(filters, cursor, PAGE_SIZE), [filters, cursor]);
  useEffect(() => setSelected(new Set()), [key]);

  const allLists = lists.data ?? [];
  const listNames = useMemo(() => new Map(allLists.map((list) => [list._id, list.name])), [allLists]);
  const staticLists = allLists.filter((list) => list.filter === null);
  const currentList = allLists.find((list) => list._id === listId) ?? null;
  const rows = page.data?.data ?? [];
  const filtered = Boolean(q || tag || listId || status);

  function toggle(id: string) {
    setSelected((current) => {
      const next = new Set(current);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  }

  async function reloadAll() {
    await Promise.all([page.reload(), lists.reload()]);
  }

  async function addSelectedToList() {
    const list = allLists.find((item) => item._id === target);
    if (!list) return;
    setFiling(true);
    try {
      await listsApi.addMembers(list._id, [...selected]);
      toast.success(`${plural(selected.size, "contact")} added to ${list.name}.`);
      setSelected(new Set());
      await reloadAll();
    } catch (error) {
      toast.error(error instanceof Error ? error.message : String(error));
    } finally {
      setFiling(false);
    }
  }

  const columns: Column<Contact>[] = [
    {
      header: "Select",
      srOnlyHeader: true,
      hideOnCard: true,
      className: "w-10",
      cell: (contact) => (
        <input
          type="checkbox"
          className="size-4 rounded border-zinc-300 accent-indigo-600"
          aria-label={`Select ${contact.email}`}
          checked={selected.has(contact._id)}
          onChange={() => toggle(contact._id)}
        />
      ),
    },
    {
      header: "Contact",
      hideOnCard: true,
      cell: (contact) => {
        const name = [contact.firstName, contact.lastName].filter(Boolean).join(" ");
        return (
          <div className="min-w-0">
            <div className={`font-medium break-words ${contact.suppressed ? "text-zinc-500 dark:text-zinc-400" : "text-zinc-900 dark:text-white"}`}>
              {contact.email}
            </div>
            {name ? <div className="text-zinc-600 dark:text-zinc-400">{name}</div> : null}
          </div>
        );
      },
    },
    { header: "Company", cell: (contact) => contact.company || <span className="text-zinc-500 dark:text-zinc-400">—</span> },
    {
      header: "Status",
      cell: (contact) => (
        <div className="flex flex-wrap gap-1">
          <StatusBadge status={contact.status} />
          {contact.suppressed ? <SuppressedBadge /> : null}
        </div>
      ),
    },
    {
      header: "Tags",
      cell: (contact) =>
        contact.tags.length ? (
          <div className="flex flex-wrap gap-1">
            {contact.tags.map((name) => (
              <button
                key={name}
                type="button"
                className="rounded-md bg-indigo-50 px-2 py-0.5 text-xs font-medium text-indigo-800 ring-1 ring-indigo-600/20 ring-inset hover:bg-indigo-100 dark:bg-indigo-500/10 dark:text-indigo-200 dark:ring-indigo-400/25"
                title={`Show contacts tagged ${name}`}
                onClick={() => setTag(name)}
              >
                {name}
              </button>
            ))}
          </div>
        ) : (
          <span className="text-zinc-500 dark:text-zinc-400">—</span>
        ),
    },
    {
      header: "Lists",
      cell: (contact) =>
        contact.listIds.length ? (
          <span className="text-zinc-700 dark:text-zinc-300">
            {contact.listIds.map((id) => listNames.get(id) ?? `List ${id}`).join(", ")}
          </span>
        ) : (
          <span className="text-zinc-500 dark:text-zinc-400">—</span>
        ),
    },
    {
      header: "Actions",
      srOnlyHeader: true,
      className: "text-right whitespace-nowrap",
      cell: (contact) => (
        <div className="flex justify-end gap-1">
          <Button variant="ghost" size="sm" aria-label={`Edit ${contact.email}`} onClick={() => setEditing(contact)}>
            Edit
          </Button>
          <Button variant="ghost" size="sm" aria-label={`Delete ${contact.email}`} onClick={() => setDeleting(contact)}>
            Delete
          </Button>
        </div>
      ),
    },
  ];

  let body;
  if (page.error) {
    body = <LoadError error={page.error} reload={page.reload} />;
  } else if (page.data === undefined) {
    body = (
      <div className="flex justify-center py-16 text-zinc-500">
        <Spinner className="size-6" label="Loading contacts" />
      </div>
    );
  } else if (rows.length === 0 && !filtered && cursor === null) {
    body = (
      <EmptyState
        title="No contacts yet"
        icon={people}
        action={
          <div className="flex flex-wrap justify-center gap-2">
            <ButtonLink to="/dashboard/contacts/import">Import a CSV file</ButtonLink>
            <Button variant="secondary" onClick={() => setAdding(true)}>
              Add a contact
            </Button>
          </div>
        }
      >
        Contacts are the people your campaigns go to. Import them from a spreadsheet or add them one by one.
      </EmptyState>
    );
  } else if (rows.length === 0) {
    body = (
      <p className="rounded-xl bg-white px-4 py-10 text-center text-sm text-zinc-600 shadow-sm ring-1 ring-zinc-200 dark:bg-zinc-900 dark:text-zinc-400 dark:ring-zinc-800">
        No contact matches these filters.
      </p>
    );
  } else {
    body = (
      <>
        <Table
          label="Contacts"
          columns={columns}
          rows={rows}
          rowKey={(contact) => contact._id}
          cardTitle={(contact) => (
            <div className="flex items-center gap-2">
              {columns[0]!.cell(contact)}
              {columns[1]!.cell(contact)}
            </div>
          )}
        />
        <nav className="mt-4 flex items-center justify-between gap-2" aria-label="Pages of contacts">
          <p className="text-sm text-zinc-600 dark:text-zinc-400">
            Page {cursors.length + 1} · {plural(rows.length, "contact")} shown
          </p>
          <div className="flex gap-2">
            <Button
              variant="secondary"
              size="sm"
              disabled={cursors.length === 0 || page.loading}
              onClick={() => setPaging({ key, cursor: cursors[cursors.length - 1] ?? null, cursors: cursors.slice(0, -1) })}
            >
              Previous
            </Button>
            <Button
              variant="secondary"
              size="sm"
              disabled={!page.data.nextCursor || page.loading}
              onClick={() => setPaging({ key, cursor: page.data?.nextCursor ?? null, cursors: [...cursors, cursor] })}
            >
              Next
            </Button>
          </div>
        </nav>
      </>
    );
  }

  return (
    <>
      <PageHeader
        title="Contacts"
        description="The people your campaigns go to, and the lists they are on."
        actions={
          <>
            <a className={buttonClasses("secondary")} href={contactsApi.exportUrl(filters)} download="contacts.csv">
              Export CSV
            </a>
            <ButtonLink variant="secondary" to="/dashboard/contacts/import">
              Import CSV
            </ButtonLink>
            <Button onClick={() => setAdding(true)}>Add contact</Button>
          </>
        }
      />
      {lists.error ? <LoadError error={lists.error} reload={lists.reload} /> : null}
      <div className="grid gap-6 2xl:grid-cols-[14rem_minmax(0,1fr)]">
        <ListsPanel
          lists={allLists}
          loading={lists.data === undefined && !lists.error}
          current={listId}
          onPick={setListId}
          onNew={() => setListDialog("new")}
        />
        <div className="min-w-0">
          {currentList ? (
            <div className="mb-4 flex flex-wrap items-center justify-between gap-2">
              <h2 className="text-base font-semibold text-zinc-900 dark:text-white">
                {currentList.name}{" "}
                <span className="font-normal text-zinc-600 dark:text-zinc-400">· {plural(currentList.size, "contact")}</span>
              </h2>
              {currentList.filter === null ? (
                <div className="flex gap-2">
                  <Button variant="secondary" size="sm" onClick={() => setListDialog("rename")}>
                    Rename
                  </Button>
                  <Button variant="secondary" size="sm" onClick={() => setDeletingList(true)}>
                    Delete list
                  </Button>
                </div>
              ) : (
                <Badge tone="info">Segment</Badge>
              )}
            </div>
          ) : null}
          <div className="mb-4 flex flex-wrap items-center gap-2">
            <div className="relative min-w-0 flex-1 basis-56">
              <label htmlFor="contact-search" className="sr-only">
                Search contacts
              </label>
              <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" className="pointer-events-none absolute top-2.5 left-3 size-4 text-zinc-500" aria-hidden="true">
                <path d="m21 21-4.3-4.3M17 10.5a6.5 6.5 0 1 1-13 0 6.5 6.5 0 0 1 13 0Z" strokeLinecap="round" />
              </svg>
              <input
                id="contact-search"
                type="search"
                placeholder="Search email, name or company"
                value={search}
                onChange={(event) => setSearch(event.target.value)}
                className="block w-full rounded-lg border-0 bg-white py-2 pr-3 pl-9 text-sm text-zinc-900 shadow-sm ring-1 ring-zinc-300 ring-inset placeholder:text-zinc-500 focus:ring-2 focus:ring-indigo-600 focus:outline-none focus:ring-inset dark:bg-zinc-900 dark:text-zinc-100 dark:ring-zinc-700 dark:placeholder:text-zinc-400"
              />
            </div>
            <div className="w-40 shrink-0">
            <InlineSelect aria-label="Status" className="w-full" value={status} onChange={(event) => setStatus(event.target.value as typeof status)}>
              <option value="">All statuses</option>
              {CONTACT_STATUSES.map((value) => (
                <option key={value} value={value}>
                  {statusLabel(value)}
                </option>
              ))}
              <option value={SUPPRESSED}>Suppressed</option>
            </InlineSelect>
            </div>
            <div className="flex gap-2 2xl:hidden">
              <InlineSelect aria-label="List" value={listId} onChange={(event) => setListId(event.target.value)}>
                <option value="">All lists</option>
                {allLists.map((list) => (
                  <option key={list._id} value={list._id}>
                    {list.name} ({formatNumber(list.size)})
                  </option>
                ))}
              </InlineSelect>
              <Button variant="secondary" onClick={() => setListDialog("new")}>
                New list
              </Button>
            </div>
            {tag ? (
              <span className="inline-flex items-center gap-1 rounded-lg bg-indigo-50 py-1 pr-1 pl-2.5 text-sm text-indigo-800 ring-1 ring-indigo-600/20 ring-inset dark:bg-indigo-500/10 dark:text-indigo-200">
                Tag: {tag}
                <button
                  type="button"
                  className="rounded px-1.5 hover:bg-indigo-100 dark:hover:bg-indigo-500/20"
                  aria-label={`Stop filtering by tag ${tag}`}
                  onClick={() => setTag("")}
                >
                  ×
                </button>
              </span>
            ) : null}
          </div>
          {selected.size > 0 ? (
            <div className="mb-4 flex flex-wrap items-center gap-2 rounded-lg bg-indigo-50 px-3 py-2 text-sm ring-1 ring-indigo-600/20 ring-inset dark:bg-indigo-500/10 dark:ring-indigo-400/25">
              <span className="font-medium text-indigo-900 dark:text-indigo-100">{plural(selected.size, "contact")} selected</span>
              {staticLists.length ? (
                <>
                  <div className="w-48">
                  <InlineSelect aria-label="List to add them to" className="w-full" value={target} onChange={(event) => setTarget(event.target.value)}>
                    <option value="">Choose a list…</option>
                    {staticLists.map((list) => (
                      <option key={list._id} value={list._id}>
                        {list.name}
                      </option>
                    ))}
                  </InlineSelect>
                  </div>
                  <Button size="sm" disabled={!target} loading={filing} onClick={() => void addSelectedToList()}>
                    Add to list
                  </Button>
                </>
              ) : (
                <span className="text-indigo-900 dark:text-indigo-100">Create a list to add them to.</span>
              )}
              <Button variant="ghost" size="sm" onClick={() => setSelected(new Set())}>
                Clear
              </Button>
            </div>
          ) : null}
          {body}
        </div>
      </div>

      <ContactDialog
        open={adding || editing !== null}
        contact={editing}
        onClose={() => {
          setAdding(false);
          setEditing(null);
        }}
        onSaved={(saved) => {
          toast.success(editing ? `${saved.email} saved.` : `${saved.email} added.`);
          setAdding(false);
          setEditing(null);
          void page.reload();
        }}
      />
      <ConfirmDialog
        open={deleting !== null}
        onClose={() => setDeleting(null)}
        title={`Delete ${deleting?.email ?? "this contact"}?`}
        description="The contact leaves every list. Its address stays on the suppression list if it is there."
        actionLabel="Delete contact"
        onConfirm={async () => {
          if (!deleting) return;
          await contactsApi.remove(deleting._id);
          toast.success(`${deleting.email} deleted.`);
          await reloadAll();
        }}
      />
      <NameDialog<ContactList>
        open={listDialog !== null}
        title={listDialog === "rename" ? `Rename ${currentList?.name ?? "list"}` : "New list"}
        initial={listDialog === "rename" ? (currentList?.name ?? "") : ""}
        actionLabel={listDialog === "rename" ? "Rename" : "Create list"}
        onClose={() => setListDialog(null)}
        onSubmit={(name) =>
          listDialog === "rename" && currentList ? listsApi.rename(currentList._id, name) : listsApi.create(name)
        }
        onDone={(list) => {
          toast.success(listDialog === "rename" ? `Renamed to ${list.name}.` : `${list.name} created.`);
          setListDialog(null);
          void lists.reload();
          if (listDialog === "new") setListId(list._id);
        }}
      />
      <ConfirmDialog
        open={deletingList}
        onClose={() => setDeletingList(false)}
        title={`Delete ${currentList?.name ?? "this list"}?`}
        description="The list goes; its contacts stay among your contacts."
        actionLabel="Delete list"
        onConfirm={async () => {
          if (!currentList) return;
          await listsApi.remove(currentList._id);
          toast.success(`${currentList.name} deleted.`);
          setListId("");
          await lists.reload();
        }}
      />
    </>
  );
}

function ListsPanel({
  lists,
  loading,
  current,
  onPick,
  onNew,
}: {
  lists: ContactList[];
  loading: boolean;
  current: string;
  onPick: (id: string) => void;
  onNew: () => void;
}) {
  const item = (active: boolean) =>
    `flex w-full items-center justify-between gap-2 rounded-lg px-3 py-2 text-left text-sm ${
      active
        ? "bg-indigo-50 font-medium text-indigo-800 dark:bg-indigo-500/10 dark:text-indigo-200"
        : "text-zinc-700 hover:bg-zinc-100 dark:text-zinc-300 dark:hover:bg-zinc-800"
    }`;
  return (
    <section
      aria-labelledby="lists-heading"
      className="hidden self-start rounded-xl bg-white p-3 shadow-sm ring-1 ring-zinc-200 2xl:block dark:bg-zinc-900 dark:ring-zinc-800"
    >
      <div className="mb-2 flex items-center justify-between px-1">
        <h2 id="lists-heading" className="text-xs font-semibold tracking-wide text-zinc-600 uppercase dark:text-zinc-400">
          Lists
        </h2>
        <Button variant="ghost" size="sm" onClick={onNew}>
          New list
        </Button>
      </div>
      <ul className="space-y-0.5">
        <li>
          <button type="button" className={item(current === "")} aria-current={current === "" ? "true" : undefined} onClick={() => onPick("")}>
            All contacts
          </button>
        </li>
        {lists.map((list) => (
          <li key={list._id}>
            <button
              type="button"
              className={item(current === list._id)}
              aria-current={current === list._id ? "true" : undefined}
              onClick={() => onPick(list._id)}
            >
              <span className="min-w-0 truncate">{list.name}</span>
              <span className="shrink-0 text-xs text-zinc-500 tabular-nums dark:text-zinc-400">{list.size}</span>
            </button>
          </li>
        ))}
      </ul>
      {loading ? (
        <div className="flex justify-center py-3 text-zinc-500">
          <Spinner label="Loading lists" />
        </div>
      ) : lists.length === 0 ? (
        <p className="px-3 pt-2 text-sm text-zinc-600 dark:text-zinc-400">No lists yet.</p>
      ) : null}
    </section>
  );
}

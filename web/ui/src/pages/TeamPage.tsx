import { useMemo, useState, type FormEvent } from "react";
import type { Role } from "../api/auth";
import type { ApiError } from "../api/client";
import { mailboxesApi, type Mailbox } from "../api/mailboxes";
import { teamApi, type Member, type PendingInvitation, type Team } from "../api/team";
import { useUser } from "../auth/AuthContext";
import { Alert } from "../components/Alert";
import { Button, ButtonLink } from "../components/Button";
import { Badge, PageHeader } from "../components/Card";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { CopyButton } from "../components/CopyButton";
import { Dialog } from "../components/Dialog";
import { EmptyState } from "../components/EmptyState";
import { Checkbox, InlineSelect, Input, Select } from "../components/Field";
import { Spinner } from "../components/Spinner";
import { Table, type Column } from "../components/Table";
import { useToast } from "../components/Toast";
import { fieldError, formError } from "../lib/errors";
import { formatDate, formatDateTime, plural } from "../lib/format";
import { asApiError, useAsync } from "../lib/useAsync";

const ROLE_LABELS: Record<Role, string> = { owner: "Owner", admin: "Admin", member: "Member" };
const ROLE_HELP = "Admins manage domains, mailboxes, keys and the team. Members use only the mailboxes assigned to them.";

type TeamData = { team: Team; mailboxes: Mailbox[]; mailboxError: string | null };

async function loadTeam(): Promise<TeamData> {
  // The team shows even when the mailbox list cannot be read; the picker says why it is empty.
  const [team, mailboxes] = await Promise.all([
    teamApi.get(),
    mailboxesApi.list().then(
      (list) => ({ list, error: null }),
      (caught: unknown) => ({ list: [] as Mailbox[], error: asApiError(caught).message }),
    ),
  ]);
  return { team, mailboxes: mailboxes.list, mailboxError: mailboxes.error };
}

export default function TeamPage() {
  const me = useUser();
  const toast = useToast();
  const state = useAsync(loadTeam, []);
  const [inviteOpen, setInviteOpen] = useState(false);
  const [editing, setEditing] = useState<Member | null>(null);
  const [removing, setRemoving] = useState<Member | null>(null);
  const [cancelling, setCancelling] = useState<PendingInvitation | null>(null);
  const [lastInvitation, setLastInvitation] = useState<PendingInvitation | null>(null);
  const [busyRole, setBusyRole] = useState<string | null>(null);

  const header = (
    <PageHeader
      title="Team"
      description="Who can use this account, what they can do, and which mailboxes each member uses."
      actions={
        state.data ? (
          <Button onClick={() => setInviteOpen(true)} icon={<PlusIcon />}>
            Invite someone
          </Button>
        ) : null
      }
    />
  );

  if (state.error && !state.data) {
    return (
      <>
        {header}
        {state.error.status === 403 ? (
          <Alert tone="info" title="Only an owner or an admin can manage the team">
            Ask an owner or admin of {me.accountName} if you need another mailbox or a different role.
          </Alert>
        ) : (
          <Alert
            tone="error"
            action={
              <Button size="sm" variant="secondary" onClick={() => void state.reload()}>
                Try again
              </Button>
            }
          >
            {state.error.message}
          </Alert>
        )}
      </>
    );
  }
  if (!state.data) {
    return (
      <>
        {header}
        <div className="flex justify-center py-16 text-zinc-500">
          <Spinner className="size-6" label="Loading the team" />
        </div>
      </>
    );
  }

  const { team, mailboxes, mailboxError } = state.data;

  async function changeRole(member: Member, role: Role) {
    setBusyRole(String(member.id));
    try {
      const updated = await teamApi.updateMember(member.id, { role });
      state.setData((current) =>
        current
          ? { ...current, team: { ...current.team, members: current.team.members.map((m) => (m.id === member.id ? updated : m)) } }
          : current!,
      );
      toast.success(`${member.name || member.email} is now ${ROLE_LABELS[role].toLowerCase()}.`);
    } catch (caught) {
      toast.error(asApiError(caught).message);
    } finally {
      setBusyRole(null);
    }
  }

  const columns: Column<Member>[] = [
    {
      header: "Name",
      hideOnCard: true,
      cell: (member) => <MemberName member={member} isMe={member.id === me.id} />,
    },
    {
      header: "Role",
      cell: (member) =>
        member.role === "owner" || member.id === me.id ? (
          <Badge tone={member.role === "owner" ? "info" : "neutral"}>{ROLE_LABELS[member.role]}</Badge>
        ) : (
          <span className="inline-flex items-center gap-2">
            <InlineSelect
              aria-label={`Role of ${member.name || member.email}`}
              value={member.role}
              disabled={busyRole === String(member.id)}
              onChange={(event) => void changeRole(member, event.target.value as Role)}
            >
              <option value="admin">Admin</option>
              <option value="member">Member</option>
            </InlineSelect>
            {busyRole === String(member.id) ? <Spinner label="Saving the role" /> : null}
          </span>
        ),
    },
    {
      header: "Mailboxes",
      cell: (member) =>
        member.role === "member" ? (
          <span className="inline-flex flex-wrap items-center gap-2">
            <span className="text-zinc-700 dark:text-zinc-300" title={member.mailboxes.join(", ")}>
              {member.mailboxes.length === 0
                ? "None yet"
                : member.mailboxes.length <= 2
                  ? member.mailboxes.join(", ")
                  : plural(member.mailboxes.length, "mailbox", "mailboxes")}
            </span>
            <Button size="sm" variant="ghost" onClick={() => setEditing(member)} aria-label={`Assign mailboxes to ${member.name || member.email}`}>
              Assign
            </Button>
          </span>
        ) : (
          <span className="text-zinc-600 dark:text-zinc-400">All mailboxes</span>
        ),
    },
    { header: "Joined", cell: (member) => formatDate(member.createdAt) },
    {
      header: "Actions",
      srOnlyHeader: true,
      className: "text-right",
      cell: (member) =>
        member.role !== "owner" && member.id !== me.id ? (
          <Button size="sm" variant="ghost" className="text-red-700 hover:text-red-800 dark:text-red-400" onClick={() => setRemoving(member)} aria-label={`Remove ${member.name || member.email}`}>
            Remove
          </Button>
        ) : null,
    },
  ];

  const invitationColumns: Column<PendingInvitation>[] = [
    { header: "Email", hideOnCard: true, cell: (invitation) => <span className="font-medium">{invitation.email}</span> },
    { header: "Role", cell: (invitation) => ROLE_LABELS[invitation.role] },
    { header: "Expires", cell: (invitation) => formatDateTime(invitation.expiresAt) },
    {
      header: "Actions",
      srOnlyHeader: true,
      className: "text-right",
      cell: (invitation) => (
        <span className="inline-flex flex-wrap justify-end gap-2">
          <CopyButton value={invitation.acceptUrl} text="Copy link" label={`Copy link for ${invitation.email}`} />
          <Button size="sm" variant="ghost" onClick={() => setCancelling(invitation)} aria-label={`Cancel the invitation for ${invitation.email}`}>
            Cancel
          </Button>
        </span>
      ),
    },
  ];

  return (
    <>
      {header}
      <div className="space-y-8">
        {lastInvitation ? (
          <Alert tone="success" title={`Invitation sent to ${lastInvitation.email}`}>
            <p>If the email does not arrive, send them this link yourself. It works once, until {formatDateTime(lastInvitation.expiresAt)}.</p>
            <div className="mt-2 flex flex-wrap items-center gap-2">
              <code className="max-w-full truncate rounded bg-white/70 px-2 py-1 font-mono text-xs dark:bg-black/30">{lastInvitation.acceptUrl}</code>
              <CopyButton value={lastInvitation.acceptUrl} text="Copy link" />
            </div>
          </Alert>
        ) : null}

        <section aria-labelledby="members-heading" className="space-y-3">
          <h2 id="members-heading" className="text-base font-semibold">
            Members <span className="font-normal text-zinc-500 dark:text-zinc-400">({team.members.length})</span>
          </h2>
          <Table
            label="Team members"
            columns={columns}
            rows={team.members}
            rowKey={(member) => String(member.id)}
            cardTitle={(member) => <MemberName member={member} isMe={member.id === me.id} />}
          />
          <p className="text-sm text-zinc-600 dark:text-zinc-400">{ROLE_HELP}</p>
        </section>

        <section aria-labelledby="invitations-heading" className="space-y-3">
          <h2 id="invitations-heading" className="text-base font-semibold">
            Pending invitations
          </h2>
          {team.invitations.length === 0 ? (
            <EmptyState title="No pending invitations">
              Invite a teammate by email; they choose their own password when they accept.
            </EmptyState>
          ) : (
            <Table
              label="Pending invitations"
              columns={invitationColumns}
              rows={team.invitations}
              rowKey={(invitation) => String(invitation.id)}
              cardTitle={(invitation) => invitation.email}
            />
          )}
        </section>
      </div>

      <InviteDialog
        open={inviteOpen}
        onClose={() => setInviteOpen(false)}
        mailboxes={mailboxes}
        mailboxError={mailboxError}
        onInvited={(invitation) => {
          setLastInvitation(invitation);
          state.setData((current) =>
            current ? { ...current, team: { ...current.team, invitations: [...current.team.invitations, invitation] } } : current!,
          );
          toast.success(`Invitation sent to ${invitation.email}.`);
        }}
      />
      <AssignDialog
        member={editing}
        mailboxes={mailboxes}
        mailboxError={mailboxError}
        onClose={() => setEditing(null)}
        onSaved={(updated) => {
          state.setData((current) =>
            current
              ? { ...current, team: { ...current.team, members: current.team.members.map((m) => (m.id === updated.id ? updated : m)) } }
              : current!,
          );
          toast.success(`Mailboxes of ${updated.name || updated.email} saved.`);
        }}
      />
      <ConfirmDialog
        open={removing !== null}
        onClose={() => setRemoving(null)}
        title={`Remove ${removing?.name || removing?.email || "this member"}?`}
        description={
          <>
            They lose access to {me.accountName} at once: every session they have open ends. Their mailboxes and the mail in
            them stay.
          </>
        }
        actionLabel="Remove from team"
        onConfirm={async () => {
          if (!removing) return;
          await teamApi.removeMember(removing.id);
          const gone = removing;
          state.setData((current) =>
            current ? { ...current, team: { ...current.team, members: current.team.members.filter((m) => m.id !== gone.id) } } : current!,
          );
          toast.success(`${gone.name || gone.email} was removed.`);
        }}
      />
      <ConfirmDialog
        open={cancelling !== null}
        onClose={() => setCancelling(null)}
        title="Cancel this invitation?"
        description={<>The link sent to {cancelling?.email} stops working. You can invite them again later.</>}
        actionLabel="Cancel invitation"
        onConfirm={async () => {
          if (!cancelling) return;
          await teamApi.cancelInvitation(cancelling.id);
          const gone = cancelling;
          state.setData((current) =>
            current
              ? { ...current, team: { ...current.team, invitations: current.team.invitations.filter((i) => i.id !== gone.id) } }
              : current!,
          );
          if (lastInvitation?.id === gone.id) setLastInvitation(null);
          toast.success(`The invitation for ${gone.email} was cancelled.`);
        }}
      />
    </>
  );
}

function MemberName({ member, isMe }: { member: Member; isMe: boolean }) {
  return (
    <span className="block min-w-0">
      <span className="block truncate font-medium text-zinc-900 dark:text-white">
        {member.name || member.email}
        {isMe ? <span className="ml-2 text-xs font-normal text-zinc-500 dark:text-zinc-400">(you)</span> : null}
      </span>
      {member.name ? <span className="block truncate text-xs text-zinc-600 dark:text-zinc-400">{member.email}</span> : null}
    </span>
  );
}

function MailboxPicker({
  mailboxes,
  error,
  selected,
  onChange,
}: {
  mailboxes: Mailbox[];
  error: string | null;
  selected: Set<string>;
  onChange: (selected: Set<string>) => void;
}) {
  const [filter, setFilter] = useState("");
  const shown = useMemo(
    () => mailboxes.filter((mailbox) => mailbox.address.toLowerCase().includes(filter.trim().toLowerCase())),
    [mailboxes, filter],
  );
  if (error) return <Alert tone="error" title="The mailboxes could not be loaded">{error}</Alert>;
  if (mailboxes.length === 0) {
    return (
      <div className="rounded-lg bg-zinc-50 p-3 text-sm text-zinc-600 dark:bg-zinc-800/50 dark:text-zinc-400">
        There are no mailboxes yet.{" "}
        <ButtonLink to="/dashboard/mailboxes" variant="ghost" size="sm">
          Create one
        </ButtonLink>
      </div>
    );
  }
  return (
    <fieldset>
      <legend className="mb-1.5 text-sm font-medium text-zinc-900 dark:text-zinc-100">
        Mailboxes <span className="font-normal text-zinc-500 dark:text-zinc-400">({selected.size} selected)</span>
      </legend>
      {mailboxes.length > 8 ? (
        <Input label="Filter mailboxes" className="mb-2" value={filter} onChange={(event) => setFilter(event.target.value)} type="search" />
      ) : null}
      <div className="max-h-56 space-y-2 overflow-y-auto rounded-lg p-3 ring-1 ring-zinc-200 ring-inset dark:ring-zinc-700">
        {shown.map((mailbox) => (
          <Checkbox
            key={mailbox.address}
            label={mailbox.address}
            hint={mailbox.displayName || undefined}
            checked={selected.has(mailbox.address)}
            onChange={(event) => {
              const next = new Set(selected);
              if (event.target.checked) next.add(mailbox.address);
              else next.delete(mailbox.address);
              onChange(next);
            }}
          />
        ))}
        {shown.length === 0 ? <p className="text-sm text-zinc-600 dark:text-zinc-400">No mailbox matches.</p> : null}
      </div>
    </fieldset>
  );
}

function InviteDialog({
  open,
  onClose,
  mailboxes,
  mailboxError,
  onInvited,
}: {
  open: boolean;
  onClose: () => void;
  mailboxes: Mailbox[];
  mailboxError: string | null;
  onInvited: (invitation: PendingInvitation) => void;
}) {
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("member");
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  function close() {
    setEmail("");
    setRole("member");
    setSelected(new Set());
    setError(null);
    onClose();
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    setPending(true);
    setError(null);
    try {
      const invitation = await teamApi.invite({
        email: email.trim(),
        role,
        mailboxes: role === "member" ? [...selected] : [],
      });
      onInvited(invitation);
      close();
    } catch (caught) {
      setError(asApiError(caught));
    } finally {
      setPending(false);
    }
  }

  const topError = formError(error, ["email", "role"]);
  return (
    <Dialog
      open={open}
      onClose={close}
      title="Invite someone"
      description="They get an email with a link to join; the link works once, for a limited time."
      busy={pending}
      footer={
        <>
          <Button variant="secondary" onClick={close} disabled={pending}>
            Cancel
          </Button>
          <Button type="submit" form="invite-form" loading={pending} disabled={!email.trim()}>
            Send invitation
          </Button>
        </>
      }
    >
      <form id="invite-form" onSubmit={submit} noValidate className="space-y-5">
        {topError ? <Alert tone="error">{topError}</Alert> : null}
        <Input
          label="Email"
          type="email"
          autoComplete="off"
          inputMode="email"
          required
          value={email}
          onChange={(event) => setEmail(event.target.value)}
          error={fieldError(error, "email")}
          data-autofocus
        />
        <Select label="Role" value={role} onChange={(event) => setRole(event.target.value as Role)} hint={ROLE_HELP} error={fieldError(error, "role")}>
          <option value="member">Member</option>
          <option value="admin">Admin</option>
        </Select>
        {role === "member" ? <MailboxPicker mailboxes={mailboxes} error={mailboxError} selected={selected} onChange={setSelected} /> : null}
        {fieldError(error, "mailboxes") ? <p className="text-sm text-red-700 dark:text-red-400">{fieldError(error, "mailboxes")}</p> : null}
      </form>
    </Dialog>
  );
}

function AssignDialog({
  member,
  mailboxes,
  mailboxError,
  onClose,
  onSaved,
}: {
  member: Member | null;
  mailboxes: Mailbox[];
  mailboxError: string | null;
  onClose: () => void;
  onSaved: (member: Member) => void;
}) {
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [forId, setForId] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  // Start from the member's mailboxes each time the dialog opens for someone.
  if (member && forId !== String(member.id)) {
    setForId(String(member.id));
    setSelected(new Set(member.mailboxes));
    setError(null);
  }
  if (!member && forId !== null) setForId(null);

  async function save() {
    if (!member) return;
    setPending(true);
    setError(null);
    try {
      onSaved(await teamApi.updateMember(member.id, { mailboxes: [...selected] }));
      onClose();
    } catch (caught) {
      setError(asApiError(caught).message);
    } finally {
      setPending(false);
    }
  }

  return (
    <Dialog
      open={member !== null}
      onClose={onClose}
      title={`Mailboxes of ${member?.name || member?.email || ""}`}
      description="A member sees and uses only the mailboxes assigned to them."
      busy={pending}
      footer={
        <>
          <Button variant="secondary" onClick={onClose} disabled={pending}>
            Cancel
          </Button>
          <Button onClick={() => void save()} loading={pending}>
            Save
          </Button>
        </>
      }
    >
      <div className="space-y-4">
        {error ? <Alert tone="error">{error}</Alert> : null}
        <MailboxPicker mailboxes={mailboxes} error={mailboxError} selected={selected} onChange={setSelected} />
      </div>
    </Dialog>
  );
}

function PlusIcon() {
  return (
    <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" className="size-4" aria-hidden="true">
      <path d="M12 5v14M5 12h14" strokeLinecap="round" />
    </svg>
  );
}

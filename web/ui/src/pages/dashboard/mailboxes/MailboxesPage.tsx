import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { useAccount } from "../../../account/AccountContext";
import { domainsApi, type DomainSummary } from "../../../api/domains";
import { mailboxesApi, type Mailbox } from "../../../api/mailboxes";
import { useAuth, useUser } from "../../../auth/AuthContext";
import { Alert } from "../../../components/Alert";
import { Button, ButtonLink } from "../../../components/Button";
import { Badge, PageHeader } from "../../../components/Card";
import { EmptyState } from "../../../components/EmptyState";
import { InlineSelect } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { Table, type Column } from "../../../components/Table";
import { useToast } from "../../../components/Toast";
import { formatDate } from "../../../lib/format";
import { LoadError } from "../LoadError";
import { useAsync } from "../../../lib/useAsync";
import { NewMailboxDialog } from "./NewMailboxDialog";

const envelope = (
  <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.8" className="size-5" aria-hidden="true">
    <path d="M4 6h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1Zm-1 1 9 6 9-6" strokeLinecap="round" strokeLinejoin="round" />
  </svg>
);

export function mailboxPath(address: string): string {
  return `/dashboard/mailboxes/${encodeURIComponent(address)}`;
}

export default function MailboxesPage() {
  const { canManage } = useAuth();
  const user = useUser();
  const navigate = useNavigate();
  const toast = useToast();
  const account = useAccount();
  const mailboxes = useAsync(() => mailboxesApi.list(), []);
  // Only owners and admins may list domains (and so create mailboxes).
  const domains = useAsync<DomainSummary[]>(() => (canManage ? domainsApi.list() : Promise.resolve([])), [canManage]);
  const [creating, setCreating] = useState(false);
  // "Add a mailbox" on a domain's page opens the dialog here with that domain chosen.
  const [params, setParams] = useSearchParams();
  const createOn = params.get("create") ?? undefined;
  const [domainFilter, setDomainFilter] = useState("");

  const list = mailboxes.data;
  const domainNames = useMemo(() => [...new Set((list ?? []).map((mailbox) => mailbox.domain))].sort(), [list]);
  const shown = domainFilter ? (list ?? []).filter((mailbox) => mailbox.domain === domainFilter) : (list ?? []);
  const waitingDomain = (domains.data ?? []).find((domain) => !domain.verified);
  const hasVerifiedDomain = (domains.data ?? []).some((domain) => domain.verified);

  const columns: Column<Mailbox>[] = [
    {
      header: "Address",
      hideOnCard: true,
      cell: (mailbox) => (
        <Link to={mailboxPath(mailbox.address)} className="font-medium break-all text-indigo-700 hover:underline dark:text-indigo-300">
          {mailbox.address}
        </Link>
      ),
    },
    { header: "Display name", cell: (mailbox) => mailbox.displayName || <span className="text-zinc-500 dark:text-zinc-400">—</span> },
    {
      header: "Password",
      cell: (mailbox) =>
        mailbox.hasPassword ? <Badge tone="success">Set</Badge> : <Badge tone="warning">Not set</Badge>,
    },
    { header: "Created", cell: (mailbox) => formatDate(mailbox.createdAt) },
  ];

  useEffect(() => {
    if (createOn !== undefined && hasVerifiedDomain) setCreating(true);
  }, [createOn, hasVerifiedDomain]);

  function closeDialog() {
    setCreating(false);
    if (createOn !== undefined) setParams({}, { replace: true });
  }

  const newButton = canManage && hasVerifiedDomain ? <Button onClick={() => setCreating(true)}>New mailbox</Button> : null;

  let body;
  if (mailboxes.error) {
    body = (
      <LoadError error={mailboxes.error} reload={mailboxes.reload} />
    );
  } else if (list === undefined || (canManage && domains.data === undefined && !domains.error)) {
    body = (
      <div className="flex justify-center py-16 text-zinc-500">
        <Spinner className="size-6" label="Loading mailboxes" />
      </div>
    );
  } else if (list.length === 0) {
    body = !canManage ? (
      <EmptyState title="No mailboxes for you yet" icon={envelope}>
        An owner or admin of {user.accountName} assigns mailboxes to team members. Ask them to assign you one; it
        will show here.
      </EmptyState>
    ) : hasVerifiedDomain ? (
      <EmptyState title="Create your first mailbox" icon={envelope} action={newButton}>
        A mailbox is an address such as hello@ or support@ on your domain, with its own inbox, signature and password
        for mail apps.
      </EmptyState>
    ) : waitingDomain ? (
      <EmptyState
        title="Your domain is waiting for DNS"
        icon={envelope}
        action={<ButtonLink to={`/dashboard/domains/${encodeURIComponent(waitingDomain.name)}`}>See its DNS records</ButtonLink>}
      >
        Mailboxes can be created on {waitingDomain.name} once its required DNS records are found. Publish them at your
        DNS provider; the domain's page shows each one turning OK.
      </EmptyState>
    ) : (
      <EmptyState
        title="Add a domain first"
        icon={envelope}
        action={<ButtonLink to="/dashboard/domains">Go to Domains</ButtonLink>}
      >
        Mailboxes live on a domain you own. Add your domain and publish its DNS records, then come back to create
        addresses on it.
      </EmptyState>
    );
  } else {
    body = (
      <>
        {domainNames.length > 1 ? (
          <div className="mb-4 flex items-center gap-2">
            <label htmlFor="mailbox-domain-filter" className="text-sm text-zinc-700 dark:text-zinc-300">
              Domain
            </label>
            <InlineSelect id="mailbox-domain-filter" value={domainFilter} onChange={(event) => setDomainFilter(event.target.value)}>
              <option value="">All domains</option>
              {domainNames.map((name) => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </InlineSelect>
          </div>
        ) : null}
        <Table
          label="Mailboxes"
          columns={columns}
          rows={shown}
          rowKey={(mailbox) => mailbox.address}
          cardTitle={(mailbox) => columns[0]!.cell(mailbox)}
        />
      </>
    );
  }

  return (
    <>
      <PageHeader
        title="Mailboxes"
        description={
          canManage
            ? "Addresses on your domains, with their signatures, passwords and mail app settings."
            : "The mailboxes assigned to you."
        }
        actions={list && list.length > 0 ? newButton : undefined}
      />
      {domains.error ? <Alert tone="error" className="mb-4">{domains.error.message}</Alert> : null}
      {body}
      {canManage ? (
        <NewMailboxDialog
          open={creating}
          onClose={closeDialog}
          domains={domains.data ?? []}
          initialDomain={createOn}
          onCreated={(mailbox) => {
            setCreating(false);
            toast.success(`${mailbox.address} created.`);
            void account.reload();
            navigate(mailboxPath(mailbox.address));
          }}
        />
      ) : null}
    </>
  );
}

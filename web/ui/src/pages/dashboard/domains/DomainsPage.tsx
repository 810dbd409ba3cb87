import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { domainsApi, type DomainSummary } from "../../../api/domains";
import { useAccount } from "../../../account/AccountContext";
import { Button } from "../../../components/Button";
import { Badge, PageHeader } from "../../../components/Card";
import { EmptyState } from "../../../components/EmptyState";
import { Spinner } from "../../../components/Spinner";
import { Table, type Column } from "../../../components/Table";
import { useToast } from "../../../components/Toast";
import { formatDate, plural, relativeTime } from "../../../lib/format";
import { LoadError } from "../LoadError";
import { useAsync } from "../../../lib/useAsync";
import { AddDomainDialog } from "./AddDomainDialog";
import { DomainStatusBadge } from "./DomainStatusBadge";

const globe = (
  <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.8" className="size-5" aria-hidden="true">
    <path
      d="M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18Zm0 0c2.5-2.4 3.8-5.4 3.8-9S14.5 5.4 12 3m0 18c-2.5-2.4-3.8-5.4-3.8-9S9.5 5.4 12 3M3.5 9h17m-17 6h17"
      strokeLinecap="round"
    />
  </svg>
);

export default function DomainsPage() {
  const domains = useAsync(() => domainsApi.list(), []);
  const account = useAccount();
  const navigate = useNavigate();
  const toast = useToast();
  const [adding, setAdding] = useState(false);

  const columns: Column<DomainSummary>[] = [
    {
      header: "Domain",
      hideOnCard: true,
      cell: (domain) => (
        <Link
          to={`/dashboard/domains/${encodeURIComponent(domain.name)}`}
          className="font-medium text-indigo-700 hover:underline dark:text-indigo-300"
        >
          {domain.name}
        </Link>
      ),
    },
    { header: "Status", cell: (domain) => <DomainStatusBadge verified={domain.verified} /> },
    {
      header: "Mailboxes",
      cell: (domain) =>
        domain.aliasOf ? (
          <Badge tone="info">Alias of {domain.aliasOf}</Badge>
        ) : (
          plural(domain.mailboxCount, "mailbox", "mailboxes")
        ),
    },
    { header: "Added", cell: (domain) => formatDate(domain.createdAt) },
    {
      header: "Last DNS check",
      cell: (domain) => (domain.lastCheckedAt ? relativeTime(domain.lastCheckedAt) : "Not checked yet"),
    },
  ];

  const addButton = <Button onClick={() => setAdding(true)}>Add domain</Button>;
  const list = domains.data;

  return (
    <>
      <PageHeader
        title="Domains"
        description="The domains Mailmark hosts mail for, and whether their DNS records are in place."
        actions={list && list.length > 0 ? addButton : undefined}
      />
      {domains.error ? (
        <LoadError error={domains.error} reload={domains.reload} />
      ) : list === undefined ? (
        <div className="flex justify-center py-16 text-zinc-500">
          <Spinner className="size-6" label="Loading domains" />
        </div>
      ) : list.length === 0 ? (
        <EmptyState title="Add your first domain" icon={globe} action={addButton}>
          Mailmark hosts mail for a domain you already own. Add it here, publish the DNS records it lists at your DNS
          provider (Cloudflare, Namecheap, GoDaddy…), and create mailboxes such as hello@ once it verifies.
        </EmptyState>
      ) : (
        <Table
          label="Domains"
          columns={columns}
          rows={list}
          rowKey={(domain) => domain.name}
          cardTitle={(domain) => columns[0]!.cell(domain)}
        />
      )}
      <AddDomainDialog
        open={adding}
        domains={(list ?? []).filter((domain) => !domain.aliasOf).map((domain) => domain.name)}
        onClose={() => setAdding(false)}
        onAdded={(domain) => {
          setAdding(false);
          toast.success(`${domain.name} added. Publish its DNS records next.`);
          void account.reload();
          navigate(`/dashboard/domains/${encodeURIComponent(domain.name)}`);
        }}
      />
    </>
  );
}

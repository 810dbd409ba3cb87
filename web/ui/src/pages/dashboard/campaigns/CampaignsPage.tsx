import { Link } from "react-router";
import { campaignsApi, type CampaignSummary } from "../../../api/campaigns";
import { ButtonLink } from "../../../components/Button";
import { PageHeader } from "../../../components/Card";
import { EmptyState } from "../../../components/EmptyState";
import { Spinner } from "../../../components/Spinner";
import { Table, type Column } from "../../../components/Table";
import { formatNumber } from "../../../lib/format";
import { useAsync } from "../../../lib/useAsync";
import { usePollWhile } from "../domains/poll";
import { LoadError } from "../LoadError";
import { campaignPath } from "./CampaignsArea";
import { rate } from "./logic";
import { StatusBadge } from "./StatusBadge";

export const megaphone = (
  <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.8" className="size-5" aria-hidden="true">
    <path d="M4 10v4a1 1 0 0 0 1 1h2l5 4V5L7 9H5a1 1 0 0 0-1 1Zm12-2a5 5 0 0 1 0 8m2.5-10.5a8.5 8.5 0 0 1 0 13" strokeLinecap="round" strokeLinejoin="round" />
  </svg>
);

function Count({ value, of }: { value: number; of?: number }) {
  return (
    <span className="tabular-nums">
      {formatNumber(value)}
      {of !== undefined ? <span className="ml-1 text-xs text-zinc-500 dark:text-zinc-400">{rate(value, of)}</span> : null}
    </span>
  );
}

export function CampaignsPage() {
  const campaigns = useAsync(() => campaignsApi.list(), []);
  // Sender groups by id, to name a group campaign's sender.
  const choices = useAsync(() => campaignsApi.choices(), []);
  const groupNames = new Map((choices.data?.senderGroups ?? []).map((group) => [group.id, group.name]));
  const list = campaigns.data?.data;
  usePollWhile(Boolean(list?.some((item) => item.campaign.status === "running")), 10_000, () => campaigns.reload());

  const columns: Column<CampaignSummary>[] = [
    {
      header: "Campaign",
      hideOnCard: true,
      cell: ({ campaign }) => (
        <Link to={campaignPath(campaign._id)} className="font-medium break-all text-indigo-700 hover:underline dark:text-indigo-300">
          {campaign.name}
        </Link>
      ),
    },
    {
      header: "Status",
      cell: ({ campaign }) => (
        <div className="flex flex-col items-start gap-1">
          <StatusBadge campaign={campaign} />
          {campaign.status === "paused" && campaign.pauseReason ? (
            <span className="max-w-64 text-xs text-zinc-600 dark:text-zinc-400">{campaign.pauseReason}</span>
          ) : null}
        </div>
      ),
    },
    {
      header: "Sender",
      cell: ({ campaign }) => (
        <span className="break-all">
          {campaign.from ??
            (campaign.senderGroupId && groupNames.has(campaign.senderGroupId)
              ? `Sender group ${groupNames.get(campaign.senderGroupId)}`
              : "Sender group")}
        </span>
      ),
    },
    { header: "Sent", className: "text-right", cell: ({ totals }) => <Count value={totals.sent} /> },
    { header: "Opened", className: "text-right", cell: ({ totals }) => <Count value={totals.humanOpened} of={totals.sent} /> },
    { header: "Clicked", className: "text-right", cell: ({ totals }) => <Count value={totals.humanClicked} of={totals.sent} /> },
    { header: "Replied", className: "text-right", cell: ({ totals }) => <Count value={totals.replied} of={totals.sent} /> },
  ];

  const newButton = <ButtonLink to="/dashboard/campaigns/new">New campaign</ButtonLink>;
  let body;
  if (campaigns.error) {
    body = <LoadError error={campaigns.error} reload={campaigns.reload} />;
  } else if (list === undefined) {
    body = (
      <div className="flex justify-center py-16 text-zinc-500">
        <Spinner className="size-6" label="Loading campaigns" />
      </div>
    );
  } else if (list.length === 0) {
    body = (
      <EmptyState title="Create your first campaign" icon={megaphone} action={newButton}>
        A campaign sends a sequence of emails to a list of contacts from one of your mailboxes, with follow-ups that stop
        when someone replies.
      </EmptyState>
    );
  } else {
    body = (
      <Table
        label="Campaigns"
        columns={columns}
        rows={list}
        rowKey={(item) => item.campaign._id}
        cardTitle={(item) => columns[0]!.cell(item)}
      />
    );
  }
  return (
    <>
      <PageHeader
        title="Campaigns"
        description="Sequences of emails to your contacts, with follow-ups that stop on a reply."
        actions={list && list.length > 0 ? newButton : null}
      />
      {body}
    </>
  );
}

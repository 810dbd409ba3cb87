import { Link, useParams } from "react-router";
import { campaignsApi, type TimelineEntry } from "../../../api/campaigns";
import { Badge, Card, PageHeader } from "../../../components/Card";
import { Spinner } from "../../../components/Spinner";
import { formatDateTime, plural } from "../../../lib/format";
import { useAsync } from "../../../lib/useAsync";
import { LoadError } from "../LoadError";
import { stateTone } from "./CampaignPage";
import { campaignPath } from "./CampaignsArea";

const LABELS: Record<string, string> = {
  sent: "Sent",
  delivered: "Delivered",
  deferred: "Delivery delayed",
  bounced: "Bounced",
  complained: "Marked as spam",
  opened: "Opened",
  clicked: "Clicked a link",
  replied: "Replied",
  auto_replied: "Automatic reply",
  unsubscribed: "Unsubscribed",
  canceled: "Cancelled",
};

const DOTS: Record<string, string> = {
  sent: "bg-indigo-500",
  delivered: "bg-sky-500",
  opened: "bg-emerald-500",
  clicked: "bg-amber-500",
  replied: "bg-rose-500",
  bounced: "bg-red-600",
  complained: "bg-red-600",
  unsubscribed: "bg-zinc-500",
};

function describe(entry: TimelineEntry): string {
  const label = LABELS[entry.kind] ?? entry.kind;
  return entry.machine ? `${label} (by a machine)` : label;
}

export function RecipientPage() {
  const { id = "", recipientId = "" } = useParams();
  const found = useAsync(() => campaignsApi.recipient(id, recipientId), [id, recipientId]);
  const back = (
    <Link to={campaignPath(id)} className="text-indigo-700 hover:underline dark:text-indigo-300">
      ← Campaign
    </Link>
  );
  if (found.error) {
    return (
      <>
        <PageHeader title="Recipient" back={back} />
        <LoadError error={found.error} reload={found.reload} />
      </>
    );
  }
  if (!found.data) {
    return (
      <div className="flex justify-center py-16 text-zinc-500">
        <Spinner className="size-6" label="Loading the recipient" />
      </div>
    );
  }
  const { recipient, entries } = found.data;
  return (
    <>
      <PageHeader
        title={recipient.email}
        back={back}
        description={
          <span className="flex flex-wrap items-center gap-x-3 gap-y-1">
            <Badge tone={stateTone(recipient.state)}>{recipient.state}</Badge>
            <span>{plural(recipient.stagesSent, "stage")} sent</span>
            {recipient.state === "active" ? <span>Stage {recipient.nextStage} due {formatDateTime(recipient.nextSendAt)}</span> : null}
            {recipient.autoReplies ? <span>{plural(recipient.autoReplies, "automatic reply", "automatic replies")}</span> : null}
            {recipient.stopReason ? <span>Left the sequence: {recipient.stopReason}</span> : null}
          </span>
        }
      />
      <Card title="Timeline" description="Each stage sent to this recipient and everything that happened to it, oldest first.">
        {entries.length === 0 ? (
          <p className="text-sm text-zinc-600 dark:text-zinc-400">Nothing sent to this recipient yet.</p>
        ) : (
          <ol className="relative space-y-4 border-l border-zinc-200 pl-6 dark:border-zinc-800" aria-label="Timeline">
            {entries.map((entry, index) => (
              <li key={index} className="relative">
                <span className={`absolute top-1.5 -left-[29px] size-2.5 rounded-full ring-4 ring-white dark:ring-zinc-900 ${DOTS[entry.kind] ?? "bg-zinc-400"}`} aria-hidden="true" />
                <div className="flex flex-wrap items-baseline gap-x-3">
                  <span className="font-medium text-zinc-900 dark:text-white">{describe(entry)}</span>
                  {entry.stage ? <span className="text-sm text-zinc-600 dark:text-zinc-400">Stage {entry.stage}</span> : null}
                  <time dateTime={entry.at} className="text-sm text-zinc-600 tabular-nums dark:text-zinc-400">
                    {formatDateTime(entry.at)}
                  </time>
                </div>
                {entry.detail ? <p className="mt-0.5 text-sm break-all text-zinc-600 dark:text-zinc-400">{entry.detail}</p> : null}
              </li>
            ))}
          </ol>
        )}
      </Card>
    </>
  );
}

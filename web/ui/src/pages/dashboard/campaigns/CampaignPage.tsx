import { useState } from "react";
import { Link, useParams } from "react-router";
import { campaignsApi, type Campaign, type Counts, type Recipient, type Stats } from "../../../api/campaigns";
import { Alert } from "../../../components/Alert";
import { Button, ButtonLink, buttonClasses } from "../../../components/Button";
import { Badge, Card, PageHeader, type BadgeTone } from "../../../components/Card";
import { ConfirmDialog } from "../../../components/ConfirmDialog";
import { InlineSelect } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { Table, type Column } from "../../../components/Table";
import { useToast } from "../../../components/Toast";
import { formatDateTime, formatNumber, plural } from "../../../lib/format";
import { useAsync } from "../../../lib/useAsync";
import { usePollWhile } from "../domains/poll";
import { LoadError } from "../LoadError";
import { ActivityChart } from "./ActivityChart";
import { campaignPath } from "./CampaignsArea";
import { describeWindow, rate } from "./logic";
import { StatusBadge } from "./StatusBadge";

const REFRESH_MS = 5_000;
const STATES = ["active", "completed", "replied", "bounced", "complained", "unsubscribed", "suppressed", "failed", "canceled"];

export function stateTone(state: string): BadgeTone {
  if (state === "replied" || state === "completed") return "success";
  if (state === "active") return "info";
  if (state === "bounced" || state === "complained" || state === "failed") return "danger";
  if (state === "unsubscribed" || state === "suppressed") return "warning";
  return "neutral";
}

type Action = "pause" | "resume" | "cancel" | "launch";

export function CampaignPage() {
  const { id = "" } = useParams();
  const toast = useToast();
  const campaign = useAsync(() => campaignsApi.get(id), [id]);
  const stats = useAsync(() => campaignsApi.stats(id), [id]);
  const [bucket, setBucket] = useState<"" | "hour" | "day">("");
  const activity = useAsync(() => campaignsApi.activity(id, bucket || undefined), [id, bucket]);
  const [confirming, setConfirming] = useState<Action | null>(null);
  const running = campaign.data?.status === "running";

  usePollWhile(running, REFRESH_MS, () => Promise.all([stats.reload(), activity.reload(), campaign.reload()]));

  async function act(action: Action) {
    const changed = await campaignsApi[action](id);
    campaign.setData(changed);
    await stats.reload();
    toast.success(
      { pause: "Campaign paused.", resume: "Campaign resumed.", cancel: "Campaign cancelled.", launch: "Campaign launched." }[action],
    );
  }

  const back = (
    <Link to="/dashboard/campaigns" className="text-indigo-700 hover:underline dark:text-indigo-300">
      ← Campaigns
    </Link>
  );
  if (campaign.error) {
    return (
      <>
        <PageHeader title="Campaign" back={back} />
        <LoadError error={campaign.error} reload={campaign.reload} />
      </>
    );
  }
  const shown = campaign.data;
  if (!shown) {
    return (
      <div className="flex justify-center py-16 text-zinc-500">
        <Spinner className="size-6" label="Loading the campaign" />
      </div>
    );
  }
  const status = shown.status;
  const actions = (
    <>
      {status === "draft" || status === "paused" ? (
        <ButtonLink to={campaignPath(id, "/edit")} variant="secondary">
          Edit
        </ButtonLink>
      ) : null}
      <a href={campaignsApi.exportUrl(id)} download className={buttonClasses("secondary")}>
        Export CSV
      </a>
      {status === "running" ? (
        <Button variant="secondary" onClick={() => setConfirming("pause")}>
          Pause
        </Button>
      ) : null}
      {status === "paused" ? <Button onClick={() => setConfirming("resume")}>Resume</Button> : null}
      {status === "draft" ? <Button onClick={() => setConfirming("launch")}>Launch…</Button> : null}
      {status === "draft" || status === "running" || status === "paused" ? (
        <Button variant="danger" onClick={() => setConfirming("cancel")}>
          Cancel campaign
        </Button>
      ) : null}
    </>
  );

  const confirmations: Record<Action, { title: string; description: string; label: string; danger: boolean }> = {
    pause: { title: `Pause ${shown.name}?`, description: "No more stages are sent until you resume it. Replies are still recorded.", label: "Pause campaign", danger: false },
    resume: { title: `Resume ${shown.name}?`, description: "Sending continues within its schedule, where it stopped.", label: "Resume campaign", danger: false },
    launch: { title: `Launch ${shown.name}?`, description: "Its audience is fixed now and it sends as its schedule allows.", label: "Launch campaign", danger: false },
    cancel: {
      title: `Cancel ${shown.name}?`,
      description: "No further stage is sent to anyone; emails already queued still go. A cancelled campaign cannot be resumed.",
      label: "Cancel campaign",
      danger: true,
    },
  };
  const confirm = confirming ? confirmations[confirming] : null;

  return (
    <>
      <PageHeader
        title={shown.name}
        back={back}
        description={<CampaignLine campaign={shown} />}
        actions={actions}
      />
      <div className="space-y-6">
        {status === "paused" && shown.pauseReason ? <Alert tone="warning">{shown.pauseReason}</Alert> : null}
        {stats.error ? <LoadError error={stats.error} reload={stats.reload} /> : stats.data ? <Totals stats={stats.data} /> : null}
        <Card
          title="Activity"
          description={running ? "Updates every few seconds while the campaign runs." : undefined}
          actions={
            <>
              <label htmlFor="activity-bucket" className="sr-only">
                Group activity by
              </label>
              <InlineSelect id="activity-bucket" value={bucket} onChange={(event) => setBucket(event.target.value as "" | "hour" | "day")}>
                <option value="">Automatic</option>
                <option value="hour">Per hour</option>
                <option value="day">Per day</option>
              </InlineSelect>
            </>
          }
        >
          {activity.error ? <LoadError error={activity.error} reload={activity.reload} /> : activity.data ? <ActivityChart activity={activity.data} /> : <Spinner label="Loading activity" />}
        </Card>
        {stats.data ? <StageTable stats={stats.data} /> : null}
        <Recipients campaignId={id} refreshKey={stats.data ? `${stats.data.totals.sent}:${JSON.stringify(stats.data.states)}` : ""} />
      </div>
      {confirm && confirming ? (
        <ConfirmDialog
          open
          onClose={() => setConfirming(null)}
          onConfirm={() => act(confirming)}
          title={confirm.title}
          description={confirm.description}
          actionLabel={confirm.label}
          danger={confirm.danger}
        />
      ) : null}
    </>
  );
}

function CampaignLine({ campaign }: { campaign: Campaign }) {
  const schedule = campaign.schedule;
  return (
    <span className="flex flex-wrap items-center gap-x-3 gap-y-1">
      <StatusBadge campaign={campaign} />
      <span>From {campaign.from ?? "a sender group"}</span>
      <span>{plural(campaign.stages.length, "stage")}</span>
      <span>
        {describeWindow(schedule.days, schedule.hours)} ({schedule.timezone})
      </span>
      {campaign.launchedAt ? <span>Launched {formatDateTime(campaign.launchedAt)}</span> : null}
    </span>
  );
}

function Tile({ label, value, detail }: { label: string; value: string; detail?: string }) {
  return (
    <div className="rounded-xl bg-white px-4 py-3 shadow-sm ring-1 ring-zinc-200 dark:bg-zinc-900 dark:ring-zinc-800">
      <dt className="text-sm text-zinc-600 dark:text-zinc-400">{label}</dt>
      <dd className="mt-1 text-2xl font-semibold tracking-tight text-zinc-900 tabular-nums dark:text-white">{value}</dd>
      {detail ? <dd className="text-xs text-zinc-600 dark:text-zinc-400">{detail}</dd> : null}
    </div>
  );
}

function Totals({ stats }: { stats: Stats }) {
  const t = stats.totals;
  return (
    <dl className="grid grid-cols-2 gap-3 sm:grid-cols-4" aria-label="Totals">
      <Tile label="Recipients" value={formatNumber(stats.recipients)} detail={`${formatNumber(stats.states.active ?? 0)} in sequence`} />
      <Tile label="Sent" value={formatNumber(t.sent)} detail="emails, all stages" />
      <Tile label="Delivered" value={formatNumber(t.delivered)} detail={rate(t.delivered, t.sent)} />
      <Tile label="Opened" value={formatNumber(t.humanOpened)} detail={`${rate(t.humanOpened, t.sent)} by people · ${formatNumber(t.opened - t.humanOpened)} by machines`} />
      <Tile label="Clicked" value={formatNumber(t.humanClicked)} detail={rate(t.humanClicked, t.sent)} />
      <Tile label="Replied" value={formatNumber(t.replied)} detail={rate(t.replied, t.sent)} />
      <Tile label="Bounced" value={formatNumber(t.bounced)} detail={rate(t.bounced, t.sent)} />
      <Tile label="Unsubscribed" value={formatNumber(t.unsubscribed)} detail={`${formatNumber(t.complained)} complained`} />
    </dl>
  );
}

type Row = { key: string; label: string; subject: string | null; counts: Counts; variant: boolean };

function StageTable({ stats }: { stats: Stats }) {
  const rows: Row[] = [];
  for (const stage of stats.stages) {
    rows.push({ key: `s${stage.stage}`, label: `Stage ${stage.stage}`, subject: null, counts: stage.counts, variant: false });
    if (stage.variants.length > 1) {
      for (const variant of stage.variants) {
        rows.push({
          key: `s${stage.stage}v${variant.variant}`,
          label: `Variant ${String.fromCharCode(65 + variant.variant)}`,
          subject: variant.subject,
          counts: variant.counts,
          variant: true,
        });
      }
    }
  }
  const cell = (pick: (c: Counts) => number) => (row: Row) => (
    <div className="tabular-nums">
      {formatNumber(pick(row.counts))}
      <div className="text-xs text-zinc-500 dark:text-zinc-400">{rate(pick(row.counts), row.counts.sent)}</div>
    </div>
  );
  const columns: Column<Row>[] = [
    {
      header: "Stage",
      hideOnCard: true,
      cell: (row) => (
        <div className={row.variant ? "pl-4" : "font-medium text-zinc-900 dark:text-white"}>
          {row.label}
          {row.subject ? <div className="max-w-40 truncate text-xs text-zinc-600 dark:text-zinc-400">{row.subject}</div> : null}
        </div>
      ),
    },
    { header: "Sent", cell: (row) => <span className="tabular-nums">{formatNumber(row.counts.sent)}</span> },
    { header: "Delivered", cell: cell((c) => c.delivered) },
    {
      header: "Opened",
      cell: (row) => (
        <div className="tabular-nums">
          {formatNumber(row.counts.humanOpened)}
          <div className="text-xs text-zinc-500 dark:text-zinc-400">
            {rate(row.counts.humanOpened, row.counts.sent)}
            {row.counts.opened > row.counts.humanOpened ? ` · +${formatNumber(row.counts.opened - row.counts.humanOpened)} machine` : ""}
          </div>
        </div>
      ),
    },
    { header: "Clicked", cell: cell((c) => c.humanClicked) },
    { header: "Replied", cell: cell((c) => c.replied) },
    { header: "Bounced", cell: cell((c) => c.bounced) },
    { header: "Unsubscribed", cell: cell((c) => c.unsubscribed) },
    { header: "Spam", cell: cell((c) => c.complained) },
  ];
  return (
    <section aria-labelledby="stages-heading">
      <h2 id="stages-heading" className="mb-3 text-base font-semibold text-zinc-900 dark:text-white">
        By stage and variant
      </h2>
      <Table label="By stage and variant" columns={columns} rows={rows} rowKey={(row) => row.key} cardTitle={(row) => columns[0]!.cell(row)} />
    </section>
  );
}

/** The recipients' first page reloads when `refreshKey` changes (more sent, states moved). */
function Recipients({ campaignId, refreshKey }: { campaignId: string; refreshKey: string }) {
  const [state, setState] = useState("");
  const [more, setMore] = useState<Recipient[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const first = useAsync(async () => {
    const page = await campaignsApi.recipients(campaignId, state);
    setMore([]);
    setCursor(page.nextCursor);
    return page.data;
  }, [campaignId, state, refreshKey]);
  const rows = [...(first.data ?? []), ...more];

  async function loadMore() {
    if (!cursor) return;
    const page = await campaignsApi.recipients(campaignId, state, cursor);
    setMore((current) => [...current, ...page.data]);
    setCursor(page.nextCursor);
  }

  const columns: Column<Recipient>[] = [
    {
      header: "Recipient",
      hideOnCard: true,
      cell: (r) => (
        <Link to={campaignPath(campaignId, `/recipients/${encodeURIComponent(r._id)}`)} className="font-medium break-all text-indigo-700 hover:underline dark:text-indigo-300">
          {r.email}
        </Link>
      ),
    },
    {
      header: "State",
      cell: (r) => (
        <div className="flex flex-col items-start gap-1">
          <Badge tone={stateTone(r.state)}>{r.state}</Badge>
          {r.stopReason ? <span className="max-w-64 text-xs text-zinc-600 dark:text-zinc-400">{r.stopReason}</span> : null}
        </div>
      ),
    },
    { header: "Stages sent", cell: (r) => <span className="tabular-nums">{r.stagesSent}</span> },
    { header: "Next", cell: (r) => (r.state === "active" ? `Stage ${r.nextStage}, ${formatDateTime(r.nextSendAt)}` : "—") },
    { header: "Auto-replies", cell: (r) => <span className="tabular-nums">{r.autoReplies}</span> },
  ];

  return (
    <section aria-labelledby="recipients-heading">
      <div className="mb-3 flex flex-wrap items-center justify-between gap-3">
        <h2 id="recipients-heading" className="text-base font-semibold text-zinc-900 dark:text-white">
          Recipients
        </h2>
        <div className="flex items-center gap-2">
          <label htmlFor="recipient-state" className="text-sm text-zinc-700 dark:text-zinc-300">
            State
          </label>
          <InlineSelect id="recipient-state" value={state} onChange={(event) => setState(event.target.value)}>
            <option value="">All</option>
            {STATES.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </InlineSelect>
        </div>
      </div>
      {first.error ? (
        <LoadError error={first.error} reload={first.reload} />
      ) : first.data === undefined ? (
        <Spinner label="Loading recipients" />
      ) : rows.length === 0 ? (
        <p className="rounded-xl bg-white px-4 py-6 text-center text-sm text-zinc-600 ring-1 ring-zinc-200 dark:bg-zinc-900 dark:text-zinc-400 dark:ring-zinc-800">
          {state ? `No recipient is ${state}.` : "Recipients are added when the campaign is launched."}
        </p>
      ) : (
        <>
          <Table label="Recipients" columns={columns} rows={rows} rowKey={(r) => r._id} cardTitle={(r) => columns[0]!.cell(r)} />
          {cursor ? (
            <div className="mt-3 flex justify-center">
              <Button variant="secondary" onClick={() => void loadMore()}>
                Show more
              </Button>
            </div>
          ) : null}
        </>
      )}
    </section>
  );
}

import { reportsApi, type ReportOverview, type ReportSource } from "../../../api/domains";
import { Alert } from "../../../components/Alert";
import { Badge, Card } from "../../../components/Card";
import { EmptyState } from "../../../components/EmptyState";
import { Spinner } from "../../../components/Spinner";
import { Table, type Column } from "../../../components/Table";
import { formatDate, formatNumber, plural } from "../../../lib/format";
import { useAsync } from "../../../lib/useAsync";

/** "97%" of `whole`; a dash when nothing was counted. */
export function percent(part: number, whole: number): string {
  return whole ? `${Math.round((100 * part) / whole)}%` : "—";
}

function Rate({ part, whole }: { part: number; whole: number }) {
  const tone = !whole ? "neutral" : part === whole ? "success" : part === 0 ? "danger" : "warning";
  return <Badge tone={tone}>{percent(part, whole)}</Badge>;
}

const columns: Column<ReportSource>[] = [
  { header: "Source IP", cell: (s) => <span className="font-mono text-xs break-all">{s.sourceIp}</span>, hideOnCard: true },
  { header: "Messages", cell: (s) => formatNumber(s.messages), className: "text-right" },
  { header: "DMARC pass", cell: (s) => <Rate part={s.dmarcPass} whole={s.messages} /> },
  { header: "SPF aligned", cell: (s) => <Rate part={s.spfAligned} whole={s.messages} /> },
  { header: "DKIM aligned", cell: (s) => <Rate part={s.dkimAligned} whole={s.messages} /> },
  {
    header: "Quarantined / rejected",
    cell: (s) => `${formatNumber(s.quarantined)} / ${formatNumber(s.rejected)}`,
  },
];

/** The domain page's "Reports" section: who sends as the domain and how it authenticates. */
export function DomainReports({ name }: { name: string }) {
  const overview = useAsync(() => reportsApi.get(name), [name]);
  return (
    <Card
      title="Reports"
      description="What receivers report about mail sent as this domain: each sending IP with its SPF, DKIM and alignment results, and TLS failures reaching this server."
    >
      {overview.error ? (
        <Alert tone="error">{overview.error.message}</Alert>
      ) : !overview.data ? (
        <div className="flex justify-center py-6 text-zinc-500">
          <Spinner className="size-5" label="Loading the reports" />
        </div>
      ) : (
        <ReportView overview={overview.data} />
      )}
    </Card>
  );
}

function ReportView({ overview }: { overview: ReportOverview }) {
  const { totals, tls } = overview;
  if (overview.reports === 0) {
    return (
      <EmptyState title="No reports yet">
        Receivers such as Gmail, Outlook and Yahoo send daily reports to dmarc@{overview.domain} and
        tls-reports@{overview.domain} once the DMARC and TLS-RPT records above are published. They will show here:
        which servers send as {overview.domain}, whether their mail passes SPF, DKIM and alignment, and any TLS
        failures.
      </EmptyState>
    );
  }
  const failed = overview.recent.find((report) => report.status === "failed");
  // ISO 8601 UTC times sort as text: the period the latest reports cover.
  const ends = overview.recent.flatMap((report) => (report.status === "parsed" && report.end ? [report.end] : []));
  const latestEnd = ends.length ? ends.reduce((a, b) => (a > b ? a : b)) : null;
  return (
    <div className="space-y-4">
      <p className="text-sm text-zinc-700 dark:text-zinc-300">
        {plural(totals.messages, "message")} reported: {percent(totals.dmarcPass, totals.messages)} pass DMARC (SPF
        aligned {percent(totals.spfAligned, totals.messages)}, DKIM aligned{" "}
        {percent(totals.dkimAligned, totals.messages)}), from {plural(overview.reports - overview.failedReports, "report")}
        {latestEnd ? `, the latest covering up to ${formatDate(latestEnd)}` : ""}.
      </p>
      {overview.sources.length > 0 ? (
        <Table
          columns={columns}
          rows={overview.sources}
          rowKey={(s) => s.sourceIp}
          label="Sending sources"
          cardTitle={(s) => <span className="font-mono text-xs break-all">{s.sourceIp}</span>}
        />
      ) : null}
      {tls.successfulSessions + tls.failedSessions > 0 ? (
        <div className="text-sm text-zinc-700 dark:text-zinc-300">
          <p>
            TLS: {plural(tls.successfulSessions, "session")} succeeded, {formatNumber(tls.failedSessions)} failed.
          </p>
          {tls.failures.length > 0 ? (
            <ul className="mt-1 list-disc space-y-0.5 pl-5" aria-label="TLS failures">
              {tls.failures.map((f) => (
                <li key={`${f.resultType} ${f.receivingMx}`}>
                  <span className="font-medium">{f.resultType}</span>
                  {f.receivingMx ? ` at ${f.receivingMx}` : ""}: {plural(f.sessions, "session")}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      {failed ? (
        <Alert tone="warning">
          {plural(overview.failedReports, "report")} could not be read. The latest: {failed.reason}
        </Alert>
      ) : null}
    </div>
  );
}

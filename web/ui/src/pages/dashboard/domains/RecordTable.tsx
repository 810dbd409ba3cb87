import type { ReactNode } from "react";
import type { DnsRecord } from "../../../api/domains";
import { Badge } from "../../../components/Card";
import { CopyButton } from "../../../components/CopyButton";
import { STATUS_LABELS, recordKey, recordName } from "./records";

function StatusBadge({ record }: { record: DnsRecord }) {
  const { label, tone } = STATUS_LABELS[record.status];
  // A recommended record that is not published yet is a suggestion, not a fault.
  return <Badge tone={!record.required && record.status === "missing" ? "neutral" : tone}>{label}</Badge>;
}

/** A copy button showing only its icon (its name says what it copies), to fit a table cell. */
function CopyIcon({ value, label }: { value: string; label: string }) {
  return <CopyButton variant="ghost" value={value} label={label} className="-my-1 w-8 shrink-0 px-0! [&>span:last-child]:sr-only" />;
}

function Mono({ children, strong = false }: { children: ReactNode; strong?: boolean }) {
  return (
    <code
      className={`font-mono text-[13px] break-all ${
        strong ? "font-semibold text-zinc-900 dark:text-white" : "text-zinc-700 dark:text-zinc-300"
      }`}
    >
      {children}
    </code>
  );
}

function HostCell({ record }: { record: DnsRecord }) {
  const fullyQualified = record.relativeHost !== record.host;
  return (
    <div className="space-y-1.5">
      <div className="flex items-start gap-1">
        <Mono strong>{record.relativeHost}</Mono>
        <CopyIcon value={record.relativeHost} label={`Copy host of ${recordName(record)}`} />
      </div>
      {fullyQualified ? (
        <div className="flex items-start gap-1">
          <span className="min-w-0 text-xs">
            <span className="sr-only">Fully qualified: </span>
            <Mono>{record.host}</Mono>
          </span>
          <CopyIcon value={record.host} label={`Copy fully qualified host of ${recordName(record)}`} />
        </div>
      ) : null}
    </div>
  );
}

function ValueCell({ record }: { record: DnsRecord }) {
  return (
    <div className="flex items-start justify-between gap-1">
      <Mono>{record.value}</Mono>
      <CopyIcon value={record.value} label={`Copy value of ${recordName(record)}`} />
    </div>
  );
}

/** What the last check found, and the sentence that says how to fix it. */
function CheckResult({ record }: { record: DnsRecord }) {
  if (record.status === "ok" || record.status === "unchecked") return null;
  const tone = !record.required
    ? "text-zinc-700 dark:text-zinc-300"
    : record.status === "missing"
      ? "text-red-800 dark:text-red-300"
      : "text-amber-900 dark:text-amber-200";
  return (
    <div className={`mt-2 space-y-1 text-sm [overflow-wrap:anywhere] ${tone}`}>
      {record.found.length > 0 ? (
        <p>
          <span className="font-medium">Found: </span>
          {record.found.map((value, index) => (
            <span key={index}>
              {index > 0 ? ", " : null}
              <code className="font-mono text-[13px] break-all">{value}</code>
            </span>
          ))}
        </p>
      ) : record.status === "missing" ? (
        <p>
          <span className="font-medium">Found: </span>nothing yet.
        </p>
      ) : null}
      {record.fix ? <p>{record.fix}</p> : null}
    </div>
  );
}

/** The records of one group (required or recommended): a table on wide screens, cards on phones. */
export function RecordTable({ records, label }: { records: DnsRecord[]; label: string }) {
  return (
    <>
      <div className="hidden md:block">
        <table className="w-full table-fixed text-sm" aria-label={label}>
          <colgroup>
            <col className="w-28" />
            <col className="w-20" />
            <col className="w-[32%]" />
            <col />
          </colgroup>
          <thead>
            <tr className="border-b border-zinc-200 text-left text-xs font-semibold tracking-wide text-zinc-600 uppercase dark:border-zinc-800 dark:text-zinc-400">
              <th scope="col" className="py-2 pr-3">Status</th>
              <th scope="col" className="py-2 pr-3">Type</th>
              <th scope="col" className="py-2 pr-3">Host</th>
              <th scope="col" className="py-2">Value</th>
            </tr>
          </thead>
          {records.map((record) => (
            <tbody
              key={recordKey(record)}
              data-status={record.status}
              aria-label={recordName(record)}
              className="border-b border-zinc-100 last:border-0 dark:border-zinc-800"
            >
              <tr className="align-top">
                <td className="pt-3 pr-3">
                  <StatusBadge record={record} />
                </td>
                <td className="pt-3 pr-3">
                  <span className="font-semibold text-zinc-900 dark:text-white">{record.type}</span>
                  {record.priority !== null ? (
                    <span className="block text-xs text-zinc-600 dark:text-zinc-400">Priority {record.priority}</span>
                  ) : null}
                </td>
                <td className="pt-2 pr-3">
                  <HostCell record={record} />
                </td>
                <td className="pt-2">
                  <ValueCell record={record} />
                </td>
              </tr>
              <tr>
                <td colSpan={4} className="pt-1 pb-3">
                  <p className="text-sm text-zinc-600 [overflow-wrap:anywhere] dark:text-zinc-400">
                    {record.purpose}
                  </p>
                  <CheckResult record={record} />
                </td>
              </tr>
            </tbody>
          ))}
        </table>
      </div>

      <ul className="space-y-3 md:hidden" aria-label={label}>
        {records.map((record) => (
          <li
            key={recordKey(record)}
            data-status={record.status}
            aria-label={recordName(record)}
            className="rounded-lg p-3 ring-1 ring-zinc-200 dark:ring-zinc-800"
          >
            <div className="flex flex-wrap items-center gap-2">
              <StatusBadge record={record} />
              <span className="font-semibold text-zinc-900 dark:text-white">{record.type}</span>
              {record.priority !== null ? (
                <span className="text-xs text-zinc-600 dark:text-zinc-400">Priority {record.priority}</span>
              ) : null}
            </div>
            <p className="mt-1.5 text-sm text-zinc-600 dark:text-zinc-400">{record.purpose}</p>
            <dl className="mt-3 space-y-3 text-sm">
              <div>
                <dt className="mb-1 text-xs font-medium text-zinc-600 uppercase dark:text-zinc-400">Host</dt>
                <dd>
                  <HostCell record={record} />
                </dd>
              </div>
              <div>
                <dt className="mb-1 text-xs font-medium text-zinc-600 uppercase dark:text-zinc-400">Value</dt>
                <dd>
                  <ValueCell record={record} />
                </dd>
              </div>
            </dl>
            <CheckResult record={record} />
          </li>
        ))}
      </ul>
    </>
  );
}

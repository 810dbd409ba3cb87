import type { DnsRecord, RecordStatus } from "../../../api/domains";
import type { BadgeTone } from "../../../components/Card";

export const STATUS_LABELS: Record<RecordStatus, { label: string; tone: BadgeTone }> = {
  ok: { label: "OK", tone: "success" },
  missing: { label: "Missing", tone: "danger" },
  mismatch: { label: "Mismatch", tone: "warning" },
  error: { label: "Lookup error", tone: "warning" },
  unchecked: { label: "Not checked", tone: "neutral" },
};

export type Progress = { found: number; total: number };

/** How many of the required records the last check found, for the progress line. */
export function requiredProgress(records: readonly DnsRecord[]): Progress {
  const required = records.filter((record) => record.required);
  return { found: required.filter((record) => record.status === "ok").length, total: required.length };
}

/** Required records first, each group in the server's order (MX, SPF, DKIM, DMARC, return path…). */
export function groupRecords(records: readonly DnsRecord[]): { required: DnsRecord[]; recommended: DnsRecord[] } {
  return {
    required: records.filter((record) => record.required),
    recommended: records.filter((record) => !record.required),
  };
}

/** A key that stays the same across checks (two records may share a host, never host + type + value). */
export function recordKey(record: DnsRecord): string {
  return `${record.type} ${record.host} ${record.value}`;
}

/** "MX @", "TXT _dmarc": how buttons name the record they act on. */
export function recordName(record: DnsRecord): string {
  return `${record.type} ${record.relativeHost}`;
}

/** The campaign pages' arithmetic: chart scales and paths, stage timing, rates and labels. */
import type { ActivityPoint, Campaign, CampaignStatus } from "../../../api/campaigns";
import type { BadgeTone } from "../../../components/Card";

/** The smallest 1, 2 or 5 × 10ⁿ at or above `value` (at least 1): a readable axis top. */
export function niceCeiling(value: number): number {
  if (!(value > 1)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

/** Ticks from 0 to `top` (a `niceCeiling`), a 1, 2 or 5 × 10ⁿ apart: about five of them. */
export function ticks(top: number): number[] {
  const step = Math.max(1, niceCeiling(top / 5));
  const out: number[] = [];
  for (let value = 0; value <= top; value += step) out.push(value);
  return out;
}

export type Series = "sent" | "opened" | "clicked" | "replied";
export const SERIES: { key: Series; label: string; className: string }[] = [
  { key: "sent", label: "Sent", className: "stroke-indigo-300 fill-indigo-300 dark:stroke-indigo-400/60 dark:fill-indigo-400/60" },
  { key: "opened", label: "Opens", className: "stroke-emerald-500 fill-emerald-500" },
  { key: "clicked", label: "Clicks", className: "stroke-amber-500 fill-amber-500" },
  { key: "replied", label: "Replies", className: "stroke-rose-500 fill-rose-500" },
];

export type ChartBox = { width: number; height: number; left: number; right: number; top: number; bottom: number };

export type ChartGeometry = {
  top: number;
  ticks: { value: number; y: number }[];
  xs: number[];
  /** An SVG path per series ("M x y L x y …"); a single point is drawn as a dot by the caller. */
  paths: Record<Series, string>;
  /** The sends as bars, one per point, centred on its x. */
  bars: { x: number; y: number; width: number; height: number }[];
  y: (value: number) => number;
};

/** Where each point of each series goes in a `box` of SVG units. */
export function chartGeometry(points: ActivityPoint[], box: ChartBox): ChartGeometry {
  const highest = Math.max(0, ...points.flatMap((p) => SERIES.map((s) => p[s.key])));
  const top = niceCeiling(highest);
  const plotWidth = box.width - box.left - box.right;
  const plotHeight = box.height - box.top - box.bottom;
  const y = (value: number) => round(box.top + plotHeight - (value / top) * plotHeight);
  const xs = points.map((_, index) =>
    round(points.length === 1 ? box.left + plotWidth / 2 : box.left + (index / (points.length - 1)) * plotWidth),
  );
  const paths = Object.fromEntries(
    SERIES.map((s) => [s.key, points.map((p, index) => `${index === 0 ? "M" : "L"}${xs[index]} ${y(p[s.key])}`).join(" ")]),
  ) as Record<Series, string>;
  const slot = points.length > 1 ? plotWidth / (points.length - 1) : plotWidth;
  const width = round(Math.max(1, Math.min(32, slot * 0.6)));
  const baseline = y(0);
  const bars = points.map((p, index) => ({
    x: round(xs[index]! - width / 2),
    y: y(p.sent),
    width,
    height: round(baseline - y(p.sent)),
  }));
  return { top, ticks: ticks(top).map((value) => ({ value, y: y(value) })), xs, paths, bars, y };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** Which points get an x-axis label: about `count` of them, evenly, always the first and last. */
export function labelledIndexes(length: number, count = 6): number[] {
  if (length <= count) return Array.from({ length }, (_, index) => index);
  const step = (length - 1) / (count - 1);
  return Array.from({ length: count }, (_, index) => Math.round(index * step));
}

/** The day each stage goes, counted from stage 1 ("Day 1"), for stages' `delayDays`. */
export function stageDays(delays: number[]): number[] {
  const days: number[] = [];
  let day = 1;
  delays.forEach((delay, index) => {
    day = index === 0 ? 1 : day + Math.max(0, delay);
    days.push(day);
  });
  return days;
}

/** "Sent 3 days after stage 1 if they have not replied (day 4)". */
export function describeDelay(index: number, delays: number[]): string {
  if (index === 0) return "Sent when the campaign starts (day 1).";
  const delay = Math.max(0, delays[index] ?? 0);
  const when = delay === 0 ? "the same day as" : delay === 1 ? "1 day after" : `${delay} days after`;
  return `Sent ${when} stage ${index} if they have not replied (day ${stageDays(delays)[index]}).`;
}

/** "42%" of `part` in `whole` (a dash when nothing was sent). */
export function rate(part: number, whole: number): string {
  if (whole <= 0) return "—";
  const value = (part / whole) * 100;
  return `${value >= 10 || value === 0 ? Math.round(value) : value.toFixed(1)}%`;
}

/** The status as shown: a running campaign whose start is ahead is "Scheduled". */
export function displayStatus(campaign: Pick<Campaign, "status" | "schedule">, now = Date.now(), startUtc?: number | null): {
  label: string;
  tone: BadgeTone;
} {
  const labels: Record<CampaignStatus, { label: string; tone: BadgeTone }> = {
    draft: { label: "Draft", tone: "neutral" },
    running: { label: "Running", tone: "success" },
    paused: { label: "Paused", tone: "warning" },
    completed: { label: "Finished", tone: "info" },
    canceled: { label: "Cancelled", tone: "danger" },
  };
  if (campaign.status === "running" && startUtc != null && startUtc > now) return { label: "Scheduled", tone: "info" };
  return labels[campaign.status];
}

/** A wall-clock time in an IANA zone ("2026-12-08T09:00") as epoch milliseconds. */
export function zonedToUtc(local: string, timeZone: string): number | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local);
  if (!match) return null;
  const [, y, mo, d, h, mi] = match.map(Number) as [number, number, number, number, number, number];
  const guess = Date.UTC(y, mo - 1, d, h, mi);
  // The zone's offset at the guess, then once more at the corrected time (DST edges).
  let utc = guess - offsetAt(guess, timeZone);
  utc = guess - offsetAt(utc, timeZone);
  return utc;
}

function offsetAt(utc: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  }).formatToParts(new Date(utc));
  const get = (type: string) => Number(parts.find((part) => part.type === type)?.value);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"));
  return asUtc - Math.floor(utc / 60_000) * 60_000;
}

export const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/** "Mon–Fri, 9:00–17:00" for a sending window. */
export function describeWindow(days: number[], hours: [number, number]): string {
  const sorted = [...days].sort((a, b) => a - b);
  const contiguous = sorted.every((day, index) => index === 0 || day === sorted[index - 1]! + 1);
  const dayText =
    sorted.length === 7
      ? "Every day"
      : contiguous && sorted.length > 2
        ? `${WEEKDAYS[sorted[0]! - 1]}–${WEEKDAYS[sorted[sorted.length - 1]! - 1]}`
        : sorted.map((day) => WEEKDAYS[day - 1]).join(", ");
  const hourText = hours[0] === 0 && hours[1] === 24 ? "any hour" : `${hours[0]}:00–${hours[1]}:00`;
  return `${dayText}, ${hourText}`;
}

/** Merge tags in a text that are not known fields (a typo sends the fallback, or nothing). */
export function mergeTags(text: string): { name: string; fallback: string | null }[] {
  const found: { name: string; fallback: string | null }[] = [];
  for (const match of text.matchAll(/\{\{\s*([^}|]+?)\s*(?:\|([^}]*))?\}\}/g)) {
    found.push({ name: match[1]!, fallback: match[2] ?? null });
  }
  return found;
}

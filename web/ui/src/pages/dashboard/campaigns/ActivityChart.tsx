import type { Activity } from "../../../api/campaigns";
import { formatNumber } from "../../../lib/format";
import { chartGeometry, labelledIndexes, SERIES } from "./logic";

const BOX = { width: 720, height: 240, left: 44, right: 16, top: 12, bottom: 32 };

function bucketLabel(start: string, bucket: Activity["bucket"], timeZone: string): string {
  const options: Intl.DateTimeFormatOptions =
    bucket === "hour" ? { hour: "numeric", day: "numeric", month: "short", timeZone } : { day: "numeric", month: "short", timeZone };
  try {
    return new Intl.DateTimeFormat(undefined, options).format(new Date(start));
  } catch {
    return start.slice(0, bucket === "hour" ? 13 : 10);
  }
}

/** Sends, opens, clicks and replies per hour or day, drawn as SVG by us (no chart library). */
export function ActivityChart({ activity }: { activity: Activity }) {
  const points = activity.points;
  if (points.length === 0) {
    return <p className="py-10 text-center text-sm text-zinc-600 dark:text-zinc-400">Nothing sent yet: the chart fills in as the campaign sends.</p>;
  }
  const geometry = chartGeometry(points, BOX);
  const labels = labelledIndexes(points.length);
  const totals = SERIES.map((series) => points.reduce((sum, point) => sum + point[series.key], 0));
  const summary = SERIES.map((series, index) => `${series.label}: ${formatNumber(totals[index]!)}`).join(", ");
  return (
    <figure>
      {/* Readable on a phone: at least 560 px wide, scrolled sideways there. */}
      <div className="overflow-x-auto" role="region" aria-label="Activity chart" tabIndex={0}>
      <svg
        viewBox={`0 0 ${BOX.width} ${BOX.height}`}
        className="h-auto w-full min-w-[560px] overflow-visible"
        role="img"
        aria-label={`Activity per ${activity.bucket} (${activity.timezone}). ${summary}.`}
      >
        {geometry.ticks.map((tick) => (
          <g key={tick.value}>
            <line x1={BOX.left} x2={BOX.width - BOX.right} y1={tick.y} y2={tick.y} className="stroke-zinc-200 dark:stroke-zinc-800" strokeWidth="1" />
            <text x={BOX.left - 8} y={tick.y + 4} textAnchor="end" className="fill-zinc-500 text-[11px] tabular-nums dark:fill-zinc-400">
              {formatNumber(tick.value)}
            </text>
          </g>
        ))}
        {labels.map((index) => (
          <text
            key={index}
            x={geometry.xs[index]}
            y={BOX.height - 10}
            textAnchor={points.length === 1 ? "middle" : index === 0 ? "start" : index === points.length - 1 ? "end" : "middle"}
            className="fill-zinc-500 text-[11px] dark:fill-zinc-400"
          >
            {bucketLabel(points[index]!.start, activity.bucket, activity.timezone)}
          </text>
        ))}
        <g className={SERIES[0]!.className}>
          {geometry.bars.map((bar, index) => (
            <rect key={index} x={bar.x} y={bar.y} width={bar.width} height={bar.height} rx="2" strokeWidth="0" />
          ))}
        </g>
        {SERIES.slice(1).map((series) => (
          <g key={series.key} className={series.className}>
            {points.length > 1 ? <path d={geometry.paths[series.key]} fill="none" strokeWidth="2" strokeLinejoin="round" strokeLinecap="round" /> : null}
            {points.length <= 48
              ? points.map((point, index) => (
                  <circle key={index} cx={geometry.xs[index]} cy={geometry.y(point[series.key])} r="3" strokeWidth="0" />
                ))
              : null}
          </g>
        ))}
      </svg>
      </div>
      <figcaption className="mt-3 flex flex-wrap gap-x-5 gap-y-1 text-sm text-zinc-700 dark:text-zinc-300">
        {SERIES.map((series, index) => (
          <span key={series.key} className="inline-flex items-center gap-2">
            <svg viewBox="0 0 10 10" className={`size-2.5 ${series.className}`} aria-hidden="true">
              {series.key === "sent" ? <rect width="10" height="10" rx="2" strokeWidth="0" /> : <circle cx="5" cy="5" r="5" strokeWidth="0" />}
            </svg>
            {series.label} <span className="tabular-nums text-zinc-500 dark:text-zinc-400">{formatNumber(totals[index]!)}</span>
          </span>
        ))}
        <span className="text-zinc-500 dark:text-zinc-400">per {activity.bucket}, {activity.timezone}; opens and clicks by people</span>
      </figcaption>
    </figure>
  );
}

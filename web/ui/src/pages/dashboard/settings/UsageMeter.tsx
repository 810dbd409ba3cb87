import { formatNumber } from "../../../lib/format";

export type UsageLevel = "normal" | "high" | "full";

/** How full a quota is: `null` limits are unlimited; from 80 % it is high, at the limit full. */
export function usageLevel(used: number, limit: number | null): { percent: number; level: UsageLevel } {
  if (limit === null) return { percent: 0, level: "normal" };
  if (limit <= 0) return { percent: 100, level: "full" };
  const percent = Math.min(100, (100 * used) / limit);
  return { percent, level: used >= limit ? "full" : percent >= 80 ? "high" : "normal" };
}

/** "250 of 1,000", "3 (unlimited)". */
export function usageText(used: number, limit: number | null): string {
  return limit === null ? `${formatNumber(used)} (unlimited)` : `${formatNumber(used)} of ${formatNumber(limit)}`;
}

const bars: Record<UsageLevel, string> = {
  normal: "bg-indigo-500",
  high: "bg-amber-500",
  full: "bg-red-600",
};

/** A labelled bar for one quota; a screen reader hears the label and "250 of 1,000". */
export function UsageMeter({ label, used, limit }: { label: string; used: number; limit: number | null }) {
  const { percent, level } = usageLevel(used, limit);
  const text = usageText(used, limit);
  return (
    <div>
      <div className="flex items-baseline justify-between gap-3 text-sm">
        <span className="font-medium text-zinc-900 dark:text-zinc-100">{label}</span>
        <span className={level === "full" ? "font-medium text-red-700 dark:text-red-400" : "text-zinc-700 dark:text-zinc-300"}>
          {text}
        </span>
      </div>
      {limit === null ? null : (
        <div
          role="meter"
          aria-label={label}
          aria-valuemin={0}
          aria-valuemax={limit}
          aria-valuenow={Math.min(used, limit)}
          aria-valuetext={text}
          className="mt-2 h-2 overflow-hidden rounded-full bg-zinc-200 dark:bg-zinc-800"
        >
          <div className={`h-full rounded-full ${bars[level]}`} style={{ width: `${percent}%` }} />
        </div>
      )}
    </div>
  );
}

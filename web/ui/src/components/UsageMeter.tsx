import { formatNumber } from "../lib/format";

/** "2 of 5" with a bar; "No limit" when the plan has none. Turns amber near, red at the limit. */
export function UsageMeter({ label, used, limit }: { label: string; used: number; limit: number | null }) {
  const ratio = limit ? Math.min(1, used / limit) : 0;
  const tone = ratio >= 1 ? "bg-red-500" : ratio >= 0.8 ? "bg-amber-500" : "bg-indigo-500";
  const steps = limit === null ? 0 : Math.round(ratio * 20);
  return (
    <div>
      <p className="text-sm font-medium text-zinc-600 dark:text-zinc-400">{label}</p>
      <p className="mt-1 flex items-baseline gap-1.5">
        <span className="text-2xl font-semibold tracking-tight text-zinc-900 tabular-nums dark:text-white">{formatNumber(used)}</span>
        <span className="text-sm text-zinc-600 dark:text-zinc-400">{limit === null ? "· no limit" : `of ${formatNumber(limit)}`}</span>
      </p>
      {limit !== null ? (
        <div
          className="mt-3 flex h-1.5 overflow-hidden rounded-full bg-zinc-200 dark:bg-zinc-800"
          role="meter"
          aria-label={`${label} used`}
          aria-valuemin={0}
          aria-valuemax={limit}
          aria-valuenow={Math.min(used, limit)}
        >
          {Array.from({ length: 20 }, (_, index) => (
            <span key={index} className={`h-full flex-1 ${index < steps ? tone : ""}`} />
          ))}
        </div>
      ) : null}
    </div>
  );
}

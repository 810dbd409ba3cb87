import { useEffect, useRef } from "react";

export interface PollOptions {
  /** Time between the end of one check and the start of the next. */
  intervalMs: number;
  /** One check; the next is scheduled only once it settles, so checks never overlap. */
  tick: () => unknown;
  /** The document whose visibility pauses the polling (a hidden tab does not poll). */
  doc?: Document;
  /** Check once right away (when the page opens on stale data), then every interval. */
  immediately?: boolean;
}

/**
 * Calls `tick` every `intervalMs` while the page is visible. Hiding the tab stops the timer;
 * showing it again checks at once (the DNS may have changed meanwhile) and resumes the rhythm.
 * Returns a function that stops everything.
 */
export function startPolling({ intervalMs, tick, doc = document, immediately = false }: PollOptions): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let stopped = false;

  const schedule = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!stopped && !doc.hidden) timer = setTimeout(run, intervalMs);
  };

  const run = async () => {
    timer = undefined;
    if (stopped || running || doc.hidden) return;
    running = true;
    try {
      await tick();
    } catch {
      // A failed check is shown by whoever made it; polling goes on regardless.
    } finally {
      running = false;
      schedule();
    }
  };

  const onVisibility = () => {
    if (doc.hidden) {
      clearTimeout(timer);
      timer = undefined;
    } else if (!running) {
      void run();
    }
  };

  doc.addEventListener("visibilitychange", onVisibility);
  if (immediately && !doc.hidden) void run();
  else schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
    doc.removeEventListener("visibilitychange", onVisibility);
  };
}

/** Polls with `tick` while `active` (e.g. while a domain is not verified yet). */
export function usePollWhile(
  active: boolean,
  intervalMs: number,
  tick: () => unknown,
  { immediately = false }: { immediately?: boolean } = {},
): void {
  const latest = useRef(tick);
  useEffect(() => {
    latest.current = tick;
  });
  useEffect(() => {
    if (!active) return undefined;
    return startPolling({ intervalMs, tick: () => latest.current(), immediately });
  }, [active, intervalMs, immediately]);
}

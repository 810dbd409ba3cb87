"""Event-loop lag: how late the loop runs a timer, i.e. how long something held it.

MX, submission, IMAP, HTTP and the workers share one event loop; a callback that computes for a
second delays every client by a second. The monitor sleeps a short interval again and again and
measures how late it wakes: the lateness is the time some callback held the loop. A stall past
the threshold is logged as a WARNING, and the figures are kept for tests, benchmarks and health
checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 0.1


@dataclass
class LoopLag:
    samples: int = 0
    stalls: int = 0  # wake-ups later than the threshold
    last: float = 0.0  # seconds, the latest lateness
    worst: float = 0.0  # seconds, the worst lateness so far
    # Stalls during which the loop's own thread computed for longer than the threshold: callbacks
    # of ours would have held the loop that long on an idle machine. In the others the thread
    # mostly waited: for a processor (a busy machine) or for the interpreter lock.
    busy_stalls: int = 0


class LoopLagMonitor:
    def __init__(self, threshold: float, interval: float = INTERVAL_SECONDS) -> None:
        self.threshold = threshold
        self.interval = interval
        self.lag = LoopLag()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            computed_before = time.thread_time()
            await asyncio.sleep(self.interval)
            self.record(
                time.monotonic() - before - self.interval, time.thread_time() - computed_before
            )

    def record(self, lateness: float, computed: float = 0.0) -> None:
        """Count one wake-up `lateness` seconds late, `computed` being the processor time the
        loop's thread used meanwhile."""
        lag = self.lag
        lateness = max(0.0, lateness)
        lag.samples += 1
        lag.last = lateness
        lag.worst = max(lag.worst, lateness)
        if lateness > self.threshold:
            lag.stalls += 1
            if computed > self.threshold:
                lag.busy_stalls += 1
            log.warning(
                "event loop held for %.3f s (threshold %.3f s, %.3f s computing on the loop's "
                "thread): every listener waited",
                lateness,
                self.threshold,
                computed,
            )

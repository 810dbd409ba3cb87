"""Housekeeping that runs in the background of `serve`: a pass every `interval`, each task in
turn, one failing task never stopping the others. Every task is idempotent, so nodes sharing a
database could each run it; still, only the leader node runs it (`BackgroundLoop.leading`), so
the work is not done N times over."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from mailmark.core.background import BackgroundLoop

log = logging.getLogger(__name__)

# A task returns how many things it removed or changed, for the log.
MaintenanceTask = tuple[str, Callable[[], Awaitable[int]]]


class Maintenance(BackgroundLoop):
    name = "maintenance"

    def __init__(
        self,
        tasks: Sequence[MaintenanceTask],
        *,
        interval: float,
        leader: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(leader=leader)
        self._tasks = tuple(tasks)
        self._interval = interval

    async def run_once(self) -> dict[str, int]:
        """One pass of every task: what each did (tasks that failed are left out)."""
        done = {}
        for name, task in self._tasks:
            try:
                done[name] = await task()
            except Exception:
                log.exception("maintenance task %s failed", name)
                continue
            if done[name]:
                log.info("maintenance: %s: %d", name, done[name])
        return done

    async def _run(self) -> None:
        while not self.stopping:
            await self._pause(self._interval)
            if not self.stopping and self.leading:
                await self.run_once()

"""Housekeeping that runs in the background of `serve`: a pass every `interval`, each task in
turn, one failing task never stopping the others. Every task is idempotent, so nodes sharing a
database may each run it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

log = logging.getLogger(__name__)

# A task returns how many things it removed or changed, for the log.
MaintenanceTask = tuple[str, Callable[[], Awaitable[int]]]


class Maintenance:
    def __init__(self, tasks: Sequence[MaintenanceTask], *, interval: float) -> None:
        self._tasks = tuple(tasks)
        self._interval = interval
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="maintenance")

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner

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
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            if not self._stopping.is_set():
                await self.run_once()

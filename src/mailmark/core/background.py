"""A loop that runs in the background of `serve` until it is stopped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

STOP_GRACE_SECONDS = 3.0


class BackgroundLoop:
    """Subclasses write `_run`, pausing with `_pause` so that `stop` ends them at once.

    `leader` says whether this node is the one that runs singleton jobs now (nodes sharing a
    PostgreSQL database elect one through the node bus's advisory lock); by default it always is."""

    name = "background loop"

    def __init__(self, *, leader: Callable[[], bool] | None = None) -> None:
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._leader = leader

    @property
    def leading(self) -> bool:
        return self._leader is None or self._leader()

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """End the loop: the pass in hand has `grace` seconds to finish before it is cancelled.

        Cancelling a pass mid-query cancels the rollback that returns its database connection
        to the pool too, which SQLAlchemy reports as a traceback; a pass is short (one batch),
        so waiting for it is the clean way out."""
        self._stopping.set()
        if self._runner is not None:
            # `wait`, not `wait_for`: it neither cancels the pass at the deadline nor raises what
            # ended it (a second `stop` finds it cancelled already).
            await asyncio.wait([self._runner], timeout=grace)
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or less when the loop is being stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _unless_stopping(self, work: Coroutine[Any, Any, T]) -> T | None:
        """`work`'s result, or None as soon as the loop is being stopped: for a step of a pass
        that holds no database connection and can be given up at once, unlike the rest of the
        pass (see `stop`)."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None

    async def _run(self) -> None:
        raise NotImplementedError

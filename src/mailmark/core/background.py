"""A loop that runs in the background of `serve` until it is stopped."""

from __future__ import annotations

import asyncio
import contextlib


class BackgroundLoop:
    """Subclasses write `_run`, pausing with `_pause` so that `stop` ends them at once."""

    name = "background loop"

    def __init__(self) -> None:
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
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

    async def _run(self) -> None:
        raise NotImplementedError

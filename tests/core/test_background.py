"""BackgroundLoop.stop: the pass in hand gets its grace, then is cancelled; stopping twice is
harmless."""

from __future__ import annotations

import asyncio

from mailmark.core.background import BackgroundLoop


class Stubborn(BackgroundLoop):
    """A pass that does not look at `stopping`: only cancelling ends it."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = False

    async def _run(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


class Polite(BackgroundLoop):
    """A pass that finishes its work once asked to stop."""

    def __init__(self) -> None:
        super().__init__()
        self.finished = False

    async def _run(self) -> None:
        while not self.stopping:
            await self._pause(60)
        await asyncio.sleep(0)
        self.finished = True


async def test_a_pass_past_its_grace_is_cancelled_and_a_second_stop_is_harmless() -> None:
    loop = Stubborn()
    loop.start()
    await asyncio.sleep(0)
    await loop.stop(grace=0.01)
    assert loop.cancelled
    await loop.stop(grace=0.01)
    assert loop.stopping


async def test_a_pass_that_ends_within_its_grace_finishes() -> None:
    loop = Polite()
    loop.start()
    await asyncio.sleep(0)
    await loop.stop()
    assert loop.finished
    await loop.stop()

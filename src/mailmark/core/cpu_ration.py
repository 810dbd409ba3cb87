"""Processor time rationed per client address: one client cannot take the processors from the rest.

Every per-command algorithm is bounded (docs/event-loop.md), but a client may still send bounded
expensive commands back to back on all the connections it is allowed: 4 connections repeating a
100-partial FETCH BINARY of an 8 MiB part kept the server's two cores busy, and an honest client's
IMAP LOGIN took 30 times longer. The operating system shares processors between processes, not
between the clients a process serves, so the server does it here, as a token bucket of processor
seconds per client address:

- each command is charged the processor time spent on it: its steps on the event loop (measured
  around each step, so other clients' work in between is not counted) and its jobs in the CPU
  pool's workers or threads (measured there, `CpuPool.run`);
- an address's debt falls by `share` seconds per second (a quarter of a core by default);
- while the debt is above `burst`, the address's next command waits until it is back at `burst`.
  A command is never interrupted: a single expensive command runs to its end, and only what the
  same address asks next waits.

The loopback addresses are exempt, as from the connection limits (local tools, a webmail or proxy
on the same host). Each process keeps its own ration: with `--imap-processes N` an address may use
`share` in each of them.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from mailmark.connections import LOOPBACK

T = TypeVar("T")

# Addresses with a debt are forgotten once it is paid; more than this many at once (each holding
# an open connection or a recent command) and the oldest are forgotten first.
MAX_ADDRESSES = 65_536


@dataclass
class Meter:
    """Processor seconds spent on one command so far."""

    seconds: float = 0.0


# The meter of the command being run, for work it hands to other threads and processes.
CURRENT_METER: contextvars.ContextVar[Meter | None] = contextvars.ContextVar(
    "cpu_ration_meter", default=None
)


def charge_current_command(seconds: float) -> None:
    """Add processor time spent elsewhere (a worker process, a thread) to the running command."""
    meter = CURRENT_METER.get()
    if meter is not None:
        meter.seconds += seconds


# asyncio's pure-Python task is the one whose steps can be wrapped: the C task runs its steps
# internally. Each step (from one await to the next) runs on the loop's thread alone, so the
# thread's processor clock around it is that command's processor time and no one else's.
_PurePythonTask: Any = asyncio.tasks._PyTask  # type: ignore[attr-defined]


class _MeteredTask(_PurePythonTask):  # type: ignore[misc]
    def __init__(
        self, coro: Coroutine[Any, Any, Any], *, meter: Meter, context: contextvars.Context
    ) -> None:
        self.meter = meter
        super().__init__(coro, context=context)

    def _Task__step(self, exc: BaseException | None = None) -> None:
        started = time.thread_time()
        try:
            super()._Task__step(exc)
        finally:
            self.meter.seconds += time.thread_time() - started


async def metered(coro: Coroutine[Any, Any, T], meter: Meter) -> T:
    """Run `coro` as a task of its own, adding the processor time it spends to `meter`."""
    context = contextvars.copy_context()
    context.run(CURRENT_METER.set, meter)
    task: asyncio.Future[T] = _MeteredTask(coro, meter=meter, context=context)
    return await task


@dataclass
class RationCounters:
    """What the ration did, for tests, benchmarks and monitoring."""

    commands: int = 0  # commands run and charged
    charged: float = 0.0  # processor seconds charged
    delayed: int = 0  # commands that waited for their address's debt to fall
    waited: float = 0.0  # seconds they waited in all


@dataclass
class _Debt:
    seconds: float
    at: float


class ProcessorRation:
    def __init__(
        self, *, share: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if share < 0 or burst < 0:
            raise ValueError("share and burst cannot be negative")
        self.share = share
        self.burst = burst
        self.counters = RationCounters()
        self.clock = clock
        self._debts: dict[str, _Debt] = {}

    def applies_to(self, ip: str) -> bool:
        return self.share > 0 and ip not in LOOPBACK

    def owed(self, ip: str) -> float:
        """Processor seconds `ip` has used beyond its share, as of now."""
        debt = self._debts.get(ip)
        if debt is None:
            return 0.0
        return max(0.0, debt.seconds - self.share * (self.clock() - debt.at))

    def delay(self, ip: str) -> float:
        """Seconds `ip`'s next command has to wait."""
        if not self.applies_to(ip):
            return 0.0
        return max(0.0, self.owed(ip) - self.burst) / self.share

    def charge(self, ip: str, seconds: float) -> None:
        if not self.applies_to(ip):
            return
        owed = self.owed(ip)
        self._debts.pop(ip, None)  # re-inserted last: the dict stays ordered by last charge
        self._debts[ip] = _Debt(owed + seconds, self.clock())
        self.counters.commands += 1
        self.counters.charged += seconds
        if len(self._debts) > MAX_ADDRESSES:
            self._forget_paid()

    async def wait_turn(self, ip: str) -> None:
        """Return when `ip` may run its next command."""
        delay = self.delay(ip)
        if delay > 0:
            self.counters.delayed += 1
            self.counters.waited += delay
            await asyncio.sleep(delay)

    async def run(self, ip: str, coro: Coroutine[Any, Any, T]) -> T:
        """Run one of `ip`'s commands and charge it what it cost, even if it fails."""
        if not self.applies_to(ip):
            return await coro
        meter = Meter()
        try:
            return await metered(coro, meter)
        finally:
            self.charge(ip, meter.seconds)

    def _forget_paid(self) -> None:
        for ip in [ip for ip in self._debts if self.owed(ip) == 0.0]:
            del self._debts[ip]
        while len(self._debts) > MAX_ADDRESSES:
            del self._debts[next(iter(self._debts))]

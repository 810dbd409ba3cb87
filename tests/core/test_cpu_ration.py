"""Processor time is rationed per client address: a command is charged its own processor time (on
the loop, in threads and in the CPU pool's workers), and an address over its ration waits."""

from __future__ import annotations

import asyncio
import time

import pytest

from mailmark.core import cpu_ration
from mailmark.core.cpu_pool import CpuPool
from mailmark.core.cpu_ration import Meter, ProcessorRation, metered

CLIENT = "192.0.2.7"
OTHER = "198.51.100.9"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def burn(rounds: int) -> float:
    """Compute for a while; return the processor time it took."""
    started = time.thread_time()
    total = 0
    for n in range(rounds):
        total += n * n
    assert total >= 0
    return time.thread_time() - started


def test_a_debt_above_the_burst_delays_the_next_command_until_it_falls_back() -> None:
    clock = Clock()
    ration = ProcessorRation(share=0.25, burst=1.0, clock=clock)
    ration.charge(CLIENT, 0.5)
    assert ration.delay(CLIENT) == 0.0  # within the burst
    ration.charge(CLIENT, 1.0)
    assert ration.owed(CLIENT) == pytest.approx(1.5)
    # 0.5 s beyond the burst, paid back at a quarter of a second per second.
    assert ration.delay(CLIENT) == pytest.approx(2.0)
    clock.now += 1.0
    assert ration.owed(CLIENT) == pytest.approx(1.25)
    assert ration.delay(CLIENT) == pytest.approx(1.0)
    clock.now += 1.0
    assert ration.delay(CLIENT) == 0.0
    clock.now += 10.0
    assert ration.owed(CLIENT) == 0.0
    # Another address's debt is its own.
    assert ration.owed(OTHER) == 0.0
    ration.charge(CLIENT, 3.0)
    assert ration.delay(OTHER) == 0.0
    assert (ration.counters.commands, ration.counters.charged) == (3, pytest.approx(4.5))


def test_loopback_is_exempt_and_a_share_of_zero_turns_the_ration_off() -> None:
    ration = ProcessorRation(share=0.25, burst=0.0)
    for address in ("127.0.0.1", "::1"):
        ration.charge(address, 100.0)
        assert ration.delay(address) == 0.0
    assert ration.counters.commands == 0
    off = ProcessorRation(share=0.0, burst=0.0)
    off.charge(CLIENT, 100.0)
    assert off.delay(CLIENT) == 0.0
    with pytest.raises(ValueError):
        ProcessorRation(share=-1.0, burst=0.0)


def test_addresses_are_forgotten_once_paid_and_never_held_past_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cpu_ration, "MAX_ADDRESSES", 3)
    clock = Clock()
    ration = ProcessorRation(share=1.0, burst=0.0, clock=clock)
    for n in range(3):
        ration.charge(f"192.0.2.{n}", 1.0)
    clock.now += 2.0  # all three paid
    ration.charge("192.0.2.3", 5.0)
    ration.charge("192.0.2.4", 5.0)
    assert sorted(ration._debts) == ["192.0.2.3", "192.0.2.4"]
    for n in range(5, 9):  # none paid: the oldest go first
        ration.charge(f"192.0.2.{n}", 5.0)
    assert list(ration._debts) == ["192.0.2.6", "192.0.2.7", "192.0.2.8"]


async def test_only_an_address_in_debt_waits_and_for_what_it_owes() -> None:
    ration = ProcessorRation(share=1.0, burst=0.0, clock=Clock())
    ration.charge(CLIENT, 0.05)
    await ration.wait_turn(CLIENT)
    assert ration.counters.delayed == 1
    assert ration.counters.waited == pytest.approx(0.05)
    await ration.wait_turn(OTHER)
    assert ration.counters.delayed == 1


class ThreadClock:
    """Stands in for the thread's processor clock: it moves only when a step says it computed."""

    def __init__(self) -> None:
        self.now = 0.0

    def thread_time(self) -> float:
        return self.now


async def test_a_command_is_charged_its_own_steps_not_what_ran_between_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ThreadClock()
    monkeypatch.setattr(cpu_ration, "time", clock)

    async def command() -> str:
        for _ in range(3):
            clock.now += 1.0  # one second of "computing" per step
            await asyncio.sleep(0)
            await asyncio.sleep(0.01)
        return "done"

    async def someone_else() -> None:
        for _ in range(6):
            clock.now += 10.0  # ten times as much, in between the command's steps
            await asyncio.sleep(0)

    meter = Meter()
    busy = asyncio.create_task(someone_else())
    assert await metered(command(), meter) == "done"
    await busy
    assert clock.now == 63.0
    assert meter.seconds == 3.0


async def test_a_failing_command_is_charged_too() -> None:
    ration = ProcessorRation(share=1.0, burst=0.0, clock=Clock())

    async def failing() -> None:
        burn(200_000)
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        await ration.run(CLIENT, failing())
    assert ration.counters.commands == 1
    assert ration.owed(CLIENT) == ration.counters.charged > 0


@pytest.mark.parametrize("workers", [1, 0], ids=["worker process", "thread"])
async def test_work_handed_to_the_cpu_pool_is_charged_to_the_command(workers: int) -> None:
    pool = CpuPool(workers=workers, threshold=0)
    pool.start()
    try:

        async def command() -> float:
            return await pool.run(1, burn, 2_000_000)

        meter = Meter()
        spent = await metered(command(), meter)
        assert spent > 0
        assert pool.counters.seconds >= spent
        # What the pool measured is on the meter, with the command's own steps on the loop.
        assert meter.seconds >= pool.counters.seconds
        outside = await pool.run(1, burn, 10)  # no command running: nothing to charge
        assert outside >= 0
    finally:
        await pool.stop()

"""The loop-lag monitor of `start_listeners` sees a callback that holds the event loop, counts it
and logs a WARNING naming how long every listener waited."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from mailmark.bootstrap import Listeners


async def test_a_blocking_callback_is_seen_counted_and_logged(
    listeners: Listeners, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = listeners.loop_lag
    threshold = monitor.threshold
    stalls = monitor.lag.stalls
    caplog.set_level(logging.WARNING, logger="mailmark.loop_lag")
    # A deliberate stall: this callback holds the loop four times the threshold.
    asyncio.get_running_loop().call_soon(time.sleep, 4 * threshold)
    for _ in range(100):
        await asyncio.sleep(0.05)
        if monitor.lag.stalls > stalls:
            break
    assert monitor.lag.stalls > stalls
    # It woke at least the blocked time minus its own sleep interval late.
    assert monitor.lag.worst >= 4 * threshold - monitor.interval
    warnings = [r for r in caplog.records if r.name == "mailmark.loop_lag"]
    assert warnings and warnings[-1].levelno == logging.WARNING
    assert "event loop held for" in warnings[-1].getMessage()


async def test_the_monitor_stops_with_the_listeners(listeners: Listeners) -> None:
    samples = listeners.loop_lag.lag.samples
    for _ in range(100):
        await asyncio.sleep(0.05)
        if listeners.loop_lag.lag.samples > samples:
            break
    assert listeners.loop_lag.lag.samples > samples  # it runs
    await listeners.loop_lag.stop()
    stopped = listeners.loop_lag.lag.samples
    await asyncio.sleep(3 * listeners.loop_lag.interval)
    assert listeners.loop_lag.lag.samples == stopped


async def test_a_stall_spent_computing_is_told_from_one_spent_waiting(listeners: Listeners) -> None:
    monitor = listeners.loop_lag
    threshold = monitor.threshold

    def compute() -> None:
        end = time.thread_time() + 3 * threshold
        while time.thread_time() < end:
            pass

    for stall, busy in ((time.sleep, False), (compute, True)):
        stalls, busy_stalls = monitor.lag.stalls, monitor.lag.busy_stalls
        if busy:
            asyncio.get_running_loop().call_soon(stall)
        else:
            asyncio.get_running_loop().call_soon(stall, 3 * threshold)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if monitor.lag.stalls > stalls:
                break
        assert monitor.lag.stalls > stalls
        assert (monitor.lag.busy_stalls > busy_stalls) is busy

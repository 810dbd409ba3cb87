"""The housekeeping pass: each task in turn, a failing one logged and skipped."""

from __future__ import annotations

import logging

import pytest

from mailmark.core.maintenance import Maintenance


async def test_a_failing_task_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    async def prune() -> int:
        ran.append("prune")
        return 3

    async def broken() -> int:
        raise OSError("disk gone")

    async def idle() -> int:
        ran.append("idle")
        return 0

    maintenance = Maintenance([("pruned", prune), ("broken", broken), ("idle", idle)], interval=60)

    with caplog.at_level(logging.INFO, logger="mailmark.core.maintenance"):
        assert await maintenance.run_once() == {"pruned": 3, "idle": 0}

    assert ran == ["prune", "idle"]
    assert "maintenance task broken failed" in caplog.text
    assert "maintenance: pruned: 3" in caplog.text

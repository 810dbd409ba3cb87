"""The node bus against a real PostgreSQL: notices reach the other bus and not their sender, a large
batch is split under the payload limit and arrives whole, a dropped connection is re-opened and
answered with a resync, a bus that catches up has handled what was sent before, and exactly one
bus is the leader, the lock passing on when it dies."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import make_url

from mailmark.storage.node_bus import MAX_PAYLOAD_BYTES, NodeBus, asyncpg_dsn, payloads
from tests.support.database import TEST_DATABASE_URL

needs_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="LISTEN/NOTIFY is PostgreSQL's: set MAILMARK_TEST_DATABASE_URL",
)
TIMEOUT = 10.0


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.01)


@pytest.fixture
async def buses(database_url: str) -> AsyncIterator[list[NodeBus]]:
    dsn = asyncpg_dsn(make_url(database_url))
    started = [NodeBus(dsn, leader_retry=0.2) for _ in range(2)]
    for bus in started:
        bus.stand_for_leader()
    for bus in started:
        await bus.start()
    try:
        yield started
    finally:
        for bus in started:
            await bus.close()


def test_payloads_stay_under_the_limit_and_keep_every_item() -> None:
    pending: dict[str, list[Any]] = {"folder": list(range(5000)), "apikey": ["dm_live_x" * 3] * 10}
    sent = payloads("node", pending)
    assert len(sent) > 1
    assert all(len(message.encode()) < MAX_PAYLOAD_BYTES for message in sent)
    got: dict[str, list[Any]] = {}
    for message in sent:
        for topic, items in json.loads(message)["t"].items():
            got.setdefault(topic, []).extend(items)
    assert got == pending


@needs_postgresql
async def test_a_notice_reaches_the_other_node_only(buses: list[NodeBus]) -> None:
    first, second = buses
    heard: list[tuple[str, list[Any]]] = []
    first.subscribe("folder", lambda ids: heard.append(("first", ids)))
    second.subscribe("folder", lambda ids: heard.append(("second", ids)))
    for mailbox_id in range(3000):
        first.publish("folder", mailbox_id)
    first.publish("folder", 7)  # merged with the earlier 7
    await first.published()
    await until(lambda: sum(len(ids) for _, ids in heard) >= 3000)
    assert {who for who, _ in heard} == {"second"}
    assert sorted(i for _, ids in heard for i in ids) == list(range(3000))


@needs_postgresql
async def test_after_catching_up_every_notice_sent_before_is_handled(
    buses: list[NodeBus],
) -> None:
    """The login throttle's barrier: a failure one node has sent is counted on another before
    that one checks an attempt (no waiting, no polling)."""
    first, second = buses
    heard: list[Any] = []
    second.subscribe("login", heard.extend)
    for attempt in range(20):
        first.publish("login", attempt)
        await first.published()
        await second.caught_up()
        assert heard == list(range(attempt + 1))


@needs_postgresql
async def test_a_dropped_connection_is_reopened_and_resyncs(
    buses: list[NodeBus], database_url: str
) -> None:
    first, second = buses
    resyncs: list[int] = []
    second.on_resync(lambda: resyncs.append(1))
    heard: list[Any] = []
    second.subscribe("queue", heard.extend)
    pid = second.backend_pid
    assert pid is not None
    admin = await asyncpg.connect(asyncpg_dsn(make_url(database_url)))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await until(lambda: resyncs == [1])
    assert second.backend_pid not in (None, pid)
    first.publish("queue", 1)
    await first.published()
    await until(lambda: heard == [1])


@needs_postgresql
async def test_one_leader_and_the_lock_passes_when_it_dies(buses: list[NodeBus]) -> None:
    await until(lambda: any(bus.is_leader() for bus in buses))
    assert sum(bus.is_leader() for bus in buses) == 1
    leader = next(bus for bus in buses if bus.is_leader())
    other = next(bus for bus in buses if bus is not leader)
    await leader.close()
    assert not leader.is_leader()
    await until(other.is_leader)

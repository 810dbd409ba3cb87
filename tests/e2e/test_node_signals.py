"""Two nodes' services on one PostgreSQL database, in one process as two `serve`s would build
them: a queue kick on one wakes the other's outbound workers, a folder change on one wakes the
other's waiters (IMAP IDLE and the webmail's event stream wait on the same signals), and exactly
one of them is the leader for singleton jobs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from mailmark.bootstrap import Services, build_services
from mailmark.config import Settings
from tests.support.database import TEST_DATABASE_URL

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="nodes signal each other through PostgreSQL: set MAILMARK_TEST_DATABASE_URL",
)
TIMEOUT = 10.0


@pytest.fixture
async def two_nodes(settings: Settings) -> AsyncIterator[tuple[Services, Services]]:
    first = await build_services(settings)
    try:
        second = await build_services(settings)
        try:
            yield first, second
        finally:
            await second.close()
    finally:
        await first.close()


async def test_a_queue_kick_wakes_the_other_nodes_workers(
    two_nodes: tuple[Services, Services],
) -> None:
    first, second = two_nodes
    second.queue.clear_kick()
    first.queue.kick()
    await asyncio.wait_for(second.queue.wait_for_kick(), TIMEOUT)


async def test_a_folder_change_wakes_the_other_nodes_waiters(
    two_nodes: tuple[Services, Services],
) -> None:
    first, second = two_nodes
    signals = second.mailstore.signals
    waiting = asyncio.create_task(signals.wait(42, TIMEOUT, after=signals.generation(42)))
    await asyncio.sleep(0)
    first.mailstore.signals.publish(42)
    assert await waiting, "the other node's waiter timed out"


async def test_exactly_one_node_leads(two_nodes: tuple[Services, Services]) -> None:
    for node in two_nodes:
        assert node.bus is not None
        node.bus.stand_for_leader()
    deadline = time.monotonic() + TIMEOUT
    while not any(node.is_leader() for node in two_nodes):
        assert time.monotonic() < deadline, "no node became the leader"
        await asyncio.sleep(0.05)
    assert sum(node.is_leader() for node in two_nodes) == 1

"""Two nodes on one database: a session idling on one node learns of mail that the other node's MX
delivered: on PostgreSQL through the node bus's notice, and in any case by polling its folder
(on SQLite the other node's in-process signals never reach it; this is the fallback's test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from mailmark.bootstrap import Listeners, Services, build_services, start_listeners
from mailmark.config import Settings
from tests.e2e.test_imap_idle import WAKE_TIMEOUT, idling, message, next_exists, send_through_mx
from tests.support.world import World


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"imap_poll_interval": timedelta(seconds=1)})


@pytest.fixture
async def other_node(settings: Settings, world: World) -> AsyncIterator[Listeners]:
    """A second `serve` on the same database and blob store, with its own listeners."""
    services: Services = await build_services(settings)
    listeners = await start_listeners(services)
    try:
        yield listeners
    finally:
        await listeners.close()
        await services.close()


async def test_idle_sees_mail_another_node_delivered(
    listeners: Listeners, other_node: Listeners
) -> None:
    idler = await idling(listeners.imaps.port, "sales@acme.test", "sales-pass-1")
    try:
        await asyncio.to_thread(send_through_mx, other_node.mx_port, message(1))
        assert await next_exists(idler, timeout=WAKE_TIMEOUT) == 1
        await idler.send(b"DONE\r\n")
        done = await idler.until(b"I1")
        assert done[-1].startswith(b"I1 OK"), done
        fetched = await idler.run(b"F1", b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: Idle 1" in fetched[0], fetched
    finally:
        await idler.close()

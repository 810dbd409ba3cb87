"""Two nodes on one database: a session idling on one node learns of mail that the other node's MX
delivered: on PostgreSQL through the node bus's notice, and in any case by polling its folder
(on SQLite the other node's in-process signals never reach it; this is the fallback's test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Listeners, Services, build_services, start_listeners
from mailmark.config import Settings
from mailmark.storage.tables import messages
from tests.e2e.test_imap_idle import WAKE_TIMEOUT, idling, message, next_exists, send_through_mx
from tests.imap.raw import session
from tests.support.world import World


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"imap_poll_interval": timedelta(seconds=1)})


@pytest.fixture
async def other_services(settings: Settings, world: World) -> AsyncIterator[Services]:
    services = await build_services(settings)
    try:
        yield services
    finally:
        await services.close()


@pytest.fixture
async def other_node(other_services: Services) -> AsyncIterator[Listeners]:
    """A second `serve` on the same database and blob store, with its own listeners."""
    listeners = await start_listeners(other_services)
    try:
        yield listeners
    finally:
        await listeners.close()


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


async def test_a_message_expunged_on_one_node_stays_readable_on_the_other_until_told(
    listeners: Listeners, other_node: Listeners, other_services: Services, world: World
) -> None:
    """Issue 16 item 10 across nodes, over both nodes' IMAP listeners: the session here sees
    message 1 until it is told (RFC 9051 §7.5.1), whatever the other node's session does."""
    assert world.sales.id is not None
    raw = message(1)
    await world.services.mailstore.append(world.sales.id, "INBOX", raw)
    async with (
        session(listeners.imaps_port, select="INBOX") as reader,
        session(other_node.imaps_port, select="INBOX") as expunger,
    ):
        await expunger.ok(b"S1", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert await expunger.ok(b"E1", b"EXPUNGE") == [
            b"* 1 EXPUNGE\r\n",
            b"E1 OK EXPUNGE completed\r\n",
        ]
        assert await reader.ok(b"F1", b"FETCH 1 (FLAGS BODY.PEEK[])") == [
            b"* 1 FETCH (FLAGS (\\Deleted \\Recent) BODY[] {%d}\r\n" % len(raw) + raw + b")\r\n",
            b"F1 OK FETCH completed\r\n",
        ]
        lines = await reader.ok(b"N1", b"NOOP")
        assert b"* 1 EXPUNGE\r\n" in lines and lines[-1] == b"N1 OK NOOP completed\r\n"
        async with world.services.engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 1
        # Each node's renewal publishes what its sessions have been told; the second releases.
        await other_services.mailstore.renew_views()
        await world.services.mailstore.renew_views()
    async with world.services.engine.connect() as conn:
        left = await conn.scalar(sa.select(sa.func.count()).select_from(messages))
    assert left == 0

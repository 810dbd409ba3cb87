"""Issue 16 item 10: a FETCH racing another session's EXPUNGE never drops the session. A message
this session still sees stays readable until it is told of the expunge (RFC 9051 §7.5.1), so its
blob is removed only once no session here can see it; gone for good (expunged on another node),
it is answered with NO [EXPUNGEISSUED] and the session goes on."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from mailmark.bootstrap import Listeners
from mailmark.core.folder_signals import FolderSignals
from mailmark.core.mailstore import MailStore
from mailmark.storage.tables import folders, messages, placements
from tests.imap.raw import session
from tests.support.world import World


def _message(n: int) -> bytes:
    return f"From: a@example.org\r\nSubject: number {n}\r\n\r\nBody {n}.\r\n".encode()


async def _three_messages(world: World) -> str:
    """Three messages in sales' INBOX; the blob key of the second."""
    assert world.sales.id is not None
    for n in (1, 2, 3):
        await world.services.mailstore.append(world.sales.id, "INBOX", _message(n))
    query = (
        sa.select(messages.c.blob_key)
        .select_from(placements.join(messages).join(folders))
        .where(folders.c.mailbox_id == world.sales.id, placements.c.uid == 2)
    )
    async with world.services.engine.connect() as conn:
        return str((await conn.execute(query)).scalar_one())


def _another_node(world: World) -> MailStore:
    """Another node: its own store, which knows nothing of this node's sessions."""
    services = world.services
    return MailStore(
        services.uow,
        services.blobs,
        services.clock,
        FolderSignals(),
        max_message_size=services.settings.max_message_size,
        delivery=services.delivery,
    )


async def _gone(world: World, key: str) -> bool:
    for _ in range(100):
        if not await world.services.blobs.exists(key):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_fetch_after_another_sessions_expunge_serves_the_message_until_told(
    listeners: Listeners, world: World
) -> None:
    key = await _three_messages(world)
    port = listeners.imaps_port
    async with session(port, select="INBOX") as reader, session(port, select="INBOX") as other:
        assert await other.ok(b"S1", b"STORE 2 +FLAGS.SILENT (\\Deleted)") == [
            b"S1 OK STORE completed\r\n"
        ]
        assert await other.ok(b"E1", b"EXPUNGE") == [
            b"* 2 EXPUNGE\r\n",
            b"E1 OK EXPUNGE completed\r\n",
        ]
        body = _message(2)
        # RFC 9051 §7.5.1: no EXPUNGE during FETCH; the message is still this session's number 2.
        assert await reader.ok(b"F1", b"FETCH 2 (FLAGS BODY.PEEK[])") == [
            b"* 2 FETCH (FLAGS (\\Deleted \\Recent) BODY[] {%d}\r\n" % len(body) + body + b")\r\n",
            b"F1 OK FETCH completed\r\n",
        ]
        assert await reader.ok(b"F2", b"FETCH 1:3 (UID)") == [
            b"* 1 FETCH (UID 1)\r\n",
            b"* 2 FETCH (UID 2)\r\n",
            b"* 3 FETCH (UID 3)\r\n",
            b"F2 OK FETCH completed\r\n",
        ]
        assert await world.services.blobs.exists(key)
        assert await reader.ok(b"N1", b"NOOP") == [
            b"* 2 EXPUNGE\r\n",
            b"N1 OK NOOP completed\r\n",
        ]
        # Nobody sees it any more: the row and the blob go.
        assert await _gone(world, key)
        assert await reader.ok(b"F3", b"FETCH 1:* (UID)") == [
            b"* 1 FETCH (UID 1)\r\n",
            b"* 2 FETCH (UID 3)\r\n",
            b"F3 OK FETCH completed\r\n",
        ]


async def test_a_session_closing_the_folder_releases_what_it_still_saw(
    listeners: Listeners, world: World
) -> None:
    key = await _three_messages(world)
    port = listeners.imaps_port
    async with session(port, select="INBOX") as reader, session(port, select="INBOX") as other:
        await other.ok(b"S1", b"STORE 2 +FLAGS.SILENT (\\Deleted)")
        await other.ok(b"E1", b"EXPUNGE")
        assert await world.services.blobs.exists(key)
        await reader.ok(b"U1", b"UNSELECT")
        assert await _gone(world, key)
    async with world.services.engine.connect() as conn:
        left = (await conn.execute(sa.select(sa.func.count()).select_from(messages))).scalar_one()
    assert left == 2


async def test_an_expunge_on_another_node_answers_expungeissued_and_the_session_goes_on(
    listeners: Listeners, world: World
) -> None:
    await _three_messages(world)
    assert world.sales.id is not None
    other_node = _another_node(world)
    async with session(listeners.imaps_port, select="INBOX") as reader:
        snapshot = await other_node.select(world.sales.id, "INBOX")
        await other_node.store_flags(snapshot.folder_id, [2], "add", ["\\Deleted"])
        assert await other_node.expunge(snapshot.folder_id) == [2]
        assert await reader.run(b"F1", b"FETCH 1:3 (UID BODY.PEEK[])") == [
            b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % len(_message(1)) + _message(1) + b")\r\n",
            b"* 3 FETCH (UID 3 BODY[] {%d}\r\n" % len(_message(3)) + _message(3) + b")\r\n",
            b"F1 NO [EXPUNGEISSUED] Some of the messages were expunged meanwhile\r\n",
        ]
        lines = await reader.ok(b"N1", b"NOOP")
        assert b"* 2 EXPUNGE\r\n" in lines and lines[-1] == b"N1 OK NOOP completed\r\n"


async def test_a_blob_gone_between_reading_the_rows_and_the_bytes_is_no_bye(
    listeners: Listeners, world: World
) -> None:
    """The state the race leaves for an instant: the placement still there, its blob removed."""
    key = await _three_messages(world)
    async with session(listeners.imaps_port, select="INBOX") as reader:
        await world.services.blobs.delete(key)
        assert await reader.run(b"F1", b"FETCH 2 (BODY.PEEK[])") == [
            b"F1 NO [EXPUNGEISSUED] Some of the messages were expunged meanwhile\r\n"
        ]
        assert await reader.ok(b"N1", b"NOOP") == [b"N1 OK NOOP completed\r\n"]


async def test_a_content_fetch_without_flags_serves_what_this_node_read_lately(
    listeners: Listeners, world: World
) -> None:
    """Where a message's content lies never changes while its UID names it, so a FETCH of
    content that reports no flags serves a message this node read lately without reading the
    database: even once another node expunged it, which RFC 9051 §7.5.1 allows until the
    session is told. A FETCH that reports FLAGS reads the database and finds it gone."""
    await _three_messages(world)
    assert world.sales.id is not None
    other_node = _another_node(world)
    body = _message(2)
    served = b"* 2 FETCH (BODY[] {%d}\r\n" % len(body) + body + b")\r\n"
    async with session(listeners.imaps_port, select="INBOX") as reader:
        assert await reader.ok(b"F1", b"FETCH 2 BODY.PEEK[]") == [
            served,
            b"F1 OK FETCH completed\r\n",
        ]
        # A copy elsewhere keeps the content stored once the INBOX placement is gone.
        await reader.ok(b"C1", b"COPY 2 Archive")
        snapshot = await other_node.select(world.sales.id, "INBOX")
        await other_node.store_flags(snapshot.folder_id, [2], "add", ["\\Deleted"])
        assert await other_node.expunge(snapshot.folder_id) == [2]

        assert await reader.ok(b"F2", b"FETCH 2 BODY.PEEK[]") == [
            served,
            b"F2 OK FETCH completed\r\n",
        ]
        assert await reader.run(b"F3", b"FETCH 2 (FLAGS BODY.PEEK[])") == [
            b"F3 NO [EXPUNGEISSUED] Some of the messages were expunged meanwhile\r\n"
        ]
        lines = await reader.ok(b"N1", b"NOOP")
        assert b"* 2 EXPUNGE\r\n" in lines


async def test_a_folder_made_after_one_deleted_never_serves_the_deleted_ones_content(
    listeners: Listeners, world: World
) -> None:
    """SQLite gives a deleted folder's id to the next folder made; a content FETCH in the new
    folder serves its own message, never what was read from the old one under that id."""
    async with session(listeners.imaps_port) as c:
        for name, n in ((b"Old", 1), (b"New", 2)):
            raw = _message(n)
            await c.ok(b"C1", b"CREATE " + name)
            await c.ok(b"A1", b"APPEND %s {%d+}\r\n%s" % (name, len(raw), raw))
            await c.ok(b"S1", b"SELECT " + name)
            assert await c.ok(b"F1", b"FETCH 1 BODY.PEEK[]") == [
                b"* 1 FETCH (BODY[] {%d}\r\n" % len(raw) + raw + b")\r\n",
                b"F1 OK FETCH completed\r\n",
            ]
            await c.ok(b"U1", b"UNSELECT")
            if name == b"Old":
                await c.ok(b"D1", b"DELETE Old")

"""Issue 16 item 10: a FETCH racing another session's EXPUNGE never drops the session. A message
this session still sees stays readable until it is told of the expunge (RFC 9051 §7.5.1), so its
placement is retained, and its row and blob with it, until no session on any node can see it;
should it be gone anyway (its blob lost), it is answered with NO [EXPUNGEISSUED] and the session
goes on."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from mailmark.bootstrap import Listeners
from mailmark.core.folder_signals import FolderSignals
from mailmark.core.mailstore import NODE_GONE_AFTER, MailStore
from mailmark.storage.tables import (
    folders,
    imap_node_views,
    imap_nodes,
    messages,
    placements,
    retained_placements,
)
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


async def _expunge_elsewhere(world: World, node: MailStore, uid: int) -> None:
    """\\Deleted and EXPUNGE of the INBOX message `uid` through another node's store."""
    assert world.sales.id is not None
    snapshot = await node.select(world.sales.id, "INBOX")
    await node.store_flags(snapshot.folder_id, [uid], "add", ["\\Deleted"])
    assert await node.expunge(snapshot.folder_id) == [uid]


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


async def test_an_expunge_on_another_node_serves_the_message_until_this_session_is_told(
    listeners: Listeners, world: World
) -> None:
    """This node published that its sessions have INBOX open (`imap_node_views`), so the other
    node retains what it expunges; once the session here is told, this node's next renewal
    releases it."""
    key = await _three_messages(world)
    assert world.sales.id is not None
    other_node = _another_node(world)
    body = _message(2)
    async with session(listeners.imaps_port, select="INBOX") as reader:
        await _expunge_elsewhere(world, other_node, 2)
        assert await reader.ok(b"F1", b"FETCH 2 (FLAGS BODY.PEEK[])") == [
            b"* 2 FETCH (FLAGS (\\Deleted \\Recent) BODY[] {%d}\r\n" % len(body) + body + b")\r\n",
            b"F1 OK FETCH completed\r\n",
        ]
        await other_node.renew_views()
        assert await world.services.blobs.exists(key)
        lines = await reader.ok(b"N1", b"NOOP")
        assert b"* 2 EXPUNGE\r\n" in lines and lines[-1] == b"N1 OK NOOP completed\r\n"
        # This node's renewal finds the folder retaining what none of its sessions sees now.
        await world.services.mailstore.renew_views()
        assert await _gone(world, key)
        assert await reader.ok(b"F2", b"FETCH 1:* (UID)") == [
            b"* 1 FETCH (UID 1)\r\n",
            b"* 2 FETCH (UID 3)\r\n",
            b"F2 OK FETCH completed\r\n",
        ]


async def test_a_move_on_another_node_leaves_the_message_readable_here_until_told(
    listeners: Listeners, world: World
) -> None:
    await _three_messages(world)
    assert world.sales.id is not None
    other_node = _another_node(world)
    body = _message(2)
    async with session(listeners.imaps_port, select="INBOX") as reader:
        snapshot = await other_node.select(world.sales.id, "INBOX")
        await other_node.store_flags(snapshot.folder_id, [2], "add", ["\\Flagged"])
        await other_node.copy(world.sales.id, snapshot.folder_id, [2], "Archive", move=True)
        assert await reader.ok(b"F1", b"FETCH 2 (FLAGS BODY.PEEK[])") == [
            b"* 2 FETCH (FLAGS (\\Flagged \\Recent) BODY[] {%d}\r\n" % len(body) + body + b")\r\n",
            b"F1 OK FETCH completed\r\n",
        ]
        lines = await reader.ok(b"N1", b"NOOP")
        assert b"* 2 EXPUNGE\r\n" in lines
        await world.services.mailstore.renew_views()
    async with world.services.engine.connect() as conn:
        left = (
            await conn.execute(sa.select(sa.func.count()).select_from(retained_placements))
        ).scalar_one()
    assert left == 0


async def test_a_node_gone_silent_holds_nothing_back(listeners: Listeners, world: World) -> None:
    """A node that died with sessions open stops renewing: once NODE_GONE_AFTER has passed, its
    views no longer keep what another node expunges."""
    key = await _three_messages(world)
    assert world.sales.id is not None
    other_node = _another_node(world)
    async with session(listeners.imaps_port, select="INBOX"):
        async with world.services.engine.begin() as conn:
            await conn.execute(
                imap_nodes.update()
                .where(imap_nodes.c.node_id == world.services.mailstore.node_id)
                .values(seen_at=world.services.clock.now() - NODE_GONE_AFTER - timedelta(seconds=1))
            )
        await _expunge_elsewhere(world, other_node, 2)
        assert await _gone(world, key)


async def test_a_retained_message_survives_a_restart_of_any_node(
    listeners: Listeners, world: World
) -> None:
    """Every node removes messages left without a placement when it starts; one retained for a
    session on another node is not among them."""
    key = await _three_messages(world)
    assert world.sales.id is not None
    other_node = _another_node(world)
    async with session(listeners.imaps_port, select="INBOX") as reader:
        await _expunge_elsewhere(world, other_node, 2)
        await _another_node(world).remove_unplaced()
        assert await world.services.blobs.exists(key)
        fetched = await reader.ok(b"F1", b"FETCH 2 BODY.PEEK[]")
        assert fetched[-1] == b"F1 OK FETCH completed\r\n"


async def test_a_node_that_left_holds_nothing_back(listeners: Listeners, world: World) -> None:
    key = await _three_messages(world)
    assert world.sales.id is not None
    other_node = _another_node(world)
    async with session(listeners.imaps_port, select="INBOX") as reader:
        await reader.ok(b"U1", b"UNSELECT")
    await world.services.mailstore.leave()
    await _expunge_elsewhere(world, other_node, 2)
    assert await _gone(world, key)


async def test_tombstones_another_nodes_session_has_not_caught_up_with_are_kept(
    listeners: Listeners, world: World
) -> None:
    await _three_messages(world)
    assert world.sales.id is not None
    other_node = _another_node(world)
    async with session(listeners.imaps_port, select="INBOX") as reader:
        for uid in (1, 2, 3):
            await _expunge_elsewhere(world, other_node, uid)
        assert await other_node.prune_tombstones(0) == 0
        assert await reader.ok(b"N1", b"NOOP") == [
            b"* 3 EXPUNGE\r\n",
            b"* 2 EXPUNGE\r\n",
            b"* 1 EXPUNGE\r\n",
            b"N1 OK NOOP completed\r\n",
        ]
        await world.services.mailstore.renew_views()
    await world.services.mailstore.renew_views()
    assert await other_node.prune_tombstones(0) == 3


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
    session is told. A FETCH that reports FLAGS reads the database and finds the placement
    retained as it was expunged."""
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
        await _expunge_elsewhere(world, other_node, 2)

        assert await reader.ok(b"F2", b"FETCH 2 BODY.PEEK[]") == [
            served,
            b"F2 OK FETCH completed\r\n",
        ]
        assert await reader.ok(b"F3", b"FETCH 2 (FLAGS BODY.PEEK[])") == [
            b"* 2 FETCH (FLAGS (\\Deleted \\Recent) BODY[] {%d}\r\n" % len(body) + body + b")\r\n",
            b"F3 OK FETCH completed\r\n",
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


async def _views(world: World) -> list[tuple[str, int, int]]:
    view = imap_node_views.c
    async with world.services.engine.connect() as conn:
        rows = await conn.execute(sa.select(view.node_id, view.folder_id, view.floor))
        return [(row.node_id, row.folder_id, row.floor) for row in rows]


async def test_a_node_publishes_the_folders_its_sessions_have_open_and_what_they_were_told(
    listeners: Listeners, world: World
) -> None:
    await _three_messages(world)
    store = world.services.mailstore
    async with session(listeners.imaps_port, select="INBOX") as reader:
        [(node, inbox, floor)] = await _views(world)
        assert node == store.node_id
        await reader.ok(b"S1", b"STORE 1 +FLAGS.SILENT (\\Seen)")
        # The SELECT's view is open: the renewal raises the floor to what the session saw.
        await store.renew_views()
        assert await _views(world) == [(node, inbox, floor + 1)]
        await reader.ok(b"U1", b"UNSELECT")
        await store.renew_views()
        assert await _views(world) == []

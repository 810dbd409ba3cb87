"""Issue 16 item 12: expunge tombstones are pruned (each folder keeps its newest ones, and any a
session open here has not caught up with). A client resynchronising from an older MODSEQ is
answered from the folder's current UIDs: VANISHED (EARLIER) names every UID below UIDNEXT that is
not there (RFC 7162 §3.2.10 allows UIDs that never existed), and a session learns its expunges by
comparing what it shows with what is there."""

from __future__ import annotations

import re

import sqlalchemy as sa

from mailmark.bootstrap import Listeners
from mailmark.core.mailstore import FolderChanges
from mailmark.storage.tables import expunged, folders
from tests.imap.raw import Raw, session
from tests.support.world import World


def _message(n: int) -> bytes:
    return b"From: a@example.org\r\nSubject: %d\r\n\r\nbody\r\n" % n


async def _tombstones(world: World) -> tuple[int, int]:
    """(tombstones of sales' INBOX, its floor)."""
    async with world.services.engine.connect() as conn:
        inbox = sa.select(folders.c.id, folders.c.expunged_floor).where(
            folders.c.mailbox_id == world.sales.id, folders.c.name == "INBOX"
        )
        folder_id, floor = (await conn.execute(inbox)).one()
        count = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(expunged)
            .where(expunged.c.folder_id == folder_id)
        )
    return int(count or 0), int(floor)


async def _expunge(client: Raw, uids: bytes) -> None:
    await client.ok(b"X1", b"UID STORE " + uids + b" +FLAGS.SILENT (\\Deleted)")
    await client.ok(b"X2", b"UID EXPUNGE " + uids)


async def test_pruned_tombstones_resynchronise_from_the_folders_uids(
    listeners: Listeners, world: World
) -> None:
    assert world.sales.id is not None
    for n in range(1, 11):
        await world.services.mailstore.append(world.sales.id, "INBOX", _message(n))
    mailstore = world.services.mailstore
    async with session(listeners.imaps_port) as client:
        await client.ok(b"E0", b"ENABLE QRESYNC")
        text = b"".join(await client.ok(b"S0", b"SELECT INBOX"))
        validity = int(re.search(rb"UIDVALIDITY (\d+)", text)[1])  # type: ignore[index]
        remembered = int(re.search(rb"HIGHESTMODSEQ (\d+)", text)[1])  # type: ignore[index]

        async with session(listeners.imaps_port, select="INBOX") as behind:
            # `behind` has seen none of these expunges: its tombstones stay.
            await _expunge(client, b"2:4")
            await _expunge(client, b"7")
            assert await mailstore.prune_tombstones(0) == 0
            assert await _tombstones(world) == (4, 0)
            lines = await behind.ok(b"N1", b"NOOP")
            assert lines == [
                b"* 7 EXPUNGE\r\n",
                b"* 4 EXPUNGE\r\n",
                b"* 3 EXPUNGE\r\n",
                b"* 2 EXPUNGE\r\n",
                b"N1 OK NOOP completed\r\n",
            ]

        # No session is behind now: every tombstone beyond the newest one goes.
        await client.ok(b"N2", b"NOOP")
        assert await mailstore.prune_tombstones(1) == 3
        count, floor = await _tombstones(world)
        assert count == 1 and floor > remembered

        # Resynchronising from before the expunges: the gaps among UIDs 1..10 are reported.
        lines = await client.ok(b"S1", b"SELECT INBOX (QRESYNC (%d %d))" % (validity, remembered))
        assert b"* VANISHED (EARLIER) 2:4,7\r\n" in lines, lines
        lines = await client.ok(
            b"S2", b"SELECT INBOX (QRESYNC (%d %d 5:10))" % (validity, remembered)
        )
        assert b"* VANISHED (EARLIER) 7\r\n" in lines, lines
        lines = await client.ok(
            b"F1", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % remembered
        )
        assert lines[0] == b"* VANISHED (EARLIER) 2:4,7\r\n", lines
        # From a MODSEQ the kept tombstone covers: only the last expunge.
        lines = await client.ok(b"F2", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % floor)
        assert lines[0] == b"* VANISHED (EARLIER) 7\r\n", lines


def test_a_session_learns_its_expunges_from_the_folders_uids() -> None:
    changes = FolderChanges([], [], highestmodseq=20, uidnext=12, present=[1, 5, 6, 9])

    assert changes.expunged_among([1, 2, 5, 6, 7, 9]) == [2, 7]
    # Ranges: UIDs 2-4, 7-8 and 10-11 are not there; the session still shows 7.
    assert changes.vanished(still_seen=[1, 5, 6, 7, 9]) == [(2, 4), (8, 8), (10, 11)]
    assert changes.vanished([(3, 8)]) == [(3, 4), (7, 8)]
    with_tombstones = FolderChanges([], [3, 4, 8], highestmodseq=20, uidnext=12)
    assert with_tombstones.expunged_among([1, 3, 5, 8]) == [3, 8]
    assert with_tombstones.vanished(still_seen=[8]) == [(3, 4)]

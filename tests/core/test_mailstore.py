"""The IMAP mail store over the real services, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import build_services
from mailmark.config import Settings
from mailmark.core import imap_structure
from mailmark.core import search as s
from mailmark.core.errors import Conflict, Forbidden, InvalidInput, MessageTooLarge, NotFound
from mailmark.core.mailstore import CONTENT_CHUNK_BYTES, FETCH_CHUNK, FetchWants, MailStore
from mailmark.storage.tables import FULLTEXT_TABLE, messages, outbound_messages, placements
from tests.support.world import World


def message(
    subject: str,
    body: str = "hello",
    *,
    sender: str = "ann@example.test",
    to: str = "sales@acme.test",
    date_header: str = "Mon, 06 Oct 2025 10:00:00 +0000",
    extra: str = "",
) -> bytes:
    return (
        f"From: Ann <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date_header}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.test>\r\n{extra}\r\n{body}\r\n"
    ).encode()


def store(world: World) -> MailStore:
    return world.services.mailstore


def mailbox_id(world: World) -> int:
    assert world.sales.id is not None
    return world.sales.id


async def inbox(world: World) -> int:
    return (await store(world).select(mailbox_id(world), "INBOX")).folder_id


async def blob_key_of(world: World, folder_id: int, uid: int) -> str:
    query = (
        sa.select(messages.c.blob_key)
        .select_from(placements.join(messages))
        .where(placements.c.folder_id == folder_id, placements.c.uid == uid)
    )
    async with world.services.engine.connect() as conn:
        return str((await conn.execute(query)).scalar_one())


async def test_append_then_select_fetch_and_bytes_round_trip(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    raw = message("first")
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = await ms.append(mid, "inbox", raw, ["\\seen", "$Label1"], when)
    second = await ms.append(mid, "INBOX", message("second"))
    assert second.uid == first.uid + 1
    snap = await ms.select(mid, "INBOX")
    assert snap.uids == [first.uid, second.uid]
    assert snap.uidvalidity == first.uidvalidity and snap.uidnext == second.uid + 1
    assert snap.unseen == 1 and snap.first_unseen_seq == 2 and snap.keywords == ("$Label1",)
    chunks = [c async for c in ms.fetch(snap.folder_id, snap.uids, FetchWants(True, True, True))]
    fetched = [m for chunk in chunks for m in chunk]
    assert [m.uid for m in fetched] == snap.uids
    assert fetched[0].flags == ("\\Seen", "$Label1") and fetched[0].internal_date == when
    assert fetched[0].content == raw and fetched[0].size == len(raw)
    assert fetched[0].envelope == imap_structure.envelope(raw)
    assert fetched[0].bodystructure == imap_structure.bodystructure(raw)
    assert fetched[0].body == imap_structure.bodystructure(raw, extensible=False)
    assert await ms.message_bytes(snap.folder_id, first.uid) == raw
    with pytest.raises(NotFound):
        await ms.message_bytes(snap.folder_id, 999)


async def test_append_into_sent_sends_nothing_and_checks_limits(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    await ms.append(mid, "Sent", message("draft sent by a client", to="someone@elsewhere.test"))
    async with world.services.uow(read_only=True) as uow:
        assert await uow.deliveries.entries(None, 10) == []
    async with world.services.engine.connect() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(outbound_messages))
        ).scalar_one() == 0
    assert len((await ms.select(mid, "Sent")).uids) == 1
    with pytest.raises(NotFound):
        await ms.append(mid, "No Such Folder", message("x"))
    with pytest.raises(MessageTooLarge):
        await ms.append(
            mid, "INBOX", b"Subject: big\r\n\r\n" + b"x" * world.services.settings.max_message_size
        )
    with pytest.raises(InvalidInput):
        await ms.append(mid, "INBOX", message("x"), ["\\Bogus"])


async def test_delivery_is_seen_by_the_store_and_wakes_waiters(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    before = ms.signals.generation(mid)
    waiter = asyncio.create_task(ms.signals.wait(mid, 5.0))
    await asyncio.sleep(0)
    await world.services.delivery.deliver(
        message("from mx"), recipients=[world.sales], mail_from="a@b.test"
    )
    assert await asyncio.wait_for(waiter, 1.0) is True
    assert ms.signals.generation(mid) > before
    # Nothing published since `after`: a waiter times out; a stale `after` returns at once.
    assert await ms.signals.wait(mid, 0.05, after=ms.signals.generation(mid)) is False
    assert await ms.signals.wait(mid, 5.0, after=before) is True
    snap = await ms.select(mid, "INBOX")
    [[fetched]] = [c async for c in ms.fetch(snap.folder_id, snap.uids, FetchWants(envelope=True))]
    assert b'"from mx"' in (fetched.envelope or b"")


async def test_uids_are_never_reused_and_uidnext_survives_restart(
    world: World, settings: Settings
) -> None:
    ms, mid = store(world), mailbox_id(world)
    folder = await inbox(world)
    uids = [(await ms.append(mid, "INBOX", message(f"m{i}"), ["\\Deleted"])).uid for i in range(3)]
    assert await ms.expunge(folder) == uids
    moved = await ms.append(mid, "INBOX", message("moved"))
    await ms.copy(mid, folder, [moved.uid], "Trash", move=True)
    after = await ms.append(mid, "INBOX", message("after"))
    assert after.uid > moved.uid > uids[-1]
    uidnext = (await ms.select(mid, "INBOX")).uidnext
    restarted = await build_services(settings)
    try:
        snap = await restarted.mailstore.select(mid, "INBOX")
        assert snap.uidnext == uidnext and snap.uids == [after.uid]
        again = await restarted.mailstore.append(mid, "INBOX", message("again"))
        assert again.uid == uidnext
    finally:
        await restarted.close()


async def test_expunge_only_deleted_writes_tombstones_and_changes_since(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    folder = await inbox(world)
    a, b, c = [(await ms.append(mid, "INBOX", message(f"t{i}"))).uid for i in range(3)]
    blob_keys = {uid: await blob_key_of(world, folder, uid) for uid in (a, b, c)}
    modseq = (await ms.select(mid, "INBOX")).highestmodseq
    await ms.store_flags(folder, [a, b, c], "add", ["\\Deleted"])
    await ms.store_flags(folder, [c], "remove", ["\\deleted"])
    assert await ms.expunge(folder, [b, c]) == [b]  # UID EXPUNGE limits it
    changes = await ms.changes_since(folder, modseq)
    assert changes.expunged == [b]
    assert {ch.uid for ch in changes.changed} == {a, c}
    assert changes.highestmodseq > modseq
    assert await ms.expunge(folder) == [a]
    assert (await ms.select(mid, "INBOX")).uids == [c]
    assert await ms.expunge(folder) == []
    # The message rows and blobs nothing references are gone.
    async with world.services.engine.connect() as conn:
        keys = (await conn.execute(sa.select(messages.c.blob_key))).scalars().all()
    assert keys == [blob_keys[c]]
    for uid in (a, b):
        assert not await world.services.blobs.exists(blob_keys[uid])


async def test_store_flag_modes_modseq_and_unchangedsince(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    folder = await inbox(world)
    a = (await ms.append(mid, "INBOX", message("f1"))).uid
    b = (await ms.append(mid, "INBOX", message("f2"))).uid
    result = await ms.store_flags(folder, [a, b], "add", ["\\SEEN", "Work", "\\Recent"])
    assert [(c.uid, c.flags) for c in result.changed] == [
        (a, ("\\Seen", "Work")),
        (b, ("\\Seen", "Work")),
    ]
    assert result.changed[1].modseq == result.changed[0].modseq + 1
    again = await ms.store_flags(folder, [a], "add", ["\\seen", "work"])
    assert again.changed == []  # nothing changed: no new MODSEQ
    removed = await ms.store_flags(folder, [a], "remove", ["WORK"])
    assert removed.changed[0].flags == ("\\Seen",)
    replaced = await ms.store_flags(folder, [b], "replace", ["\\Flagged"])
    assert replaced.changed[0].flags == ("\\Flagged",)
    # RFC 7162 §3.1.3: b changed after the given MODSEQ, so it is not touched and is reported.
    cond = await ms.store_flags(
        folder, [a, b], "add", ["\\Answered"], unchanged_since=removed.changed[0].modseq
    )
    assert cond.modified == [b] and [c.uid for c in cond.changed] == [a]
    assert (await ms.status(mid, "INBOX")).highestmodseq == cond.changed[0].modseq
    with pytest.raises(InvalidInput):
        await ms.store_flags(folder, [a], "add", ["bad flag"])


async def test_copy_and_move_give_copyuid_data_and_share_the_message(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    folder = await inbox(world)
    uids = [(await ms.append(mid, "INBOX", message(f"c{i}"), ["\\Flagged"])).uid for i in range(3)]
    trash = await ms.select(mid, "Trash")
    copied = await ms.copy(mid, folder, [uids[2], uids[0], 999], "Trash", move=False)
    assert copied.uidvalidity == trash.uidvalidity
    assert copied.source_uids == [uids[0], uids[2]] and copied.dest_uids == [
        trash.uidnext,
        trash.uidnext + 1,
    ]
    moved = await ms.copy(mid, folder, [uids[1]], "Trash", move=True)
    assert moved.dest_uids == [trash.uidnext + 2]
    assert (await ms.select(mid, "INBOX")).uids == [uids[0], uids[2]]
    after = await ms.select(mid, "Trash")
    assert after.uids == copied.dest_uids + moved.dest_uids
    [[m]] = [c async for c in ms.fetch(after.folder_id, moved.dest_uids, FetchWants(content=True))]
    assert m.flags == ("\\Flagged",) and m.content == message("c1")
    changes = await ms.changes_since(folder, 0)
    assert changes.expunged == [uids[1]]
    with pytest.raises(NotFound):
        await ms.copy(mid, folder, [uids[0]], "Nowhere", move=False)
    async with world.services.engine.connect() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(messages))).scalar_one()
    assert count == 3  # copies share the message row


async def test_folder_create_rename_delete_and_subscribe(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    created = await ms.create_folder(mid, "Projects/2025/")
    assert created.name == "Projects/2025"
    names = [f.name for f in await ms.list_folders(mid)]
    assert names[0] == "INBOX" and "Projects" in names and "Projects/2025" in names
    with pytest.raises(Conflict):
        await ms.create_folder(mid, "inbox")
    with pytest.raises(InvalidInput):
        await ms.create_folder(mid, "a//b")
    await ms.append(mid, "Projects/2025", message("p"))
    await ms.rename_folder(mid, "Projects", "Archive/Old")
    names = [f.name for f in await ms.list_folders(mid)]
    assert "Archive" in names and "Archive/Old/2025" in names and "Projects" not in names
    assert len((await ms.select(mid, "Archive/Old/2025")).uids) == 1
    with pytest.raises(Forbidden):
        await ms.delete_folder(mid, "INBOX")
    with pytest.raises(Forbidden):
        await ms.delete_folder(mid, "Sent")
    with pytest.raises(Forbidden):
        await ms.rename_folder(mid, "Trash", "Bin")
    await ms.delete_folder(mid, "Archive/Old/2025")
    with pytest.raises(NotFound):
        await ms.select(mid, "Archive/Old/2025")
    old = await ms.create_folder(mid, "Archive/Old/2025")
    assert (await ms.status(mid, old.name)).messages == 0
    await ms.set_subscribed(mid, "Archive", False)
    assert {f.name: f.subscribed for f in await ms.list_folders(mid)}["Archive"] is False


async def test_renaming_inbox_moves_its_messages(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    uid = (await ms.append(mid, "INBOX", message("keep me"))).uid
    old = await ms.select(mid, "INBOX")
    await ms.rename_folder(mid, "INBOX", "Old Inbox")
    moved = await ms.select(mid, "Old Inbox")
    assert moved.uids == [uid] and moved.uidvalidity == old.uidvalidity
    now = await ms.select(mid, "INBOX")
    assert now.uids == [] and now.uidnext == old.uidnext
    assert (await ms.changes_since(now.folder_id, old.highestmodseq)).expunged == [uid]


async def test_status_counts(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    raws = [message(f"s{i}") for i in range(3)]
    for i, raw in enumerate(raws):
        await ms.append(mid, "INBOX", raw, ["\\Seen"] if i == 0 else [])
    status = await ms.status(mid, "INBOX")
    # RFC 3501 §2.3.2: no session has seen them yet.
    assert (status.messages, status.unseen, status.recent) == (3, 2, 3)
    assert status.size == sum(len(r) for r in raws)
    assert status.uidnext == (await ms.select(mid, "INBOX")).uidnext


async def test_fetch_skips_uids_not_in_the_folder(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    raw = message("bulk")
    key, _ = await world.services.blobs.put(raw)
    folder = await inbox(world)
    # Many placements of one message, inserted directly: the store is what is under test.
    mailbox = world.sales
    async with world.services.uow() as uow:
        for _ in range(0, FETCH_CHUNK * 2 + 10, 50):
            await world.services.delivery.place_in(
                uow,
                raw,
                blob_key=key,
                created_blob=False,
                mailbox=mailbox,
                folder="INBOX",
                mail_from="",
            )
        await uow.commit()
    snap = await ms.select(mid, "INBOX")
    assert len(snap.uids) == len(range(0, FETCH_CHUNK * 2 + 10, 50))
    sizes = [len(c) async for c in ms.fetch(folder, list(range(1, 10_000)), FetchWants())]
    assert sum(sizes) == len(snap.uids) and max(sizes) <= FETCH_CHUNK


async def test_fetch_yields_chunks_of_at_most_fetch_chunk(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    raw = message("many")
    key, _ = await world.services.blobs.put(raw)
    count = FETCH_CHUNK + 7
    async with world.services.uow() as uow:
        for _ in range(count):
            await world.services.delivery.place_in(
                uow,
                raw,
                blob_key=key,
                created_blob=False,
                mailbox=world.sales,
                folder="INBOX",
                mail_from="",
            )
        await uow.commit()
    snap = await ms.select(mid, "INBOX")
    chunks = [c async for c in ms.fetch(snap.folder_id, snap.uids, FetchWants(content=True))]
    assert [len(c) for c in chunks] == [FETCH_CHUNK, 7]
    assert all(m.content == raw for c in chunks for m in c)


async def test_envelope_is_computed_lazily_for_old_messages(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    raw = message("old one")
    uid = (await ms.append(mid, "INBOX", raw)).uid
    async with world.services.engine.begin() as conn:
        await conn.execute(messages.update().values(envelope=None, bodystructure=None, body=None))
    folder = await inbox(world)
    [[m]] = [
        c async for c in ms.fetch(folder, [uid], FetchWants(envelope=True, bodystructure=True))
    ]
    assert m.envelope == imap_structure.envelope(
        raw
    ) and m.bodystructure == imap_structure.bodystructure(raw)
    async with world.services.engine.connect() as conn:
        stored = (await conn.execute(sa.select(messages.c.envelope))).scalar_one()
    assert stored == m.envelope


SEARCH_MESSAGES = [
    # (subject, body, flags, internal date, Date header, extra header)
    (
        "Quarterly report",
        "numbers attached: Zebra42",
        ["\\Seen"],
        datetime(2025, 3, 1, 12, tzinfo=UTC),
        "Sat, 01 Mar 2025 09:00:00 +0000",
        "Cc: boss@acme.test\r\n",
    ),
    (
        "Lunch?",
        "are you free at noon",
        [],
        datetime(2025, 3, 2, 12, tzinfo=UTC),
        "Sun, 02 Mar 2025 09:00:00 +0000",
        "X-Priority: 1\r\n",
    ),
    (
        "=?utf-8?q?Caf=C3=A9_menu?=",
        "espresso and CROISSANTS",
        ["\\Flagged", "$Important"],
        datetime(2025, 3, 3, 12, tzinfo=UTC),
        "Mon, 03 Mar 2025 09:00:00 +0000",
        "",
    ),
    (
        "Re: report",
        "thanks " + "x" * 3000,
        ["\\Answered", "\\Seen"],
        datetime(2025, 3, 4, 12, tzinfo=UTC),
        "Tue, 04 Mar 2025 09:00:00 +0000",
        "Bcc: hidden@acme.test\r\n",
    ),
]


@pytest.fixture
async def searchable(world: World) -> tuple[MailStore, int, list[int]]:
    ms, mid = store(world), mailbox_id(world)
    uids = []
    for i, (subject, body, flags, when, date_header, extra) in enumerate(SEARCH_MESSAGES):
        sender = "bob@other.test" if i == 1 else "ann@example.test"
        raw = message(subject, body, sender=sender, date_header=date_header, extra=extra)
        uids.append((await ms.append(mid, "INBOX", raw, flags, when)).uid)
    return ms, await inbox(world), uids


CASES: list[tuple[s.Criteria, list[int]]] = [
    (s.All(), [0, 1, 2, 3]),
    (s.Flag("\\Seen"), [0, 3]),
    (s.Flag("\\seen", present=False), [1, 2]),
    (s.Flag("$important"), [2]),
    (s.Flag("\\Recent"), []),
    (s.New(), []),
    (s.Old(), [0, 1, 2, 3]),
    (s.Recent(), []),
    (s.Subject("REPORT"), [0, 3]),
    (s.Subject("café"), [2]),  # decoded encoded-word
    (s.From("bob@"), [1]),
    (s.From("ANN@"), [0, 2, 3]),
    (s.To("sales@acme"), [0, 1, 2, 3]),
    (s.Cc("boss"), [0]),
    (s.Bcc("hidden"), [3]),
    (s.Header("X-Priority", ""), [1]),
    (s.Header("x-priority", "1"), [1]),
    (s.Header("Subject", "acme"), []),  # "acme" is in other fields, not in Subject
    (s.Body("croissants"), [2]),
    (s.Body("report"), []),  # only in the header
    (s.Text("report"), [0, 3]),
    (s.Text("zebra42"), [0]),
    (s.Text("no"), [1]),  # short: substring "noon"
    (s.Text('quote"d'), []),
    (s.Before(date(2025, 3, 2)), [0]),
    (s.On(date(2025, 3, 2)), [1]),
    (s.Since(date(2025, 3, 3)), [2, 3]),
    (s.SentBefore(date(2025, 3, 3)), [0, 1]),
    (s.SentOn(date(2025, 3, 4)), [3]),
    (s.SentSince(date(2025, 3, 2)), [1, 2, 3]),
    (s.Larger(2000), [3]),
    (s.Smaller(2000), [0, 1, 2]),
    (s.And((s.Flag("\\Seen"), s.Text("report"))), [0, 3]),
    (s.And((s.Flag("\\Seen"), s.Larger(2000))), [3]),
    (s.Or(s.Flag("\\Flagged"), s.From("bob")), [1, 2]),
    (s.Not(s.Or(s.Flag("\\Flagged"), s.From("bob"))), [0, 3]),
    (s.Not(s.Text("report")), [1, 2]),
    (s.And(()), [0, 1, 2, 3]),
]


@pytest.mark.parametrize(("criteria", "expected"), CASES, ids=[repr(c) for c, _ in CASES])
async def test_search_criteria(
    searchable: tuple[MailStore, int, list[int]], criteria: s.Criteria, expected: list[int]
) -> None:
    ms, folder, uids = searchable
    assert await ms.search(folder, criteria) == [uids[i] for i in expected]


async def test_search_uid_sets_modseq_and_universe(
    searchable: tuple[MailStore, int, list[int]],
) -> None:
    ms, folder, uids = searchable
    assert await ms.search(folder, s.UidSet.of([uids[0], uids[2], uids[3]])) == [
        uids[0],
        uids[2],
        uids[3],
    ]
    assert s.UidSet.of([5, 1, 2, 3]).ranges == ((1, 3), (5, 5))
    assert await ms.search(folder, s.UidSet(())) == []
    result = await ms.store_flags(folder, [uids[1]], "add", ["\\Deleted"])
    assert await ms.search(folder, s.ModSeq(result.changed[0].modseq)) == [uids[1]]
    assert await ms.search(folder, s.All(), uid_universe=[uids[0], 12345]) == [uids[0]]
    assert s.uses_modseq(s.Not(s.ModSeq(1))) and not s.uses_modseq(s.All())


async def test_search_refuses_unbounded_criteria(
    searchable: tuple[MailStore, int, list[int]],
) -> None:
    ms, folder, _ = searchable
    deep: s.Criteria = s.All()
    for _ in range(s.MAX_DEPTH + 1):
        deep = s.Not(deep)
    with pytest.raises(InvalidInput):
        await ms.search(folder, deep)
    with pytest.raises(InvalidInput):
        await ms.search(folder, s.And(tuple(s.All() for _ in range(s.MAX_NODES + 1))))


async def test_concurrent_appends_and_moves_get_distinct_uids(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    results = await asyncio.gather(*(ms.append(mid, "INBOX", message(f"c{i}")) for i in range(20)))
    uids = sorted(r.uid for r in results)
    assert uids == list(range(uids[0], uids[0] + 20))
    inbox_id = await inbox(world)
    trash_id = (await ms.select(mid, "Trash")).folder_id
    for uid in uids[10:]:
        await ms.copy(mid, inbox_id, [uid], "Trash", move=True)
    trash_uids = (await ms.select(mid, "Trash")).uids
    # Opposite moves at the same time: both complete, nothing lost or duplicated.
    await asyncio.gather(
        ms.copy(mid, inbox_id, uids[:10], "Trash", move=True),
        ms.copy(mid, trash_id, trash_uids, "INBOX", move=True),
    )
    total = len((await ms.select(mid, "INBOX")).uids) + len((await ms.select(mid, "Trash")).uids)
    assert total == 20


async def test_fetch_bounds_the_bytes_of_a_content_chunk(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    size = CONTENT_CHUNK_BYTES // 2 - 1024
    raws = [b"Subject: big %d\r\n\r\n" % i + b"x" * size for i in range(3)]
    uids = [(await ms.append(mid, "INBOX", raw)).uid for raw in raws]
    chunks = [c async for c in ms.fetch(await inbox(world), uids, FetchWants(content=True))]
    assert [len(c) for c in chunks] == [2, 1]
    assert [m.content for c in chunks for m in c] == raws


async def test_text_search_indexes_messages_stored_before_the_index(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    uid = (await ms.append(mid, "INBOX", message("legacy", "an ocelot was here"))).uid
    await ms.append(mid, "INBOX", message("other", "nothing to see"))
    async with world.services.engine.begin() as conn:
        await conn.execute(messages.update().values(envelope=None, bodystructure=None, body=None))
        await conn.execute(sa.text(f"DELETE FROM {FULLTEXT_TABLE}"))
    folder = await inbox(world)
    assert await ms.search(folder, s.Body("OCELOT")) == [uid]
    assert await ms.search(folder, s.Subject("legacy")) == [uid]
    async with world.services.engine.connect() as conn:
        missing = (
            await conn.execute(sa.select(sa.func.count()).where(messages.c.envelope.is_(None)))
        ).scalar_one()
    assert missing == 0


async def test_sent_dates_compare_the_day_in_the_headers_own_zone(world: World) -> None:
    ms, mid = store(world), mailbox_id(world)
    late = (
        await ms.append(
            mid, "INBOX", message("late", date_header="Mon, 03 Mar 2025 23:30:00 -0500")
        )
    ).uid
    early = (
        await ms.append(
            mid, "INBOX", message("early", date_header="Tue, 04 Mar 2025 00:30:00 +0900")
        )
    ).uid
    undated = (await ms.append(mid, "INBOX", b"Subject: no date\r\n\r\nbody\r\n")).uid
    folder = await inbox(world)
    # In UTC the first is on 4 March and the second on 3 March; RFC 3501 wants the written day.
    assert await ms.search(folder, s.SentOn(date(2025, 3, 3))) == [late]
    assert await ms.search(folder, s.SentOn(date(2025, 3, 4))) == [early]
    assert await ms.search(folder, s.SentBefore(date(2025, 3, 4))) == [late]
    # No Date header: the internal date's day stands in, so NOT splits the folder cleanly.
    today = world.services.clock.now().date()
    assert await ms.search(folder, s.SentOn(today)) == [undated]
    assert await ms.search(folder, s.Not(s.SentOn(today))) == [late, early]

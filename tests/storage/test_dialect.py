"""The SQL dialect: what each backend is asked to run, and batched inserts on the one under test."""

from __future__ import annotations

from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mailmark.storage.dialect import POSTGRESQL, SQLITE, Dialect, dialect_named
from mailmark.storage.tables import accounts, deliveries, events, messages, placements
from tests.support.world import World


def _sql(dialect: Dialect, statement: sa.ClauseElement) -> str:
    compiler = postgresql.dialect() if dialect is POSTGRESQL else sqlite.dialect()
    return str(statement.compile(dialect=compiler))


def test_dialects_are_chosen_by_engine_name() -> None:
    assert dialect_named("sqlite") is SQLITE
    assert dialect_named("postgresql") is POSTGRESQL
    with pytest.raises(ValueError, match="mysql"):
        dialect_named("mysql")


def test_only_postgresql_locks_leased_rows_and_skips_locked_ones() -> None:
    query = sa.select(deliveries.c.id)
    leased = _sql(POSTGRESQL, POSTGRESQL.for_update(query, of=deliveries, skip_locked=True))
    assert leased.endswith("FOR UPDATE OF deliveries SKIP LOCKED")
    assert "FOR UPDATE" not in _sql(SQLITE, SQLITE.for_update(query, of=deliveries))
    assert SQLITE.key_lock(1) is None
    key_lock = POSTGRESQL.key_lock(1)
    assert key_lock is not None and "pg_advisory_xact_lock" in _sql(POSTGRESQL, key_lock)


def test_conflicting_inserts_are_ignored_on_both() -> None:
    for dialect in (SQLITE, POSTGRESQL):
        assert "ON CONFLICT DO NOTHING" in _sql(dialect, dialect.insert_or_ignore(accounts))


def test_text_search_uses_the_trigram_index_of_each_backend() -> None:
    # FTS5's trigram tokenizer needs three characters; shorter values are scanned with LIKE.
    assert "MATCH" in _sql(SQLITE, SQLITE.text_contains(True, True, "invoice"))
    assert "LIKE" in _sql(SQLITE, SQLITE.text_contains(True, False, "ab"))
    assert "ILIKE" in _sql(POSTGRESQL, POSTGRESQL.text_contains(False, True, "invoice"))


async def test_insert_many_returns_each_rows_id_in_order(world: World) -> None:
    services = world.services
    now = services.clock.now()
    rows = [
        {"account_id": world.sales.account_id, "type": f"t{i}", "payload": {}, "created_at": now}
        for i in range(1201)
    ]
    async with services.engine.begin() as conn:
        ids = await services.uow.dialect.insert_many(conn, events, rows[:1])
        ids += await services.uow.dialect.insert_many(conn, events, rows[1:])
        found = await conn.execute(sa.select(events.c.id, events.c.type))
        stored = {row.id: row.type for row in found}

    assert len(set(ids)) == len(rows)
    assert [stored[i] for i in ids] == [row["type"] for row in rows]


async def test_insert_rows_stores_what_sqlalchemy_stores_in_one_hand_off(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch insert of delivered mail (straight on the driver on SQLite) stores every type of
    column as SQLAlchemy's own INSERT does: UTC datetimes as their text, dates, JSON, bytes and
    NULLs; on SQLite in one trip to the driver's thread."""
    # A whole second: sqlite3's own datetime adapter would then write no fraction, where
    # UtcDateTime's text always has six digits.
    now = world.services.clock.now().replace(microsecond=0)
    row = {
        "blob_key": "ab" * 32,
        "size": 1234,
        "trace_prefix": b"Received: from x\r\n",
        "received_at": now,
        "mail_from": "a@example.org",
        "message_id": "<m@example.org>",
        "subject": "Caf\u00e9",
        "subject_key": "cafe",
        "from_addr": "a@example.org",
        "to_addrs": ["b@example.com"],
        "cc_addrs": [],
        "date": now,
        "in_reply_to": None,
        "references": ["<r@example.org>"],
        "snippet": "Hello",
        "attachments": [{"name": "a.pdf", "size": 3}],
        "defects": None,
        "envelope": b"(NIL)",
        "bodystructure": None,
        "body": b"(TEXT)",
        "sent_day": now.date(),
    }
    assert set(row) | {"id"} == set(messages.c.keys())
    trips: list[str] = []
    forward = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await forward(self, fn, *args, **kwargs)

    dialect = world.services.uow.dialect
    async with world.services.engine.begin() as conn:
        await conn.execute(messages.insert(), [{**row, "id": 9001}])
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        await dialect.insert_rows(conn, messages, [{**row, "id": 9002}])
        monkeypatch.undo()
        stored = (
            await conn.exec_driver_sql(
                "SELECT * FROM messages WHERE id IN (9001, 9002) ORDER BY id"
            )
        ).all()
        read = (await conn.execute(sa.select(messages).where(messages.c.id == 9002))).one()

    assert tuple(stored[0])[1:] == tuple(stored[1])[1:]
    assert read.received_at == now and read.to_addrs == ["b@example.com"]
    if dialect is SQLITE:
        assert trips == ["executemany"]


async def _inbox_of_three(world: World) -> int:
    assert world.sales.id is not None
    for n in (1, 2, 3):
        raw = f"From: a@example.org\r\nSubject: n{n}\r\n\r\nBody {n}\r\n".encode()
        await world.services.mailstore.append(world.sales.id, "INBOX", raw)
    return (await world.services.mailstore.select(world.sales.id, "INBOX")).folder_id


async def test_all_rows_reads_what_sqlalchemy_reads(world: World) -> None:
    """The hot-path read (straight on the driver on SQLite) gives the rows SQLAlchemy gives, for
    a statement it runs itself and for one it hands back (an expanding parameter)."""
    folder_id = await _inbox_of_three(world)
    dialect = world.services.uow.dialect
    uid = placements.c.uid
    among = (
        sa.select(uid, placements.c.modseq)
        .where(placements.c.folder_id == sa.bindparam("folder"))
        .where(dialect.among_bound_ids(uid, "uids"))
        .order_by(uid)
    )
    expanding = sa.select(uid).where(uid.in_(sa.bindparam("uids", expanding=True))).order_by(uid)
    async with world.services.uow(read_only=True) as uow:
        conn = uow.mailstore._conn
        params = {"folder": folder_id, "uids": dialect.bound_ids([3, 1, 7])}
        direct = await dialect.all_rows(conn, among, params)
        usual = (await conn.execute(among, params)).all()
        assert [tuple(row) for row in direct] == [tuple(row) for row in usual]
        assert [row[0] for row in direct] == [1, 3]
        rows = await dialect.all_rows(conn, expanding, {"uids": [2, 3]})
        assert [row[0] for row in rows] == [2, 3]


async def test_a_read_only_unit_on_sqlite_reads_in_one_hand_off_and_leaves_nothing_open(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only unit whose one read goes through `all_rows` costs one trip to the driver's
    thread: no BEGIN, no ROLLBACK, and no second rollback when the pool takes it back. Units
    that did begin a transaction still give their connection back with none open."""
    if world.services.uow.dialect is not SQLITE:
        pytest.skip("the hand-offs are aiosqlite's")
    folder_id = await _inbox_of_three(world)
    trips: list[str] = []
    forward = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await forward(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    services = world.services
    async with services.uow(read_only=True) as uow:
        rows = await uow.mailstore.fetch_rows(folder_id, [1, 3], False, True)
    assert [row.uid for row in rows] == [1, 3]
    assert len(trips) == 1, trips

    async def open_transactions() -> list[bool]:
        connections = [await services.engine.connect() for _ in range(3)]
        try:
            return [
                (await conn.get_raw_connection()).driver_connection.in_transaction
                for conn in connections
            ]
        finally:
            for conn in connections:
                await conn.close()

    async with services.uow(read_only=True) as uow:
        await uow.folders.list_for_mailbox(world.sales.id or 0)  # SQLAlchemy begins
    with pytest.raises(RuntimeError):
        async with services.uow() as uow:
            await uow.folders.list_for_mailbox(world.sales.id or 0)
            raise RuntimeError("abandoned")
    assert await open_transactions() == [False, False, False]

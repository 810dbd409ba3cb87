"""The SQL dialect: what each backend is asked to run, and batched inserts on the one under test."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mailmark.storage.dialect import POSTGRESQL, SQLITE, Dialect, dialect_named
from mailmark.storage.tables import accounts, deliveries, events
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

"""The SQLite driver adapter: one trip to the connection's thread per statement, and everything
SQLAlchemy reads from a cursor afterwards as its own adapter gave it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection
from sqlalchemy.ext.asyncio import AsyncEngine

from mailmark.storage.db import create_engine
from mailmark.storage.sqlite_driver import OneTripCursor

items = sa.Table(
    "items",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String, nullable=False, unique=True),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with made.begin() as conn:
        await conn.run_sync(items.metadata.create_all)
    try:
        yield made
    finally:
        await made.dispose()


def test_the_insides_it_relies_on_are_there() -> None:
    """What the adapter uses of aiosqlite and of SQLAlchemy's adapter beyond their documented
    interfaces (the other test uses each for real): if an upgrade renames one, this says which."""
    assert callable(aiosqlite.Connection._execute)
    assert isinstance(aiosqlite.Connection._conn, property)
    assert any(
        "_execute_mutex" in getattr(klass, "__slots__", ())
        for klass in AsyncAdapt_aiosqlite_connection.__mro__
    )


async def test_each_statement_is_one_trip_and_reads_back_as_before(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips: list[str] = []
    forward = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await forward(self, fn, *args, **kwargs)

    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)

        inserted = await conn.execute(items.insert().values(name="a"))
        assert trips == ["_run"]
        assert inserted.inserted_primary_key == (1,)

        await conn.execute(items.insert(), [{"name": "b"}, {"name": "c"}])
        changed = await conn.execute(
            items.update().where(items.c.id > 1).values(name=items.c.name + "!")
        )
        assert changed.rowcount == 2

        trips.clear()
        rows = (await conn.execute(sa.select(items.c.id, items.c.name).order_by(items.c.id))).all()
        assert trips == ["_run"]
        assert [tuple(row) for row in rows] == [(1, "a"), (2, "b!"), (3, "c!")]
        result = await conn.execute(sa.select(items.c.name).order_by(items.c.id.desc()))
        assert result.keys() == ["name"] and result.scalars().first() == "c!"

        with pytest.raises(sa.exc.IntegrityError):
            await conn.execute(items.insert().values(name="a"))

"""PostgreSQL's connection pool: a connection given back lately is used without a ping, one idle
longer is pinged first, and one the server ended while it was taken as alive is answered as
unavailable (IMAP NO [UNAVAILABLE], HTTP 503, SMTP 451) and replaced, never used again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mailmark.core.errors import StorageUnavailable
from mailmark.storage.db import create_engine
from mailmark.storage.uow import SqlUnitOfWorkFactory
from tests.support.database import TEST_DATABASE_URL
from tests.support.world import DOMAIN, World

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="the pool's pings are PostgreSQL's: set MAILMARK_TEST_DATABASE_URL",
)


@pytest.fixture
async def admin(world: World) -> AsyncIterator[AsyncEngine]:
    url = make_url(world.services.settings.database_url)
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        yield engine
    finally:
        await engine.dispose()


async def _pooled_backend(engine: AsyncEngine) -> int:
    """The server process of the connection the pool hands out next (the one given back last)."""
    async with engine.connect() as conn:
        pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
    return int(pid)


async def _end_backend(admin: AsyncEngine, pid: int) -> None:
    """End a server process, as a restart or failover does, and wait until it is gone."""
    async with admin.connect() as conn:
        await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(500):
            gone = (
                await conn.execute(
                    sa.text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid},
                )
            ).scalar_one()
            if gone:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"server process {pid} still there")


async def _find_mailbox(uow: SqlUnitOfWorkFactory) -> None:
    async with uow(read_only=True) as unit:
        assert await unit.mailboxes.find(DOMAIN, "sales") is not None


async def _read_inbox_on_the_driver(uow: SqlUnitOfWorkFactory, folder_id: int) -> None:
    async with uow(read_only=True) as unit:
        assert await unit.mailstore.fetch_rows(folder_id, [1, 2, 3], False, True) == []


async def _inbox_id(uow: SqlUnitOfWorkFactory, world: World) -> int:
    async with uow(read_only=True) as unit:
        assert world.sales.id is not None
        folder = await unit.folders.get_by_name(world.sales.id, "INBOX")
        assert folder is not None and folder.id is not None
        return folder.id


@pytest.mark.parametrize("path", ["sqlalchemy", "driver"])
async def test_a_connection_ended_while_taken_as_alive_is_unavailable_once_then_replaced(
    world: World, admin: AsyncEngine, path: str
) -> None:
    engine = create_engine(world.services.settings.database_url, ping_after_idle_seconds=3600)
    try:
        uow = SqlUnitOfWorkFactory(engine)
        folder_id = await _inbox_id(uow, world)

        async def read() -> None:
            if path == "sqlalchemy":
                await _find_mailbox(uow)
            else:
                await _read_inbox_on_the_driver(uow, folder_id)

        await read()
        await _end_backend(admin, await _pooled_backend(engine))

        with pytest.raises(StorageUnavailable, match="unreachable"):
            await read()
        for _ in range(3):
            await read()  # a new connection: the ended one never comes back
    finally:
        await engine.dispose()


async def test_a_connection_idle_past_the_window_is_pinged_and_replaced_unseen(
    world: World, admin: AsyncEngine
) -> None:
    engine = create_engine(world.services.settings.database_url, ping_after_idle_seconds=0.05)
    try:
        uow = SqlUnitOfWorkFactory(engine)
        await _find_mailbox(uow)
        ended = await _pooled_backend(engine)
        await _end_backend(admin, ended)
        await asyncio.sleep(0.1)

        await _find_mailbox(uow)

        assert await _pooled_backend(engine) != ended
    finally:
        await engine.dispose()


async def test_a_connection_given_back_lately_is_used_without_a_ping(world: World) -> None:
    engine = create_engine(world.services.settings.database_url, ping_after_idle_seconds=3600)
    try:
        pid = await _pooled_backend(engine)
        pings: list[object] = []
        dialect = engine.dialect
        original = dialect.do_ping

        def counted(dbapi_connection: object) -> bool:
            pings.append(dbapi_connection)
            return original(dbapi_connection)

        dialect.do_ping = counted  # type: ignore[method-assign]
        for _ in range(5):
            assert await _pooled_backend(engine) == pid  # the same connection, last in first out
        assert pings == []
    finally:
        await engine.dispose()

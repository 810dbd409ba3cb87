"""Real storage faults for tests: a database that refuses writes because another connection holds
its write lock (SQLite) or because it was made read-only (PostgreSQL), and one that cannot be
reached at all."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from mailmark.bootstrap import Services


@contextlib.asynccontextmanager
async def database_refusing_writes(services: Services) -> AsyncIterator[None]:
    """While inside, every write of `services` fails as a locked (SQLite: give the settings a
    short `sqlite_busy_timeout`) or read-only (PostgreSQL) database does."""
    url = make_url(services.settings.database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        holder = sqlite3.connect(url.database, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # the write lock, held by another connection
            yield
        finally:
            holder.rollback()
            holder.close()
        return
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    quoted = f'"{url.database}"'
    try:
        async with admin.connect() as conn:
            await conn.execute(
                sa.text(f"ALTER DATABASE {quoted} SET default_transaction_read_only = on")
            )
        await services.engine.dispose()  # new connections start read-only
        try:
            yield
        finally:
            async with admin.connect() as conn:
                await conn.execute(
                    sa.text(f"ALTER DATABASE {quoted} RESET default_transaction_read_only")
                )
            await services.engine.dispose()
    finally:
        await admin.dispose()


@contextlib.asynccontextmanager
async def database_unreachable(services: Services) -> AsyncIterator[None]:
    """While inside, no new connection of `services` to its database opens: the SQLite file's
    path holds a directory instead (the file moved aside), or the PostgreSQL database takes no
    connections (its existing ones are ended). The pool is emptied on the way in and out."""
    url = make_url(services.settings.database_url)
    await services.engine.dispose()
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        path = Path(url.database)
        await asyncio.to_thread(_block_sqlite_file, path)
        try:
            yield
        finally:
            await services.engine.dispose()
            await asyncio.to_thread(_unblock_sqlite_file, path)
        return
    # Connected to the server's maintenance database: the test's own is the one closed.
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    quoted = f'"{url.database}"'
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS false"))
            await conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
                ),
                {"name": url.database},
            )
        try:
            yield
        finally:
            async with admin.connect() as conn:
                await conn.execute(sa.text(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS true"))
            await services.engine.dispose()
    finally:
        await admin.dispose()


def _block_sqlite_file(path: Path) -> None:
    path.rename(path.with_name(f"{path.name}.aside"))
    path.mkdir()  # SQLite cannot open a directory as a database


def _unblock_sqlite_file(path: Path) -> None:
    path.rmdir()
    path.with_name(f"{path.name}.aside").rename(path)

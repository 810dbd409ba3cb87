"""Real storage faults for tests: a database that refuses writes because another connection holds
its write lock (SQLite) or because it was made read-only (PostgreSQL)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator

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

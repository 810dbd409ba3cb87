"""Apply Alembic migrations on start (every node may try; PostgreSQL serialises them with a lock)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from mailmark.storage.dialect import dialect_named

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same on every node.
_MIGRATION_LOCK_ID = 0x6D61696C6D61726B


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    lock = dialect_named(connection.dialect.name).key_lock(_MIGRATION_LOCK_ID)
    if lock is not None:
        connection.execute(lock)
    command.upgrade(alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)

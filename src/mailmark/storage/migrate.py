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


class MigrationBrokeReferences(RuntimeError):
    """A migration left rows pointing at rows that no longer exist; nothing of it was committed."""


def _upgrade(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch migration rebuilds a SQLite table: create the new one, copy, DROP the old one.
        # With foreign keys on, that DROP runs every ON DELETE CASCADE / SET NULL pointing at the
        # table, and a rebuilt `domains` would take every mailbox and message with it. SQLite's
        # own procedure for schema changes (https://sqlite.org/lang_altertable.html §7): turn
        # foreign keys off, outside any transaction (the pragma is a no-op inside one), migrate,
        # then run foreign_key_check before committing.
        _sqlite_foreign_keys(connection, enabled=False)
    try:
        with connection.begin():
            lock = dialect_named(connection.dialect.name).key_lock(_MIGRATION_LOCK_ID)
            if lock is not None:
                connection.execute(lock)
            command.upgrade(alembic_config(connection), "head")
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise MigrationBrokeReferences(
                        f"The migration left {len(broken)} rows referring to missing rows "
                        f"(first: {tuple(broken[0])}); the database was not changed."
                    )
    finally:
        if sqlite:
            _sqlite_foreign_keys(connection, enabled=True)


def _sqlite_foreign_keys(connection: Connection, *, enabled: bool) -> None:
    """Set the pragma on the DBAPI connection itself: through SQLAlchemy the statement would
    open a transaction first (storage/db.py begins one for every connection's first use)."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")
    finally:
        cursor.close()


async def migrate(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.run_sync(_upgrade)

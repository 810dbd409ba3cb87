"""Engine creation: SQLite (WAL, the embedded default) or PostgreSQL (asyncpg, for scale-out)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import event, exc, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolResetState
from sqlalchemy.util.concurrency import await_

from mailmark.core.errors import StorageFull, StorageUnavailable

SQLITE_BUSY_TIMEOUT_MS = 15_000
READ_ONLY_OPTION = "mailmark_read_only"
# Only on a new database, while another node's first migration holds it (see _use_wal).
WAL_SWITCH_RETRY_SECONDS = 0.05
# A pooled PostgreSQL connection given back within this long is taken as alive; one idle longer is
# pinged before use (HikariCP skips its check within 500 ms the same way). SQLAlchemy's pre-ping
# on asyncpg is three round trips (BEGIN, an empty query, ROLLBACK) at every checkout: about
# 0.6 ms on a unit of work that is often one statement of 0.3 ms.
PING_AFTER_IDLE_SECONDS = 0.5
_RETURNED_AT = "mailmark_returned_at"


def create_engine(
    database_url: str,
    *,
    sqlite_synchronous: str = "FULL",
    sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    ping_after_idle_seconds: float = PING_AFTER_IDLE_SECONDS,
) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        return _sqlite_engine(database_url, sqlite_synchronous, sqlite_busy_timeout_ms)
    return _postgres_engine(database_url, ping_after_idle_seconds)


def load_database_driver(database_url: str) -> None:
    """Import the URL's database driver now: a server about to give up root loads it while it
    can still read every file (a driver imported later runs as the unprivileged user)."""
    make_url(database_url).get_dialect().import_dbapi()


# PostgreSQL SQLSTATEs of a database that cannot take the write now, but may soon.
PG_UNAVAILABLE = {
    "25006",  # read_only_sql_transaction (a standby, or default_transaction_read_only)
    "55P03",  # lock_not_available
    "53300",  # too_many_connections
    "57P03",  # cannot_connect_now
}
_PG_FULL = {"53100"}  # disk_full


def storage_fault(error: BaseException) -> StorageUnavailable | None:
    """The core error for a database that is locked, read-only or full, else None.

    These are conditions of the server, not of the request: a client is told to come back
    (HTTP 503, IMAP NO [UNAVAILABLE], SMTP 451), instead of being shown an internal error."""
    if not isinstance(error, DBAPIError):
        return None
    code = getattr(error.orig, "sqlstate", None)
    text = str(error.orig).lower()
    if code in _PG_FULL or "database or disk is full" in text:
        return StorageFull("The server's disk is full; nothing was stored. Try again later.")
    if error.connection_invalidated:
        # The server ended the connection (a restart, a failover); the pool has let it go.
        return StorageUnavailable("The database is unreachable; try again shortly.")
    if (
        code in PG_UNAVAILABLE
        or "database is locked" in text
        or "readonly database" in text
        or "read-only" in text
    ):
        return StorageUnavailable("The database is busy or read-only; try again shortly.")
    return None


def _postgres_engine(database_url: str, ping_after_idle_seconds: float) -> AsyncEngine:
    # Last in, first out: the connection given back last, whose server process is warm and whose
    # statements are prepared, serves the next unit of work; the rest stay idle.
    engine = create_async_engine(database_url, pool_size=10, max_overflow=20, pool_use_lifo=True)
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "connect")
    @event.listens_for(engine.sync_engine, "checkin")
    def _note_use(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_RETURNED_AT, 0.0) < ping_after_idle_seconds:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if not dialect.is_disconnect(error, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            # As the pool's own pre-ping does: the server likely restarted, so every connection
            # pooled before now is replaced; this checkout gets a new one.
            raise exc.InvalidatePoolError()

    return engine


def _sqlite_engine(database_url: str, synchronous: str, busy_timeout_ms: int) -> AsyncEngine:
    # Each aiosqlite connection is a thread: keep enough of them pooled that bursts of sessions
    # do not open and close connections (and threads) all the time. The MX's 20 connections of
    # bench/smtp_in.py kept more than 10 units of work open at once, and each connection the pool
    # opened past its size (a thread, the file, the pragmas) was closed again when given back.
    engine = create_async_engine(
        database_url,
        connect_args={"timeout": busy_timeout_ms / 1000},
        pool_size=30,
        max_overflow=20,
        pool_use_lifo=True,
        # Reset by `_on_reset` below instead.
        pool_reset_on_return=None,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (below) instead of the driver's implicit, deferred one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        _use_wal(cursor)
        # FULL: a committed transaction survives power loss, not only a process crash.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, reset_state: PoolResetState) -> None:
        # A connection goes back to the pool with no transaction open. The pool's own reset
        # rolled back every time: a hand-off to the connection's thread after each unit of work,
        # which had almost always ended its transaction already. SQLite says whether one is open.
        if not reset_state.terminate_only and dbapi_connection._connection.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a transaction that reads and then writes never
        # fails with SQLITE_BUSY on upgrade; other writers wait (busy_timeout) instead. Read-only
        # units of work need no lock: in WAL mode they read a snapshot beside the writer.
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION)
        _begin(connection, "BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _begin(connection: Any, statement: str) -> None:
    """Run `statement` straight on the aiosqlite connection: one hand-off to its thread. Through
    `exec_driver_sql` it took four (open a cursor, execute, fetch, close), and every unit of work
    begins with it. Errors are wrapped as SQLAlchemy's would be, for `storage_fault`."""
    raw = connection.connection.dbapi_connection._connection
    try:
        await_(raw.execute(statement))
    except sqlite3.Error as error:
        raise DBAPIError.instance(statement, (), error, sqlite3.Error) from error


def _use_wal(cursor: Any) -> None:
    """Put the database in WAL mode, which it then keeps for every later connection.

    Switching needs an exclusive lock and SQLite does not wait for it through the busy handler:
    a second node starting beside one that is migrating a new database gets "database is locked"
    at once. The switch is tried again for as long as the busy timeout allows."""
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(WAL_SWITCH_RETRY_SECONDS)


async def ping(engine: AsyncEngine) -> None:
    """One trivial query, in a read-only transaction (no write lock): the database answers."""
    async with engine.connect() as conn:
        await conn.execution_options(**{READ_ONLY_OPTION: True})
        await conn.execute(text("SELECT 1"))

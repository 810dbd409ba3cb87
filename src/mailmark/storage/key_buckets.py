"""API keys' token buckets in PostgreSQL: every node and HTTP worker takes from the same bucket.

One statement per request refills the key's bucket and takes a token from it (INSERT … ON
CONFLICT DO UPDATE … RETURNING, its arithmetic built from `BucketRule`). PostgreSQL locks the
key's row for that one statement, so requests from any number of processes are counted one after
another and never admit more than the bucket holds. The time is the node's clock, passed in: a
node whose clock is s seconds ahead of the others adds at most s × rate tokens, once (the bucket
keeps the latest moment it saw).

It runs before every /v1 request, in the auth guard, before the handler has a connection of its
own. So the statement runs in autocommit on a few asyncpg connections kept here: one round trip,
no BEGIN/COMMIT and no pool pre-ping (SQLAlchemy's pool adds both), no fsync (the table is
UNLOGGED), and a prepared statement. `bench/api.py --limiter` measures what it adds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from mailmark.core.apikeys import BucketRule
from mailmark.core.errors import NotFound, StorageUnavailable
from mailmark.storage.db import PG_UNAVAILABLE
from mailmark.storage.dialect import ASYNCPG_CONNECTION_LOST, DriverStatement
from mailmark.storage.node_bus import asyncpg_dsn
from mailmark.storage.tables import Id, api_key_buckets, api_keys

# Connections this process keeps for the buckets; a statement holds one for about 50 µs, so a
# few serve thousands of requests a second. Requests beyond them wait for one.
CONNECTIONS = 4
CONNECT_TIMEOUT_SECONDS = 10.0
STATEMENT_TIMEOUT_SECONDS = 10.0


def take_statement(rule: BucketRule) -> sa.Insert:
    """Refill the key's bucket and take a token when it holds one; RETURNING the tokens left and
    whether the request was admitted. A key's first request finds a full bucket.

    Only a key that exists and is not revoked gets a row: nodes trust a verified key from their
    cache for a few seconds (`CACHE_SECONDS`) and hear of revocations through the node bus,
    which may still be on its way when a client turns from the node that revoked a key to
    another. This statement runs on every request and reads the key's row after the revocation
    committed, so a revoked key is refused on every node at once, for no extra round trip."""
    bucket = api_key_buckets.c
    key = api_keys.c
    now: sa.ColumnElement[float] = sa.bindparam("now", type_=sa.Float())
    held: sa.ColumnElement[float] = bucket.tokens
    tokens, moment = rule.refill(held, bucket.refilled_at, now, sa.func.least, sa.func.greatest)
    admitted = tokens >= 1
    live_key = sa.select(
        key.id, sa.literal(float(rule.burst - 1), sa.Float()), now, sa.true()
    ).where(key.id == sa.bindparam("key_id", type_=Id), key.revoked_at.is_(None))
    return (
        postgresql.insert(api_key_buckets)
        .from_select(["key_id", "tokens", "refilled_at", "admitted"], live_key)
        .on_conflict_do_update(
            index_elements=[bucket.key_id],
            set_={
                "tokens": sa.case((admitted, tokens - 1), else_=tokens),
                "refilled_at": moment,
                "admitted": admitted,
            },
        )
        .returning(bucket.tokens, bucket.admitted)
    )


class PgKeyBuckets:
    """`KeyBuckets` in the database: one bucket per key for every process sharing it."""

    def __init__(self, engine: AsyncEngine, rule: BucketRule) -> None:
        self._rule = rule
        self._dsn = asyncpg_dsn(engine.url)
        self._statement = DriverStatement.compiled(take_statement(rule), engine.dialect)
        self._idle: list[asyncpg.Connection] = []
        self._slots = asyncio.Semaphore(CONNECTIONS)
        self._closed = False

    async def take(self, key_id: int, now: float) -> float:
        arguments = self._statement.arguments({"key_id": key_id, "now": now})
        async with self._slots:
            reusing = bool(self._idle)
            try:
                try:
                    tokens, admitted = await self._run(arguments, reuse=True)
                except ASYNCPG_CONNECTION_LOST:
                    if not reusing:
                        raise
                    # A kept connection the server has closed since (a restart, an idle
                    # timeout): once more, on a new connection.
                    tokens, admitted = await self._run(arguments, reuse=False)
            except (*ASYNCPG_CONNECTION_LOST, TimeoutError) as error:
                raise StorageUnavailable(
                    "The database is unreachable; try again shortly."
                ) from error
            except asyncpg.PostgresError as error:
                if getattr(error, "sqlstate", None) in PG_UNAVAILABLE:
                    raise StorageUnavailable(
                        "The database is busy or read-only; try again shortly."
                    ) from error
                raise
        return 0.0 if admitted else self._rule.wait(tokens)

    async def _run(self, arguments: list[Any], *, reuse: bool) -> tuple[float, bool]:
        if self._closed:
            raise StorageUnavailable("The server is shutting down.")
        if reuse and self._idle:
            connection = self._idle.pop()
        else:
            connection = await asyncpg.connect(
                self._dsn,
                timeout=CONNECT_TIMEOUT_SECONDS,
                command_timeout=STATEMENT_TIMEOUT_SECONDS,
            )
        try:
            row = await connection.fetchrow(self._statement.sql, *arguments)
        except asyncpg.ForeignKeyViolationError:
            # Deleted between the statement's read of it and its insert.
            row = None
        except BaseException:
            # Cancelled or failed mid-statement: the connection's state is unknown.
            connection.terminate()
            raise
        self._keep(connection)
        if row is None:
            raise NotFound("No such API key, or it was revoked.")
        return float(row[0]), bool(row[1])

    def _keep(self, connection: asyncpg.Connection) -> None:
        if self._closed:
            connection.terminate()
        else:
            self._idle.append(connection)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

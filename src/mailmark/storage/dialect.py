"""What differs between SQLite and PostgreSQL, in one object chosen once per engine.

Repositories build portable SQL themselves and ask their `Dialect` for the rest: row and key
locks, batched inserts that return ids, conflict-ignoring inserts, JSON array elements, text
aggregation, and the full-text table (SQLite FTS5 with the trigram tokenizer | pg_trgm).
"""

from __future__ import annotations

import json
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, ClassVar, Self, cast

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

from mailmark.storage.tables import FULLTEXT_TABLE

# asyncpg errors after which a connection is of no further use: closed or refused (a restart, a
# failover, a full server), or "cannot switch to state …" (InternalClientError) when the server's
# end of it is read in the middle of a statement.
ASYNCPG_CONNECTION_LOST = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


@dataclass(frozen=True)
class DriverStatement:
    """A statement compiled once for running on the driver itself, which takes positional
    arguments: its SQL text, and per position the name of its parameter; `constants` holds the
    values SQLAlchemy bound while compiling (literals), the caller supplies the others."""

    sql: str
    names: tuple[str, ...]
    constants: dict[str, Any]

    @classmethod
    def compiled(cls, statement: sa.ClauseElement, dialect: sa.Dialect) -> DriverStatement:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        return cls(compiled.string, tuple(compiled.positiontup or ()), dict(compiled.params))

    def arguments(self, values: dict[str, Any]) -> list[Any]:
        return [values[n] if n in values else self.constants[n] for n in self.names]


@dataclass(frozen=True)
class DriverInsert:
    """An INSERT of given columns compiled once for the driver's own executemany: its SQL text,
    the row keys in parameter order, and each one's conversion from the Python value to the
    driver's (the column type's bind processor; None where the value goes as it is)."""

    sql: str
    names: tuple[str, ...]
    conversions: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def compiled(cls, table: sa.TableClause, keys: tuple[str, ...], dialect: sa.Dialect) -> Self:
        compiled = table.insert().compile(dialect=dialect, column_keys=list(keys))
        names = tuple(compiled.positiontup or ())
        # The conversion SQLAlchemy's own execution applies: the type adapted to the dialect,
        # with a TypeDecorator's step first (its public `bind_processor` skips the adaptation,
        # and would hand sqlite3 a datetime where UtcDateTime stores text).
        conversions = tuple(
            compiled.binds[name].type._cached_bind_processor(dialect) for name in names
        )
        return cls(compiled.string, names, conversions)

    def values(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        pairs = tuple(zip(self.names, self.conversions, strict=True))
        return [
            tuple(row[name] if convert is None else convert(row[name]) for name, convert in pairs)
            for row in rows
        ]


# A table and the keys of the rows inserted into it.
_InsertKey = tuple[sa.TableClause, tuple[str, ...]]


class Dialect(ABC):
    """The portable behaviour; each backend supplies or overrides what it does differently."""

    name: str
    # The full-text table (its columns: the key, header, body) and its key column.
    fulltext: sa.TableClause
    fulltext_key: sa.ColumnClause[Any]
    # `all_rows`' statements, compiled for this backend (each subclass has its own); None for
    # one left to SQLAlchemy.
    _compiled_reads: ClassVar[dict[sa.Select[Any], DriverStatement | None]]
    # Whether text search looks its text criteria up first and matches the folder against the
    # found ids (see `PostgresDialect.before_text_search`), or runs them as subqueries.
    prefetches_text_hits = False

    @abstractmethod
    def insert_or_ignore(self, table: sa.Table) -> sa.Insert:
        """An INSERT that skips rows conflicting with a unique constraint."""

    @abstractmethod
    async def insert_many(
        self, conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]
    ) -> list[int]:
        """Insert the rows; their ids, in the same order, with one statement for the batch."""

    async def insert_rows(
        self, conn: AsyncConnection, table: sa.TableClause, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert the rows, which all have the same keys, with one statement for the batch, in
        the caller's transaction."""
        if rows:
            await conn.execute(table.insert(), list(rows))

    def for_update(
        self,
        query: sa.Select[Any],
        *,
        of: sa.Table | None = None,
        skip_locked: bool = False,
        read: bool = False,
    ) -> sa.Select[Any]:
        """The query, locking the rows it reads until commit where the backend locks rows
        (`read`: a shared lock, which waits only for writers of the rows)."""
        return query

    async def lock_row(  # noqa: B027 - SQLite's one writer serialises already: nothing to do
        self, conn: AsyncConnection, table: sa.Table, row_id: int
    ) -> None:
        """Serialise, until commit, the transactions that lock this row."""

    def key_lock(self, key: int) -> sa.Executable | None:
        """A statement that serialises, until commit, the transactions that run it with this
        64-bit key; None where write transactions already exclude each other."""
        return None

    async def lock_key(self, conn: AsyncConnection, key: int) -> None:
        statement = self.key_lock(key)
        if statement is not None:
            await conn.execute(statement)

    @abstractmethod
    def group_text(self, column: sa.ColumnElement[str], separator: str) -> sa.ColumnElement[str]:
        """An aggregate joining a group's texts with `separator`, in no particular order."""

    @abstractmethod
    def json_array_values(self, column: sa.ColumnElement[Any]) -> sa.TableValuedAlias:
        """A table of a JSON array's elements as text, in a `value` column."""

    def among_bound_ids(self, column: sa.ColumnElement[int], name: str) -> sa.ColumnElement[bool]:
        """`column` is one of the integers bound as `name`; pass them through `bound_ids`."""
        return column.in_(sa.bindparam(name, expanding=True))

    def bound_ids(self, ids: Sequence[int]) -> Any:
        """The value to bind for `among_bound_ids`."""
        return list(ids)

    async def all_rows(
        self, conn: AsyncConnection, query: sa.Select[Any], params: dict[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """Every row of a read on a hot path, each indexable by column position.

        Run straight on the driver (`fetch_on_driver`) when the statement allows: compiled once
        (`query` must be built once: it keys a cache), no result processing, and outside any
        transaction when it is a read-only unit's first statement (the unit begins lazily), so
        no BEGIN and ROLLBACK go to the database around it. In an open transaction, inside it.
        Statements whose parameters or columns need a type's conversion, or with an expanding
        parameter, go through SQLAlchemy."""
        if query not in self._compiled_reads:
            self._compiled_reads[query] = _driver_read(query, conn.dialect)
        statement = self._compiled_reads[query]
        if statement is None:
            rows: Sequence[Sequence[Any]] = (await conn.execute(query, params)).all()
            return rows
        raw = (await conn.get_raw_connection()).driver_connection
        try:
            return await self.fetch_on_driver(raw, statement.sql, statement.arguments(params))
        except DBAPIError as error:
            if error.connection_invalidated:
                # What SQLAlchemy does with a statement of its own: the pool lets it go.
                await conn.invalidate(error)
            raise

    @abstractmethod
    async def fetch_on_driver(
        self, driver_connection: Any, sql: str, values: list[Any]
    ) -> Sequence[Sequence[Any]]:
        """Run `sql` on the driver's own connection; its errors raised as SQLAlchemy's would
        be, for `storage_fault`."""

    def stored_datetime(self, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[Any]:
        """A UTC datetime column read the cheapest way: a datetime or its stored text."""
        return column

    @abstractmethod
    def utc_day(self, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[date]:
        """The UTC calendar day of a datetime column."""

    @abstractmethod
    def utc_hour(self, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[str]:
        """The UTC hour of a datetime column as text, "YYYY-MM-DD HH" (to group by)."""

    @abstractmethod
    def utc_quarter_hour(self, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[str]:
        """The UTC quarter of an hour of a datetime column as text, "YYYY-MM-DD HH:MM" with MM
        00, 15, 30 or 45 (to group by where a time zone is a half or quarter hour off UTC)."""

    @abstractmethod
    def regexp_match_icase(
        self, column: sa.ColumnElement[str], pattern: str
    ) -> sa.ColumnElement[bool]:
        """A case-insensitive regular expression match."""

    def contains_lowered(self, column: sa.ColumnElement[str], text: str) -> sa.ColumnElement[bool]:
        """Whether the column holds `text` (lower-cased already) as a substring, ignoring case
        beyond ASCII too; LIKE's wildcards in `text` are themselves."""
        return sa.func.lower(column).contains(text, autoescape=True)

    def text_contains(self, header: bool, body: bool, value: str) -> sa.ColumnElement[bool]:
        """Whether the full-text row's header and/or body holds `value` as a substring,
        case-insensitively (RFC 3501 §6.4.4). The portable form is ILIKE (pg_trgm's GIN
        indexes answer it)."""
        either = [_ilike_substring(self.fulltext.c.header, value)] if header else []
        either += [_ilike_substring(self.fulltext.c.body, value)] if body else []
        return sa.or_(*either)

    async def add_fulltext(
        self, conn: AsyncConnection, rows: Sequence[tuple[int, str, str]]
    ) -> None:
        """Index (message id, header text, body text) in the caller's transaction."""
        if not rows:
            return
        key = self.fulltext_key.name
        await self.insert_rows(
            conn, self.fulltext, [{key: i, "header": h, "body": b} for i, h, b in rows]
        )

    async def set_fulltext_bodies(
        self, conn: AsyncConnection, rows: Sequence[tuple[int, str]]
    ) -> None:
        """Set the body text of (message id, body text) rows already indexed by header."""
        if not rows:
            return
        statement = (
            sa.update(self.fulltext)
            .where(self.fulltext_key == sa.bindparam("message"))
            .values(body=sa.bindparam("text"))
        )
        await conn.execute(statement, [{"message": i, "text": b} for i, b in rows])

    async def before_text_search(  # noqa: B027 - only PostgreSQL prepares anything
        self, conn: AsyncConnection
    ) -> None:
        """Prepare the transaction for a search that prefetches its text hits."""

    def any_of(self, column: sa.ColumnElement[int], ids: Sequence[int]) -> sa.ColumnElement[bool]:
        """`column` is one of `ids` (a long list, found by an earlier query)."""
        return column.in_(ids)


def _ilike_substring(column: sa.ColumnElement[str], value: str) -> sa.ColumnElement[bool]:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    test: sa.ColumnElement[bool] = column.ilike(f"%{escaped}%", escape="\\")
    return test


class SqliteDialect(Dialect):
    """The embedded store. Its write transactions begin IMMEDIATE (storage/db.py) and so already
    exclude each other: no row or key lock is needed, and none is taken."""

    name = "sqlite"
    _compiled_reads: ClassVar[dict[sa.Select[Any], DriverStatement | None]] = {}
    # `insert_rows`' statements by table and row keys; None for one left to SQLAlchemy.
    _compiled_inserts: ClassVar[dict[_InsertKey, DriverInsert | None]] = {}
    fulltext = sa.table(FULLTEXT_TABLE, sa.column("rowid"), sa.column("header"), sa.column("body"))
    fulltext_key = fulltext.c.rowid

    def insert_or_ignore(self, table: sa.Table) -> sa.Insert:
        return sqlite.insert(table).on_conflict_do_nothing()

    async def insert_many(
        self, conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]
    ) -> list[int]:
        if not rows:
            return []
        # SQLite runs INSERT … RETURNING in parameter order one row at a time. Its write
        # transactions here are BEGIN IMMEDIATE (nobody else inserts meanwhile), so the next ids
        # are known: max(id) + 1 onwards, as SQLite itself would choose them.
        [(last,)] = await self.all_rows(conn, _highest_id(table), {})
        ids = list(range(int(last or 0) + 1, int(last or 0) + 1 + len(rows)))
        await self.insert_rows(
            conn, table, [{**row, "id": i} for row, i in zip(rows, ids, strict=True)]
        )
        return ids

    async def insert_rows(
        self, conn: AsyncConnection, table: sa.TableClause, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        # One hand-off to the aiosqlite connection's thread, where SQLAlchemy's executemany took
        # three (cursor, executemany, close): a batch of delivered mail inserts into five tables.
        if not rows:
            return
        keys = tuple(rows[0])
        if (table, keys) not in self._compiled_inserts:
            self._compiled_inserts[(table, keys)] = _driver_insert(table, keys, conn.dialect)
        statement = self._compiled_inserts[(table, keys)]
        if statement is None:
            await super().insert_rows(conn, table, rows)
            return
        raw: Any = (await conn.get_raw_connection()).driver_connection
        values = statement.values(rows)
        try:
            await raw.executemany(statement.sql, values)
        except sqlite3.Error as error:
            raise DBAPIError.instance(statement.sql, values, error, sqlite3.Error) from error

    def group_text(self, column: sa.ColumnElement[str], separator: str) -> sa.ColumnElement[str]:
        return sa.func.group_concat(column, separator)

    def json_array_values(self, column: sa.ColumnElement[Any]) -> sa.TableValuedAlias:
        return sa.func.json_each(column).table_valued("value")

    def among_bound_ids(self, column: sa.ColumnElement[int], name: str) -> sa.ColumnElement[bool]:
        # One JSON text instead of an expanding IN: the statement's text no longer depends on
        # how many ids there are, so it is compiled once (see `all_rows`). SQLite still looks
        # each id up in the index.
        values = self.json_array_values(sa.bindparam(name, type_=sa.Text))
        return column.in_(sa.select(values.c.value))

    def bound_ids(self, ids: Sequence[int]) -> Any:
        return json.dumps([int(i) for i in ids])

    async def fetch_on_driver(
        self, driver_connection: Any, sql: str, values: list[Any]
    ) -> Sequence[Sequence[Any]]:
        # One hand-off to the aiosqlite connection's thread, where SQLAlchemy's cursor took four;
        # a read-only unit's first read runs in autocommit, as its own snapshot.
        try:
            rows: Sequence[Sequence[Any]] = await driver_connection.execute_fetchall(sql, values)
        except sqlite3.Error as error:
            raise DBAPIError.instance(sql, values, error, sqlite3.Error) from error
        return rows

    def stored_datetime(self, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[Any]:
        # The text UtcDateTime stored ("YYYY-MM-DD HH:MM:SS.ffffff", UTC): cheaper to parse
        # than the driver's conversion.
        return sa.type_coerce(column, sa.String)

    def utc_day(self, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[date]:
        return sa.func.date(column, type_=sa.Date())

    def utc_hour(self, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[str]:
        return sa.func.strftime("%Y-%m-%d %H", column, type_=sa.String())

    def utc_quarter_hour(self, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[str]:
        minute = sa.cast(sa.func.strftime("%M", column), sa.Integer)
        return sa.func.strftime("%Y-%m-%d %H:", column, type_=sa.String()) + sa.func.printf(
            "%02d", minute // 15 * 15, type_=sa.String()
        )

    def regexp_match_icase(
        self, column: sa.ColumnElement[str], pattern: str
    ) -> sa.ColumnElement[bool]:
        # SQLAlchemy passes no flags to SQLite's Python-backed REGEXP: they go in the pattern.
        return column.regexp_match("(?i)" + pattern)

    def contains_lowered(self, column: sa.ColumnElement[str], text: str) -> sa.ColumnElement[bool]:
        # SQLite's lower() and LIKE fold ASCII letters only ("É" stays "É"); its Python-backed
        # REGEXP folds every letter, as PostgreSQL's lower() does.
        return column.regexp_match("(?i)" + re.escape(text))

    def text_contains(self, header: bool, body: bool, value: str) -> sa.ColumnElement[bool]:
        if len(value) < 3:
            # Shorter than a trigram: the index cannot answer, the rows are scanned.
            return super().text_contains(header, body, value)
        # FTS5 trigram: a quoted phrase matches any substring, case-insensitively.
        columns = "{header body}" if header and body else ("header" if header else "body")
        phrase = '"' + value.replace('"', '""') + '"'
        return sa.literal_column(FULLTEXT_TABLE).op("MATCH")(f"{columns} : {phrase}")


class PostgresDialect(Dialect):
    """The scale-out store: several nodes share it, so rows and keys are locked explicitly."""

    name = "postgresql"
    _compiled_reads: ClassVar[dict[sa.Select[Any], DriverStatement | None]] = {}
    fulltext = sa.table(
        FULLTEXT_TABLE, sa.column("message_id"), sa.column("header"), sa.column("body")
    )
    fulltext_key = fulltext.c.message_id
    prefetches_text_hits = True

    def insert_or_ignore(self, table: sa.Table) -> sa.Insert:
        return postgresql.insert(table).on_conflict_do_nothing()

    async def insert_many(
        self, conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]
    ) -> list[int]:
        if not rows:
            return []
        # insertmanyvalues: one statement per batch, ids returned in parameter order.
        query = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return [int(i) for i in (await conn.execute(query, rows)).scalars()]

    def for_update(
        self,
        query: sa.Select[Any],
        *,
        of: sa.Table | None = None,
        skip_locked: bool = False,
        read: bool = False,
    ) -> sa.Select[Any]:
        # skip_locked: rows another node is leasing right now are skipped, not waited for.
        return query.with_for_update(of=of, skip_locked=skip_locked, read=read)

    async def lock_row(self, conn: AsyncConnection, table: sa.Table, row_id: int) -> None:
        await conn.execute(sa.select(table.c.id).where(table.c.id == row_id).with_for_update())

    def key_lock(self, key: int) -> sa.Executable | None:
        return sa.text("SELECT pg_advisory_xact_lock(:id)").bindparams(id=key)

    def group_text(self, column: sa.ColumnElement[str], separator: str) -> sa.ColumnElement[str]:
        return sa.func.string_agg(column, separator)

    def json_array_values(self, column: sa.ColumnElement[Any]) -> sa.TableValuedAlias:
        return sa.func.json_array_elements_text(column).table_valued("value").render_derived()

    def among_bound_ids(self, column: sa.ColumnElement[int], name: str) -> sa.ColumnElement[bool]:
        # `= ANY($n)` with the ids as one array, whose type PostgreSQL takes from the column: the
        # statement's text does not depend on how many there are (see `all_rows`).
        return column == sa.any_(sa.bindparam(name, type_=sa.types.NullType()))

    def stored_datetime(self, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[Any]:
        # asyncpg reads timestamptz as an aware UTC datetime already.
        return sa.type_coerce(column, sa.DateTime(timezone=True))

    async def fetch_on_driver(
        self, driver_connection: Any, sql: str, values: list[Any]
    ) -> Sequence[Sequence[Any]]:
        # Outside a transaction two round trips fewer (BEGIN, ROLLBACK); under READ COMMITTED
        # each statement has its own snapshot anyway.
        try:
            rows: Sequence[Sequence[Any]] = await driver_connection.fetch(sql, *values)
        except (asyncpg.PostgresError, *ASYNCPG_CONNECTION_LOST) as error:
            lost = isinstance(error, ASYNCPG_CONNECTION_LOST) or driver_connection.is_closed()
            raise DBAPIError.instance(
                sql, values, error, Exception, connection_invalidated=lost
            ) from error
        return rows

    def utc_day(self, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[date]:
        return sa.cast(sa.func.timezone("UTC", column), sa.Date())

    def utc_hour(self, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[str]:
        return sa.func.to_char(
            sa.func.timezone("UTC", column), "YYYY-MM-DD HH24", type_=sa.String()
        )

    def utc_quarter_hour(self, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[str]:
        utc = sa.func.timezone("UTC", column)
        quarter = sa.cast(sa.func.floor(sa.extract("minute", utc) / 15) * 15, sa.Integer)
        return sa.func.to_char(utc, "YYYY-MM-DD HH24:", type_=sa.String()) + sa.func.lpad(
            sa.cast(quarter, sa.String), 2, "0", type_=sa.String()
        )

    def regexp_match_icase(
        self, column: sa.ColumnElement[str], pattern: str
    ) -> sa.ColumnElement[bool]:
        return column.regexp_match(pattern, flags="i")

    async def before_text_search(self, conn: AsyncConnection) -> None:
        # The planner underrates ILIKE over long (TOASTed) text and would rather scan the table
        # than the trigram index; the index is the right answer here. Each text criterion is
        # asked once, then matched against the folder as a hashed array (`any_of`).
        await conn.execute(sa.text("SET LOCAL enable_seqscan = off"))

    def any_of(self, column: sa.ColumnElement[int], ids: Sequence[int]) -> sa.ColumnElement[bool]:
        return column == sa.any_(sa.bindparam(None, ids, type_=postgresql.ARRAY(sa.BigInteger())))


SQLITE = SqliteDialect()
POSTGRESQL = PostgresDialect()


def dialect_named(name: str) -> Dialect:
    """The dialect of an engine whose SQLAlchemy dialect is called `name`."""
    for dialect in (SQLITE, POSTGRESQL):
        if dialect.name == name:
            return dialect
    raise ValueError(f"unsupported database {name!r}: use SQLite or PostgreSQL")


def _driver_insert(
    table: sa.TableClause, keys: tuple[str, ...], dialect: sa.Dialect
) -> DriverInsert | None:
    """The INSERT of these keys for the driver, or None when the table fills a column the rows
    leave out from a Python-side default, which only SQLAlchemy's own execution applies."""
    for column in table.columns:
        if column.key not in keys and (column.default is not None or column.onupdate is not None):
            return None
    return DriverInsert.compiled(table, keys, dialect)


@cache
def _highest_id(table: sa.Table) -> sa.Select[Any]:
    """The table's highest id, as one statement per table (`all_rows` caches it by identity)."""
    return sa.select(sa.func.max(table.c.id))


def _driver_read(query: sa.Select[Any], dialect: sa.Dialect) -> DriverStatement | None:
    """`query` for the driver, or None when a parameter is expanded at execution or a
    parameter or column type converts values (the driver's values would then differ)."""
    compiled = query.compile(dialect=dialect)
    binds = [compiled.binds[name] for name in compiled.positiontup or ()]
    if any(bind.expanding or bind.type.bind_processor(dialect) for bind in binds):
        return None
    if any(column.type.result_processor(dialect, None) for column in query.selected_columns):
        return None
    return DriverStatement.compiled(query, dialect)

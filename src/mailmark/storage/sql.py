"""SQL helpers the repositories share: batches under SQLite's parameter limit, dataclass rows,
leases on queue-like tables, and the queries that find messages and blobs nothing references."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailmark.core.model import Folder
from mailmark.storage.dialect import Dialect
from mailmark.storage.tables import (
    folders,
    messages,
    outbound_messages,
    placements,
    retained_placements,
    subscriptions,
    webmail_uploads,
)

T = TypeVar("T")
# Stay well under SQLite's limit on bound parameters per statement.
CHUNK = 500


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def folder_subscribed() -> sa.ColumnElement[bool]:
    """Whether a folder's name is on its mailbox's subscription list, as a `Folder.subscribed`
    column of a query over `folders`."""
    return (
        sa.exists()
        .where(
            subscriptions.c.mailbox_id == folders.c.mailbox_id,
            subscriptions.c.name == folders.c.name,
        )
        .label("subscribed")
    )


def folder_query() -> sa.Select[Any]:
    """The rows a `Folder` is made of."""
    return sa.select(*folders.c, folder_subscribed())


def _folder_read(*where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """A `Folder`'s row for `Dialect.all_rows`: the subscribed flag as the driver gives it (an
    integer on SQLite), so no column needs SQLAlchemy's conversion; `folder_from_row` makes it."""
    return sa.select(*folders.c, sa.type_coerce(folder_subscribed(), sa.Integer)).where(*where)


_FOLDER_FIELDS = (*folders.c.keys(), "subscribed")
# A folder by id or by name: read on every SELECT, STATUS and poll for other nodes' changes.
FOLDER_BY_ID = _folder_read(folders.c.id == sa.bindparam("folder_id"))
FOLDER_BY_NAME = _folder_read(
    folders.c.mailbox_id == sa.bindparam("mailbox_id"), folders.c.name == sa.bindparam("name")
)


def folder_from_row(row: Sequence[Any]) -> Folder:
    values = dict(zip(_FOLDER_FIELDS, row, strict=True))
    values["subscribed"] = bool(values["subscribed"])
    return Folder(**values)


async def add_subscriptions(conn: AsyncConnection, mailbox_id: int, names: Sequence[str]) -> None:
    """Put names on the mailbox's subscription list; those already there stay as they are."""
    wanted = sorted(set(names))
    if not wanted:
        return
    present = set(
        (
            await conn.execute(
                sa.select(subscriptions.c.name).where(
                    subscriptions.c.mailbox_id == mailbox_id, subscriptions.c.name.in_(wanted)
                )
            )
        )
        .scalars()
        .all()
    )
    missing = [{"mailbox_id": mailbox_id, "name": name} for name in wanted if name not in present]
    if missing:
        await conn.execute(subscriptions.insert(), missing)


def shallow_fields(record: Any) -> dict[str, Any]:
    """A dataclass's fields, shallow: `dataclasses.asdict` deep-copies every value, which costs
    more than the insert on the delivery path."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


def row_values(record: Any) -> dict[str, Any]:
    """A dataclass record's column values for an insert: every field but its (unset) id."""
    values = shallow_fields(record)
    values.pop("id")
    return values


class Repository:
    """A repository over the unit of work's connection, speaking its database's dialect."""

    def __init__(self, conn: AsyncConnection, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def _insert(self, table: sa.Table, values: dict[str, Any]) -> int:
        result = await self._conn.execute(table.insert().values(**values).returning(table.c.id))
        return int(result.scalar_one())


async def take_leases(
    conn: AsyncConnection,
    table: sa.Table,
    ids: Sequence[int],
    owner: str,
    lease_until: datetime,
    now: datetime,
) -> None:
    """Lease the rows to `owner` until `lease_until`, counting one more attempt on each."""
    for chunk in chunks(ids):
        await conn.execute(
            table.update()
            .where(table.c.id.in_(chunk))
            .values(
                lease_owner=owner,
                lease_until=lease_until,
                attempts=table.c.attempts + 1,
                updated_at=now,
            )
        )


async def held_leases(
    conn: AsyncConnection,
    dialect: Dialect,
    table: sa.Table,
    owners: Mapping[int, str],
    still: sa.ColumnElement[bool],
) -> set[int]:
    """The ids among `owners` whose row is still leased by that owner and matches `still`; the
    rows stay locked until commit (PostgreSQL), so the outcome is recorded once."""
    held: set[int] = set()
    for chunk in chunks(list(owners)):
        query = sa.select(table.c.id, table.c.lease_owner).where(table.c.id.in_(chunk), still)
        rows = await conn.execute(dialect.for_update(query, of=table))
        held.update(row.id for row in rows if row.lease_owner == owners[row.id])
    return held


# Every table whose rows point at a blob: a blob none of them names may be removed.
BLOB_REFERENCES = (messages, outbound_messages, webmail_uploads)


async def remove_orphan_messages(conn: AsyncConnection, message_ids: Sequence[int]) -> list[str]:
    """Delete the messages among these that no placement holds; the blob keys left unused."""
    keys: set[str] = set()
    still_placed = message_held()
    for chunk in chunks(sorted(set(message_ids))):
        orphans = (
            await conn.execute(
                sa.select(messages.c.id, messages.c.blob_key).where(
                    messages.c.id.in_(chunk), ~still_placed
                )
            )
        ).all()
        if not orphans:
            continue
        await conn.execute(messages.delete().where(messages.c.id.in_([r.id for r in orphans])))
        keys.update(row.blob_key for row in orphans)
    return await unreferenced_blobs(conn, keys)


def message_held() -> sa.ColumnElement[bool]:
    """A message row still in use: placed in a folder, or kept for an IMAP session that may
    still see it expunged (`retained_placements`)."""
    return sa.or_(
        sa.exists().where(placements.c.message_id == messages.c.id),
        sa.exists().where(retained_placements.c.message_id == messages.c.id),
    )


async def unreferenced_blobs(conn: AsyncConnection, keys: set[str]) -> list[str]:
    """The blob keys among these that no message, outbound message or webmail upload
    references, sorted."""
    referenced: set[str] = set()
    for chunk in chunks(sorted(keys)):
        # A Sent copy shares its blob with the outbound message the queue still delivers.
        for table in BLOB_REFERENCES:
            query = sa.select(table.c.blob_key).where(table.c.blob_key.in_(chunk)).distinct()
            referenced.update((await conn.execute(query)).scalars())
    return sorted(keys - referenced)


async def referenced_blob_keys(conn: AsyncConnection) -> set[str]:
    """Every blob key the database references (a backup copies exactly these)."""
    keys: set[str] = set()
    for table in BLOB_REFERENCES:
        keys.update((await conn.execute(sa.select(table.c.blob_key).distinct())).scalars())
    return keys


async def blob_referenced(conn: AsyncConnection, blob_key: str) -> bool:
    """Whether a message, an outbound message or a webmail upload still references the blob."""
    for table in BLOB_REFERENCES:
        query = sa.select(table.c.id).where(table.c.blob_key == blob_key).limit(1)
        if (await conn.execute(query)).first() is not None:
            return True
    return False

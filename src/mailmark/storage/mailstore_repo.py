"""SQL of the IMAP store: placements by (folder, uid), flags, MODSEQs, tombstones, full-text search.

Flags are a JSON array per placement, with system flags in their canonical spelling (the core
writes them so). Where SQL must look inside it, it uses the backend's JSON functions; reading a
folder for SELECT takes the JSON text as it is and decodes each distinct value once.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from mailmark.core import search as crit
from mailmark.core.model import (
    FetchRow,
    Folder,
    FolderCounts,
    FolderUids,
    MessageIndex,
    PlacementState,
)
from mailmark.storage.tables import (
    FULLTEXT_TABLE,
    expunged,
    folders,
    messages,
    outbound_messages,
    placements,
)

# Stay well under SQLite's limit on bound parameters per statement.
CHUNK = 500
SEEN = "\\Seen"
_SYSTEM = frozenset({"\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft", "\\recent"})

# fetch_rows' statements by (PostgreSQL, structure, content, contiguous).
_FETCH_QUERIES: dict[tuple[bool, bool, bool, bool], sa.Select[Any]] = {}

_sqlite_text = sa.table("message_text", sa.column("rowid"), sa.column("header"), sa.column("body"))
_pg_text = sa.table("message_text", sa.column("message_id"), sa.column("header"), sa.column("body"))
assert _sqlite_text.name == FULLTEXT_TABLE


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)]


def _flags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(str(flag) for flag in value) if isinstance(value, list) else ()


def _internal_date(value: Any) -> datetime:
    """A placement's internal date as `SqlMailStore._fetch_query` reads it: on SQLite the UTC text that
    UtcDateTime stored ("YYYY-MM-DD HH:MM:SS.ffffff"), on PostgreSQL an aware datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")
    moment: datetime = value
    return moment


def _state(row: Any) -> PlacementState:
    return PlacementState(
        int(row.uid), int(row.message_id), _flags(row.flags), int(row.modseq), row.thread_id,
        row.internal_date,
    )


async def add_fulltext(conn: AsyncConnection, rows: Sequence[tuple[int, str, str]]) -> None:
    """Index (message id, header text, body text) in the caller's transaction."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        values = [{"message_id": i, "header": h, "body": b} for i, h, b in rows]
        await conn.execute(sa.insert(_pg_text), values)
    else:
        values = [{"rowid": i, "header": h, "body": b} for i, h, b in rows]
        await conn.execute(sa.insert(_sqlite_text), values)


class SqlMailStore:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._pg = conn.dialect.name == "postgresql"

    # Folders

    async def folder(self, folder_id: int) -> Folder | None:
        row = (await self._conn.execute(folders.select().where(folders.c.id == folder_id))).first()
        return Folder(**row._mapping) if row else None

    async def lock_folder(self, folder_id: int) -> Folder | None:
        query = folders.select().where(folders.c.id == folder_id)
        if self._pg:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return Folder(**row._mapping) if row else None

    async def rename_folders(self, mailbox_id: int, renames: Sequence[tuple[int, str]]) -> None:
        # Two steps, so that swapping names never trips the unique (mailbox, name) constraint.
        for folder_id, _ in renames:
            await self._conn.execute(
                folders.update()
                .where(folders.c.id == folder_id, folders.c.mailbox_id == mailbox_id)
                .values(name="\x01renaming " + str(folder_id))
            )
        for folder_id, name in renames:
            await self._conn.execute(
                folders.update().where(folders.c.id == folder_id).values(name=name)
            )

    async def set_subscribed(self, folder_id: int, subscribed: bool) -> None:
        await self._conn.execute(
            folders.update().where(folders.c.id == folder_id).values(subscribed=subscribed)
        )

    async def delete_folder(self, folder_id: int) -> list[str]:
        message_ids = (
            await self._conn.execute(
                sa.select(placements.c.message_id).where(placements.c.folder_id == folder_id)
            )
        ).scalars().all()
        await self._conn.execute(placements.delete().where(placements.c.folder_id == folder_id))
        await self._conn.execute(expunged.delete().where(expunged.c.folder_id == folder_id))
        await self._conn.execute(folders.delete().where(folders.c.id == folder_id))
        return await self._remove_orphans(list(message_ids))

    async def _remove_orphans(self, message_ids: Sequence[int]) -> list[str]:
        """Delete the messages among these that no placement holds; the blob keys left unused."""
        keys: set[str] = set()
        still_placed = sa.exists().where(placements.c.message_id == messages.c.id)
        for chunk in _chunks(sorted(set(message_ids))):
            orphans = (
                await self._conn.execute(
                    sa.select(messages.c.id, messages.c.blob_key).where(
                        messages.c.id.in_(chunk), ~still_placed
                    )
                )
            ).all()
            if not orphans:
                continue
            await self._conn.execute(messages.delete().where(messages.c.id.in_([r.id for r in orphans])))
            keys.update(row.blob_key for row in orphans)
        referenced: set[str] = set()
        for chunk in _chunks(sorted(keys)):
            # A Sent copy shares its blob with the outbound message the queue still delivers.
            for table in (messages, outbound_messages):
                query = sa.select(table.c.blob_key).where(table.c.blob_key.in_(chunk)).distinct()
                referenced.update((await self._conn.execute(query)).scalars())
        return sorted(keys - referenced)

    async def counts(self, folder_id: int) -> FolderCounts:
        query = (
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(sa.case((~self._has_flag(SEEN), 1), else_=0)), 0),
                sa.func.coalesce(sa.func.sum(messages.c.size), 0),
            )
            .select_from(placements.join(messages))
            .where(placements.c.folder_id == folder_id)
        )
        total, unseen, size = (await self._conn.execute(query)).one()
        return FolderCounts(int(total), int(unseen), int(size))

    async def folder_uids(self, folder_id: int) -> FolderUids:
        # One row per distinct flag set with its UIDs as comma-separated text, rather than 10,000
        # rows through the driver and SQLAlchemy; the UIDs are sorted here, so the aggregate's
        # order does not matter.
        flag_text = sa.cast(placements.c.flags, sa.Text)
        uid_text = sa.cast(placements.c.uid, sa.Text)
        joined = sa.func.string_agg(uid_text, ",") if self._pg else sa.func.group_concat(uid_text, ",")
        groups = await self._conn.execute(
            sa.select(flag_text, joined).where(placements.c.folder_id == folder_id).group_by(flag_text)
        )
        uids: list[int] = []
        unseen = 0
        lowest_unseen: int | None = None
        keywords: dict[str, str] = {}
        for value, text in groups:
            flags = _flags(value)
            group = [int(uid) for uid in text.split(",")]
            uids += group
            if SEEN not in flags:
                unseen += len(group)
                lowest = min(group)
                lowest_unseen = lowest if lowest_unseen is None else min(lowest_unseen, lowest)
            for keyword in flags:
                if keyword.lower() not in _SYSTEM:
                    keywords.setdefault(keyword.lower(), keyword)
        uids.sort()
        first_unseen = None if lowest_unseen is None else bisect.bisect_left(uids, lowest_unseen)
        return FolderUids(uids, first_unseen, unseen, tuple(sorted(keywords.values())))

    async def changed_since(self, folder_id: int, modseq: int) -> list[PlacementState]:
        query = (
            placements.select()
            .where(placements.c.folder_id == folder_id, placements.c.modseq > modseq)
            .order_by(placements.c.uid)
        )
        return [_state(row) for row in await self._conn.execute(query)]

    async def expunged_since(self, folder_id: int, modseq: int) -> list[int]:
        query = (
            sa.select(expunged.c.uid)
            .where(expunged.c.folder_id == folder_id, expunged.c.modseq > modseq)
            .order_by(expunged.c.uid)
        )
        return [int(uid) for uid in (await self._conn.execute(query)).scalars()]

    # Messages

    async def fetch_rows(
        self, folder_id: int, uids: Sequence[int], structure: bool, content: bool
    ) -> list[FetchRow]:
        wanted = sorted(set(uids))
        if not wanted:
            return []
        # Mostly contiguous (1:*, a range): one range scan, the few gaps dropped below.
        contiguous = wanted[-1] - wanted[0] < 2 * len(wanted)
        query = self._fetch_query(structure, content, contiguous)
        params: dict[str, Any] = {"folder_id": folder_id}
        if contiguous:
            params.update(low=wanted[0], high=wanted[-1])
        else:
            params["uids"] = wanted
        keep = set(wanted)
        decoded: dict[str, tuple[str, ...]] = {}
        out = []
        for row in (await self._conn.execute(query, params)).tuples():
            uid, message_id, flag_text, modseq, moment, size, blob_key, prefix = row[:8]
            if uid not in keep:
                continue
            flags = decoded.get(flag_text)
            if flags is None:
                flags = decoded[flag_text] = _flags(flag_text)
            envelope, bodystructure, body = row[8:] if structure else (None, None, None)
            out.append(
                FetchRow(
                    uid, message_id, flags, modseq, _internal_date(moment), size, blob_key,
                    prefix or b"", envelope, bodystructure, body,
                )
            )
        return out

    def _fetch_query(self, structure: bool, content: bool, contiguous: bool) -> sa.Select[Any]:
        """fetch_rows' statement, built once per shape with bound parameters: building and
        keying a fresh statement per chunk cost more than running it.

        Flags come as JSON text (decoded once per distinct value by the caller); on SQLite the
        internal date comes as the stored text, parsed by _internal_date."""
        key = (self._pg, structure, content, contiguous)
        query = _FETCH_QUERIES.get(key)
        if query is not None:
            return query
        internal_date: Any = (
            placements.c.internal_date if self._pg
            else sa.type_coerce(placements.c.internal_date, sa.String)
        )
        columns: list[Any] = [
            placements.c.uid, placements.c.message_id, sa.cast(placements.c.flags, sa.Text),
            placements.c.modseq, internal_date, messages.c.size, messages.c.blob_key,
            messages.c.trace_prefix if content else sa.null(),
        ]
        if structure:
            columns += [messages.c.envelope, messages.c.bodystructure, messages.c.body]
        uid = placements.c.uid
        chosen = (
            uid.between(sa.bindparam("low"), sa.bindparam("high")) if contiguous
            else uid.in_(sa.bindparam("uids", expanding=True))
        )
        query = _FETCH_QUERIES[key] = (
            sa.select(*columns)
            .select_from(placements.join(messages))
            .where(placements.c.folder_id == sa.bindparam("folder_id"), chosen)
            .order_by(uid)
        )
        return query

    async def unindexed(self, folder_id: int, limit: int) -> list[int]:
        query = (
            sa.select(placements.c.uid)
            .select_from(placements.join(messages))
            .where(placements.c.folder_id == folder_id, messages.c.envelope.is_(None))
            .order_by(placements.c.uid)
            .limit(limit)
        )
        return [int(uid) for uid in (await self._conn.execute(query)).scalars()]

    async def set_index(self, message_id: int, index: MessageIndex) -> None:
        await self._conn.execute(
            messages.update()
            .where(messages.c.id == message_id)
            .values(
                envelope=index.envelope,
                bodystructure=index.bodystructure,
                body=index.body,
                sent_day=index.sent_day,
            )
        )
        exists = (
            sa.select(_pg_text.c.message_id).where(_pg_text.c.message_id == message_id)
            if self._pg
            else sa.select(_sqlite_text.c.rowid).where(_sqlite_text.c.rowid == message_id)
        )
        if (await self._conn.execute(exists)).first() is None:
            await add_fulltext(self._conn, [(message_id, index.header_text, index.body_text)])

    async def placements(self, folder_id: int, uids: Sequence[int] | None) -> list[PlacementState]:
        base = placements.select().where(placements.c.folder_id == folder_id).order_by(placements.c.uid)
        if uids is None:
            return [_state(row) for row in await self._conn.execute(base)]
        out: list[PlacementState] = []
        for chunk in _chunks(sorted(set(uids))):
            query = base.where(placements.c.uid.in_(list(chunk)))
            out.extend(_state(row) for row in await self._conn.execute(query))
        return out

    async def allocate_modseqs(self, folder_id: int, count: int) -> int:
        query = (
            folders.update()
            .where(folders.c.id == folder_id)
            .values(highest_modseq=folders.c.highest_modseq + count)
            .returning(folders.c.highest_modseq)
        )
        highest = int((await self._conn.execute(query)).scalar_one())
        return highest - count + 1

    async def set_flags(self, folder_id: int, changes: Sequence[tuple[int, tuple[str, ...], int]]) -> None:
        if not changes:
            return
        statement = (
            placements.update()
            .where(placements.c.folder_id == folder_id, placements.c.uid == sa.bindparam("b_uid"))
            .values(flags=sa.bindparam("b_flags", type_=sa.JSON()), modseq=sa.bindparam("b_modseq"))
        )
        await self._conn.execute(
            statement,
            [{"b_uid": uid, "b_flags": list(flags), "b_modseq": modseq} for uid, flags, modseq in changes],
        )

    async def remove_placements(self, folder_id: int, uids: Sequence[int], modseq: int) -> list[str]:
        message_ids: list[int] = []
        for chunk in _chunks(sorted(set(uids))):
            where = sa.and_(placements.c.folder_id == folder_id, placements.c.uid.in_(list(chunk)))
            found = (
                await self._conn.execute(sa.select(placements.c.uid, placements.c.message_id).where(where))
            ).all()
            if not found:
                continue
            message_ids.extend(row.message_id for row in found)
            await self._conn.execute(placements.delete().where(where))
            await self._conn.execute(
                expunged.insert(),
                [{"folder_id": folder_id, "uid": row.uid, "modseq": modseq} for row in found],
            )
        return await self._remove_orphans(message_ids)

    async def move_placements(self, source_id: int, dest_id: int, modseq: int) -> None:
        uids = (
            await self._conn.execute(sa.select(placements.c.uid).where(placements.c.folder_id == source_id))
        ).scalars().all()
        await self._conn.execute(
            placements.update().where(placements.c.folder_id == source_id).values(folder_id=dest_id)
        )
        for chunk in _chunks(list(uids)):
            await self._conn.execute(
                expunged.insert(), [{"folder_id": source_id, "uid": uid, "modseq": modseq} for uid in chunk]
            )

    # Search

    async def search(
        self, folder_id: int, criteria: crit.Criteria, uids: Sequence[int] | None
    ) -> list[int]:
        hits: dict[crit.Criteria, list[int]] = {}
        if self._pg:
            leaves = _text_leaves(criteria)
            if leaves:
                # The planner underrates ILIKE over long (TOASTed) text and would rather scan
                # the table than the trigram index; the index is the right answer here. Each
                # leaf is asked once, then matched against the folder as a hashed array.
                await self._conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
            for leaf in leaves:
                query = self._text_ids(leaf)
                hits[leaf] = [] if query is None else list((await self._conn.execute(query)).scalars())
        query = (
            sa.select(placements.c.uid)
            .select_from(placements.join(messages))
            .where(placements.c.folder_id == folder_id, self._compile(criteria, hits))
            .order_by(placements.c.uid)
        )
        found = [int(uid) for uid in (await self._conn.execute(query)).scalars()]
        if uids is None:
            return found
        universe = set(uids)
        return [uid for uid in found if uid in universe]

    def _has_flag(self, flag: str) -> sa.ColumnElement[bool]:
        """The placement's flags hold `flag`, compared case-insensitively (RFC 3501 §2.3.2)."""
        if self._pg:
            elements = sa.func.json_array_elements_text(placements.c.flags).table_valued("value")
            elements = elements.render_derived()
        else:
            elements = sa.func.json_each(placements.c.flags).table_valued("value")
        return (
            sa.exists()
            .select_from(elements)
            .where(sa.func.lower(elements.c.value) == flag.lower())
            .correlate(placements)
        )

    def _contains(self, column: Any, value: str) -> sa.ColumnElement[bool]:
        """Case-insensitive substring (RFC 3501 §6.4.4) of a column of the full-text table."""
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        test: sa.ColumnElement[bool] = column.ilike(f"%{escaped}%", escape="\\")
        return test

    def _text_ids(self, leaf: crit.Criteria) -> sa.Select[Any] | None:
        """The ids of messages whose indexed text matches a text criterion; None for "all"."""
        table = _pg_text if self._pg else _sqlite_text
        key = table.c.message_id if self._pg else table.c.rowid
        tests: list[sa.ColumnElement[bool]] = []
        if isinstance(leaf, crit.Text | crit.Body):
            value, header, body = leaf.value, isinstance(leaf, crit.Text), True
            if not value:
                return None
        else:
            name, value = _header_criterion(leaf)
            header, body = True, False
            # The field starts a line, and the value lies before that line's end.
            pattern = "(^|\n)" + _regex_escape(f"{name}: ") + "[^\n]*" + _regex_escape(value)
            # SQLAlchemy passes no flags to SQLite's Python-backed REGEXP: they go in the pattern.
            tests.append(
                table.c.header.regexp_match(pattern, flags="i")
                if self._pg
                else table.c.header.regexp_match("(?i)" + pattern)
            )
        if value and not self._pg and len(value) >= 3:
            # FTS5 trigram: a quoted phrase matches any substring, case-insensitively.
            columns = "{header body}" if header and body else ("header" if header else "body")
            phrase = '"' + value.replace('"', '""') + '"'
            tests.append(sa.literal_column(FULLTEXT_TABLE).op("MATCH")(f"{columns} : {phrase}"))
        elif value:
            # pg_trgm's GIN indexes answer ILIKE '%value%' (SQLite: short values, scanned).
            either = [self._contains(table.c.header, value)] if header else []
            either += [self._contains(table.c.body, value)] if body else []
            tests.append(sa.or_(*either))
        return sa.select(key).where(*tests)

    def _text_match(
        self, leaf: crit.Criteria, hits: dict[crit.Criteria, list[int]]
    ) -> sa.ColumnElement[bool]:
        if self._pg:
            if leaf not in hits:
                query = self._text_ids(leaf)
                return sa.true() if query is None else placements.c.message_id.in_(query)
            ids = sa.bindparam(None, hits[leaf], type_=postgresql.ARRAY(sa.BigInteger()))
            return placements.c.message_id == sa.any_(ids)
        query = self._text_ids(leaf)
        return sa.true() if query is None else placements.c.message_id.in_(query)

    def _sent_day(self) -> sa.ColumnElement[date]:
        """The Date header's day; without a readable Date header, the internal date's (UTC), so
        that NOT SENTON and SENTON always split a folder in two."""
        if self._pg:
            fallback: sa.ColumnElement[date] = sa.cast(
                sa.func.timezone("UTC", placements.c.internal_date), sa.Date()
            )
        else:
            fallback = sa.func.date(placements.c.internal_date, type_=sa.Date())
        return sa.func.coalesce(messages.c.sent_day, fallback, type_=sa.Date())

    def _day_bounds(self, day: date) -> tuple[datetime, datetime]:
        start = datetime.combine(day, time(), tzinfo=UTC)
        return start, start + timedelta(days=1)

    def _compile(
        self, criteria: crit.Criteria, hits: dict[crit.Criteria, list[int]]
    ) -> sa.ColumnElement[bool]:
        c = criteria
        if isinstance(c, crit.All | crit.Old):
            return sa.true()
        if isinstance(c, crit.New | crit.Recent):
            return sa.false()  # \Recent is never stored
        if isinstance(c, crit.And):
            return sa.and_(sa.true(), *(self._compile(item, hits) for item in c.items))
        if isinstance(c, crit.Or):
            return sa.or_(self._compile(c.left, hits), self._compile(c.right, hits))
        if isinstance(c, crit.Not):
            return sa.not_(self._compile(c.item, hits))
        if isinstance(c, crit.Flag):
            if c.name.lower() == "\\recent":
                return sa.false() if c.present else sa.true()
            has = self._has_flag(c.name)
            return has if c.present else sa.not_(has)
        if isinstance(c, _TEXT_CRITERIA):
            return self._text_match(c, hits)
        if isinstance(c, crit.Before):
            return placements.c.internal_date < self._day_bounds(c.day)[0]
        if isinstance(c, crit.On):
            start, end = self._day_bounds(c.day)
            return sa.and_(placements.c.internal_date >= start, placements.c.internal_date < end)
        if isinstance(c, crit.Since):
            return placements.c.internal_date >= self._day_bounds(c.day)[0]
        if isinstance(c, crit.SentBefore):
            return self._sent_day() < c.day
        if isinstance(c, crit.SentOn):
            return self._sent_day() == c.day
        if isinstance(c, crit.SentSince):
            return self._sent_day() >= c.day
        if isinstance(c, crit.Larger):
            return messages.c.size > c.size
        if isinstance(c, crit.Smaller):
            return messages.c.size < c.size
        if isinstance(c, crit.UidSet):
            if not c.ranges:
                return sa.false()
            return sa.or_(*(placements.c.uid.between(first, last) for first, last in c.ranges))
        if isinstance(c, crit.ModSeq):
            return placements.c.modseq >= c.modseq
        raise TypeError(f"unknown search criterion {c!r}")


_TEXT_CRITERIA = (
    crit.Text, crit.Body, crit.Header, crit.From, crit.To, crit.Cc, crit.Bcc, crit.Subject,
)


def _text_leaves(criteria: crit.Criteria) -> list[crit.Criteria]:
    """The distinct criteria answered from the full-text table, in order."""
    found: dict[crit.Criteria, None] = {}
    stack = [criteria]
    while stack:
        node = stack.pop()
        if isinstance(node, _TEXT_CRITERIA):
            found[node] = None
        stack.extend(crit.children(node))
    return list(found)


def _header_criterion(leaf: crit.Criteria) -> tuple[str, str]:
    if isinstance(leaf, crit.Header):
        return leaf.name, leaf.value
    assert isinstance(leaf, crit.From | crit.To | crit.Cc | crit.Bcc | crit.Subject)
    return type(leaf).__name__, leaf.value


def _regex_escape(text: str) -> str:
    return "".join("\\" + ch if not ch.isalnum() and ch != " " else ch for ch in text)

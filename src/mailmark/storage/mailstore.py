"""SQL of the IMAP store: placements by (folder, uid), flags, MODSEQs, tombstones, full-text search.

Flags are a JSON array per placement, with system flags in their canonical spelling (the core
writes them so). Where SQL must look inside it, it uses the backend's JSON functions; reading a
folder for SELECT takes the JSON text as it is and decodes each distinct value once.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailmark.core import search as crit
from mailmark.core.imap_sort import SortRow
from mailmark.core.model import (
    ConversationHead,
    FetchRow,
    Folder,
    FolderCounts,
    FolderTotals,
    FolderUids,
    MailRow,
    MessageIndex,
    PlacementState,
)
from mailmark.core.states import SystemFlag
from mailmark.storage.dialect import Dialect
from mailmark.storage.sql import (
    FOLDER_BY_ID,
    add_subscriptions,
    chunks,
    folder_from_row,
    folder_query,
    folder_subscribed,
    message_held,
    remove_orphan_messages,
)
from mailmark.storage.tables import (
    expunged,
    folders,
    imap_node_views,
    imap_nodes,
    messages,
    outbound_messages,
    pending_body_texts,
    placements,
    retained_placements,
    subscriptions,
)

# `conversations` of a folder reads at most this many placements newest first before it groups
# the folder instead.
LATEST_SCAN_ROWS = 5_000
# The decoded From line of the full-text index's header text ("from: Name <addr>").
_FROM_LINE = re.compile(r"(?m)^from: (.*)$")

# \Recent is never stored: a session computes it (RFC 3501 §2.3.2).
_RECENT = "\\recent"
_SYSTEM = frozenset({flag.lower() for flag in SystemFlag} | {_RECENT})

# fetch_rows' statements by (dialect, structure, content, contiguous).
_FETCH_QUERIES: dict[tuple[str, bool, bool, bool], sa.Select[Any]] = {}


def _strings(value: Any) -> tuple[str, ...]:
    """A JSON list of strings as the cast-to-text column reads it."""
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def _flags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(str(flag) for flag in value) if isinstance(value, list) else ()


def _internal_date(value: Any) -> datetime:
    """A placement's internal date as `SqlMailStore._fetch_query` reads it (see
    `Dialect.stored_datetime`): the UTC text that UtcDateTime stored ("YYYY-MM-DD
    HH:MM:SS.ffffff"), or an aware datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")
    moment: datetime = value
    return moment


def _state(row: Any) -> PlacementState:
    return PlacementState(
        int(row.uid),
        int(row.message_id),
        _flags(row.flags),
        int(row.modseq),
        row.thread_id,
        row.internal_date,
    )


class SqlMailStore:
    def __init__(self, conn: AsyncConnection, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    # Folders

    async def folder(self, folder_id: int) -> Folder | None:
        rows = await self._dialect.all_rows(self._conn, FOLDER_BY_ID, {"folder_id": folder_id})
        return folder_from_row(rows[0]) if rows else None

    async def lock_folder(self, folder_id: int) -> Folder | None:
        query = self._dialect.for_update(folder_query().where(folders.c.id == folder_id))
        row = (await self._conn.execute(query)).first()
        return Folder(**row._mapping) if row else None

    async def rename_folders(self, mailbox_id: int, renames: Sequence[tuple[int, str]]) -> None:
        """Rename folders; a subscribed name moves with its folder, as Dovecot's RENAME does."""
        rows = await self._conn.execute(
            sa.select(folders.c.id, folders.c.name).where(
                folders.c.mailbox_id == mailbox_id,
                folders.c.id.in_([folder_id for folder_id, _ in renames]),
            )
        )
        old = {int(row.id): str(row.name) for row in rows}
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
        moved = {old[folder_id]: name for folder_id, name in renames if folder_id in old}
        subscribed = await self.subscriptions(mailbox_id, list(moved))
        if subscribed:
            await self.set_subscribed(mailbox_id, subscribed, False)
            await add_subscriptions(self._conn, mailbox_id, [moved[name] for name in subscribed])

    async def subscriptions(self, mailbox_id: int, names: Sequence[str] | None = None) -> list[str]:
        """The mailbox's subscribed names (of `names` only, when given), sorted."""
        query = sa.select(subscriptions.c.name).where(subscriptions.c.mailbox_id == mailbox_id)
        found: list[str] = []
        if names is None:
            found.extend((await self._conn.execute(query)).scalars())
        else:
            for chunk in chunks(sorted(set(names))):
                chunk_query = query.where(subscriptions.c.name.in_(list(chunk)))
                found.extend((await self._conn.execute(chunk_query)).scalars())
        return sorted(found)

    async def set_subscribed(self, mailbox_id: int, names: Sequence[str], subscribed: bool) -> None:
        if subscribed:
            await add_subscriptions(self._conn, mailbox_id, names)
            return
        for chunk in chunks(sorted(set(names))):
            await self._conn.execute(
                subscriptions.delete().where(
                    subscriptions.c.mailbox_id == mailbox_id,
                    subscriptions.c.name.in_(list(chunk)),
                )
            )

    async def delete_folder(self, folder_id: int) -> list[str]:
        message_ids = (
            (
                await self._conn.execute(
                    sa.select(placements.c.message_id).where(placements.c.folder_id == folder_id)
                )
            )
            .scalars()
            .all()
        )
        await self._conn.execute(placements.delete().where(placements.c.folder_id == folder_id))
        await self._conn.execute(expunged.delete().where(expunged.c.folder_id == folder_id))
        await self._conn.execute(folders.delete().where(folders.c.id == folder_id))
        return await remove_orphan_messages(self._conn, message_ids)

    async def counts(self, folder_id: int, first_recent_uid: int | None = None) -> FolderCounts:
        recent = (
            sa.func.coalesce(
                sa.func.sum(sa.case((placements.c.uid >= first_recent_uid, 1), else_=0)), 0
            )
            if first_recent_uid is not None
            else sa.literal(0)
        )
        query = (
            sa.select(
                sa.func.count(),
                sa.func.coalesce(
                    sa.func.sum(sa.case((~self._has_flag(SystemFlag.SEEN), 1), else_=0)), 0
                ),
                sa.func.coalesce(sa.func.sum(messages.c.size), 0),
                recent,
            )
            .select_from(placements.join(messages))
            .where(placements.c.folder_id == folder_id)
        )
        total, unseen, size, recent_count = (await self._conn.execute(query)).one()
        return FolderCounts(int(total), int(unseen), int(size), int(recent_count))

    async def mailbox_usage(self, mailbox_id: int) -> tuple[int, int]:
        query = (
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(messages.c.size), 0))
            .select_from(placements.join(messages))
            .where(placements.c.mailbox_id == mailbox_id)
        )
        count, size = (await self._conn.execute(query)).one()
        return int(count), int(size)

    async def claim_recent(self, folder_id: int, uid_next: int) -> int:
        query = self._dialect.for_update(
            sa.select(folders.c.first_recent_uid).where(folders.c.id == folder_id)
        )
        first = (await self._conn.execute(query)).scalar()
        if first is None:
            return uid_next
        if first < uid_next:
            await self._conn.execute(
                folders.update().where(folders.c.id == folder_id).values(first_recent_uid=uid_next)
            )
        return int(first)

    async def filed_on_submission(
        self, folder_id: int, message_id_header: str, since: datetime
    ) -> int | None:
        query = (
            sa.select(placements.c.uid)
            .select_from(
                outbound_messages.join(
                    placements, placements.c.message_id == outbound_messages.c.sent_message_id
                )
            )
            .where(
                outbound_messages.c.message_id_header == message_id_header,
                outbound_messages.c.created_at >= since,
                placements.c.folder_id == folder_id,
            )
            .order_by(placements.c.uid.desc())
            .limit(1)
        )
        uid = (await self._conn.execute(query)).scalar()
        return None if uid is None else int(uid)

    async def folder_uids(self, folder_id: int) -> FolderUids:
        # One row per distinct flag set with its UIDs as comma-separated text, rather than 10,000
        # rows through the driver and SQLAlchemy; the UIDs are sorted here, so the aggregate's
        # order does not matter.
        flag_text = sa.cast(placements.c.flags, sa.Text)
        uid_text = sa.cast(placements.c.uid, sa.Text)
        joined = self._dialect.group_text(uid_text, ",")
        groups = await self._conn.execute(
            sa.select(flag_text, joined)
            .where(placements.c.folder_id == folder_id)
            .group_by(flag_text)
        )
        uids: list[int] = []
        unseen = 0
        lowest_unseen: int | None = None
        keywords: dict[str, str] = {}
        for value, text in groups:
            flags = _flags(value)
            group = [int(uid) for uid in text.split(",")]
            uids += group
            if SystemFlag.SEEN not in flags:
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

    async def present_uids(self, folder_id: int) -> list[int]:
        query = (
            sa.select(placements.c.uid)
            .where(placements.c.folder_id == folder_id)
            .order_by(placements.c.uid)
        )
        return [int(uid) for uid in (await self._conn.execute(query)).scalars()]

    async def tombstone_heavy_folders(self, kept: int) -> list[int]:
        query = (
            sa.select(expunged.c.folder_id)
            .group_by(expunged.c.folder_id)
            .having(sa.func.count() > kept)
            .order_by(expunged.c.folder_id)
        )
        return [int(folder_id) for folder_id in (await self._conn.execute(query)).scalars()]

    async def tombstone_cutoff(self, folder_id: int, kept: int) -> int | None:
        query = (
            sa.select(expunged.c.modseq)
            .where(expunged.c.folder_id == folder_id)
            .order_by(expunged.c.modseq.desc())
            .offset(kept)
            .limit(1)
        )
        value = await self._conn.scalar(query)
        return None if value is None else int(value)

    async def prune_tombstones(self, folder_id: int, up_to_modseq: int) -> int:
        result = await self._conn.execute(
            expunged.delete().where(
                expunged.c.folder_id == folder_id, expunged.c.modseq <= up_to_modseq
            )
        )
        deleted = int(result.rowcount or 0)
        if deleted:
            await self._conn.execute(
                folders.update()
                .where(folders.c.id == folder_id, folders.c.expunged_floor < up_to_modseq)
                .values(expunged_floor=up_to_modseq)
            )
        return deleted

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
            params["uids"] = self._dialect.bound_ids(wanted)
        keep = set(wanted)
        decoded: dict[str, tuple[str, ...]] = {}
        out = []
        for row in await self._dialect.all_rows(self._conn, query, params):
            uid, message_id, flag_text, modseq, moment, size, blob_key, prefix = row[:8]
            if uid not in keep:
                continue
            flags = decoded.get(flag_text)
            if flags is None:
                flags = decoded[flag_text] = _flags(flag_text)
            envelope, bodystructure, body = row[8:] if structure else (None, None, None)
            out.append(
                FetchRow(
                    uid,
                    message_id,
                    flags,
                    modseq,
                    _internal_date(moment),
                    size,
                    blob_key,
                    prefix or b"",
                    envelope,
                    bodystructure,
                    body,
                )
            )
        return out

    def _fetch_query(self, structure: bool, content: bool, contiguous: bool) -> sa.Select[Any]:
        """fetch_rows' statement, built once per shape with bound parameters: building and
        keying a fresh statement per chunk cost more than running it.

        Flags come as JSON text (decoded once per distinct value by the caller); on SQLite the
        internal date comes as the stored text, parsed by _internal_date."""
        key = (self._dialect.name, structure, content, contiguous)
        query = _FETCH_QUERIES.get(key)
        if query is not None:
            return query
        columns: list[Any] = [
            placements.c.uid,
            placements.c.message_id,
            sa.cast(placements.c.flags, sa.Text),
            placements.c.modseq,
            self._dialect.stored_datetime(placements.c.internal_date),
            messages.c.size,
            messages.c.blob_key,
            messages.c.trace_prefix if content else sa.null(),
        ]
        if structure:
            columns += [messages.c.envelope, messages.c.bodystructure, messages.c.body]
        uid = placements.c.uid
        chosen = (
            uid.between(sa.bindparam("low"), sa.bindparam("high"))
            if contiguous
            else self._dialect.among_bound_ids(uid, "uids")
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
        key = self._dialect.fulltext_key
        if (await self._conn.execute(sa.select(key).where(key == message_id))).first() is None:
            rows = [(message_id, index.header_text, index.body_text)]
            await self._dialect.add_fulltext(self._conn, rows)

    async def body_texts_pending(
        self, limit: int, folder_id: int | None = None
    ) -> list[tuple[int, str, int]]:
        waiting = pending_body_texts.c.message_id
        query = (
            sa.select(waiting, messages.c.blob_key, messages.c.size)
            .join(messages, messages.c.id == waiting)
            .order_by(waiting)
            .limit(limit)
        )
        if folder_id is not None:
            placed = sa.exists().where(
                placements.c.message_id == waiting, placements.c.folder_id == folder_id
            )
            query = query.where(placed)
        return [(int(i), str(key), int(size)) for i, key, size in await self._conn.execute(query)]

    async def add_body_texts(self, rows: Sequence[tuple[int, str]]) -> None:
        await self._dialect.set_fulltext_bodies(self._conn, rows)
        await self._conn.execute(
            pending_body_texts.delete().where(
                pending_body_texts.c.message_id.in_([message_id for message_id, _ in rows])
            )
        )

    async def placements(self, folder_id: int, uids: Sequence[int] | None) -> list[PlacementState]:
        base = (
            placements.select()
            .where(placements.c.folder_id == folder_id)
            .order_by(placements.c.uid)
        )
        if uids is None:
            return [_state(row) for row in await self._conn.execute(base)]
        out: list[PlacementState] = []
        for chunk in chunks(sorted(set(uids))):
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

    async def set_thread(self, folder_id: int, uid: int, thread_id: str) -> None:
        await self._conn.execute(
            placements.update()
            .where(placements.c.folder_id == folder_id, placements.c.uid == uid)
            .values(thread_id=thread_id)
        )

    async def set_flags(
        self, folder_id: int, changes: Sequence[tuple[int, tuple[str, ...], int]]
    ) -> None:
        if not changes:
            return
        statement = (
            placements.update()
            .where(placements.c.folder_id == folder_id, placements.c.uid == sa.bindparam("b_uid"))
            .values(flags=sa.bindparam("b_flags", type_=sa.JSON()), modseq=sa.bindparam("b_modseq"))
        )
        await self._conn.execute(
            statement,
            [
                {"b_uid": uid, "b_flags": list(flags), "b_modseq": modseq}
                for uid, flags, modseq in changes
            ],
        )

    async def remove_placements(
        self,
        folder_id: int,
        uids: Sequence[int],
        modseq: int,
    ) -> list[str]:
        message_ids: list[int] = []
        for chunk in chunks(sorted(set(uids))):
            where = sa.and_(placements.c.folder_id == folder_id, placements.c.uid.in_(list(chunk)))
            found = (
                await self._conn.execute(
                    sa.select(placements.c.uid, placements.c.message_id).where(where)
                )
            ).all()
            if not found:
                continue
            message_ids.extend(row.message_id for row in found)
            await self._conn.execute(placements.delete().where(where))
            await self._conn.execute(
                expunged.insert(),
                [{"folder_id": folder_id, "uid": row.uid, "modseq": modseq} for row in found],
            )
        return await remove_orphan_messages(self._conn, message_ids)

    async def remove_unplaced(self, message_ids: Sequence[int] | None) -> list[str]:
        if message_ids is None:
            query = sa.select(messages.c.id).where(~message_held())
            message_ids = (await self._conn.execute(query)).scalars().all()
        return await remove_orphan_messages(self._conn, message_ids)

    # IMAP nodes and what their sessions may still see (issue 16 item 10)

    async def renew_node(self, node_id: str, now: datetime) -> None:
        await self._conn.execute(
            self._dialect.insert_or_ignore(imap_nodes), {"node_id": node_id, "seen_at": now}
        )
        await self._conn.execute(
            imap_nodes.update().where(imap_nodes.c.node_id == node_id).values(seen_at=now)
        )

    async def hold_folder(self, node_id: str, folder_id: int, now: datetime) -> int | None:
        # Locked for share: an expunge of the folder in progress (which locks it for update)
        # commits first, or finds this row when it looks for views.
        query = self._dialect.for_update(
            sa.select(folders.c.highest_modseq).where(folders.c.id == folder_id), read=True
        )
        floor = await self._conn.scalar(query)
        if floor is None:
            return None
        await self.renew_node(node_id, now)
        view = imap_node_views.c
        await self._conn.execute(
            self._dialect.insert_or_ignore(imap_node_views),
            {"node_id": node_id, "folder_id": folder_id, "floor": floor},
        )
        await self._conn.execute(
            imap_node_views.update()
            .where(view.node_id == node_id, view.folder_id == folder_id, view.floor > floor)
            .values(floor=floor)
        )
        return int(floor)

    async def set_view_floors(self, node_id: str, floors: dict[int, int]) -> None:
        view = imap_node_views.c
        for folder_id, floor in floors.items():
            await self._conn.execute(
                imap_node_views.update()
                .where(view.node_id == node_id, view.folder_id == folder_id)
                .values(floor=floor)
            )

    async def drop_views(self, node_id: str, folder_ids: Sequence[int]) -> None:
        view = imap_node_views.c
        for chunk in chunks(sorted(folder_ids)):
            await self._conn.execute(
                imap_node_views.delete().where(
                    view.node_id == node_id, view.folder_id.in_(list(chunk))
                )
            )

    async def forget_node(self, node_id: str) -> None:
        await self._conn.execute(imap_nodes.delete().where(imap_nodes.c.node_id == node_id))

    async def forget_nodes(self, seen_before: datetime) -> int:
        result = await self._conn.execute(
            imap_nodes.delete().where(imap_nodes.c.seen_at < seen_before)
        )
        return int(result.rowcount or 0)

    async def other_views_floor(
        self, folder_id: int, node_id: str, seen_since: datetime
    ) -> int | None:
        view = imap_node_views.c
        query = (
            sa.select(sa.func.min(view.floor))
            .select_from(imap_node_views.join(imap_nodes))
            .where(
                view.folder_id == folder_id,
                view.node_id != node_id,
                imap_nodes.c.seen_at >= seen_since,
            )
        )
        floor = await self._conn.scalar(query)
        return None if floor is None else int(floor)

    async def retain(self, folder_id: int, states: Sequence[PlacementState], modseq: int) -> None:
        if states:
            await self._conn.execute(
                self._dialect.insert_or_ignore(retained_placements),
                [
                    {
                        "folder_id": folder_id,
                        "uid": state.uid,
                        "message_id": state.message_id,
                        "modseq": state.modseq,
                        "flags": list(state.flags),
                        "thread_id": state.thread_id,
                        "internal_date": state.internal_date,
                        "expunged_modseq": modseq,
                    }
                    for state in states
                ],
            )

    async def retained(
        self, folder_id: int, uids: Sequence[int] | None
    ) -> list[tuple[PlacementState, int]]:
        kept = retained_placements.c
        query = sa.select(retained_placements).where(kept.folder_id == folder_id)
        found = []
        for chunk in [None] if uids is None else chunks(sorted(set(uids))):
            where = query if chunk is None else query.where(kept.uid.in_(list(chunk)))
            for row in await self._conn.execute(where.order_by(kept.uid)):
                state = PlacementState(
                    int(row.uid),
                    int(row.message_id),
                    tuple(row.flags),
                    int(row.modseq),
                    row.thread_id,
                    row.internal_date,
                )
                found.append((state, int(row.expunged_modseq)))
        return found

    async def release(self, folder_id: int, uids: Sequence[int]) -> list[str]:
        kept = retained_placements.c
        message_ids: list[int] = []
        for chunk in chunks(sorted(set(uids))):
            where = sa.and_(kept.folder_id == folder_id, kept.uid.in_(list(chunk)))
            message_ids += (
                await self._conn.execute(sa.select(kept.message_id).where(where))
            ).scalars()
            await self._conn.execute(retained_placements.delete().where(where))
        return await remove_orphan_messages(self._conn, message_ids)

    async def retaining_folders(self) -> list[int]:
        query = sa.select(retained_placements.c.folder_id).distinct()
        return [int(folder_id) for folder_id in (await self._conn.execute(query)).scalars()]

    async def message_rows(
        self, message_ids: Sequence[int], structure: bool, content: bool
    ) -> dict[int, FetchRow]:
        columns = [messages.c.id, messages.c.size, messages.c.blob_key]
        if content:
            columns.append(messages.c.trace_prefix)
        if structure:
            columns += [messages.c.envelope, messages.c.bodystructure, messages.c.body]
        found: dict[int, FetchRow] = {}
        for chunk in chunks(sorted(set(message_ids))):
            for row in await self._conn.execute(
                sa.select(*columns).where(messages.c.id.in_(list(chunk)))
            ):
                values = row._mapping
                found[int(row.id)] = FetchRow(
                    0,
                    int(row.id),
                    (),
                    0,
                    datetime.min.replace(tzinfo=UTC),
                    int(row.size),
                    row.blob_key,
                    values.get("trace_prefix") or b"",
                    values.get("envelope"),
                    values.get("bodystructure"),
                    values.get("body"),
                )
        return found

    async def move_placements(self, source_id: int, dest_id: int, modseq: int) -> None:
        uids = (
            (
                await self._conn.execute(
                    sa.select(placements.c.uid).where(placements.c.folder_id == source_id)
                )
            )
            .scalars()
            .all()
        )
        await self._conn.execute(
            placements.update().where(placements.c.folder_id == source_id).values(folder_id=dest_id)
        )
        for chunk in chunks(list(uids)):
            await self._conn.execute(
                expunged.insert(),
                [{"folder_id": source_id, "uid": uid, "modseq": modseq} for uid in chunk],
            )

    # Search

    async def search(
        self, folder_id: int, criteria: crit.Criteria, uids: Sequence[int] | None
    ) -> list[int]:
        query = (
            sa.select(placements.c.uid)
            .select_from(placements.join(messages))
            .where(placements.c.folder_id == folder_id, await self._matching(criteria))
            .order_by(placements.c.uid)
        )
        found = [int(uid) for uid in (await self._conn.execute(query)).scalars()]
        if uids is None:
            return found
        universe = set(uids)
        return [uid for uid in found if uid in universe]

    async def sort_rows(self, folder_id: int, uids: Collection[int]) -> list[SortRow]:
        query = (
            sa.select(
                placements.c.uid,
                self._dialect.stored_datetime(placements.c.internal_date).label("internal_date"),
                placements.c.thread_id,
                messages.c.date,
                messages.c.size,
                messages.c.subject_key,
                messages.c.from_addr,
                sa.cast(messages.c.to_addrs, sa.Text).label("to_addrs"),
                sa.cast(messages.c.cc_addrs, sa.Text).label("cc_addrs"),
                messages.c.message_id,
                messages.c.in_reply_to,
                sa.cast(messages.c.references, sa.Text).label("references"),
            )
            .select_from(placements.join(messages))
            .where(placements.c.folder_id == folder_id)
        )
        wanted = set(uids)
        return [
            SortRow(
                uid=int(row.uid),
                internal_date=_internal_date(row.internal_date),
                date=row.date,
                size=int(row.size),
                subject_key=row.subject_key,
                from_addr=row.from_addr,
                to_addrs=_strings(row.to_addrs),
                cc_addrs=_strings(row.cc_addrs),
                message_id=row.message_id,
                parents=(
                    *_strings(row.references),
                    *((row.in_reply_to,) if row.in_reply_to else ()),
                ),
                thread_id=str(row.thread_id),
            )
            for row in await self._conn.execute(query)
            if int(row.uid) in wanted
        ]

    async def _matching(self, criteria: crit.Criteria) -> sa.ColumnElement[bool]:
        """The criteria as a condition on placements joined with messages; on PostgreSQL each
        text criterion's hits are asked for once first."""
        hits: dict[crit.Criteria, list[int]] = {}
        if self._dialect.prefetches_text_hits:
            leaves = _text_leaves(criteria)
            if leaves:
                await self._dialect.before_text_search(self._conn)
            for leaf in leaves:
                query = self._text_ids(leaf)
                hits[leaf] = (
                    [] if query is None else list((await self._conn.execute(query)).scalars())
                )
        return self._compile(criteria, hits)

    # The webmail's lists

    async def folder_totals(self, mailbox_id: int) -> list[FolderTotals]:
        unseen = sa.case(
            (sa.and_(placements.c.id.is_not(None), ~self._has_flag(SystemFlag.SEEN)), 1), else_=0
        )
        query = (
            sa.select(
                *folders.c,
                folder_subscribed(),
                sa.func.count(placements.c.id).label("total"),
                sa.func.coalesce(sa.func.sum(unseen), 0).label("unseen"),
            )
            .select_from(folders.outerjoin(placements, placements.c.folder_id == folders.c.id))
            .where(folders.c.mailbox_id == mailbox_id)
            .group_by(*folders.c)
        )
        out = []
        for row in await self._conn.execute(query):
            values = dict(row._mapping)
            total, unseen_count = int(values.pop("total")), int(values.pop("unseen"))
            out.append(FolderTotals(Folder(**values), total, unseen_count))
        return out

    async def conversations(
        self,
        folder_ids: Sequence[int],
        criteria: crit.Criteria | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[ConversationHead]:
        """Threads with placements in the folders (matching `criteria` when given), latest
        first, after the keyset cursor `before` = (latest, thread id): grouped in SQL, from the
        (folder, thread, internal date) index, so a page never reads a folder's rows out."""
        if criteria is None and len(folder_ids) == 1:
            found = await self._latest_threads(folder_ids[0], before, limit)
            if found is not None:
                return found
        latest = sa.func.max(placements.c.internal_date).label("latest")
        query = sa.select(placements.c.thread_id, latest, sa.func.count().label("n")).where(
            placements.c.folder_id.in_(list(folder_ids))
        )
        if criteria is not None:
            query = query.select_from(placements.join(messages)).where(
                await self._matching(criteria)
            )
        query = query.group_by(placements.c.thread_id)
        if before is not None:
            moment, thread_id = before
            query = query.having(
                sa.or_(
                    latest < moment, sa.and_(latest == moment, placements.c.thread_id < thread_id)
                )
            )
        query = query.order_by(latest.desc(), placements.c.thread_id.desc()).limit(limit)
        return [
            ConversationHead(str(row.thread_id), row.latest, int(row.n))
            for row in await self._conn.execute(query)
        ]

    async def _latest_threads(
        self, folder_id: int, before: tuple[datetime, str] | None, limit: int
    ) -> list[ConversationHead] | None:
        """`conversations` of one folder without criteria, from its newest placements down
        (the (folder, internal date, thread) index): a thread first met in that order is met at
        its latest placement, so the order is the grouped query's, without grouping the whole
        folder. None when more than LATEST_SCAN_ROWS rows would be read (threads of earlier
        pages holding many older messages): the caller groups instead."""
        order = (placements.c.internal_date.desc(), placements.c.thread_id.desc())
        scan = sa.select(placements.c.thread_id, placements.c.internal_date).where(
            placements.c.folder_id == folder_id
        )
        if before is not None:
            scan = scan.where(placements.c.internal_date <= before[0])
        chosen: list[tuple[str, datetime]] = []
        judged: set[str] = set()
        read = 0
        chunk = max(4 * limit, 100)
        while len(chosen) < limit and read < LATEST_SCAN_ROWS:
            rows = (await self._conn.execute(scan.order_by(*order).limit(chunk).offset(read))).all()
            read += len(rows)
            fresh: list[str] = []
            for row in rows:
                if row.thread_id not in judged:
                    judged.add(row.thread_id)
                    fresh.append(row.thread_id)
            if fresh:
                latest = await self._thread_latest(folder_id, fresh)
                for thread_id in fresh:
                    moment = latest[thread_id]
                    if before is None or (moment, thread_id) < before:
                        chosen.append((thread_id, moment))
            if len(rows) < chunk:
                break
        else:
            if len(chosen) < limit:
                return None
        chosen = chosen[:limit]
        counts = await self._thread_counts(folder_id, [t for t, _ in chosen])
        return [ConversationHead(t, moment, counts[t]) for t, moment in chosen]

    async def _thread_latest(self, folder_id: int, thread_ids: list[str]) -> dict[str, datetime]:
        out: dict[str, datetime] = {}
        for chunk in chunks(thread_ids):
            query = (
                sa.select(placements.c.thread_id, sa.func.max(placements.c.internal_date))
                .where(placements.c.folder_id == folder_id, placements.c.thread_id.in_(list(chunk)))
                .group_by(placements.c.thread_id)
            )
            out.update({str(t): moment for t, moment in await self._conn.execute(query)})
        return out

    async def _thread_counts(self, folder_id: int, thread_ids: list[str]) -> dict[str, int]:
        if not thread_ids:
            return {}
        query = (
            sa.select(placements.c.thread_id, sa.func.count())
            .where(placements.c.folder_id == folder_id, placements.c.thread_id.in_(thread_ids))
            .group_by(placements.c.thread_id)
        )
        return {str(t): int(n) for t, n in await self._conn.execute(query)}

    async def conversation_count(
        self, folder_ids: Sequence[int], criteria: crit.Criteria | None
    ) -> int:
        query = sa.select(sa.func.count(sa.distinct(placements.c.thread_id))).where(
            placements.c.folder_id.in_(list(folder_ids))
        )
        if criteria is not None:
            query = query.select_from(placements.join(messages)).where(
                await self._matching(criteria)
            )
        return int((await self._conn.execute(query)).scalar_one())

    async def mail_rows(
        self,
        mailbox_id: int,
        *,
        folder_ids: Sequence[int] | None = None,
        thread_ids: Sequence[str] | None = None,
        folder_id: int | None = None,
        uids: Sequence[int] | None = None,
    ) -> list[MailRow]:
        """The mailbox's placements of these threads (in these folders when given), or these
        uids of one folder; by internal date, then folder and uid."""
        text = self._dialect.fulltext
        query = (
            sa.select(
                placements.c.folder_id,
                placements.c.uid,
                placements.c.message_id,
                placements.c.thread_id,
                sa.cast(placements.c.flags, sa.Text).label("flags"),
                self._dialect.stored_datetime(placements.c.internal_date).label("internal_date"),
                messages.c.size,
                messages.c.subject,
                messages.c.from_addr,
                text.c.header,
                messages.c.date,
                messages.c.snippet,
                sa.cast(messages.c.attachments, sa.Text).label("attachments"),
            )
            .select_from(
                placements.join(messages).outerjoin(
                    text, self._dialect.fulltext_key == placements.c.message_id
                )
            )
            .where(placements.c.mailbox_id == mailbox_id)
            .order_by(placements.c.internal_date, placements.c.folder_id, placements.c.uid)
        )
        if folder_ids is not None:
            query = query.where(placements.c.folder_id.in_(list(folder_ids)))
        if thread_ids is not None:
            query = query.where(placements.c.thread_id.in_(list(thread_ids)))
        if folder_id is not None:
            query = query.where(placements.c.folder_id == folder_id)
        if uids is not None:
            query = query.where(placements.c.uid.in_(list(uids)))
        out = []
        decoded: dict[str, tuple[str, ...]] = {}
        for row in await self._conn.execute(query):
            found = _FROM_LINE.search(row.header or "")
            flags = decoded.get(row.flags)
            if flags is None:
                flags = decoded[row.flags] = _flags(row.flags)
            out.append(
                MailRow(
                    folder_id=int(row.folder_id),
                    uid=int(row.uid),
                    message_id=int(row.message_id),
                    thread_id=str(row.thread_id),
                    flags=flags,
                    internal_date=_internal_date(row.internal_date),
                    size=int(row.size),
                    subject=row.subject,
                    from_addr=row.from_addr,
                    from_header=found.group(1).strip() if found else "",
                    date=row.date,
                    snippet=row.snippet,
                    has_attachments=(row.attachments or "[]").strip() not in ("[]", ""),
                )
            )
        return out

    def _has_flag(self, flag: str) -> sa.ColumnElement[bool]:
        """The placement's flags hold `flag`, compared case-insensitively (RFC 3501 §2.3.2)."""
        elements = self._dialect.json_array_values(placements.c.flags)
        return (
            sa.exists()
            .select_from(elements)
            .where(sa.func.lower(elements.c.value) == flag.lower())
            .correlate(placements)
        )

    def _text_ids(self, leaf: crit.Criteria) -> sa.Select[Any] | None:
        """The ids of messages whose indexed text matches a text criterion; None for "all"."""
        table = self._dialect.fulltext
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
            tests.append(self._dialect.regexp_match_icase(table.c.header, pattern))
        if value:
            tests.append(self._dialect.text_contains(header, body, value))
        return sa.select(self._dialect.fulltext_key).where(*tests)

    def _text_match(
        self, leaf: crit.Criteria, hits: dict[crit.Criteria, list[int]]
    ) -> sa.ColumnElement[bool]:
        if leaf in hits:
            return self._dialect.any_of(placements.c.message_id, hits[leaf])
        query = self._text_ids(leaf)
        return sa.true() if query is None else placements.c.message_id.in_(query)

    def _sent_day(self) -> sa.ColumnElement[date]:
        """The Date header's day; without a readable Date header, the internal date's (UTC), so
        that NOT SENTON and SENTON always split a folder in two."""
        fallback = self._dialect.utc_day(placements.c.internal_date)
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
            if c.name.lower() == _RECENT:
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
        if isinstance(c, crit.HasAttachment):
            return sa.cast(messages.c.attachments, sa.Text) != "[]"
        raise TypeError(f"unknown search criterion {c!r}")


_TEXT_CRITERIA = (
    crit.Text,
    crit.Body,
    crit.Header,
    crit.From,
    crit.To,
    crit.Cc,
    crit.Bcc,
    crit.Subject,
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

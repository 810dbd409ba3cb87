"""Messages (one row per stored blob's metadata) and their placements in folders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailmark.core.model import NewMessage, NewPlacement
from mailmark.storage.sql import (
    Repository,
    blob_referenced,
    remove_orphan_messages,
    shallow_fields,
    unreferenced_blobs,
)
from mailmark.storage.tables import messages, pending_body_texts, placements


def _message_row(message: NewMessage) -> dict[str, Any]:
    meta = message.meta
    return {
        "blob_key": message.blob_key,
        "size": message.size,
        "trace_prefix": message.trace_prefix,
        "received_at": message.received_at,
        "mail_from": message.mail_from[:320],
        "message_id": meta.message_id,
        "subject": meta.subject,
        "subject_key": meta.subject_key[:255],
        "from_addr": meta.from_addr[:320] if meta.from_addr else None,
        "to_addrs": list(meta.to_addrs),
        "cc_addrs": list(meta.cc_addrs),
        "date": meta.date,
        "in_reply_to": meta.in_reply_to,
        "references": list(meta.references),
        "snippet": meta.snippet[:255],
        "attachments": [shallow_fields(a) for a in meta.attachments],
        "defects": list(meta.defects),
        "envelope": message.index.envelope if message.index else None,
        "bodystructure": message.index.bodystructure if message.index else None,
        "body": message.index.body if message.index else None,
        "sent_day": message.index.sent_day if message.index else None,
    }


def _blob_lock_id(blob_key: str) -> int:
    """A signed 64-bit lock key from the blob's SHA-256 hex key."""
    return int(blob_key[:16], 16) - (1 << 63)


class SqlMessages(Repository):
    async def add_many(self, new_messages: Sequence[NewMessage]) -> list[int]:
        ids = await self._dialect.insert_many(
            self._conn, messages, [_message_row(m) for m in new_messages]
        )
        stored = list(zip(ids, new_messages, strict=True))
        await self._dialect.add_fulltext(
            self._conn,
            [
                (i, m.index.header_text, "" if m.body_text_later else m.index.body_text)
                for i, m in stored
                if m.index is not None
            ],
        )
        later = [{"message_id": i} for i, m in stored if m.index is not None and m.body_text_later]
        await self._dialect.insert_rows(self._conn, pending_body_texts, later)
        return ids

    async def add_placements(self, new_placements: Sequence[NewPlacement]) -> None:
        rows = []
        for placement in new_placements:
            values = shallow_fields(placement)
            values["flags"] = list(placement.flags)
            rows.append(values)
        await self._dialect.insert_rows(self._conn, placements, rows)

    async def thread_of_references(self, mailbox_id: int, message_ids: Sequence[str]) -> str | None:
        query = (
            sa.select(placements.c.thread_id)
            .select_from(placements.join(messages))
            .where(placements.c.mailbox_id == mailbox_id, messages.c.message_id.in_(message_ids))
            .order_by(placements.c.id.desc())
            .limit(1)
        )
        return (await self._conn.execute(query)).scalar_one_or_none()

    async def thread_of_subject(
        self, mailbox_id: int, subject_key: str, since: datetime
    ) -> str | None:
        query = (
            sa.select(placements.c.thread_id)
            .select_from(placements.join(messages))
            .where(
                placements.c.mailbox_id == mailbox_id,
                messages.c.subject_key == subject_key,
                placements.c.internal_date >= since,
            )
            .order_by(placements.c.id.desc())
            .limit(1)
        )
        return (await self._conn.execute(query)).scalar_one_or_none()

    async def delete_mailbox_contents(self, mailbox_id: int) -> list[str]:
        in_mailbox = sa.select(placements.c.message_id).where(placements.c.mailbox_id == mailbox_id)
        message_ids = (await self._conn.execute(in_mailbox)).scalars().all()
        await self._conn.execute(placements.delete().where(placements.c.mailbox_id == mailbox_id))
        return await remove_orphan_messages(self._conn, message_ids)

    async def lock_blob(self, blob_key: str) -> None:
        await self._dialect.lock_key(self._conn, _blob_lock_id(blob_key))

    async def blob_referenced(self, blob_key: str) -> bool:
        return await blob_referenced(self._conn, blob_key)

    async def unreferenced_blobs(self, blob_keys: Sequence[str]) -> list[str]:
        return await unreferenced_blobs(self._conn, set(blob_keys))

"""What the webmail's compose side reads and writes beyond the IMAP store: uploads, where the
copies of sent messages are placed, the outbound message behind a Sent copy, correspondents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from mailmark.core.model import Correspondence, FolderCopy, OutboundMessage, Upload
from mailmark.storage.sql import Repository, chunks, shallow_fields
from mailmark.storage.tables import (
    folders,
    messages,
    outbound_messages,
    placements,
    webmail_uploads,
)


class SqlCompose(Repository):
    async def add_upload(self, upload: Upload) -> None:
        await self._conn.execute(webmail_uploads.insert().values(**shallow_fields(upload)))

    async def upload(self, upload_id: str, user_id: int, mailbox_id: int) -> Upload | None:
        query = webmail_uploads.select().where(
            webmail_uploads.c.id == upload_id,
            webmail_uploads.c.user_id == user_id,
            webmail_uploads.c.mailbox_id == mailbox_id,
        )
        row = (await self._conn.execute(query)).first()
        return Upload(**row._mapping) if row else None

    async def take_expired_uploads(self, now: datetime, limit: int) -> list[str]:
        query = (
            sa.select(webmail_uploads.c.id, webmail_uploads.c.blob_key)
            .where(webmail_uploads.c.expires_at <= now)
            .order_by(webmail_uploads.c.expires_at)
            .limit(limit)
        )
        rows = (await self._conn.execute(query)).all()
        if rows:
            await self._conn.execute(
                webmail_uploads.delete().where(webmail_uploads.c.id.in_([r.id for r in rows]))
            )
        return sorted({row.blob_key for row in rows})

    async def copies_in(self, message_ids: Sequence[int], folder_name: str) -> list[FolderCopy]:
        found: list[FolderCopy] = []
        for chunk in chunks(sorted(set(message_ids))):
            query = (
                sa.select(
                    placements.c.mailbox_id,
                    placements.c.folder_id,
                    placements.c.uid,
                    placements.c.message_id,
                )
                .select_from(placements.join(folders))
                .where(placements.c.message_id.in_(chunk), folders.c.name == folder_name)
                .order_by(placements.c.folder_id, placements.c.uid)
            )
            found += [FolderCopy(*row) for row in await self._conn.execute(query)]
        return found

    async def outbound_of_copy(
        self, mailbox_id: int, message_id: int, message_id_header: str | None
    ) -> OutboundMessage | None:
        which = outbound_messages.c.sent_message_id == message_id
        if message_id_header:
            which = sa.or_(which, outbound_messages.c.message_id_header == message_id_header)
        query = (
            outbound_messages.select()
            .where(outbound_messages.c.mailbox_id == mailbox_id, which)
            .order_by(outbound_messages.c.id.desc())
            .limit(1)
        )
        row = (await self._conn.execute(query)).first()
        return OutboundMessage(**row._mapping) if row else None

    async def message_id_header(self, message_id: int) -> str | None:
        query = sa.select(messages.c.message_id).where(messages.c.id == message_id)
        value: str | None = (await self._conn.execute(query)).scalar_one_or_none()
        return value

    async def correspondence(self, mailbox_id: int, limit: int) -> list[Correspondence]:
        recent = (
            sa.select(placements.c.message_id)
            .where(placements.c.mailbox_id == mailbox_id)
            .order_by(placements.c.id.desc())
            .limit(limit)
            .subquery()
        )
        query = sa.select(messages.c.from_addr, messages.c.to_addrs, messages.c.cc_addrs).where(
            messages.c.id.in_(sa.select(recent.c.message_id))
        )
        return [
            Correspondence(row.from_addr, tuple(row.to_addrs or ()), tuple(row.cc_addrs or ()))
            for row in await self._conn.execute(query)
        ]

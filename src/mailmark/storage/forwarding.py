"""Mailboxes' forwarding settings."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from mailmark.core.model import MailboxForwarding
from mailmark.storage.sql import Repository
from mailmark.storage.tables import mailbox_forwarding


class SqlForwarding(Repository):
    async def get(self, mailbox_id: int) -> MailboxForwarding | None:
        row = (
            await self._conn.execute(
                sa.select(mailbox_forwarding).where(mailbox_forwarding.c.mailbox_id == mailbox_id)
            )
        ).first()
        if row is None:
            return None
        return MailboxForwarding(mailbox_id, tuple(row.addresses), bool(row.keep_copy))

    async def put(self, forwarding: MailboxForwarding, at: datetime) -> None:
        """Replace the row (delete and insert in the caller's transaction: no dialect upsert)."""
        await self.remove(forwarding.mailbox_id)
        await self._conn.execute(
            mailbox_forwarding.insert().values(
                mailbox_id=forwarding.mailbox_id,
                addresses=list(forwarding.addresses),
                keep_copy=forwarding.keep_copy,
                updated_at=at,
            )
        )

    async def remove(self, mailbox_id: int) -> None:
        await self._conn.execute(
            mailbox_forwarding.delete().where(mailbox_forwarding.c.mailbox_id == mailbox_id)
        )

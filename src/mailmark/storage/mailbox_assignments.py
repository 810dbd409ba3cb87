"""Which mailboxes each member of an account may see and use."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from mailmark.storage.sql import Repository, chunks
from mailmark.storage.tables import mailbox_assignments


class SqlMailboxAssignments(Repository):
    async def mailbox_ids(self, user_id: int) -> list[int]:
        query = (
            sa.select(mailbox_assignments.c.mailbox_id)
            .where(mailbox_assignments.c.user_id == user_id)
            .order_by(mailbox_assignments.c.mailbox_id)
        )
        return [int(row[0]) for row in await self._conn.execute(query)]

    async def for_users(self, user_ids: Sequence[int]) -> dict[int, list[int]]:
        """Each of these users' mailbox ids (users without one are left out)."""
        found: dict[int, list[int]] = {}
        for chunk in chunks(list(user_ids)):
            query = (
                sa.select(mailbox_assignments.c.user_id, mailbox_assignments.c.mailbox_id)
                .where(mailbox_assignments.c.user_id.in_(chunk))
                .order_by(mailbox_assignments.c.mailbox_id)
            )
            for user_id, mailbox_id in await self._conn.execute(query):
                found.setdefault(int(user_id), []).append(int(mailbox_id))
        return found

    async def for_mailboxes(self, mailbox_ids: Sequence[int]) -> dict[int, list[int]]:
        """The users assigned each of these mailboxes (mailboxes without one are left out)."""
        found: dict[int, list[int]] = {}
        for chunk in chunks(list(mailbox_ids)):
            query = (
                sa.select(mailbox_assignments.c.mailbox_id, mailbox_assignments.c.user_id)
                .where(mailbox_assignments.c.mailbox_id.in_(chunk))
                .order_by(mailbox_assignments.c.user_id)
            )
            for mailbox_id, user_id in await self._conn.execute(query):
                found.setdefault(int(mailbox_id), []).append(int(user_id))
        return found

    async def replace(self, user_id: int, mailbox_ids: Sequence[int]) -> None:
        """Assign the user exactly these mailboxes."""
        await self._conn.execute(
            mailbox_assignments.delete().where(mailbox_assignments.c.user_id == user_id)
        )
        if mailbox_ids:
            await self._conn.execute(
                mailbox_assignments.insert(),
                [{"user_id": user_id, "mailbox_id": m} for m in sorted(set(mailbox_ids))],
            )

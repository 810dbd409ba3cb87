"""Invitations to join an account, with the role and mailboxes the invitee will get."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailmark.core.model import Invitation
from mailmark.storage.sql import Repository, row_values
from mailmark.storage.tables import invitations


def _invitation(values: Any) -> Invitation:
    return Invitation(**{**values, "mailbox_ids": tuple(values["mailbox_ids"])})


class SqlInvitations(Repository):
    async def add(self, invitation: Invitation) -> Invitation:
        values = row_values(invitation)
        values["mailbox_ids"] = list(invitation.mailbox_ids)
        new_id = await self._insert(invitations, values)
        return Invitation(**{**row_values(invitation), "id": new_id})

    async def get(self, invitation_id: int) -> Invitation | None:
        query = invitations.select().where(invitations.c.id == invitation_id)
        row = (await self._conn.execute(query)).first()
        return _invitation(row._mapping) if row else None

    async def list_pending(self, account_id: int, now: datetime) -> list[Invitation]:
        query = (
            invitations.select()
            .where(
                invitations.c.account_id == account_id,
                invitations.c.accepted_at.is_(None),
                invitations.c.expires_at > now,
            )
            .order_by(invitations.c.id)
        )
        return [_invitation(row._mapping) for row in await self._conn.execute(query)]

    async def accept(self, invitation_id: int, at: datetime) -> bool:
        """Mark accepted; False when it was accepted already."""
        result = await self._conn.execute(
            invitations.update()
            .where(invitations.c.id == invitation_id, invitations.c.accepted_at.is_(None))
            .values(accepted_at=at)
        )
        return result.rowcount == 1

    async def delete(self, invitation_id: int) -> None:
        await self._conn.execute(invitations.delete().where(invitations.c.id == invitation_id))

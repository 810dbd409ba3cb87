"""Sender groups: the mailboxes (or addresses) a campaign's sends rotate over."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa

from mailmark.core.model import SenderGroup
from mailmark.storage.sql import Repository
from mailmark.storage.tables import sender_group_mailboxes, sender_groups


def _row(group: SenderGroup) -> dict[str, Any]:
    return {
        "domain_id": group.domain_id,
        "name": group.name,
        "all_mailboxes": group.all_mailboxes,
        "emails": list(group.emails),
        "created_at": group.created_at,
        "updated_at": group.updated_at,
    }


class SqlSenderGroups(Repository):
    async def add(self, group: SenderGroup) -> SenderGroup:
        new_id = await self._insert(sender_groups, _row(group))
        await self._set_mailboxes(new_id, group.mailbox_ids)
        return SenderGroup(**{**asdict(group), "id": new_id})

    async def get(self, domain_id: int, group_id: int) -> SenderGroup | None:
        found = await self._select(
            sa.and_(sender_groups.c.domain_id == domain_id, sender_groups.c.id == group_id)
        )
        return found[0] if found else None

    async def list_for_domain(self, domain_id: int) -> list[SenderGroup]:
        return await self._select(sender_groups.c.domain_id == domain_id)

    async def update(self, group: SenderGroup) -> None:
        assert group.id is not None
        await self._conn.execute(
            sender_groups.update()
            .where(sender_groups.c.id == group.id, sender_groups.c.domain_id == group.domain_id)
            .values(**_row(group))
        )
        await self._conn.execute(
            sender_group_mailboxes.delete().where(sender_group_mailboxes.c.group_id == group.id)
        )
        await self._set_mailboxes(group.id, group.mailbox_ids)

    async def delete(self, domain_id: int, group_id: int) -> bool:
        result = await self._conn.execute(
            sender_groups.delete().where(
                sender_groups.c.id == group_id, sender_groups.c.domain_id == domain_id
            )
        )
        return bool(result.rowcount)

    async def _set_mailboxes(self, group_id: int, mailbox_ids: Sequence[int]) -> None:
        if mailbox_ids:
            await self._conn.execute(
                sender_group_mailboxes.insert(),
                [{"group_id": group_id, "mailbox_id": m} for m in mailbox_ids],
            )

    async def _select(self, where: sa.ColumnElement[bool]) -> list[SenderGroup]:
        query = sender_groups.select().where(where).order_by(sender_groups.c.id)
        rows = (await self._conn.execute(query)).all()
        if not rows:
            return []
        members: dict[int, list[int]] = {row.id: [] for row in rows}
        query = (
            sa.select(sender_group_mailboxes.c.group_id, sender_group_mailboxes.c.mailbox_id)
            .where(sender_group_mailboxes.c.group_id.in_(list(members)))
            .order_by(sender_group_mailboxes.c.mailbox_id)
        )
        for group_id, mailbox_id in await self._conn.execute(query):
            members[group_id].append(mailbox_id)
        return [
            SenderGroup(
                domain_id=row.domain_id,
                name=row.name,
                all_mailboxes=row.all_mailboxes,
                emails=tuple(row.emails),
                created_at=row.created_at,
                updated_at=row.updated_at,
                mailbox_ids=tuple(members[row.id]),
                id=row.id,
            )
            for row in rows
        ]

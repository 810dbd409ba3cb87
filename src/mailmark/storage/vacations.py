"""Vacation responders: each mailbox's settings and the senders it answered lately."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa

from mailmark.core.model import VacationSettings
from mailmark.storage.sql import Repository
from mailmark.storage.tables import vacation_replies, vacations


class SqlVacations(Repository):
    async def get(self, mailbox_id: int) -> VacationSettings | None:
        row = (
            await self._conn.execute(vacations.select().where(vacations.c.mailbox_id == mailbox_id))
        ).first()
        return VacationSettings(**row._mapping) if row is not None else None

    async def put(self, settings: VacationSettings) -> None:
        values = asdict(settings)
        updated = await self._conn.execute(
            vacations.update().where(vacations.c.mailbox_id == settings.mailbox_id).values(**values)
        )
        if not updated.rowcount:
            await self._conn.execute(vacations.insert().values(**values))

    async def silent_until(self, mailbox_id: int, key: str) -> datetime | None:
        query = sa.select(vacation_replies.c.until).where(
            vacation_replies.c.mailbox_id == mailbox_id, vacation_replies.c.key == key
        )
        until: datetime | None = (await self._conn.execute(query)).scalar_one_or_none()
        return until

    async def claim_reply(self, mailbox_id: int, key: str, now: datetime, until: datetime) -> bool:
        # Each statement is atomic on its own: of two deliveries racing for the same sender,
        # only one renews an expired row or inserts the missing one.
        renewed = await self._conn.execute(
            vacation_replies.update()
            .where(
                vacation_replies.c.mailbox_id == mailbox_id,
                vacation_replies.c.key == key,
                vacation_replies.c.until <= now,
            )
            .values(until=until)
        )
        if renewed.rowcount:
            return True
        inserted = await self._conn.execute(
            self._dialect.insert_or_ignore(vacation_replies).values(
                mailbox_id=mailbox_id, key=key, until=until
            )
        )
        return bool(inserted.rowcount)

    async def prune_replies(self, now: datetime) -> int:
        result = await self._conn.execute(
            vacation_replies.delete().where(vacation_replies.c.until <= now)
        )
        return int(result.rowcount or 0)

    async def count_replies(self, mailbox_id: int) -> int:
        query = sa.select(sa.func.count()).where(vacation_replies.c.mailbox_id == mailbox_id)
        return int((await self._conn.execute(query)).scalar_one())

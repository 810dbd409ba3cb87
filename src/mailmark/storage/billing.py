"""Monthly usage rows and the payment provider's raw webhook events."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from mailmark.storage.sql import Repository
from mailmark.storage.tables import account_usage, billing_events


class SqlUsage(Repository):
    async def add(self, account_id: int, month: str, emails: int) -> None:
        # UPDATE first (the usual case: the month's row exists); a first send of the month
        # inserts it, and one racing the same insert adds to the row the other created.
        for _ in range(2):
            if await self._increment(account_id, month, emails):
                return
            inserted = await self._conn.execute(
                self._dialect.insert_or_ignore(account_usage).values(
                    account_id=account_id, month=month, emails_sent=emails
                )
            )
            if inserted.rowcount:
                return
        raise RuntimeError(f"usage row of account {account_id} for {month} could not be written")

    async def _increment(self, account_id: int, month: str, emails: int) -> bool:
        changed = await self._conn.execute(
            account_usage.update()
            .where(account_usage.c.account_id == account_id, account_usage.c.month == month)
            .values(emails_sent=account_usage.c.emails_sent + emails)
        )
        return bool(changed.rowcount)

    async def sent_in(self, account_id: int, month: str) -> int:
        query = sa.select(account_usage.c.emails_sent).where(
            account_usage.c.account_id == account_id, account_usage.c.month == month
        )
        return int((await self._conn.execute(query)).scalar() or 0)


class SqlBillingEvents(Repository):
    async def add(
        self, event_id: str, event_type: str, occurred_at: datetime, now: datetime, payload: str
    ) -> bool:
        inserted = await self._conn.execute(
            self._dialect.insert_or_ignore(billing_events).values(
                event_id=event_id,
                event_type=event_type,
                occurred_at=occurred_at,
                received_at=now,
                payload=payload,
                outcome="received",
            )
        )
        return bool(inserted.rowcount)

    async def set_outcome(self, event_id: str, outcome: str) -> None:
        await self._conn.execute(
            billing_events.update()
            .where(billing_events.c.event_id == event_id)
            .values(outcome=outcome[:200])
        )

    async def outcomes(self) -> list[tuple[str, str, str]]:
        query = sa.select(
            billing_events.c.event_id, billing_events.c.event_type, billing_events.c.outcome
        ).order_by(billing_events.c.id)
        return [(row[0], row[1], row[2]) for row in await self._conn.execute(query)]

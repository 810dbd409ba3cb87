"""Events: what happened to an account's mail, oldest first by id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from mailmark.core.ports import NewEvent
from mailmark.core.states import WebhookDeliveryStatus
from mailmark.storage.sql import Repository, chunks
from mailmark.storage.tables import events, webhook_deliveries

_EVENT_COLUMNS = ("account_id", "type", "payload", "created_at", "outbound_id")


class SqlEvents(Repository):
    async def add_many(self, new_events: Sequence[NewEvent]) -> list[int]:
        rows = [{name: getattr(event, name) for name in _EVENT_COLUMNS} for event in new_events]
        return await self._dialect.insert_many(self._conn, events, rows)

    async def delete_created_before(self, before: datetime, limit: int) -> int:
        # An event a webhook still has to be told about stays until it is delivered or given up.
        still_posting = sa.exists().where(
            webhook_deliveries.c.event_id == events.c.id,
            webhook_deliveries.c.status == WebhookDeliveryStatus.PENDING,
        )
        oldest = (
            sa.select(events.c.id)
            .where(events.c.created_at < before, ~still_posting)
            .order_by(events.c.created_at)
            .limit(limit)
        )
        ids = list((await self._conn.execute(oldest)).scalars())
        if ids:
            # Their finished webhook deliveries go with them (ON DELETE CASCADE).
            await self._conn.execute(events.delete().where(events.c.id.in_(ids)))
        return len(ids)

    async def first_and_last(
        self, outbound_ids: Sequence[int], types: Sequence[str]
    ) -> dict[tuple[int, str], tuple[datetime, datetime]]:
        found: dict[tuple[int, str], tuple[datetime, datetime]] = {}
        for chunk in chunks(sorted(set(outbound_ids))):
            query = (
                sa.select(
                    events.c.outbound_id,
                    events.c.type,
                    sa.func.min(events.c.created_at),
                    sa.func.max(events.c.created_at),
                )
                .where(events.c.outbound_id.in_(chunk), events.c.type.in_(list(types)))
                .group_by(events.c.outbound_id, events.c.type)
            )
            for outbound_id, kind, first, last in await self._conn.execute(query):
                found[(outbound_id, kind)] = (first, last)
        return found

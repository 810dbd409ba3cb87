"""Events: what happened to an account's mail, oldest first by id."""

from __future__ import annotations

from collections.abc import Sequence

from mailmark.core.ports import NewEvent
from mailmark.storage.sql import Repository
from mailmark.storage.tables import events

_EVENT_COLUMNS = ("account_id", "type", "payload", "created_at", "outbound_id")


class SqlEvents(Repository):
    async def add_many(self, new_events: Sequence[NewEvent]) -> list[int]:
        rows = [{name: getattr(event, name) for name in _EVENT_COLUMNS} for event in new_events]
        return await self._dialect.insert_many(self._conn, events, rows)

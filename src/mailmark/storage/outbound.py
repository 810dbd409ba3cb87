"""Outbound messages: one row per message sent, shared by its recipients' queue rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import sqlalchemy as sa

from mailmark.core.model import OutboundMessage
from mailmark.storage.sql import Repository, chunks, row_values
from mailmark.storage.tables import outbound_messages, outbound_tags


class SqlOutbound(Repository):
    async def add(self, message: OutboundMessage) -> OutboundMessage:
        new_id = await self._insert(outbound_messages, row_values(message))
        return OutboundMessage(**{**asdict(message), "id": new_id})

    async def add_many(self, new_messages: Sequence[OutboundMessage]) -> list[int]:
        rows = [row_values(message) for message in new_messages]
        return await self._dialect.insert_many(self._conn, outbound_messages, rows)

    async def add_tags(self, tags: Sequence[tuple[int, int, str]]) -> None:
        if tags:
            await self._conn.execute(
                outbound_tags.insert(),
                [{"outbound_id": o, "domain_id": d, "tag": tag} for o, d, tag in tags],
            )

    async def get(self, outbound_id: int) -> OutboundMessage | None:
        query = outbound_messages.select().where(outbound_messages.c.id == outbound_id)
        row = (await self._conn.execute(query)).first()
        return OutboundMessage(**row._mapping) if row else None

    async def get_many(self, outbound_ids: Sequence[int]) -> dict[int, OutboundMessage]:
        found: dict[int, OutboundMessage] = {}
        for chunk in chunks(sorted(set(outbound_ids))):
            query = outbound_messages.select().where(outbound_messages.c.id.in_(chunk))
            for row in await self._conn.execute(query):
                found[row.id] = OutboundMessage(**row._mapping)
        return found

    async def get_by_token(self, token: str) -> OutboundMessage | None:
        query = outbound_messages.select().where(outbound_messages.c.token == token.lower())
        row = (await self._conn.execute(query)).first()
        return OutboundMessage(**row._mapping) if row else None

    async def domains_of(self, outbound_ids: Sequence[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        for chunk in chunks(sorted(set(outbound_ids))):
            rows = await self._conn.execute(
                sa.select(outbound_messages.c.id, outbound_messages.c.domain_id).where(
                    outbound_messages.c.id.in_(chunk)
                )
            )
            found.update({row.id: row.domain_id for row in rows})
        return found

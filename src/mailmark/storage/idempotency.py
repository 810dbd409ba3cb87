"""Idempotency keys: the stored answer to a request sent again with the same key."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa

from mailmark.core.model import StoredResponse
from mailmark.storage.sql import Repository
from mailmark.storage.tables import idempotency_keys


class SqlIdempotencyKeys(Repository):
    async def get(self, domain_id: int, key: str) -> StoredResponse | None:
        query = sa.select(*[c for c in idempotency_keys.c if c.name != "id"]).where(
            idempotency_keys.c.domain_id == domain_id, idempotency_keys.c.key == key
        )
        row = (await self._conn.execute(query)).first()
        return StoredResponse(**row._mapping) if row else None

    async def add(self, response: StoredResponse) -> bool:
        query = (
            self._dialect.insert_or_ignore(idempotency_keys)
            .values(**asdict(response))
            .returning(idempotency_keys.c.id)
        )
        return (await self._conn.execute(query)).first() is not None

    async def delete_expired(self, domain_id: int, key: str, before: datetime) -> None:
        await self._conn.execute(
            idempotency_keys.delete().where(
                idempotency_keys.c.domain_id == domain_id,
                idempotency_keys.c.key == key,
                idempotency_keys.c.created_at < before,
            )
        )

    async def delete_created_before(self, before: datetime, limit: int) -> int:
        oldest = (
            sa.select(idempotency_keys.c.id)
            .where(idempotency_keys.c.created_at < before)
            .order_by(idempotency_keys.c.created_at)
            .limit(limit)
        )
        ids = list((await self._conn.execute(oldest)).scalars())
        if ids:
            await self._conn.execute(
                idempotency_keys.delete().where(idempotency_keys.c.id.in_(ids))
            )
        return len(ids)

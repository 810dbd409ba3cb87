"""Suppressions: addresses a sending domain no longer mails."""

from __future__ import annotations

from collections.abc import Sequence

from mailmark.core.model import Suppression
from mailmark.storage.sql import Repository, chunks, row_values
from mailmark.storage.tables import suppressions


class SqlSuppressions(Repository):
    async def add(self, suppression: Suppression) -> None:
        await self._conn.execute(
            self._dialect.insert_or_ignore(suppressions).values(**row_values(suppression))
        )

    async def find(self, domain_id: int, addresses: Sequence[str]) -> list[Suppression]:
        found: list[Suppression] = []
        for chunk in chunks(sorted(set(addresses))):
            query = suppressions.select().where(
                suppressions.c.domain_id == domain_id, suppressions.c.address.in_(chunk)
            )
            found.extend(Suppression(**row._mapping) for row in await self._conn.execute(query))
        return found

    async def list_for_domain(
        self, domain_id: int, after_id: int | None, limit: int
    ) -> list[Suppression]:
        query = (
            suppressions.select()
            .where(suppressions.c.domain_id == domain_id)
            .order_by(suppressions.c.id)
            .limit(limit)
        )
        if after_id is not None:
            query = query.where(suppressions.c.id > after_id)
        return [Suppression(**row._mapping) for row in await self._conn.execute(query)]

    async def delete(self, domain_id: int, address: str) -> bool:
        result = await self._conn.execute(
            suppressions.delete().where(
                suppressions.c.domain_id == domain_id, suppressions.c.address == address
            )
        )
        return bool(result.rowcount)

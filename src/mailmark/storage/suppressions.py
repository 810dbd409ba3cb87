"""Suppressions: addresses a sending domain no longer mails."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from mailmark.core.model import Suppression
from mailmark.storage.sql import Repository, chunks, row_values
from mailmark.storage.tables import account_suppressions, suppressions


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

    async def add_for_account(
        self, account_id: int, address: str, reason: str, created_at: datetime
    ) -> None:
        await self._conn.execute(
            self._dialect.insert_or_ignore(account_suppressions).values(
                account_id=account_id, address=address, reason=reason, created_at=created_at
            )
        )

    async def find_for_account(self, account_id: int, addresses: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(sorted(set(addresses))):
            query = sa.select(account_suppressions.c.address).where(
                account_suppressions.c.account_id == account_id,
                account_suppressions.c.address.in_(chunk),
            )
            found.update(row.address for row in await self._conn.execute(query))
        return found

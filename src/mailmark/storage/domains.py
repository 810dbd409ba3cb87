"""Domains and their DKIM keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa

from mailmark.core.model import DkimKey, Domain
from mailmark.core.states import DkimKeyState
from mailmark.storage.sql import Repository, row_values
from mailmark.storage.tables import dkim_keys, domains


class SqlDomains(Repository):
    async def add(self, domain: Domain) -> Domain:
        new_id = await self._insert(domains, row_values(domain))
        return Domain(**{**asdict(domain), "id": new_id})

    async def get_by_name(self, name: str) -> Domain | None:
        row = (await self._conn.execute(domains.select().where(domains.c.name == name))).first()
        return Domain(**row._mapping) if row else None

    async def count_for_account(self, account_id: int) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(domains)
            .where(domains.c.account_id == account_id)
        )
        return int((await self._conn.execute(query)).scalar_one())

    async def set_verified(self, domain_id: int, verified_at: datetime | None) -> None:
        await self._conn.execute(
            domains.update().where(domains.c.id == domain_id).values(verified_at=verified_at)
        )

    async def set_return_path_published(self, domain_id: int, published: bool) -> None:
        await self._conn.execute(
            domains.update()
            .where(domains.c.id == domain_id)
            .values(return_path_published=published)
        )

    async def add_dkim_key(self, key: DkimKey) -> DkimKey:
        new_id = await self._insert(dkim_keys, row_values(key))
        return DkimKey(**{**asdict(key), "id": new_id})

    async def dkim_keys(self, domain_id: int, states: Sequence[str]) -> list[DkimKey]:
        query = (
            dkim_keys.select()
            .where(dkim_keys.c.domain_id == domain_id, dkim_keys.c.state.in_(states))
            .order_by(dkim_keys.c.id)
        )
        return [DkimKey(**row._mapping) for row in await self._conn.execute(query)]

    async def set_dkim_state(self, key_id: int, state: DkimKeyState) -> None:
        await self._conn.execute(
            dkim_keys.update().where(dkim_keys.c.id == key_id).values(state=state)
        )

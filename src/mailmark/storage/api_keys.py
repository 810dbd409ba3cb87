"""API keys: `dm_live_…` keys scoped to one domain, found by their prefix."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailmark.core.model import ApiKey
from mailmark.storage.sql import Repository
from mailmark.storage.tables import api_keys, domains


def _api_key_query() -> sa.Select[Any]:
    return sa.select(
        *api_keys.c, domains.c.name.label("domain_name"), domains.c.account_id.label("account_id")
    ).select_from(api_keys.join(domains))


class SqlApiKeys(Repository):
    async def add(self, key: ApiKey) -> ApiKey:
        values = asdict(key)
        del values["id"], values["domain_name"], values["account_id"]
        new_id = await self._insert(api_keys, values)
        return ApiKey(**{**asdict(key), "id": new_id})

    async def get(self, key_id: int) -> ApiKey | None:
        row = (await self._conn.execute(_api_key_query().where(api_keys.c.id == key_id))).first()
        return ApiKey(**row._mapping) if row else None

    async def get_by_prefix(self, prefix: str) -> ApiKey | None:
        row = (
            await self._conn.execute(_api_key_query().where(api_keys.c.prefix == prefix))
        ).first()
        return ApiKey(**row._mapping) if row else None

    async def list_for_domain(self, domain_id: int) -> list[ApiKey]:
        query = _api_key_query().where(api_keys.c.domain_id == domain_id).order_by(api_keys.c.id)
        return [ApiKey(**row._mapping) for row in await self._conn.execute(query)]

    async def revoke(self, key_id: int, at: datetime) -> None:
        await self._conn.execute(
            api_keys.update()
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    async def touch(self, key_id: int, at: datetime) -> None:
        await self._conn.execute(
            api_keys.update().where(api_keys.c.id == key_id).values(last_used_at=at)
        )

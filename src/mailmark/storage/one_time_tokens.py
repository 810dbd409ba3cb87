"""Single-use links (first-run setup, password reset, invitation), found by their SHA-256."""

from __future__ import annotations

from datetime import datetime

from mailmark.core.model import OneTimeToken
from mailmark.storage.sql import Repository, row_values
from mailmark.storage.tables import one_time_tokens


class SqlOneTimeTokens(Repository):
    async def add(self, token: OneTimeToken) -> OneTimeToken:
        new_id = await self._insert(one_time_tokens, row_values(token))
        return OneTimeToken(**{**row_values(token), "id": new_id})

    async def find(self, purpose: str, token_hash: str) -> OneTimeToken | None:
        query = one_time_tokens.select().where(
            one_time_tokens.c.purpose == purpose, one_time_tokens.c.token_hash == token_hash
        )
        row = (await self._conn.execute(query)).first()
        return OneTimeToken(**row._mapping) if row else None

    async def use(self, token_id: int, at: datetime) -> bool:
        """Spend the token; False when it was spent already (by a concurrent request, say)."""
        result = await self._conn.execute(
            one_time_tokens.update()
            .where(one_time_tokens.c.id == token_id, one_time_tokens.c.used_at.is_(None))
            .values(used_at=at)
        )
        return result.rowcount == 1

    async def spend_unused(self, purpose: str, at: datetime, user_id: int | None = None) -> None:
        """Make every unused token of this purpose (and user, when given) unusable."""
        query = one_time_tokens.update().where(
            one_time_tokens.c.purpose == purpose, one_time_tokens.c.used_at.is_(None)
        )
        if user_id is not None:
            query = query.where(one_time_tokens.c.user_id == user_id)
        await self._conn.execute(query.values(used_at=at))

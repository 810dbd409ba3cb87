"""Two-factor recovery codes, kept as SHA-256 and spent once each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from mailmark.storage.sql import Repository
from mailmark.storage.tables import recovery_codes


class SqlRecoveryCodes(Repository):
    async def replace(self, user_id: int, code_hashes: Sequence[str]) -> None:
        """The user's codes are exactly these, all unused (earlier ones stop working)."""
        await self._conn.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))
        if code_hashes:
            await self._conn.execute(
                recovery_codes.insert(),
                [{"user_id": user_id, "code_hash": h, "used_at": None} for h in code_hashes],
            )

    async def use(self, user_id: int, code_hash: str, at: datetime) -> bool:
        """Spend the code; False when the user has no such unused code."""
        result = await self._conn.execute(
            recovery_codes.update()
            .where(
                recovery_codes.c.user_id == user_id,
                recovery_codes.c.code_hash == code_hash,
                recovery_codes.c.used_at.is_(None),
            )
            .values(used_at=at)
        )
        return result.rowcount == 1

    async def count_unused(self, user_id: int) -> int:
        query = sa.select(sa.func.count()).where(
            recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None)
        )
        return int((await self._conn.execute(query)).scalar_one())

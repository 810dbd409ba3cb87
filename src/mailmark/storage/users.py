"""Users: the people who sign in to an account."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from mailmark.core.model import User
from mailmark.storage.sql import Repository, row_values
from mailmark.storage.tables import users


class SqlUsers(Repository):
    async def add(self, user: User) -> User:
        new_id = await self._insert(users, row_values(user))
        return User(**{**row_values(user), "id": new_id})

    async def get(self, user_id: int) -> User | None:
        row = (await self._conn.execute(users.select().where(users.c.id == user_id))).first()
        return User(**row._mapping) if row else None

    async def get_by_email(self, email: str) -> User | None:
        row = (await self._conn.execute(users.select().where(users.c.email == email))).first()
        return User(**row._mapping) if row else None

    async def list_for_account(self, account_id: int) -> list[User]:
        query = users.select().where(users.c.account_id == account_id).order_by(users.c.id)
        return [User(**row._mapping) for row in await self._conn.execute(query)]

    async def any_owner(self) -> bool:
        query = sa.select(users.c.id).where(users.c.role == "owner").limit(1)
        return (await self._conn.execute(query)).first() is not None

    async def set_password(self, user_id: int, password_hash: str, at: datetime) -> None:
        await self._conn.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(password_hash=password_hash, password_changed_at=at)
        )

    async def replace_password_hash(self, user_id: int, old: str, new: str) -> bool:
        # Only while the hash is still `old`: a password changed meanwhile is never overwritten.
        result = await self._conn.execute(
            users.update()
            .where(users.c.id == user_id, users.c.password_hash == old)
            .values(password_hash=new)
        )
        return bool(result.rowcount)

    async def set_name(self, user_id: int, name: str) -> None:
        await self._conn.execute(users.update().where(users.c.id == user_id).values(name=name))

    async def set_role(self, user_id: int, role: str) -> None:
        await self._conn.execute(users.update().where(users.c.id == user_id).values(role=role))

    async def set_totp(self, user_id: int, secret: str | None, enabled_at: datetime | None) -> None:
        await self._conn.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(totp_secret=secret, totp_enabled_at=enabled_at, totp_last_step=None)
        )

    async def use_totp_step(self, user_id: int, step: int) -> bool:
        """Record that a code of time step `step` was used; False when one of that step or a
        later one was used already (a replayed code)."""
        result = await self._conn.execute(
            users.update()
            .where(
                users.c.id == user_id,
                sa.or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step),
            )
            .values(totp_last_step=step)
        )
        return result.rowcount == 1

    async def delete(self, user_id: int) -> None:
        await self._conn.execute(users.delete().where(users.c.id == user_id))

"""Users: the people who sign in to an account."""

from __future__ import annotations

from dataclasses import asdict

from mailmark.core.model import User
from mailmark.storage.sql import Repository, row_values
from mailmark.storage.tables import users


class SqlUsers(Repository):
    async def add(self, user: User) -> User:
        new_id = await self._insert(users, row_values(user))
        return User(**{**asdict(user), "id": new_id})

    async def get(self, user_id: int) -> User | None:
        row = (await self._conn.execute(users.select().where(users.c.id == user_id))).first()
        return User(**row._mapping) if row else None

    async def get_by_email(self, email: str) -> User | None:
        row = (await self._conn.execute(users.select().where(users.c.email == email))).first()
        return User(**row._mapping) if row else None

"""Web sessions: signed-in browsers, found by the SHA-256 of their cookie's token."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from mailmark.core.model import User, UserSession
from mailmark.storage.sql import Repository, row_values
from mailmark.storage.tables import accounts, sessions, users

_USER_COLUMNS = [column.name for column in users.c]


class SqlSessions(Repository):
    async def add(self, session: UserSession) -> UserSession:
        new_id = await self._insert(sessions, row_values(session))
        return UserSession(**{**row_values(session), "id": new_id})

    async def get(self, session_id: int) -> UserSession | None:
        query = sessions.select().where(sessions.c.id == session_id)
        row = (await self._conn.execute(query)).first()
        return UserSession(**row._mapping) if row else None

    async def find(self, token_hash: str) -> tuple[UserSession, User, str] | None:
        """The session with this token hash, its user and the user's account name: one query,
        as every signed-in request asks it."""
        query = (
            sa.select(
                *sessions.c,
                *(users.c[name].label(f"u_{name}") for name in _USER_COLUMNS),
                accounts.c.name.label("account_name"),
            )
            .select_from(sessions.join(users).join(accounts, users.c.account_id == accounts.c.id))
            .where(sessions.c.token_hash == token_hash)
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        values = row._mapping
        session = UserSession(**{column.name: values[column.name] for column in sessions.c})
        user = User(**{name: values[f"u_{name}"] for name in _USER_COLUMNS})
        return session, user, str(values["account_name"])

    async def list_for_user(self, user_id: int) -> list[UserSession]:
        query = (
            sessions.select()
            .where(sessions.c.user_id == user_id)
            .order_by(sessions.c.last_seen_at.desc(), sessions.c.id.desc())
        )
        return [UserSession(**row._mapping) for row in await self._conn.execute(query)]

    async def touch(self, session_id: int, at: datetime) -> None:
        await self._conn.execute(
            sessions.update().where(sessions.c.id == session_id).values(last_seen_at=at)
        )

    async def delete(self, session_id: int) -> None:
        await self._conn.execute(sessions.delete().where(sessions.c.id == session_id))

    async def delete_for_user(self, user_id: int, *, keep: int | None = None) -> int:
        """End every session of the user (but `keep`); how many ended."""
        query = sessions.delete().where(sessions.c.user_id == user_id)
        if keep is not None:
            query = query.where(sessions.c.id != keep)
        return (await self._conn.execute(query)).rowcount

    async def delete_expired(self, now: datetime, idle_since: datetime) -> None:
        """Forget sessions past their absolute expiry or unused since `idle_since`."""
        await self._conn.execute(
            sessions.delete().where(
                sa.or_(sessions.c.expires_at <= now, sessions.c.last_seen_at <= idle_since)
            )
        )

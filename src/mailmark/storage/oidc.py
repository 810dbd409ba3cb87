"""OpenID Connect: identities bound to users, and sign-ins waiting for the provider's answer."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from mailmark.core.model import OidcLogin
from mailmark.storage.sql import Repository, row_values
from mailmark.storage.tables import oidc_identities, oidc_logins


class SqlOidcIdentities(Repository):
    async def user_id_for(self, provider: str, subject: str) -> int | None:
        query = sa.select(oidc_identities.c.user_id).where(
            oidc_identities.c.provider == provider, oidc_identities.c.subject == subject
        )
        user_id = (await self._conn.execute(query)).scalar_one_or_none()
        return int(user_id) if user_id is not None else None

    async def subject_of(self, provider: str, user_id: int) -> str | None:
        query = sa.select(oidc_identities.c.subject).where(
            oidc_identities.c.provider == provider, oidc_identities.c.user_id == user_id
        )
        subject = (await self._conn.execute(query.limit(1))).scalar_one_or_none()
        return str(subject) if subject is not None else None

    async def link(self, provider: str, subject: str, user_id: int, now: datetime) -> None:
        await self._insert(
            oidc_identities,
            {
                "provider": provider,
                "subject": subject,
                "user_id": user_id,
                "created_at": now,
                "last_used_at": now,
            },
        )

    async def touch(self, provider: str, subject: str, now: datetime) -> None:
        await self._conn.execute(
            oidc_identities.update()
            .where(oidc_identities.c.provider == provider, oidc_identities.c.subject == subject)
            .values(last_used_at=now)
        )


class SqlOidcLogins(Repository):
    async def add(self, login: OidcLogin) -> None:
        await self._insert(oidc_logins, row_values(login))

    async def take(self, state_hash: str, browser_hash: str) -> OidcLogin | None:
        """The sign-in with this state started by this browser, removed: a state is good for
        one answer only."""
        row = (
            await self._conn.execute(
                oidc_logins.delete()
                .where(
                    oidc_logins.c.state_hash == state_hash,
                    oidc_logins.c.browser_hash == browser_hash,
                )
                .returning(*oidc_logins.c)
            )
        ).first()
        return OidcLogin(**row._mapping) if row else None

    async def delete_expired(self, now: datetime) -> None:
        await self._conn.execute(oidc_logins.delete().where(oidc_logins.c.expires_at <= now))

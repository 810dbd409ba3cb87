"""Repositories behind the REST API: API keys, sender groups, idempotency keys, sent emails."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mailmark.core.model import (
    ApiKey,
    EmailEvent,
    EmailRecipient,
    SenderGroup,
    SentEmail,
    StoredResponse,
)
from mailmark.storage.tables import (
    api_keys,
    deliveries,
    domains,
    events,
    idempotency_keys,
    outbound_messages,
    sender_group_mailboxes,
    sender_groups,
)


class _Repository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    def _insert(self) -> Any:
        return postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert


def _api_key_query() -> sa.Select[Any]:
    return sa.select(
        *api_keys.c, domains.c.name.label("domain_name"), domains.c.account_id.label("account_id")
    ).select_from(api_keys.join(domains))


class SqlApiKeys(_Repository):
    async def add(self, key: ApiKey) -> ApiKey:
        values = asdict(key)
        del values["id"], values["domain_name"], values["account_id"]
        query = api_keys.insert().values(**values).returning(api_keys.c.id)
        new_id = int((await self._conn.execute(query)).scalar_one())
        return ApiKey(**{**asdict(key), "id": new_id})

    async def get(self, key_id: int) -> ApiKey | None:
        row = (await self._conn.execute(_api_key_query().where(api_keys.c.id == key_id))).first()
        return ApiKey(**row._mapping) if row else None

    async def get_by_prefix(self, prefix: str) -> ApiKey | None:
        row = (await self._conn.execute(_api_key_query().where(api_keys.c.prefix == prefix))).first()
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


class SqlSenderGroups(_Repository):
    async def add(self, group: SenderGroup) -> SenderGroup:
        query = (
            sender_groups.insert()
            .values(**self._row(group))
            .returning(sender_groups.c.id)
        )
        new_id = int((await self._conn.execute(query)).scalar_one())
        await self._set_mailboxes(new_id, group.mailbox_ids)
        return SenderGroup(**{**asdict(group), "id": new_id})

    async def get(self, domain_id: int, group_id: int) -> SenderGroup | None:
        found = await self._select(
            sa.and_(sender_groups.c.domain_id == domain_id, sender_groups.c.id == group_id)
        )
        return found[0] if found else None

    async def list_for_domain(self, domain_id: int) -> list[SenderGroup]:
        return await self._select(sender_groups.c.domain_id == domain_id)

    async def update(self, group: SenderGroup) -> None:
        assert group.id is not None
        await self._conn.execute(
            sender_groups.update()
            .where(sender_groups.c.id == group.id, sender_groups.c.domain_id == group.domain_id)
            .values(**self._row(group))
        )
        await self._conn.execute(
            sender_group_mailboxes.delete().where(sender_group_mailboxes.c.group_id == group.id)
        )
        await self._set_mailboxes(group.id, group.mailbox_ids)

    async def delete(self, domain_id: int, group_id: int) -> bool:
        result = await self._conn.execute(
            sender_groups.delete().where(
                sender_groups.c.id == group_id, sender_groups.c.domain_id == domain_id
            )
        )
        return bool(result.rowcount)

    @staticmethod
    def _row(group: SenderGroup) -> dict[str, Any]:
        return {
            "domain_id": group.domain_id,
            "name": group.name,
            "all_mailboxes": group.all_mailboxes,
            "emails": list(group.emails),
            "created_at": group.created_at,
            "updated_at": group.updated_at,
        }

    async def _set_mailboxes(self, group_id: int, mailbox_ids: Sequence[int]) -> None:
        if mailbox_ids:
            await self._conn.execute(
                sender_group_mailboxes.insert(),
                [{"group_id": group_id, "mailbox_id": m} for m in mailbox_ids],
            )

    async def _select(self, where: sa.ColumnElement[bool]) -> list[SenderGroup]:
        rows = (await self._conn.execute(sender_groups.select().where(where).order_by(sender_groups.c.id))).all()
        if not rows:
            return []
        members: dict[int, list[int]] = {row.id: [] for row in rows}
        query = (
            sa.select(sender_group_mailboxes.c.group_id, sender_group_mailboxes.c.mailbox_id)
            .where(sender_group_mailboxes.c.group_id.in_(list(members)))
            .order_by(sender_group_mailboxes.c.mailbox_id)
        )
        for group_id, mailbox_id in await self._conn.execute(query):
            members[group_id].append(mailbox_id)
        return [
            SenderGroup(
                domain_id=row.domain_id,
                name=row.name,
                all_mailboxes=row.all_mailboxes,
                emails=tuple(row.emails),
                created_at=row.created_at,
                updated_at=row.updated_at,
                mailbox_ids=tuple(members[row.id]),
                id=row.id,
            )
            for row in rows
        ]


class SqlIdempotencyKeys(_Repository):
    async def get(self, domain_id: int, key: str) -> StoredResponse | None:
        query = sa.select(*[c for c in idempotency_keys.c if c.name != "id"]).where(
            idempotency_keys.c.domain_id == domain_id, idempotency_keys.c.key == key
        )
        row = (await self._conn.execute(query)).first()
        return StoredResponse(**row._mapping) if row else None

    async def add(self, response: StoredResponse) -> bool:
        query = (
            self._insert()(idempotency_keys)
            .values(**asdict(response))
            .on_conflict_do_nothing()
            .returning(idempotency_keys.c.id)
        )
        return (await self._conn.execute(query)).first() is not None

    async def delete_expired(self, domain_id: int, key: str, before: datetime) -> None:
        await self._conn.execute(
            idempotency_keys.delete().where(
                idempotency_keys.c.domain_id == domain_id,
                idempotency_keys.c.key == key,
                idempotency_keys.c.created_at < before,
            )
        )


class SqlSentEmails(_Repository):
    async def list_for_domain(
        self,
        domain_id: int,
        *,
        before_id: int | None,
        limit: int,
        status: str | None = None,
        from_addr: str | None = None,
        batch_id: str | None = None,
    ) -> list[SentEmail]:
        query = outbound_messages.select().where(outbound_messages.c.domain_id == domain_id)
        if before_id is not None:
            query = query.where(outbound_messages.c.id < before_id)
        if from_addr is not None:
            query = query.where(sa.func.lower(outbound_messages.c.from_addr) == from_addr.lower())
        if batch_id is not None:
            query = query.where(outbound_messages.c.batch_id == batch_id)
        if status is not None:
            query = query.where(
                sa.exists().where(
                    deliveries.c.outbound_id == outbound_messages.c.id,
                    deliveries.c.status == status,
                )
            )
        rows = (await self._conn.execute(query.order_by(outbound_messages.c.id.desc()).limit(limit))).all()
        return await self._with_recipients(rows)

    async def get(self, domain_id: int, email_id: int) -> SentEmail | None:
        query = outbound_messages.select().where(
            outbound_messages.c.domain_id == domain_id, outbound_messages.c.id == email_id
        )
        found = await self._with_recipients((await self._conn.execute(query)).all())
        return found[0] if found else None

    async def get_by_message_id(self, domain_id: int, message_id: str) -> SentEmail | None:
        query = (
            outbound_messages.select()
            .where(
                outbound_messages.c.domain_id == domain_id,
                outbound_messages.c.message_id_header == message_id,
            )
            .order_by(outbound_messages.c.id.desc())
            .limit(1)
        )
        found = await self._with_recipients((await self._conn.execute(query)).all())
        return found[0] if found else None

    async def events(self, outbound_id: int, limit: int) -> list[EmailEvent]:
        query = (
            sa.select(events.c.type, events.c.created_at, events.c.payload)
            .where(events.c.outbound_id == outbound_id)
            .order_by(events.c.id)
            .limit(limit)
        )
        return [
            EmailEvent(row.type, row.created_at, dict(row.payload))
            for row in await self._conn.execute(query)
        ]

    async def _with_recipients(self, rows: Sequence[sa.Row[Any]]) -> list[SentEmail]:
        if not rows:
            return []
        recipients: dict[int, list[EmailRecipient]] = {row.id: [] for row in rows}
        scheduled: dict[int, datetime] = {}
        query = (
            sa.select(
                deliveries.c.outbound_id,
                deliveries.c.recipient,
                deliveries.c.status,
                deliveries.c.attempts,
                deliveries.c.updated_at,
                deliveries.c.last_code,
                deliveries.c.last_status,
                deliveries.c.last_reply,
                deliveries.c.next_attempt_at,
                deliveries.c.created_at,
            )
            .where(deliveries.c.outbound_id.in_(list(recipients)))
            .order_by(deliveries.c.id)
        )
        for row in await self._conn.execute(query):
            recipients[row.outbound_id].append(
                EmailRecipient(
                    row.recipient, row.status, row.attempts, row.updated_at,
                    row.last_code, row.last_status, row.last_reply,
                )
            )
            if row.attempts == 0 and row.next_attempt_at > row.created_at:
                scheduled[row.outbound_id] = row.next_attempt_at
        return [
            SentEmail(
                id=row.id,
                message_id=row.message_id_header,
                from_addr=row.from_addr,
                subject=row.subject,
                source=row.source,
                batch_id=row.batch_id,
                created_at=row.created_at,
                recipients=tuple(recipients[row.id]),
                scheduled_at=scheduled.get(row.id),
            )
            for row in rows
        ]

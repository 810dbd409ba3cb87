"""Sent emails: the read side of outbound messages, as the API lists a domain's emails."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailmark.core.model import EmailEvent, EmailRecipient, SentEmail
from mailmark.core.states import DeliveryStatus
from mailmark.storage.sql import Repository
from mailmark.storage.tables import deliveries, events, outbound_messages, outbound_tags


class SqlSentEmails(Repository):
    async def list_for_domain(
        self,
        domain_id: int,
        *,
        before_id: int | None,
        limit: int,
        status: str | None = None,
        from_addr: str | None = None,
        batch_id: str | None = None,
        tag: str | None = None,
    ) -> list[SentEmail]:
        query = outbound_messages.select().where(outbound_messages.c.domain_id == domain_id)
        if before_id is not None:
            query = query.where(outbound_messages.c.id < before_id)
        if from_addr is not None:
            query = query.where(sa.func.lower(outbound_messages.c.from_addr) == from_addr.lower())
        if batch_id is not None:
            query = query.where(outbound_messages.c.batch_id == batch_id)
        if tag is not None:
            # Driven by the (domain_id, tag, outbound_id) index, so a rare tag is found without
            # walking the domain's other emails.
            query = query.where(
                outbound_messages.c.id.in_(
                    sa.select(outbound_tags.c.outbound_id).where(
                        outbound_tags.c.domain_id == domain_id, outbound_tags.c.tag == tag
                    )
                )
            )
        if status is not None:
            query = query.where(
                sa.exists().where(
                    deliveries.c.outbound_id == outbound_messages.c.id,
                    deliveries.c.status == status,
                )
            )
        rows = (
            await self._conn.execute(query.order_by(outbound_messages.c.id.desc()).limit(limit))
        ).all()
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
                    row.recipient,
                    row.status,
                    row.attempts,
                    row.updated_at,
                    row.last_code,
                    row.last_status,
                    row.last_reply,
                )
            )
            # A held row's next attempt is only when its account is looked at again.
            held = row.status == DeliveryStatus.HELD
            if row.attempts == 0 and row.next_attempt_at > row.created_at and not held:
                scheduled[row.outbound_id] = row.next_attempt_at
        tags: dict[int, list[str]] = {}
        tag_rows = await self._conn.execute(
            sa.select(outbound_tags.c.outbound_id, outbound_tags.c.tag)
            .where(outbound_tags.c.outbound_id.in_(list(recipients)))
            .order_by(outbound_tags.c.outbound_id, outbound_tags.c.tag)
        )
        for tagged in tag_rows:
            tags.setdefault(tagged.outbound_id, []).append(tagged.tag)
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
                tags=tuple(tags.get(row.id, ())),
            )
            for row in rows
        ]

"""Webhooks and their outbox: one `webhook_deliveries` row per (webhook, event).

The rows are written by `queue_webhook_deliveries` inside the transaction that writes the events,
so an event committed is an event that will be delivered, whatever crashes afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailmark.core.model import (
    LeasedWebhookDelivery,
    Webhook,
    WebhookDeliveryState,
    WebhookOutcome,
)
from mailmark.core.ports import NewEvent
from mailmark.core.webhooks import public_event_type
from mailmark.storage.tables import domains, events, outbound_messages, webhook_deliveries, webhooks

# Stay well under SQLite's limit on bound parameters per statement.
_CHUNK = 500
# How many of the oldest due rows a lease shares out between webhooks.
_ROUND_ROBIN_WINDOW = 500


def _webhook(row: Any) -> Webhook:
    values = dict(row._mapping)
    values["events"] = tuple(values["events"])
    return Webhook(**values)


async def queue_webhook_deliveries(
    conn: AsyncConnection, new_events: Sequence[NewEvent], event_ids: Sequence[int]
) -> None:
    """One pending delivery per new event and webhook of the event's domain subscribed to it.

    Runs in the events' transaction. With no webhook on the events' accounts (the common case on
    the mail paths) this costs one indexed SELECT."""
    wanted = [
        (event, event_id)
        for event, event_id in zip(new_events, event_ids, strict=True)
        if public_event_type(event.type) is not None
    ]
    if not wanted:
        return
    account_ids = sorted({event.account_id for event, _ in wanted})
    hooks = (
        await conn.execute(
            sa.select(webhooks.c.id, webhooks.c.domain_id, webhooks.c.events).where(
                webhooks.c.account_id.in_(account_ids)
            )
        )
    ).all()
    if not hooks:
        return
    outbound_ids = sorted({e.outbound_id for e, _ in wanted if e.outbound_id is not None})
    domain_of_outbound: dict[int, int] = {}
    for start in range(0, len(outbound_ids), _CHUNK):
        found = await conn.execute(
            sa.select(outbound_messages.c.id, outbound_messages.c.domain_id).where(
                outbound_messages.c.id.in_(outbound_ids[start : start + _CHUNK])
            )
        )
        domain_of_outbound.update({row.id: row.domain_id for row in found})
    rows: list[dict[str, Any]] = []
    for event, event_id in wanted:
        domain_id = event.domain_id
        if domain_id is None and event.outbound_id is not None:
            domain_id = domain_of_outbound.get(event.outbound_id)
        public = public_event_type(event.type)
        rows.extend(
            {
                "webhook_id": hook.id,
                "event_id": event_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": event.created_at,
                "created_at": event.created_at,
                "updated_at": event.created_at,
            }
            for hook in hooks
            if hook.domain_id == domain_id and public in hook.events
        )
    if rows:
        await conn.execute(webhook_deliveries.insert(), rows)


_LEASED_COLUMNS = (
    webhook_deliveries.c.id,
    webhook_deliveries.c.webhook_id,
    webhooks.c.url,
    webhooks.c.secret,
    domains.c.name.label("domain_name"),
    webhook_deliveries.c.event_id,
    events.c.type.label("event_type"),
    events.c.payload.label("event_payload"),
    events.c.created_at.label("event_created_at"),
    events.c.outbound_id,
    webhook_deliveries.c.attempts,
    webhook_deliveries.c.created_at,
)

_STATE_COLUMNS = (
    webhook_deliveries.c.id,
    webhook_deliveries.c.webhook_id,
    webhook_deliveries.c.event_id,
    events.c.type.label("event_type"),
    webhook_deliveries.c.status,
    webhook_deliveries.c.attempts,
    webhook_deliveries.c.next_attempt_at,
    webhook_deliveries.c.last_code,
    webhook_deliveries.c.last_error,
    webhook_deliveries.c.created_at,
    webhook_deliveries.c.updated_at,
)

_RECORD_OUTCOME = (
    webhook_deliveries.update()
    .where(webhook_deliveries.c.id == sa.bindparam("outcome_id"))
    .values(
        status=sa.bindparam("outcome_status"),
        next_attempt_at=sa.bindparam("outcome_next"),
        last_code=sa.bindparam("outcome_code"),
        last_error=sa.bindparam("outcome_error"),
        updated_at=sa.bindparam("outcome_at"),
        lease_owner=None,
        lease_until=None,
    )
)


def _due(now: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    """Pending, its attempt time reached, and no live lease on it."""
    return (
        webhook_deliveries.c.status == "pending",
        webhook_deliveries.c.next_attempt_at <= now,
        sa.or_(webhook_deliveries.c.lease_until.is_(None), webhook_deliveries.c.lease_until < now),
    )


class SqlWebhooks:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, webhook: Webhook) -> Webhook:
        values: dict[str, Any] = {
            "account_id": webhook.account_id,
            "domain_id": webhook.domain_id,
            "url": webhook.url,
            "events": list(webhook.events),
            "secret": webhook.secret,
            "created_at": webhook.created_at,
        }
        result = await self._conn.execute(webhooks.insert().values(**values).returning(webhooks.c.id))
        return dataclasses.replace(webhook, id=int(result.scalar_one()))

    async def get(self, webhook_id: int) -> Webhook | None:
        row = (await self._conn.execute(webhooks.select().where(webhooks.c.id == webhook_id))).first()
        return _webhook(row) if row else None

    async def list_for_domain(self, domain_id: int) -> list[Webhook]:
        query = webhooks.select().where(webhooks.c.domain_id == domain_id).order_by(webhooks.c.id)
        return [_webhook(row) for row in await self._conn.execute(query)]

    async def delete(self, webhook_id: int) -> None:
        await self._conn.execute(webhooks.delete().where(webhooks.c.id == webhook_id))

    async def recent_deliveries(
        self, webhook_ids: Sequence[int], per_webhook: int
    ) -> dict[int, list[WebhookDeliveryState]]:
        found: dict[int, list[WebhookDeliveryState]] = {hook_id: [] for hook_id in webhook_ids}
        # One indexed query per webhook (webhook_id, id DESC): a domain has a handful of them.
        for hook_id in webhook_ids:
            query = (
                sa.select(*_STATE_COLUMNS)
                .select_from(webhook_deliveries.join(events))
                .where(webhook_deliveries.c.webhook_id == hook_id)
                .order_by(webhook_deliveries.c.id.desc())
                .limit(per_webhook)
            )
            found[hook_id] = [
                WebhookDeliveryState(**row._mapping) for row in await self._conn.execute(query)
            ]
        return found

    async def any_due(self, now: datetime) -> bool:
        query = sa.select(webhook_deliveries.c.id).where(*_due(now)).limit(1)
        return (await self._conn.execute(query)).first() is not None

    async def lease_due(
        self, owner: str, now: datetime, limit: int, lease_until: datetime
    ) -> list[LeasedWebhookDelivery]:
        # Round robin over webhooks among the oldest due rows: each webhook's oldest first, then
        # each one's second, ... so a receiver with a backlog (or one that only times out) takes
        # its share of the batch, not all of it.
        oldest = (
            sa.select(
                webhook_deliveries.c.id,
                webhook_deliveries.c.webhook_id,
                webhook_deliveries.c.next_attempt_at,
            )
            .where(*_due(now))
            .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
            .limit(_ROUND_ROBIN_WINDOW)
            .subquery()
        )
        turn = sa.func.row_number().over(
            partition_by=oldest.c.webhook_id, order_by=(oldest.c.next_attempt_at, oldest.c.id)
        )
        ranked = sa.select(oldest.c.id, oldest.c.next_attempt_at, turn.label("turn")).subquery()
        chosen = (
            sa.select(ranked.c.id)
            .order_by(ranked.c.turn, ranked.c.next_attempt_at, ranked.c.id)
            .limit(limit)
        )
        ids = list((await self._conn.execute(chosen)).scalars())
        if not ids:
            return []
        query = (
            sa.select(*_LEASED_COLUMNS)
            .select_from(
                webhook_deliveries.join(webhooks).join(events).join(
                    domains, domains.c.id == webhooks.c.domain_id
                )
            )
            # Still due: another worker may have leased some since they were chosen.
            .where(webhook_deliveries.c.id.in_(ids), *_due(now))
            # PostgreSQL: rows another worker is leasing right now are skipped, not waited for.
            # SQLite ignores this; its write transactions (BEGIN IMMEDIATE) exclude each other.
            .with_for_update(of=webhook_deliveries, skip_locked=True)
        )
        rows = (await self._conn.execute(query)).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        for start in range(0, len(ids), _CHUNK):
            await self._conn.execute(
                webhook_deliveries.update()
                .where(webhook_deliveries.c.id.in_(ids[start : start + _CHUNK]))
                .values(
                    lease_owner=owner,
                    lease_until=lease_until,
                    attempts=webhook_deliveries.c.attempts + 1,
                    updated_at=now,
                )
            )
        return [
            LeasedWebhookDelivery(
                **{**row._mapping, "attempts": row.attempts + 1}, lease_owner=owner
            )
            for row in rows
        ]

    async def record_outcomes(self, outcomes: Sequence[WebhookOutcome]) -> list[int]:
        owners = {outcome.delivery_id: outcome.lease_owner for outcome in outcomes}
        held: set[int] = set()
        ids = list(owners)
        for start in range(0, len(ids), _CHUNK):
            rows = await self._conn.execute(
                sa.select(webhook_deliveries.c.id, webhook_deliveries.c.lease_owner)
                .where(
                    webhook_deliveries.c.id.in_(ids[start : start + _CHUNK]),
                    webhook_deliveries.c.status == "pending",
                )
                .with_for_update(of=webhook_deliveries)
            )
            held.update(row.id for row in rows if row.lease_owner == owners[row.id])
        applied = [outcome for outcome in outcomes if outcome.delivery_id in held]
        if applied:
            await self._conn.execute(
                _RECORD_OUTCOME,
                [
                    {
                        "outcome_id": o.delivery_id,
                        "outcome_status": o.status,
                        "outcome_next": o.next_attempt_at,
                        "outcome_code": o.last_code,
                        "outcome_error": o.last_error,
                        "outcome_at": o.updated_at,
                    }
                    for o in applied
                ],
            )
        return [outcome.delivery_id for outcome in applied]

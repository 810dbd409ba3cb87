"""The webhook outbox: one row per (webhook, event), leased by workers until delivered or given up.

Core writes the rows in the transaction that writes their events (core/events.py), so an event
committed is an event that will be delivered, whatever crashes afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from mailmark.core.model import LeasedWebhookDelivery, WebhookDeliveryState, WebhookOutcome
from mailmark.core.ports import NewWebhookDelivery
from mailmark.core.states import WebhookDeliveryStatus
from mailmark.storage.sql import Repository, held_leases, take_leases
from mailmark.storage.tables import domains, events, webhook_deliveries, webhooks

# How many of the oldest due rows a lease shares out between webhooks.
_ROUND_ROBIN_WINDOW = 500

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

_PENDING = webhook_deliveries.c.status == WebhookDeliveryStatus.PENDING


def _due(now: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    """Pending, its attempt time reached, and no live lease on it."""
    return (
        _PENDING,
        webhook_deliveries.c.next_attempt_at <= now,
        sa.or_(webhook_deliveries.c.lease_until.is_(None), webhook_deliveries.c.lease_until < now),
    )


class SqlWebhookDeliveries(Repository):
    async def add_many(self, new_deliveries: Sequence[NewWebhookDelivery]) -> None:
        if not new_deliveries:
            return
        rows = [
            {
                "webhook_id": d.webhook_id,
                "event_id": d.event_id,
                "status": WebhookDeliveryStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": d.created_at,
                "created_at": d.created_at,
                "updated_at": d.created_at,
            }
            for d in new_deliveries
        ]
        await self._conn.execute(webhook_deliveries.insert(), rows)

    async def recent(
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
                webhook_deliveries.join(webhooks)
                .join(events)
                .join(domains, domains.c.id == webhooks.c.domain_id)
            )
            # Still due: another worker may have leased some since they were chosen.
            .where(webhook_deliveries.c.id.in_(ids), *_due(now))
        )
        query = self._dialect.for_update(query, of=webhook_deliveries, skip_locked=True)
        rows = (await self._conn.execute(query)).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        await take_leases(self._conn, webhook_deliveries, ids, owner, lease_until, now)
        return [
            LeasedWebhookDelivery(
                **{**row._mapping, "attempts": row.attempts + 1}, lease_owner=owner
            )
            for row in rows
        ]

    async def record_outcomes(self, outcomes: Sequence[WebhookOutcome]) -> list[int]:
        owners = {outcome.delivery_id: outcome.lease_owner for outcome in outcomes}
        held = await held_leases(self._conn, self._dialect, webhook_deliveries, owners, _PENDING)
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

    async def delete_finished_before(self, before: datetime, limit: int) -> int:
        oldest = (
            sa.select(webhook_deliveries.c.id)
            .where(
                webhook_deliveries.c.updated_at < before,
                webhook_deliveries.c.status != WebhookDeliveryStatus.PENDING,
            )
            .order_by(webhook_deliveries.c.updated_at)
            .limit(limit)
        )
        ids = list((await self._conn.execute(oldest)).scalars())
        if ids:
            await self._conn.execute(
                webhook_deliveries.delete().where(webhook_deliveries.c.id.in_(ids))
            )
        return len(ids)

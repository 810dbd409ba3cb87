"""The outbound queue: one row per recipient of an outbound message, leased by workers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailmark.core.model import DeliveryOutcome, LeasedDelivery, NewDelivery, QueueEntry
from mailmark.core.states import WAITING_STATUSES, DeliveryStatus
from mailmark.storage.sql import Repository, chunks, held_leases, shallow_fields, take_leases
from mailmark.storage.tables import deliveries, domains, outbound_messages

_RECORD_OUTCOME = (
    deliveries.update()
    .where(deliveries.c.id == sa.bindparam("outcome_id"))
    .values(
        status=sa.bindparam("outcome_status"),
        next_attempt_at=sa.bindparam("outcome_next"),
        last_code=sa.bindparam("outcome_code"),
        last_status=sa.bindparam("outcome_enhanced"),
        last_reply=sa.bindparam("outcome_reply"),
        mx_host=sa.bindparam("outcome_mx"),
        updated_at=sa.bindparam("outcome_at"),
        lease_owner=None,
        lease_until=None,
    )
)

# A row leased only to find its account may not send: back to waiting, the attempt the lease
# counted given back, with the reason people see and when it is looked at again.
_HOLD = (
    deliveries.update()
    .where(deliveries.c.id == sa.bindparam("hold_id"))
    .values(
        status=DeliveryStatus.HELD,
        attempts=deliveries.c.attempts - 1,
        next_attempt_at=sa.bindparam("hold_until"),
        last_code=None,
        last_status=None,
        last_reply=sa.bindparam("hold_reason"),
        updated_at=sa.bindparam("hold_at"),
        lease_owner=None,
        lease_until=None,
    )
)

_sender_domain = domains.alias("sender_domain")

_LEASED_COLUMNS = (
    deliveries.c.id,
    deliveries.c.outbound_id,
    deliveries.c.recipient,
    deliveries.c.recipient_domain,
    deliveries.c.attempts,
    outbound_messages.c.envelope_from,
    outbound_messages.c.blob_key,
    _sender_domain.c.name.label("from_domain"),
    deliveries.c.created_at,
    deliveries.c.expires_at,
    outbound_messages.c.account_id,
    outbound_messages.c.domain_id,
    outbound_messages.c.mailbox_id,
    outbound_messages.c.message_id_header,
    outbound_messages.c.sent_message_id,
)

_QUEUE_ENTRY_COLUMNS = (
    deliveries.c.id,
    deliveries.c.outbound_id,
    deliveries.c.recipient,
    deliveries.c.status,
    deliveries.c.attempts,
    deliveries.c.next_attempt_at,
    deliveries.c.expires_at,
    deliveries.c.created_at,
    deliveries.c.updated_at,
    outbound_messages.c.from_addr,
    outbound_messages.c.subject,
    outbound_messages.c.message_id_header,
    deliveries.c.last_code,
    deliveries.c.last_status,
    deliveries.c.last_reply,
    deliveries.c.mx_host,
    deliveries.c.lease_owner,
    deliveries.c.lease_until,
)


def _queue_entries() -> sa.Select[Any]:
    return sa.select(*_QUEUE_ENTRY_COLUMNS).select_from(deliveries.join(outbound_messages))


class SqlDeliveries(Repository):
    async def add_many(self, new_deliveries: Sequence[NewDelivery]) -> None:
        rows = [
            {
                **shallow_fields(d),
                "status": DeliveryStatus.QUEUED,
                "attempts": 0,
                "updated_at": d.created_at,
            }
            for d in new_deliveries
        ]
        await self._conn.execute(deliveries.insert(), rows)

    async def lease_due(
        self, owner: str, now: datetime, limit: int, lease_until: datetime
    ) -> list[LeasedDelivery]:
        hosted = sa.exists().where(domains.c.name == deliveries.c.recipient_domain)
        query = (
            sa.select(*_LEASED_COLUMNS, hosted.label("local"))
            .select_from(
                deliveries.join(outbound_messages).join(
                    _sender_domain, _sender_domain.c.id == outbound_messages.c.domain_id
                )
            )
            .where(
                deliveries.c.status.in_(WAITING_STATUSES),
                deliveries.c.next_attempt_at <= now,
                sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
            )
            # Fresh rows first, so a deferred backlog never starves new mail; then oldest first.
            .order_by(
                sa.case((deliveries.c.attempts == 0, 0), else_=1),
                deliveries.c.next_attempt_at,
                deliveries.c.id,
            )
            .limit(limit)
        )
        query = self._dialect.for_update(query, of=deliveries, skip_locked=True)
        rows = (await self._conn.execute(query)).all()
        if not rows:
            return []
        await take_leases(self._conn, deliveries, [row.id for row in rows], owner, lease_until, now)
        return [
            LeasedDelivery(
                **{**row._mapping, "attempts": row.attempts + 1, "local": bool(row.local)},
                lease_owner=owner,
            )
            for row in rows
        ]

    async def hold(self, holds: Sequence[tuple[int, datetime, str]], now: datetime) -> None:
        if holds:
            await self._conn.execute(
                _HOLD,
                [
                    {"hold_id": i, "hold_until": until, "hold_reason": reason, "hold_at": now}
                    for i, until, reason in holds
                ],
            )

    async def release_held(self, account_id: int, now: datetime) -> int:
        of_account = sa.select(outbound_messages.c.id).where(
            outbound_messages.c.account_id == account_id
        )
        query = (
            deliveries.update()
            .where(
                deliveries.c.status == DeliveryStatus.HELD,
                deliveries.c.outbound_id.in_(of_account),
            )
            .values(next_attempt_at=now, updated_at=now)
        )
        return int((await self._conn.execute(query)).rowcount)

    async def next_due_at(self) -> datetime | None:
        # A leased row is not due before its lease runs out, even when its attempt time has passed.
        due = sa.case(
            (
                sa.and_(
                    deliveries.c.lease_until.is_not(None),
                    deliveries.c.lease_until > deliveries.c.next_attempt_at,
                ),
                deliveries.c.lease_until,
            ),
            else_=deliveries.c.next_attempt_at,
        )
        query = sa.select(sa.func.min(due)).where(deliveries.c.status.in_(WAITING_STATUSES))
        due_at: datetime | None = (await self._conn.execute(query)).scalar_one_or_none()
        return due_at

    async def record_outcomes(self, outcomes: Sequence[DeliveryOutcome]) -> list[int]:
        # One SELECT finds the rows still leased by the recording worker and still waiting, then
        # one executemany UPDATE writes them: a statement built per row cost more CPU than the
        # SMTP transaction it records.
        owners = {outcome.delivery_id: outcome.lease_owner for outcome in outcomes}
        waiting = deliveries.c.status.in_(WAITING_STATUSES)
        held = await held_leases(self._conn, self._dialect, deliveries, owners, waiting)
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
                        "outcome_enhanced": o.last_status,
                        "outcome_reply": o.last_reply,
                        "outcome_mx": o.mx_host,
                        "outcome_at": o.updated_at,
                    }
                    for o in applied
                ],
            )
        return [outcome.delivery_id for outcome in applied]

    async def get(self, delivery_id: int) -> QueueEntry | None:
        row = (
            await self._conn.execute(_queue_entries().where(deliveries.c.id == delivery_id))
        ).first()
        return QueueEntry(**row._mapping) if row else None

    async def waiting_counts(self) -> list[tuple[DeliveryStatus, int, datetime]]:
        # The (status, next_attempt_at) index finds the waiting rows without reading the
        # delivered history, which only grows.
        query = (
            sa.select(deliveries.c.status, sa.func.count(), sa.func.min(deliveries.c.created_at))
            .where(deliveries.c.status.in_(WAITING_STATUSES))
            .group_by(deliveries.c.status)
        )
        return [
            (DeliveryStatus(row[0]), int(row[1]), row[2]) for row in await self._conn.execute(query)
        ]

    async def entries(self, status: str | None, limit: int) -> list[QueueEntry]:
        query = _queue_entries().order_by(deliveries.c.id).limit(limit)
        if status is not None:
            query = query.where(deliveries.c.status == status)
        return [QueueEntry(**row._mapping) for row in await self._conn.execute(query)]

    async def for_outbound(self, outbound_id: int, *, lock: bool = False) -> list[QueueEntry]:
        """The message's rows; with `lock`, held until commit so no worker leases them meanwhile
        (PostgreSQL; SQLite's write transactions exclude each other already)."""
        query = (
            _queue_entries()
            .where(deliveries.c.outbound_id == outbound_id)
            .order_by(deliveries.c.id)
        )
        if lock:
            query = self._dialect.for_update(query, of=deliveries)
        return [QueueEntry(**row._mapping) for row in await self._conn.execute(query)]

    async def cancel(self, delivery_ids: Sequence[int], now: datetime) -> None:
        for chunk in chunks(delivery_ids):
            await self._conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(chunk))
                .values(status=DeliveryStatus.CANCELED, updated_at=now)
            )

    async def reschedule(
        self,
        delivery_ids: Sequence[int],
        first_attempt: datetime,
        expires_at: datetime,
        now: datetime,
    ) -> None:
        for chunk in chunks(delivery_ids):
            await self._conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(chunk))
                .values(next_attempt_at=first_attempt, expires_at=expires_at, updated_at=now)
            )

    async def set_status(
        self, delivery_id: int, status: str, last_status: str | None, last_reply: str, now: datetime
    ) -> None:
        await self._conn.execute(
            deliveries.update()
            .where(deliveries.c.id == delivery_id)
            .values(status=status, last_status=last_status, last_reply=last_reply, updated_at=now)
        )

    async def retry(self, delivery_id: int | None, now: datetime) -> int:
        query = (
            deliveries.update()
            .where(deliveries.c.status.in_((DeliveryStatus.DEFERRED, DeliveryStatus.HELD)))
            .values(next_attempt_at=now, updated_at=now)
        )
        if delivery_id is not None:
            query = query.where(deliveries.c.id == delivery_id)
        return int((await self._conn.execute(query)).rowcount)

    async def delete(self, delivery_id: int) -> bool:
        result = await self._conn.execute(deliveries.delete().where(deliveries.c.id == delivery_id))
        return bool(result.rowcount)

"""Retention in the maintenance pass: old events, finished webhook deliveries, expired
idempotency keys and blobs nothing references go; everything younger, or still needed, stays."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Listeners, Services
from mailmark.config import Settings
from mailmark.core.events import record_events
from mailmark.core.model import StoredResponse, WebhookOutcome
from mailmark.core.ports import NewEvent
from mailmark.core.retention import BATCH, BLOB_SWEEP_INTERVAL
from mailmark.storage.tables import events, idempotency_keys, webhook_deliveries
from tests.support.clock import SettableClock
from tests.support.world import World


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_allow_private_networks": ["127.0.0.1/32"],
            "events_kept_days": 90,
            "webhook_deliveries_kept_days": 30,
            "unreferenced_blob_grace_hours": 24,
        }
    )


async def _ids(services: Services, world: World) -> tuple[int, int]:
    domain = await services.domains.get(world.domain)
    assert domain.id is not None
    return domain.account_id, domain.id


async def _record(services: Services, account_id: int, domain_id: int, count: int) -> None:
    now = services.clock.now()
    async with services.uow() as uow:
        await record_events(
            uow,
            [
                NewEvent(account_id, "email.received", {"n": n}, now, domain_id=domain_id)
                for n in range(count)
            ],
        )
        await uow.commit()


async def _finish_deliveries(services: Services, count: int) -> None:
    """A webhook worker's doing: lease `count` pending deliveries and record them delivered."""
    now = services.clock.now()
    while count > 0:
        async with services.uow() as uow:
            leased = await uow.webhook_deliveries.lease_due(
                "worker", now, count, now + timedelta(1)
            )
            await uow.webhook_deliveries.record_outcomes(
                [
                    WebhookOutcome(row.id, "worker", "delivered", None, 200, None, now)
                    for row in leased
                ]
            )
            await uow.commit()
        assert leased
        count -= len(leased)


async def _count(services: Services, table: sa.Table) -> int:
    async with services.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def test_events_and_webhook_deliveries_go_when_old_and_finished(
    services: Services, world: World, clock: SettableClock
) -> None:
    account_id, domain_id = await _ids(services, world)
    await services.webhooks.create(account_id, domain_id, "http://127.0.0.1:9/", ["email.received"])
    # Old: more than a batch of events, all told to the webhook but one.
    await _record(services, account_id, domain_id, BATCH + 20)
    await _finish_deliveries(services, BATCH + 19)
    clock.advance(timedelta(days=60))
    await _record(services, account_id, domain_id, 3)  # recent, still pending
    clock.advance(timedelta(days=35))
    retention = services.retention

    # 95 days after the first ones: their finished deliveries (over 30 days) go; the recent
    # ones are pending and stay.
    assert await retention.prune_webhook_deliveries() == BATCH + 19
    assert await _count(services, webhook_deliveries) == 1 + 3
    # Events over 90 days go, but not the one whose webhook delivery is still pending.
    assert await retention.prune_events() == BATCH + 19
    assert await _count(services, events) == 1 + 3
    assert await retention.prune_events() == 0
    assert await retention.prune_webhook_deliveries() == 0

    # Finished deliveries of the events that stay go too, once old enough.
    await _finish_deliveries(services, 4)
    clock.advance(timedelta(days=31))
    assert await retention.prune_webhook_deliveries() == 4
    assert await retention.prune_events() == 1  # the oldest, no longer pending
    assert await _count(services, events) == 3


async def test_idempotency_keys_go_once_no_retry_would_be_answered_from_them(
    services: Services, world: World, clock: SettableClock
) -> None:
    _, domain_id = await _ids(services, world)

    async def store(key: str) -> None:
        async with services.uow() as uow:
            await uow.idempotency.add(
                StoredResponse(domain_id, key, "0" * 64, 200, {"id": key}, clock.now())
            )
            await uow.commit()

    await store("old")
    clock.advance(timedelta(hours=23))
    await store("recent")
    clock.advance(timedelta(hours=2))
    assert await services.retention.prune_idempotency_keys() == 1
    async with services.engine.connect() as conn:
        left = (await conn.execute(sa.select(idempotency_keys.c.key))).scalars().all()
    assert left == ["recent"]


async def test_only_blobs_nothing_references_and_older_than_the_grace_period_are_removed(
    services: Services, world: World, clock: SettableClock
) -> None:
    receipt = await services.delivery.deliver(
        b"Subject: kept\r\n\r\nreferenced\r\n", recipients=[world.sales], mail_from="a@b.test"
    )
    orphan, _ = await services.blobs.put(b"left by a crash before the commit")
    young, _ = await services.blobs.put(b"written by a delivery that has not committed yet")
    # The settable clock is years ahead of the files' times: make `young` an hour old by it.
    moment = (clock.now() - timedelta(hours=1)).timestamp()
    os.utime(services.blobs.root / young[:2] / young, (moment, moment))

    assert await services.retention.remove_unreferenced_blobs() == 1
    assert not await services.blobs.exists(orphan)
    assert await services.blobs.exists(young)
    assert await services.blobs.exists(receipt.blob_key)

    clock.advance(timedelta(days=1))
    assert await services.retention.remove_unreferenced_blobs() == 1
    assert not await services.blobs.exists(young)
    assert await services.blobs.get(receipt.blob_key) == b"Subject: kept\r\n\r\nreferenced\r\n"


async def test_serve_runs_every_retention_task_in_its_maintenance_pass(
    listeners: Listeners, world: World
) -> None:
    done = await listeners.maintenance.run_once()
    assert {
        "expunge tombstones pruned",
        "events pruned",
        "webhook deliveries pruned",
        "expired idempotency keys pruned",
        "unreferenced blobs removed",
    } <= set(done)


async def test_the_maintenance_pass_looks_for_unreferenced_blobs_once_an_hour(
    services: Services, world: World, clock: SettableClock
) -> None:
    sweep = dict(services.retention.tasks())["unreferenced blobs removed"]
    await services.blobs.put(b"first orphan")
    assert await sweep() == 1
    second, _ = await services.blobs.put(b"second orphan")
    assert await sweep() == 0
    clock.advance(BLOB_SWEEP_INTERVAL)
    assert await sweep() == 1
    assert not await services.blobs.exists(second)

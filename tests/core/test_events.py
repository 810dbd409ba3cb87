"""Recording events: each is fanned out to the webhooks of its domain subscribed to its type, in
the events' transaction."""

from __future__ import annotations

import sqlalchemy as sa

from mailmark.core.events import record_events
from mailmark.core.model import OutboundMessage, Webhook
from mailmark.core.ports import NewEvent
from mailmark.core.states import EventType
from mailmark.storage.tables import events, webhook_deliveries
from tests.support.world import World


async def _webhook(world: World, domain_id: int, events: tuple[str, ...]) -> int:
    now = world.services.clock.now()
    async with world.services.uow() as uow:
        hook = await uow.webhooks.add(
            Webhook(world.sales.account_id, domain_id, "https://hooks.example/", events, "s", now)
        )
        await uow.commit()
    assert hook.id is not None
    return hook.id


async def _deliveries(world: World) -> list[tuple[int, str]]:
    """(webhook id, event type) of every stored webhook delivery, by id."""
    query = (
        sa.select(webhook_deliveries.c.webhook_id, events.c.type)
        .select_from(webhook_deliveries.join(events))
        .order_by(webhook_deliveries.c.id)
    )
    async with world.services.engine.connect() as conn:
        return [(row.webhook_id, row.type) for row in await conn.execute(query)]


async def test_events_go_to_their_domains_webhooks_subscribed_to_their_type(world: World) -> None:
    services = world.services
    await services.domains.add("other.test", account_name="acme", trust=True)
    async with services.uow(read_only=True) as uow:
        other = await uow.domains.get_by_name("other.test")
    assert other is not None and other.id is not None
    acme_id = world.sales.domain_id
    everything = await _webhook(world, acme_id, tuple(EventType))
    bounces = await _webhook(world, acme_id, (EventType.BOUNCED,))
    elsewhere = await _webhook(world, other.id, tuple(EventType))
    now = services.clock.now()
    account = world.sales.account_id
    async with services.uow() as uow:
        outbound = await uow.outbound.add(
            OutboundMessage(
                account,
                acme_id,
                world.sales.id,
                "0" * 64,
                10,
                "bounce@acme.test",
                "t",
                "sales@acme.test",
                None,
                None,
                "api",
                now,
            )
        )
        await record_events(
            uow,
            [
                NewEvent(account, EventType.SENT, {}, now, outbound_id=outbound.id),
                NewEvent(account, EventType.DELIVERED, {}, now, outbound_id=outbound.id),
                NewEvent(account, EventType.BOUNCED, {}, now, outbound_id=outbound.id),
                NewEvent(account, EventType.RECEIVED, {}, now, domain_id=other.id),
            ],
        )
        await uow.commit()

    assert await _deliveries(world) == [
        (everything, EventType.DELIVERED),
        (everything, EventType.BOUNCED),
        (bounces, EventType.BOUNCED),
        (elsewhere, EventType.RECEIVED),
    ]


async def test_deliveries_roll_back_with_their_events(world: World) -> None:
    await _webhook(world, world.sales.domain_id, tuple(EventType))
    event = NewEvent(
        world.sales.account_id,
        EventType.RECEIVED,
        {},
        world.services.clock.now(),
        domain_id=world.sales.domain_id,
    )
    async with world.services.uow() as uow:
        await record_events(uow, [event])
        await uow.rollback()

    assert await _deliveries(world) == []

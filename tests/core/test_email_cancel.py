"""Cancelling and rescheduling a sent email while its recipients wait for their first attempt:
only untried rows change, leased ones are left to their worker, events are written once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Services
from mailmark.config import Settings
from mailmark.core.bounce_reports import BounceReport, ReportedRecipient
from mailmark.core.errors import Conflict, InvalidInput, NotFound
from mailmark.core.smtp_reply import SmtpReply
from mailmark.storage.tables import deliveries, events, outbound_messages, suppressions
from tests.support.clock import SettableClock
from tests.support.world import World

LIFETIME = timedelta(hours=3)
LEASE = timedelta(minutes=5)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"queue_lifetime": LIFETIME})


def ms(clock: SettableClock, ahead: timedelta) -> int:
    return int((clock.now() + ahead).timestamp() * 1000)


async def scheduled(world: World, clock: SettableClock, *to: str) -> str:
    """A message to `to`, scheduled an hour ahead; its id."""
    sent = await world.services.sending.submit(
        mailbox=world.sales,
        to=list(to),
        subject="Later",
        text="x",
        scheduled_at=clock.now() + timedelta(hours=1),
    )
    return str(sent.outbound_id)


async def rows(services: Services) -> dict[str, sa.Row[tuple[object, ...]]]:
    async with services.engine.connect() as conn:
        found = (await conn.execute(deliveries.select())).all()
    return {row.recipient: row for row in found}


async def event_types(services: Services) -> list[tuple[str, object]]:
    async with services.engine.connect() as conn:
        found = (await conn.execute(events.select().order_by(events.c.id))).all()
    return [(row.type, row.payload.get("to")) for row in found]


async def test_a_scheduled_email_is_canceled_with_an_event_per_recipient(
    world: World, clock: SettableClock
) -> None:
    services = world.services
    email_id = await scheduled(world, clock, "ann@remote.test", "bob@remote.test")

    done = await services.emails.cancel(world.sales.domain_id, email_id)

    assert done.canceled == ["ann@remote.test", "bob@remote.test"]
    assert done.not_canceled == []
    assert done.email.status == "canceled"
    assert {r: row.status for r, row in (await rows(services)).items()} == {
        "ann@remote.test": "canceled",
        "bob@remote.test": "canceled",
    }
    assert (await event_types(services))[1:] == [
        ("email.canceled", "ann@remote.test"),
        ("email.canceled", "bob@remote.test"),
    ]
    # Nothing is due any more, and a second cancel has nothing left to do.
    assert await services.queue.next_due_at() is None
    with pytest.raises(Conflict, match="nothing was canceled"):
        await services.emails.cancel(world.sales.domain_id, email_id)
    assert len(await event_types(services)) == 3


async def test_a_leased_recipient_is_left_to_its_worker(world: World, clock: SettableClock) -> None:
    services = world.services
    email_id = await scheduled(world, clock, "ann@remote.test", "bob@remote.test")
    clock.advance(timedelta(hours=2))
    [leased] = await services.queue.lease_due("worker-1", 1, LEASE)

    done = await services.emails.cancel(world.sales.domain_id, email_id)

    other = ({"ann@remote.test", "bob@remote.test"} - {leased.recipient}).pop()
    assert done.canceled == [other]
    assert [(e.recipient, e.status, e.attempts) for e in done.not_canceled] == [
        (leased.recipient, "queued", 1)
    ]
    # The worker's outcome is still recorded: its lease was not taken from under it.
    await services.queue.record([(leased, SmtpReply(250, "2.0.0", "Ok", "mx.remote.test"))])
    found = await rows(services)
    assert (found[leased.recipient].status, found[other].status) == ("delivered", "canceled")
    detail, _ = await services.emails.get(world.sales.domain_id, email_id)
    assert detail.status == "canceled"
    with pytest.raises(Conflict):
        await services.emails.cancel(world.sales.domain_id, email_id)
    with pytest.raises(Conflict, match="cannot be rescheduled"):
        await services.emails.reschedule(
            world.sales.domain_id, email_id, ms(clock, timedelta(hours=1))
        )


async def test_an_expired_lease_still_counts_as_an_attempt(
    world: World, clock: SettableClock
) -> None:
    """A worker that crashed mid-delivery may have sent the message: it is not withdrawn."""
    services = world.services
    email_id = await scheduled(world, clock, "ann@remote.test")
    clock.advance(timedelta(hours=2))
    assert await services.queue.lease_due("crashed", 10, LEASE)
    clock.advance(LEASE * 2)

    with pytest.raises(Conflict):
        await services.emails.cancel(world.sales.domain_id, email_id)
    assert (await rows(services))["ann@remote.test"].status == "queued"


async def test_rescheduling_moves_the_first_attempt_and_the_expiry(
    world: World, clock: SettableClock
) -> None:
    services = world.services
    email_id = await scheduled(world, clock, "ann@remote.test")
    when = clock.now() + timedelta(days=2)

    email = await services.emails.reschedule(
        world.sales.domain_id, email_id, int(when.timestamp() * 1000)
    )

    assert email.scheduled_at == when
    row = (await rows(services))["ann@remote.test"]
    assert (row.next_attempt_at, row.expires_at) == (when, when + LIFETIME)
    assert await services.queue.next_due_at() == when
    with pytest.raises(InvalidInput, match="future") as past:
        await services.emails.reschedule(
            world.sales.domain_id, email_id, ms(clock, -timedelta(seconds=1))
        )
    assert past.value.field == "scheduledAt"
    with pytest.raises(InvalidInput, match="a year"):
        await services.emails.reschedule(
            world.sales.domain_id, email_id, ms(clock, timedelta(days=400))
        )


async def test_another_domains_email_is_not_found(world: World, clock: SettableClock) -> None:
    services = world.services
    email_id = await scheduled(world, clock, "ann@remote.test")
    await services.accounts.create(
        "other", owner_email="owner@other.test", password="owner-pass-1", plan="unlimited"
    )
    other = await services.domains.add("other.test", account_name="other", trust=True)
    assert other.id is not None

    with pytest.raises(NotFound):
        await services.emails.cancel(other.id, email_id)
    with pytest.raises(NotFound):
        await services.emails.reschedule(other.id, email_id, ms(clock, timedelta(hours=2)))
    assert (await rows(services))["ann@remote.test"].status == "queued"


async def test_a_report_about_a_canceled_recipient_changes_nothing(
    world: World, clock: SettableClock
) -> None:
    """A canceled message was never sent: a bounce naming it (forged, with its VERP token) must
    neither mark it bounced nor suppress the address."""
    services = world.services
    email_id = await scheduled(world, clock, "ann@remote.test")
    await services.emails.cancel(world.sales.domain_id, email_id)
    async with services.engine.connect() as conn:
        token = (await conn.execute(sa.select(outbound_messages.c.token))).scalar_one()
    bounce = BounceReport(
        "bounce", (ReportedRecipient("ann@remote.test", "5.1.1", "smtp; 550 5.1.1 no"),), None
    )

    assert await services.delivery_reports.process_report(token, bounce)

    assert (await rows(services))["ann@remote.test"].status == "canceled"
    async with services.engine.connect() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(suppressions))
        ).scalar() == 0

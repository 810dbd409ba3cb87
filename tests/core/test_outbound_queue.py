"""The outbound queue: leasing, the retry schedule and expiry (on an injected clock), outcomes,
bounce reports, suppressions, local delivery, and concurrent leasers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Services
from mailmark.config import Settings
from mailmark.core.bounce_reports import BounceReport, ReportedRecipient
from mailmark.core.errors import NotFound, Suppressed
from mailmark.core.model import LeasedDelivery, Mailbox
from mailmark.core.smtp_reply import SmtpReply, is_permanent_failure
from mailmark.storage.tables import deliveries, events, placements, suppressions
from tests.support.clock import SettableClock
from tests.support.world import HOSTNAME, World, stored_copies

LEASE = timedelta(minutes=5)
SCHEDULE = [timedelta(minutes=5), timedelta(minutes=10)]
LIFETIME = timedelta(minutes=40)


@dataclass
class Sender:
    services: Services
    clock: SettableClock
    sales: Mailbox
    support: Mailbox


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"retry_schedule": SCHEDULE, "queue_lifetime": LIFETIME})


@pytest.fixture
def sender(world: World, clock: SettableClock) -> Sender:
    return Sender(world.services, clock, world.sales, world.support)


async def send(sender: Sender, *to: str, subject: str = "Hello") -> int:
    submission = await sender.services.sending.submit(
        mailbox=sender.sales, to=list(to), subject=subject, text="Hi there."
    )
    return submission.outbound_id


async def lease(sender: Sender, owner: str = "node-a", limit: int = 100) -> list[LeasedDelivery]:
    return await sender.services.queue.lease_due(owner, limit, LEASE)


async def statuses(services: Services) -> dict[str, str]:
    return {entry.recipient: entry.status for entry in await services.queue_admin.list()}


async def event_types(services: Services, outbound_id: int) -> list[str]:
    query = (
        sa.select(events.c.type).where(events.c.outbound_id == outbound_id).order_by(events.c.id)
    )
    async with services.engine.connect() as conn:
        return list((await conn.execute(query)).scalars())


async def suppressed_addresses(services: Services) -> list[tuple[str, str]]:
    query = sa.select(suppressions.c.address, suppressions.c.reason).order_by(suppressions.c.id)
    async with services.engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(query)]


def parsed(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


async def test_a_2xx_reply_delivers(sender: Sender) -> None:
    outbound_id = await send(sender, "ann@remote.test")
    [leased] = await lease(sender)
    assert (leased.recipient, leased.recipient_domain, leased.attempts) == (
        "ann@remote.test",
        "remote.test",
        1,
    )
    assert leased.from_domain == "acme.test" and not leased.local
    assert leased.envelope_from.startswith("bounce+") and leased.envelope_from.endswith(
        f"@{HOSTNAME}"
    )

    await sender.services.queue.record(
        [(leased, SmtpReply(250, "2.0.0", "Ok: queued as X", "mx.remote.test"))]
    )

    [entry] = await sender.services.queue_admin.list()
    assert (entry.status, entry.last_code, entry.mx_host, entry.lease_owner) == (
        "delivered",
        250,
        "mx.remote.test",
        None,
    )
    assert await event_types(sender.services, outbound_id) == ["email.sent", "email.delivered"]
    assert await sender.services.queue.next_due_at() is None


async def test_temporary_failures_follow_the_schedule_then_bounce_at_expiry(sender: Sender) -> None:
    outbound_id = await send(sender, "ann@remote.test", subject="Retry me")
    start = sender.clock.current
    waits = []
    while True:
        [leased] = await lease(sender)
        await sender.services.queue.record([(leased, SmtpReply(451, "4.3.0", "Try again later"))])
        if (await statuses(sender.services))["ann@remote.test"] == "bounced":
            break
        due = await sender.services.queue.next_due_at()
        assert due is not None
        assert await lease(sender) == [], "nothing is due before the next step of the schedule"
        waits.append(due - sender.clock.current)
        sender.clock.current = due
    # 5m, 10m, then the last step repeats until the next attempt would pass the 40m lifetime.
    assert waits == [timedelta(minutes=m) for m in (5, 10, 10, 10)]
    assert sender.clock.current - start == timedelta(minutes=35)
    [entry] = await sender.services.queue_admin.list()
    assert (entry.attempts, entry.last_code, entry.last_reply) == (5, 451, "Try again later")
    assert await event_types(sender.services, outbound_id) == [
        "email.sent",
        *["email.deferred"] * 4,
        "email.bounced",
    ]
    assert await suppressed_addresses(sender.services) == [], "an expiry is not a hard bounce"
    [report] = [
        c for c in await stored_copies(sender.services, sender.sales) if c.folder == "INBOX"
    ]
    dsn = parsed(report.data)
    assert dsn.get_content_type() == "multipart/report"
    assert "Status: 5.4.7" in report.data.decode()


async def test_a_permanent_refusal_bounces_suppresses_and_reports_once(sender: Sender) -> None:
    outbound_id = await send(sender, "gone@remote.test", "full@remote.test", "ok@remote.test")
    leased = {d.recipient: d for d in await lease(sender)}

    await sender.services.queue.record(
        [
            (leased["gone@remote.test"], SmtpReply(550, "5.1.1", "No such user", "mx.remote.test")),
            (leased["full@remote.test"], SmtpReply(552, "5.2.2", "Mailbox full", "mx.remote.test")),
            (leased["ok@remote.test"], SmtpReply(250, "2.0.0", "Ok", "mx.remote.test")),
        ]
    )

    assert await statuses(sender.services) == {
        "gone@remote.test": "bounced",
        "full@remote.test": "bounced",
        "ok@remote.test": "delivered",
    }
    assert await suppressed_addresses(sender.services) == [("gone@remote.test", "bounce")]
    reports = [c for c in await stored_copies(sender.services, sender.sales) if c.folder == "INBOX"]
    assert len(reports) == 1, "one report lists every recipient given up on"
    text = reports[0].data.decode()
    assert "Final-Recipient: rfc822; gone@remote.test" in text
    assert "Final-Recipient: rfc822; full@remote.test" in text
    assert "ok@remote.test" not in text.split("text/rfc822-headers")[0].split("delivery-status")[1]
    assert sorted(await event_types(sender.services, outbound_id)) == [
        "email.bounced",
        "email.bounced",
        "email.delivered",
        "email.sent",
    ]
    with pytest.raises(
        Suppressed, match=re.escape("gone@remote.test is on the suppression list of acme.test")
    ):
        await send(sender, "gone@remote.test")


def test_permanent_failures_are_addressing_failures() -> None:
    assert is_permanent_failure(SmtpReply(550, "5.1.1", "no such user"))
    assert is_permanent_failure(SmtpReply(556, "5.1.10", "null MX"))
    assert is_permanent_failure(SmtpReply(550, None, "no"))
    assert is_permanent_failure(SmtpReply(553, None, "bad address"))
    assert not is_permanent_failure(SmtpReply(550, "5.7.1", "spam rejected"))
    assert not is_permanent_failure(SmtpReply(552, None, "mailbox full"))
    assert not is_permanent_failure(SmtpReply(451, "4.1.1", "later"))


async def test_an_expired_lease_is_taken_again_and_the_stale_owner_cannot_record(
    sender: Sender,
) -> None:
    await send(sender, "ann@remote.test")
    [first] = await lease(sender, "node-a")
    assert await lease(sender, "node-b") == [], "a live lease is not shared"

    sender.clock.current += LEASE + timedelta(seconds=1)
    [second] = await lease(sender, "node-b")
    assert (second.id, second.attempts, second.lease_owner) == (first.id, 2, "node-b")

    await sender.services.queue.record([(first, SmtpReply(250, "2.0.0", "late"))])
    assert (await statuses(sender.services))["ann@remote.test"] == "queued", "node-a lost its lease"
    await sender.services.queue.record([(second, SmtpReply(250, "2.0.0", "Ok"))])
    assert (await statuses(sender.services))["ann@remote.test"] == "delivered"


async def test_fresh_mail_is_leased_before_due_retries(sender: Sender) -> None:
    for n in range(3):
        await send(sender, f"old{n}@slow.test")
    for leased in await lease(sender):
        await sender.services.queue.record([(leased, SmtpReply(421, "4.4.2", "busy"))])
    sender.clock.current += timedelta(minutes=6)  # the deferred ones are due again
    await send(sender, "new@fast.test")

    [first] = await lease(sender, limit=1)
    assert first.recipient == "new@fast.test"
    rest = await lease(sender, limit=10)
    assert sorted(d.recipient for d in rest) == [
        "old0@slow.test",
        "old1@slow.test",
        "old2@slow.test",
    ]


async def test_concurrent_leasers_never_share_a_row(sender: Sender) -> None:
    for n in range(30):
        await send(sender, f"r{n}@remote.test")
    batches = await asyncio.gather(*(lease(sender, f"node-{i}", limit=8) for i in range(5)))
    ids = [d.id for batch in batches for d in batch]
    assert len(ids) == len(set(ids)) == 30
    async with sender.services.engine.connect() as conn:
        owners = dict(
            (await conn.execute(sa.select(deliveries.c.id, deliveries.c.lease_owner))).all()
        )
    for i, batch in enumerate(batches):
        assert all(owners[d.id] == f"node-{i}" for d in batch)


async def test_hosted_recipients_are_delivered_locally(sender: Sender) -> None:
    outbound_id = await send(sender, "support@acme.test", "nobody@acme.test")
    leased = {d.recipient: d for d in await lease(sender)}
    assert all(d.local for d in leased.values())

    replies = [await sender.services.queue.deliver_locally(d) for d in leased.values()]
    assert [(r.code, r.enhanced) for r in replies] == [(250, "2.0.0"), (550, "5.1.1")]
    await sender.services.queue.record(list(zip(leased.values(), replies, strict=True)))

    [copy] = await stored_copies(sender.services, sender.support)
    assert copy.folder == "INBOX" and copy.subject == "Hello"
    assert copy.data.startswith(b"Return-Path: <bounce+")
    assert b"Received: by mx.mailmark.test (Mailmark) with LOCAL" in copy.data
    assert await statuses(sender.services) == {
        "support@acme.test": "delivered",
        "nobody@acme.test": "bounced",
    }
    assert await suppressed_addresses(sender.services) == [("nobody@acme.test", "bounce")]
    assert "email.delivered" in await event_types(sender.services, outbound_id)


async def test_local_delivery_to_an_alias_reaches_each_of_its_mailboxes(sender: Sender) -> None:
    services = sender.services
    ops = await services.mailboxes.create("ops@acme.test")
    await services.aliases.add("team@acme.test", ["support@acme.test", "ops@acme.test"])
    await send(sender, "team@acme.test", subject="To the team")
    [leased] = await lease(sender)

    reply = await services.queue.deliver_locally(leased)

    assert (reply.code, reply.text) == (
        250,
        "Delivered locally to ops@acme.test, support@acme.test",
    )
    for mailbox in (sender.support, ops):
        [copy] = await stored_copies(services, mailbox)
        assert (copy.folder, copy.subject) == ("INBOX", "To the team")


async def test_retry_delete_and_list(sender: Sender) -> None:
    await send(sender, "a@slow.test", "b@slow.test")
    for leased in await lease(sender):
        await sender.services.queue.record([(leased, SmtpReply(0, None, "connection timed out"))])
    assert await lease(sender) == []

    assert await sender.services.queue_admin.retry(None) == 2
    await asyncio.wait_for(sender.services.queue.wait_for_kick(), 5)  # kicked: returns at once
    deferred = await sender.services.queue_admin.list(status="deferred")
    assert [e.recipient for e in deferred] == ["a@slow.test", "b@slow.test"]
    assert deferred[0].last_reply == "connection timed out"
    assert len(await lease(sender)) == 2

    await sender.services.queue_admin.delete(deferred[0].id)
    assert [e.recipient for e in await sender.services.queue_admin.list()] == ["b@slow.test"]
    with pytest.raises(NotFound):
        await sender.services.queue_admin.delete(deferred[0].id)
    with pytest.raises(NotFound):
        await sender.services.queue_admin.retry(deferred[0].id)


async def test_reports_that_come_back_bounce_or_complain(sender: Sender) -> None:
    outbound_id = await send(sender, "ann@remote.test", "bob@remote.test")
    for leased in await lease(sender):
        await sender.services.queue.record([(leased, SmtpReply(250, "2.0.0", "Ok"))])
    async with sender.services.engine.connect() as conn:
        from mailmark.storage.tables import outbound_messages

        token = (await conn.execute(sa.select(outbound_messages.c.token))).scalar_one()
    reports = sender.services.delivery_reports

    bounce = BounceReport(
        "bounce",
        (ReportedRecipient("ANN@remote.test", "5.1.1", "smtp; 550 5.1.1 unknown user"),),
        None,
    )
    assert await reports.process_report(token.upper(), bounce)
    complaint = BounceReport(
        "complaint", (ReportedRecipient("bob@remote.test", None, "abuse"),), None, "abuse"
    )
    assert await reports.process_report(token, complaint)
    assert not await reports.process_report("x" * 24, complaint)

    assert await statuses(sender.services) == {
        "ann@remote.test": "bounced",
        "bob@remote.test": "complained",
    }
    assert await suppressed_addresses(sender.services) == [
        ("ann@remote.test", "bounce"),
        ("bob@remote.test", "complaint"),
    ]
    types = await event_types(sender.services, outbound_id)
    assert types[-2:] == ["email.bounced", "email.complained"]


async def test_the_sent_copy_survives_as_long_as_the_queue_needs_its_blob(sender: Sender) -> None:
    await send(sender, "ann@remote.test")
    [leased] = await lease(sender)
    await sender.services.mailboxes.delete("sales@acme.test")
    assert await sender.services.blobs.exists(leased.blob_key), "the queue still delivers it"
    await sender.services.queue.record([(leased, SmtpReply(550, "5.1.1", "no such user"))])
    assert (await statuses(sender.services))["ann@remote.test"] == "bounced"


async def test_signing_key_is_the_active_rsa_key(sender: Sender) -> None:
    key = await sender.services.signing_keys.signing_key("ACME.test")
    assert key is not None and key.algorithm == "rsa-sha256" and key.state == "active"
    assert await sender.services.signing_keys.signing_key("unknown.test") is None


async def test_sent_copy_is_seen(sender: Sender) -> None:
    await send(sender, "ann@remote.test")
    async with sender.services.engine.connect() as conn:
        flags = (await conn.execute(sa.select(placements.c.flags))).scalar_one()
    assert flags == ["\\Seen"]

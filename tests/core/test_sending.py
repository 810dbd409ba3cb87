"""Sending: the message built, the Sent copy, the queue rows, and every refusal (injection, quota,
suppression, sender) — all or nothing."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Services
from mailmark.core.errors import Forbidden, InvalidInput, QuotaExceeded, Suppressed
from mailmark.core.model import Mailbox, Suppression
from mailmark.storage.tables import deliveries, events, mailboxes, outbound_messages, users
from tests.core.test_plans import EMAIL_LIMIT
from tests.support.clock import SettableClock
from tests.support.world import HOSTNAME, World, stored_copies


@pytest.fixture
def clock() -> SettableClock:
    """The services' clock, moved by the tests of quotas and schedules."""
    return SettableClock()


def parsed(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


async def count_rows(services: Services, table: sa.Table) -> int:
    async with services.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def blob_count(services: Services) -> int:
    return sum(1 for path in services.settings.blob_path.rglob("*") if path.is_file())


async def test_submit_builds_the_message_places_a_sent_copy_and_queues_each_recipient(
    world: World,
) -> None:
    services = world.services
    submission = await services.sending.submit(
        mailbox=world.sales,
        to=["ann@remote.test", "Bob@Remote.TEST"],
        cc=["carol@other.test"],
        bcc=["dave@hidden.test", "ann@remote.test"],
        subject="Quarterly numbers: é",
        text="Line one\nLine two\r\n.\nlast",
        html="<p>Hello</p>",
        reply_to="replies@acme.test",
        headers={"List-Unsubscribe": "<https://acme.test/u/1>"},
    )

    assert submission.recipients == (
        "ann@remote.test",
        "Bob@remote.test",
        "carol@other.test",
        "dave@hidden.test",
    )
    [copy] = await stored_copies(services, world.sales)
    assert copy.folder == "Sent"
    raw = copy.data
    assert b"\n" not in raw.replace(b"\r\n", b""), "CRLF line endings only"
    assert b"\r" not in raw.replace(b"\r\n", b"")
    header_section = raw.split(b"\r\n\r\n", 1)[0]
    # No Bcc field in any form; a bare substring test would also trip on a random hex Message-ID.
    assert b"dave@hidden.test" not in raw
    assert not any(line.lower().startswith(b"bcc:") for line in header_section.split(b"\r\n"))
    message = parsed(raw)
    assert message["From"] == "Sales <sales@acme.test>"
    assert message["To"] == "ann@remote.test, Bob@remote.test"
    assert message["Cc"] == "carol@other.test"
    assert message["Reply-To"] == "replies@acme.test"
    assert message["Subject"] == "Quarterly numbers: é"
    assert message["Message-ID"] == f"<{submission.message_id}>"
    assert submission.message_id.endswith("@acme.test")
    assert message["Date"] is not None
    assert message["List-Unsubscribe"] == "<https://acme.test/u/1>"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    assert plain is not None and "Line two" in plain.get_content()

    entries = await services.queue_admin.list()
    assert [(e.recipient, e.status, e.outbound_id) for e in entries] == [
        (r, "queued", submission.outbound_id) for r in submission.recipients
    ]
    async with services.engine.connect() as conn:
        outbound = (await conn.execute(outbound_messages.select())).one()
        domains = (await conn.execute(sa.select(deliveries.c.recipient_domain))).scalars().all()
        event = (await conn.execute(events.select().where(events.c.type == "email.sent"))).one()
    # acme.test is trusted without DNS: its return path is on the server's own name.
    assert outbound.envelope_from == f"bounce+{outbound.token}@{HOSTNAME}"
    assert len(outbound.token) == 24 and outbound.token.isalnum() and outbound.token.islower()
    assert outbound.message_id_header == submission.message_id
    assert outbound.sent_message_id is not None and outbound.source == "api"
    assert sorted(domains) == ["hidden.test", "other.test", "remote.test", "remote.test"]
    assert event.outbound_id == submission.outbound_id
    await asyncio.wait_for(services.queue.wait_for_kick(), 5)  # kicked: returns at once


async def test_the_signature_and_display_name_are_used(world: World) -> None:
    services = world.services
    signed = await services.mailboxes.create(
        "ceo@acme.test", display_name="Jane Doe, CEO", signature="Jane\nAcme & Co"
    )
    await services.sending.submit(
        mailbox=signed, to=["ann@remote.test"], subject="Hi", text="Body", html="<b>Body</b>"
    )
    [copy] = await stored_copies(services, signed)
    message = parsed(copy.data)
    assert message["From"].addresses[0].display_name == "Jane Doe, CEO"
    assert b'"Jane Doe, CEO" <ceo@acme.test>' in copy.data
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and plain.get_content().endswith(
        "Body\r\n\r\n-- \r\nJane\r\nAcme & Co\r\n"
    )
    assert html is not None and "Jane<br>\r\nAcme &amp; Co" in html.get_content()


@pytest.mark.parametrize(
    "field",
    [
        {"subject": "Hi\r\nBcc: victim@remote.test"},
        {"subject": "Hi\nX-Injected: 1"},
        {"subject": "Hi\x00"},
        {"to": ["ann@remote.test\r\nBcc: victim@remote.test"]},
        {"cc": ["ann@remote.test\n"]},
        {"reply_to": "a@acme.test\r\nX: y"},
        {"headers": {"X-Tag": "a\r\nBcc: victim@remote.test"}},
        {"headers": {"X-Bad\r\nName": "v"}},
        {"headers": {"Bcc": "victim@remote.test"}},
        {"to": ['"quoted"@remote.test']},
        {"to": ["not-an-address"]},
        {"to": []},
    ],
)
async def test_injection_and_malformed_input_are_refused_before_anything_is_stored(
    world: World, field: dict[str, object]
) -> None:
    arguments: dict[str, object] = {"to": ["ann@remote.test"], "subject": "Hi", "text": "Body"}
    arguments.update(field)
    blobs_before = await blob_count(world.services)
    with pytest.raises(InvalidInput):
        await world.services.sending.submit(mailbox=world.sales, **arguments)  # type: ignore[arg-type]
    assert await count_rows(world.services, outbound_messages) == 0
    assert await count_rows(world.services, deliveries) == 0
    assert await stored_copies(world.services, world.sales) == []
    assert await blob_count(world.services) == blobs_before


async def test_the_monthly_quota_counts_recipients_and_resets_each_month(
    services: Services, clock: SettableClock
) -> None:
    clock.current = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
    await services.accounts.create(
        "small", owner_email="o@small.test", password="pass-word-1", plan="starter"
    )
    await services.domains.add("small.test", account_name="small", trust=True)
    mailbox = await services.mailboxes.create("me@small.test")
    for batch in range(10):
        await services.sending.submit(
            mailbox=mailbox,
            to=[f"r{batch}-{n}@remote.test" for n in range(100)],
            subject="Hi",
            text="x",
        )

    with pytest.raises(QuotaExceeded) as refused:
        await services.sending.submit(
            mailbox=mailbox, to=["one-more@remote.test"], subject="Hi", text="x"
        )
    assert refused.value.message == EMAIL_LIMIT.format(1000)
    assert await count_rows(services, deliveries) == 1000
    assert len(await stored_copies(services, mailbox)) == 10, "no Sent copy for a refused message"

    clock.current += timedelta(hours=1)  # 1 April: a new month
    await services.sending.submit(
        mailbox=mailbox, to=["one-more@remote.test"], subject="Hi", text="x"
    )
    assert await count_rows(services, deliveries) == 1001


async def add_suppression(services: Services, mailbox: Mailbox, address: str) -> None:
    async with services.uow() as uow:
        await uow.suppressions.add(
            Suppression(
                mailbox.domain_id, address, "complaint", "abuse report", services.clock.now()
            )
        )
        await uow.commit()


async def test_suppressed_recipients_are_refused_for_their_sending_domain_only(
    world: World,
) -> None:
    services = world.services
    await add_suppression(services, world.sales, "blocked@remote.test")

    with pytest.raises(
        Suppressed, match=re.escape("blocked@remote.test is on the suppression list of acme.test")
    ):
        await services.sending.submit(
            mailbox=world.sales,
            to=["fine@remote.test"],
            bcc=["Blocked@remote.test"],
            subject="Hi",
            text="x",
        )
    with pytest.raises(Suppressed, match="marked an earlier message as spam"):
        await services.sending.check_recipient(world.sales, "blocked@remote.test")
    await services.sending.check_recipient(world.sales, "fine@remote.test")
    with pytest.raises(InvalidInput):
        await services.sending.check_recipient(world.sales, "fine@remote.test\r\n")
    assert await count_rows(services, deliveries) == 0

    await services.domains.add("other.test", account_name="acme", trust=True)
    other = await services.mailboxes.create("news@other.test")
    await services.sending.submit(mailbox=other, to=["blocked@remote.test"], subject="Hi", text="x")
    assert [e.recipient for e in await services.queue_admin.list()] == ["blocked@remote.test"]


RAW = (
    b"From: Sales <sales@acme.test>\r\n"
    b"To: ann@remote.test\r\n"
    b"Bcc: secret@hidden.test,\r\n"
    b"  other@hidden.test\r\n"
    b"Subject: From a desktop client\r\n"
    b"\r\n"
    b"Body line\r\n"
    b"Bcc: this body line stays\r\n"
)


async def test_submit_raw_strips_bcc_and_adds_message_id_and_date(world: World) -> None:
    services = world.services
    submission = await services.sending.submit_raw(
        mailbox=world.sales, recipients=["ann@remote.test", "secret@hidden.test"], raw=RAW
    )
    [copy] = await stored_copies(services, world.sales)
    assert b"hidden.test" not in copy.data.split(b"\r\n\r\n")[0]
    assert copy.data.endswith(b"\r\n\r\nBody line\r\nBcc: this body line stays\r\n")
    message = parsed(copy.data)
    assert message["Message-ID"] == f"<{submission.message_id}>"
    assert message["Date"] is not None
    assert submission.recipients == ("ann@remote.test", "secret@hidden.test")
    async with services.engine.connect() as conn:
        source = (await conn.execute(sa.select(outbound_messages.c.source))).scalar_one()
    assert source == "submission"


async def test_submit_raw_keeps_an_existing_message_id(world: World) -> None:
    raw = b"Message-ID: <kept@client.test>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n" + RAW
    submission = await world.services.sending.submit_raw(
        mailbox=world.sales, recipients=["ann@remote.test"], raw=raw
    )
    assert submission.message_id == "kept@client.test"
    [copy] = await stored_copies(world.services, world.sales)
    assert copy.data.count(b"Message-ID:") == 1 and copy.data.count(b"Date:") == 1


async def test_only_the_mailbox_or_a_mailbox_of_the_same_user_may_be_the_sender(
    world: World,
) -> None:
    services = world.services
    forged = RAW.replace(b"From: Sales <sales@acme.test>", b"From: <support@acme.test>")
    with pytest.raises(Forbidden):
        await services.sending.submit_raw(
            mailbox=world.sales, recipients=["ann@remote.test"], raw=forged
        )
    two_froms = b"From: a@acme.test, sales@acme.test\r\n" + RAW.split(b"\r\n", 1)[1]
    with pytest.raises(Forbidden):
        await services.sending.submit_raw(
            mailbox=world.sales, recipients=["ann@remote.test"], raw=two_froms
        )
    services.sending.check_sender(world.sales, "SALES@acme.test")
    with pytest.raises(Forbidden):
        services.sending.check_sender(world.sales, "support@acme.test")
    assert await count_rows(services, outbound_messages) == 0

    async with services.engine.begin() as conn:
        user_id = (await conn.execute(sa.select(users.c.id))).scalar_one()
        await conn.execute(mailboxes.update().values(user_id=user_id))
    sales = await services.mailboxes.get("sales@acme.test")
    submission = await services.sending.submit_raw(
        mailbox=sales, recipients=["ann@remote.test"], raw=forged
    )
    async with services.engine.connect() as conn:
        outbound = (await conn.execute(outbound_messages.select())).one()
    assert outbound.id == submission.outbound_id
    assert (outbound.from_addr, outbound.mailbox_id) == ("support@acme.test", world.support.id)
    assert outbound.envelope_from.endswith(f"@{HOSTNAME}")
    assert [c.folder for c in await stored_copies(services, sales)] == ["Sent"]


async def test_a_scheduled_message_waits_for_its_time(
    services: Services, clock: SettableClock
) -> None:
    await services.accounts.create(
        "acme", owner_email="o@acme.test", password="pass-word-1", plan="pro"
    )
    await services.domains.add("acme.test", account_name="acme", trust=True)
    mailbox = await services.mailboxes.create("sales@acme.test")
    later = clock.current + timedelta(hours=2)
    await services.sending.submit(
        mailbox=mailbox, to=["ann@remote.test"], subject="Later", text="x", scheduled_at=later
    )
    assert await services.queue.lease_due("n", 10, timedelta(minutes=1)) == []
    assert await services.queue.next_due_at() == later
    clock.current = later
    [leased] = await services.queue.lease_due("n", 10, timedelta(minutes=1))
    assert leased.expires_at == later + services.settings.queue_lifetime


async def test_non_ascii_names_and_long_subjects_and_lines_read_back(world: World) -> None:
    services = world.services
    named = await services.mailboxes.create("zoe@acme.test", display_name="Zoë Ångström")
    subject = "Привет, мир! " * 12 + "end"
    html = "<p>" + "ж" * 300 + "</p>"
    await services.sending.submit(
        mailbox=named, to=["ann@remote.test"], subject=subject, text="a" * 500, html=html
    )
    [copy] = await stored_copies(services, named)
    assert copy.data.isascii() or b"Content-Transfer-Encoding: 8bit" in copy.data
    head = copy.data.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    message = parsed(copy.data)
    assert message["Subject"] == subject
    assert message["From"].addresses[0].display_name == "Zoë Ångström"
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None and plain.get_content().rstrip() == "a" * 500
    assert rich is not None and rich.get_content().rstrip() == html

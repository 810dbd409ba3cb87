"""Reports about mail we sent, arriving at the MX for its VERP return path, over real sockets.

DSNs and ARF complaints sent to bounce+<token>@<our host name> (the return path of acme.test,
trusted without DNS) or bounce+<token>@mail.<domain> change the delivery's status and the
suppression list; unknown tokens and unreadable reports are accepted and dropped (never bounced).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import aiosmtplib
import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Services
from mailmark.core.errors import Suppressed
from mailmark.storage.tables import events, outbound_messages, suppressions
from tests.core.report_samples import (
    arf_complaint,
    exim_bounce,
    gmail_bounce,
    postfix_bounce,
    postfix_delay,
)
from tests.support.world import World, stored_copies


async def sent(world: World, *recipients: str) -> tuple[int, str, str]:
    """Queue a message from sales@ (scheduled for tomorrow, so the worker leaves it alone);
    return its outbound id, VERP address and Message-ID."""
    services = world.services
    submission = await services.sending.submit(
        mailbox=world.sales,
        to=list(recipients),
        subject="Quarterly numbers",
        text="Numbers.",
        scheduled_at=services.clock.now() + timedelta(days=1),
    )
    async with services.engine.connect() as conn:
        envelope_from = (
            await conn.execute(
                sa.select(outbound_messages.c.envelope_from).where(
                    outbound_messages.c.id == submission.outbound_id
                )
            )
        ).scalar_one()
    return submission.outbound_id, envelope_from, submission.message_id


async def report(
    port: int, data: bytes, recipients: list[str], sender: str = ""
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    """Send like a remote MTA sends a DSN: null reverse-path (RFC 5321 §4.5.5), no TLS."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=15)
    await client.connect()
    try:
        return await client.sendmail(sender, recipients, data)
    finally:
        await client.quit()


async def statuses(services: Services) -> dict[str, str]:
    return {entry.recipient: entry.status for entry in await services.queue_admin.list()}


async def suppressed(services: Services) -> dict[str, str]:
    async with services.engine.connect() as conn:
        rows = (await conn.execute(sa.select(suppressions.c.address, suppressions.c.reason))).all()
    return {row.address: row.reason for row in rows}


async def event_types(services: Services, outbound_id: int) -> list[str]:
    query = (
        sa.select(events.c.type).where(events.c.outbound_id == outbound_id).order_by(events.c.id)
    )
    async with services.engine.connect() as conn:
        return list((await conn.execute(query)).scalars())


async def test_a_postfix_bounce_marks_the_delivery_bounced_and_suppresses(
    world: World, mx_port: int
) -> None:
    services = world.services
    outbound_id, verp, message_id = await sent(world, "bob@remote.test", "carol@remote.test")
    errors, response = await report(
        mx_port, postfix_bounce(verp, "bob@remote.test", message_id), [verp]
    )
    assert errors == {} and response.startswith("2.0.0 Ok: report received as ")
    assert await statuses(services) == {"bob@remote.test": "bounced", "carol@remote.test": "queued"}
    assert await suppressed(services) == {"bob@remote.test": "bounce"}
    assert await event_types(services, outbound_id) == ["email.sent", "email.bounced"]
    with pytest.raises(Suppressed):
        await services.sending.check_recipient(world.sales, "bob@remote.test")
    # Nothing is filed in a mailbox: the report was for the queue, not for a person.
    assert await stored_copies(services, world.support) == []


async def test_an_arf_complaint_marks_the_delivery_complained(world: World, mx_port: int) -> None:
    services = world.services
    outbound_id, verp, message_id = await sent(world, "user@mailbox.test")
    await report(
        mx_port,
        arf_complaint(verp, "user@mailbox.test", message_id),
        [verp],
        sender="staff@fbl.mailbox.test",
    )
    assert await statuses(services) == {"user@mailbox.test": "complained"}
    assert await suppressed(services) == {"user@mailbox.test": "complaint"}
    assert (await event_types(services, outbound_id))[-1] == "email.complained"


async def test_an_exim_bounce_for_two_recipients(world: World, mx_port: int) -> None:
    services = world.services
    _, verp, message_id = await sent(world, "carol@exim.test", "dave@exim.test", "erin@exim.test")
    await report(
        mx_port, exim_bounce(verp, ("carol@exim.test", "Dave@Exim.test"), message_id), [verp]
    )
    assert await statuses(services) == {
        "carol@exim.test": "bounced",
        "dave@exim.test": "bounced",
        "erin@exim.test": "queued",
    }
    # Exim says "Status: 5.0.0" (undefined) with "550 No such user": the basic code decides.
    # A full mailbox (552 5.2.2) is not a bad address: never suppressed.
    assert await suppressed(services) == {"carol@exim.test": "bounce"}


async def test_the_token_is_matched_whatever_its_case(world: World, mx_port: int) -> None:
    services = world.services
    _, verp, message_id = await sent(world, "nobody@gmail.test")
    await report(mx_port, gmail_bounce(verp, "nobody@gmail.test", message_id), [verp.upper()])
    assert await statuses(services) == {"nobody@gmail.test": "bounced"}


async def test_a_delay_notice_changes_no_status(world: World, mx_port: int) -> None:
    services = world.services
    outbound_id, verp, message_id = await sent(world, "bob@remote.test")
    await report(mx_port, postfix_delay(verp, "bob@remote.test", message_id), [verp])
    assert await statuses(services) == {"bob@remote.test": "queued"}
    assert await suppressed(services) == {}
    assert await event_types(services, outbound_id) == ["email.sent", "email.deferred"]


async def test_unknown_tokens_and_garbage_are_accepted_and_dropped(
    world: World, mx_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    services = world.services
    _, verp, message_id = await sent(world, "bob@remote.test")
    stranger = "bounce+zzzzzzzzzzzzzzzzzzzzzzzz@mail.acme.test"
    caplog.set_level(logging.INFO, logger="mailmark.core.inbound")
    errors, response = await report(
        mx_port, postfix_bounce(stranger, "bob@remote.test", message_id), [stranger]
    )
    assert errors == {} and response.startswith("2.0.0 ")
    assert "no outgoing message has its return path" in caplog.text
    errors, response = await report(
        mx_port, b"From: someone@else.test\r\nSubject: hi\r\n\r\nNot a report.\r\n", [verp]
    )
    assert errors == {} and response.startswith("2.0.0 ")
    assert "no delivery report or complaint in it" in caplog.text
    assert await statuses(services) == {"bob@remote.test": "queued"}
    assert await suppressed(services) == {}


@pytest.mark.parametrize(
    "recipient",
    [
        "bounce+abcdefghijklmnopqrstuvwx@mail.elsewhere.test",  # a domain not hosted here
        "bounce+short@mail.acme.test",  # not a token: an ordinary, unhosted address
        "bounce+abcdefghijklmnopqrstuvwx@acme.test",  # not the return-path subdomain
        "bounce+abcdefghijklmnopqrstuvwx@mx.elsewhere.test",  # another server's own name
        "bounce+abcdefghijklmnopqrstuvwx@sub.mx.mailmark.test",  # below ours
    ],
)
async def test_addresses_that_are_not_our_return_paths(
    world: World, mx_port: int, recipient: str
) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await report(mx_port, b"Subject: x\r\n\r\nx\r\n", [recipient])
    [reply] = refused.value.recipients
    assert reply.code in (550, 554)


async def test_a_report_and_a_mailbox_in_one_transaction(world: World, mx_port: int) -> None:
    services = world.services
    _, verp, message_id = await sent(world, "bob@remote.test")
    errors, response = await report(
        mx_port,
        postfix_bounce(verp, "bob@remote.test", message_id),
        [verp, "support@acme.test"],
        sender="postmaster@remote.test",
    )
    assert errors == {} and response.startswith("2.0.0 Ok: queued as ")
    assert await statuses(services) == {"bob@remote.test": "bounced"}
    copies = await stored_copies(services, world.support)
    assert [(c.folder, c.subject) for c in copies] == [
        ("INBOX", "Undelivered Mail Returned to Sender")
    ]

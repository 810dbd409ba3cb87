"""Forwarding over real sockets: mail to a forwarding mailbox arrives through our MX, leaves
through the outbound queue for a receiving MTA on loopback with an SRS envelope sender that
passes SPF there; a bounce to that address reaches the original sender with a null reverse-path;
forged and expired SRS addresses are refused; loops are stopped with the copy kept."""

from __future__ import annotations

import asyncio
import re
import smtplib
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage

import pytest

from mailmark.bootstrap import Listeners, Services
from mailmark.config import Settings
from mailmark.core.errors import AccountPaused, InvalidInput
from mailmark.core.forwarding import MAX_FORWARDING_ADDRESSES
from mailmark.core.srs import MAX_AGE_DAYS
from mailmark.dns_tools.record_set import MailServer, spf_value
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.smtp_in.authentication import MessageAuthenticator
from tests.fakedns import FakeDns
from tests.smtp_out.conftest import publish_dkim
from tests.support.clock import SettableClock
from tests.support.dns_records import publish
from tests.support.smtp_sink import AiosmtpdSink, Received
from tests.support.world import HOSTNAME, World, queued_emails, stored_copies


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
async def sink() -> AsyncIterator[AiosmtpdSink]:
    server = AiosmtpdSink()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def settings(settings: Settings, sink: AiosmtpdSink) -> Settings:
    return settings.model_copy(update={"remote_smtp_port": sink.port})


@pytest.fixture
async def internet(services: Services, world: World, fake_dns: FakeDns) -> FakeDns:
    """remote.test (the forwarding destination) and example.org (the original sender) receive
    on the sink; acme.test publishes its records (SPF naming this server, DKIM); this server's
    name has its address."""
    for domain in ("remote.test", "example.org"):
        fake_dns.add(domain, "MX", f"10 mx.{domain}.")
        fake_dns.add(f"mx.{domain}", "A", "127.0.0.1")
    fake_dns.add(HOSTNAME, "A", "127.0.0.1")
    fake_dns.add(HOSTNAME, "TXT", spf_value(MailServer(HOSTNAME)))
    _, records = await services.domains.records(world.domain)
    publish(fake_dns, records)
    await publish_dkim(services, fake_dns, world.domain)
    return fake_dns


def letter(subject: str = "Quarterly figures", **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Alice <alice@example.org>"
    message["To"] = "sales@acme.test"
    message["Subject"] = subject
    message["Message-ID"] = "<figures-1@example.org>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("The figures are attached in spirit.\n")
    return message.as_bytes().replace(b"\n", b"\r\n")


async def send(
    port: int, mail_from: str, to: list[str], raw: bytes
) -> dict[str, tuple[int, bytes]]:
    """smtplib in a thread: the MX answers on this test's event loop."""

    def talk() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            return client.sendmail(mail_from, to, raw)

    return await asyncio.to_thread(talk)


async def rcpt(port: int, address: str) -> tuple[int, bytes]:
    def talk() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo("client.example.org")
            client.mail("")
            return client.rcpt(address)

    return await asyncio.to_thread(talk)


async def forwarded(listeners: Listeners, sink: AiosmtpdSink, count: int = 1) -> list[Received]:
    await listeners.outbound.wait_until_idle()
    await sink.wait_for(count)
    return sink.received


async def test_forwarded_mail_arrives_with_an_srs_sender_that_passes_spf(
    services: Services, world: World, listeners: Listeners, sink: AiosmtpdSink, internet: FakeDns
) -> None:
    await services.forwarding.set(world.sales.address, ["bob@remote.test"], keep_copy=True)
    await send(listeners.mx_port, "alice@example.org", ["sales@acme.test"], letter())

    [got] = await forwarded(listeners, sink)
    assert got.recipients == ["bob@remote.test"]
    assert re.fullmatch(
        r"SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=example\.org=alice@acme\.test", got.mail_from
    )
    head = got.content.split(b"\r\n\r\n", 1)[0]
    assert b"Delivered-To: sales@acme.test\r\n" in head
    assert b"Subject: Quarterly figures" in head
    assert re.search(
        rb"(?m)^Received: from .*\sby mx\.mailmark\.test \(Mailmark\)", head, re.DOTALL
    )
    # Our Return-Path and Authentication-Results stay behind: they belong to final delivery.
    assert b"Return-Path" not in head and b"Authentication-Results" not in head

    # The receiving side's SPF check, by the evaluator our own MX uses, against what acme.test
    # publishes: the SRS sender's domain names this server.
    auth = await MessageAuthenticator(
        DnsResolver([internet.address], cache=False), "mx.remote.test"
    ).authenticate(raw=got.content, client_ip="127.0.0.1", helo=HOSTNAME, mail_from=got.mail_from)
    assert (auth.spf, auth.spf_identity) == ("pass", got.mail_from)
    assert "acme.test" in auth.dkim_domains  # signed by the forwarding domain

    [copy] = await stored_copies(services, world.sales)
    assert copy.folder == "INBOX" and copy.subject == "Quarterly figures"


async def test_without_a_local_copy_only_the_forward_remains(
    services: Services, world: World, listeners: Listeners, sink: AiosmtpdSink, internet: FakeDns
) -> None:
    await services.forwarding.set(
        world.sales.address, ["bob@remote.test", "carol@remote.test"], keep_copy=False
    )
    await send(listeners.mx_port, "alice@example.org", ["sales@acme.test"], letter())
    received = await forwarded(listeners, sink, 2)
    assert sorted(r for got in received for r in got.recipients) == [
        "bob@remote.test",
        "carol@remote.test",
    ]
    assert await stored_copies(services, world.sales) == []


async def test_a_bounce_to_the_srs_address_reaches_the_original_sender(
    services: Services, world: World, listeners: Listeners, sink: AiosmtpdSink, internet: FakeDns
) -> None:
    await services.forwarding.set(world.sales.address, ["gone@remote.test"], keep_copy=False)
    await send(listeners.mx_port, "alice@example.org", ["sales@acme.test"], letter())
    [got] = await forwarded(listeners, sink)

    # remote.test accepted it, then bounced it to the envelope sender it saw.
    bounce = (
        b"From: MAILER-DAEMON@remote.test\r\nTo: " + got.mail_from.encode() + b"\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n\r\ngone@remote.test: no such user\r\n"
    )
    assert await send(listeners.mx_port, "", [got.mail_from], bounce) == {}
    received = await forwarded(listeners, sink, 2)
    returned = received[1]
    # aiosmtpd spells the null reverse-path "<>".
    assert (returned.mail_from, returned.recipients) == ("<>", ["alice@example.org"])
    assert b"Subject: Undelivered Mail Returned to Sender" in returned.content


async def test_forged_and_expired_srs_addresses_are_refused(
    services: Services, world: World, listeners: Listeners, clock: SettableClock
) -> None:
    srs = services.forwarder.srs
    good = srs.forward("alice@example.org", "acme.test", clock.now())
    code, text = await rcpt(listeners.mx_port, good)
    assert code == 250, text

    forged = good.replace("=alice@", "=mallory@")
    code, text = await rcpt(listeners.mx_port, forged)
    assert code == 550 and text.startswith(b"5.1.1") and b"not issued here" in text

    old = srs.forward("alice@example.org", "acme.test", clock.now() - timedelta(MAX_AGE_DAYS + 2))
    code, text = await rcpt(listeners.mx_port, old)
    assert code == 550 and b"expired" in text

    # An SRS address of a domain not hosted here is relaying, refused as any other.
    code, text = await rcpt(listeners.mx_port, good.replace("@acme.test", "@elsewhere.test"))
    assert code == 554 and b"Relay access denied" in text, text


async def test_a_message_that_was_forwarded_by_the_mailbox_before_is_kept_not_forwarded(
    services: Services, world: World, listeners: Listeners, sink: AiosmtpdSink, internet: FakeDns
) -> None:
    """It went out to bob@remote.test, whose server forwarded it back: sending it on again
    would loop (RFC 5321 §6.3). It is kept in INBOX even though no copy was to be kept."""
    await services.forwarding.set(world.sales.address, ["bob@remote.test"], keep_copy=False)
    looped = letter(Delivered_To="sales@acme.test")
    await send(listeners.mx_port, "alice@example.org", ["sales@acme.test"], looped)
    await listeners.outbound.wait_until_idle()
    assert await queued_emails(services) == []
    [copy] = await stored_copies(services, world.sales)
    assert copy.folder == "INBOX"


async def test_two_mailboxes_forwarding_to_each_other_deliver_once_each(
    services: Services, world: World, listeners: Listeners, sink: AiosmtpdSink, internet: FakeDns
) -> None:
    """sales@ forwards to support@ and back, both without a copy: the queue delivers mail for
    hosted domains locally, without running the rules again, so the message stops at support@."""
    await services.forwarding.set(world.sales.address, [world.support.address], keep_copy=False)
    await services.forwarding.set(world.support.address, [world.sales.address], keep_copy=False)
    await send(listeners.mx_port, "alice@example.org", ["sales@acme.test"], letter())
    await listeners.outbound.wait_until_idle()
    assert await stored_copies(services, world.sales) == []
    [copy] = await stored_copies(services, world.support)
    assert b"Delivered-To: sales@acme.test" in copy.data


async def test_a_message_past_many_hops_is_kept_not_forwarded(
    services: Services, world: World, listeners: Listeners, sink: AiosmtpdSink, internet: FakeDns
) -> None:
    await services.forwarding.set(world.sales.address, ["bob@remote.test"], keep_copy=False)
    hops = b"".join(
        f"Received: from hop{n}.example by hop{n + 1}.example; 6 Dec 2026 04:00:00 +0000\r\n".encode()
        for n in range(40)
    )
    await send(listeners.mx_port, "alice@example.org", ["sales@acme.test"], hops + letter())
    await listeners.outbound.wait_until_idle()
    assert await queued_emails(services) == []
    assert [c.folder for c in await stored_copies(services, world.sales)] == ["INBOX"]


async def test_mail_filed_in_junk_is_not_forwarded(
    services: Services, world: World, listeners: Listeners, sink: AiosmtpdSink, internet: FakeDns
) -> None:
    """example.org asks for unauthenticated mail to be quarantined (DMARC p=quarantine)."""
    internet.add("example.org", "TXT", "v=spf1 -all")
    internet.add("_dmarc.example.org", "TXT", "v=DMARC1; p=quarantine")
    await services.forwarding.set(world.sales.address, ["bob@remote.test"], keep_copy=False)
    await send(listeners.mx_port, "alice@example.org", ["sales@acme.test"], letter())
    await listeners.outbound.wait_until_idle()
    assert await queued_emails(services) == []
    assert [c.folder for c in await stored_copies(services, world.sales)] == ["Junk"]


async def test_the_null_sender_stays_null_when_forwarded(
    services: Services, world: World, listeners: Listeners, sink: AiosmtpdSink, internet: FakeDns
) -> None:
    await services.forwarding.set(world.sales.address, ["bob@remote.test"])
    await send(listeners.mx_port, "", ["sales@acme.test"], letter("Delivery Status Notification"))
    [got] = await forwarded(listeners, sink)
    assert (got.mail_from, got.recipients) == ("<>", ["bob@remote.test"])  # aiosmtpd's null


async def test_settings_are_checked(services: Services, world: World) -> None:
    with pytest.raises(InvalidInput, match="not a valid email address"):
        await services.forwarding.set(world.sales.address, ["not an address"])
    with pytest.raises(InvalidInput, match="cannot forward to itself"):
        await services.forwarding.set(world.sales.address, ["Sales@acme.test"])
    many = [f"r{n}@remote.test" for n in range(MAX_FORWARDING_ADDRESSES + 1)]
    with pytest.raises(InvalidInput, match=f"at most {MAX_FORWARDING_ADDRESSES}"):
        await services.forwarding.set(world.sales.address, many)
    saved = await services.forwarding.set(
        world.sales.address, ["Bob@Remote.TEST", "bob@remote.test", " "], keep_copy=False
    )
    assert (saved.addresses, saved.keep_copy) == (("Bob@remote.test",), False)
    assert await services.forwarding.get(world.sales.address) == saved
    off = await services.forwarding.set(world.sales.address, [])
    assert (off.addresses, off.keep_copy) == ((), True)
    assert await services.forwarding.get(world.sales.address) == off


async def test_a_paused_account_forwards_nothing_and_keeps_the_mail(
    services: Services, listeners: Listeners, sink: AiosmtpdSink, clock: SettableClock
) -> None:
    await services.accounts.create("trial", owner_email="o@trial.test", password="pass-word-1")
    await services.domains.add("trial.test", account_name="trial", trust=True)
    mailbox = await services.mailboxes.create("early@trial.test")
    await services.forwarding.set(mailbox.address, ["bob@remote.test"], keep_copy=False)
    clock.advance(timedelta(days=8))
    with pytest.raises(AccountPaused, match="Your free trial has ended"):
        await services.forwarding.set(mailbox.address, ["carol@remote.test"])

    await send(listeners.mx_port, "alice@example.org", ["early@trial.test"], letter())
    await listeners.outbound.wait_until_idle()
    assert await queued_emails(services) == []
    assert [c.folder for c in await stored_copies(services, mailbox)] == ["INBOX"]


async def test_a_sieve_redirect_and_vacation_are_carried_out_by_forwarding_and_the_responder(
    services: Services, world: World, listeners: Listeners, sink: AiosmtpdSink, internet: FakeDns
) -> None:
    """The filters' actions reach the pieces that carry them out: `redirect :copy` leaves through
    the queue with an SRS sender like any forward, `vacation` answers the sender with a null
    reverse-path, and the implicit keep stores the copy."""
    await services.sieve.put(
        world.sales.address,
        'require ["copy", "vacation"];\n'
        'redirect :copy "bob@remote.test";\n'
        'vacation :days 3 :subject "Away this week" "Back on Monday.";\n',
    )
    await send(listeners.mx_port, "alice@example.org", ["sales@acme.test"], letter())

    got = {tuple(m.recipients): m for m in await forwarded(listeners, sink, count=2)}
    assert set(got) == {("bob@remote.test",), ("alice@example.org",)}
    assert got[("bob@remote.test",)].mail_from.startswith("SRS0=")
    reply = got[("alice@example.org",)]
    assert reply.mail_from == "<>"
    head = reply.content.split(b"\r\n\r\n", 1)[0]
    assert b"Subject: Away this week" in head and b"Auto-Submitted: auto-replied" in head
    assert b"In-Reply-To: <figures-1@example.org>" in head
    [copy] = await stored_copies(services, world.sales)
    assert copy.folder == "INBOX"

"""The worker delivering the queue to a receiving MTA on loopback: signatures, replies, retries,
bounces, suppression, and the bytes on the wire."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email import policy

import dkim  # type: ignore[import-untyped]
import pytest

from mailmark.bootstrap import Services
from mailmark.core.errors import Suppressed
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.smtp_out.worker import OutboundWorker
from tests.fakedns import FakeDns
from tests.smtp_out.conftest import QUEUE_LIFETIME
from tests.support.clock import SettableClock
from tests.support.smtp_sink import AiosmtpdSink
from tests.support.world import World, stored_copies


async def statuses(services: Services) -> dict[str, str]:
    return {entry.recipient: entry.status for entry in await services.queue_admin.list(limit=1000)}


async def test_delivered_mail_is_signed_and_verifies(
    services: Services,
    world: World,
    outbound: OutboundWorker,
    sink: AiosmtpdSink,
    fake_dns: FakeDns,
) -> None:
    submitted = await services.sending.submit(
        mailbox=world.sales,
        to=["bob@remote.test"],
        cc=["carol@other.test"],
        subject="Quarterly figures",
        text="Hello Bob,\n\nthe figures are attached.\n",
        headers={"List-Unsubscribe": "<https://acme.test/u/1>"},
    )
    await outbound.wait_until_idle()
    assert await statuses(services) == {
        "bob@remote.test": "delivered",
        "carol@other.test": "delivered",
    }
    assert sorted(r for got in sink.received for r in got.recipients) == [
        "bob@remote.test",
        "carol@other.test",
    ]
    got = sink.received[0]
    assert re.fullmatch(r"bounce\+[a-z0-9]{24}@mx\.mailmark\.test", got.mail_from)
    assert got.tls is False  # the sink offers no STARTTLS
    resolver = DnsResolver([fake_dns.address])
    assert dkim.verify(got.content, dnsfunc=resolver.dkim_dnsfunc)
    signature = email.message_from_bytes(got.content, policy=policy.default)["DKIM-Signature"]
    tags = dict(
        part.strip().split("=", 1) for part in re.sub(r"\s+", "", str(signature)).split(";") if part
    )
    assert tags["d"] == "acme.test" and tags["a"] == "rsa-sha256" and tags["c"] == "relaxed/relaxed"
    signed = tags["h"].lower().split(":")
    assert signed.count("from") == 2 and signed.count("list-unsubscribe") == 2
    assert signed.count("reply-to") == 1  # absent, yet signed: none may be added
    assert f"Message-ID: <{submitted.message_id}>".encode() in got.content
    entries = {entry.recipient: entry for entry in await services.queue_admin.list()}
    assert entries["bob@remote.test"].last_code == 250
    assert entries["bob@remote.test"].mx_host == "mx.remote.test"


async def test_recipients_of_one_message_share_a_transaction_and_connections_are_reused(
    services: Services, world: World, outbound: OutboundWorker, sink: AiosmtpdSink
) -> None:
    await services.sending.submit(
        mailbox=world.sales,
        to=["a@remote.test", "b@remote.test", "c@remote.test"],
        subject="Team",
        text="Hi all",
    )
    await outbound.wait_until_idle()
    assert [sorted(got.recipients) for got in sink.received] == [
        ["a@remote.test", "b@remote.test", "c@remote.test"]
    ]
    for n in range(6):
        await services.sending.submit(
            mailbox=world.sales, to=[f"r{n}@remote.test"], subject=f"n{n}", text="x"
        )
    await outbound.wait_until_idle()
    assert len(sink.received) == 7
    # At most two connections per destination at a time, each used for several transactions.
    assert sink.connections <= 1 + 2
    wire = b"".join(sink.wires)
    assert wire.count(b"MAIL FROM:") == 7
    # A DATA reply ends the transaction on both sides (RFC 5321 §4.1.1.4): no RSET in between.
    assert b"RSET\r\n" not in wire


def commands(wire: bytes) -> list[bytes]:
    """The command verbs a client sent on one connection, DATA content left out."""
    verbs, in_data = [], False
    for line in wire.split(b"\r\n"):
        if in_data:
            in_data = line != b"."
            continue
        verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper()
        if verb:
            verbs.append(verb)
        in_data = verb == b"DATA"
    return verbs


async def test_a_transaction_with_every_recipient_refused_is_reset_before_the_next(
    services: Services, world: World, outbound: OutboundWorker, sink: AiosmtpdSink
) -> None:
    for n in range(4):
        await services.sending.submit(
            mailbox=world.sales, to=[f"reject{n}@remote.test"], subject=f"r{n}", text="x"
        )
        await services.sending.submit(
            mailbox=world.sales, to=[f"ok{n}@remote.test"], subject=f"ok{n}", text="x"
        )
    await outbound.wait_until_idle()
    found = await statuses(services)
    assert {found[f"ok{n}@remote.test"] for n in range(4)} == {"delivered"}
    assert {found[f"reject{n}@remote.test"] for n in range(4)} == {"bounced"}
    resets = 0
    for wire in sink.wires:
        open_mail = False
        for verb in commands(bytes(wire)):
            if verb == b"MAIL":
                assert not open_mail, "MAIL sent inside an open transaction (RFC 5321 §4.1.1.2)"
                open_mail = True
            elif verb in (b"RSET", b"DATA"):
                resets += verb == b"RSET"
                open_mail = False
    assert resets >= 1


async def test_a_451_is_retried_on_schedule(
    services: Services,
    world: World,
    outbound: OutboundWorker,
    sink: AiosmtpdSink,
    clock: SettableClock,
) -> None:
    await services.sending.submit(
        mailbox=world.sales, to=["tempfail-once@remote.test"], subject="Retry me", text="x"
    )
    await outbound.wait_until_idle()
    [entry] = await services.queue_admin.list()
    assert (entry.status, entry.attempts, entry.last_code) == ("deferred", 1, 451)
    assert entry.last_reply is not None and "Try again later" in entry.last_reply
    assert entry.next_attempt_at == clock.now() + timedelta(minutes=5)
    assert sink.received == []

    clock.advance(timedelta(minutes=4))
    await outbound.wait_until_idle()
    assert (await services.queue_admin.list())[0].status == "deferred"  # not yet due

    clock.advance(timedelta(minutes=2))
    await outbound.wait_until_idle()
    [entry] = await services.queue_admin.list()
    assert (entry.status, entry.attempts, entry.last_code) == ("delivered", 2, 250)
    assert [got.recipients for got in sink.received] == [["tempfail-once@remote.test"]]


def dsn_reports(copies: list[object]) -> list[email.message.EmailMessage]:
    reports = []
    for copy in copies:
        message = email.message_from_bytes(copy.data, policy=policy.default)  # type: ignore[attr-defined]
        if message.get_content_type() == "multipart/report":
            assert copy.folder == "INBOX"  # type: ignore[attr-defined]
            reports.append(message)
    return reports  # type: ignore[return-value]


async def test_a_550_bounces_with_one_dsn_and_suppresses_the_address(
    services: Services, world: World, outbound: OutboundWorker, sink: AiosmtpdSink
) -> None:
    await services.sending.submit(
        mailbox=world.sales, to=["reject@remote.test", "ok@remote.test"], subject="Hello", text="x"
    )
    await outbound.wait_until_idle()
    assert await statuses(services) == {
        "reject@remote.test": "bounced",
        "ok@remote.test": "delivered",
    }
    [report] = dsn_reports(await stored_copies(services, world.sales))
    status = report.as_string()
    assert "Final-Recipient: rfc822; reject@remote.test" in status
    assert "Status: 5.1.1" in status and status.count("Final-Recipient:") == 1
    assert "User unknown" in status

    with pytest.raises(Suppressed):
        await services.sending.submit(
            mailbox=world.sales, to=["reject@remote.test"], subject="Again", text="x"
        )


async def test_a_recipient_still_deferred_after_the_queue_lifetime_bounces(
    services: Services,
    world: World,
    outbound: OutboundWorker,
    sink: AiosmtpdSink,
    clock: SettableClock,
) -> None:
    await services.sending.submit(mailbox=world.sales, to=["x@down.test"], subject="Far", text="x")
    await outbound.wait_until_idle()
    [entry] = await services.queue_admin.list()
    assert entry.status == "deferred" and entry.last_code == 451
    assert entry.last_reply is not None and "mx.down.test[127.0.0.9]" in entry.last_reply
    attempts = 1
    while entry.status == "deferred":
        clock.current = entry.next_attempt_at
        await outbound.wait_until_idle()
        [entry] = await services.queue_admin.list()
        attempts += 1
        assert attempts < 10
    assert entry.status == "bounced"
    assert clock.now() - entry.created_at <= QUEUE_LIFETIME
    [report] = dsn_reports(await stored_copies(services, world.sales))
    assert "Final-Recipient: rfc822; x@down.test" in report.as_string()
    # Expiry is no verdict on the address: it is not suppressed.
    await services.sending.submit(
        mailbox=world.sales, to=["x@down.test"], subject="Again", text="x"
    )


async def test_null_mx_bounces_at_once(
    services: Services, world: World, outbound: OutboundWorker, sink: AiosmtpdSink
) -> None:
    await services.sending.submit(mailbox=world.sales, to=["a@nomail.test"], subject="No", text="x")
    await outbound.wait_until_idle()
    [entry] = await services.queue_admin.list()
    assert (entry.status, entry.attempts, entry.last_code, entry.last_status) == (
        "bounced",
        1,
        556,
        "5.1.10",
    )
    assert len(dsn_reports(await stored_copies(services, world.sales))) == 1
    assert sink.connections == 0


async def test_hosted_recipients_are_delivered_locally_without_network(
    services: Services,
    world: World,
    outbound: OutboundWorker,
    sink: AiosmtpdSink,
    fake_dns: FakeDns,
) -> None:
    await services.sending.submit(
        mailbox=world.sales, to=["support@acme.test"], subject="Inside", text="Hi colleague"
    )
    await outbound.wait_until_idle()
    [entry] = await services.queue_admin.list()
    assert entry.status == "delivered" and entry.mx_host is None
    inbox = [c for c in await stored_copies(services, world.support) if c.folder == "INBOX"]
    assert [c.subject for c in inbox] == ["Inside"]
    assert sink.connections == 0
    assert not [q for q in fake_dns.queries if q[0].endswith("acme.test") and q[1] in ("MX", "A")]
    # An unknown hosted mailbox bounces like a remote 550.
    await services.sending.submit(
        mailbox=world.sales, to=["nobody@acme.test"], subject="Lost", text="x"
    )
    await outbound.wait_until_idle()
    assert (await statuses(services))["nobody@acme.test"] == "bounced"


AWKWARD_BODY = (
    b"first line\n"
    b".\n"  # a lone dot: would end DATA if not stuffed
    b"..two dots\n"
    b".leading dot\r\n"
    b"bare\rcarriage return\r\n"
    b"\n.\n"
    b"last line without newline"
)


async def test_awkward_body_arrives_crlf_clean_and_dot_stuffed(
    services: Services,
    world: World,
    outbound: OutboundWorker,
    sink: AiosmtpdSink,
    fake_dns: FakeDns,
) -> None:
    raw = (
        b"From: Sales <sales@acme.test>\r\nTo: bob@remote.test\r\nSubject: Dots\r\n\r\n"
        + AWKWARD_BODY
    )
    await services.sending.submit_raw(mailbox=world.sales, recipients=["bob@remote.test"], raw=raw)
    await outbound.wait_until_idle()
    [got] = sink.received
    [wire] = sink.wires
    data = wire.split(b"DATA\r\n", 1)[1].split(b"\r\n.\r\n", 1)[0] + b"\r\n"
    # Only CRLF line endings on the wire (RFC 5321 §2.3.8).
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", data) is None
    expected_body = (
        b"first line\r\n"
        b"..\r\n"
        b"...two dots\r\n"
        b"..leading dot\r\n"
        b"bare\r\ncarriage return\r\n"
        b"\r\n..\r\n"
        b"last line without newline\r\n"
    )
    assert data.endswith(b"\r\n\r\n" + expected_body)  # RFC 5321 §4.5.2 transparency
    # The receiver, unstuffing, has the CRLF form of what was submitted, and it verifies.
    assert got.content.endswith(
        b"\r\n\r\nfirst line\r\n.\r\n..two dots\r\n.leading dot\r\nbare\r\ncarriage return\r\n"
        b"\r\n.\r\nlast line without newline\r\n"
    )
    assert dkim.verify(got.content, dnsfunc=DnsResolver([fake_dns.address]).dkim_dnsfunc)

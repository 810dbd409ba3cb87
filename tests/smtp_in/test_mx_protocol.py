"""The MX listener's SMTP behaviour, over real sockets with aiosmtplib or exact bytes.

EHLO extensions, SIZE, STARTTLS, RFC 2034 enhanced codes, pipelining, recipient limits, malformed
commands, address forms that reach a mailbox, and SPF/DMARC outcomes from the loopback DNS.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import replace

import aiosmtplib
from cryptography import x509
from cryptography.x509.oid import NameOID

from mailmark.bootstrap import Services, start_listeners
from tests.fakedns import FakeDns
from tests.smtp_in.corpus import RawSmtp, Reply, data_transmission
from tests.support.world import HOSTNAME, World, stored_copies

ENHANCED = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}( |$)")


def message(subject: str, sender: str = "alice@example.org", to: str = "sales@acme.test") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\nBody of {subject}.\r\n"
    ).encode()


async def send(
    port: int,
    data: bytes,
    sender: str = "alice@example.org",
    recipients: tuple[str, ...] = ("sales@acme.test",),
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    """Deliver with aiosmtplib over plain text (it would otherwise upgrade to TLS itself)."""
    return await aiosmtplib.send(
        data,
        sender=sender,
        recipients=list(recipients),
        hostname="127.0.0.1",
        port=port,
        start_tls=False,
    )


def trace_fields(stored: bytes, sent: bytes) -> dict[str, str]:
    """The fields we prepended, unfolded (RFC 5322 §2.2.3), by lower-case name."""
    assert stored.endswith(sent)
    trace = stored[: len(stored) - len(sent)].decode()
    unfolded = re.sub(r"\r\n[ \t]+", " ", trace)
    fields = [line.split(":", 1) for line in unfolded.split("\r\n") if line]
    return {name.lower(): value.strip() for name, value in fields}


def assert_enhanced(reply: Reply) -> None:
    for line in reply.lines:
        match = ENHANCED.match(line)
        assert match, f"no enhanced status code: {reply}"
        assert match[1] == str(reply.code)[0], f"class differs from the reply code: {reply}"


async def test_ehlo_advertises_the_extensions(world: World, mx_port: int) -> None:
    client, greeting = await RawSmtp.connect(mx_port)
    try:
        assert greeting.code == 220 and greeting.text.startswith(HOSTNAME)
        ehlo = await client.command("EHLO client.example.org")
    finally:
        await client.close()
    assert ehlo.code == 250
    assert ehlo.lines[0] == HOSTNAME
    keywords = {line.split(" ")[0]: line for line in ehlo.lines[1:]}
    assert set(keywords) >= {
        "SIZE",
        "8BITMIME",
        "SMTPUTF8",
        "PIPELINING",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    }
    assert keywords["SIZE"] == f"SIZE {world.services.settings.max_message_size}"
    # An MX needs no AUTH, and never offers it over plain text.
    assert "AUTH" not in keywords


async def test_size_parameter_and_oversize_data_are_refused_with_552(
    world: World, mx_port: int
) -> None:
    limit = world.services.settings.max_message_size
    client, _ = await RawSmtp.connect(mx_port)
    try:
        await client.command("EHLO client.example.org")
        too_big = await client.command(f"MAIL FROM:<alice@example.org> SIZE={limit + 1}")
        assert str(too_big).startswith("552 5.3.4 "), str(too_big)
        assert (await client.command(f"MAIL FROM:<alice@example.org> SIZE={limit}")).code == 250
        assert (await client.command("RCPT TO:<sales@acme.test>")).code == 250
        assert (await client.command("DATA")).code == 354
        # Declared small enough, but more data than the limit actually arrives.
        line = b"a" * 998 + b"\r\n"
        body = b"Subject: big\r\n\r\n" + line * (limit // len(line) + 1)
        assert len(body) > limit
        await client.send(data_transmission(body))
        reply = await client.reply()
        assert str(reply).startswith("552 5.3.4 "), str(reply)
        # The session goes on, and a message within the limit is still accepted.
        assert (await client.command("MAIL FROM:<alice@example.org>")).code == 250
        assert (await client.command("RCPT TO:<sales@acme.test>")).code == 250
        assert (await client.command("DATA")).code == 354
        await client.send(data_transmission(message("small")))
        assert (await client.reply()).code == 250
    finally:
        await client.close()
    copies = await stored_copies(world.services, world.sales)
    assert [c.subject for c in copies] == ["small"]


async def test_starttls_with_aiosmtplib_uses_the_self_signed_certificate_and_says_esmtps(
    world: World, mx_port: int
) -> None:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=mx_port, start_tls=True, validate_certs=False)
    await smtp.connect()
    try:
        ssl_object = smtp.transport.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        served = ssl_object.getpeercert(binary_form=True)
        await smtp.ehlo()  # RFC 3207 §4.2: the client forgets what it learnt before TLS
        assert not smtp.supports_extension("starttls")
        assert smtp.supports_extension("pipelining") and smtp.supports_extension("size")
        assert not smtp.supports_extension("auth")  # an MX has no logins, not even over TLS
        data = message("over TLS")
        errors, reply = await smtp.sendmail("alice@example.org", ["sales@acme.test"], data)
        assert errors == {} and reply.startswith("2.0.0 ")
    finally:
        await smtp.quit()
    certificate = x509.load_der_x509_certificate(served)
    assert certificate.subject == certificate.issuer  # self-signed
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == HOSTNAME
    # Generated on first start, in the data dir, and that is what is served.
    on_disk = (world.services.settings.data_dir / "tls" / "cert.pem").read_bytes()
    assert x509.load_pem_x509_certificate(on_disk) == certificate
    copies = await stored_copies(world.services, world.sales)
    assert len(copies) == 1
    received = trace_fields(copies[0].data, data)["received"]
    assert f"by {HOSTNAME} (Mailmark) with ESMTPS id " in received  # RFC 3848


async def test_every_reply_carries_an_enhanced_status_code(world: World, mx_port: int) -> None:
    """RFC 2034 §3: all but the greeting and the HELO/EHLO replies; 354 cannot have one, since
    RFC 3463 enhanced codes only exist for the classes 2, 4 and 5."""
    client, greeting = await RawSmtp.connect(mx_port)
    replies: list[Reply] = []
    try:
        assert not ENHANCED.match(greeting.lines[0])
        ehlo = await client.command("EHLO client.example.org")
        assert ehlo.code == 250 and not ENHANCED.match(ehlo.lines[0])
        for command in [
            "NOOP",
            "HELP",
            "VRFY",
            "VRFY sales",
            "RSET",
            "EXPN sales",
            "FOO",
            "STARTTLS now",
            "HELO",
            "EHLO",
            "RCPT TO:<sales@acme.test>",
            "DATA",
            "MAIL FROM:<alice@example.org>",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<nobody@acme.test>",
            "RCPT TO:<u@example.org>",
            "RCPT TO:<sales@acme.test>",
        ]:
            replies.append(await client.command(command))
        assert (await client.command("DATA")).code == 354
        replies.append(await client.command(b"Subject: codes\r\n\r\nbody\r\n."))
        assert replies[-1].code == 250
        replies.append(await client.command("STARTTLS"))
        assert replies[-1].code == 220
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        await client.writer.start_tls(context)
        ehlo = await client.command("EHLO client.example.org")
        assert ehlo.code == 250 and not ENHANCED.match(ehlo.lines[0])
        replies.append(await client.command("NOOP"))
        replies.append(await client.command("QUIT"))
    finally:
        await client.close()
    assert {r.code for r in replies} >= {220, 221, 250, 252, 500, 501, 502, 503, 550, 554}
    for reply in replies:
        assert_enhanced(reply)


async def test_a_whole_pipelined_transaction_in_one_write(world: World, mx_port: int) -> None:
    """RFC 2920: MAIL, both RCPTs, DATA, the message and QUIT in one write; one blob is stored
    with one placement per recipient."""
    data = message("pipelined", to="sales@acme.test, support@acme.test")
    client, _ = await RawSmtp.connect(mx_port)
    try:
        assert (await client.command("EHLO client.example.org")).code == 250
        await client.send(
            b"MAIL FROM:<alice@example.org>\r\n"
            b"RCPT TO:<sales@acme.test>\r\n"
            b"RCPT TO:<support@acme.test>\r\n"
            b"DATA\r\n" + data_transmission(data) + b"QUIT\r\n"
        )
        codes = [(await client.reply()).code for _ in range(6)]
    finally:
        await client.close()
    assert codes == [250, 250, 250, 354, 250, 221]
    sales = await stored_copies(world.services, world.sales)
    support = await stored_copies(world.services, world.support)
    assert len(sales) == len(support) == 1
    assert sales[0].data == support[0].data and sales[0].data.endswith(data)
    assert len(list(world.services.settings.blob_path.glob("*/*"))) == 1


async def test_more_than_100_recipients_get_452_and_the_rest_is_delivered(
    world: World, mx_port: int
) -> None:
    limit = world.services.settings.max_recipients
    assert limit == 100
    client, _ = await RawSmtp.connect(mx_port)
    try:
        assert (await client.command("EHLO client.example.org")).code == 250
        rcpts = b"".join(b"RCPT TO:<sales+%d@acme.test>\r\n" % n for n in range(limit + 1))
        await client.send(b"MAIL FROM:<alice@example.org>\r\n" + rcpts)
        assert (await client.reply()).code == 250
        replies = [await client.reply() for _ in range(limit + 1)]
        assert [r.code for r in replies[:limit]] == [250] * limit
        # RFC 5321 §4.5.3.1.10: temporary, so the client retries the rest in another transaction.
        assert str(replies[limit]).startswith("452 4.5.3 "), str(replies[limit])
        assert (await client.command("DATA")).code == 354
        await client.send(data_transmission(message("many recipients")))
        assert (await client.reply()).code == 250
    finally:
        await client.close()
    # A hundred addresses of one mailbox: one copy, not a hundred.
    copies = await stored_copies(world.services, world.sales)
    assert [c.subject for c in copies] == ["many recipients"]


async def test_malformed_commands_get_5xx_and_the_session_goes_on(
    world: World, mx_port: int
) -> None:
    malformed: list[bytes] = [
        b"",
        b"\xff\xfe\xfd",
        b"FOO BAR",
        b"MAIL FROM alice@example.org",
        b"MAIL FROM:<<alice@example.org>",
        b"MAIL FROM:<alice@example.org> SIZE=lots",
        b"MAIL FROM:<alice@example.org> UNKNOWN=1",
        b"MAIL FROM:<al\x00ice@example.org>",
        b"MAIL FROM:<\xff\xfe@example.org>",
        b"RCPT TO:<sales@acme.test>",  # no MAIL yet
        b"DATA",  # no MAIL yet
        b"MAIL FROM:<" + b"x" * 2000 + b"@example.org>",
    ]
    client, _ = await RawSmtp.connect(mx_port)
    try:
        assert (await client.command("EHLO client.example.org")).code == 250
        for line in malformed:
            reply = await client.command(line)
            assert reply.code // 100 == 5, f"{line[:40]!r}: {reply}"
            assert_enhanced(reply)
        assert (await client.command("MAIL FROM:<alice@example.org>")).code == 250
        for line in (b"RCPT TO:<sa\x00les@acme.test>", b"RCPT TO:<s\xffales@acme.test>"):
            reply = await client.command(line)
            assert str(reply).startswith("553 5.1.3 "), f"{line!r}: {reply}"
        assert (await client.command("RCPT TO:<sales@acme.test>")).code == 250
        assert (await client.command("DATA")).code == 354
        await client.send(data_transmission(message("after the garbage")))
        assert (await client.reply()).code == 250
    finally:
        await client.close()
    copies = await stored_copies(world.services, world.sales)
    assert [c.subject for c in copies] == ["after the garbage"]


async def test_subaddress_reaches_the_base_mailbox(world: World, mx_port: int) -> None:
    data = message("tagged", to="sales+newsletter@acme.test")
    errors, _ = await send(mx_port, data, recipients=("Sales+Newsletter@acme.test",))
    assert errors == {}
    copies = await stored_copies(world.services, world.sales)
    assert [(c.folder, c.subject) for c in copies] == [("INBOX", "tagged")]
    assert "for <Sales+Newsletter@acme.test>" in trace_fields(copies[0].data, data)["received"]
    assert await stored_copies(world.services, world.support) == []


async def test_postmaster_and_abuse_reach_the_domains_first_mailbox(
    world: World, mx_port: int
) -> None:
    """RFC 5321 §4.5.1, RFC 2142: acme.test has no such mailboxes; its first one receives them."""
    await send(mx_port, message("to postmaster"), recipients=("postmaster@acme.test",))
    await send(mx_port, message("to abuse"), recipients=("Abuse@ACME.test",))
    assert [c.subject for c in await stored_copies(world.services, world.sales)] == [
        "to postmaster",
        "to abuse",
    ]
    assert await stored_copies(world.services, world.support) == []


async def test_authentication_results_records_spf(
    world: World, mx_port: int, fake_dns: FakeDns
) -> None:
    fake_dns.add("example.org", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    fake_dns.add("elsewhere.example", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    passing = message("spf pass")
    failing = message("spf fail", sender="bob@elsewhere.example")
    await send(mx_port, passing)
    await send(mx_port, failing, sender="bob@elsewhere.example")
    copies = await stored_copies(world.services, world.sales)
    assert [c.subject for c in copies] == ["spf pass", "spf fail"]

    stored = copies[0].data
    assert stored.startswith(b"Return-Path: <alice@example.org>\r\nReceived: from ")
    fields = trace_fields(stored, passing)
    assert list(fields) == ["return-path", "received", "authentication-results"]
    results = [part.strip() for part in fields["authentication-results"].split(";")]
    assert results[0] == HOSTNAME  # authserv-id, RFC 8601 §2.5
    assert "spf=pass smtp.mailfrom=alice@example.org" in results
    assert "dkim=none" in results
    assert "dmarc=none header.from=example.org" in results

    results = trace_fields(copies[1].data, failing)["authentication-results"]
    assert "spf=fail smtp.mailfrom=bob@elsewhere.example" in results
    assert "spf=pass" not in results


async def test_dmarc_reject_failure_is_refused_and_a_passing_message_is_not(
    world: World, mx_port: int, fake_dns: FakeDns
) -> None:
    fake_dns.add("_dmarc.bank.example", "TXT", "v=DMARC1; p=reject")
    fake_dns.add("bank.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    forged = message("wire the money", sender="ceo@bank.example")
    with_error = await send_expecting_error(mx_port, forged, sender="attacker@evil.example")
    assert with_error.code == 550
    assert with_error.message.startswith("5.7.26 ") and "DMARC" in with_error.message
    assert await stored_copies(world.services, world.sales) == []
    assert list(world.services.settings.blob_path.glob("*/*")) == []

    # The same From, with an aligned SPF pass, is delivered.
    genuine = message("statement", sender="ceo@bank.example")
    errors, _ = await send(mx_port, genuine, sender="ceo@bank.example")
    assert errors == {}
    copies = await stored_copies(world.services, world.sales)
    assert [(c.folder, c.subject) for c in copies] == [("INBOX", "statement")]
    results = trace_fields(copies[0].data, genuine)["authentication-results"]
    assert "dmarc=pass (p=reject) header.from=bank.example" in results


async def send_expecting_error(
    port: int, data: bytes, sender: str
) -> aiosmtplib.SMTPResponseException:
    try:
        await send(port, data, sender=sender)
    except aiosmtplib.SMTPResponseException as error:
        return error
    raise AssertionError("the message was accepted")


async def test_dmarc_quarantine_failure_is_delivered_to_junk(
    world: World, mx_port: int, fake_dns: FakeDns
) -> None:
    fake_dns.add("_dmarc.shady.example", "TXT", "v=DMARC1; p=quarantine")
    data = message("maybe spam", sender="news@shady.example")
    errors, _ = await send(mx_port, data, sender="bounce@bulk-mailer.example")
    assert errors == {}
    copies = await stored_copies(world.services, world.sales)
    assert [(c.folder, c.subject) for c in copies] == [("Junk", "maybe spam")]
    results = trace_fields(copies[0].data, data)["authentication-results"]
    assert "dmarc=fail (p=quarantine) header.from=shady.example" in results


async def test_domainless_postmaster_is_accepted_and_reaches_the_first_mailbox(
    world: World, mx_port: int
) -> None:
    """RFC 5321 §4.5.1: RCPT TO:<Postmaster> without a domain MUST be accepted."""
    await send(mx_port, message("server postmaster"), recipients=("Postmaster",))
    assert [c.subject for c in await stored_copies(world.services, world.sales)] == [
        "server postmaster"
    ]


async def test_a_source_routed_reverse_path_is_ignored_down_to_its_mailbox(
    world: World, mx_port: int
) -> None:
    """RFC 5321 Appendix C: the route in MAIL FROM:<@relay:user@host> is ignored."""
    client, _ = await RawSmtp.connect(mx_port)
    try:
        await client.command("EHLO client.example")
        assert (await client.command("MAIL FROM:<@relay.example:alice@example.org>")).code == 250
        assert (await client.command("RCPT TO:<sales@acme.test>")).code == 250
        assert (await client.command("DATA")).code == 354
        await client.send(message("routed") + b".\r\n")
        assert (await client.reply()).code == 250
    finally:
        await client.close()
    [copy] = await stored_copies(world.services, world.sales)
    assert copy.data.startswith(b"Return-Path: <alice@example.org>\r\n")


async def test_stopping_the_server_tells_idle_sessions_421_and_does_not_wait_for_them(
    services: Services,
) -> None:
    """RFC 5321 §3.8: shutting down, the server answers 421 and closes the channel."""
    listeners = await start_listeners(services)
    client, greeting = await RawSmtp.connect(listeners.mx_port)
    assert greeting.code == 220
    await client.command("EHLO client.example")
    await asyncio.wait_for(listeners.close(), 5)
    goodbye = await asyncio.wait_for(client.reply(), 5)
    assert (goodbye.code, goodbye.lines[0].split()[0]) == (421, "4.3.2")
    await client.close()


async def test_connections_per_address_are_capped_but_the_loopback_address_is_not(
    services: Services,
) -> None:
    settings = services.settings.model_copy(update={"max_connections_per_ip": 2})
    capped = await start_listeners(replace(services, settings=settings))
    port = capped.mx_port
    try:
        # 127.0.0.2 is a loopback-range address, but only 127.0.0.1 and ::1 are exempt.
        clients = [
            await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
            for _ in range(3)
        ]
        greetings = [await asyncio.wait_for(reader.readline(), 5) for reader, _ in clients]
        assert [g[:3] for g in greetings] == [b"220", b"220", b"421"]
        assert greetings[2].startswith(b"421 4.7.0 Too many connections")
        for _, writer in clients:
            writer.close()
        exempt = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        assert [(await r.readline())[:3] for r, _ in exempt] == [b"220"] * 3
        for _, writer in exempt:
            writer.close()
    finally:
        await capped.close()

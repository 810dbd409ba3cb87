"""The submission listeners (587 STARTTLS, 465 implicit TLS) over real sockets with real clients.

The policy matrix: no AUTH before TLS, nothing before AUTH, senders limited to the mailbox (or the
same user's), suppressed recipients refused, the quota's exact text, throttled logins, STARTTLS
command injection never answered, and what reaches the queue (Bcc gone, 250 after the commit).
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import smtplib
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Listeners, Services
from mailmark.core.model import Suppression
from mailmark.storage.tables import deliveries, mailboxes, outbound_messages, users
from tests.smtp_in.corpus import RawSmtp
from tests.support.tls import client_tls
from tests.support.world import HOSTNAME, World

SALES_PASSWORD = "sales-pass-1"
SWAKS = shutil.which("swaks")


def message(
    subject: str,
    sender: str = "Sales <sales@acme.test>",
    to: str = "bob@remote.test",
    extra: str = "",
) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\n{extra}Subject: {subject}\r\n\r\nBody of {subject}.\r\n"
    ).encode()


async def starttls_client(port: int) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, start_tls=False, tls_context=client_tls(), timeout=15
    )
    await client.connect()
    await client.ehlo(hostname="client.example.org")
    await client.starttls()
    await client.ehlo(hostname="client.example.org")
    return client


async def implicit_tls_client(port: int) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, use_tls=True, tls_context=client_tls(), timeout=15
    )
    await client.connect()
    await client.ehlo(hostname="client.example.org")
    return client


async def logged_in(
    port: int, user: str = "sales@acme.test", password: str = SALES_PASSWORD
) -> aiosmtplib.SMTP:
    client = await starttls_client(port)
    await client.auth_plain(user, password)
    return client


async def raw_tls_session(port: int) -> RawSmtp:
    """Exact bytes over port 587 after EHLO and STARTTLS."""
    client, _ = await RawSmtp.connect(port)
    await client.command("EHLO client.example.org")
    assert (await client.command("STARTTLS")).code == 220
    await client.writer.start_tls(client_tls())
    assert (await client.command("EHLO client.example.org")).code == 250
    return client


async def queued(services: Services) -> list[sa.Row[Any]]:
    query = sa.select(
        outbound_messages.c.id,
        outbound_messages.c.blob_key,
        outbound_messages.c.from_addr,
        outbound_messages.c.source,
    ).order_by(outbound_messages.c.id)
    async with services.engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def recipients_of(services: Services, outbound_id: int) -> list[str]:
    query = (
        sa.select(deliveries.c.recipient)
        .where(deliveries.c.outbound_id == outbound_id)
        .order_by(deliveries.c.recipient)
    )
    async with services.engine.connect() as conn:
        return list((await conn.execute(query)).scalars())


# --- port 587: STARTTLS first -------------------------------------------------------------------


async def test_no_auth_offered_before_starttls(world: World, listeners: Listeners) -> None:
    client, greeting = await RawSmtp.connect(listeners.submission_port)
    try:
        assert greeting.code == 220 and greeting.text.startswith(HOSTNAME)
        ehlo = await client.command("EHLO client.example.org")
        keywords = {line.split(" ")[0] for line in ehlo.lines[1:]}
        assert "STARTTLS" in keywords and "AUTH" not in keywords
        for command in (
            "AUTH PLAIN "
            + base64.b64encode(b"\0sales@acme.test\0" + SALES_PASSWORD.encode()).decode(),
            "MAIL FROM:<sales@acme.test>",
            "RCPT TO:<bob@remote.test>",
            "DATA",
        ):
            reply = await client.command(command)
            assert (reply.code, reply.text) == (530, "5.7.0 Must issue a STARTTLS command first")
    finally:
        await client.close()


async def test_auth_offered_after_starttls(world: World, listeners: Listeners) -> None:
    client = await starttls_client(listeners.submission_port)
    try:
        assert client.supports_extension("auth")
        assert not client.supports_extension("starttls")
        assert set(client.server_auth_methods) == {"plain", "login"}
        assert client.supports_extension("enhancedstatuscodes")
    finally:
        client.close()


async def test_nothing_before_auth(world: World, listeners: Listeners) -> None:
    client = await starttls_client(listeners.submission_port)
    try:
        for command, argument in (
            (b"MAIL", b"FROM:<sales@acme.test>"),
            (b"RCPT", b"TO:<bob@remote.test>"),
            (b"DATA", None),
        ):
            reply = await client.execute_command(command, *([argument] if argument else []))
            assert (reply.code, reply.message) == (530, "5.7.0 Authentication required")
    finally:
        client.close()
    assert await queued(world.services) == []


@pytest.mark.parametrize("mechanism", ["plain", "login"])
async def test_login_with_each_mechanism_and_send(
    world: World, listeners: Listeners, mechanism: str
) -> None:
    client = await starttls_client(listeners.submission_port)
    try:
        login = client.auth_plain if mechanism == "plain" else client.auth_login
        reply = await login("sales@acme.test", SALES_PASSWORD)
        assert reply.code == 235
        errors, response = await client.sendmail(
            "sales@acme.test", ["bob@remote.test"], message(f"via {mechanism}")
        )
    finally:
        client.close()
    assert errors == {}
    rows = await queued(world.services)
    assert len(rows) == 1 and rows[0].from_addr == "sales@acme.test"
    assert rows[0].source == "submission"
    # The 250 names the queue id, and came after the commit: the row is there.
    assert response == f"2.0.0 Ok: queued as {rows[0].id}"


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("sales@acme.test", "wrong-password"),
        ("nobody@acme.test", SALES_PASSWORD),
        ("sales@other.test", SALES_PASSWORD),
    ],
)
async def test_wrong_credentials(
    world: World, listeners: Listeners, user: str, password: str
) -> None:
    client = await starttls_client(listeners.submission_port)
    try:
        for login in (client.auth_plain, client.auth_login):
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as failure:
                await login(user, password)
            assert failure.value.code == 535
            assert failure.value.message.startswith("5.7.8 ")
        reply = await client.execute_command(b"MAIL", b"FROM:<sales@acme.test>")
        assert reply.code == 530
    finally:
        client.close()


async def test_plain_with_another_authorization_identity_is_refused(
    world: World, listeners: Listeners
) -> None:
    client = await starttls_client(listeners.submission_port)
    try:
        blob = base64.b64encode(b"support@acme.test\0sales@acme.test\0" + SALES_PASSWORD.encode())
        reply = await client.execute_command(b"AUTH", b"PLAIN", blob)
        assert reply.code == 535
        blob = base64.b64encode(b"sales@acme.test\0sales@acme.test\0" + SALES_PASSWORD.encode())
        reply = await client.execute_command(b"AUTH", b"PLAIN", blob)
        assert reply.code == 235  # naming yourself is fine (RFC 4616 §2)
    finally:
        client.close()


async def test_malformed_auth_exchanges(world: World, listeners: Listeners) -> None:
    client = await starttls_client(listeners.submission_port)
    try:
        reply = await client.execute_command(b"AUTH", b"PLAIN", b"%%%not-base64")
        assert (reply.code, reply.message[:5]) == (501, "5.5.2")
        reply = await client.execute_command(b"AUTH", b"PLAIN", base64.b64encode(b"no separators"))
        assert (reply.code, reply.message[:5]) == (501, "5.5.2")
        reply = await client.execute_command(b"AUTH", b"PLAIN")
        assert reply.code == 334
        reply = await client.execute_command(b"*")  # RFC 4954 §4: the client cancels
        assert reply.code == 501
        reply = await client.execute_command(b"AUTH", b"CRAM-MD5")
        assert reply.code == 504
        reply = await client.execute_command(b"AUTH", b"PLAIN", b"A" * 5000)
        assert (reply.code, reply.message) == (500, "5.5.2 Command line too long")
    finally:
        client.close()


async def test_failed_logins_are_throttled_per_client_ip(
    world: World, listeners: Listeners
) -> None:
    """Three failures close a connection; ten from one address lock it out, right password too."""
    wrong = "AUTH PLAIN " + base64.b64encode(b"\0sales@acme.test\0wrong").decode()
    failures = 0
    while failures < 9:
        client = await raw_tls_session(listeners.submission_port)
        try:
            for _ in range(2):
                reply = await client.command(wrong)
                assert (reply.code, reply.text[:5]) == (535, "5.7.8"), reply
            reply = await client.command(wrong)
            assert reply.code == 535
            # The third failure on one connection also says goodbye and closes it.
            closing = await client.reply()
            assert (closing.code, closing.text[:5]) == (421, "4.7.0")
            assert await asyncio.wait_for(client.reader.read(), 5) == b""
            failures += 3
        finally:
            await client.close()
    client = await raw_tls_session(listeners.submission_port)
    try:
        reply = await client.command(wrong)
        assert reply.code == 535  # the tenth failure
        right = base64.b64encode(b"\0sales@acme.test\0" + SALES_PASSWORD.encode()).decode()
        reply = await client.command("AUTH PLAIN " + right)
        assert reply.code == 454
        assert reply.text.startswith("4.7.0 Too many failed logins from your address; try again in")
    finally:
        await client.close()


# --- who may send as whom -----------------------------------------------------------------------


async def test_envelope_sender_must_be_the_mailbox(world: World, listeners: Listeners) -> None:
    client = await logged_in(listeners.submission_port)
    try:
        for sender in ("support@acme.test", "ceo@bank.test", ""):
            reply = await client.execute_command(b"MAIL", f"FROM:<{sender}>".encode())
            assert reply.code == 553 and reply.message.startswith("5.7.1 "), reply
        reply = await client.execute_command(b"MAIL", b"FROM:<Sales@ACME.test>")
        assert reply.code == 250
    finally:
        client.close()


async def test_header_from_must_be_the_mailbox(world: World, listeners: Listeners) -> None:
    client = await logged_in(listeners.submission_port)
    try:
        for header_from in (
            "Support <support@acme.test>",
            "ceo@bank.test",
            "sales@acme.test, ceo@bank.test",
        ):
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await client.sendmail(
                    "sales@acme.test", ["bob@remote.test"], message("spoof", sender=header_from)
                )
            assert refused.value.code == 553 and refused.value.message.startswith("5.7.1 ")
            await client.rset()
    finally:
        client.close()
    assert await queued(world.services) == []


async def test_another_mailbox_of_the_same_user_may_be_the_header_from(
    world: World, listeners: Listeners
) -> None:
    async with world.services.engine.begin() as conn:
        owner = (await conn.execute(sa.select(users.c.id))).scalar_one()
        await conn.execute(sa.update(mailboxes).values(user_id=owner))
    client = await logged_in(listeners.submission_port)
    try:
        await client.sendmail(
            "sales@acme.test",
            ["bob@remote.test"],
            message("as support", sender="support@acme.test"),
        )
    finally:
        client.close()
    [row] = await queued(world.services)
    assert row.from_addr == "support@acme.test"


@pytest.mark.parametrize(
    "field",
    [
        "Sender: ceo@bank.test",
        "Sender: Support <support@acme.test>",
        "Resent-From: ceo@bank.test",
        "Resent-From: sales@acme.test, support@acme.test",
        "Resent-Sender: support@acme.test",
    ],
)
async def test_sender_and_resent_fields_follow_the_from_rule(
    world: World, listeners: Listeners, field: str
) -> None:
    # RFC 6409 §8.1: each originator field names the author, so each is checked as From is.
    client = await logged_in(listeners.submission_port)
    try:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.sendmail(
                "sales@acme.test", ["bob@remote.test"], message("spoof", extra=field + "\r\n")
            )
        assert refused.value.code == 553 and refused.value.message.startswith("5.7.1 ")
        assert field.split(": ", 1)[1].split(", ")[-1].split("<")[-1].rstrip(">") in (
            refused.value.message
        )
    finally:
        client.close()
    assert await queued(world.services) == []


async def test_own_sender_and_resent_fields_are_accepted(
    world: World, listeners: Listeners
) -> None:
    client = await logged_in(listeners.submission_port)
    try:
        await client.sendmail(
            "sales@acme.test",
            ["bob@remote.test"],
            message(
                "resent",
                extra="Sender: sales@acme.test\r\nResent-From: Sales <sales@acme.test>\r\n",
            ),
        )
    finally:
        client.close()
    [row] = await queued(world.services)
    assert row.from_addr == "sales@acme.test"


async def test_client_authentication_results_naming_this_host_are_removed(
    world: World, listeners: Listeners
) -> None:
    forged = (
        f"Authentication-Results: {HOSTNAME}; dkim=pass header.d=bank.test\r\n"
        f"Authentication-Results: (comment) {HOSTNAME.upper()};\r\n spf=pass\r\n"
        "Authentication-Results: mx.other.test; spf=pass\r\n"
    )
    client = await logged_in(listeners.submission_port)
    try:
        await client.sendmail(
            "sales@acme.test", ["bob@remote.test"], message("forged results", extra=forged)
        )
    finally:
        client.close()
    [row] = await queued(world.services)
    blob = await world.services.blobs.get(row.blob_key)
    # RFC 8601 §5: only the fields claiming to be ours go; another host's are its business.
    assert HOSTNAME.encode() not in blob.lower()
    assert b"Authentication-Results: mx.other.test; spf=pass\r\n" in blob
    assert b"Subject: forged results\r\n" in blob


# --- recipients, quota, what is queued ----------------------------------------------------------


async def test_suppressed_recipient_is_refused_at_rcpt(world: World, listeners: Listeners) -> None:
    async with world.services.uow() as uow:
        await uow.suppressions.add(
            Suppression(
                world.sales.domain_id, "gone@remote.test", "bounce", "550 5.1.1", datetime.now(UTC)
            )
        )
        await uow.commit()
    client = await logged_in(listeners.submission_port)
    try:
        await client.mail("sales@acme.test")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await client.rcpt("Gone@Remote.test")
        assert refused.value.code == 550
        assert refused.value.message.startswith("5.7.1 gone@remote.test is on the suppression list")
        assert "bounce" in refused.value.message
        reply = await client.rcpt("bob@remote.test")
        assert reply.code == 250
    finally:
        client.close()


async def test_quota_text_is_the_products(services: Services, listeners: Listeners) -> None:
    await services.accounts.create(
        "tiny", owner_email="o@tiny.test", password="owner-pass-1", plan="starter"
    )
    await services.domains.add("tiny.test", account_name="tiny", trust=True)
    mailbox = await services.mailboxes.create("me@tiny.test", password="tiny-pass-1")
    raw = message("bulk", sender="me@tiny.test")
    for batch in range(10):
        await services.sending.submit_raw(
            mailbox=mailbox,
            raw=raw,
            recipients=[f"r{batch}-{i}@remote.test" for i in range(100)],
        )
    client = await logged_in(listeners.submission_port, "me@tiny.test", "tiny-pass-1")
    try:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.sendmail("me@tiny.test", ["one-more@remote.test"], raw)
    finally:
        client.close()
    assert refused.value.code == 554
    assert refused.value.message == (
        "5.7.0 Monthly email limit reached (1000 emails). Please upgrade your plan."
    )


async def test_bcc_recipients_are_queued_but_never_in_the_blob(
    world: World, listeners: Listeners
) -> None:
    raw = message(
        "with bcc",
        extra="Cc: carol@remote.test\r\nBcc: secret@hidden.test,\r\n other@hidden.test\r\n",
    )
    client = await logged_in(listeners.submission_port)
    try:
        await client.sendmail(
            "sales@acme.test",
            ["bob@remote.test", "carol@remote.test", "secret@hidden.test", "other@hidden.test"],
            raw,
        )
    finally:
        client.close()
    [row] = await queued(world.services)
    blob = await world.services.blobs.get(row.blob_key)
    assert b"Bcc" not in blob and b"hidden.test" not in blob
    assert b"Cc: carol@remote.test\r\n" in blob and b"Subject: with bcc\r\n" in blob
    assert b"\r\nMessage-ID: <" in b"\r\n" + blob and b"\r\nDate: " in b"\r\n" + blob  # RFC 6409 §8
    assert await recipients_of(world.services, row.id) == [
        "bob@remote.test",
        "carol@remote.test",
        "other@hidden.test",
        "secret@hidden.test",
    ]


async def test_bare_line_endings_are_refused(world: World, listeners: Listeners) -> None:
    client = await raw_tls_session(listeners.submission_port)
    try:
        right = base64.b64encode(b"\0sales@acme.test\0" + SALES_PASSWORD.encode()).decode()
        assert (await client.command("AUTH PLAIN " + right)).code == 235
        assert (await client.command("MAIL FROM:<sales@acme.test>")).code == 250
        assert (await client.command("RCPT TO:<bob@remote.test>")).code == 250
        assert (await client.command("DATA")).code == 354
        await client.send(
            b"From: sales@acme.test\r\nSubject: x\r\n\r\nsmuggled\n.\nMAIL FROM:<x@y>\r\n.\r\n"
        )
        reply = await client.reply()
        assert reply.code == 550 and reply.text.startswith("5.5.2 ")
    finally:
        await client.close()
    assert await queued(world.services) == []


# --- STARTTLS command injection (CVE-2011-0411 class) ------------------------------------------


async def test_commands_pipelined_after_starttls_are_discarded(
    world: World, listeners: Listeners
) -> None:
    """RFC 3207 §4.2: the server discards anything the client sent before the TLS handshake. A
    man in the middle appending commands to STARTTLS must not have them run inside TLS."""
    client, _ = await RawSmtp.connect(listeners.submission_port)
    await client.command("EHLO client.example.org")
    injected = base64.b64encode(b"\0sales@acme.test\0" + SALES_PASSWORD.encode())
    await client.send(
        b"STARTTLS\r\nAUTH PLAIN " + injected + b"\r\nMAIL FROM:<sales@acme.test>\r\nNOOP\r\n"
    )
    ready = await client.reply()
    assert ready.code == 220
    await client.writer.start_tls(client_tls())
    try:
        # The first reply inside TLS answers the first command sent inside TLS, nothing earlier.
        ehlo = await client.command("EHLO client.example.org")
        assert ehlo.code == 250 and ehlo.lines[0] == HOSTNAME
        mail = await client.command("MAIL FROM:<sales@acme.test>")
        assert (mail.code, mail.text) == (530, "5.7.0 Authentication required")  # AUTH was dropped
        noop = await client.command("NOOP")
        assert noop.code == 250
        client.writer.write(b"QUIT\r\n")
        await client.writer.drain()
        bye = await client.reply()
        assert bye.code == 221
        assert await asyncio.wait_for(client.reader.read(), 5) == b""  # nothing else was queued
    finally:
        await client.close()


# --- port 465: implicit TLS ---------------------------------------------------------------------


async def test_implicit_tls_listener(world: World, listeners: Listeners) -> None:
    client = await implicit_tls_client(listeners.submissions_port)
    try:
        assert not client.supports_extension("starttls")
        assert set(client.server_auth_methods) == {"plain", "login"}
        reply = await client.execute_command(b"MAIL", b"FROM:<sales@acme.test>")
        assert (reply.code, reply.message) == (530, "5.7.0 Authentication required")
        await client.auth_login("sales@acme.test", SALES_PASSWORD)
        _, response = await client.sendmail(
            "sales@acme.test", ["bob@remote.test"], message("over 465")
        )
    finally:
        client.close()
    [row] = await queued(world.services)
    assert response == f"2.0.0 Ok: queued as {row.id}"


async def test_implicit_tls_refuses_clear_text(world: World, listeners: Listeners) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", listeners.submissions_port)
    try:
        writer.write(b"EHLO client.example.org\r\n")
        await writer.drain()
        # The server expects a TLS ClientHello; it never speaks SMTP in clear text.
        data = await asyncio.wait_for(reader.read(1024), 5)
        assert not data.startswith(b"220") and not data.startswith(b"250")
    finally:
        writer.close()


async def test_smtplib_over_both_ports(world: World, listeners: Listeners) -> None:
    def send_with_smtplib() -> None:
        with smtplib.SMTP("127.0.0.1", listeners.submission_port, timeout=15) as smtp:
            smtp.starttls(context=client_tls())
            smtp.login("sales@acme.test", SALES_PASSWORD)
            smtp.sendmail("sales@acme.test", ["bob@remote.test"], message("smtplib 587"))
        with smtplib.SMTP_SSL(
            "127.0.0.1", listeners.submissions_port, context=client_tls(), timeout=15
        ) as smtp:
            smtp.login("sales@acme.test", SALES_PASSWORD)
            smtp.sendmail("sales@acme.test", ["carol@remote.test"], message("smtplib 465"))

    await asyncio.to_thread(send_with_smtplib)
    assert len(await queued(world.services)) == 2


@pytest.mark.skipif(SWAKS is None, reason="swaks not installed")
async def test_swaks_submits_with_starttls_and_auth(world: World, listeners: Listeners) -> None:
    assert SWAKS is not None
    process = await asyncio.create_subprocess_exec(
        SWAKS,
        "--server",
        "127.0.0.1",
        "--port",
        str(listeners.submission_port),
        "--helo",
        "swaks.example.org",
        "--tls",
        "--auth",
        "LOGIN",
        "--auth-user",
        "sales@acme.test",
        "--auth-password",
        SALES_PASSWORD,
        "--from",
        "sales@acme.test",
        "--to",
        "bob@remote.test",
        "--header",
        "From: Sales <sales@acme.test>",
        "--header",
        "Subject: swaks submission",
        "--body",
        "Sent by swaks.",
        "--timeout",
        "10",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    transcript = output.decode("utf-8", "replace")
    assert process.returncode == 0, transcript
    assert "<~  235 2.7.0 Authentication successful" in transcript
    [row] = await queued(world.services)
    assert f"<~  250 2.0.0 Ok: queued as {row.id}" in transcript

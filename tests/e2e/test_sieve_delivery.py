"""Sieve filters at delivery: mail sent to the MX with smtplib is filed, flagged or discarded by
the mailbox's active script, and read back over IMAP with imaplib. A script that fails for a
message keeps it in the inbox and records the error; redirect and vacation are checked on the
disposition the rule returns."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
from email.message import EmailMessage

import pytest

from mailmark.core.dispositions import Disposition, InboundMessage
from mailmark.core.errors import InvalidInput
from mailmark.core.sieve.simple_rules import SimpleRule, rules_to_sieve
from tests.support.tls import client_tls
from tests.support.world import World

SALES = "sales@acme.test"
SALES_PASSWORD = "sales-pass-1"


def send(
    port: int, subject: str, *, sender: str = "ann@example.org", body: str = "Hello.\n"
) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, SALES, subject
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        smtp.send_message(message, from_addr=sender, to_addrs=[SALES])


def folder_contents(port: int) -> dict[str, list[tuple[str, str]]]:
    """Every folder's messages as (subject, FLAGS without \\Recent), read over IMAP."""
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.starttls(client_tls())
        imap.login(SALES, SALES_PASSWORD)
        _, listed = imap.list()
        names = [line.decode().rpartition(' "/" ')[2].strip('"') for line in listed if line]
        found: dict[str, list[tuple[str, str]]] = {}
        for name in names:
            _, exists = imap.select(f'"{name}"', readonly=True)
            found[name] = []
            if exists[0] == b"0":
                continue
            _, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            rows = []
            for item in data:
                if isinstance(item, tuple):
                    listed = item[0].decode().partition("FLAGS (")[2].partition(")")[0]
                    # \Recent only says this is the first session to see the message.
                    flags = " ".join(f for f in listed.split() if f != "\\Recent")
                    subject = item[1].decode().strip().removeprefix("Subject: ")
                    rows.append((subject, flags))
            found[name] = rows
        return found
    finally:
        imap.logout()


async def test_rules_file_flag_and_discard_mail_from_the_mx(
    world: World, mx_port: int, listeners: object
) -> None:
    imap_port = listeners.imap_port  # type: ignore[attr-defined]
    await world.services.mailstore.create_folder(world.sales.id or 0, "Invoices")
    await world.services.sieve.put(
        SALES,
        'require ["fileinto", "imap4flags"];\n'
        'if header :contains "subject" "invoice" {\n'
        '    fileinto :flags "\\\\Flagged $Billing" "Invoices";\n'
        "    stop;\n"
        "}\n"
        'if address :domain :is "from" "spam.example" { discard; stop; }\n'
        'if header :contains "subject" "fyi" { addflag "\\\\Seen"; }\n',
    )
    await asyncio.to_thread(send, mx_port, "Invoice 42")
    await asyncio.to_thread(send, mx_port, "Cheap pills", sender="x@spam.example")
    await asyncio.to_thread(send, mx_port, "FYI: the office is closed")
    await asyncio.to_thread(send, mx_port, "Lunch?")
    found = await asyncio.to_thread(folder_contents, imap_port)
    assert found["Invoices"] == [("Invoice 42", "\\Flagged $Billing")]
    assert sorted(found["INBOX"]) == [("FYI: the office is closed", "\\Seen"), ("Lunch?", "")]
    assert all("Cheap pills" not in s for rows in found.values() for s, _ in rows)
    stored = await world.services.sieve.get(SALES)
    assert stored is not None and stored.last_error is None


async def test_a_script_that_fails_keeps_mail_in_the_inbox_and_records_why(
    world: World, mx_port: int, listeners: object
) -> None:
    imap_port = listeners.imap_port  # type: ignore[attr-defined]
    await world.services.sieve.put(
        SALES,
        'require ["fileinto", "mailbox"];\n'
        'if header :contains "subject" "report" { fileinto "Reports"; }\n'
        'if header :contains "subject" "auto" { fileinto :create "Auto/Made"; }\n',
    )
    await asyncio.to_thread(send, mx_port, "Weekly report")
    await asyncio.to_thread(send, mx_port, "auto-generated")
    found = await asyncio.to_thread(folder_contents, imap_port)
    # RFC 5228 §4.1: the folder does not exist and :create was not given: kept in INBOX.
    assert found["INBOX"] == [("Weekly report", "")]
    assert found["Auto/Made"] == [("auto-generated", "")]
    assert "Reports" not in found
    stored = await world.services.sieve.get(SALES)
    assert stored is not None and stored.last_error is not None
    assert 'fileinto "Reports": there is no such folder' in stored.last_error
    assert stored.last_error_at is not None
    # Saving the script again clears the error.
    await world.services.sieve.put(SALES, stored.content)
    saved = await world.services.sieve.get(SALES)
    assert saved is not None and saved.last_error is None


async def test_a_script_with_a_syntax_error_is_refused_when_saved(world: World) -> None:
    with pytest.raises(InvalidInput, match=r"Line 3: expected \";\" after discard"):
        await world.services.sieve.put(SALES, 'require "fileinto";\nif true {\n  discard\n}\n')
    assert await world.services.sieve.get(SALES) is None


async def test_a_run_time_error_drops_every_action_and_delivers_to_the_inbox(
    world: World, mx_port: int, listeners: object
) -> None:
    imap_port = listeners.imap_port  # type: ignore[attr-defined]
    redirects = "".join(f'redirect "r{n}@else.example";\n' for n in range(5))
    await world.services.sieve.put(SALES, f'require "fileinto";\nfileinto "Junk";\n{redirects}')
    await asyncio.to_thread(send, mx_port, "Too many redirects")
    found = await asyncio.to_thread(folder_contents, imap_port)
    assert found["INBOX"] == [("Too many redirects", "")]
    assert found["Junk"] == []
    stored = await world.services.sieve.get(SALES)
    assert stored is not None and "more than 4 times" in (stored.last_error or "")


def inbound(subject: str, sender: str = "ann@example.org") -> InboundMessage:
    raw = (f"From: {sender}\r\nTo: {SALES}\r\nSubject: {subject}\r\n\r\nHello.\r\n").encode()
    return InboundMessage(
        raw=raw,
        trace_prefix=b"Return-Path: <ann@example.org>\r\n",
        mail_from=sender,
        rcpt_tos=[SALES],
        transaction_id="T1",
    )


async def test_redirect_and_vacation_fill_the_disposition(world: World) -> None:
    rule = world.services.sieve_filter
    await world.services.sieve.put(
        SALES,
        'require ["copy", "vacation", "envelope"];\n'
        'if envelope :domain :is "from" "example.org" {\n'
        '    redirect :copy "archive@else.example";\n'
        '    redirect "boss@else.example";\n'
        "}\n"
        'vacation :days 3 :subject "Away" "Back on Monday.";\n',
    )
    start = Disposition(world.sales, ("INBOX",))
    decided = await rule.apply(inbound("Hi"), start)
    assert decided.folders == ()  # a redirect without :copy cancels the implicit keep
    assert decided.redirects == ("archive@else.example", "boss@else.example")
    [reply] = decided.replies
    assert (reply.body, reply.subject, reply.days) == ("Back on Monday.", "Away", 3)
    assert reply.handle is not None
    other = await rule.apply(inbound("Hi", sender="bob@elsewhere.example"), start)
    assert other.folders == ("INBOX",) and other.redirects == ()


async def test_simple_rules_apply_at_delivery_and_the_cache_sees_changes(world: World) -> None:
    rule = world.services.sieve_filter
    start = Disposition(world.sales, ("Junk",))
    # No script: the disposition is left as it was (a quarantined message stays in Junk).
    assert await rule.apply(inbound("Hi"), start) == start
    await world.services.sieve.put(
        SALES, rules_to_sieve([SimpleRule("subject", "contains", "hi", "read")])
    )
    first = await rule.apply(inbound("Hi"), start)
    assert first.folders == ("Junk",) and first.flags == ("\\Seen",)
    await world.services.sieve.put(
        SALES, rules_to_sieve([SimpleRule("subject", "contains", "hi", "discard")])
    )
    assert (await rule.apply(inbound("Hi"), start)).folders == ()

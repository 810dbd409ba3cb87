"""Inbound spam filtering against a real rspamd: verdicts over the MX, and training from moves
into and out of Junk (the web app's actions and IMAP MOVE)."""

from __future__ import annotations

import asyncio
import imaplib
import re
import smtplib
from dataclasses import replace
from datetime import timedelta

import pytest

from mailmark.bootstrap import (
    Listeners,
    Services,
    rspamd_client,
    spam_filters,
    start_listeners,
)
from mailmark.config import Settings
from mailmark.core.spam import SpamThresholds
from mailmark.core.states import SpecialFolder
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.spam.rspamd import Rspamd as RspamdClient
from tests.fakedns import FakeDns
from tests.support.rspamd import GTUBE, Rspamd
from tests.support.tls import client_tls
from tests.support.web import ApiClient
from tests.support.world import World, stored_copies

# Learning runs in the background and rspamd's scanner re-reads the learn counts every few
# seconds: a bound on how often to look, not an assertion on time.
BAYES_POLLS = 120


def message(number: int, subject: str, body: str) -> bytes:
    return (
        f"From: Bob Sender <bob@example.org>\r\n"
        f"To: Sales <sales@acme.test>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Sun, 06 Dec 2026 04:00:00 +0000\r\n"
        f"Message-ID: <spam-test-{number}@example.org>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n{body}\r\n"
    ).encode()


OFFER = (
    "Cheap replica watches and discount pharmacy pills, order today with free worldwide "
    "shipping and a money back guarantee for every customer who answers this week"
)
MEETING = (
    "The quarterly planning meeting moves to Thursday afternoon; please bring the budget "
    "spreadsheet and the notes about hiring for the support team"
)


@pytest.fixture
def settings(settings: Settings, rspamd: Rspamd) -> Settings:
    return settings.model_copy(
        update={"rspamd_url": rspamd.url, "rspamd_controller_url": rspamd.controller_url}
    )


def send(port: int, raw: bytes, recipient: str = "sales@acme.test") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.sendmail("bob@example.org", [recipient], raw)


def spam_status(data: bytes) -> str:
    found = re.search(rb"^X-Spam-Status: (.*?)\r\n(?![ \t])", data, re.MULTILINE | re.DOTALL)
    assert found, data[:2000]
    return found[1].decode()


def score(data: bytes) -> float:
    found = re.search(rb"^X-Spam-Score: (-?[0-9.]+)\r\n", data, re.MULTILINE)
    assert found, data[:2000]
    return float(found[1])


async def test_gtube_is_refused_with_550_and_nothing_is_stored(world: World, mx_port: int) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await asyncio.to_thread(send, mx_port, message(1, "Test", GTUBE))
    assert refused.value.smtp_code == 550
    text = refused.value.smtp_error.decode()
    assert text.startswith("5.7.1 Message refused as spam (score 15.0: Gtube pattern)"), text
    assert await stored_copies(world.services, world.sales) == []


async def test_clean_mail_is_delivered_with_the_verdict_and_forged_verdicts_are_dropped(
    world: World, mx_port: int
) -> None:
    forged = (
        b"X-Spam-Flag: NO\r\n"
        b"X-Spam-Status: No, score=-100.0 forged\r\n"
        b"X-Spamd-Result: default: False [-100.00 / 15.00]\r\n"
        b"x-rspamd-server: elsewhere\r\n"
    )
    await asyncio.to_thread(send, mx_port, forged + message(2, "Lunch", MEETING))
    [copy] = await stored_copies(world.services, world.sales)
    assert copy.folder == SpecialFolder.INBOX
    assert copy.data.count(b"X-Spam-Flag:") == 1
    assert b"X-Spam-Flag: NO\r\n" in copy.data
    assert b"forged" not in copy.data and b"-100" not in copy.data
    assert b"elsewhere" not in copy.data.lower()
    status = spam_status(copy.data)
    assert status.startswith("No, score=") and "action=no_action" in status, status
    # Ours sit with the trace fields, before the message's own first field.
    assert copy.data.index(b"X-Spam-Status:") < copy.data.index(b"From: Bob Sender")


async def test_a_score_over_the_junk_threshold_files_the_message_in_junk(
    services: Services, world: World
) -> None:
    settings = services.settings.model_copy(update={"spam_junk_score": -50.0})
    client = rspamd_client(settings)
    assert client is not None
    strict = replace(
        services, settings=settings, spam_filter=spam_filters(settings, services.resolver, client)
    )
    listeners = await start_listeners(strict)
    try:
        await asyncio.to_thread(send, listeners.mx_port, message(3, "Lunch", MEETING))
    finally:
        await listeners.close()
        await client.close()
    [copy] = await stored_copies(world.services, world.sales)
    assert copy.folder == SpecialFolder.JUNK
    assert b"X-Spam-Flag: YES\r\n" in copy.data
    assert spam_status(copy.data).startswith("Yes, score=")


async def test_rspamd_is_told_the_clients_forward_confirmed_host_name(
    rspamd: Rspamd, fake_dns: FakeDns
) -> None:
    """rspamd skips its reverse DNS rules for loopback clients, so this asks it directly about
    a client at a documentation address, with and without a name that resolves back to it."""
    fake_dns.add("7.2.0.192.in-addr.arpa", "PTR", "mail.example.org.")
    fake_dns.add("mail.example.org", "A", "192.0.2.7")
    fake_dns.add("8.2.0.192.in-addr.arpa", "PTR", "forged.example.org.")
    fake_dns.add("forged.example.org", "A", "192.0.2.99")
    client = RspamdClient(
        url=rspamd.url,
        controller_url=None,
        password=None,
        timeout=timedelta(seconds=30),
        thresholds=SpamThresholds(),
        resolver=DnsResolver([fake_dns.address]),
    )
    verdicts = {}
    try:
        for ip in ("192.0.2.7", "192.0.2.8"):
            verdict = await client.check(
                message(20, "Lunch", MEETING),
                transaction_id="t1",
                client_ip=ip,
                helo="mail.example.org",
                mail_from="bob@example.org",
                rcpt_tos=["sales@acme.test"],
            )
            verdicts[ip] = spam_status(verdict.headers)
    finally:
        await client.close()
    assert "RDNS_NONE" not in verdicts["192.0.2.7"], verdicts
    # A name that does not resolve back to the client is no name (RFC 8601 §2.7.3's iprev).
    assert "RDNS_NONE=" in verdicts["192.0.2.8"], verdicts


def imap_move(port: int, source: str, uid: int, dest: str) -> None:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.starttls(client_tls())
        imap.login("sales@acme.test", "sales-pass-1")
        assert imap.select(source)[0] == "OK"
        typ, data = imap.uid("MOVE", str(uid), dest)
        assert typ == "OK", data
    finally:
        imap.logout()


async def test_moves_into_and_out_of_junk_train_rspamd_and_change_the_next_verdict(
    listeners: Listeners, world: World, owner_client: ApiClient, rspamd: Rspamd
) -> None:
    mx = listeners.mx_port
    await asyncio.to_thread(send, mx, message(10, "Special offer", OFFER))
    [before] = await stored_copies(world.services, world.sales)
    assert before.folder == SpecialFolder.INBOX and "BAYES" not in spam_status(before.data)
    # A message someone else filed in Junk: taking it out over IMAP says it is not spam.
    await world.services.delivery.deliver(
        message(11, "Planning", MEETING),
        recipients=[world.sales],
        mail_from="bob@example.org",
        folder=SpecialFolder.JUNK,
    )
    await asyncio.to_thread(imap_move, listeners.imap_port, "Junk", 1, "INBOX")
    # The offer goes to Junk from the web app.
    assert world.sales.id is not None
    folders = (await owner_client.get(f"/api/mail/{world.sales.id}/folders")).json()
    inbox = next(folder["id"] for folder in folders if folder["name"] == "INBOX")
    moved = await owner_client.post(
        f"/api/mail/{world.sales.id}/actions",
        json={"messages": [{"folderId": inbox, "uid": 1}], "action": "spam"},
    )
    assert moved.status_code == 200 and moved.json()["updated"] == 1, moved.text

    similar = message(12, "Special offer again", OFFER + " or the next")
    for _ in range(BAYES_POLLS):
        if "BAYES_SPAM" in await asyncio.to_thread(rspamd.symbols, similar):
            break
        await asyncio.sleep(0.5)
    else:
        pytest.fail(f"rspamd never classified with what it learned:\n{rspamd.log_tail()}")

    await asyncio.to_thread(send, mx, similar)
    after = next(
        copy
        for copy in await stored_copies(world.services, world.sales)
        if b"spam-test-12@" in copy.data
    )
    assert "BAYES_SPAM=" in spam_status(after.data)
    assert score(after.data) > score(before.data)

"""Without rspamd: DNS blocklists refuse listed clients, and an rspamd that cannot be reached
neither loses nor blocks mail (unless the settings ask for 451)."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mailmark.bootstrap import Listeners, Services, build_services, start_listeners
from mailmark.config import Settings
from mailmark.core.ports import Clock
from mailmark.core.states import SpecialFolder
from tests.fakedns import FakeDns
from tests.support.serve import free_port
from tests.support.tls import client_tls
from tests.support.world import stored_copies

MESSAGE = (
    b"From: Bob <bob@example.org>\r\nTo: Sales <sales@acme.test>\r\nSubject: Hello\r\n"
    b"Message-ID: <hello-1@example.org>\r\n\r\nHello there.\r\n"
)


@asynccontextmanager
async def mail_server(
    settings: Settings, clock: Clock, **update: Any
) -> AsyncIterator[tuple[Services, Listeners]]:
    """Services and listeners under these settings, with the mailbox sales@acme.test."""
    services = await build_services(settings.model_copy(update=update), clock=clock)
    try:
        await services.accounts.create(
            "acme", owner_email="owner@acme.test", password="owner-pass-1", plan="unlimited"
        )
        await services.domains.add("acme.test", account_name="acme", trust=True)
        await services.mailboxes.create("sales@acme.test", password="sales-pass-1")
        listeners = await start_listeners(services)
        try:
            yield services, listeners
        finally:
            await listeners.close()
    finally:
        await services.close()


def send(port: int, raw: bytes = MESSAGE) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.sendmail("bob@example.org", ["sales@acme.test"], raw)


async def stored(services: Services) -> list[tuple[str, bytes]]:
    mailbox = await services.mailboxes.get("sales@acme.test")
    return [(copy.folder, copy.data) for copy in await stored_copies(services, mailbox)]


async def test_a_client_on_a_blocklist_is_refused_naming_the_list(
    settings: Settings, clock: Clock, fake_dns: FakeDns
) -> None:
    # RFC 5782 §2.1: 127.0.0.1 reversed under the zone; 127.0.0.2 is a listing.
    fake_dns.add("1.0.0.127.bl.example", "A", "127.0.0.2")
    zones = ["clean.example", "bl.example"]
    async with mail_server(settings, clock, dnsbl_zones=zones) as (services, listeners):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await asyncio.to_thread(send, listeners.mx_port)
        assert await stored(services) == []
    assert refused.value.smtp_code == 554
    assert refused.value.smtp_error.decode() == (
        "5.7.1 Mail from 127.0.0.1 refused: the address is listed by bl.example"
    )
    assert ("1.0.0.127.clean.example", "A") in fake_dns.queries


async def test_blocklists_run_before_rspamd_when_both_are_configured(
    settings: Settings, clock: Clock, fake_dns: FakeDns, controller: RecordingController
) -> None:
    fake_dns.add("1.0.0.127.bl.example", "A", "127.0.0.2")
    async with mail_server(
        settings, clock, dnsbl_zones=["bl.example"], rspamd_url=controller.url
    ) as (services, listeners):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await asyncio.to_thread(send, listeners.mx_port)
        assert await stored(services) == []
    assert refused.value.smtp_code == 554
    # Refused on the list's word alone: the scanner was never asked.
    assert controller.requests == []


async def test_a_blocklist_error_code_or_a_failing_list_lets_mail_through(
    settings: Settings, clock: Clock, fake_dns: FakeDns
) -> None:
    # Spamhaus answers 127.255.255.254 to queries through a public resolver: not a listing.
    fake_dns.add("1.0.0.127.zen.example", "A", "127.255.255.254")
    fake_dns.servfail("1.0.0.127.broken.example")
    zones = ["zen.example", "broken.example"]
    async with mail_server(settings, clock, dnsbl_zones=zones) as (services, listeners):
        await asyncio.to_thread(send, listeners.mx_port)
        [(folder, data)] = await stored(services)
    assert folder == SpecialFolder.INBOX
    assert data.endswith(MESSAGE)


async def test_rspamd_unreachable_accepts_unscanned_by_default(
    settings: Settings, clock: Clock
) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    async with mail_server(settings, clock, rspamd_url=gone) as (services, listeners):
        await asyncio.to_thread(send, listeners.mx_port, b"X-Spam-Flag: NO\r\n" + MESSAGE)
        [(folder, data)] = await stored(services)
    assert folder == SpecialFolder.INBOX
    # No verdict to add, and the one that came from outside is still dropped.
    assert b"X-Spam-" not in data
    assert data.endswith(MESSAGE)


async def test_rspamd_unreachable_defers_when_the_settings_say_tempfail(
    settings: Settings, clock: Clock
) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    async with mail_server(settings, clock, rspamd_url=gone, rspamd_unavailable="tempfail") as (
        services,
        listeners,
    ):
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            await asyncio.to_thread(send, listeners.mx_port)
        assert await stored(services) == []
    assert deferred.value.smtp_code == 451
    assert deferred.value.smtp_error.decode() == (
        "4.3.0 Spam filter unavailable; please try again later"
    )


class RecordingController:
    """A stand-in for rspamd on loopback: records each POST's path and body, answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((self.path, body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def controller() -> Iterator[RecordingController]:
    recording = RecordingController()
    try:
        yield recording
    finally:
        recording.close()


def imap_commands(port: int, *commands: tuple[str, ...]) -> None:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.starttls(client_tls())
        imap.login("sales@acme.test", "sales-pass-1")
        for command in commands:
            if command[0] == "SELECT":
                typ, data = imap.select(command[1])
            else:
                typ, data = imap.uid(*command)
            assert typ == "OK", (command, data)
    finally:
        imap.logout()


async def wait_for_learns(controller: RecordingController, count: int) -> None:
    for _ in range(200):
        if len(controller.requests) >= count:
            return
        await asyncio.sleep(0.05)


async def test_imap_moves_and_copies_learn_spam_into_junk_and_ham_out_of_it_but_not_to_trash(
    settings: Settings, clock: Clock, controller: RecordingController
) -> None:
    scanner = f"http://127.0.0.1:{free_port()}"  # scanning fails open: delivery is unaffected
    async with mail_server(
        settings, clock, rspamd_url=scanner, rspamd_controller_url=controller.url
    ) as (_, listeners):
        for number in (1, 2, 3):
            await asyncio.to_thread(
                send, listeners.mx_port, MESSAGE.replace(b"-1@", b"-%d@" % number)
            )
        port = listeners.imap_port
        # COPY into Junk (then EXPUNGE, as clients without MOVE do): spam.
        await asyncio.to_thread(
            imap_commands,
            port,
            ("SELECT", "INBOX"),
            ("COPY", "1", "Junk"),
            ("STORE", "1", "+FLAGS", "(\\Deleted)"),
            ("EXPUNGE", "1"),
            ("MOVE", "2", "Junk"),
        )
        await wait_for_learns(controller, 2)
        assert [path for path, _ in controller.requests] == ["/learnspam", "/learnspam"]
        # Out of Junk to Trash: deleting spam says nothing; to Archive: not spam.
        await asyncio.to_thread(
            imap_commands,
            port,
            ("SELECT", "Junk"),
            ("MOVE", "1", "Trash"),
            ("MOVE", "2", "Archive"),
        )
        await wait_for_learns(controller, 3)
        # Within Inbox and between ordinary folders: nothing.
        await asyncio.to_thread(imap_commands, port, ("SELECT", "INBOX"), ("COPY", "3", "Archive"))
        await asyncio.sleep(0.5)
    assert [path for path, _ in controller.requests] == ["/learnspam", "/learnspam", "/learnham"]
    # What is learned is what the mailbox holds: our trace fields, then the message.
    assert controller.requests[0][1].startswith(b"Return-Path: <bob@example.org>\r\n")
    assert controller.requests[0][1].endswith(MESSAGE)
    assert b"<hello-2@" in controller.requests[2][1]


async def test_a_failing_controller_never_blocks_a_move(
    settings: Settings, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    refusing = RecordingController(status=500)
    try:
        async with mail_server(
            settings,
            clock,
            rspamd_url=f"http://127.0.0.1:{free_port()}",
            rspamd_controller_url=refusing.url,
        ) as (services, listeners):
            await asyncio.to_thread(send, listeners.mx_port)
            await asyncio.to_thread(
                imap_commands, listeners.imap_port, ("SELECT", "INBOX"), ("MOVE", "1", "Junk")
            )
            await wait_for_learns(refusing, 1)
            for _ in range(100):
                if "did not learn message 1 as spam" in caplog.text:
                    break
                await asyncio.sleep(0.05)
            [(folder, _)] = await stored(services)
    finally:
        refusing.close()
    assert folder == SpecialFolder.JUNK
    assert "did not learn message 1 as spam: rspamd learnspam: HTTP 500" in caplog.text

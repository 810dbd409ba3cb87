"""Without rspamd: DNS blocklists refuse listed clients, and an rspamd that cannot be reached
neither loses nor blocks mail (unless the settings ask for 451)."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from mailmark.bootstrap import Listeners, Services, build_services, start_listeners
from mailmark.config import Settings
from mailmark.core.ports import Clock
from mailmark.core.states import SpecialFolder
from tests.fakedns import FakeDns
from tests.support.serve import free_port
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

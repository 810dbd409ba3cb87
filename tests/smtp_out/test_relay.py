"""Outbound mail through a relay host: a real Postfix on loopback requiring STARTTLS (or implicit
TLS) and AUTH, which hands what it accepts on to the test's receiving MTA."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email
from collections.abc import AsyncIterator
from email import policy
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest
from pydantic import SecretStr

from mailmark.bootstrap import Services, outbound_worker
from mailmark.config import Settings
from mailmark.core.model import QueueEntry
from mailmark.core.relays import RelayTls
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.smtp_out.worker import OutboundWorker
from tests.fakedns import FakeDns
from tests.smtp_out.conftest import publish_dkim
from tests.smtp_out.remote import TestCa
from tests.smtp_out.test_delivery import dsn_reports
from tests.support.postfix_relay import (
    RELAY_HOSTNAME,
    RELAY_PASSWORD,
    RELAY_USER,
    PostfixRelay,
    postfix_relay,
)
from tests.support.smtp_sink import AiosmtpdSink
from tests.support.world import World, stored_copies

# Postfix queues what it accepts and relays it a moment later.
ARRIVAL_TIMEOUT = 120.0


@pytest.fixture
def relay_ca(tmp_path: Path) -> TestCa:
    """The private CA that signed the relay's certificate (for `localhost`)."""
    ca = TestCa(tmp_path / "relay-ca")
    ca.server_context("localhost")
    return ca


@pytest.fixture
async def relay(relay_ca: TestCa, sink: AiosmtpdSink) -> AsyncIterator[PostfixRelay]:
    stack = contextlib.ExitStack()
    certificate = relay_ca.directory / "localhost.crt"
    key = relay_ca.directory / "localhost.key"
    started = await asyncio.to_thread(
        stack.enter_context, postfix_relay(certificate, key, sink.port)
    )
    try:
        yield started
    finally:
        await asyncio.to_thread(stack.close)


@pytest.fixture
def settings(settings: Settings, relay: PostfixRelay, relay_ca: TestCa) -> Settings:
    """Every domain's mail goes through the relay's STARTTLS port, trusting its private CA.
    (remote.test's MX is the sink as well: only the relay's Received field tells the paths
    apart.)"""
    return settings.model_copy(
        update={
            "relay_host": "localhost",
            "relay_port": relay.starttls_port,
            "relay_tls": "starttls",
            "relay_username": RELAY_USER,
            "relay_password": SecretStr(RELAY_PASSWORD),
            "relay_ca_file": relay_ca.cert_path,
        }
    )


async def entries(services: Services) -> dict[str, QueueEntry]:
    return {entry.recipient: entry for entry in await services.queue_admin.list(limit=1000)}


async def logged(relay: PostfixRelay, text: str) -> bool:
    """Whether the relay's log says `text`, waiting a little for its log daemon to write."""
    for _ in range(100):
        if text in relay.log:
            return True
        await asyncio.sleep(0.1)
    return False


def relayed_by_postfix(content: bytes) -> bool:
    """Whether the top Received field is the relay's, for a client that authenticated over TLS
    (RFC 3848: ESMTPSA)."""
    message = email.message_from_bytes(content, policy=policy.default)
    top = " ".join(str(message.get_all("Received", [""])[0]).split())
    return f"by {RELAY_HOSTNAME}" in top and "with ESMTPSA" in top


@pytest.mark.parametrize("tls", [RelayTls.STARTTLS, RelayTls.IMPLICIT])
async def test_mail_goes_through_the_relay_signed_over_tls_with_auth(
    services: Services,
    world: World,
    relay: PostfixRelay,
    sink: AiosmtpdSink,
    fake_dns: FakeDns,
    tls: RelayTls,
) -> None:
    if tls is RelayTls.IMPLICIT:
        await services.relays.use_relay(
            world.domain,
            host="localhost",
            port=relay.implicit_tls_port,
            tls=RelayTls.IMPLICIT,
            username=RELAY_USER,
            password=RELAY_PASSWORD,
        )
    async with running_worker(services, world, fake_dns) as worker:
        submitted = await services.sending.submit(
            mailbox=world.sales,
            to=["bob@remote.test"],
            cc=["carol@other.test"],
            subject="Through the smarthost",
            text="Hello Bob,\n\nthis went through our relay.\n",
        )
        await worker.wait_until_idle()
    found = await entries(services)
    assert {r: e.status for r, e in found.items()} == {
        "bob@remote.test": "delivered",
        "carol@other.test": "delivered",
    }
    assert found["bob@remote.test"].mx_host == "localhost"
    assert found["bob@remote.test"].last_code == 250
    await sink.wait_for(2, timeout=ARRIVAL_TIMEOUT)
    recipients = sorted(r for got in sink.received for r in got.recipients)
    assert recipients == ["bob@remote.test", "carol@other.test"]
    resolver = DnsResolver([fake_dns.address])
    for got in sink.received:
        assert relayed_by_postfix(got.content), relay.log[-2000:]
        assert f"<{submitted.message_id}>".encode() in got.content
        assert dkim.verify(got.content, dnsfunc=resolver.dkim_dnsfunc)
    # One transaction for both recipient domains: the relay queued one message for two.
    assert await logged(relay, "nrcpt=2") and relay.log.count("nrcpt=") == 1


async def test_wrong_credentials_defer_with_the_relays_reply(
    services: Services, world: World, relay: PostfixRelay, sink: AiosmtpdSink, fake_dns: FakeDns
) -> None:
    await services.relays.use_relay(
        world.domain,
        host="localhost",
        port=relay.starttls_port,
        username=RELAY_USER,
        password="not the password",
    )
    async with running_worker(services, world, fake_dns) as worker:
        await services.sending.submit(
            mailbox=world.sales, to=["bob@remote.test"], subject="Hello", text="x"
        )
        await worker.wait_until_idle()
    [entry] = (await entries(services)).values()
    assert entry.status == "deferred" and entry.last_code == 451
    assert entry.last_reply is not None
    assert f"relay localhost:{relay.starttls_port} refused the login" in entry.last_reply
    assert "535 5.7.8" in entry.last_reply  # Postfix's own words
    assert "from=<" not in relay.log and sink.received == []


async def test_a_relay_without_starttls_gets_nothing(
    services: Services, world: World, relay: PostfixRelay, sink: AiosmtpdSink, fake_dns: FakeDns
) -> None:
    await services.relays.use_relay(
        world.domain,
        host="localhost",
        port=relay.plain_port,
        username=RELAY_USER,
        password=RELAY_PASSWORD,
    )
    async with running_worker(services, world, fake_dns) as worker:
        await services.sending.submit(
            mailbox=world.sales, to=["bob@remote.test"], subject="Hello", text="x"
        )
        await worker.wait_until_idle()
    [entry] = (await entries(services)).values()
    assert entry.status == "deferred" and entry.last_code == 451
    assert entry.last_reply is not None
    assert "does not offer STARTTLS, which the relay setting requires" in entry.last_reply
    # Not even the envelope reached the relay: no MAIL in the clear.
    assert "from=<" not in relay.log
    assert sink.received == []


async def test_an_untrusted_relay_certificate_defers(
    services: Services, world: World, relay: PostfixRelay, fake_dns: FakeDns
) -> None:
    # The system's roots, which never signed the relay's certificate.
    system_roots = services.settings.model_copy(update={"relay_ca_file": None})
    services = dataclasses.replace(services, settings=system_roots)
    async with running_worker(services, world, fake_dns) as worker:
        await services.sending.submit(
            mailbox=world.sales, to=["bob@remote.test"], subject="Hello", text="x"
        )
        await worker.wait_until_idle()
    [entry] = (await entries(services)).values()
    assert entry.status == "deferred"
    assert entry.last_reply is not None and "CERTIFICATE_VERIFY_FAILED" in entry.last_reply
    assert "from=<" not in relay.log


async def test_a_5xx_from_the_relay_bounces_that_recipient(
    services: Services, world: World, relay: PostfixRelay, sink: AiosmtpdSink, fake_dns: FakeDns
) -> None:
    async with running_worker(services, world, fake_dns) as worker:
        await services.sending.submit(
            mailbox=world.sales,
            to=["refused@remote.test", "bob@remote.test"],
            subject="Hello",
            text="x",
        )
        await worker.wait_until_idle()
    found = await entries(services)
    assert found["refused@remote.test"].status == "bounced"
    assert found["refused@remote.test"].last_code == 550
    assert found["bob@remote.test"].status == "delivered"
    [report] = dsn_reports(await stored_copies(services, world.sales))
    text = report.as_string()
    assert "Final-Recipient: rfc822; refused@remote.test" in text
    assert "No such user at the relay" in text
    await sink.wait_for(1, timeout=ARRIVAL_TIMEOUT)
    assert [got.recipients for got in sink.received] == [["bob@remote.test"]]


async def test_a_direct_domain_skips_the_installation_relay(
    services: Services,
    world: World,
    relay: PostfixRelay,
    sink: AiosmtpdSink,
    remote_dns: FakeDns,
) -> None:
    await services.relays.go_direct(world.domain)
    async with running_worker(services, world, remote_dns) as worker:
        await services.sending.submit(
            mailbox=world.sales, to=["bob@remote.test"], subject="Direct", text="x"
        )
        await worker.wait_until_idle()
    [entry] = (await entries(services)).values()
    assert (entry.status, entry.mx_host) == ("delivered", "mx.remote.test")
    [got] = sink.received
    assert not relayed_by_postfix(got.content)
    assert "from=<" not in relay.log


@contextlib.asynccontextmanager
async def running_worker(
    services: Services, world: World, fake_dns: FakeDns
) -> AsyncIterator[OutboundWorker]:
    """The queue's worker, with acme.test's DKIM key published."""
    await publish_dkim(services, fake_dns, world.domain)
    worker = outbound_worker(services)
    worker.start()
    try:
        yield worker
    finally:
        await worker.stop()

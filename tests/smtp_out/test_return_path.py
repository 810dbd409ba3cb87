"""The return path of outgoing mail resolves, over real sockets: a receiving MTA on loopback that
refuses sender domains with neither MX nor address record (as Postfix's
reject_unknown_sender_domain does) accepts our mail for a domain trusted without DNS (fallback
return path on the server's own name) and for a verified one (mail.<domain>); SPF and DMARC of the
chosen return path are evaluated against the published records; reports sent back to either
return path are processed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import aiosmtplib
import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailmark.bootstrap import Listeners, Services
from mailmark.core.errors import Suppressed
from mailmark.dns_tools.record_set import MailServer, spf_value
from mailmark.dns_tools.resolver import DnsResolver, DnsTemporaryError
from mailmark.smtp_in.authentication import AuthenticationResults, MessageAuthenticator
from mailmark.smtp_out.worker import OutboundWorker
from mailmark.storage.tables import suppressions
from tests.core.report_samples import postfix_bounce
from tests.core.test_domain_verification import publish
from tests.fakedns import FakeDns
from tests.smtp_out.conftest import publish_dkim
from tests.support.smtp_sink import AiosmtpdSink, Received
from tests.support.world import HOSTNAME, World


class SenderDomainCheckingSink(AiosmtpdSink):
    """An MTA that refuses MAIL FROM whose domain has neither an MX nor an A/AAAA record, like
    Postfix's reject_unknown_sender_domain (with unknown_address_reject_code = 550)."""

    def __init__(self, resolver: DnsResolver) -> None:
        super().__init__()
        self._resolver = resolver
        self.refused: list[str] = []

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        domain = address.rpartition("@")[2]
        if address and not await asyncio.to_thread(self._resolves, domain):
            self.refused.append(address)
            return f"550 5.1.8 <{address}>: Sender address rejected: Domain not found"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    def _resolves(self, domain: str) -> bool:
        try:
            return bool(self._resolver.mx(domain) or self._resolver.addresses(domain))
        except DnsTemporaryError:
            return False


@pytest.fixture
async def sink(fake_dns: FakeDns) -> AsyncIterator[AiosmtpdSink]:
    server = SenderDomainCheckingSink(DnsResolver([fake_dns.address], cache=False))
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def server_name_published(fake_dns: FakeDns) -> None:
    """The server's own name has an address (the production instructions) and its SPF record."""
    fake_dns.add(HOSTNAME, "A", "127.0.0.1")
    fake_dns.add(HOSTNAME, "TXT", spf_value(MailServer(HOSTNAME)))


async def publish_domain(services: Services, fake_dns: FakeDns, domain: str) -> None:
    """The domain's required records except the return path's, which the tests decide."""
    _, records = await services.domains.records(domain)
    publish(fake_dns, [r for r in records if r.name != f"mail.{domain}"])


async def send_one(
    services: Services, world: World, outbound: OutboundWorker, sink: AiosmtpdSink, to: str
) -> Received:
    await services.sending.submit(
        mailbox=world.sales, to=[to], subject="Figures", text="The figures.\n"
    )
    await outbound.wait_until_idle()
    [got] = sink.received
    return got


async def authenticate(fake_dns: FakeDns, got: Received, raw: bytes) -> AuthenticationResults:
    """SPF, DKIM and DMARC as the receiving side evaluates them, against the published records."""
    resolver = DnsResolver([fake_dns.address], cache=False)
    return await MessageAuthenticator(resolver, "sink.remote.test").authenticate(
        raw=raw, client_ip="127.0.0.1", helo=HOSTNAME, mail_from=got.mail_from
    )


def without_dkim(raw: bytes) -> bytes:
    """The message with its DKIM-Signature field removed: DMARC must then pass on SPF alone."""
    return re.sub(rb"(?im)^DKIM-Signature:.*\r\n(?:[ \t].*\r\n)*", b"", raw, count=1)


async def test_the_checking_sink_refuses_an_unpublished_mail_from_domain(
    sink: AiosmtpdSink, server_name_published: None
) -> None:
    """What receivers did to our mail before: bounce+…@mail.<domain> with nothing published."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, start_tls=False, timeout=10)
    await client.connect()
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.sendmail(
                "bounce+abcdefghijklmnopqrstuvwx@mail.acme.test", ["bob@remote.test"], b"x\r\n"
            )
    finally:
        await client.quit()
    assert refused.value.code == 550 and "Domain not found" in refused.value.message


async def test_a_trusted_domain_sends_with_the_fallback_return_path(
    services: Services,
    world: World,
    fake_dns: FakeDns,
    sink: SenderDomainCheckingSink,
    outbound: OutboundWorker,
    server_name_published: None,
) -> None:
    await publish_domain(services, fake_dns, world.domain)
    got = await send_one(services, world, outbound, sink, "bob@remote.test")
    assert re.fullmatch(rf"bounce\+[a-z0-9]{{24}}@{re.escape(HOSTNAME)}", got.mail_from)
    assert sink.refused == []

    auth = await authenticate(fake_dns, got, got.content)
    assert (auth.spf, auth.spf_scope, auth.spf_identity) == ("pass", "mailfrom", got.mail_from)
    # The server's name is not aligned with acme.test: DMARC passes on the DKIM signature alone.
    assert (auth.dmarc, auth.header_from_domain, auth.dkim_domains) == (
        "pass",
        "acme.test",
        ("acme.test",),
    )
    unsigned = await authenticate(fake_dns, got, without_dkim(got.content))
    assert (unsigned.spf, unsigned.dkim, unsigned.dmarc) == ("pass", "none", "fail")


async def test_a_verified_domain_sends_with_its_own_return_path(
    services: Services,
    world: World,
    fake_dns: FakeDns,
    sink: SenderDomainCheckingSink,
    outbound: OutboundWorker,
    server_name_published: None,
) -> None:
    _, records = await services.domains.records(world.domain)
    publish(fake_dns, records)
    verification = await services.domains.verify(world.domain)
    assert verification.required_ok
    assert (verification.return_path.domain, verification.return_path.custom) == (
        "mail.acme.test",
        True,
    )

    got = await send_one(services, world, outbound, sink, "bob@remote.test")
    assert re.fullmatch(r"bounce\+[a-z0-9]{24}@mail\.acme\.test", got.mail_from)
    assert sink.refused == []

    auth = await authenticate(fake_dns, got, got.content)
    assert (auth.spf, auth.spf_identity, auth.dmarc) == ("pass", got.mail_from, "pass")
    # mail.acme.test is aligned with acme.test (relaxed): SPF alone is enough for DMARC.
    unsigned = await authenticate(fake_dns, got, without_dkim(got.content))
    assert (unsigned.spf, unsigned.dkim, unsigned.dmarc) == ("pass", "none", "pass")


@pytest.mark.parametrize("verified", [False, True], ids=["fallback", "mail-from-domain"])
async def test_a_dsn_to_the_return_path_bounces_and_suppresses(
    services: Services,
    world: World,
    remote_dns: FakeDns,
    sink: SenderDomainCheckingSink,
    listeners: Listeners,
    server_name_published: None,
    verified: bool,
) -> None:
    """The remote side accepted the message, then bounced it to its return path."""
    await publish_dkim(services, remote_dns, world.domain)
    if verified:
        _, records = await services.domains.records(world.domain)
        publish(remote_dns, records)
        assert (await services.domains.verify(world.domain)).return_path.custom
    # The listeners' own worker delivers, as in `mailmark serve`, and their MX takes the report.
    got = await send_one(services, world, listeners.outbound, sink, "gone@remote.test")
    assert got.mail_from.endswith("@mail.acme.test" if verified else f"@{HOSTNAME}")
    entries = await services.queue_admin.list()
    assert [(e.recipient, e.status) for e in entries] == [("gone@remote.test", "delivered")]
    message_id = re.search(rb"(?im)^Message-ID: <([^>]+)>", got.content)
    assert message_id is not None

    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=listeners.mx_port, start_tls=False, timeout=15
    )
    await client.connect()
    try:
        errors, response = await client.sendmail(
            "",
            [got.mail_from],
            postfix_bounce(got.mail_from, "gone@remote.test", message_id.group(1).decode()),
        )
    finally:
        await client.quit()
    assert errors == {} and response.startswith("2.0.0 Ok: report received as ")
    entries = await services.queue_admin.list()
    assert [(e.recipient, e.status) for e in entries] == [("gone@remote.test", "bounced")]
    async with services.engine.connect() as conn:
        listed = (await conn.execute(sa.select(suppressions.c.address))).scalars().all()
    assert listed == ["gone@remote.test"]
    with pytest.raises(Suppressed):
        await services.sending.check_recipient(world.sales, "gone@remote.test")

"""A domain's life through DNS: records → verify → mailboxes allowed; DKIM rotation; signing keys."""

from __future__ import annotations

import dkim
import pytest

from mailmark.bootstrap import Services
from mailmark.core.errors import Conflict, Forbidden
from mailmark.core.model import DnsRecord
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.smtp_in.authentication import MessageAuthenticator
from mailmark.storage.tables import dkim_keys, domains
from tests.fakedns import FakeDns

DOMAIN = "verify.test"


def publish(fake_dns: FakeDns, records: list[DnsRecord], *, only_required: bool = True) -> None:
    for record in records:
        if only_required and not record.required:
            continue
        if record.type == "MX":
            fake_dns.add(record.name, "MX", f"{record.priority} {record.value}.")
        elif record.type == "TXT":
            fake_dns.add(record.name, "TXT", record.value)


@pytest.fixture
async def pending_domain(services: Services) -> str:
    await services.accounts.create(
        "verifier", owner_email="o@verify.test", password="owner-pass-1", plan="pro"
    )
    await services.domains.add(DOMAIN, account_name="verifier")
    return DOMAIN


async def test_a_domain_becomes_verified_when_its_required_records_are_published(
    services: Services, fake_dns: FakeDns, pending_domain: str
) -> None:
    with pytest.raises(Forbidden, match="not verified yet"):
        await services.mailboxes.create(f"hello@{pending_domain}")

    nothing = await services.domains.verify(pending_domain)
    assert not nothing.required_ok
    assert {c.status for c in nothing.checks} == {"missing"}
    assert nothing.domain.verified_at is None

    _, records = await services.domains.records(pending_domain)
    publish(fake_dns, records)
    verified = await services.domains.verify(pending_domain)
    assert verified.required_ok
    assert verified.domain.verified_at is not None
    assert all(c.status == "ok" for c in verified.checks if c.record.required)
    assert any(c.status == "missing" for c in verified.checks if not c.record.required)

    mailbox = await services.mailboxes.create(f"hello@{pending_domain}")
    assert mailbox.address == f"hello@{pending_domain}"


async def test_servfail_is_an_error_not_missing_and_does_not_verify(
    services: Services, fake_dns: FakeDns, pending_domain: str
) -> None:
    _, records = await services.domains.records(pending_domain)
    publish(fake_dns, records)
    fake_dns.servfail(f"_dmarc.{pending_domain}")
    result = await services.domains.verify(pending_domain)
    dmarc = next(c for c in result.checks if c.record.name == f"_dmarc.{pending_domain}")
    assert dmarc.status == "error"
    assert not result.required_ok
    assert result.domain.verified_at is None


async def test_dkim_rotation_switches_signing_only_once_the_new_record_verifies(
    services: Services, fake_dns: FakeDns, pending_domain: str
) -> None:
    _, records = await services.domains.records(pending_domain)
    publish(fake_dns, records)
    await services.domains.verify(pending_domain)

    new_keys = await services.domains.rotate_dkim(pending_domain)
    assert {k.algorithm for k in new_keys} == {"rsa-sha256", "ed25519-sha256"}
    assert all(k.state == "pending" for k in new_keys)
    with pytest.raises(Conflict, match="already waiting"):
        await services.domains.rotate_dkim(pending_domain)

    _, both = await services.domains.records(pending_domain)
    selectors = {r.name.split(".")[0] for r in both if "._domainkey." in r.name}
    assert {k.selector for k in new_keys} < selectors and len(selectors) == 4

    not_yet = await services.domains.verify(pending_domain)
    assert not_yet.promoted_keys == ()
    assert await _states(services) == {"active": 2, "pending": 2}

    publish(fake_dns, both, only_required=False)
    done = await services.domains.verify(pending_domain)
    assert {k.selector for k in done.promoted_keys} == {k.selector for k in new_keys}
    assert await _states(services) == {"active": 2, "retired": 2}
    _, after = await services.domains.records(pending_domain)
    assert {r.name.split(".")[0] for r in after if "._domainkey." in r.name} == {
        k.selector for k in new_keys
    }


async def _states(services: Services) -> dict[str, int]:
    import sqlalchemy as sa

    query = (
        sa.select(dkim_keys.c.state, sa.func.count())
        .select_from(dkim_keys.join(domains))
        .where(domains.c.name == DOMAIN)
        .group_by(dkim_keys.c.state)
    )
    async with services.engine.connect() as conn:
        return dict((await conn.execute(query)).tuples().all())


async def test_mail_signed_with_the_domains_keys_verifies_through_its_published_records(
    services: Services, fake_dns: FakeDns, pending_domain: str
) -> None:
    _, records = await services.domains.records(pending_domain)
    publish(fake_dns, records, only_required=False)
    import sqlalchemy as sa

    async with services.engine.connect() as conn:
        keys = (await conn.execute(sa.select(dkim_keys).order_by(dkim_keys.c.id))).all()
    message = (
        f"From: hello@{pending_domain}\r\nTo: someone@example.org\r\nSubject: signed\r\n"
        f"Message-ID: <s1@{pending_domain}>\r\n\r\nSigned body.\r\n"
    ).encode()
    for key in keys:
        signed = dkim.sign(
            message,
            key.selector.encode(),
            pending_domain.encode(),
            key.private_key_pem.encode(),
            signature_algorithm=key.algorithm.encode(),
        )
        authenticator = MessageAuthenticator(
            DnsResolver([fake_dns.address], cache=False), "mx.test"
        )
        results = await authenticator.authenticate(
            raw=signed + message, client_ip="192.0.2.99", helo="out.example", mail_from=""
        )
        assert results.dkim == "pass", key.algorithm
        assert results.dkim_domains == (pending_domain,)

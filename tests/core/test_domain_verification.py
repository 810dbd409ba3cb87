"""A domain's life through DNS: records → verify → mailboxes allowed; DKIM rotation; signing keys."""

from __future__ import annotations

from datetime import timedelta

import dkim
import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Services
from mailmark.core.errors import Conflict, Forbidden
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.smtp_in.authentication import MessageAuthenticator
from mailmark.storage.tables import dkim_keys, domains, outbound_messages
from tests.fakedns import FakeDns
from tests.support.dns_records import publish
from tests.support.world import HOSTNAME

DOMAIN = "verify.test"


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


async def envelope_from(services: Services, address: str) -> str:
    """The return path of a message queued now from `address` (scheduled away from any worker)."""
    mailbox = await services.mailboxes.get(address)
    submission = await services.sending.submit(
        mailbox=mailbox,
        to=["bob@remote.test"],
        subject="Hello",
        text="Hello",
        scheduled_at=services.clock.now() + timedelta(days=1),
    )
    query = sa.select(outbound_messages.c.envelope_from).where(
        outbound_messages.c.id == submission.outbound_id
    )
    async with services.engine.connect() as conn:
        return str((await conn.execute(query)).scalar_one())


async def test_the_return_path_follows_the_mail_from_records(
    services: Services, fake_dns: FakeDns, pending_domain: str
) -> None:
    custom = f"mail.{pending_domain}"
    _, records = await services.domains.records(pending_domain)
    publish(fake_dns, [r for r in records if r.name != custom])
    without = await services.domains.verify(pending_domain)
    # The return path's records are required: the domain is not verified without them.
    assert not without.required_ok and without.domain.verified_at is None
    assert {(c.record.type, c.status) for c in without.checks if c.record.name == custom} == {
        ("MX", "missing"),
        ("TXT", "missing"),
    }
    assert (without.return_path.domain, without.return_path.custom) == (HOSTNAME, False)
    assert "(no MX record; no SPF record)" in without.return_path.reason

    publish(fake_dns, [r for r in records if r.name == custom])
    verified = await services.domains.verify(pending_domain)
    assert verified.required_ok
    assert (verified.return_path.domain, verified.return_path.custom) == (custom, True)
    assert verified.domain.return_path_published
    await services.mailboxes.create(f"hello@{pending_domain}")
    assert (await envelope_from(services, f"hello@{pending_domain}")).endswith(f"@{custom}")

    # The MX moves elsewhere: bounces would no longer come back here, so the fallback returns.
    fake_dns.remove(custom, "MX")
    fake_dns.add(custom, "MX", "10 feedback.elsewhere.test.")
    moved = await services.domains.verify(pending_domain)
    assert (moved.return_path.domain, moved.return_path.custom) == (HOSTNAME, False)
    assert "the MX record is wrong: no MX points to mx.mailmark.test" in moved.return_path.reason
    assert moved.domain.verified_at is not None  # verification, once earned, is kept
    assert (await envelope_from(services, f"hello@{pending_domain}")).endswith(f"@{HOSTNAME}")


async def test_a_failed_lookup_keeps_the_return_path_of_the_last_verification(
    services: Services, fake_dns: FakeDns, pending_domain: str
) -> None:
    _, records = await services.domains.records(pending_domain)
    publish(fake_dns, records)
    assert (await services.domains.verify(pending_domain)).return_path.custom
    fake_dns.servfail(f"mail.{pending_domain}")
    unknown = await services.domains.verify(pending_domain)
    assert not unknown.required_ok
    assert (unknown.return_path.domain, unknown.return_path.custom) == (
        f"mail.{pending_domain}",
        True,
    )
    assert "the MX record lookup failed" in unknown.return_path.reason
    await services.mailboxes.create(f"hello@{pending_domain}")
    assert (await envelope_from(services, f"hello@{pending_domain}")).endswith(
        f"@mail.{pending_domain}"
    )


async def test_a_trusted_domain_uses_the_fallback_until_verified(
    services: Services, fake_dns: FakeDns
) -> None:
    await services.accounts.create(
        "trusting", owner_email="o@trust.test", password="owner-pass-1", plan="pro"
    )
    domain = await services.domains.add("trust.test", account_name="trusting", trust=True)
    assert domain.verified_at is not None and not domain.return_path_published
    await services.mailboxes.create("hello@trust.test")
    assert (await envelope_from(services, "hello@trust.test")).endswith(f"@{HOSTNAME}")
    fake_dns.servfail("mail.trust.test")
    unknown = await services.domains.verify("trust.test")
    assert (unknown.return_path.domain, unknown.return_path.custom) == (HOSTNAME, False)
    assert "no verification has found its records yet" in unknown.return_path.reason

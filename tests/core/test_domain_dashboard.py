"""Domains as the dashboard manages them: per account, with each record's last check, the fix
for what is wrong, the host as DNS panels want it, removal with what it deletes, and the
background re-check that turns a domain verified once its records are published."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from mailmark.bootstrap import Services
from mailmark.core.access import Role, Viewer
from mailmark.core.domain_rechecks import DomainRechecker
from mailmark.core.domains import DomainDetail, relative_host
from mailmark.core.errors import Forbidden, InvalidInput, NotFound, QuotaExceeded
from mailmark.core.ports import Clock
from tests.fakedns import FakeDns
from tests.support.clock import SettableClock
from tests.support.dns_records import publish
from tests.support.viewers import add_user, viewer_of
from tests.support.world import World

PENDING = "pending.test"


@pytest.fixture
def clock() -> Clock:
    return SettableClock()


@pytest.fixture
async def owner(world: World) -> Viewer:
    return await viewer_of(world.services, "owner@acme.test")


@pytest.fixture
async def stranger(world: World) -> Viewer:
    """The owner of another account."""
    await world.services.accounts.create(
        "other", owner_email="owner@other.test", password="owner-pass-1", plan="unlimited"
    )
    return await viewer_of(world.services, "owner@other.test")


def by_name(detail: DomainDetail) -> dict[tuple[str, str], str]:
    return {(r.record.type, r.record.name): r.status for r in detail.records}


async def test_relative_hosts_are_what_registrars_ask_for() -> None:
    assert relative_host("acme.test", "acme.test") == "@"
    assert relative_host("mail.acme.test", "acme.test") == "mail"
    assert relative_host("mm1r._domainkey.acme.test", "acme.test") == "mm1r._domainkey"
    assert relative_host("4.3.2.1.in-addr.arpa", "acme.test") == "4.3.2.1.in-addr.arpa"
    # A name that merely ends in the same letters is not inside the zone.
    assert relative_host("notacme.test", "acme.test") == "notacme.test"


async def test_checks_are_stored_with_their_fix_and_time(
    services: Services, owner: Viewer, fake_dns: FakeDns, clock: SettableClock
) -> None:
    added = await services.domains.add_for(owner, PENDING)
    assert {r.status for r in added.records} == {"unchecked"}
    assert added.domain.last_checked_at is None

    _, records = await services.domains.records(PENDING)
    publish(fake_dns, [r for r in records if r.type == "MX"])
    fake_dns.add(PENDING, "TXT", "v=spf1 include:elsewhere.example -all")
    fake_dns.servfail(f"_dmarc.{PENDING}")
    detail = await services.domains.verify_for(owner, PENDING)

    assert detail.domain.last_checked_at == clock.now()
    rows = {(r.record.type, r.relative_host): r for r in detail.records}
    mx = rows[("MX", "@")]
    assert (mx.status, mx.fix, mx.checked_at) == ("ok", None, clock.now())
    assert rows[("MX", "mail")].status == "ok"
    spf = rows[("TXT", "@")]
    assert spf.status == "mismatch"
    assert spf.found == ("v=spf1 include:elsewhere.example -all",)
    assert spf.fix is not None and spf.fix.startswith("Change the TXT record at the domain")
    assert spf.record.value in spf.fix
    dmarc = rows[("TXT", "_dmarc")]
    assert dmarc.status == "error"
    assert dmarc.fix is not None and "lookup of _dmarc.pending.test failed" in dmarc.fix
    dkim = next(r for r in detail.records if "._domainkey." in r.record.name and r.record.required)
    assert dkim.status == "missing"
    assert dkim.fix == (
        f"Add a TXT record at the host {dkim.relative_host} with the value {dkim.record.value}."
    )
    # Read back later, the stored checks are what the page shows.
    again = await services.domains.detail(owner, PENDING)
    assert by_name(again) == by_name(detail)
    assert not again.domain.verified_at


async def test_the_background_check_verifies_a_domain_once_its_records_are_published(
    services: Services, owner: Viewer, fake_dns: FakeDns, clock: SettableClock
) -> None:
    await services.domains.add_for(owner, PENDING)
    rechecks = DomainRechecker(services.domains, interval=0.05)
    # Not due yet: nothing is looked up.
    assert await rechecks.run_once() == 0

    clock.advance(timedelta(minutes=1))
    assert await rechecks.run_once() == 1
    first = await services.domains.detail(owner, PENDING)
    assert first.domain.failed_checks == 1
    assert {r.status for r in first.records if r.record.required} == {"missing"}
    # Backoff: the next check is planned further out each time, not on every pass.
    assert first.domain.next_check_at == clock.now() + timedelta(minutes=1)
    assert await rechecks.run_once() == 0
    clock.advance(timedelta(minutes=1))
    assert await rechecks.run_once() == 1
    second = await services.domains.detail(owner, PENDING)
    assert second.domain.next_check_at == clock.now() + timedelta(minutes=2)
    # Checks someone asks for (the open domain page) leave the background schedule alone.
    for _ in range(3):
        await services.domains.verify_for(owner, PENDING)
    asked = await services.domains.detail(owner, PENDING)
    assert (asked.domain.failed_checks, asked.domain.next_check_at) == (
        2,
        second.domain.next_check_at,
    )

    _, records = await services.domains.records(PENDING)
    publish(fake_dns, records)
    clock.advance(timedelta(minutes=2))
    rechecks.start()
    try:
        for _ in range(400):
            if (await services.domains.get(PENDING)).verified_at is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        await rechecks.stop()
    done = await services.domains.detail(owner, PENDING)
    assert all(r.status == "ok" for r in done.records if r.record.required)
    assert done.domain.next_check_at is None  # verified: no more background checks
    assert await rechecks.run_once() == 0


async def test_each_pass_checks_a_bounded_number_of_domains(
    services: Services, clock: SettableClock
) -> None:
    await services.accounts.create(
        "many", owner_email="o@many.test", password="owner-pass-1", plan="business"
    )
    for n in range(3):
        await services.domains.add(f"d{n}.many.test", account_name="many")
    clock.advance(timedelta(minutes=1))
    rechecks = DomainRechecker(services.domains, interval=1, batch=2)
    assert await rechecks.run_once() == 2
    assert await rechecks.run_once() == 1
    assert await rechecks.run_once() == 0


async def test_adding_a_domain_over_the_plan_gives_the_product_text(services: Services) -> None:
    await services.accounts.create(
        "small", owner_email="o@small.test", password="owner-pass-1", plan="starter"
    )
    owner = await viewer_of(services, "o@small.test")
    await services.domains.add_for(owner, "one.test")
    with pytest.raises(QuotaExceeded) as refused:
        await services.domains.add_for(owner, "two.test")
    assert refused.value.message == (
        "Domain limit reached. Your plan allows 1 domain(s). Please upgrade to add more."
    )
    assert [s.domain.name for s in await services.domains.list_for(owner)] == ["one.test"]


async def test_removal_says_what_it_deletes_and_needs_the_name_typed(
    world: World, owner: Viewer
) -> None:
    services = world.services
    await services.api_keys.create(world.domain, "k")
    detail = await services.domains.detail(owner, world.domain)
    assert (detail.contains.mailboxes, detail.contains.api_keys) == (2, 1)

    with pytest.raises(InvalidInput) as refused:
        await services.domains.remove(owner, world.domain, confirm="acme")
    assert refused.value.field == "confirm"
    removed = await services.domains.remove(owner, world.domain, confirm="ACME.test")
    assert (removed.mailboxes, removed.api_keys, removed.webhooks) == (2, 1, 0)
    assert await services.domains.list_for(owner) == []
    with pytest.raises(NotFound):
        await services.mailboxes.get(f"sales@{world.domain}")


async def test_another_accounts_domain_is_not_found_and_members_may_not_manage(
    world: World, owner: Viewer, stranger: Viewer
) -> None:
    services = world.services
    assert [s.domain.name for s in await services.domains.list_for(owner)] == [world.domain]
    assert [s.mailbox_count for s in await services.domains.list_for(owner)] == [2]
    assert await services.domains.list_for(stranger) == []
    for call in (
        services.domains.detail(stranger, world.domain),
        services.domains.verify_for(stranger, world.domain),
        services.domains.rotate_dkim_for(stranger, world.domain),
        services.domains.remove(stranger, world.domain, confirm=world.domain),
    ):
        with pytest.raises(NotFound):
            await call

    member = await add_user(services, "acme", "member@acme.test", Role.MEMBER)
    with pytest.raises(Forbidden, match="Only an owner or an admin can"):
        await services.domains.list_for(member)
    with pytest.raises(Forbidden):
        await services.domains.remove(member, world.domain, confirm=world.domain)
    assert (await services.domains.get(world.domain)).id is not None

"""MX resolution over the loopback DNS: preference order, null MX, implicit MX, DNS failures."""

from __future__ import annotations

import random

import pytest

from mailmark.dns_tools.resolver import DnsResolver
from mailmark.smtp_out.mx import DeliveryFailure, MxHost, MxResolver
from tests.fakedns import FakeDns


def routes(fake_dns: FakeDns, seed: int = 1) -> MxResolver:
    return MxResolver(DnsResolver([fake_dns.address], timeout=2.0), random.Random(seed))


async def test_hosts_in_preference_order_with_addresses(fake_dns: FakeDns) -> None:
    fake_dns.add("remote.test", "MX", "20 backup.remote.test.", "10 mx1.remote.test.")
    fake_dns.add("mx1.remote.test", "A", "127.0.0.2")
    fake_dns.add("backup.remote.test", "A", "127.0.0.3")
    fake_dns.add("backup.remote.test", "AAAA", "::1")
    hosts = await routes(fake_dns).hosts("remote.test")
    assert hosts == [
        MxHost("mx1.remote.test", ("127.0.0.2",), 10),
        MxHost("backup.remote.test", ("127.0.0.3", "::1"), 20),
    ]


async def test_equal_preferences_are_shuffled(fake_dns: FakeDns) -> None:
    names = [f"mx{i}.remote.test" for i in range(6)]
    fake_dns.add("remote.test", "MX", *(f"10 {name}." for name in names))
    for name in names:
        fake_dns.add(name, "A", "127.0.0.2")
    orders = {
        tuple(host.name for host in await routes(fake_dns, seed).hosts("remote.test"))
        for seed in range(8)
    }
    assert len(orders) > 1
    assert all(sorted(order) == sorted(names) for order in orders)


async def test_null_mx_fails_permanently_at_once(fake_dns: FakeDns) -> None:
    fake_dns.add("nomail.test", "MX", "0 .")
    fake_dns.add("nomail.test", "A", "127.0.0.2")
    with pytest.raises(DeliveryFailure) as failure:
        await routes(fake_dns).hosts("nomail.test")
    assert (failure.value.code, failure.value.enhanced) == (556, "5.1.10")
    assert failure.value.permanent and "null MX" in failure.value.text


async def test_no_mx_falls_back_to_the_domains_address(fake_dns: FakeDns) -> None:
    fake_dns.add("plain.test", "A", "127.0.0.4")
    assert await routes(fake_dns).hosts("plain.test") == [
        MxHost("plain.test", ("127.0.0.4",), implicit=True)
    ]


async def test_a_domain_that_does_not_exist_fails_permanently(fake_dns: FakeDns) -> None:
    with pytest.raises(DeliveryFailure) as failure:
        await routes(fake_dns).hosts("nowhere.test")
    assert failure.value.code == 550 and failure.value.enhanced == "5.1.2"


async def test_dns_failure_defers(fake_dns: FakeDns) -> None:
    fake_dns.servfail("broken.test")
    with pytest.raises(DeliveryFailure) as failure:
        await routes(fake_dns).hosts("broken.test")
    assert failure.value.code == 451 and not failure.value.permanent


async def test_mx_hosts_without_addresses_defer(fake_dns: FakeDns) -> None:
    fake_dns.add("dangling.test", "MX", "10 gone.dangling.test.")
    with pytest.raises(DeliveryFailure) as failure:
        await routes(fake_dns).hosts("dangling.test")
    assert failure.value.code == 451 and "gone.dangling.test has no address" in failure.value.text

"""MTA-STS (RFC 8461): discovery over the loopback DNS, policy fetch over real HTTPS, caching."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from mailmark.dns_tools.resolver import DnsResolver
from mailmark.smtp_out.mta_sts import MtaStsPolicies, parse_policy, parse_sts_record
from tests.fakedns import FakeDns
from tests.smtp_out.remote import PolicyServer, TestCa
from tests.support.clock import SettableClock

ENFORCE = "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmx: *.backup.sts.test\r\nmax_age: 86400\r\n"


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "ca")


@pytest.fixture
async def policy_server(ca: TestCa) -> AsyncIterator[PolicyServer]:
    server = PolicyServer()
    await server.start(ca.server_context("mta-sts.sts.test", "mta-sts.other.test"))
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


def policies(
    fake_dns: FakeDns, ca: TestCa, server: PolicyServer, clock: SettableClock
) -> MtaStsPolicies:
    return MtaStsPolicies(
        DnsResolver([fake_dns.address], timeout=2.0, cache=False),
        clock,
        tls=ca.client_context(),
        policy_origin=server.origin,
    )


async def test_enforce_policy_is_fetched_and_cached_by_id(
    fake_dns: FakeDns, ca: TestCa, policy_server: PolicyServer, clock: SettableClock
) -> None:
    fake_dns.add("_mta-sts.sts.test", "TXT", "v=STSv1; id=20240101T000000;")
    policy_server.policies["mta-sts.sts.test"] = ENFORCE
    store = policies(fake_dns, ca, policy_server, clock)
    policy = await store.policy("sts.test")
    assert policy is not None and policy.enforced and policy.id == "20240101T000000"
    assert policy.mx_patterns == ("mx.sts.test", "*.backup.sts.test")
    assert policy.max_age == 86400
    assert policy.allows("MX.sts.test.") and policy.allows("a.backup.sts.test")
    assert not policy.allows("a.b.backup.sts.test") and not policy.allows("evil.test")
    assert await store.policy("sts.test") is policy
    assert policy_server.requests == ["mta-sts.sts.test"]  # the same id: no second fetch

    policy_server.policies["mta-sts.sts.test"] = ENFORCE.replace("enforce", "testing")
    fake_dns.add("_mta-sts.sts.test", "TXT", "v=STSv1; id=2;")  # two records now: ignored
    assert await store.policy("sts.test") is policy  # RFC 8461 §5.1: the cached one stays


async def test_a_new_id_refetches_and_max_age_expires(
    fake_dns: FakeDns, ca: TestCa, policy_server: PolicyServer, clock: SettableClock
) -> None:
    policy_server.policies["mta-sts.other.test"] = ENFORCE.replace("enforce", "testing")
    store = policies(fake_dns, ca, policy_server, clock)
    assert await store.policy("other.test") is None  # no TXT record: no policy, no fetch
    assert policy_server.requests == []
    fake_dns.add("_mta-sts.other.test", "TXT", "v=STSv1; id=one")
    first = await store.policy("other.test")
    assert first is not None and first.mode == "testing" and not first.enforced
    clock.advance(timedelta(seconds=86401))
    again = await store.policy("other.test")
    assert again is not None and again is not first and again.fetched_at == clock.now()
    assert len(policy_server.requests) == 2


async def test_missing_or_untrusted_policies_are_no_policy(
    fake_dns: FakeDns, ca: TestCa, tmp_path: Path, clock: SettableClock
) -> None:
    fake_dns.add("_mta-sts.sts.test", "TXT", "v=STSv1; id=abc")
    # A certificate from another CA: the fetch fails, so the domain has no policy in force.
    stranger = PolicyServer({"mta-sts.sts.test": ENFORCE})
    await stranger.start(TestCa(tmp_path / "other-ca").server_context("mta-sts.sts.test"))
    try:
        assert await policies(fake_dns, ca, stranger, clock).policy("sts.test") is None
        assert stranger.requests == []  # the handshake failed before any request
    finally:
        await stranger.close()
    # Our CA, but a certificate for another name.
    wrong_name = PolicyServer({"mta-sts.sts.test": ENFORCE})
    await wrong_name.start(ca.server_context("www.sts.test"))
    try:
        assert await policies(fake_dns, ca, wrong_name, clock).policy("sts.test") is None
    finally:
        await wrong_name.close()
    # The right server, but 404.
    empty = PolicyServer()
    await empty.start(ca.server_context("mta-sts.sts.test"))
    try:
        store = policies(fake_dns, ca, empty, clock)
        assert await store.policy("sts.test") is None
        assert await store.policy("sts.test") is None
        assert empty.requests == ["mta-sts.sts.test"]  # a failed fetch is not repeated at once
    finally:
        await empty.close()


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        (["v=STSv1; id=20160831085700Z;"], "20160831085700Z"),
        (["v=STSv1;id=abc"], "abc"),
        (["v=spf1 -all", "v=STSv1; id=x1"], "x1"),
        (["v=STSv1; id=a", "v=STSv1; id=b"], None),
        (["v=STSv1; id=has-dash"], None),
        (["v=STSv1;"], None),
        (["v=STSv2; id=a"], None),
        ([], None),
    ],
)
def test_sts_record(records: list[str], expected: str | None) -> None:
    assert parse_sts_record(records) == expected


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        (ENFORCE, True),
        ("version: STSv1\nmode: none\nmax_age: 0\n", True),
        ("version: STSv1\nmode: testing\nmax_age: 10\n", False),  # no mx
        ("version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 10\n", False),
        ("version: STSv1\nmode: strict\nmx: a.test\nmax_age: 10\n", False),
        ("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n", False),
        (
            "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: \u00b9\n",
            False,
        ),  # a digit, not ASCII
        ("version: STSv1\nmode: enforce\nmx: a b.test\nmax_age: 10\n", False),
        ("<html>not a policy</html>", False),
    ],
)
def test_policy_file(text: str, valid: bool) -> None:
    assert (parse_policy(text, "id", SettableClock().now()) is not None) is valid


def test_max_age_is_capped_at_a_year() -> None:
    policy = parse_policy(ENFORCE.replace("86400", "999999999"), "id", SettableClock().now())
    assert policy is not None and policy.max_age == 31_557_600

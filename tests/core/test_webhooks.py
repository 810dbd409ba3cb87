"""The pure parts of webhooks: address refusals, URL parsing, signatures, the retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailmark.core.errors import InvalidInput, TargetRefused
from mailmark.core.model import LeasedWebhookDelivery
from mailmark.core.webhooks import (
    MAX_ATTEMPTS,
    RETRY_SCHEDULE,
    TargetPolicy,
    event_body,
    next_attempt,
    outcome,
    parse_url,
    refusal,
    sign,
    verify_signature,
)

NOW = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("fd12:3456::1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared or special-purpose"),
        ("100.127.255.254", "shared or special-purpose"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "private"),  # documentation (TEST-NET-1)
        ("198.18.0.1", "private"),  # benchmarking
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.1.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2001:db8::1", "private"),  # documentation
    ],
)
def test_internal_addresses_are_refused(address: str, why: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "target"),
    [
        ("https://hooks.example.com/in", "https", "hooks.example.com", 443, "/in"),
        ("https://HOOKS.Example.com.", "https", "hooks.example.com", 443, "/"),
        ("https://hooks.example.com:8443/a?b=c", "https", "hooks.example.com", 8443, "/a?b=c"),
        ("http://127.0.0.1:8080/x", "http", "127.0.0.1", 8080, "/x"),
        ("https://[2606:4700::1]/x", "https", "2606:4700::1", 443, "/x"),
        ("https://bücher.example/x", "https", "xn--bcher-kva.example", 443, "/x"),
    ],
)
def test_urls_are_parsed(url: str, scheme: str, host: str, port: int, target: str) -> None:
    parsed = parse_url(url)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.target) == (scheme, host, port, target)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "hooks.example.com/in",
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "https://user@hooks.example.com/",
        "https://u:p@hooks.example.com/",
        "https://hooks.example.com/#frag",
        "https:///path",
        "https://hooks.example.com:99999/",
        "https://hooks.example.com/a b",
        "https://hooks.example.com/\r\nX-Injected: 1",
        "https://" + "a" * 2048 + ".com/",
    ],
)
def test_malformed_urls_are_invalid_input_naming_the_url(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_url(url)
    assert refused.value.field == "url"


@given(st.text(max_size=300))
def test_any_text_parses_or_is_invalid_input(text: str) -> None:
    try:
        parse_url(text)
    except InvalidInput as exc:
        assert exc.field == "url"


class StaticResolver:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def addresses(self, name: str) -> list[str]:
        self.asked.append(name)
        return self.answers.get(name, [])


async def test_every_resolved_address_must_be_public() -> None:
    resolver = StaticResolver(
        {"public.test": ["93.184.215.14"], "mixed.test": ["93.184.215.14", "10.0.0.1"]}
    )
    policy = TargetPolicy(resolver)
    target = await policy.check("https://public.test:8443/in?x=1")
    assert (target.address, target.host_header, target.target) == (
        "93.184.215.14",
        "public.test:8443",
        "/in?x=1",
    )
    with pytest.raises(TargetRefused, match=re.escape("10.0.0.1")):
        await policy.check("https://mixed.test/")
    with pytest.raises(TargetRefused):
        await policy.check("https://127.0.0.1/")
    assert resolver.asked == ["public.test", "mixed.test"]  # IP literals are not looked up


async def test_the_allowlist_admits_its_networks_and_only_they_may_use_http() -> None:
    policy = TargetPolicy(StaticResolver({}), [ipaddress.ip_network("127.0.0.1/32")])
    assert (await policy.check("http://127.0.0.1:9000/")).address == "127.0.0.1"
    with pytest.raises(TargetRefused):
        await policy.check("http://127.0.0.2:9000/")
    with pytest.raises(InvalidInput, match="https"):
        await TargetPolicy(StaticResolver({"p.test": ["93.184.215.14"]})).check("http://p.test/")


async def test_a_resolver_failure_is_invalid_input() -> None:
    class Failing:
        def addresses(self, name: str) -> list[str]:
            raise LookupError("lookup of x.test A timed out after 5s")

    with pytest.raises(InvalidInput, match="could not be resolved") as refused:
        await TargetPolicy(Failing()).check("https://x.test/")
    assert refused.value.field == "url"


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"evt_1"}'
    header = sign("whsec_test", 1_900_000_000, body)
    expected = hmac.new(b"whsec_test", b"1900000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1900000000,v1={expected}"
    assert verify_signature("whsec_test", header, body, 1_900_000_100)
    assert not verify_signature("whsec_test", header, body, 1_900_000_000 + 301)  # too old
    assert not verify_signature("whsec_other", header, body, 1_900_000_000)
    assert not verify_signature("whsec_test", header, body + b"x", 1_900_000_000)
    assert not verify_signature(
        "whsec_test", header.replace("t=1900000000", "t=1900000001"), body, 1_900_000_000
    )
    assert not verify_signature("whsec_test", "garbage", body, 1_900_000_000)


def test_the_schedule_spans_about_a_day_then_gives_up() -> None:
    assert [next_attempt(n, NOW) for n in range(1, MAX_ATTEMPTS)] == [
        NOW + delay for delay in RETRY_SCHEDULE
    ]
    assert next_attempt(MAX_ATTEMPTS, NOW) is None
    assert timedelta(hours=23) < sum(RETRY_SCHEDULE, timedelta()) < timedelta(hours=25)


def leased(attempts: int) -> LeasedWebhookDelivery:
    return LeasedWebhookDelivery(
        id=5,
        webhook_id=2,
        url="https://hooks.example.com/",
        secret="whsec_x",
        domain_name="acme.test",
        event_id=42,
        event_type="email.bounced",
        event_payload={"to": "bob@remote.test", "code": 550},
        event_created_at=NOW,
        outbound_id=9,
        attempts=attempts,
        created_at=NOW,
        lease_owner="w1",
    )


def test_outcomes() -> None:
    assert outcome(leased(1), 204, None, NOW).status == "delivered"
    retry = outcome(leased(1), 500, None, NOW)
    assert (retry.status, retry.next_attempt_at, retry.last_error) == (
        "pending",
        NOW + RETRY_SCHEDULE[0],
        "HTTP 500",
    )
    network = outcome(leased(3), None, "ConnectError: refused", NOW)
    assert (network.status, network.last_code) == ("pending", None)
    final = outcome(leased(MAX_ATTEMPTS), 500, None, NOW)
    assert (final.status, final.next_attempt_at) == ("failed", None)
    assert len(outcome(leased(1), None, "x" * 5000, NOW).last_error or "") == 500


def test_event_body_is_stable_json_with_the_event_id() -> None:
    body = event_body(leased(1))
    assert body == event_body(leased(7))
    assert json.loads(body) == {
        "id": "evt_42",
        "type": "email.bounced",
        "createdAt": "2030-01-07T09:00:00Z",
        "domain": "acme.test",
        "data": {"to": "bob@remote.test", "code": 550, "emailId": "9"},
    }

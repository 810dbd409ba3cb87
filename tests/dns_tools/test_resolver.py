"""DnsResolver against a DNS server on loopback."""

import socket
from collections.abc import Iterator

import dns.resolver
import pytest
import spf

from mailmark.dns_tools.resolver import DnsResolver, DnsTemporaryError
from tests.fakedns import FakeDns


@pytest.fixture
def resolver(fake_dns: FakeDns) -> DnsResolver:
    return DnsResolver([fake_dns.address], timeout=2)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A UDP port on loopback that receives queries and never answers them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_txt_joins_the_strings_of_each_record(fake_dns: FakeDns, resolver: DnsResolver) -> None:
    fake_dns.add("example.org", "TXT", ("v=spf1 ", "ip4:192.0.2.1 ", "-all"), "token=abc")
    assert sorted(resolver.txt("example.org")) == ["token=abc", "v=spf1 ip4:192.0.2.1 -all"]


def test_txt_longer_than_a_udp_answer_arrives_whole_over_tcp(
    fake_dns: FakeDns,
    resolver: DnsResolver,
) -> None:
    value = "v=DKIM1; k=rsa; p=" + "A" * 1000
    fake_dns.add("big.example.org", "TXT", value)
    assert resolver.txt("big.example.org") == [value]
    # Split into 255-byte strings by the server, and asked again after the truncated UDP reply.
    [(_, strings)] = resolver.spf_lookup("big.example.org", "TXT")
    assert [len(s) for s in strings] == [255, 255, 255, 253]
    assert fake_dns.queries.count(("big.example.org", "TXT")) == 2


def test_txt_decodes_utf8_and_replaces_bad_bytes(fake_dns: FakeDns, resolver: DnsResolver) -> None:
    fake_dns.add("utf8.example.org", "TXT", "caf\u00e9")
    fake_dns.add("latin1.example.org", "TXT", "caf\u00e9".encode("latin-1"))
    assert resolver.txt("utf8.example.org") == ["caf\u00e9"]
    assert resolver.txt("latin1.example.org") == ["caf\ufffd"]


@pytest.mark.parametrize("name", ["missing.example.org", "example.org", "x" * 64 + ".example.org"])
def test_txt_is_empty_without_records(
    fake_dns: FakeDns,
    resolver: DnsResolver,
    name: str,
) -> None:
    fake_dns.add("example.org", "A", "192.0.2.1")
    assert resolver.txt(name) == []


def test_answers_and_absences_are_cached(fake_dns: FakeDns, resolver: DnsResolver) -> None:
    fake_dns.add("example.org", "TXT", "hello")
    for _ in range(3):
        assert resolver.txt("example.org") == ["hello"]
        assert resolver.txt("missing.example.org") == []
        assert resolver.mx("example.org") == []
    assert sorted(fake_dns.queries) == [
        ("example.org", "MX"),
        ("example.org", "TXT"),
        ("missing.example.org", "TXT"),
    ]


def test_servfail_is_a_temporary_error(fake_dns: FakeDns, resolver: DnsResolver) -> None:
    fake_dns.servfail("broken.example.org")
    with pytest.raises(DnsTemporaryError, match=r"broken.example.org TXT.*SERVFAIL"):
        resolver.txt("broken.example.org")


def test_timeout_is_a_temporary_error(silent_server: str) -> None:
    resolver = DnsResolver([silent_server], timeout=0.3)
    with pytest.raises(DnsTemporaryError, match="timed out"):
        resolver.mx("example.org")


def test_mx_sorted_by_preference_without_trailing_dot(
    fake_dns: FakeDns,
    resolver: DnsResolver,
) -> None:
    fake_dns.add("example.org", "MX", "20 backup.example.org.", "10 mx.example.org.")
    fake_dns.add("null.example.org", "MX", "0 .")
    assert resolver.mx("example.org") == [(10, "mx.example.org"), (20, "backup.example.org")]
    assert resolver.mx("null.example.org") == [(0, "")]  # RFC 7505 null MX
    assert resolver.mx("missing.example.org") == []


def test_addresses_are_ipv4_then_ipv6(fake_dns: FakeDns, resolver: DnsResolver) -> None:
    fake_dns.add("mx.example.org", "AAAA", "2001:db8::25")
    fake_dns.add("mx.example.org", "A", "192.0.2.25", "192.0.2.26")
    addresses = resolver.addresses("mx.example.org")
    assert sorted(addresses[:2]) == ["192.0.2.25", "192.0.2.26"]  # RRset order is the server's
    assert addresses[2:] == ["2001:db8::25"]
    assert resolver.addresses("missing.example.org") == []


def test_a_failing_nameserver_falls_through_to_the_next(fake_dns: FakeDns) -> None:
    fake_dns.add("example.org", "TXT", "hello")
    with FakeDns() as broken:
        broken.servfail("example.org")
        resolver = DnsResolver([broken.address, fake_dns.address], timeout=2)
        assert resolver.txt("example.org") == ["hello"]
        assert broken.queries == [("example.org", "TXT")]


@pytest.mark.parametrize(
    "entry", ["192.0.2.53", "192.0.2.53:5353", "2001:db8::53", "[2001:db8::53]", "[::1]:5353"]
)
def test_nameserver_accepts_addresses_with_optional_port(entry: str) -> None:
    DnsResolver([entry])


@pytest.mark.parametrize(
    "entry", ["dns.example.org", "127.0.0.1:http", "127.0.0.1:70000", "[::1", "[::1]:", "[::1]x"]
)
def test_nameserver_must_be_an_address(entry: str) -> None:
    with pytest.raises(ValueError, match="nameserver"):
        DnsResolver([entry])


def test_dkim_dnsfunc_returns_the_key_record_or_none(
    fake_dns: FakeDns,
    resolver: DnsResolver,
) -> None:
    fake_dns.add("sel._domainkey.example.org", "TXT", ("v=DKIM1; k=rsa; ", "p=MIIB"))
    fake_dns.servfail("down._domainkey.example.org")
    assert resolver.dkim_dnsfunc(b"sel._domainkey.example.org.") == b"v=DKIM1; k=rsa; p=MIIB"
    assert resolver.dkim_dnsfunc(b"other._domainkey.example.org.") is None
    with pytest.raises(DnsTemporaryError):
        resolver.dkim_dnsfunc(b"down._domainkey.example.org.")


@pytest.mark.parametrize(
    ("name", "qtype"),
    [
        ("example.org", "A"),
        ("example.org", "AAAA"),
        ("example.org", "MX"),
        ("example.org", "TXT"),
        ("1.2.0.192.in-addr.arpa", "PTR"),
        ("example.org", "PTR"),
        ("missing.example.org", "A"),
    ],
)
def test_spf_lookup_matches_pyspf_dnspython_driver(
    fake_dns: FakeDns,
    resolver: DnsResolver,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    qtype: str,
) -> None:
    fake_dns.add("example.org", "A", "192.0.2.1")
    fake_dns.add("example.org", "AAAA", "2001:db8::1")
    fake_dns.add("example.org", "MX", "10 mx.example.org.")
    fake_dns.add("example.org", "TXT", ("v=spf1 ", "mx -all"))
    fake_dns.add("1.2.0.192.in-addr.arpa", "PTR", "mail.example.org.")
    # pyspf's own driver uses dnspython's process-wide default resolver: point it at FakeDns.
    reference = dns.resolver.Resolver(configure=False)
    reference.nameservers = ["127.0.0.1"]
    reference.port = int(fake_dns.address.rpartition(":")[2])
    monkeypatch.setattr(dns.resolver, "default_resolver", reference)
    with pytest.warns(DeprecationWarning):
        expected = spf.DNSLookup_dnspython(name, qtype)
    assert resolver.spf_lookup(name, qtype) == expected


def test_spf_lookup_raises_pyspf_temperror(fake_dns: FakeDns, resolver: DnsResolver) -> None:
    fake_dns.servfail("example.org")
    with pytest.raises(spf.TempError):
        resolver.spf_lookup("example.org", "TXT")

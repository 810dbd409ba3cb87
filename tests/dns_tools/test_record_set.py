"""The records a hosted domain should publish: names, values, required flags, JSON and zone file."""

from __future__ import annotations

import base64
import ipaddress
from datetime import UTC, datetime

import dns.name
import dns.rdatatype
import dns.reversename
import dns.zone
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mailmark.core.model import DkimKey, DnsRecord
from mailmark.dns_tools.record_set import (
    MTA_STS_MAX_AGE,
    MX_PRIORITY,
    MailServer,
    dkim_value,
    mta_sts_id,
    mta_sts_policy,
    record_json,
    record_set,
    reverse_name,
    spf_value,
    zone_fragment,
)

DOMAIN = "acme.test"
HOST = "mx.mailmark.test"
NOW = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def rsa_public_key() -> str:
    """The p= of a 2048-bit RSA key: base64 of its SubjectPublicKeyInfo (RFC 6376 §3.6.1)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.fixture(scope="module")
def ed25519_public_key() -> str:
    """The p= of an Ed25519 key: base64 of the raw 32-byte public key (RFC 8463 §4.2)."""
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode()


def dkim_key(selector: str, algorithm: str, public_key: str, *, state: str = "active") -> DkimKey:
    return DkimKey(
        domain_id=1,
        selector=selector,
        algorithm=algorithm,
        private_key_pem="(unused here)",
        public_key=public_key,
        state=state,
        created_at=NOW,
    )


@pytest.fixture
def keys(rsa_public_key: str, ed25519_public_key: str) -> list[DkimKey]:
    return [
        dkim_key("mm202605", "rsa-sha256", rsa_public_key),
        dkim_key("mm202605e", "ed25519-sha256", ed25519_public_key),
        dkim_key("mm202606", "rsa-sha256", rsa_public_key, state="pending"),
    ]


def by_type_and_name(records: list[DnsRecord]) -> dict[tuple[str, str], DnsRecord]:
    table = {(r.type, r.name): r for r in records}
    assert len(table) == len(records), "two records of one type at one name"
    return table


# -- record_set ----------------------------------------------------------------------------------


def test_record_set_names_types_and_required_flags(keys: list[DkimKey]) -> None:
    server = MailServer(HOST, public_ips=("192.0.2.10", "2001:db8::10"))
    records = by_type_and_name(record_set(DOMAIN, server, keys))
    expected = {
        ("MX", "acme.test"): True,
        ("TXT", "acme.test"): True,
        ("TXT", "mm202605._domainkey.acme.test"): True,  # the active RSA key
        ("TXT", "mm202605e._domainkey.acme.test"): False,  # Ed25519: RFC 8463, alongside RSA
        ("TXT", "mm202606._domainkey.acme.test"): False,  # published ahead of rotation
        ("TXT", "_dmarc.acme.test"): True,
        ("MX", "mail.acme.test"): True,  # the return path must resolve
        ("TXT", "mail.acme.test"): True,
        ("TXT", "_mta-sts.acme.test"): False,
        ("CNAME", "mta-sts.acme.test"): False,
        ("TXT", "_smtp._tls.acme.test"): False,
        ("SRV", "_imaps._tcp.acme.test"): False,
        ("SRV", "_imap._tcp.acme.test"): False,
        ("SRV", "_submissions._tcp.acme.test"): False,
        ("SRV", "_submission._tcp.acme.test"): False,
        ("PTR", "10.2.0.192.in-addr.arpa"): False,
        ("PTR", "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"): False,
    }
    assert {key: record.required for key, record in records.items()} == expected
    for record in records.values():
        assert record.purpose, record
        assert not record.name.endswith("."), record  # FQDNs without the final dot
        assert not record.value.endswith("."), record


def test_mx_records_point_to_our_host_with_a_priority() -> None:
    records = by_type_and_name(record_set(DOMAIN, MailServer(HOST), []))
    for name in ("acme.test", "mail.acme.test"):
        mx = records[("MX", name)]
        assert (mx.value, mx.priority) == (HOST, MX_PRIORITY)
    assert MX_PRIORITY == 10
    assert all(r.priority is None for r in records.values() if r.type != "MX")


def test_without_public_ips_there_is_no_ptr_and_spf_names_the_host() -> None:
    records = by_type_and_name(record_set(DOMAIN, MailServer(HOST), []))
    assert not any(rtype == "PTR" for rtype, _ in records)
    assert records[("TXT", "acme.test")].value == f"v=spf1 a:{HOST} ~all"
    # The custom MAIL FROM domain has its own SPF record (RFC 7208 §2.4: checked on that domain).
    assert records[("TXT", "mail.acme.test")].value == f"v=spf1 a:{HOST} ~all"


@pytest.mark.parametrize(
    ("public_ips", "expected"),
    [
        ((), "v=spf1 a:mx.mailmark.test ~all"),
        (("192.0.2.10",), "v=spf1 ip4:192.0.2.10 ~all"),
        (("2001:db8::10",), "v=spf1 ip6:2001:db8::10 ~all"),
        (("192.0.2.10", "2001:db8::10"), "v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 ~all"),
    ],
)
def test_spf_value(public_ips: tuple[str, ...], expected: str) -> None:
    assert spf_value(MailServer(HOST, public_ips=public_ips)) == expected


def test_dkim_values_for_rsa_and_ed25519(
    keys: list[DkimKey], rsa_public_key: str, ed25519_public_key: str
) -> None:
    assert dkim_value(keys[0]) == f"v=DKIM1; k=rsa; p={rsa_public_key}"
    # RFC 8463 §4.2: k=ed25519, p= the raw public key in base64.
    assert dkim_value(keys[1]) == f"v=DKIM1; k=ed25519; p={ed25519_public_key}"
    assert len(base64.b64decode(ed25519_public_key)) == 32
    records = by_type_and_name(record_set(DOMAIN, MailServer(HOST), keys))
    assert records[("TXT", "mm202605._domainkey.acme.test")].value == dkim_value(keys[0])
    assert records[("TXT", "mm202605e._domainkey.acme.test")].value == dkim_value(keys[1])
    # A 2048-bit key does not fit in one 255-octet TXT string: zone_fragment must split it.
    assert len(dkim_value(keys[0])) > 255


def test_dmarc_tls_rpt_and_mta_sts_txt_values() -> None:
    server = MailServer(HOST)
    records = by_type_and_name(record_set(DOMAIN, server, []))
    assert records[("TXT", "_dmarc.acme.test")].value == (
        "v=DMARC1; p=quarantine; rua=mailto:dmarc@acme.test"
    )
    assert records[("TXT", "_smtp._tls.acme.test")].value == (
        "v=TLSRPTv1; rua=mailto:tls-reports@acme.test"
    )
    assert records[("TXT", "_mta-sts.acme.test")].value == f"v=STSv1; id={mta_sts_id(server)}"
    assert records[("CNAME", "mta-sts.acme.test")].value == HOST


def test_srv_records_follow_rfc_6186_with_configured_ports() -> None:
    server = MailServer(
        HOST, submission_port=2587, submissions_port=2465, imap_port=2143, imaps_port=2993
    )
    records = by_type_and_name(record_set(DOMAIN, server, []))
    assert {name: r.value for (rtype, name), r in records.items() if rtype == "SRV"} == {
        "_imaps._tcp.acme.test": f"0 1 2993 {HOST}",
        "_imap._tcp.acme.test": f"0 1 2143 {HOST}",
        "_submissions._tcp.acme.test": f"0 1 2465 {HOST}",
        "_submission._tcp.acme.test": f"0 1 2587 {HOST}",
    }


@pytest.mark.parametrize(
    ("ip", "name"),
    [
        ("192.0.2.10", "10.2.0.192.in-addr.arpa"),
        (
            "2001:db8::10",
            "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
        ),
        (
            "2001:DB8::ABCD",
            "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
        ),
    ],
)
def test_ptr_names(ip: str, name: str) -> None:
    assert reverse_name(ip) == name
    [ptr] = [
        r for r in record_set(DOMAIN, MailServer(HOST, public_ips=(ip,)), []) if r.type == "PTR"
    ]
    assert (ptr.name, ptr.value) == (name, HOST)
    # Round trip through dnspython's own reverse-name reader.
    assert ipaddress.ip_address(dns.reversename.to_address(dns.name.from_text(name))) == (
        ipaddress.ip_address(ip)
    )


def test_mta_sts_policy_text_follows_rfc_8461() -> None:
    policy = mta_sts_policy(MailServer(HOST, mta_sts_mode="enforce"))
    # RFC 8461 §3.2: "version: STSv1" first, then key/value lines ending in CRLF.
    assert policy == (
        "version: STSv1\r\nmode: enforce\r\nmx: mx.mailmark.test\r\nmax_age: 604800\r\n"
    )
    fields = dict(line.split(": ", 1) for line in policy.split("\r\n") if line)
    assert fields["mode"] in ("enforce", "testing", "none")
    assert 0 <= int(fields["max_age"]) <= 31_557_600  # RFC 8461 §3.2 upper bound
    assert int(fields["max_age"]) == MTA_STS_MAX_AGE
    assert mta_sts_policy(MailServer(HOST)).splitlines()[1] == "mode: testing"


def test_mta_sts_id_changes_with_the_policy_and_only_then() -> None:
    base = MailServer(HOST, mta_sts_mode="testing")
    ids = {
        mta_sts_id(base),
        mta_sts_id(MailServer(HOST, mta_sts_mode="enforce")),
        mta_sts_id(MailServer("mx2.mailmark.test", mta_sts_mode="testing")),
    }
    assert len(ids) == 3
    # Settings outside the policy (ports, addresses) leave the id alone: no needless refetch.
    assert mta_sts_id(MailServer(HOST, public_ips=("192.0.2.10",), imap_port=2143)) == mta_sts_id(
        base
    )
    for value in ids:
        # RFC 8461 §3.1: sts-id = 1*32(ALPHA / DIGIT)
        assert value.isascii() and value.isalnum() and 1 <= len(value) <= 32


# -- record_json ---------------------------------------------------------------------------------


def test_record_json_has_priority_on_mx_only(keys: list[DkimKey]) -> None:
    records = record_set(DOMAIN, MailServer(HOST, public_ips=("192.0.2.10",)), keys)
    for record in records:
        data = record_json(record)
        assert (data["type"], data["name"], data["value"]) == (
            record.type,
            record.name,
            record.value,
        )
        assert data["required"] is record.required
        assert data["purpose"] == record.purpose
        if record.type == "MX":
            assert data["priority"] == MX_PRIORITY
        else:
            assert "priority" not in data, data
    assert record_json(records[0]) == {
        "type": "MX",
        "name": "acme.test",
        "value": HOST,
        "priority": 10,
        "required": True,
        "purpose": records[0].purpose,
    }


# -- zone_fragment -------------------------------------------------------------------------------


def parse_fragment(fragment: str) -> dns.zone.Zone:
    return dns.zone.from_text(fragment, origin=".", relativize=False, check_origin=False)


def test_zone_fragment_parses_back_to_the_same_records(keys: list[DkimKey]) -> None:
    records = record_set(DOMAIN, MailServer(HOST, public_ips=("192.0.2.10", "2001:db8::10")), keys)
    fragment = zone_fragment(records, ttl=1800)
    zone = parse_fragment(fragment)
    for record in records:
        rdataset = zone.find_rdataset(record.name + ".", record.type)
        assert rdataset.ttl == 1800
        texts = []
        for rdata in rdataset:
            if record.type == "TXT":
                assert all(len(s) <= 255 for s in rdata.strings), record.name
                texts.append(b"".join(rdata.strings).decode())
            else:
                texts.append(rdata.to_text())
        if record.type == "TXT":
            assert record.value in texts
        elif record.type == "MX":
            assert texts == [f"{record.priority} {record.value}."]
        else:  # CNAME, SRV, PTR: absolute host names
            assert texts == [f"{record.value}."]
    # Nothing else came out of the fragment than what went in.
    parsed = sum(len(rdataset) for _, rdataset in zone.iterate_rdatasets())
    assert parsed == len(records)
    recommended = [line for line in fragment.splitlines() if line.endswith("; recommended")]
    assert len(recommended) == sum(not r.required for r in records)


def test_zone_fragment_splits_long_txt_into_255_octet_strings(rsa_public_key: str) -> None:
    value = dkim_value(dkim_key("mm202605", "rsa-sha256", rsa_public_key))
    record = DnsRecord("TXT", "mm202605._domainkey.acme.test", value, "DKIM")
    [rdata] = parse_fragment(zone_fragment([record])).find_rdataset(
        "mm202605._domainkey.acme.test.", "TXT"
    )
    assert len(rdata.strings) == -(-len(value) // 255) > 1
    assert all(len(s) == 255 for s in rdata.strings[:-1])
    assert b"".join(rdata.strings).decode() == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        'say "hi" \\ bye',  # quotes and backslashes are escaped in presentation form
        "a" * 255,
        "b" * 256,
        ('x"' * 200),  # escaping must not push a string past 255 octets
    ],
)
def test_zone_fragment_txt_round_trip(value: str) -> None:
    record = DnsRecord("TXT", "t.acme.test", value, "test")
    [rdata] = parse_fragment(zone_fragment([record])).find_rdataset("t.acme.test.", "TXT")
    assert all(len(s) <= 255 for s in rdata.strings)
    assert b"".join(rdata.strings).decode() == value


def test_zone_fragment_line_shape() -> None:
    mx = DnsRecord("MX", "acme.test", HOST, "Inbound", priority=10)
    srv = DnsRecord("SRV", "_imaps._tcp.acme.test", f"0 1 993 {HOST}", "IMAP", required=False)
    assert zone_fragment([mx, srv], ttl=300) == (
        "acme.test.\t300\tIN\tMX\t10 mx.mailmark.test.\n"
        "_imaps._tcp.acme.test.\t300\tIN\tSRV\t0 1 993 mx.mailmark.test.  ; recommended\n"
    )
    assert dns.rdatatype.from_text("SRV") in {
        rdataset.rdtype for _, rdataset in parse_fragment(zone_fragment([srv])).iterate_rdatasets()
    }

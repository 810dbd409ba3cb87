"""DomainDns.verify against a real authoritative DNS server on loopback (tests/fakedns.py)."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mailmark.core.model import DkimKey, DnsRecord, RecordCheck
from mailmark.dns_tools.record_set import MailServer
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.dns_tools.verification import DomainDns
from tests.fakedns import FakeDns

DOMAIN = "acme.test"
HOST = "mx.mailmark.test"
PUBLIC_IP = "192.0.2.10"
PTR_NAME = "10.2.0.192.in-addr.arpa"
RSA_SELECTOR = "mm202605"
ED_SELECTOR = "mm202605e"
SERVER = MailServer(hostname=HOST, public_ips=(PUBLIC_IP,))


def _rsa_public_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _ed25519_public_key() -> str:
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
def keys() -> list[DkimKey]:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    return [
        DkimKey(
            domain_id=1,
            selector=selector,
            algorithm=algorithm,
            private_key_pem="(unused)",
            public_key=public_key,
            state="active",
            created_at=now,
        )
        for selector, algorithm, public_key in (
            (RSA_SELECTOR, "rsa-sha256", _rsa_public_key()),
            (ED_SELECTOR, "ed25519-sha256", _ed25519_public_key()),
        )
    ]


@pytest.fixture
def domain_dns(fake_dns: FakeDns) -> DomainDns:
    return DomainDns(DnsResolver([fake_dns.address], timeout=1, cache=False), SERVER)


@pytest.fixture
def records(domain_dns: DomainDns, keys: list[DkimKey]) -> list[DnsRecord]:
    return domain_dns.record_set(DOMAIN, keys)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A UDP port on loopback that receives queries and never reads or answers them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def publish(fake_dns: FakeDns, records: list[DnsRecord]) -> None:
    """Publish each record the way a careful administrator would (absolute names)."""
    for record in records:
        if record.type == "TXT":
            fake_dns.add(record.name, "TXT", record.value)
        elif record.type == "MX":
            fake_dns.add(record.name, "MX", f"{record.priority} {record.value}.")
        else:  # SRV, CNAME, PTR end in a host name
            fake_dns.add(record.name, record.type, f"{record.value}.")


def pick(records: list[DnsRecord], rtype: str, name: str) -> DnsRecord:
    [record] = [r for r in records if r.type == rtype and r.name == name]
    return record


async def verify_one(domain_dns: DomainDns, record: DnsRecord) -> RecordCheck:
    [check] = await domain_dns.verify([record])
    assert check.record == record
    return check


def statuses(checks: list[RecordCheck]) -> dict[tuple[str, str], str]:
    return {(c.record.type, c.record.name): c.status for c in checks}


# -- whole zones ---------------------------------------------------------------------------------


async def test_a_correct_zone_is_all_ok(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    publish(fake_dns, records)
    checks = await domain_dns.verify(records)
    assert [c.record for c in checks] == records  # one check per record, in order
    assert statuses(checks) == {(r.type, r.name): "ok" for r in records}
    for check in checks:
        assert check.found, check
    # The 2048-bit DKIM key arrived split into several strings and was judged on the joined text.
    dkim = pick(records, "TXT", f"{RSA_SELECTOR}._domainkey.{DOMAIN}")
    assert len(dkim.value) > 255
    assert {r.type for r in records} == {"MX", "TXT", "CNAME", "SRV", "PTR"}


async def test_nothing_published_is_all_missing(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    checks = await domain_dns.verify(records)
    assert statuses(checks) == {(r.type, r.name): "missing" for r in records}
    assert all(c.found == () for c in checks)


async def test_names_that_exist_without_the_record_type_are_missing(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    # NOERROR with an empty answer (the name has other records) is "missing" too, not an error.
    fake_dns.add(DOMAIN, "A", "198.51.100.1")
    fake_dns.add(f"mail.{DOMAIN}", "A", "198.51.100.1")
    fake_dns.add(f"_imaps._tcp.{DOMAIN}", "TXT", "unrelated")
    checks = await domain_dns.verify(
        [r for r in records if r.name in (DOMAIN, f"mail.{DOMAIN}", f"_imaps._tcp.{DOMAIN}")]
    )
    assert len(checks) == 5
    assert {c.status for c in checks} == {"missing"}


# -- DKIM ----------------------------------------------------------------------------------------


async def test_dkim_split_into_several_strings_is_ok(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    record = pick(records, "TXT", f"{RSA_SELECTOR}._domainkey.{DOMAIN}")
    value = record.value
    # Cut at odd places, including inside "p=" and inside the base64 (RFC 6376 §3.6.2.2: joined).
    strings = (value[:17], value[17:18], value[18:100], value[100:300], value[300:])
    assert len(strings[-1]) > 0 and all(len(s) <= 255 for s in strings)
    fake_dns.add(record.name, "TXT", strings)
    check = await verify_one(domain_dns, record)
    assert check.status == "ok", check
    assert check.found == (value,)


async def test_dkim_with_whitespace_in_p_and_tags_in_another_order_is_ok(
    fake_dns: FakeDns, domain_dns: DomainDns, keys: list[DkimKey], records: list[DnsRecord]
) -> None:
    rsa_key, ed_key = keys
    p = rsa_key.public_key
    # RFC 6376 §3.2 / §3.6.1: FWS is allowed around tags and inside base64 values; v= must come
    # first when present, the others in any order; unknown tags are ignored.
    spaced = " ".join(p[i : i + 64] for i in range(0, len(p), 64)).replace(" ", " \t ", 3)
    fake_dns.add(
        f"{RSA_SELECTOR}._domainkey.{DOMAIN}",
        "TXT",
        f"v=DKIM1; h=sha256; p = {spaced} ; s=email; k=rsa ;t=s",
    )
    # v= is optional (RFC 6376 §3.6.1) and k=ed25519 given before it is used.
    fake_dns.add(f"{ED_SELECTOR}._domainkey.{DOMAIN}", "TXT", f"k=ed25519;p={ed_key.public_key}")
    checks = await domain_dns.verify([r for r in records if "._domainkey." in r.name])
    assert [c.status for c in checks] == ["ok", "ok"], checks


async def test_rsa_dkim_without_k_tag_defaults_to_rsa(
    fake_dns: FakeDns, domain_dns: DomainDns, keys: list[DkimKey], records: list[DnsRecord]
) -> None:
    fake_dns.add(f"{RSA_SELECTOR}._domainkey.{DOMAIN}", "TXT", f"v=DKIM1; p={keys[0].public_key}")
    check = await verify_one(
        domain_dns, pick(records, "TXT", f"{RSA_SELECTOR}._domainkey.{DOMAIN}")
    )
    assert check.status == "ok", check


async def test_wrong_dkim_key_is_a_mismatch(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    other = _rsa_public_key()
    published = f"v=DKIM1; k=rsa; p={other}"
    fake_dns.add(f"{RSA_SELECTOR}._domainkey.{DOMAIN}", "TXT", published)
    check = await verify_one(
        domain_dns, pick(records, "TXT", f"{RSA_SELECTOR}._domainkey.{DOMAIN}")
    )
    assert check.status == "mismatch"
    assert check.found == (published,)
    assert "key" in check.detail


@pytest.mark.parametrize(
    "published",
    [
        "v=DKIM1; k=rsa; p={ed}",  # right bytes, wrong algorithm
        "v=DKIM1; k=ed25519; p=",  # revoked key (RFC 6376 §3.6.1: empty p=)
        "v=DKIM1; k=ed25519; p={ed}AAAA",
    ],
)
async def test_ed25519_dkim_mismatches(
    fake_dns: FakeDns,
    domain_dns: DomainDns,
    keys: list[DkimKey],
    records: list[DnsRecord],
    published: str,
) -> None:
    fake_dns.add(
        f"{ED_SELECTOR}._domainkey.{DOMAIN}", "TXT", published.format(ed=keys[1].public_key)
    )
    check = await verify_one(domain_dns, pick(records, "TXT", f"{ED_SELECTOR}._domainkey.{DOMAIN}"))
    assert check.status == "mismatch", check


# -- SPF -----------------------------------------------------------------------------------------


async def test_two_spf_records_are_a_mismatch_asking_to_merge(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    fake_dns.add(DOMAIN, "TXT", "v=spf1 ip4:192.0.2.10 ~all", "v=spf1 include:_spf.google.com ~all")
    check = await verify_one(domain_dns, pick(records, "TXT", DOMAIN))
    # RFC 7208 §4.5: two SPF records are a permerror for every receiver, even if one is right.
    assert check.status == "mismatch"
    assert "merge" in check.detail
    assert len(check.found) == 2


async def test_a_bare_v_spf1_record_counts_as_a_second_spf_record(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    # RFC 7208 §4.5: the version section ends with a space *or the end of the record*.
    fake_dns.add(DOMAIN, "TXT", "v=spf1 ip4:192.0.2.10 ~all", "v=spf1")
    check = await verify_one(domain_dns, pick(records, "TXT", DOMAIN))
    assert check.status == "mismatch", check
    assert "merge" in check.detail


async def test_existing_spf_without_us_is_a_mismatch_advising_to_merge(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    published = "v=spf1 include:_spf.google.com ~all"
    fake_dns.add(DOMAIN, "TXT", published, "google-site-verification=abc123")
    check = await verify_one(domain_dns, pick(records, "TXT", DOMAIN))
    assert check.status == "mismatch"
    assert check.found == (published,)  # other TXT records are not SPF and not reported
    # Never advise a second record: say what to merge into the existing one.
    assert "merge" in check.detail
    assert f"ip4:{PUBLIC_IP}" in check.detail
    assert HOST in check.detail


@pytest.mark.parametrize(
    ("published", "status"),
    [
        ("v=spf1 include:_spf.google.com a:mx.mailmark.test ~all", "ok"),
        ("v=spf1 ip4:192.0.2.0/24 -all", "ok"),
        ("v=spf1 ip4:192.0.2.10 -all", "ok"),
        ("v=spf1 +a:mx.mailmark.test/24 ~all", "ok"),
        ("v=spf1 a:mx.mailmark.test. -all", "ok"),  # RFC 7208 §7.1: domain-end may have a dot
        ("v=spf1 mx ~all", "ok"),  # the domain's MX is this server once set up
        # RFC 7208 §4.6.1 / RFC 5234 §2.3: version and mechanism names are case-insensitive.
        ("V=SPF1 A:MX.MAILMARK.TEST ~ALL", "ok"),
        ("v=spf1 IP4:192.0.2.10 -ALL", "ok"),
        ("v=spf1 -a:mx.mailmark.test ~all", "mismatch"),  # "-": fail
        ("v=spf1 ~a:mx.mailmark.test ~all", "mismatch"),  # "~": softfail
        ("v=spf1 ?ip4:192.0.2.10 ~all", "mismatch"),  # "?": neutral
        ("v=spf1 ip4:198.51.100.0/24 -all", "mismatch"),
        ("v=spf1 ip6:2001:db8::/32 -all", "mismatch"),  # an IPv4 address is in no ip6 range
        ("v=spf1 a:mx.mailmark.test.evil.test -all", "mismatch"),
        ("v=spf1 a -all", "mismatch"),  # the domain's own A record: not our server by name
        # RFC 7208 §4.6.2: the first matching mechanism decides; §5.1: nothing after "all".
        ("v=spf1 -ip4:192.0.2.10 a:mx.mailmark.test ~all", "mismatch"),
        ("v=spf1 -all a:mx.mailmark.test", "mismatch"),
        ("v=spf1 ~all ip4:192.0.2.10", "mismatch"),
        ("v=spf1 ip4:192.0.2.10 -a:mx.mailmark.test ~all", "ok"),
        (("v=spf1 ", "include:_spf.google.com", " a:mx.mailmark.test", " ~all"), "ok"),
        ("v=spf10 a:mx.mailmark.test ~all", "missing"),  # not an SPF record at all
    ],
)
async def test_spf_forms(
    fake_dns: FakeDns,
    domain_dns: DomainDns,
    records: list[DnsRecord],
    published: str | tuple[str, ...],
    status: str,
) -> None:
    fake_dns.add(DOMAIN, "TXT", published)
    check = await verify_one(domain_dns, pick(records, "TXT", DOMAIN))
    assert check.status == status, check
    joined = published if isinstance(published, str) else "".join(published)
    assert check.found == (joined,)


async def test_spf_by_host_name_when_no_public_ip_is_configured(fake_dns: FakeDns) -> None:
    domain_dns = DomainDns(
        DnsResolver([fake_dns.address], timeout=1, cache=False), MailServer(HOST)
    )
    record = pick(domain_dns.record_set(DOMAIN, []), "TXT", DOMAIN)
    assert record.value == f"v=spf1 a:{HOST} ~all"
    fake_dns.add(DOMAIN, "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    fake_dns.add(f"mail.{DOMAIN}", "TXT", "v=spf1 a:MX.mailmark.test -all")
    [by_range, by_name] = await domain_dns.verify(
        [record, pick(domain_dns.record_set(DOMAIN, []), "TXT", f"mail.{DOMAIN}")]
    )
    # Without a configured address an ip4 range cannot be judged to hold this server.
    assert by_range.status == "mismatch"
    assert by_name.status == "ok"


# -- DMARC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("published", "status"),
    [
        ("v=DMARC1; p=quarantine; rua=mailto:dmarc@acme.test", "ok"),
        ("v=DMARC1; rua=mailto:dmarc@acme.test; p=quarantine", "ok"),
        ("v=DMARC1;p=quarantine", "ok"),
        (
            (
                "v=DMARC1; adkim=s; aspf=s; fo=1; p=quarantine; sp=reject; pct=100; "
                "ruf=mailto:forensic@acme.test; rua=mailto:dmarc@acme.test,mailto:agg@vendor.test"
            ),
            "ok",
        ),
        ("v=DMARC1; p=reject", "ok"),  # stricter than asked
        # RFC 7489 §6.4: WSP around "=" is allowed and tag names are case-insensitive.
        ("v = DMARC1 ; P=Quarantine", "ok"),
        ("v=DMARC1; p=none; rua=mailto:dmarc@acme.test", "mismatch"),
        ("v=DMARC1; p=quarantaine", "mismatch"),
        ("v=DMARC1; rua=mailto:dmarc@acme.test", "mismatch"),  # no p=
        ("v=DMARC1; p=reject; pct=0", "mismatch"),  # the policy applies to no mail at all
        ("v=DMARC1; p=quarantine; pct=50", "mismatch"),
    ],
)
async def test_dmarc_forms(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord], published: str, status: str
) -> None:
    fake_dns.add(f"_dmarc.{DOMAIN}", "TXT", published)
    check = await verify_one(domain_dns, pick(records, "TXT", f"_dmarc.{DOMAIN}"))
    assert check.status == status, check
    assert check.found == (published,)


async def test_dmarc_p_none_says_why(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    fake_dns.add(f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=none")
    check = await verify_one(domain_dns, pick(records, "TXT", f"_dmarc.{DOMAIN}"))
    assert check.status == "mismatch"
    assert "p=none" in check.detail
    assert "quarantine" in check.detail


async def test_two_dmarc_records_are_a_mismatch(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    fake_dns.add(f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=quarantine", "v=DMARC1; p=reject")
    check = await verify_one(domain_dns, pick(records, "TXT", f"_dmarc.{DOMAIN}"))
    # RFC 7489 §6.6.3: more than one record means no policy is applied at all.
    assert check.status == "mismatch"
    assert len(check.found) == 2
    assert "more than one" in check.detail


async def test_a_non_dmarc_txt_alongside_is_ignored(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    dmarc = "v=DMARC1; p=quarantine; rua=mailto:dmarc@acme.test"
    fake_dns.add(f"_dmarc.{DOMAIN}", "TXT", "some-verification=xyz", dmarc, "v=spf1 -all")
    check = await verify_one(domain_dns, pick(records, "TXT", f"_dmarc.{DOMAIN}"))
    assert check.status == "ok", check
    assert check.found == (dmarc,)


async def test_only_non_dmarc_txt_is_missing(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    fake_dns.add(f"_dmarc.{DOMAIN}", "TXT", "some-verification=xyz")
    check = await verify_one(domain_dns, pick(records, "TXT", f"_dmarc.{DOMAIN}"))
    assert check.status == "missing"


# -- MX ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("published", "status"),
    [
        (("10 MX.MAILMARK.TEST.",), "ok"),  # case and the trailing dot do not matter
        (("50 mx.mailmark.test.",), "ok"),  # another preference still routes here
        (("5 mx1.other.test.", "20 Mx.Mailmark.Test.", "30 mx2.other.test."), "ok"),
        (("10 mx.other.test.",), "mismatch"),
        (("10 mx.mailmark.test.other.test.",), "mismatch"),
        (("0 .",), "mismatch"),  # RFC 7505 null MX: the domain accepts no mail
    ],
)
async def test_mx_forms(
    fake_dns: FakeDns,
    domain_dns: DomainDns,
    records: list[DnsRecord],
    published: tuple[str, ...],
    status: str,
) -> None:
    fake_dns.add(DOMAIN, "MX", *published)
    check = await verify_one(domain_dns, pick(records, "MX", DOMAIN))
    assert check.status == status, check
    # DNS name compression may change the case of what comes back (RFC 4343 §4.1).
    assert sorted(f.lower() for f in check.found) == sorted(p.lower() for p in published)


async def test_mx_pointing_elsewhere_reports_what_was_found(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    fake_dns.add(f"mail.{DOMAIN}", "MX", "10 feedback-smtp.us-east-1.amazonses.com.")
    check = await verify_one(domain_dns, pick(records, "MX", f"mail.{DOMAIN}"))
    assert check.status == "mismatch"
    assert check.found == ("10 feedback-smtp.us-east-1.amazonses.com.",)
    assert HOST in check.detail


# -- SRV, MTA-STS host, PTR ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("published", "status"),
    [
        ("0 1 993 mx.mailmark.test.", "ok"),
        ("10 5 993 MX.MAILMARK.TEST.", "ok"),  # priority and weight are the admin's choice
        ("0 1 143 mx.mailmark.test.", "mismatch"),  # wrong port
        ("0 1 993 imap.other.test.", "mismatch"),  # wrong target
        ("0 0 0 .", "mismatch"),  # RFC 6186 §4: "." means the service is not offered
    ],
)
async def test_srv_forms(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord], published: str, status: str
) -> None:
    fake_dns.add(f"_imaps._tcp.{DOMAIN}", "SRV", published)
    check = await verify_one(domain_dns, pick(records, "SRV", f"_imaps._tcp.{DOMAIN}"))
    assert check.status == status, check
    assert tuple(f.lower() for f in check.found) == (published.lower(),)
    if status == "mismatch":
        assert "993" in check.detail and HOST in check.detail


async def test_srv_with_ours_among_several_is_ok(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    fake_dns.add(
        f"_submission._tcp.{DOMAIN}",
        "SRV",
        "0 1 587 smtp.other.test.",
        "10 1 587 mx.mailmark.test.",
    )
    check = await verify_one(domain_dns, pick(records, "SRV", f"_submission._tcp.{DOMAIN}"))
    assert check.status == "ok", check


@pytest.mark.parametrize(
    ("rtype", "published", "status"),
    [
        ("CNAME", "mx.mailmark.test.", "ok"),
        ("CNAME", "MX.Mailmark.Test.", "ok"),
        ("CNAME", "sts.other.test.", "mismatch"),
        ("A", PUBLIC_IP, "ok"),  # the policy host served straight from our address
        ("A", "198.51.100.7", "mismatch"),
    ],
)
async def test_mta_sts_host(
    fake_dns: FakeDns,
    domain_dns: DomainDns,
    records: list[DnsRecord],
    rtype: str,
    published: str,
    status: str,
) -> None:
    fake_dns.add(f"mta-sts.{DOMAIN}", rtype, published)
    check = await verify_one(domain_dns, pick(records, "CNAME", f"mta-sts.{DOMAIN}"))
    assert check.status == status, check
    assert tuple(f.lower() for f in check.found) == (published.lower(),)


async def test_ptr_ok_missing_and_wrong(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    record = pick(records, "PTR", PTR_NAME)
    assert (await verify_one(domain_dns, record)).status == "missing"
    fake_dns.add(PTR_NAME, "PTR", "MX.MAILMARK.TEST.")
    check = await verify_one(domain_dns, record)
    assert check.status == "ok"
    assert [f.lower() for f in check.found] == ["mx.mailmark.test."]
    fake_dns.add("11.2.0.192.in-addr.arpa", "PTR", "static-11.hoster.test.")
    wrong = DnsRecord("PTR", "11.2.0.192.in-addr.arpa", HOST, "test", required=False)
    check = await verify_one(domain_dns, wrong)
    assert check.status == "mismatch"
    assert check.found == ("static-11.hoster.test.",)


# -- DNS failures --------------------------------------------------------------------------------


async def test_servfail_is_an_error_never_missing(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    publish(fake_dns, records)
    broken = {DOMAIN, f"{RSA_SELECTOR}._domainkey.{DOMAIN}", f"mta-sts.{DOMAIN}", PTR_NAME}
    for name in broken:
        fake_dns.servfail(name)
    checks = await domain_dns.verify(records)
    for check in checks:
        if check.record.name in broken:
            assert check.status == "error", check
            assert check.detail, check
        else:
            assert check.status == "ok", check
    assert sum(c.status == "error" for c in checks) == 5  # MX + SPF at the domain, and 3 more


async def test_a_nameserver_that_never_answers_is_an_error_within_the_timeout(
    silent_server: str, records: list[DnsRecord]
) -> None:
    domain_dns = DomainDns(DnsResolver([silent_server], timeout=1, cache=False), SERVER)
    checks = await domain_dns.verify(records)
    assert {c.status for c in checks} == {"error"}
    assert all("timed out after 1s" in c.detail for c in checks), checks


async def test_every_record_is_looked_up_at_once(
    fake_dns: FakeDns, records: list[DnsRecord]
) -> None:
    """With a nameserver that never answers, the whole set then takes one timeout, not one each.
    The server answers only once every question is in: lookups made one after another would each
    wait for the next and time out. The timeout is long, so that a loaded machine sending the
    questions slowly still gets every one in before it."""
    domain_dns = DomainDns(DnsResolver([fake_dns.address], timeout=15, cache=False), SERVER)
    publish(fake_dns, records)
    fake_dns.hold_answers(until_asked=len({(r.name, r.type) for r in records}))
    checks = await domain_dns.verify(records)
    assert {c.status for c in checks} == {"ok"}, checks


async def test_a_stale_mta_sts_id_is_a_mismatch_naming_the_current_one(
    fake_dns: FakeDns, domain_dns: DomainDns, records: list[DnsRecord]
) -> None:
    expected = pick(records, "TXT", f"_mta-sts.{DOMAIN}")
    fake_dns.add(f"_mta-sts.{DOMAIN}", "TXT", "v=STSv1; id=20240101000000")
    check = await verify_one(domain_dns, expected)
    assert check.status == "mismatch"
    assert "stale" in check.detail and expected.value.split("id=")[1] in check.detail

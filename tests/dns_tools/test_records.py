"""DMARC record reading and organizational domains, as tables of inputs and a fuzz test."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailmark.dns_tools.records import (
    DmarcRecord,
    InvalidRecord,
    is_dmarc_record,
    organizational_domain,
    parse_dmarc,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DMARC1; p=reject", DmarcRecord(p="reject", sp="reject")),
        ("v=DMARC1;p=none;", DmarcRecord(p="none", sp="none")),
        ("  V = DMARC1 ;  P = Quarantine ; SP = none ", DmarcRecord(p="quarantine", sp="none")),
        ("v=DMARC1\t;\tp=reject\t;\tadkim=s", DmarcRecord(p="reject", sp="reject", adkim="s")),
        (
            "v=DMARC1; p=reject; adkim=S; aspf=s; pct=25",
            DmarcRecord(p="reject", sp="reject", adkim="s", aspf="s", pct=25),
        ),
        (
            (
                "v=DMARC1; p=none; rua=mailto:a@x.example, mailto:b@y.example!10m;"
                " ruf=mailto:f@x.example"
            ),
            DmarcRecord(
                p="none",
                sp="none",
                rua=("mailto:a@x.example", "mailto:b@y.example!10m"),
                ruf=("mailto:f@x.example",),
            ),
        ),
        # Unknown tags and tags without "=" are ignored; the first of a repeated tag wins.
        ("v=DMARC1; fo=1; ri=86400; foo; p=reject; p=none", DmarcRecord(p="reject", sp="reject")),
        # Invalid optional values fall back to the defaults instead of voiding the policy.
        (
            "v=DMARC1; p=reject; adkim=x; aspf=; pct=101",
            DmarcRecord(p="reject", sp="reject", adkim="r", aspf="r", pct=100),
        ),
        ("v=DMARC1; p=reject; pct=abc", DmarcRecord(p="reject", sp="reject", pct=100)),
        ("v=DMARC1; p=reject; pct=0", DmarcRecord(p="reject", sp="reject", pct=0)),
        ("v=DMARC1; p=none; rua=", DmarcRecord(p="none", sp="none")),
    ],
)
def test_parse_dmarc(text: str, expected: DmarcRecord) -> None:
    assert parse_dmarc(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a DMARC record"),
        ("v=spf1 -all", "not a DMARC record"),
        ("p=reject; v=DMARC1", "not a DMARC record"),  # RFC 7489 §6.4: v= comes first
        ("v=DMARC2; p=reject", "not a DMARC record"),
        ("v=dmarc1; p=reject", "not a DMARC record"),  # the version value is case-sensitive
        ("v=DMARC1 p=reject", "not a DMARC record"),
        ("v=DMARC1", "no p= tag"),
        ("v=DMARC1; rua=mailto:a@x.example", "no p= tag"),
        ("v=DMARC1; p=bounce", "invalid p='bounce'"),
        ("v=DMARC1; p=", "invalid p=''"),
        ("v=DMARC1; p=reject; sp=drop", "invalid sp='drop'"),
    ],
)
def test_parse_dmarc_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidRecord, match=message):
        parse_dmarc(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DMARC1; p=none", True),
        ("v=DMARC1", True),
        (" v = DMARC1 ;p=reject", True),
        ("v=DMARC1x; p=none", False),
        ("v=spf1 include:_spf.example -all", False),
        ("some verification token", False),
    ],
)
def test_is_dmarc_record(text: str, expected: bool) -> None:
    assert is_dmarc_record(text) is expected


@given(st.text())
def test_parse_dmarc_raises_only_invalid_record(text: str) -> None:
    try:
        record = parse_dmarc(text)
    except InvalidRecord:
        return
    assert record.p in ("none", "quarantine", "reject")
    assert 0 <= record.pct <= 100


@given(st.text(alphabet=" \t;=,!vVDMARC1prejctsnoqua:@.xf", max_size=80))
def test_parse_dmarc_raises_only_invalid_record_near_valid(text: str) -> None:
    with contextlib.suppress(InvalidRecord):
        parse_dmarc("v=DMARC1;" + text)


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("example.com", "example.com"),
        ("mail.example.com", "example.com"),
        ("a.b.c.example.com", "example.com"),
        ("Mail.Example.COM.", "example.com"),
        ("example.co.uk", "example.co.uk"),
        ("news.example.co.uk", "example.co.uk"),
        ("x.y.example.com.au", "example.com.au"),
        ("shop.example.co.jp", "example.co.jp"),
        ("www.example.com.br", "example.com.br"),
        ("a.example.org.uk", "example.org.uk"),
        ("a.example.co.nz", "example.co.nz"),
        ("co.uk", "co.uk"),
        ("localhost", "localhost"),
        # Not in the built-in suffix set: treated as a registrable domain (documented limit).
        ("user.github.io", "github.io"),
    ],
)
def test_organizational_domain(domain: str, expected: str) -> None:
    assert organizational_domain(domain) == expected

"""Address rules: mailbox names (RFC 5321 §4.5.3.1.1, RFC 5322 §3.2.3), domain names, relay tricks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmark.core.addresses import (
    Recipient,
    normalize_domain,
    normalize_local_part,
    parse_recipient,
)
from mailmark.core.errors import InvalidInput, RelayDenied


@pytest.mark.parametrize(
    ("given_name", "expected"),
    [
        ("acme.test", "acme.test"),
        ("Example.COM", "example.com"),
        ("  example.com  ", "example.com"),
        ("example.com.", "example.com"),  # one trailing dot: the absolute form of the same name
        ("mail.sub.example.co.uk", "mail.sub.example.co.uk"),
        ("123.com", "123.com"),  # RFC 1123 §2.1: labels may start with a digit
        ("a-b.example", "a-b.example"),
        ("bücher.de", "xn--bcher-kva.de"),  # IDNA: stored as the A-label
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("x" * 63 + ".com", "x" * 63 + ".com"),
    ],
)
def test_normalize_domain_accepts(given_name: str, expected: str) -> None:
    assert normalize_domain(given_name) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ".",
        "com",  # a single label is not a mail domain
        "example..com",
        "example.com..",
        ".example.com",
        "-example.com",
        "example-.com",
        "exa_mple.com",
        "exa mple.com",
        "user@example.com",
        "[192.0.2.1]",
        "192.0.2.1",  # an all-numeric top label is an IP address, not a name
        "example.123",
        "x" * 64 + ".com",  # label over 63 octets
        ".".join(["a" * 63] * 4) + ".com",  # over 253 octets in total
    ],
)
def test_normalize_domain_rejects(bad: str) -> None:
    with pytest.raises(InvalidInput, match="is not a valid domain name"):
        normalize_domain(bad)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("sales", "sales"),
        ("Sales", "sales"),  # mailbox names are case-insensitive here
        (" support ", "support"),
        ("first.last", "first.last"),
        ("o'brien", "o'brien"),
        ("under_score", "under_score"),
        ("-dash", "-dash"),
        ("a=b", "a=b"),
        ("x" * 64, "x" * 64),
    ],
)
def test_normalize_local_part_accepts(local: str, expected: str) -> None:
    assert normalize_local_part(local) == expected


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "1 to 64 characters"),
        ("   ", "1 to 64 characters"),
        ("x" * 65, "1 to 64 characters"),  # RFC 5321 §4.5.3.1.1
        ("support@acme.test", "not a full address"),
        (".lead", "not a valid mailbox name"),  # RFC 5322 §3.2.3: dot-atom, no empty atoms
        ("trail.", "not a valid mailbox name"),
        ("dou..ble", "not a valid mailbox name"),
        ("with space", "not a valid mailbox name"),
        ("tab\there", "not a valid mailbox name"),
        ('"quoted"', "not a valid mailbox name"),
        ("back\\slash", "not a valid mailbox name"),
        ("sub+address", "not a valid mailbox name"),  # + is our sub-address separator
        ("percent%hack", "not a valid mailbox name"),
        ("bang!path", "not a valid mailbox name"),
        ("(comment)", "not a valid mailbox name"),
        ("a,b", "not a valid mailbox name"),
        ("ümlaut", "not a valid mailbox name"),
        ("nul\0", "not a valid mailbox name"),
    ],
)
def test_normalize_local_part_rejects(bad: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        normalize_local_part(bad)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("sales@acme.test", Recipient("sales", "acme.test")),
        ("Sales@ACME.Test", Recipient("sales", "acme.test")),
        ("sales@acme.test.", Recipient("sales", "acme.test")),
        ("sales+orders@acme.test", Recipient("sales", "acme.test", "orders")),
        ("sales+@acme.test", Recipient("sales", "acme.test", "")),
        ("sales+a+b@acme.test", Recipient("sales", "acme.test", "a+b")),
        ("first.last@bücher.de", Recipient("first.last", "xn--bcher-kva.de")),
        ("x" * 64 + "@acme.test", Recipient("x" * 64, "acme.test")),
    ],
)
def test_parse_recipient(address: str, expected: Recipient) -> None:
    assert parse_recipient(address) == expected


@pytest.mark.parametrize(
    "trick",
    [
        "",
        "sales",
        "sales@",
        "@acme.test",
        "+tag@acme.test",  # nothing left once the sub-address is removed
        "@acme.test:victim@elsewhere.example",  # source route, RFC 5321 Appendix C
        "@acme.test,@b.test:victim@elsewhere.example",
        "victim%elsewhere.example@acme.test",  # the percent hack
        "elsewhere.example!victim@acme.test",  # UUCP bang path
        '"victim@elsewhere.example"@acme.test',  # quoted local part hiding an @
        '"victim"@acme.test',
        "vic\\@tim@acme.test",
        "victim@elsewhere.example@acme.test",
        "victim@[192.0.2.1]",  # address literal
        "victim@[IPv6:2001:db8::1]",
        "sales@acme.test..",
        "sales@acme..test",
        "sales@-acme.test",
        "sales@acme_test.example",
        "<sales@acme.test>",
        "x" * 65 + "@acme.test",
    ],
)
def test_parse_recipient_refuses_relay_tricks(trick: str) -> None:
    with pytest.raises(RelayDenied) as caught:
        parse_recipient(trick)
    assert caught.value.message == f"<{trick}>: Relay access denied"


_ADDRESSY = st.text(
    alphabet=st.sampled_from(list('aZ09@.+%!"\\[]:;,<>-_ \t\r\n\0üİß。ﬀ')), max_size=40
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=80), _ADDRESSY, st.emails().map(str)))
def test_parse_recipient_only_returns_a_recipient_or_denies(text: str) -> None:
    try:
        recipient = parse_recipient(text)
    except RelayDenied:
        return
    assert isinstance(recipient, Recipient)
    # What comes out is safe to look up: a plain local part and a normalised, hostable domain.
    assert recipient.local_part
    assert not set('@%!"\\+') & set(recipient.local_part)
    assert len(recipient.local_part.encode()) <= 64
    assert normalize_domain(recipient.domain) == recipient.domain

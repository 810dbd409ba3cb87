"""DkimSigner: rsa-sha256 relaxed/relaxed signatures that dkimpy verifies against the DNS key."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import dkim  # type: ignore[import-untyped]
import pytest
from dkim.canonicalization import Relaxed  # type: ignore[import-untyped]
from dkim.util import parse_tag_value  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmark.core.model import DkimKey
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.security import DkimKeyFactory
from mailmark.smtp_out.dkim import (
    DkimSigner,
    DkimSigningError,
    relaxed_body,
    relaxed_field,
    split_message,
    to_crlf,
)
from tests.fakedns import FakeDns

MESSAGE = (
    b"From: Sales <sales@acme.test>\r\n"
    b"To: bob@remote.test\r\n"
    b"Subject: Quarterly figures\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <abc@acme.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Bob,\r\n.leading dot\r\n"
)


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    return DkimKeyFactory().generate_rsa()


def rsa_key(key_pair: tuple[str, str]) -> DkimKey:
    private, public = key_pair
    return DkimKey(
        domain_id=1,
        selector="mm1",
        algorithm="rsa-sha256",
        private_key_pem=private,
        public_key=public,
        state="active",
        created_at=datetime.now(UTC),
    )


def publish(fake_dns: FakeDns, key: DkimKey) -> DnsResolver:
    fake_dns.add(
        f"{key.selector}._domainkey.acme.test", "TXT", f"v=DKIM1; k=rsa; p={key.public_key}"
    )
    return DnsResolver([fake_dns.address])


def signature_tags(signed: bytes) -> dict[bytes, bytes]:
    field = signed.split(b"\r\n\r\n", 1)[0].split(b"\r\nFrom:", 1)[0]
    value = field.split(b":", 1)[1].replace(b"\r\n", b"")
    return dict(parse_tag_value(value))


async def test_signature_verifies_against_the_published_key(
    fake_dns: FakeDns, key_pair: tuple[str, str]
) -> None:
    key = rsa_key(key_pair)
    resolver = publish(fake_dns, key)
    signed = await DkimSigner().sign_off_loop(MESSAGE, domain="acme.test", key=key)
    assert signed.startswith(b"DKIM-Signature: ") and signed.endswith(MESSAGE)
    assert dkim.verify(signed, dnsfunc=resolver.dkim_dnsfunc)
    tags = signature_tags(signed)
    assert tags[b"a"] == b"rsa-sha256"
    assert tags[b"c"] == b"relaxed/relaxed"
    assert tags[b"d"] == b"acme.test" and tags[b"s"] == b"mm1"
    signed_names = [name.strip() for name in tags[b"h"].split(b":")]
    # Over-signed: each present field once more than it occurs, absent ones once (RFC 6376 §8.15).
    for name in (b"from", b"to", b"subject", b"date", b"message-id"):
        assert signed_names.count(name) == 2, name
    for name in (b"cc", b"reply-to", b"list-unsubscribe", b"list-unsubscribe-post"):
        assert signed_names.count(name) == 1, name
    assert signed_names.count(b"content-type") == 1


async def test_a_field_added_in_transit_breaks_the_signature(
    fake_dns: FakeDns, key_pair: tuple[str, str]
) -> None:
    key = rsa_key(key_pair)
    resolver = publish(fake_dns, key)
    signed = DkimSigner().sign(MESSAGE, domain="acme.test", key=key)
    for added in (
        b"Subject: Buy now\r\n",
        b"Cc: victim@remote.test\r\n",
        b"List-Unsubscribe: <https://evil.test/u>\r\n",
    ):
        head, body = signed.split(b"\r\n\r\n", 1)
        tampered = head + b"\r\n" + added.rstrip(b"\r\n") + b"\r\n\r\n" + body
        assert not dkim.verify(tampered, dnsfunc=resolver.dkim_dnsfunc), added


async def test_relaxed_canonicalisation_survives_rewrapping(
    fake_dns: FakeDns, key_pair: tuple[str, str]
) -> None:
    key = rsa_key(key_pair)
    resolver = publish(fake_dns, key)
    signed = DkimSigner().sign(MESSAGE, domain="acme.test", key=key)
    rewrapped = signed.replace(b"Subject: Quarterly figures", b"Subject:  Quarterly\r\n  figures")
    assert dkim.verify(rewrapped, dnsfunc=resolver.dkim_dnsfunc)


def test_a_message_without_from_is_not_signed(key_pair: tuple[str, str]) -> None:
    with pytest.raises(DkimSigningError, match="no From"):
        DkimSigner().sign(b"Subject: x\r\n\r\nbody\r\n", domain="acme.test", key=rsa_key(key_pair))


def test_an_ed25519_key_is_refused(key_pair: tuple[str, str]) -> None:
    seed, public = DkimKeyFactory().generate_ed25519()
    key = DkimKey(1, "mm2", "ed25519-sha256", seed, public, "active", datetime.now(UTC))
    with pytest.raises(DkimSigningError, match="not rsa-sha256"):
        DkimSigner().sign(MESSAGE, domain="acme.test", key=key)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (b"a\nb", b"a\r\nb\r\n"),
        (b"a\rb\r\n", b"a\r\nb\r\n"),
        (b"a\r\n\nb\r\r\n", b"a\r\n\r\nb\r\n\r\n"),
        (b"a\r\n", b"a\r\n"),
        (b"", b"\r\n"),
    ],
)
def test_to_crlf_leaves_only_crlf(raw: bytes, clean: bytes) -> None:
    assert to_crlf(raw) == clean


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\r\n",
        b"\r\n\r\n",
        b"one line\r\n",
        b"trailing spaces   \r\nand\ttabs\t \r\n",
        b"  leading and  inner \t runs\r\n\r\n\r\n",
        b" \r\n \t\r\n",
        b"no final line ending",
        b"a\r\n\r\nb  \r\n \r\n",
        b"\tonly tab line\r\n",
    ],
)
def test_relaxed_body_matches_dkimpy(body: bytes) -> None:
    assert relaxed_body(body) == Relaxed.canonicalize_body(body)


def test_split_message_keeps_folded_fields_and_the_whole_body() -> None:
    message = b"From: a@acme.test\r\nSubject: one\r\n two\r\n\r\nbody\r\n\r\n"
    headers, body = split_message(message)
    assert headers == [(b"From", b" a@acme.test"), (b"Subject", b" one\r\n two")]
    assert body == b"body\r\n\r\n"
    assert split_message(b"From: a@acme.test\r\n") == ([(b"From", b" a@acme.test")], b"")


async def test_signature_over_repeated_and_unsigned_fields_verifies(
    fake_dns: FakeDns, key_pair: tuple[str, str]
) -> None:
    key = rsa_key(key_pair)
    resolver = publish(fake_dns, key)
    message = (
        b"Received: from a\r\nTo: one@remote.test\r\nFrom: Sales <sales@acme.test>\r\n"
        b"X-Mailer:   something\r\n  folded\r\nTo: two@remote.test\r\n"
        b"References: <a@acme.test>\r\n\t<b@acme.test>\r\nSubject:  Spaced\t out \r\n\r\n"
        b"Body  with\truns \r\n\r\n\r\n"
    )
    signed = DkimSigner().sign(message, domain="acme.test", key=key)
    assert dkim.verify(signed, dnsfunc=resolver.dkim_dnsfunc)


_NAMES = [b"From", b"To", b"Cc", b"Subject", b"Date", b"Message-ID", b"References", b"X-Extra"]
_WSP = st.sampled_from([b" ", b"\t", b"  ", b" \t "])
_WORD = st.binary(min_size=1, max_size=12).map(
    lambda raw: bytes(b for b in raw if 0x21 <= b <= 0x7E and b != ord(":")) or b"x"
)


@st.composite
def header_sections(draw: st.DrawFn) -> bytes:
    """Header sections with repeated, folded and oddly spaced fields, one From always."""
    fields = [b"From: Sales <sales@acme.test>\r\n"]
    for _ in range(draw(st.integers(0, 8))):
        name = draw(st.sampled_from(_NAMES))
        value = b""
        for word in draw(st.lists(_WORD, min_size=1, max_size=6)):
            value += draw(st.sampled_from([b"", b"\r\n"])) + draw(_WSP) + word
        trailing = draw(st.sampled_from([b"", b" ", b"\t "]))
        fields.insert(
            draw(st.integers(0, len(fields))),
            # No WSP before the colon (RFC 5322 §4.5.3, obsolete): dkimpy refuses a tab there
            # and does not pick such a field for its name in h= when it verifies.
            name + b":" + value + trailing + b"\r\n",
        )
    return b"".join(fields)


@settings(max_examples=60, deadline=None)
@given(section=header_sections())
def test_signatures_over_any_header_section_verify_with_dkimpy(
    key_pair: tuple[str, str], section: bytes
) -> None:
    """The fields are canonicalised (RFC 6376 §3.4.2), picked from the bottom (§5.4.2) and the
    DKIM-Signature field folded by our own code; dkimpy, an independent verifier, agrees."""
    key = rsa_key(key_pair)
    record = f"v=DKIM1; k=rsa; p={key.public_key}".encode()
    signed = DkimSigner().sign(section + b"\r\nBody  text \r\n", domain="acme.test", key=key)
    first, *rest = signed.split(b"\r\n")
    field = [first, *itertools.takewhile(lambda line: line[:1] == b" ", rest)]
    assert max(len(line) for line in field) <= 78
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: record)


@given(
    name=st.sampled_from([b"Subject", b"subject \t", b"X-Y"]),
    value=st.lists(
        st.sampled_from([b" ", b"\t", b"\r\n ", b"\r\n\t", b"a", b"b:c", b";"]), max_size=12
    ),
)
def test_a_relaxed_field_is_what_dkimpy_makes_of_it(name: bytes, value: list[bytes]) -> None:
    text = b"".join(value)
    [(canonical_name, canonical_value)] = Relaxed.canonicalize_headers([(name, text + b"\r\n")])
    assert relaxed_field(name, text) == canonical_name + b":" + canonical_value


def test_a_header_line_without_a_colon_is_not_signed(key_pair: tuple[str, str]) -> None:
    with pytest.raises(DkimSigningError, match="no field name"):
        DkimSigner().sign(
            b"From: a@acme.test\r\nnot a field\r\n\r\nbody\r\n",
            domain="acme.test",
            key=rsa_key(key_pair),
        )

"""SPF, DKIM and DMARC verdicts for inbound mail, against a DNS server on loopback."""

import asyncio
import base64
import gc
import time
from dataclasses import replace
from typing import NamedTuple

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailmark.dns_tools.resolver import DnsResolver
from mailmark.smtp_in.authentication import (
    AuthenticationResults,
    DkimSignatureResult,
    MessageAuthenticator,
)
from tests.fakedns import FakeDns

CLIENT_IP = "192.0.2.10"
HELO = "mta.sender.example"


class SigningKey(NamedTuple):
    private_pem: bytes  # PKCS#1, as dkimpy wants it
    public_base64: str  # the p= value of the key record


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    """A 2048-bit RSA key, generated once per module."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(private, base64.b64encode(public).decode())


@pytest.fixture
def authenticator(fake_dns: FakeDns) -> MessageAuthenticator:
    return MessageAuthenticator(DnsResolver([fake_dns.address], timeout=2), "mx.rcpt.example")


def message(from_header: bytes = b"Alice <alice@sender.example>") -> bytes:
    return (
        b"From: " + from_header + b"\r\n"
        b"To: bob@rcpt.example\r\n"
        b"Subject: Lunch\r\n"
        b"Message-ID: <1@sender.example>\r\n"
        b"\r\n"
        b"Hello Bob,\r\n\r\nSee you at noon.\r\n"
    )


def signed(raw: bytes, key: SigningKey, domain: str = "sender.example") -> bytes:
    """`raw` with a DKIM-Signature (selector sel1) prepended."""
    signature: bytes = dkim.sign(raw, b"sel1", domain.encode(), key.private_pem)
    return signature + raw


def publish_key(fake_dns: FakeDns, key: SigningKey, domain: str) -> None:
    fake_dns.add(f"sel1._domainkey.{domain}", "TXT", f"v=DKIM1; k=rsa; p={key.public_base64}")


async def check(
    authenticator: MessageAuthenticator,
    raw: bytes | None = None,
    mail_from: str = "alice@sender.example",
    client_ip: str = CLIENT_IP,
) -> AuthenticationResults:
    return await authenticator.authenticate(
        raw=message() if raw is None else raw, client_ip=client_ip, helo=HELO, mail_from=mail_from
    )


# --- SPF -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (f"v=spf1 ip4:{CLIENT_IP} -all", "pass"),
        ("v=spf1 ip4:192.0.2.0/24 -all", "pass"),
        ("v=spf1 a:mta.sender.example -all", "pass"),
        ("v=spf1 -all", "fail"),
        ("v=spf1 ~all", "softfail"),
        ("v=spf1 ?all", "neutral"),
        (None, "none"),
        ("v=spf1 ip4:banana -all", "permerror"),
        ("v=spf1 include:nowhere.example -all", "permerror"),  # RFC 7208 §5.2: no record there
    ],
)
async def test_spf_result(
    fake_dns: FakeDns, authenticator: MessageAuthenticator, record: str | None, expected: str
) -> None:
    fake_dns.add("mta.sender.example", "A", CLIENT_IP)
    if record is not None:
        fake_dns.add("sender.example", "TXT", record)
    results = await check(authenticator)
    assert results.spf == expected
    assert results.spf_scope == "mailfrom"
    assert results.spf_identity == "alice@sender.example"


async def test_spf_servfail_is_temperror(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.servfail("sender.example")
    assert (await check(authenticator)).spf == "temperror"


async def test_spf_servfail_deep_in_an_include_is_temperror(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.add("sender.example", "TXT", "v=spf1 include:_spf.provider.example -all")
    fake_dns.servfail("_spf.provider.example")
    assert (await check(authenticator)).spf == "temperror"


@pytest.mark.parametrize("null_sender", ["", "<>"])
async def test_spf_checks_helo_for_the_null_reverse_path(
    fake_dns: FakeDns, authenticator: MessageAuthenticator, null_sender: str
) -> None:
    fake_dns.add("mta.sender.example", "TXT", f"v=spf1 ip4:{CLIENT_IP} -all")
    fake_dns.add("sender.example", "TXT", "v=spf1 -all")
    results = await check(authenticator, mail_from=null_sender)
    assert (results.spf, results.spf_scope, results.spf_identity) == ("pass", "helo", HELO)
    assert b"spf=pass smtp.helo=mta.sender.example;" in results.header()


async def test_spf_with_a_client_ip_that_is_not_an_address(
    authenticator: MessageAuthenticator,
) -> None:
    assert (await check(authenticator, client_ip="unknown")).spf == "permerror"


# --- DKIM ----------------------------------------------------------------------------------


async def test_dkim_pass(
    fake_dns: FakeDns, authenticator: MessageAuthenticator, signing_key: SigningKey
) -> None:
    publish_key(fake_dns, signing_key, "sender.example")
    results = await check(authenticator, signed(message(), signing_key))
    assert results.dkim == "pass"
    assert results.dkim_domains == ("sender.example",)
    assert results.dkim_signatures == (DkimSignatureResult("pass", "sender.example", "sel1"),)


async def test_dkim_fails_when_the_body_changed_after_signing(
    fake_dns: FakeDns, authenticator: MessageAuthenticator, signing_key: SigningKey
) -> None:
    publish_key(fake_dns, signing_key, "sender.example")
    tampered = signed(message(), signing_key).replace(b"noon", b"one")
    results = await check(authenticator, tampered)
    assert (results.dkim, results.dkim_domains) == ("fail", ())


async def test_dkim_fails_when_a_signed_header_changed(
    fake_dns: FakeDns, authenticator: MessageAuthenticator, signing_key: SigningKey
) -> None:
    publish_key(fake_dns, signing_key, "sender.example")
    tampered = signed(message(), signing_key).replace(b"Subject: Lunch", b"Subject: Dinner")
    assert (await check(authenticator, tampered)).dkim == "fail"


async def test_dkim_without_a_published_key_is_permerror(
    authenticator: MessageAuthenticator, signing_key: SigningKey
) -> None:
    results = await check(authenticator, signed(message(), signing_key))
    assert results.dkim_signatures == (DkimSignatureResult("permerror", "sender.example", "sel1"),)


async def test_dkim_key_lookup_servfail_is_temperror(
    fake_dns: FakeDns, authenticator: MessageAuthenticator, signing_key: SigningKey
) -> None:
    fake_dns.servfail("sel1._domainkey.sender.example")
    assert (await check(authenticator, signed(message(), signing_key))).dkim == "temperror"


async def test_dkim_reports_the_best_of_several_signatures(
    fake_dns: FakeDns, authenticator: MessageAuthenticator, signing_key: SigningKey
) -> None:
    publish_key(fake_dns, signing_key, "sender.example")
    raw = signed(signed(message(), signing_key, "provider.example"), signing_key)
    results = await check(authenticator, raw)
    assert results.dkim == "pass"
    assert results.dkim_signatures == (
        DkimSignatureResult("pass", "sender.example", "sel1"),
        DkimSignatureResult("permerror", "provider.example", "sel1"),
    )


async def test_dkim_none_without_signatures(authenticator: MessageAuthenticator) -> None:
    results = await check(authenticator)
    assert (results.dkim, results.dkim_signatures) == ("none", ())


async def test_dkim_checks_at_most_five_signatures(
    fake_dns: FakeDns, authenticator: MessageAuthenticator, signing_key: SigningKey
) -> None:
    raw = message()
    for number in range(7):
        raw = signed(raw, signing_key, f"d{number}.example")
    results = await check(authenticator, raw)
    assert len(results.dkim_signatures) == 5
    key_lookups = [name for name, rdtype in fake_dns.queries if "_domainkey" in name]
    assert len(key_lookups) == 5


# --- DMARC ---------------------------------------------------------------------------------


async def test_dmarc_pass_through_aligned_spf(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    # Relaxed alignment (RFC 7489 §3.1.2): bounces.sender.example shares the organizational domain.
    fake_dns.add("bounces.sender.example", "TXT", f"v=spf1 ip4:{CLIENT_IP} -all")
    fake_dns.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=reject")
    results = await check(authenticator, mail_from="b+123@bounces.sender.example")
    assert (results.spf, results.dkim, results.dmarc) == ("pass", "none", "pass")
    assert (results.dmarc_policy, results.header_from_domain) == ("reject", "sender.example")


async def test_dmarc_strict_spf_alignment_needs_the_exact_domain(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.add("bounces.sender.example", "TXT", f"v=spf1 ip4:{CLIENT_IP} -all")
    fake_dns.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=quarantine; aspf=s")
    results = await check(authenticator, mail_from="b@bounces.sender.example")
    assert (results.spf, results.dmarc, results.dmarc_policy) == ("pass", "fail", "quarantine")


async def test_dmarc_pass_through_aligned_dkim(
    fake_dns: FakeDns, authenticator: MessageAuthenticator, signing_key: SigningKey
) -> None:
    publish_key(fake_dns, signing_key, "sender.example")
    fake_dns.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=reject; adkim=s")
    fake_dns.add("list.example", "TXT", "v=spf1 -all")
    raw = signed(message(), signing_key)
    results = await check(authenticator, raw, mail_from="bounce@list.example")
    assert (results.spf, results.dkim, results.dmarc) == ("fail", "pass", "pass")


async def test_dmarc_fail_with_reject_policy_reported(
    fake_dns: FakeDns, authenticator: MessageAuthenticator, signing_key: SigningKey
) -> None:
    # SPF passes and DKIM passes, but for someone else's domain: nothing aligns with From.
    fake_dns.add("attacker.example", "TXT", f"v=spf1 ip4:{CLIENT_IP} -all")
    publish_key(fake_dns, signing_key, "attacker.example")
    fake_dns.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=reject; rua=mailto:d@sender.example")
    raw = signed(message(), signing_key, "attacker.example")
    results = await check(authenticator, raw, mail_from="x@attacker.example")
    assert (results.spf, results.dkim, results.dmarc) == ("pass", "pass", "fail")
    assert results.dmarc_policy == "reject"
    assert b"\tdmarc=fail (p=reject) header.from=sender.example\r\n" in results.header()


async def test_dmarc_falls_back_to_the_organizational_domain(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.add("sender.example", "TXT", f"v=spf1 ip4:{CLIENT_IP} -all")
    fake_dns.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=reject; sp=quarantine")
    raw = message(b"News <news@news.sender.example>")
    results = await check(authenticator, raw, mail_from="bounce@sender.example")
    # RFC 7489 §6.6.3: _dmarc.news.sender.example first, then the organizational domain.
    assert ("_dmarc.news.sender.example", "TXT") in fake_dns.queries
    assert (results.dmarc, results.dmarc_policy) == ("pass", "quarantine")
    assert results.header_from_domain == "news.sender.example"


async def test_dmarc_uses_p_when_the_record_is_at_the_author_domain(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.add("_dmarc.news.sender.example", "TXT", "v=DMARC1; p=reject; sp=none")
    results = await check(authenticator, message(b"news@news.sender.example"))
    assert (results.dmarc, results.dmarc_policy) == ("fail", "reject")


async def test_dmarc_org_domain_respects_multi_label_suffixes(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.add("_dmarc.shop.co.uk", "TXT", "v=DMARC1; p=quarantine")
    results = await check(authenticator, message(b"a@mail.shop.co.uk"))
    assert (results.dmarc, results.dmarc_policy) == ("fail", "quarantine")
    assert ("_dmarc.co.uk", "TXT") not in fake_dns.queries


async def test_dmarc_none_without_a_record(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.add("_dmarc.sender.example", "TXT", "some-verification=123")
    results = await check(authenticator)
    assert (results.dmarc, results.dmarc_policy) == ("none", None)
    assert results.header_from_domain == "sender.example"


async def test_dmarc_none_with_several_records(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=reject", "v=DMARC1; p=none")
    assert (await check(authenticator)).dmarc == "none"  # RFC 7489 §6.6.3 step 5


async def test_dmarc_servfail_is_temperror(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.servfail("_dmarc.sender.example")
    results = await check(authenticator)
    assert (results.dmarc, results.dmarc_policy) == ("temperror", None)


async def test_dmarc_temperror_when_aligned_spf_could_not_be_checked(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.servfail("sender.example")
    fake_dns.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=reject")
    results = await check(authenticator)
    assert (results.spf, results.dmarc) == ("temperror", "temperror")
    assert results.dmarc_policy == "reject"


async def test_dmarc_invalid_record_is_permerror(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=bounce")
    assert (await check(authenticator)).dmarc == "permerror"


@pytest.mark.parametrize(
    "raw",
    [
        message(b"alice@sender.example").replace(b"From: alice@sender.example\r\n", b""),
        b"From: alice@sender.example\r\n" + message(b"mallory@evil.example"),
        message(b"alice@sender.example, mallory@evil.example"),
        message(b"undisclosed-recipients:;"),
        message(b"Alice"),
        message(b"alice@exa mple..com"),
        message(b"(" * 5000 + b"alice@sender.example"),
    ],
    ids=[
        "no-from",
        "two-from-fields",
        "two-domains",
        "empty-group",
        "no-address",
        "bad-domain",
        "deep-comment",
    ],
)
async def test_dmarc_permerror_without_a_single_author_domain(
    authenticator: MessageAuthenticator, raw: bytes
) -> None:
    results = await check(authenticator, raw)
    assert (results.dmarc, results.header_from_domain) == ("permerror", None)


async def test_dmarc_accepts_several_from_addresses_in_one_domain(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=none")
    results = await check(authenticator, message(b"alice@sender.example, Bob <bob@Sender.Example>"))
    assert (results.dmarc, results.header_from_domain) == ("fail", "sender.example")


async def test_from_header_is_found_unfolded_and_case_insensitively(
    fake_dns: FakeDns, authenticator: MessageAuthenticator
) -> None:
    fake_dns.add("sender.example", "TXT", f"v=spf1 ip4:{CLIENT_IP} -all")
    fake_dns.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=reject")
    raw = b'X-Mailer: test\nFROM :\n "Alice Liddell"\n\t<alice@sender.example>\n\nbody\n'
    results = await check(authenticator, raw)
    assert (results.header_from_domain, results.dmarc) == ("sender.example", "pass")


# --- Robustness ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        bytes(range(256)) * 400,
        b"",
        b"\r\n\r\njust a body\r\n",
        b"no header here at all, not even a colon",
        b"".join(b"X-Header-%d: value\r\n" % n for n in range(10_000)) + b"\r\nbody\r\n",
        b"From: a@sender.example\r\n" + b"".join(b" folded line %d\r\n" % n for n in range(10_000)),
        b" starts with a continuation\r\nDKIM-Signature: v=1; d=x\r\n\r\n",
        b"DKIM-Signature: \xff\xfe; garbage\r\nFrom: a@sender.example\r\n\r\nbody",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=sender.example; s=sel1; h=from; bh=AAAA; b=AAAA\r\n"
        + b"".join(b"X%d: v\r\n" % n for n in range(5_000))
        + message(),
    ],
    ids=[
        "binary",
        "empty",
        "no-headers",
        "not-a-header",
        "10k-headers",
        "10k-folds",
        "leading-fold",
        "bad-signature",
        "many-headers-signed",
    ],
)
async def test_malformed_messages_return_quickly_without_raising(
    authenticator: MessageAuthenticator, raw: bytes
) -> None:
    gc.collect()  # a full collection of the test process's heap is not the message's cost
    started = time.process_time()
    results = await check(authenticator, raw)
    # CPU time, not elapsed time, and of the whole process (the check runs on a thread), so the
    # bound is far above the ~20 ms the worst shape costs alone: a loaded CI worker has seen 0.6 s,
    # and what it guards against, work quadratic in the 5,000-10,000 lines, costs minutes.
    assert time.process_time() - started < 5
    assert results.dkim in ("none", "permerror", "fail")
    assert results.dmarc in ("none", "permerror", "fail")
    assert results.header().endswith(b"\r\n")


# --- The header field ----------------------------------------------------------------------


EXAMPLE = AuthenticationResults(
    spf="pass",
    dkim="pass",
    dkim_domains=("b.example",),
    dmarc="pass",
    dmarc_policy="reject",
    header_from_domain="b.example",
    authserv_id="mx.example.net",
    spf_scope="mailfrom",
    spf_identity="a@b.example",
    dkim_signatures=(DkimSignatureResult("pass", "b.example", "sel"),),
)


def test_header_format() -> None:
    assert EXAMPLE.header() == (
        b"Authentication-Results: mx.example.net;\r\n"
        b"\tspf=pass smtp.mailfrom=a@b.example;\r\n"
        b"\tdkim=pass header.d=b.example header.s=sel;\r\n"
        b"\tdmarc=pass (p=reject) header.from=b.example\r\n"
    )


def test_header_without_signatures_policy_or_author_domain() -> None:
    header = replace(
        EXAMPLE,
        spf="none",
        spf_scope="helo",
        spf_identity="mta.b.example",
        dkim="none",
        dkim_signatures=(),
        dmarc="permerror",
        dmarc_policy=None,
        header_from_domain=None,
    ).header()
    assert header == (
        b"Authentication-Results: mx.example.net;\r\n"
        b"\tspf=none smtp.helo=mta.b.example;\r\n"
        b"\tdkim=none;\r\n"
        b"\tdmarc=permerror\r\n"
    )


def test_header_folds_long_results_below_78_characters() -> None:
    long_domain = "sub." * 8 + "b.example"  # each word fits on a line, no result does
    header = replace(
        EXAMPLE,
        spf_identity=f"alice@{long_domain}",
        dkim_signatures=(
            DkimSignatureResult("pass", long_domain, "selector2024"),
            DkimSignatureResult("fail", "b.example", "s1"),
        ),
        header_from_domain=long_domain,
    ).header()
    lines = header.split(b"\r\n")
    assert lines[-1] == b"" and lines[0] == b"Authentication-Results: mx.example.net;"
    assert all(len(line) < 78 for line in lines)
    assert all(line.startswith(b"\t") for line in lines[1:-1])
    unfolded = b" ".join(line.strip() for line in lines)
    assert f"header.d={long_domain} header.s=selector2024;".encode() in unfolded
    assert b"dkim=fail header.d=b.example header.s=s1;" in unfolded


def test_header_quotes_values_that_could_break_the_field() -> None:
    header = replace(
        EXAMPLE,
        spf_identity='"x\r\nX-Injected: 1"@b.example',
        dkim_signatures=(DkimSignatureResult("permerror", "b.example;dmarc=pass", "s (1)"),),
    ).header()
    assert b"X-Injected" in header and b"\r\nX-Injected" not in header
    assert header.count(b"\r\n") == 4
    assert b'header.d="b.example;dmarc=pass"' in header
    assert b'header.s="s?(1)"' in header


# --- Concurrency ---------------------------------------------------------------------------


async def test_concurrent_authenticators_each_use_their_own_dns(fake_dns: FakeDns) -> None:
    # Distinct domains, so every check asks its server, twice (record, then include), while
    # the other authentications run in other threads.
    senders = [f"alice@s{number}.example" for number in range(10)]
    with FakeDns() as other_dns:
        for sender in senders:
            domain = sender.partition("@")[2]
            for server in (fake_dns, other_dns):
                server.add(domain, "TXT", f"v=spf1 include:_spf.{domain} -all")
            fake_dns.add(f"_spf.{domain}", "TXT", f"v=spf1 ip4:{CLIENT_IP} -all")
            other_dns.add(f"_spf.{domain}", "TXT", "v=spf1 -all")
        first = MessageAuthenticator(DnsResolver([fake_dns.address]), "mx1.rcpt.example")
        second = MessageAuthenticator(DnsResolver([other_dns.address]), "mx2.rcpt.example")
        results = await asyncio.gather(
            *(check(a, mail_from=sender) for sender in senders for a in (first, second))
        )
    assert [r.spf for r in results] == ["pass", "fail"] * len(senders)
    assert [r.authserv_id for r in results[:2]] == ["mx1.rcpt.example", "mx2.rcpt.example"]


def test_authserv_id_must_be_a_host_name(fake_dns: FakeDns) -> None:
    with pytest.raises(ValueError, match="authserv_id"):
        MessageAuthenticator(DnsResolver([fake_dns.address]), "mx.example; spf=pass")

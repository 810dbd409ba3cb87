"""Which names the certificate covers, and when it is renewed: pure functions, tables of cases."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailmark.certificates.acme_issuer import ChallengeResponses, renewal_reason
from mailmark.certificates.names import MAX_NAMES, certificate_names, public_host


@pytest.mark.parametrize(
    ("hostname", "domains", "web_host", "expected"),
    [
        ("mx.example.com", [], None, ["mx.example.com"]),
        (
            "MX.Example.com.",
            ["b.org", "a.net"],
            None,
            [
                "mx.example.com",
                "mta-sts.a.net",
                "autoconfig.a.net",
                "mta-sts.b.org",
                "autoconfig.b.org",
            ],
        ),
        (
            "mx.example.com",
            ["example.com", "example.com"],
            "mail.example.com",
            ["mx.example.com", "mail.example.com", "mta-sts.example.com", "autoconfig.example.com"],
        ),
        # The web app on the mail host itself: named once.
        ("mx.example.com", [], "mx.example.com", ["mx.example.com"]),
    ],
)
def test_certificate_names(
    hostname: str, domains: list[str], web_host: str | None, expected: list[str]
) -> None:
    assert certificate_names(hostname, domains, web_host) == expected


def test_certificate_names_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    names = certificate_names("mx.example.com", [f"d{i:03}.test" for i in range(80)])
    assert len(names) == MAX_NAMES
    assert names[0] == "mx.example.com"
    assert "left out" in caplog.text


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://mail.example.com", "mail.example.com"),
        ("https://Mail.Example.com.:8443/app", "mail.example.com"),
        ("http://192.0.2.7:8025", None),
        ("http://[2001:db8::1]/", None),
        ("", None),
    ],
)
def test_public_host(url: str, host: str | None) -> None:
    assert public_host(url) == host


NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)


def leaf(names: list[str], lifetime_days: float, left_days: float) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    end = NOW + datetime.timedelta(days=left_days)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(end - datetime.timedelta(days=lifetime_days))
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("lifetime", "left", "due"),
    [
        (90, 31, False),  # 90 days: renewed 30 days ahead
        (90, 29, True),
        (6, 2.5, False),  # 6 days: a third, 2 days ahead
        (6, 1.5, True),
        (365, 40, False),  # a year: still 30 days ahead, not a third
        (365, 29, True),
        (90, -1, True),  # already expired
    ],
)
def test_renewal_is_due_near_the_end(lifetime: float, left: float, due: bool) -> None:
    reason = renewal_reason(leaf(["mx.example.com"], lifetime, left), ["mx.example.com"], NOW)
    assert (reason is not None) == due
    if due:
        assert "expires" in str(reason)


def test_renewal_is_due_for_a_new_name_or_no_certificate() -> None:
    current = leaf(["mx.example.com"], 90, 80)
    wanted = ["mx.example.com", "mta-sts.new.test"]
    assert renewal_reason(current, wanted, NOW) == (
        "the certificate does not name mta-sts.new.test"
    )
    assert renewal_reason(None, wanted, NOW) == "there is no certificate from the CA yet"


@pytest.mark.parametrize(
    "token",
    ["", "short", "../../etc/passwd", "a/b" * 10, "A" * 21, "A" * 257, "é" * 30, "A" * 30 + "\n"],
)
def test_challenge_tokens_outside_base64url_are_never_looked_up(tmp_path: Path, token: str) -> None:
    responses = ChallengeResponses(tmp_path)
    assert responses.get(token) is None
    with pytest.raises(ValueError):
        responses.put(token, "A" * 43 + "." + "b" * 43)

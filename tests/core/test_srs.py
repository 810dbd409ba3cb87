"""SRS addresses: the SRS0 and SRS1 forms of the paper (as postsrsd and Exim write them), hash
checks that ignore case, the day stamp's validity window, and the null sender left alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from mailmark.core.srs import MAX_AGE_DAYS, Srs, SrsError

NOW = datetime(2026, 12, 6, 4, 30, tzinfo=UTC)


def test_srs0_has_the_papers_shape_and_reverses_to_the_sender() -> None:
    srs = Srs(b"k" * 32)
    address = srs.forward("Alice.Smith@Example.org", "acme.test", NOW)
    assert re.fullmatch(
        r"SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=Example\.org=Alice\.Smith@acme\.test", address
    )
    back = srs.reverse(address, NOW + timedelta(days=3))
    assert (back.original, back.srs1) == ("Alice.Smith@Example.org", False)
    # Some MTAs fold the case of a local part: the hash check ignores case.
    assert srs.reverse(address.lower(), NOW).original == "alice.smith@example.org"
    assert srs.reverse(address.upper(), NOW).original == "ALICE.SMITH@EXAMPLE.ORG"


def test_the_null_sender_is_never_rewritten() -> None:
    assert Srs(b"k" * 32).forward("", "acme.test", NOW) == ""


def test_an_srs0_address_forwarded_again_becomes_srs1_pointing_at_the_first_forwarder() -> None:
    first = Srs(b"first-forwarder-secret")
    second = Srs(b"second-forwarder-secret")
    srs0 = first.forward("bob@example.org", "first.test", NOW)
    srs1 = second.forward(srs0, "second.test", NOW)
    hashed, stamp = srs0.split("=")[1:3]
    assert re.fullmatch(
        rf"SRS1=[A-Za-z0-9+/]{{4}}=first\.test=={re.escape(hashed)}={stamp}=example\.org=bob"
        r"@second\.test",
        srs1,
    )
    # The second forwarder sends a bounce back to the first one's SRS0 address, which decodes.
    back = second.reverse(srs1, NOW)
    assert (back.original, back.srs1) == (srs0, True)
    assert first.reverse(back.original, NOW).original == "bob@example.org"
    # A third forwarder keeps pointing at the first.
    srs1_again = Srs(b"third").forward(srs1, "third.test", NOW)
    assert srs1_again.endswith("@third.test") and "=first.test==" in srs1_again


@pytest.mark.parametrize(
    "tamper",
    [
        lambda a: a.replace("example.org", "evil.example"),
        lambda a: a.replace("=bob@", "=eve@"),
        lambda a: "SRS0=AAAA" + a[9:],
    ],
    ids=["domain", "local", "hash"],
)
def test_a_forged_address_is_refused(tamper: object) -> None:
    srs = Srs(b"k" * 32)
    address = srs.forward("bob@example.org", "acme.test", NOW)
    assert callable(tamper)
    forged = tamper(address)
    assert forged != address
    with pytest.raises(SrsError, match="not issued here"):
        srs.reverse(forged, NOW)


def test_another_servers_key_does_not_verify() -> None:
    address = Srs(b"one").forward("bob@example.org", "acme.test", NOW)
    with pytest.raises(SrsError):
        Srs(b"two").reverse(address, NOW)


def test_the_address_expires_after_the_validity_window() -> None:
    srs = Srs(b"k" * 32)
    address = srs.forward("bob@example.org", "acme.test", NOW)
    assert srs.reverse(address, NOW + timedelta(days=MAX_AGE_DAYS)).original == "bob@example.org"
    with pytest.raises(SrsError, match="expired"):
        srs.reverse(address, NOW + timedelta(days=MAX_AGE_DAYS + 1))


@pytest.mark.parametrize(
    "address", ["SRS0=abc@acme.test", "SRS0=====@acme.test", "SRS1=x@acme.test", "srs2=a@b"]
)
def test_a_damaged_address_is_refused(address: str) -> None:
    with pytest.raises(SrsError):
        Srs(b"k").reverse(address, NOW)

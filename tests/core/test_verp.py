"""The VERP return path rule (core/addresses.py): bounce+<token>@mail.<domain>."""

from __future__ import annotations

import pytest

from mailmark.core.addresses import VerpAddress, parse_verp, verp_address

TOKEN = "abcdefghijklmnopqrstuvwx"


def test_round_trip() -> None:
    address = verp_address(TOKEN, "acme.test")
    assert address == f"bounce+{TOKEN}@mail.acme.test"
    assert parse_verp(address) == VerpAddress(TOKEN, "acme.test")


@pytest.mark.parametrize(
    "address",
    [
        f"BOUNCE+{TOKEN.upper()}@MAIL.Acme.Test",
        f"bounce+{TOKEN}@mail.acme.test.",
        f"Bounce+{TOKEN[:12].upper()}{TOKEN[12:]}@mail.acme.test",
    ],
)
def test_case_does_not_matter(address: str) -> None:
    assert parse_verp(address) == VerpAddress(TOKEN, "acme.test")


@pytest.mark.parametrize(
    "address",
    [
        "",
        "bounce@mail.acme.test",
        f"bounce+{TOKEN}",
        f"bounce+{TOKEN}@acme.test",  # not on the return-path subdomain
        f"bounce+{TOKEN}@mx.acme.test",
        f"bounce+{TOKEN}@mail",
        f"bounce+{TOKEN}@mail.",
        f"bounce+{TOKEN[:-1]}@mail.acme.test",  # too short
        f"bounce+{TOKEN}x@mail.acme.test",  # too long
        f"bounce+{TOKEN[:-1]}-@mail.acme.test",
        f"bounces+{TOKEN}@mail.acme.test",
        f"sales+{TOKEN}@mail.acme.test",
        f"bounce+{TOKEN}@mail.-bad-.test",
        f"bounce+{TOKEN}@mail.[127.0.0.1]",
        f"x@y+bounce+{TOKEN}@mail.acme.test",
    ],
)
def test_other_addresses_are_not_return_paths(address: str) -> None:
    assert parse_verp(address) is None

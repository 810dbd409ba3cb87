"""The VERP return path rule (core/addresses.py): bounce+<token>@mail.<domain>, or
bounce+<token>@<the server's own name> while mail.<domain> is not published."""

from __future__ import annotations

import pytest

from mailmark.core.addresses import VerpAddress, parse_verp, return_path_domain, verp_address

TOKEN = "abcdefghijklmnopqrstuvwx"
HOST = "mx.mailmark.test"


def test_round_trip_on_the_custom_mail_from_domain() -> None:
    domain = return_path_domain("acme.test", published=True, server_hostname=HOST)
    address = verp_address(TOKEN, domain)
    assert address == f"bounce+{TOKEN}@mail.acme.test"
    assert parse_verp(address, HOST) == VerpAddress(TOKEN, "acme.test")


def test_round_trip_on_the_server_name_while_mail_from_is_not_published() -> None:
    domain = return_path_domain("acme.test", published=False, server_hostname=HOST)
    address = verp_address(TOKEN, domain)
    assert address == f"bounce+{TOKEN}@{HOST}"
    assert parse_verp(address, HOST) == VerpAddress(TOKEN, None)
    assert parse_verp(f"BOUNCE+{TOKEN.upper()}@MX.Mailmark.Test.", HOST) == VerpAddress(TOKEN, None)
    # Another server's name is nobody's return path here.
    assert parse_verp(f"bounce+{TOKEN}@mx.elsewhere.test", HOST) is None


@pytest.mark.parametrize(
    "address",
    [
        f"BOUNCE+{TOKEN.upper()}@MAIL.Acme.Test",
        f"bounce+{TOKEN}@mail.acme.test.",
        f"Bounce+{TOKEN[:12].upper()}{TOKEN[12:]}@mail.acme.test",
    ],
)
def test_case_does_not_matter(address: str) -> None:
    assert parse_verp(address, HOST) == VerpAddress(TOKEN, "acme.test")


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
        f"bounce+short@{HOST}",
        f"sales+{TOKEN}@{HOST}",
        f"bounce+{TOKEN}@sub.{HOST}",
    ],
)
def test_other_addresses_are_not_return_paths(address: str) -> None:
    assert parse_verp(address, HOST) is None

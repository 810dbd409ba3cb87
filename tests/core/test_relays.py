"""The relay host checks: host names and addresses accepted as a relay, and what is refused."""

from __future__ import annotations

import pytest

from mailmark.core.errors import InvalidInput
from mailmark.core.relays import Relay, RelayTls, check_credentials, check_relay_host


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("smtp.relay.test", "smtp.relay.test"),
        (" Email-Smtp.EU-West-1.AmazonAWS.com. ", "email-smtp.eu-west-1.amazonaws.com"),
        ("localhost", "localhost"),
        ("192.0.2.25", "192.0.2.25"),
        ("[2001:db8::25]", "2001:db8::25"),
        ("2001:DB8::25", "2001:db8::25"),
    ],
)
def test_relay_hosts(given: str, kept: str) -> None:
    assert check_relay_host(given) == kept


@pytest.mark.parametrize(
    "given",
    [
        "",
        "smtp.relay.test:587",
        "smtp://smtp.relay.test",
        "user@smtp.relay.test",
        "smtp relay.test",
        "-smtp.relay.test",
        "smtp..relay.test",
        "a" * 64 + ".test",
        ".".join(["abcdefgh"] * 30),
        "smtp.relay.test\r\nRCPT TO:<x@y>",
    ],
)
def test_not_relay_hosts(given: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_relay_host(given)
    assert caught.value.field == "host"
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("username", "password", "field"),
    [
        ("a\x00b", "x", "username"),
        ("a" * 256, "x", "username"),
        ("acme", "line\r\nAUTH", "password"),
        ("acme", "nul\x00", "password"),
        ("acme", "x" * 1025, "password"),
    ],
)
def test_credentials_that_cannot_be_sent(username: str, password: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_credentials(username, password)
    assert caught.value.field == field


def test_a_relays_password_is_not_in_its_repr() -> None:
    relay = Relay("smtp.relay.test", 587, RelayTls.STARTTLS, "acme", "hunter2-relay")
    assert "hunter2-relay" not in repr(relay)
    assert relay.route_key == "relay smtp.relay.test:587 starttls acme"

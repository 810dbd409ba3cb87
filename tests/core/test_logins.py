"""Mailbox logins (shared by IMAP and submission): right and wrong passwords, throttling per IP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailmark.bootstrap import password_hasher
from mailmark.core.errors import AuthenticationFailed, TooManyAttempts
from mailmark.core.logins import LoginThrottle, MailboxLogins, same_address
from tests.support.clock import SettableClock
from tests.support.world import World


async def test_the_mailbox_password_logs_in(world: World) -> None:
    mailbox = await world.services.logins.authenticate(
        "Sales@ACME.test", "sales-pass-1", "192.0.2.1"
    )
    assert mailbox.id == world.sales.id


@pytest.mark.parametrize(
    ("address", "password"),
    [
        ("sales@acme.test", "wrong-password"),
        ("nobody@acme.test", "sales-pass-1"),
        ("sales@other.test", "sales-pass-1"),
        ("not-an-address", "sales-pass-1"),
        ("", ""),
    ],
)
async def test_wrong_credentials_fail_without_saying_which_part(
    world: World, address: str, password: str
) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        await world.services.logins.authenticate(address, password, "192.0.2.1")
    assert caught.value.message == "Invalid credentials: wrong address or password."


async def test_an_ip_is_locked_out_after_repeated_failures_and_readmitted_later(
    world: World,
) -> None:
    clock = SettableClock()
    throttle = LoginThrottle(clock, max_failures=3, window_seconds=60)
    logins = MailboxLogins(world.services.uow, password_hasher(world.services.settings), throttle)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await logins.authenticate("sales@acme.test", "guess", "198.51.100.7")

    # Even the right password is refused while locked out: no oracle for a guesser.
    with pytest.raises(TooManyAttempts) as caught:
        await logins.authenticate("sales@acme.test", "sales-pass-1", "198.51.100.7")
    assert "try again in 60 seconds" in caught.value.message
    # Other clients are unaffected.
    assert (
        await logins.authenticate("sales@acme.test", "sales-pass-1", "198.51.100.8")
    ).id == world.sales.id

    clock.current += timedelta(seconds=61)
    assert (
        await logins.authenticate("sales@acme.test", "sales-pass-1", "198.51.100.7")
    ).id == world.sales.id


def test_a_success_clears_the_failures_of_that_ip() -> None:
    clock = SettableClock()
    throttle = LoginThrottle(clock, max_failures=2, window_seconds=60)
    throttle.failed("203.0.113.5")
    throttle.succeeded("203.0.113.5")
    throttle.failed("203.0.113.5")
    assert throttle.retry_after("203.0.113.5") is None
    throttle.failed("203.0.113.5")
    assert throttle.retry_after("203.0.113.5") == 60


def test_addresses_compare_case_insensitively() -> None:
    assert same_address("Sales@Acme.Test", "sales@acme.test")
    assert not same_address("sales@acme.test", "sales@acme.test.evil")

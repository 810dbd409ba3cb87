"""Mailbox logins (shared by IMAP and submission): right and wrong passwords, throttling per IP
and per target, bounded under parallel attempts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from mailmark.bootstrap import password_hasher
from mailmark.core.errors import AuthenticationFailed, TooManyAttempts
from mailmark.core.logins import MAX_TRACKED, LoginThrottle, MailboxLogins, same_address
from mailmark.core.passwords import Passwords
from mailmark.core.ports import PasswordHasher
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
    logins = MailboxLogins(world.services.uow, _passwords(world), throttle)
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


def _passwords(world: World) -> Passwords:
    return Passwords(password_hasher(world.services.settings), world.services.clock)


def _fail(throttle: LoginThrottle, ip: str, target: str) -> None:
    assert throttle.reserve(ip, target) is None
    throttle.finish(ip, target, failed=True)


def test_a_success_clears_only_the_failures_of_its_own_ip_and_target() -> None:
    clock = SettableClock()
    throttle = LoginThrottle(clock, max_failures=2, window_seconds=60)
    _fail(throttle, "203.0.113.5", "victim@acme.test")
    assert throttle.reserve("203.0.113.5", "own@acme.test") is None
    throttle.finish("203.0.113.5", "own@acme.test", failed=False)
    # The success with its own account did not wipe the failure against another one.
    _fail(throttle, "203.0.113.5", "own@acme.test")
    assert throttle.retry_after("203.0.113.5", "own@acme.test") == 60

    clock.current += timedelta(seconds=61)
    _fail(throttle, "203.0.113.5", "own@acme.test")
    assert throttle.reserve("203.0.113.5", "own@acme.test") is None
    throttle.finish("203.0.113.5", "own@acme.test", failed=False)
    _fail(throttle, "203.0.113.5", "victim@acme.test")
    assert throttle.retry_after("203.0.113.5", "victim@acme.test") is None


def test_failures_against_one_target_from_many_ips_lock_that_target_only() -> None:
    clock = SettableClock()
    throttle = LoginThrottle(clock, max_failures=2, window_seconds=60, max_target_failures=3)
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        _fail(throttle, ip, "Sales@Acme.test")
    assert throttle.reserve("192.0.2.9", "sales@acme.test") == 60
    assert throttle.reserve("192.0.2.9", "support@acme.test") is None


def test_attempts_in_flight_count_before_they_are_verified() -> None:
    throttle = LoginThrottle(SettableClock(), max_failures=3, window_seconds=60)
    for _ in range(3):
        assert throttle.reserve("192.0.2.1", "sales@acme.test") is None
    assert throttle.reserve("192.0.2.1", "sales@acme.test") is not None
    throttle.finish("192.0.2.1", "sales@acme.test", failed=False)
    assert throttle.reserve("192.0.2.1", "sales@acme.test") is None


def test_memory_stays_bounded_under_many_addresses() -> None:
    throttle = LoginThrottle(SettableClock(), max_failures=2, window_seconds=60)
    for n in range(MAX_TRACKED + 100):
        _fail(throttle, f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", f"u{n}@acme.test")
    assert len(throttle._by_ip._keys) <= MAX_TRACKED
    assert len(throttle._by_target._keys) <= MAX_TRACKED


class CountingHasher:
    """The real argon2 hasher, counting the verifications it is asked for (a PasswordHasher)."""

    def __init__(self, inner: PasswordHasher) -> None:
        self.inner = inner
        self.verifications = 0

    def hash(self, password: str) -> str:
        return self.inner.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        self.verifications += 1
        return self.inner.verify(password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.inner.needs_rehash(password_hash)


async def test_parallel_wrong_logins_are_verified_at_most_up_to_the_limit(world: World) -> None:
    hasher = CountingHasher(password_hasher(world.services.settings))
    throttle = LoginThrottle(SettableClock(), max_failures=10, window_seconds=60)
    logins = MailboxLogins(world.services.uow, Passwords(hasher, world.services.clock), throttle)
    outcomes = await asyncio.gather(
        *(logins.authenticate("sales@acme.test", f"guess-{n}", "198.51.100.9") for n in range(30)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, AuthenticationFailed) for o in outcomes) <= 10
    assert sum(isinstance(o, TooManyAttempts) for o in outcomes) >= 20
    assert hasher.verifications <= 10


def test_addresses_compare_case_insensitively() -> None:
    assert same_address("Sales@Acme.Test", "sales@acme.test")
    assert not same_address("sales@acme.test", "sales@acme.test.evil")


async def test_a_good_login_of_ones_own_mailbox_does_not_reset_the_guessing(
    world: World,
) -> None:
    """The attack this throttle once let through: one good login every 9 guesses kept an IP's
    count at zero, so 45 guesses went unthrottled."""
    throttle = LoginThrottle(SettableClock(), max_failures=10, window_seconds=60)
    logins = MailboxLogins(world.services.uow, _passwords(world), throttle)
    guesses = 0
    with pytest.raises(TooManyAttempts):
        for round_ in range(5):
            for n in range(9):
                guesses += 1
                with pytest.raises(AuthenticationFailed):
                    await logins.authenticate(
                        "support@acme.test", f"guess-{round_}-{n}", "192.0.2.66"
                    )
            await logins.authenticate("sales@acme.test", "sales-pass-1", "192.0.2.66")
    assert guesses == 11  # the 11th guess was refused, not verified

"""The verified-credential cache of `Passwords`: short-lived, bounded, keyed by an HMAC of the
credentials, only good for the stored hash it was checked against."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from mailmark.core.passwords import Passwords
from mailmark.security import Argon2PasswordHasher
from tests.support.clock import SettableClock


class Counting(Argon2PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost_kib=1024)
        self.verifications = 0

    def verify(self, password_hash: str, password: str) -> bool:
        self.verifications += 1
        return super().verify(password_hash, password)


@pytest.fixture
def hasher() -> Counting:
    return Counting()


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def passwords(hasher: Counting, clock: SettableClock) -> Iterator[Passwords]:
    service = Passwords(hasher, clock, workers=1, cache_seconds=300, cache_size=3)
    yield service
    service.close()


async def test_a_check_is_remembered_for_its_time_only(
    passwords: Passwords, hasher: Counting, clock: SettableClock
) -> None:
    stored = hasher.hash("right-1")
    assert (await passwords.check("mailbox:1", stored, "right-1")).valid
    clock.advance(timedelta(seconds=299))
    assert (await passwords.check("mailbox:1", stored, "right-1")).valid
    assert hasher.verifications == 1
    clock.advance(timedelta(seconds=2))
    assert (await passwords.check("mailbox:1", stored, "right-1")).valid
    assert hasher.verifications == 2


async def test_only_the_same_principal_password_and_stored_hash_hit(
    passwords: Passwords, hasher: Counting
) -> None:
    stored = hasher.hash("right-1")
    assert (await passwords.check("mailbox:1", stored, "right-1")).valid
    assert not (await passwords.check("mailbox:1", stored, "wrong-1")).valid
    assert (await passwords.check("mailbox:2", stored, "right-1")).valid
    assert hasher.verifications == 3
    # The same password hashed again (changed to the same text, or elsewhere): checked anew.
    assert (await passwords.check("mailbox:1", hasher.hash("right-1"), "right-1")).valid
    assert hasher.verifications == 4
    passwords.forget("mailbox:1")
    assert (await passwords.check("mailbox:2", stored, "right-1")).valid
    assert hasher.verifications == 4
    assert not (await passwords.check("mailbox:1", stored, "wrong-1")).valid


async def test_the_cache_is_bounded_and_holds_no_password(
    passwords: Passwords, hasher: Counting
) -> None:
    stored = hasher.hash("right-1")
    for n in range(10):
        assert (await passwords.check(f"mailbox:{n}", stored, "right-1")).valid
    assert len(passwords._verified) == 3
    assert all(len(tag) == 32 and b"right-1" not in tag for tag in passwords._verified)
    # The most recent stay; the oldest were forgotten.
    assert (await passwords.check("mailbox:9", stored, "right-1")).valid
    assert hasher.verifications == 10
    assert (await passwords.check("mailbox:0", stored, "right-1")).valid
    assert hasher.verifications == 11


async def test_a_zero_lifetime_turns_the_cache_off(hasher: Counting) -> None:
    passwords = Passwords(hasher, SettableClock(), cache_seconds=0)
    try:
        stored = hasher.hash("right-1")
        for _ in range(2):
            assert (await passwords.check("mailbox:1", stored, "right-1")).valid
        assert hasher.verifications == 2
    finally:
        passwords.close()


async def test_an_older_hash_is_rehashed_once_with_todays_parameters(hasher: Counting) -> None:
    passwords = Passwords(hasher, SettableClock())
    try:
        older = Argon2PasswordHasher(time_cost=2, memory_cost_kib=2048).hash("right-1")
        check = await passwords.check("user:1", older, "right-1")
        assert check.valid and check.new_hash is not None
        assert check.new_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        # The caller stores the new hash; the cache knows it already.
        again = await passwords.check("user:1", check.new_hash, "right-1")
        assert again.valid and again.new_hash is None
        assert hasher.verifications == 1
        assert not (await passwords.check("user:1", older, "wrong-1")).valid
    finally:
        passwords.close()


def test_the_default_parameters_are_owasps() -> None:
    stored = Argon2PasswordHasher().hash("right-1")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert Argon2PasswordHasher().needs_rehash(
        Argon2PasswordHasher(time_cost=3, memory_cost_kib=65536, parallelism=4).hash("x")
    )

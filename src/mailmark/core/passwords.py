"""Password hashing and checking for every way in (IMAP, SMTP submission, the web app).

argon2id is deliberately slow: each hash takes tens of milliseconds of CPU and its memory cost
while it runs. `Passwords` keeps that off the event loop in a pool of its own, bounded to a few
threads, so a burst of logins neither holds the loop nor takes the threads blob reads and
message parsing run on; logins beyond the pool wait their turn.

Clients that reconnect often (mbsync, fetchmail, phones) would pay the hash on every connection.
As Dovecot's auth cache does, a successful check is remembered for a short time, keyed by an
HMAC of (principal, password) under a random key made at start, so neither the password nor
a hash that could be attacked offline is kept in memory. An entry is only good for the stored
hash it was verified against: a password changed anywhere (another node, the CLI) changes the
stored hash, and the cached entry no longer matches. Changes made in this process also `forget`
the principal at once.

A hash made with weaker parameters than today's still verifies; on success it is rehashed with
the current parameters and the caller stores the new hash (`Check.new_hash`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from mailmark.core.ports import Clock, PasswordHasher

T = TypeVar("T")

# Verified credentials kept at most this many; past it the least recently used is forgotten.
CACHE_SIZE = 10_000
DEFAULT_CACHE_SECONDS = 300.0
DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class Check:
    """The outcome of a password check: `valid`, and a hash of the same password with today's
    parameters when the stored one should be replaced (else None)."""

    valid: bool
    new_hash: str | None = None


@dataclass
class _Verified:
    principal: str
    stored_hash: str
    expires_at: float


class Passwords:
    """`hash` and `check` on a bounded pool of threads, with a verified-credential cache."""

    def __init__(
        self,
        hasher: PasswordHasher,
        clock: Clock,
        *,
        workers: int = DEFAULT_WORKERS,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self._hasher = hasher
        self._clock = clock
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="argon2")
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()

    async def _run(self, function: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    async def hash(self, password: str) -> str:
        """A new hash of `password` with the current parameters."""
        return await self._run(self._hasher.hash, password)

    async def check(self, principal: str, stored_hash: str, password: str) -> Check:
        """Whether `password` matches `stored_hash`, the stored hash of `principal` (a name that
        says what kind of login it is, e.g. "mailbox:sales@acme.test")."""
        now = self._clock.now().timestamp()
        tag = self._tag(principal, password)
        cached = self._verified.get(tag)
        if cached is not None:
            if cached.expires_at > now and hmac.compare_digest(
                cached.stored_hash.encode(), stored_hash.encode()
            ):
                self._verified.move_to_end(tag)
                return Check(True)
            del self._verified[tag]
        valid = await self._run(self._hasher.verify, stored_hash, password)
        if not valid:
            return Check(False)
        new_hash: str | None = None
        if self._hasher.needs_rehash(stored_hash):
            new_hash = await self.hash(password)
        self._remember(tag, principal, new_hash or stored_hash, now)
        return Check(True, new_hash)

    async def verify(self, stored_hash: str, password: str) -> bool:
        """A check that is never cached (a dummy hash for an unknown user, a password confirmed
        before a sensitive change)."""
        return await self._run(self._hasher.verify, stored_hash, password)

    def forget(self, principal: str) -> None:
        """Drop what is cached for `principal`: its password changed or it is gone."""
        for tag in [t for t, entry in self._verified.items() if entry.principal == principal]:
            del self._verified[tag]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _tag(self, principal: str, password: str) -> bytes:
        # The NUL cannot occur in a principal, so ("a", "b\0c") and ("a\0b", "c") differ.
        message = principal.encode() + b"\x00" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def _remember(self, tag: bytes, principal: str, stored_hash: str, now: float) -> None:
        if self._cache_seconds <= 0:
            return
        self._verified[tag] = _Verified(principal, stored_hash, now + self._cache_seconds)
        self._verified.move_to_end(tag)
        while len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)


def mailbox_principal(mailbox_id: int) -> str:
    return f"mailbox:{mailbox_id}"


def user_principal(user_id: int) -> str:
    return f"user:{user_id}"

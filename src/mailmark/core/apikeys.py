"""REST API keys: creation (shown once), lookup by public prefix, revocation, and a rate limit.

A key is `dm_live_` + a 12-character public prefix + a 32-character secret, all drawn by `secrets`
from 62 letters and digits: the secret alone carries 32 × log2(62) ≈ 190 bits. Against a key that
random, a fast hash is as safe as a slow one (nobody can enumerate 2^190 candidates), so only the
SHA-256 of the whole key is stored and checked on every request without a password-hash cost.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import hmac
import math
import secrets
import string
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from mailmark.core.access import Viewer, require_manager
from mailmark.core.addresses import normalize_domain
from mailmark.core.domains import owned_domain
from mailmark.core.errors import AuthenticationFailed, InvalidInput, NotFound, RateLimited
from mailmark.core.model import ApiKey
from mailmark.core.ports import Clock, UnitOfWorkFactory

KEY_PREFIX = "dm_live_"
PUBLIC_LENGTH = 12
SECRET_LENGTH = 32
KEY_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = len(KEY_PREFIX) + PUBLIC_LENGTH + SECRET_LENGTH
MAX_NAME = 100
# How long this process trusts a looked-up key. A revocation made in this process takes effect at
# once; on PostgreSQL one made elsewhere (the CLI, another node) reaches every node through the
# node bus (`forget`), and this bound holds only for a notice lost with the bus's connection.
CACHE_SECONDS = 5.0
CACHE_SIZE = 10_000
# `last_used_at` is written at most this often per key, not on every request.
TOUCH_INTERVAL = timedelta(minutes=1)
UNAUTHORIZED = "Missing or invalid API key. Pass it as: Authorization: Bearer dm_live_..."


@dataclass(frozen=True)
class ApiPrincipal:
    """Who a request acts for: one API key, and the one domain (of one account) it may touch."""

    key_id: int
    domain_id: int
    domain_name: str
    account_id: int


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str  # the whole key; it is never stored and cannot be shown again


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    body = "".join(secrets.choice(KEY_ALPHABET) for _ in range(PUBLIC_LENGTH + SECRET_LENGTH))
    return KEY_PREFIX + body


def public_prefix(secret: str) -> str:
    """What listings show and lookups use: `dm_live_` and the public characters."""
    return secret[: len(KEY_PREFIX) + PUBLIC_LENGTH]


def _well_formed(secret: str) -> bool:
    return (
        len(secret) == KEY_LENGTH
        and secret.startswith(KEY_PREFIX)
        and all(ch in KEY_ALPHABET for ch in secret[len(KEY_PREFIX) :])
    )


class Quantity(Protocol):
    """What the bucket rule computes with: a float, or a SQL expression (see `BucketRule`)."""

    def __add__(self, other: Any, /) -> Any: ...
    def __sub__(self, other: Any, /) -> Any: ...
    def __mul__(self, other: Any, /) -> Any: ...


Q = TypeVar("Q", bound=Quantity)


@dataclass(frozen=True)
class BucketRule:
    """Each key's token bucket: it holds up to `burst` tokens and gains `rate` a second; a
    request takes one, and is refused while fewer than one are left (nothing is taken then).

    The rule is written once for both places a bucket is kept: in process (`TokenBucket`, on
    floats with `min` and `max`) and in PostgreSQL (storage/key_buckets.py, on SQL expressions
    with `least` and `greatest`, so that one statement refills and takes)."""

    rate: float
    burst: int

    def refill(
        self,
        tokens: Q,
        since: Q,
        now: Q,
        least: Callable[..., Q],
        greatest: Callable[..., Q],
    ) -> tuple[Q, Q]:
        """The tokens at `now` of a bucket that held `tokens` at `since`, and the moment it is
        then at. A clock that went back (another node's, a step of this one's) adds nothing and
        keeps the later moment: it cannot take tokens away, nor give them twice."""
        moment = greatest(since, now)
        return least(tokens + (moment - since) * self.rate, float(self.burst)), moment

    def wait(self, tokens: float) -> float:
        """Seconds until a bucket holding `tokens` (fewer than one) holds one."""
        return (1 - tokens) / self.rate


class KeyBuckets(Protocol):
    async def take(self, key_id: int, now: float) -> float:
        """Take a token from the key's bucket at `now` (seconds since the epoch): 0 when the
        request may go ahead, else the seconds until it could. Raises NotFound when the key no
        longer exists."""
        ...

    async def close(self) -> None:
        """Release what the buckets hold (connections)."""
        ...


class TokenBucket:
    """The buckets of every key, in this process (SQLite: one node; see `KeyBuckets`)."""

    def __init__(self, rule: BucketRule) -> None:
        self._rule = rule
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, at)

    async def take(self, key_id: int, now: float) -> float:
        tokens, at = self._buckets.get(key_id, (float(self._rule.burst), now))
        tokens, at = self._rule.refill(tokens, at, now, min, max)
        if tokens >= 1:
            self._buckets[key_id] = (tokens - 1, at)
            return 0.0
        self._buckets[key_id] = (tokens, at)
        return self._rule.wait(tokens)

    async def close(self) -> None:
        """Nothing to release."""


class ApiKeyService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, buckets: KeyBuckets) -> None:
        self._uow = uow
        self._clock = clock
        self._buckets = buckets
        # prefix -> (trusted until, the key's hash, principal); see CACHE_SECONDS.
        self._cache: dict[str, tuple[float, str, ApiPrincipal]] = {}
        self._touched: dict[int, datetime] = {}
        self._lookups: dict[str, asyncio.Future[tuple[float, str, ApiPrincipal]]] = {}
        # Tells the other nodes a key was revoked (set by bootstrap to the node bus); awaited
        # before `revoke` returns, so the notice is out when the caller hears "revoked".
        self.revocation_relay: Callable[[str], Awaitable[None]] | None = None

    async def create(self, domain: str, name: str = "") -> CreatedKey:
        """A new key for the domain. Its secret is returned here and never again."""
        domain_name = normalize_domain(domain)
        name = name.strip()
        if len(name) > MAX_NAME or any(ch in name for ch in "\r\n\0"):
            raise InvalidInput(
                f"A key name is at most {MAX_NAME} characters on one line.", field="name"
            )
        secret = new_secret()
        async with self._uow() as uow:
            found = await uow.domains.get_by_name(domain_name)
            if found is None or found.id is None:
                raise NotFound(f"No domain {domain_name} here.")
            key = await uow.api_keys.add(
                ApiKey(
                    found.id,
                    found.name,
                    found.account_id,
                    name,
                    public_prefix(secret),
                    key_hash(secret),
                    self._clock.now(),
                )
            )
            await uow.commit()
        return CreatedKey(key, secret)

    async def list(self, domain: str) -> list[ApiKey]:
        domain_name = normalize_domain(domain)
        async with self._uow(read_only=True) as uow:
            found = await uow.domains.get_by_name(domain_name)
            if found is None or found.id is None:
                raise NotFound(f"No domain {domain_name} here.")
            return await uow.api_keys.list_for_domain(found.id)

    async def revoke(self, prefix_or_id: str) -> ApiKey:
        """Revoke by public prefix (`dm_live_…`) or id; revoking twice is not an error."""
        async with self._uow() as uow:
            if prefix_or_id.isascii() and prefix_or_id.isdigit():
                key = await uow.api_keys.get(int(prefix_or_id))
            else:
                key = await uow.api_keys.get_by_prefix(public_prefix(prefix_or_id.strip()))
            if key is None or key.id is None:
                raise NotFound(f"No API key {prefix_or_id} here.")
            await uow.api_keys.revoke(key.id, self._clock.now())
            revoked = await uow.api_keys.get(key.id)
            await uow.commit()
        self._cache.pop(key.prefix, None)
        if self.revocation_relay is not None:
            await self.revocation_relay(key.prefix)
        assert revoked is not None
        return revoked

    def forget(self, prefixes: Iterable[str]) -> None:
        """Drop cached keys (revoked on another node): their next use looks them up again."""
        for prefix in prefixes:
            self._cache.pop(prefix, None)

    def forget_all(self) -> None:
        """Drop every cached key (revocation notices may have been missed)."""
        self._cache.clear()

    async def list_for(self, viewer: Viewer, domain: str) -> builtins.list[ApiKey]:
        require_manager(viewer, "manage API keys")
        async with self._uow(read_only=True) as uow:
            found = await owned_domain(uow, viewer, domain)
            assert found.id is not None
            return await uow.api_keys.list_for_domain(found.id)

    async def create_for(self, viewer: Viewer, domain: str, name: str) -> CreatedKey:
        require_manager(viewer, "manage API keys")
        async with self._uow(read_only=True) as uow:
            found = await owned_domain(uow, viewer, domain)
        return await self.create(found.name, name)

    async def revoke_for(self, viewer: Viewer, domain: str, key_id: int) -> ApiKey:
        """Revoke one of the domain's keys; another domain's is NotFound."""
        require_manager(viewer, "manage API keys")
        async with self._uow(read_only=True) as uow:
            found = await owned_domain(uow, viewer, domain)
            key = await uow.api_keys.get(key_id)
        if key is None or key.domain_id != found.id:
            raise NotFound(f"No API key {key_id} on {found.name}.")
        return await self.revoke(str(key_id))

    async def authenticate(self, authorization: str | None) -> ApiPrincipal:
        """The principal of an `Authorization: Bearer dm_live_…` header value, rate-limited.

        Raises AuthenticationFailed for a missing, malformed, unknown or revoked key, and
        RateLimited when the key has used up its requests for now."""
        scheme, _, secret = (authorization or "").strip().partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not _well_formed(secret):
            raise AuthenticationFailed(UNAUTHORIZED)
        prefix = public_prefix(secret)
        now = self._clock.now()
        moment = now.timestamp()
        cached = self._cache.get(prefix)
        if cached is None or cached[0] <= moment:
            # Requests that miss together share one lookup.
            lookup = self._lookups.get(prefix)
            if lookup is None:
                lookup = self._lookups[prefix] = asyncio.ensure_future(self._look_up(prefix, now))
                lookup.add_done_callback(lambda _: self._lookups.pop(prefix, None))
            cached = await asyncio.shield(lookup)
        _, stored_hash, principal = cached
        # Constant time: how much of a guessed key matched must not show in the response time.
        if not hmac.compare_digest(stored_hash, key_hash(secret)):
            raise AuthenticationFailed(UNAUTHORIZED)
        try:
            wait = await self._buckets.take(principal.key_id, moment)
        except NotFound:
            # Deleted (with its domain) since it was cached.
            self._cache.pop(prefix, None)
            raise AuthenticationFailed(UNAUTHORIZED) from None
        if wait > 0:
            raise RateLimited(
                "Too many requests for this API key. Retry after the time in Retry-After.",
                retry_after=math.ceil(wait),
            )
        await self._touch(principal.key_id, now)
        return principal

    async def _look_up(self, prefix: str, now: datetime) -> tuple[float, str, ApiPrincipal]:
        async with self._uow(read_only=True) as uow:
            key = await uow.api_keys.get_by_prefix(prefix)
        if key is None or key.id is None or key.revoked_at is not None:
            self._cache.pop(prefix, None)
            raise AuthenticationFailed(UNAUTHORIZED)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        if key.last_used_at is not None:
            self._touched.setdefault(key.id, key.last_used_at)
        principal = ApiPrincipal(key.id, key.domain_id, key.domain_name, key.account_id)
        entry = (now.timestamp() + CACHE_SECONDS, key.key_hash, principal)
        self._cache[prefix] = entry
        return entry

    async def _touch(self, key_id: int, now: datetime) -> None:
        last = self._touched.get(key_id)
        if last is not None and now - last < TOUCH_INTERVAL:
            return
        self._touched[key_id] = now
        async with self._uow() as uow:
            await uow.api_keys.touch(key_id, now)
            await uow.commit()

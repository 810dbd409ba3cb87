"""Idempotency keys for sends: a retried request with the same key gets the first answer.

The key and its answer are written in the send's own transaction (its `before_commit`), so a
crash never leaves a send without its key or a key without its send.
Keys are kept for KEY_LIFETIME; a key may be reused with a new request after that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from mailmark.core.errors import Conflict, IdempotencyKeyReused, InvalidInput
from mailmark.core.model import StoredResponse
from mailmark.core.ports import Clock, UnitOfWork, UnitOfWorkFactory

# What the send hands its `before_commit`: the answer to store is computed from it.
Result = TypeVar("Result")

MAX_KEY = 255
KEY_LIFETIME = timedelta(hours=24)
FIELD = "Idempotency-Key"


def fingerprint(body: bytes) -> str:
    """What "the same request" means: the same body, byte for byte."""
    return hashlib.sha256(body).hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY or not key.isprintable() or not key.isascii():
        raise InvalidInput(
            f"The Idempotency-Key is 1 to {MAX_KEY} printable ASCII characters.", field=FIELD
        )
    return key


class IdempotencyService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def replay(self, domain_id: int, key: str, request_hash: str) -> StoredResponse | None:
        """The stored answer for this key, or None when the key is new (or expired).

        Raises IdempotencyKeyReused when the key was used for a different request."""
        async with self._uow(read_only=True) as uow:
            stored = await uow.idempotency.get(domain_id, key)
        if stored is None or stored.created_at < self._clock.now() - KEY_LIFETIME:
            return None
        if stored.request_hash != request_hash:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request body.",
                field=FIELD,
            )
        return stored

    def recorder(
        self,
        domain_id: int,
        key: str,
        request_hash: str,
        status_code: int,
        answer: Callable[[Result], dict[str, object]],
    ) -> Callable[[UnitOfWork, Result], Awaitable[None]]:
        """A `before_commit` that stores the answer under the key, in the send's transaction.

        When a concurrent request with the same key committed first, it raises Conflict and the
        whole send rolls back: the caller then replays the stored answer."""

        async def record(uow: UnitOfWork, result: Result) -> None:
            now = self._clock.now()
            await uow.idempotency.delete_expired(domain_id, key, now - KEY_LIFETIME)
            stored = StoredResponse(domain_id, key, request_hash, status_code, answer(result), now)
            if not await uow.idempotency.add(stored):
                raise Conflict(
                    "A request with this Idempotency-Key is being processed.", field=FIELD
                )

        return record

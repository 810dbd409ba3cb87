"""The DKIM keys outgoing mail is signed with, looked up once a minute per domain."""

from __future__ import annotations

from mailmark.core.model import DkimKey
from mailmark.core.ports import Clock, UnitOfWorkFactory
from mailmark.core.states import DkimKeyState

CACHE_SECONDS = 60.0


class SigningKeys:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock
        self._cache: dict[str, tuple[float, DkimKey | None]] = {}

    async def signing_key(self, domain: str) -> DkimKey | None:
        """The domain's active RSA signing key (rsa-sha256), cached for a minute."""
        name = domain.lower()
        now = self._clock.now().timestamp()
        cached = self._cache.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._uow(read_only=True) as uow:
            found = await uow.domains.get_by_name(name)
            keys = (
                await uow.domains.dkim_keys(found.id, [DkimKeyState.ACTIVE])
                if found and found.id
                else []
            )
        rsa = [key for key in keys if key.algorithm == "rsa-sha256"]
        key = rsa[-1] if rsa else None
        self._cache[name] = (now + CACHE_SECONDS, key)
        return key

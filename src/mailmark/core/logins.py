"""Password logins for desktop clients (IMAP, SMTP submission), throttled per client IP.

One rule for every protocol: the user name is the mailbox address, the password is the mailbox's
own (argon2). Failures from one IP are counted in a sliding window; past the limit that IP is
refused without even checking the password, so a guesser cannot use the server as an oracle.
"""

from __future__ import annotations

import asyncio
import hmac
import math
from collections import deque

from mailmark.core.errors import AuthenticationFailed, TooManyAttempts
from mailmark.core.model import Mailbox
from mailmark.core.ports import Clock, PasswordHasher, UnitOfWorkFactory

# Verified against when the mailbox does not exist, so an unknown user costs the same time as a
# wrong password (no user enumeration by timing).
_DUMMY_PASSWORD = "mailmark-dummy-password"
MAX_TRACKED_IPS = 50_000


class LoginThrottle:
    """At most `max_failures` failed logins per client IP within `window_seconds`."""

    def __init__(self, clock: Clock, max_failures: int = 10, window_seconds: float = 300.0) -> None:
        self._clock = clock
        self._max_failures = max_failures
        self._window = window_seconds
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, ip: str) -> deque[float] | None:
        failures = self._failures.get(ip)
        if failures is None:
            return None
        horizon = self._clock.now().timestamp() - self._window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[ip]
            return None
        return failures

    def retry_after(self, ip: str) -> float | None:
        """Seconds until this IP may try again, or None when it may try now."""
        failures = self._recent(ip)
        if failures is None or len(failures) < self._max_failures:
            return None
        return max(0.0, failures[0] + self._window - self._clock.now().timestamp())

    def failed(self, ip: str) -> None:
        if ip not in self._failures and len(self._failures) >= MAX_TRACKED_IPS:
            self._failures.pop(next(iter(self._failures)))  # bounded memory: forget the oldest IP
        self._failures.setdefault(ip, deque()).append(self._clock.now().timestamp())

    def succeeded(self, ip: str) -> None:
        self._failures.pop(ip, None)


class MailboxLogins:
    """`authenticate(address, password, client_ip)` for every protocol that logs in as a mailbox."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        passwords: PasswordHasher,
        throttle: LoginThrottle,
    ) -> None:
        self._uow = uow
        self._passwords = passwords
        self._throttle = throttle
        self._dummy_hash: str | None = None

    async def authenticate(self, address: str, password: str, client_ip: str) -> Mailbox:
        """The mailbox, or AuthenticationFailed / TooManyAttempts (whose message says when to retry)."""
        wait = self._throttle.retry_after(client_ip)
        if wait is not None:
            raise TooManyAttempts(
                f"Too many failed logins from your address; try again in {max(1, math.ceil(wait))} seconds."
            )
        mailbox = await self._find(address)
        stored_hash = mailbox.password_hash if mailbox is not None else None
        if stored_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(self._passwords.hash, _DUMMY_PASSWORD)
            stored_hash = self._dummy_hash
        # argon2 takes tens of milliseconds of CPU: keep the event loop free for other sessions.
        valid = await asyncio.to_thread(self._passwords.verify, stored_hash, password)
        if mailbox is None or mailbox.password_hash is None or not valid:
            self._throttle.failed(client_ip)
            raise AuthenticationFailed("Invalid credentials: wrong address or password.")
        self._throttle.succeeded(client_ip)
        return mailbox

    async def _find(self, address: str) -> Mailbox | None:
        local, at, domain = address.strip().rpartition("@")
        if not at or not local or not domain or len(address) > 320:
            return None
        async with self._uow(read_only=True) as uow:
            return await uow.mailboxes.find(domain.lower(), local.lower())


def same_address(a: str, b: str) -> bool:
    """Case-insensitive address comparison in constant time (RFC 5321 §2.4: treat local parts as
    case-insensitive here, since we create them lower-case)."""
    return hmac.compare_digest(a.strip().lower().encode(), b.strip().lower().encode())

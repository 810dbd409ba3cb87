"""Password logins, throttled per client IP and per account, for every protocol.

Desktop clients (IMAP, SMTP submission) log in as a mailbox with the mailbox's own password
(argon2); the web app signs people in with theirs. Both go through one `LoginThrottle`, so a
guesser gains nothing by switching protocol. Failures are counted in a sliding window per client
IP and per target (the mailbox address or the user's email); past either limit the attempt is
refused without even checking the password, so a guesser cannot use the server as an oracle.

Nodes sharing a PostgreSQL database share the counts: every finished attempt goes to the other
nodes over the node bus (`relay` → `record`), a failure is answered only once it has gone out,
and a node catches up with the bus before it reserves an attempt, so switching node gains a
guesser nothing either.
A node started later begins with empty counts, and attempts in flight on another node are not
counted here until they finish (a burst spread over N nodes may get N in-flight guesses past).
"""

from __future__ import annotations

import hmac
import math
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mailmark.core.errors import AuthenticationFailed, TooManyAttempts
from mailmark.core.model import Mailbox
from mailmark.core.passwords import Passwords, mailbox_principal
from mailmark.core.ports import Clock, UnitOfWorkFactory

# Verified against when the mailbox does not exist, so an unknown user costs the same time as a
# wrong password (no user enumeration by timing).
_DUMMY_PASSWORD = "mailmark-dummy-password"
# Bounded memory: at most this many IPs and as many targets are tracked; past it, the one least
# recently failed is forgotten.
MAX_TRACKED = 50_000
# A target is tracked by at most this many characters (an address is at most 320).
MAX_TARGET_LENGTH = 320
# When only attempts in flight (not yet failed) fill a key's allowance, wait this long.
IN_FLIGHT_RETRY_SECONDS = 1.0


@dataclass
class _Window:
    """Recent failures of one key (as (time, the other half of the pair)) and attempts in flight."""

    failures: deque[tuple[float, str]] = field(default_factory=deque)
    in_flight: int = 0


class _Counter:
    """Failures and in-flight attempts per key, oldest-failing key forgotten first when full."""

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._keys: OrderedDict[str, _Window] = OrderedDict()

    def _recent(self, key: str, now: float) -> _Window | None:
        entry = self._keys.get(key)
        if entry is None:
            return None
        horizon = now - self._window
        while entry.failures and entry.failures[0][0] <= horizon:
            entry.failures.popleft()
        if not entry.failures and not entry.in_flight:
            del self._keys[key]
            return None
        return entry

    def wait(self, key: str, now: float) -> float | None:
        """Seconds until `key` may try again, or None when it may try now."""
        entry = self._recent(key, now)
        if entry is None or len(entry.failures) + entry.in_flight < self._limit:
            return None
        if len(entry.failures) < self._limit:
            return IN_FLIGHT_RETRY_SECONDS
        # The oldest failure that keeps the count at the limit leaves the window first.
        oldest = entry.failures[len(entry.failures) - self._limit]
        return max(0.0, oldest[0] + self._window - now)

    def reserve(self, key: str) -> None:
        entry = self._keys.get(key)
        if entry is None:
            if len(self._keys) >= MAX_TRACKED:
                self._forget_one()
            entry = self._keys[key] = _Window()
        entry.in_flight += 1

    def finish(self, key: str, other: str, now: float, *, failed: bool) -> None:
        entry = self._keys.get(key)
        if entry is None:  # forgotten meanwhile, under memory pressure
            entry = self._keys[key] = _Window(in_flight=1)
        entry.in_flight = max(0, entry.in_flight - 1)
        if failed:
            entry.failures.append((now, other))
            # Never more than the limit is needed to refuse: older entries add nothing.
            while len(entry.failures) > self._limit:
                entry.failures.popleft()
            self._keys.move_to_end(key)

    def note_failure(self, key: str, other: str, now: float) -> None:
        """Count a failure another node saw (it held no attempt in flight here)."""
        entry = self._keys.get(key)
        if entry is None:
            if len(self._keys) >= MAX_TRACKED:
                self._forget_one()
            entry = self._keys[key] = _Window()
        entry.failures.append((now, other))
        while len(entry.failures) > self._limit:
            entry.failures.popleft()
        self._keys.move_to_end(key)

    def clear_pair(self, key: str, other: str) -> None:
        """Forget the failures `key` had with `other` only (a success of that pair)."""
        entry = self._keys.get(key)
        if entry is not None and entry.failures:
            entry.failures = deque(f for f in entry.failures if f[1] != other)

    def _forget_one(self) -> None:
        for key, entry in self._keys.items():
            if not entry.in_flight:
                del self._keys[key]
                return
        self._keys.popitem(last=False)


class LoginThrottle:
    """At most `max_failures` failed logins per client IP, and `max_target_failures` per target
    (mailbox address or user email) from all IPs together, within `window_seconds`; one object
    shared by every protocol. The per-target limit is higher by default: it stops a guesser who
    spreads over many addresses, while a single noisy IP locks out only itself first.

    A login `reserve`s an attempt before the password is checked and `finish`es it after, so
    parallel attempts count before any of them is verified: a burst of guesses cannot slip past
    the limit while the first ones are still being hashed. A success clears only the failures of
    its own (IP, target) pair: a guesser who knows one password cannot wipe the failures it
    caused against other accounts."""

    def __init__(
        self,
        clock: Clock,
        max_failures: int = 10,
        window_seconds: float = 300.0,
        max_target_failures: int | None = None,
    ) -> None:
        self._clock = clock
        self._by_ip = _Counter(max_failures, window_seconds)
        self._by_target = _Counter(max_target_failures or 3 * max_failures, window_seconds)
        # Called with (ip, target, failed) after each attempt, to count it on the other nodes
        # too, and awaited until that has gone out (set by bootstrap to the node bus).
        self.relay: Callable[[str, str, bool], None] | None = None
        self.relayed: Callable[[], Awaitable[None]] | None = None
        # Awaited before an attempt is reserved, until the other nodes' attempts reported so far
        # are counted here (set by bootstrap to the node bus).
        self.caught_up: Callable[[], Awaitable[None]] | None = None

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def retry_after(self, ip: str, target: str) -> float | None:
        """Seconds until this IP may try this target again, or None when it may try now."""
        now = self._now()
        waits = [
            wait
            for wait in (self._by_ip.wait(ip, now), self._by_target.wait(_key(target), now))
            if wait is not None
        ]
        return max(waits) if waits else None

    async def reserve_counted(self, ip: str, target: str) -> float | None:
        """`reserve`, once the failures other nodes answered before now are counted here: a
        guesser told "no" on one node and trying the next at once is still refused."""
        if self.caught_up is not None:
            await self.caught_up()
        return self.reserve(ip, target)

    def reserve(self, ip: str, target: str) -> float | None:
        """Take one attempt for (ip, target), to `finish` after checking the password; or, when
        refused, the seconds to wait (and nothing is taken)."""
        wait = self.retry_after(ip, target)
        if wait is not None:
            return wait
        self._by_ip.reserve(ip)
        self._by_target.reserve(_key(target))
        return None

    def finish(self, ip: str, target: str, *, failed: bool) -> None:
        """End a reserved attempt: a failure counts against both; a success clears the pair."""
        now, key = self._now(), _key(target)
        self._by_ip.finish(ip, key, now, failed=failed)
        self._by_target.finish(key, ip, now, failed=failed)
        if not failed:
            self._by_ip.clear_pair(ip, key)
            self._by_target.clear_pair(key, ip)
        if self.relay is not None:
            self.relay(ip, key, failed)

    async def settle(self, ip: str, target: str, *, failed: bool) -> None:
        """`finish`, then wait until a failure has gone out to the other nodes, so that the
        client hears "no" only once every node counts it."""
        self.finish(ip, target, failed=failed)
        if failed and self.relayed is not None:
            await self.relayed()

    def record(self, ip: str, target: str, *, failed: bool) -> None:
        """Count an attempt another node finished, as if it had been made here."""
        now, key = self._now(), _key(target)
        if failed:
            self._by_ip.note_failure(ip, key, now)
            self._by_target.note_failure(key, ip, now)
        else:
            self._by_ip.clear_pair(ip, key)
            self._by_target.clear_pair(key, ip)


def _key(target: str) -> str:
    return target.strip().lower()[:MAX_TARGET_LENGTH]


def retry_seconds(wait: float) -> int:
    """A wait as whole seconds, at least one (for messages and Retry-After)."""
    return max(1, math.ceil(wait))


class MailboxLogins:
    """`authenticate(address, password, client_ip)` for every protocol that logs in as a mailbox."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        passwords: Passwords,
        throttle: LoginThrottle,
    ) -> None:
        self._uow = uow
        self._passwords = passwords
        self._throttle = throttle
        self._dummy_hash: str | None = None

    async def authenticate(self, address: str, password: str, client_ip: str) -> Mailbox:
        """The mailbox, or AuthenticationFailed / TooManyAttempts (whose message says when to retry)."""
        wait = await self._throttle.reserve_counted(client_ip, address)
        if wait is not None:
            raise TooManyAttempts(
                "Too many failed logins from your address; "
                f"try again in {retry_seconds(wait)} seconds.",
                retry_after=wait,
            )
        failed = True
        try:
            mailbox = await self._find(address)
            if mailbox is None or mailbox.id is None or mailbox.password_hash is None:
                if self._dummy_hash is None:
                    self._dummy_hash = await self._passwords.hash(_DUMMY_PASSWORD)
                await self._passwords.verify(self._dummy_hash, password)
                raise AuthenticationFailed("Invalid credentials: wrong address or password.")
            check = await self._passwords.check(
                mailbox_principal(mailbox.id), mailbox.password_hash, password
            )
            if not check.valid:
                raise AuthenticationFailed("Invalid credentials: wrong address or password.")
            failed = False
            if check.new_hash is not None:
                async with self._uow() as uow:
                    await uow.mailboxes.replace_password_hash(
                        mailbox.id, mailbox.password_hash, check.new_hash
                    )
                    await uow.commit()
            return mailbox
        finally:
            await self._throttle.settle(client_ip, address, failed=failed)

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

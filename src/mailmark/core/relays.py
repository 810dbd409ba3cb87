"""Relay hosts (smarthosts): where outbound mail goes when it does not go to the recipient's MX.

Many hosting providers block outbound port 25, so an installation may send everything through
one relay (settings: MAILMARK_RELAY_*), and a sending domain may have its own relay, or go
direct although a global relay is set. Relayed mail keeps the queue, its retries, bounces and
DKIM signing; only the next hop changes. A relay's password is write-only: stored sealed, used
by the outbound worker, never shown.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from mailmark.core.access import Viewer, require_manager
from mailmark.core.addresses import normalize_domain
from mailmark.core.domains import owned_domain
from mailmark.core.errors import InvalidInput, NotFound
from mailmark.core.ports import Clock, UnitOfWorkFactory

__all__ = [
    "DomainRelay",
    "Relay",
    "RelayChoice",
    "RelayService",
    "RelaySetting",
    "RelayTls",
    "default_relay_port",
]

# How long the outbound worker trusts what it read of a domain's relay (other nodes' changes
# take this long at most; this node's own take effect at once).
CACHE_SECONDS = 60.0
MAX_USERNAME = 255
MAX_PASSWORD = 1024
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")


class RelayTls(StrEnum):
    """How the connection to a relay is encrypted; never in plain text."""

    STARTTLS = "starttls"  # RFC 3207 on the submission port, required
    IMPLICIT = "implicit"  # TLS from the first byte (RFC 8314 §3.3, "submissions")


class RelayChoice(StrEnum):
    """What a domain's outbound mail does."""

    DEFAULT = "default"  # the installation's relay if one is set, else each recipient's MX
    RELAY = "relay"  # the domain's own relay
    DIRECT = "direct"  # each recipient's MX, even when the installation has a relay


def default_relay_port(tls: RelayTls) -> int:
    """587 for STARTTLS (RFC 6409), 465 for implicit TLS (RFC 8314 §7.3)."""
    return 465 if tls is RelayTls.IMPLICIT else 587


@dataclass(frozen=True)
class Relay:
    """A smarthost the outbound worker connects to."""

    host: str
    port: int
    tls: RelayTls
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def route_key(self) -> str:
        """Deliveries with the same key share connections: same host, port and login."""
        return f"relay {self.host}:{self.port} {self.tls} {self.username or ''}"


@dataclass(frozen=True)
class DomainRelay:
    """A domain's stored choice: its own relay, or direct (no row: the default)."""

    domain_id: int
    choice: RelayChoice
    updated_at: datetime
    relay: Relay | None = None


@dataclass(frozen=True)
class RelaySetting:
    """What the domain's page shows: its choice, its relay without the password, and the
    installation's relay its mail uses when the choice is the default."""

    domain: str
    choice: RelayChoice
    host: str | None
    port: int | None
    tls: RelayTls | None
    username: str | None
    password_set: bool
    installation_relay: str | None  # "host:port", or None: mail goes to each recipient's MX


def check_relay_host(host: str) -> str:
    """A host name or an IP address, without scheme or port; lower case, no final dot."""
    candidate = host.strip().lower().removesuffix(".")
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        pass
    if not candidate or len(candidate) > 253 or not _HOST_NAME.match(candidate):
        raise InvalidInput(
            f"{host.strip()[:80]!r} is not a host name such as smtp.relay.example.", field="host"
        )
    return candidate


def check_credentials(username: str | None, password: str | None) -> None:
    """SASL PLAIN separates its fields with NUL (RFC 4616 §2), and neither may span lines."""
    if username is not None and (
        len(username) > MAX_USERNAME or any(ord(c) < 32 or ord(c) == 127 for c in username)
    ):
        raise InvalidInput(
            f"The username must be at most {MAX_USERNAME} characters, without control characters.",
            field="username",
        )
    if password is not None and (
        len(password) > MAX_PASSWORD or any(c in password for c in "\0\r\n")
    ):
        raise InvalidInput(
            f"The password must be at most {MAX_PASSWORD} characters, on one line.",
            field="password",
        )


class RelayService:
    """Each domain's relay choice, and the relay the outbound worker uses for a sending domain."""

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, installation_relay: Relay | None = None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._installation_relay = installation_relay
        self._cache: dict[str, tuple[float, Relay | None]] = {}

    @property
    def installation_relay(self) -> Relay | None:
        return self._installation_relay

    async def relay_for(self, sending_domain: str) -> Relay | None:
        """The relay mail from `sending_domain` goes through, or None: to each recipient's MX.
        A domain's own relay or "direct" wins over the installation's relay."""
        name = sending_domain.lower()
        now = self._clock.now().timestamp()
        cached = self._cache.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._uow(read_only=True) as uow:
            stored = await uow.relays.get_by_domain_name(name)
        if stored is None:
            relay = self._installation_relay
        else:
            relay = stored.relay if stored.choice is RelayChoice.RELAY else None
        self._cache[name] = (now + CACHE_SECONDS, relay)
        return relay

    async def setting(self, name: str) -> RelaySetting:
        domain_name = normalize_domain(name)
        async with self._uow(read_only=True) as uow:
            domain = await uow.domains.get_by_name(domain_name)
            if domain is None or domain.id is None:
                raise NotFound(f"No domain {domain_name} here.")
            stored = await uow.relays.get(domain.id)
        return self._setting_of(domain.name, stored)

    async def use_relay(
        self,
        name: str,
        *,
        host: str,
        port: int | None = None,
        tls: RelayTls = RelayTls.STARTTLS,
        username: str | None = None,
        password: str | None = None,
    ) -> RelaySetting:
        """Send the domain's mail through this relay. Without a password, the stored one is
        kept when the host and username stay the same (the password is never shown, so a
        form that edits the port need not ask for it again)."""
        relay_host = check_relay_host(host)
        if port is not None and not 1 <= port <= 65535:
            raise InvalidInput("The port must be between 1 and 65535.", field="port")
        login = (username or "").strip() or None
        secret = password or None
        check_credentials(login, secret)
        domain_name = normalize_domain(name)
        async with self._uow() as uow:
            domain = await uow.domains.get_by_name(domain_name)
            if domain is None or domain.id is None:
                raise NotFound(f"No domain {domain_name} here.")
            if login is None:
                secret = None
            elif secret is None:
                stored = await uow.relays.get(domain.id)
                kept = stored.relay if stored is not None else None
                if kept is not None and kept.host == relay_host and kept.username == login:
                    secret = kept.password
                if secret is None:
                    raise InvalidInput(
                        f"Enter the password of {login} at {relay_host}.", field="password"
                    )
            relay = Relay(relay_host, port or default_relay_port(tls), tls, login, secret)
            stored_relay = DomainRelay(domain.id, RelayChoice.RELAY, self._clock.now(), relay)
            await uow.relays.put(stored_relay)
            await uow.commit()
        self._cache.pop(domain.name, None)
        return self._setting_of(domain.name, stored_relay)

    async def go_direct(self, name: str) -> RelaySetting:
        """Deliver the domain's mail to each recipient's MX, even with an installation relay."""
        return await self._choose(name, RelayChoice.DIRECT)

    async def use_default(self, name: str) -> RelaySetting:
        """Forget the domain's own choice: it follows the installation's setting."""
        return await self._choose(name, None)

    async def _choose(self, name: str, choice: RelayChoice | None) -> RelaySetting:
        domain_name = normalize_domain(name)
        async with self._uow() as uow:
            domain = await uow.domains.get_by_name(domain_name)
            if domain is None or domain.id is None:
                raise NotFound(f"No domain {domain_name} here.")
            stored = None
            if choice is None:
                await uow.relays.remove(domain.id)
            else:
                stored = DomainRelay(domain.id, choice, self._clock.now())
                await uow.relays.put(stored)
            await uow.commit()
        self._cache.pop(domain.name, None)
        return self._setting_of(domain.name, stored)

    # The web app's routes: owners and admins of the domain's account only.

    async def setting_for(self, viewer: Viewer, name: str) -> RelaySetting:
        await self._require(viewer, name, "see a domain's relay host")
        return await self.setting(name)

    async def use_relay_for(
        self,
        viewer: Viewer,
        name: str,
        *,
        host: str,
        port: int | None = None,
        tls: RelayTls = RelayTls.STARTTLS,
        username: str | None = None,
        password: str | None = None,
    ) -> RelaySetting:
        await self._require(viewer, name, "change a domain's relay host")
        return await self.use_relay(
            name, host=host, port=port, tls=tls, username=username, password=password
        )

    async def go_direct_for(self, viewer: Viewer, name: str) -> RelaySetting:
        await self._require(viewer, name, "change a domain's relay host")
        return await self.go_direct(name)

    async def use_default_for(self, viewer: Viewer, name: str) -> RelaySetting:
        await self._require(viewer, name, "change a domain's relay host")
        return await self.use_default(name)

    async def _require(self, viewer: Viewer, name: str, action: str) -> None:
        require_manager(viewer, action)
        async with self._uow(read_only=True) as uow:
            await owned_domain(uow, viewer, name)

    def _setting_of(self, domain: str, stored: DomainRelay | None) -> RelaySetting:
        installation = self._installation_relay
        relay = stored.relay if stored is not None else None
        return RelaySetting(
            domain=domain,
            choice=stored.choice if stored is not None else RelayChoice.DEFAULT,
            host=relay.host if relay else None,
            port=relay.port if relay else None,
            tls=relay.tls if relay else None,
            username=relay.username if relay else None,
            password_set=bool(relay and relay.password),
            installation_relay=installation.address if installation else None,
        )

"""Webhooks: a domain's events posted, signed, to URLs it registered, at least once.

Delivery is driven from the events table: every event written for a domain with webhooks gets an
outbox row per subscribed webhook in the same transaction (`core.events.record_events`), and
workers lease due rows, post them and record the outcome. A restart loses nothing; a receiver
may see an event twice and deduplicates on its stable `id`.

Targets are checked twice: when saved and again just before each connection, so that a name
re-pointed at an internal address after it was saved is refused too (DNS rebinding). The worker
connects to the very address checked here, never re-resolving the name.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from mailmark.core.access import Viewer, require_manager
from mailmark.core.domains import owned_domain
from mailmark.core.errors import InvalidInput, NotFound, TargetRefused
from mailmark.core.model import (
    Domain,
    LeasedWebhookDelivery,
    Webhook,
    WebhookDeliveryState,
    WebhookOutcome,
)
from mailmark.core.ports import Clock, HostResolver, UnitOfWork, UnitOfWorkFactory
from mailmark.core.states import EventType, WebhookDeliveryStatus

# Internal event types (core delivery, queue, delivery_reports, tracking) -> the public webhook names.
# `email.sent` is the API's own answer to a send and is not a webhook event.
PUBLIC_EVENT_TYPES: dict[str, str] = {
    event: str(event) for event in EventType if event is not EventType.SENT
}
WEBHOOK_EVENTS: tuple[str, ...] = tuple(dict.fromkeys(PUBLIC_EVENT_TYPES.values()))

# After the first attempt fails: 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h — ten
# attempts over ~24 h 42 min, then the delivery is given up and recorded as failed.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=8),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1

SIGNATURE_HEADER = "Mailmark-Signature"
SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
MAX_WEBHOOKS_PER_DOMAIN = 20
MAX_ERROR_TEXT = 500
# How many of a webhook's newest deliveries a listing shows.
RECENT_DELIVERIES = 10
# The dashboard's list of a webhook's attempts.
ATTEMPTS_SHOWN = 50
TEST_EVENT_TYPE = "webhook.test"

# RFC 6890 special-purpose ranges not already covered by ipaddress's is_private/is_reserved/...:
# CGNAT shared space (RFC 6598) is not "private" to Python but is not the Internet either.
_EXTRA_REFUSED = (
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("198.18.0.0/15"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def public_event_type(internal_type: str) -> str | None:
    """The webhook name of an internal event type, or None when webhooks are not sent it."""
    return PUBLIC_EVENT_TYPES.get(internal_type)


def event_id(event_row_id: int) -> str:
    """The event's public id: the same for every attempt, so receivers can deduplicate on it."""
    return f"evt_{event_row_id}"


def event_body(delivery: LeasedWebhookDelivery) -> bytes:
    """The JSON body posted for a delivery; the same bytes on every attempt."""
    data = dict(delivery.event_payload)
    if delivery.outbound_id is not None:
        data["emailId"] = str(delivery.outbound_id)
    return body_of(
        event_id(delivery.event_id),
        public_event_type(delivery.event_type) or delivery.event_type,
        delivery.event_created_at,
        delivery.domain_name,
        data,
    )


def body_of(
    public_id: str, event_type: str, created_at: datetime, domain: str, data: dict[str, object]
) -> bytes:
    document = {
        "id": public_id,
        "type": event_type,
        "createdAt": created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "domain": domain,
        "data": data,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<unix>." + body>`, the signature header's value.

    The timestamp is signed with the body so a captured request cannot be replayed later; a
    receiver recomputes the HMAC with its secret and compares in constant time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """Whether `header` is a valid signature of `body` made within `tolerance` seconds of `now`."""
    parts = dict(item.partition("=")[::2] for item in header.split(","))
    timestamp = parts.get("t", "")
    if not (timestamp.isascii() and timestamp.isdigit()) or abs(now - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, int(timestamp), body).partition(",v1=")[2]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def next_attempt(attempts: int, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed attempts; None once the schedule is used up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + RETRY_SCHEDULE[attempts - 1]


def outcome(
    delivery: LeasedWebhookDelivery, code: int | None, error: str | None, now: datetime
) -> WebhookOutcome:
    """A 2xx delivers; anything else (other status, redirect, network error) retries or gives up."""
    if code is not None and 200 <= code < 300:
        return WebhookOutcome(
            delivery.id,
            delivery.lease_owner,
            WebhookDeliveryStatus.DELIVERED,
            None,
            code,
            None,
            now,
        )
    if error is None:
        error = f"HTTP {code}"
    retry_at = next_attempt(delivery.attempts, now)
    status = WebhookDeliveryStatus.FAILED if retry_at is None else WebhookDeliveryStatus.PENDING
    return WebhookOutcome(
        delivery.id, delivery.lease_owner, status, retry_at, code, error[:MAX_ERROR_TEXT], now
    )


# --- targets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookTarget:
    """Where to send a request: the checked address to connect to and what to say in Host/SNI."""

    scheme: str
    host: str  # the URL's host (an IDNA name or an IP literal without brackets)
    port: int
    target: str  # path and query, "/" at least
    address: str  # the IP address the connection must go to

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    target: str


def parse_url(url: str) -> ParsedUrl:
    """Check the URL's form: http(s), a host, no user info, no fragment, bounded length."""
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"The URL must have 1 to {MAX_URL_LENGTH} characters.", field="url")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidInput("The URL must not contain spaces or control characters.", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"The URL is not valid: {exc}.", field="url") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise InvalidInput("The URL must start with https://.", field="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("The URL must not contain a user name or password.", field="url")
    if parts.fragment:
        raise InvalidInput("The URL must not contain a fragment (#...).", field="url")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidInput("The URL must name a host.", field="url")
    try:
        host = host.encode("idna").decode("ascii").lower() if not _is_ip(host) else host
    except UnicodeError:
        raise InvalidInput("The URL's host is not a valid domain name.", field="url") from None
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return ParsedUrl(scheme, host, port or (443 if scheme == "https" else 80), target)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def refusal(address: IpAddress) -> str | None:
    """Why a webhook may not connect to this address, or None when it is a public one.

    Loopback, private (RFC 1918, fc00::/7), link-local (and so 169.254.169.254, the cloud
    metadata service), CGNAT, multicast, unspecified, reserved and documentation ranges are
    internal; an IPv6 address embedding an IPv4 one (IPv4-mapped, 6to4, NAT64 well-known
    prefix) is judged by the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return refusal(address.ipv4_mapped)
        if address.sixtofour is not None:
            return refusal(address.sixtofour)
        if address in _NAT64:  # RFC 6052 §2.1
            return refusal(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("shared or special-purpose", any(address in net for net in _EXTRA_REFUSED)),
        ("not globally routable", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


class TargetPolicy:
    """Resolves a webhook URL and decides which of its addresses may be connected to.

    `allowed_networks` (MAILMARK_WEBHOOK_ALLOW_PRIVATE_NETWORKS, empty by default) exempts ranges
    from the refusal — for a receiver on loopback in tests, or a trusted internal service — and
    only addresses in them may be reached over plain http."""

    def __init__(self, resolver: HostResolver, allowed_networks: Sequence[IpNetwork] = ()) -> None:
        self._resolver = resolver
        self._allowed = tuple(allowed_networks)
        # Lookups block (up to the resolver's timeout) in threads of their own: on the loop's
        # default executor a slow DNS would hold up the blob writes of the mail paths.
        self._lookups = ThreadPoolExecutor(max_workers=16, thread_name_prefix="webhook-dns")

    def close(self) -> None:
        self._lookups.shutdown(wait=False, cancel_futures=True)

    async def check(
        self, url: str, *, allow_http: bool = False, what: str = "webhooks"
    ) -> WebhookTarget:
        """The target to connect to; InvalidInput (field "url") naming why it is refused.
        `allow_http`: plain http to public addresses too (the webmail's image proxy: remote
        images are often http, and nothing secret is sent); `what` names the requests refused."""
        parsed = parse_url(url)
        if _is_ip(parsed.host):
            addresses = [parsed.host]
        else:
            try:
                addresses = await asyncio.get_running_loop().run_in_executor(
                    self._lookups, self._resolver.addresses, parsed.host
                )
            except LookupError as exc:
                raise InvalidInput(
                    f"The URL's host {parsed.host} could not be resolved: {exc}", field="url"
                ) from None
        if not addresses:
            raise InvalidInput(f"The URL's host {parsed.host} has no address.", field="url")
        checked: list[IpAddress] = []
        for text in addresses:
            address = ipaddress.ip_address(text)
            allowed = any(address in net for net in self._allowed)
            why = None if allowed else refusal(address)
            if why is not None:
                # Every address must be acceptable: a name with one public and one internal
                # address would otherwise reach the internal one on some attempts.
                raise TargetRefused(
                    f"The URL's host {parsed.host} resolves to {address}, a {why} address; "
                    f"{what} only go to public addresses.",
                    field="url",
                )
            if parsed.scheme == "http" and not allowed and not allow_http:
                raise InvalidInput("The URL must start with https://.", field="url")
            checked.append(address)
        return WebhookTarget(
            parsed.scheme, parsed.host, parsed.port, parsed.target, str(checked[0])
        )


# --- the service -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptResult:
    """One posted request: its HTTP status, or why there is none; its duration in seconds."""

    status_code: int | None
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(Protocol):
    """Posts one signed body to a webhook URL, re-checking its target first (webhooks/poster)."""

    async def attempt(
        self, url: str, secret: str, body: bytes, event_id: str, event_type: str, timestamp: int
    ) -> AttemptResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class WebhookView:
    webhook: Webhook
    recent: list[WebhookDeliveryState]


@dataclass(frozen=True)
class CreatedWebhook:
    webhook: Webhook
    secret: str  # shown once, when the webhook is created


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class WebhookService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        targets: TargetPolicy,
        sender: WebhookSender | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.targets = targets
        # Test deliveries go out through it; set once the adapter that posts exists.
        self.sender = sender

    async def create(
        self, account_id: int, domain_id: int, url: str, events: Sequence[str] | None
    ) -> CreatedWebhook:
        """Register a webhook for the domain; the URL is resolved and checked now."""
        wanted = _event_list(events)
        await self.targets.check(url)
        secret = new_secret()
        async with self._uow() as uow:
            if len(await uow.webhooks.list_for_domain(domain_id)) >= MAX_WEBHOOKS_PER_DOMAIN:
                raise InvalidInput(
                    f"A domain can have at most {MAX_WEBHOOKS_PER_DOMAIN} webhooks.", field="url"
                )
            webhook = await uow.webhooks.add(
                Webhook(account_id, domain_id, url, wanted, secret, self._clock.now())
            )
            await uow.commit()
        return CreatedWebhook(webhook, secret)

    async def list_for_domain(self, domain_id: int) -> list[WebhookView]:
        """The domain's webhooks, oldest first, each with its newest deliveries."""
        async with self._uow(read_only=True) as uow:
            hooks = await uow.webhooks.list_for_domain(domain_id)
            recent = await uow.webhook_deliveries.recent(
                [hook.id for hook in hooks if hook.id is not None], RECENT_DELIVERIES
            )
        return [WebhookView(hook, recent.get(hook.id or 0, [])) for hook in hooks]

    async def delete(self, domain_id: int, webhook_id: int) -> None:
        """Remove the webhook and its pending deliveries; NotFound for another domain's."""
        async with self._uow() as uow:
            webhook = await uow.webhooks.get(webhook_id)
            if webhook is None or webhook.domain_id != domain_id:
                raise NotFound("Webhook not found.")
            await uow.webhooks.delete(webhook_id)
            await uow.commit()

    async def lease_due(
        self, owner: str, limit: int, lease_for: timedelta
    ) -> list[LeasedWebhookDelivery]:
        now = self._clock.now()
        # Workers poll every second: look first without the write lock (SQLite has one writer,
        # and the mail paths need it), and lease only when there is something to take.
        async with self._uow(read_only=True) as uow:
            if not await uow.webhook_deliveries.any_due(now):
                return []
        async with self._uow() as uow:
            leased = await uow.webhook_deliveries.lease_due(owner, now, limit, now + lease_for)
            await uow.commit()
        return leased

    async def record(self, outcomes: Sequence[WebhookOutcome]) -> list[int]:
        """Store the attempts' outcomes (those whose lease is still held); the ids stored."""
        if not outcomes:
            return []
        async with self._uow() as uow:
            applied = await uow.webhook_deliveries.record_outcomes(outcomes)
            await uow.commit()
        return applied

    def now(self) -> datetime:
        return self._clock.now()

    def close(self) -> None:
        self.targets.close()

    async def aclose(self) -> None:
        if self.sender is not None:
            await self.sender.close()
        self.close()

    # --- the dashboard: every call acts for a viewer of one account -----------------------------

    async def list_for(self, viewer: Viewer, domain: str) -> list[WebhookView]:
        require_manager(viewer, "manage webhooks")
        async with self._uow(read_only=True) as uow:
            found = await owned_domain(uow, viewer, domain)
        assert found.id is not None
        return await self.list_for_domain(found.id)

    async def create_for(
        self, viewer: Viewer, domain: str, url: str, events: Sequence[str] | None
    ) -> CreatedWebhook:
        require_manager(viewer, "manage webhooks")
        async with self._uow(read_only=True) as uow:
            found = await owned_domain(uow, viewer, domain)
        assert found.id is not None
        return await self.create(found.account_id, found.id, url, events)

    async def delete_for(self, viewer: Viewer, domain: str, webhook_id: int) -> None:
        require_manager(viewer, "manage webhooks")
        async with self._uow(read_only=True) as uow:
            found = await owned_domain(uow, viewer, domain)
        assert found.id is not None
        await self.delete(found.id, webhook_id)

    async def attempts(
        self, viewer: Viewer, domain: str, webhook_id: int
    ) -> list[WebhookDeliveryState]:
        """The webhook's newest deliveries, each as its last attempt left it."""
        require_manager(viewer, "manage webhooks")
        async with self._uow(read_only=True) as uow:
            _, webhook = await self._owned_webhook(uow, viewer, domain, webhook_id)
            assert webhook.id is not None
            recent = await uow.webhook_deliveries.recent([webhook.id], ATTEMPTS_SHOWN)
        return recent.get(webhook.id, [])

    async def rotate_secret(self, viewer: Viewer, domain: str, webhook_id: int) -> str:
        """A new signing secret, used from the next request on; shown this once."""
        require_manager(viewer, "manage webhooks")
        secret = new_secret()
        async with self._uow() as uow:
            _, webhook = await self._owned_webhook(uow, viewer, domain, webhook_id)
            assert webhook.id is not None
            await uow.webhooks.set_secret(webhook.id, secret)
            await uow.commit()
        return secret

    async def send_test(self, viewer: Viewer, domain: str, webhook_id: int) -> AttemptResult:
        """Post a signed `webhook.test` event to the webhook now, as deliveries are posted
        (target checked, no redirects); nothing is stored or retried."""
        require_manager(viewer, "manage webhooks")
        async with self._uow(read_only=True) as uow:
            found, webhook = await self._owned_webhook(uow, viewer, domain, webhook_id)
        if self.sender is None:
            raise InvalidInput("Test deliveries are not available on this server.")
        now = self._clock.now()
        public_id = f"evt_test_{secrets.token_hex(8)}"
        body = body_of(
            public_id,
            TEST_EVENT_TYPE,
            now,
            found.name,
            {"message": f"A test delivery from Mailmark to {webhook.url}."},
        )
        return await self.sender.attempt(
            webhook.url, webhook.secret, body, public_id, TEST_EVENT_TYPE, int(now.timestamp())
        )

    async def _owned_webhook(
        self, uow: UnitOfWork, viewer: Viewer, domain: str, webhook_id: int
    ) -> tuple[Domain, Webhook]:
        found = await owned_domain(uow, viewer, domain)
        webhook = await uow.webhooks.get(webhook_id)
        if webhook is None or webhook.domain_id != found.id:
            raise NotFound("Webhook not found.")
        return found, webhook


def _event_list(events: Sequence[str] | None) -> tuple[str, ...]:
    if events is None:
        return WEBHOOK_EVENTS
    if isinstance(events, str) or not events:
        raise InvalidInput("events must be a non-empty list of event names.", field="events")
    unknown = [name for name in events if name not in WEBHOOK_EVENTS]
    if unknown:
        raise InvalidInput(
            f"Unknown event {unknown[0]!r}; known events: {', '.join(WEBHOOK_EVENTS)}.",
            field="events",
        )
    return tuple(dict.fromkeys(events))

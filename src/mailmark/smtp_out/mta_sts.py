"""MTA-STS (RFC 8461): a recipient domain's published demand for authenticated TLS to its MX."""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import httpx

from mailmark.core.ports import Clock
from mailmark.dns_tools.resolver import DnsResolver, DnsTemporaryError

__all__ = ["MtaStsPolicies", "MtaStsPolicy", "parse_policy", "parse_sts_record"]

log = logging.getLogger(__name__)

POLICY_PATH = "/.well-known/mta-sts.txt"
# RFC 8461 §3.3: senders may bound the policy size (64 KiB suggested) and the fetch time.
MAX_POLICY_BYTES = 64 * 1024
FETCH_TIMEOUT = 10.0
# RFC 8461 §3.2: max_age is at most 31557600 s (one year).
MAX_AGE_LIMIT = 31_557_600
# A failed fetch is not retried for every message; the next attempt comes after this.
FAILED_FETCH_BACKOFF = timedelta(minutes=5)
CACHE_SIZE = 10_000
_STS_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_MX_PATTERN = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?")

Mode = Literal["enforce", "testing", "none"]


@dataclass(frozen=True)
class MtaStsPolicy:
    id: str
    mode: Mode
    mx_patterns: tuple[str, ...]
    max_age: int
    fetched_at: datetime

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"

    def expires_at(self) -> datetime:
        return self.fetched_at + timedelta(seconds=self.max_age)

    def allows(self, mx_host: str) -> bool:
        """RFC 8461 §4.1: an exact name, or `*.` matching exactly one leftmost label."""
        host = mx_host.lower().rstrip(".")
        for pattern in self.mx_patterns:
            if pattern.startswith("*."):
                label, _, rest = host.partition(".")
                if label and rest == pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False


def parse_sts_record(records: list[str]) -> str | None:
    """The id of the one `v=STSv1` TXT record (RFC 8461 §3.1), or None: none, several, invalid."""
    candidates = [record for record in records if record.startswith("v=STSv1")]
    if len(candidates) != 1:
        return None
    fields: dict[str, str] = {}
    for part in candidates[0].split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(name.strip(), value.strip())
    sts_id = fields.get("id", "")
    return sts_id if fields.get("v") == "STSv1" and _STS_ID.fullmatch(sts_id) else None


def parse_policy(text: str, sts_id: str, fetched_at: datetime) -> MtaStsPolicy | None:
    """The policy file of RFC 8461 §3.2 (`key: value` lines), or None when invalid."""
    values: dict[str, str] = {}
    mx_patterns: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "mx":
            pattern = value.lower().rstrip(".")
            if not _MX_PATTERN.fullmatch(pattern):
                return None
            mx_patterns.append(pattern)
        else:
            values.setdefault(key, value)  # RFC 8461 §3.2: the first of a repeated key counts
    mode = values.get("mode")
    max_age = values.get("max_age", "")
    if values.get("version") != "STSv1" or mode not in ("enforce", "testing", "none"):
        return None
    if not (max_age.isascii() and max_age.isdigit()) or len(max_age) > 10:
        return None
    if mode != "none" and not mx_patterns:
        return None
    return MtaStsPolicy(
        id=sts_id,
        mode=mode,  # type: ignore[arg-type]  # checked against the three modes above
        mx_patterns=tuple(mx_patterns),
        max_age=min(int(max_age), MAX_AGE_LIMIT),
        fetched_at=fetched_at,
    )


class MtaStsPolicies:
    """Discovers, fetches and caches recipient domains' policies (RFC 8461 §3, §5.1).

    `policy_origin` maps the policy host (`mta-sts.<domain>`) to the https origin to connect to;
    by default the host itself on port 443. The certificate is always checked against the policy
    host's name (RFC 8461 §3.3), with `tls` (the system's trusted roots by default).
    """

    def __init__(
        self,
        resolver: DnsResolver,
        clock: Clock,
        *,
        tls: ssl.SSLContext | None = None,
        policy_origin: Callable[[str], str] | None = None,
        timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self._resolver = resolver
        self._clock = clock
        self._tls = tls or ssl.create_default_context()
        self._policy_origin = policy_origin or (lambda host: f"https://{host}")
        self._timeout = timeout
        self._cache: OrderedDict[str, MtaStsPolicy] = OrderedDict()
        self._failed: dict[tuple[str, str], datetime] = {}
        self._running: dict[str, asyncio.Future[MtaStsPolicy | None]] = {}

    async def policy(self, domain: str) -> MtaStsPolicy | None:
        """The domain's policy in force, or None when it has none (deliver as usual)."""
        domain = domain.lower()
        running = self._running.get(domain)
        if running is None:
            # One discovery per domain at a time; concurrent deliveries share its result.
            running = asyncio.ensure_future(self._policy(domain))
            self._running[domain] = running
            running.add_done_callback(lambda _: self._running.pop(domain, None))
        return await asyncio.shield(running)

    async def _policy(self, domain: str) -> MtaStsPolicy | None:
        now = self._clock.now()
        cached = self._cache.get(domain)
        if cached is not None and cached.expires_at() <= now:
            del self._cache[domain]
            cached = None
        try:
            records = await asyncio.to_thread(self._resolver.txt, f"_mta-sts.{domain}")
        except DnsTemporaryError as exc:
            log.info("MTA-STS record of %s not readable (%s); using the cached policy", domain, exc)
            return cached
        sts_id = parse_sts_record(records)
        if sts_id is None:
            # RFC 8461 §5.1: a cached, unexpired policy stays in force without the record.
            return cached
        if cached is not None and cached.id == sts_id:
            return cached
        failed_at = self._failed.get((domain, sts_id))
        if failed_at is not None and now - failed_at < FAILED_FETCH_BACKOFF:
            return cached
        fetched = await self._fetch(domain, sts_id, now)
        if fetched is None:
            self._failed[(domain, sts_id)] = now
            if len(self._failed) > CACHE_SIZE:
                self._failed.pop(next(iter(self._failed)))
            return cached  # RFC 8461 §5.1: keep a cached policy when the new one cannot be had
        self._failed.pop((domain, sts_id), None)
        self._cache[domain] = fetched
        self._cache.move_to_end(domain)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return fetched

    async def _fetch(self, domain: str, sts_id: str, now: datetime) -> MtaStsPolicy | None:
        host = f"mta-sts.{domain}"
        url = self._policy_origin(host) + POLICY_PATH
        try:
            # RFC 8461 §3.3: HTTPS with a valid certificate for the policy host, no redirects.
            async with (
                httpx.AsyncClient(
                    verify=self._tls, follow_redirects=False, timeout=self._timeout, trust_env=False
                ) as client,
                client.stream(
                    "GET", url, headers={"Host": host}, extensions={"sni_hostname": host}
                ) as response,
            ):
                if response.status_code != 200:
                    log.info("MTA-STS policy of %s: HTTP %d", domain, response.status_code)
                    return None
                content_type = response.headers.get("content-type", "")
                if not content_type.lower().startswith("text/plain"):
                    log.info("MTA-STS policy of %s served as %r", domain, content_type)
                    return None
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_POLICY_BYTES:
                        log.info("MTA-STS policy of %s is over %d bytes", domain, MAX_POLICY_BYTES)
                        return None
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            log.info("MTA-STS policy of %s not fetched: %s", domain, exc)
            return None
        policy = parse_policy(body.decode("utf-8", "replace"), sts_id, now)
        if policy is None:
            log.info("MTA-STS policy of %s is invalid", domain)
        return policy

"""rspamd over HTTP: `POST /checkv2` on the scanner (normal worker) for each inbound message, and
`POST /learnspam` / `/learnham` on the controller to train its Bayes classifier.

The protocol (rspamd's "protocol" documentation): the message is the request body, the SMTP
envelope travels in request headers (IP, Helo, From, one Rcpt per recipient, Queue-Id), and the
answer is JSON with the proposed `action`, the `score` and the `symbols` that made it up.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

import httpx

from mailmark.core.errors import SpamFilterUnavailable
from mailmark.core.spam import NO_VERDICT, SpamScan, SpamThresholds, SpamVerdict, judge
from mailmark.dns_tools.resolver import DnsResolver, DnsTemporaryError

log = logging.getLogger(__name__)

# Symbols kept from one answer; rspamd reports a few dozen at most.
MAX_SYMBOLS = 200
# rspamd answers 208 Already Reported to a message it has learned before.
_ALREADY_LEARNED = 208


class Rspamd:
    """A `SpamFilter` and `SpamTraining` backed by one rspamd."""

    def __init__(
        self,
        *,
        url: str,
        controller_url: str | None,
        password: str | None,
        timeout: timedelta,
        thresholds: SpamThresholds,
        when_unavailable: Literal["accept", "tempfail"] = "accept",
        resolver: DnsResolver | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        self._controller_url = controller_url.rstrip("/") if controller_url else None
        self._password = password
        self._thresholds = thresholds
        self._when_unavailable = when_unavailable
        self._resolver = resolver
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout.total_seconds()), follow_redirects=False
        )

    @property
    def trains(self) -> bool:
        return self._controller_url is not None

    async def check(
        self,
        raw: bytes,
        *,
        transaction_id: str,
        client_ip: str,
        helo: str,
        mail_from: str,
        rcpt_tos: Sequence[str],
    ) -> SpamVerdict:
        headers = [("Queue-Id", transaction_id)]
        if client_ip:
            headers.append(("IP", client_ip))
            if self._resolver is not None:
                hostname = await asyncio.to_thread(self._client_hostname, client_ip)
                if hostname:
                    headers.append(("Hostname", hostname))
        if helo:
            headers.append(("Helo", helo))
        if mail_from:
            headers.append(("From", mail_from))
        headers += [("Rcpt", rcpt) for rcpt in rcpt_tos]
        try:
            response = await self._client.post(f"{self._url}/checkv2", content=raw, headers=headers)
            response.raise_for_status()
            scan = read_scan(response.json())
        except (httpx.HTTPError, ValueError) as error:
            log.warning(
                "rspamd could not check message %s (%s): %s",
                transaction_id,
                "deferred" if self._when_unavailable == "tempfail" else "accepted unchecked",
                error or type(error).__name__,
            )
            if self._when_unavailable == "tempfail":
                raise SpamFilterUnavailable(
                    "Spam filter unavailable; please try again later"
                ) from None
            return NO_VERDICT
        return judge(scan, self._thresholds)

    def _client_hostname(self, client_ip: str) -> str | None:
        """The client's forward-confirmed reverse DNS name, or None: rspamd, told no name, scores
        the missing reverse DNS itself (RDNS_NONE)."""
        assert self._resolver is not None
        try:
            address = ipaddress.ip_address(client_ip)
            names = self._resolver.records(address.reverse_pointer, "PTR")
            hosts = [name.rstrip(".") for name in names if name.rstrip(".")]
            return next(
                (host for host in hosts if str(address) in self._resolver.addresses(host)), None
            )
        except (ValueError, DnsTemporaryError):
            return None

    async def learn(self, raw: bytes, *, spam: bool) -> None:
        if self._controller_url is None:
            return
        headers = {"Password": self._password} if self._password else {}
        verb = "learnspam" if spam else "learnham"
        try:
            response = await self._client.post(
                f"{self._controller_url}/{verb}", content=raw, headers=headers
            )
        except httpx.HTTPError as error:
            raise SpamFilterUnavailable(f"rspamd {verb}: {error or type(error).__name__}") from None
        if response.status_code not in (200, _ALREADY_LEARNED):
            raise SpamFilterUnavailable(
                f"rspamd {verb}: HTTP {response.status_code} {response.text[:200]}"
            )

    async def close(self) -> None:
        await self._client.aclose()


def read_scan(answer: Any) -> SpamScan:
    """The parts of a /checkv2 answer the verdict needs; ValueError when it is not one."""
    if not isinstance(answer, dict):
        raise ValueError("rspamd answered something other than a JSON object")
    action = answer.get("action")
    score = answer.get("score")
    if not isinstance(action, str) or not isinstance(score, int | float):
        raise ValueError("rspamd's answer has no action or score")
    symbols: list[tuple[str, float]] = []
    raw_symbols = answer.get("symbols")
    if isinstance(raw_symbols, dict):
        for name, symbol in list(raw_symbols.items())[:MAX_SYMBOLS]:
            value = symbol.get("score") if isinstance(symbol, dict) else None
            if isinstance(name, str) and isinstance(value, int | float):
                symbols.append((name, float(value)))
    messages = answer.get("messages")
    message = messages.get("smtp_message") if isinstance(messages, dict) else None
    required = answer.get("required_score")
    return SpamScan(
        action=action,
        score=float(score),
        required_score=float(required) if isinstance(required, int | float) else 0.0,
        symbols=tuple(symbols),
        message=message if isinstance(message, str) else "",
    )

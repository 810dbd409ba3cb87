"""Open and click tracking (PRODUCT.md "Email Tracking", "Campaign Analytics").

A tracked message carries a 1×1 image and, with click tracking, has the links of its HTML rewritten
to redirects. Every URL names the message by its token and carries an HMAC of it under a key only
this server holds, so only URLs we wrote record anything: the token alone (it is also in the VERP
return path every recipient sees) is not enough. A redirect names a link by its index in the
message's own list of links, stored with the message: it leads nowhere else (never an open
redirect), and the URL holds no address or other personal data.

Opens and clicks by machines (Apple Mail Privacy Protection fetching every image, security
scanners following every link as the message arrives, HEAD requests) are recorded with
`machine: true`, so that rates of people can leave them out.

The endpoints answer without waiting for the database: each hit goes into a bounded in-memory
batch that a background task writes in one transaction (events and their webhook deliveries
together, `core.events.record_events`). A crash loses the hits not yet written, at most
`MAX_PENDING`; when that many wait, a new hit waits for room (the endpoints slow down to the pace
of the database) rather than the batch growing or hits being dropped.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import html
import ipaddress
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from mailmark.core.events import record_events
from mailmark.core.ports import Clock, NewEvent, UnitOfWorkFactory
from mailmark.core.states import EventType

log = logging.getLogger(__name__)

# A transparent 1×1 GIF (GIF89a, one colour, the colour transparent).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
SIGNATURE_LENGTH = 22  # 132 bits of the HMAC, base64url
# A client that loads images each time the message is shown records one open per this window.
REPEAT_WINDOW = timedelta(minutes=1)
# A click or open this soon after the message was delivered is a scanner's or a proxy's: no
# person reads and clicks that fast.
MACHINE_WINDOW = timedelta(seconds=10)
MAX_USER_AGENT = 200
MAX_TRACKED_LINKS = 100  # links of one message rewritten; the rest are left as they are
MAX_LINK = 2048
MAX_PENDING = 10_000  # hits waiting to be written; a new one waits for room
BATCH_SIZE = 500  # hits written per transaction
CACHE_SIZE = 10_000  # tracked messages kept in memory for the endpoints
_TOKEN = re.compile(r"^[a-z0-9]{24}$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# An href of an <a> or <area> element: the attribute's value quoted either way or bare.
_HREF = re.compile(
    r"(<(?:a|area)\b[^>]*?\shref\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s\"'>]+)", re.IGNORECASE
)
# User agents of image proxies and link scanners that fetch on arrival, not when a person looks.
# Apple Mail Privacy Protection fetches every image with a bare "Mozilla/5.0".
_MACHINE_AGENTS = re.compile(
    r"bot\b|spider|crawl|preview|scanner|barracuda|mimecast|proofpoint|symantec|messagelabs|"
    r"trend ?micro|fireeye|forcepoint|sophos|ironport|cisco|zscaler|python-|curl/|wget|"
    r"go-http-client|okhttp|java/|headlesschrome|facebookexternalhit|slackbot",
    re.IGNORECASE,
)
# Networks of Apple's Mail Privacy Protection proxies and of Microsoft's Safe Links and Exchange
# Online Protection scanners.
MACHINE_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "17.0.0.0/8",
        "40.92.0.0/15",
        "40.107.0.0/16",
        "52.100.0.0/14",
        "104.47.0.0/17",
    )
)


def machine_reason(
    method: str, user_agent: str | None, client: str | None, since_delivery: timedelta | None
) -> str | None:
    """Why a hit looks like a machine's rather than a person's, or None."""
    if method.upper() == "HEAD":
        return "head request"
    agent = (user_agent or "").strip()
    if not agent or agent == "Mozilla/5.0":
        return "privacy proxy"
    if _MACHINE_AGENTS.search(agent):
        return "scanner user agent"
    if client:
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(client)
            if any(address in network for network in MACHINE_NETWORKS):
                return "proxy network"
    if since_delivery is not None and since_delivery < MACHINE_WINDOW:
        return "seconds after delivery"
    return None


class LinkSigner:
    """Signs and builds the public URLs of tracking and unsubscribing; each purpose has a key of
    its own, derived from the installation's secret."""

    def __init__(self, key: bytes, public_url: str) -> None:
        self._keys = {
            purpose: hashlib.sha256(f"mailmark {purpose}\0".encode() + key).digest()
            for purpose in ("open tracking", "click tracking", "unsubscribe")
        }
        self._base = public_url.rstrip("/")
        self._scheme = urlsplit(self._base).scheme or "https"

    def base(self, host: str | None) -> str:
        """The URL links start with: the domain's tracking host when it has one."""
        return f"{self._scheme}://{host}" if host else self._base

    def sign(self, purpose: str, text: str) -> str:
        digest = hmac.new(self._keys[purpose], text.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii")[:SIGNATURE_LENGTH]

    def verify(self, purpose: str, token: str, signature: str, suffix: str = "") -> bool:
        if not _TOKEN.match(token) or not signature.isascii():
            return False  # compare_digest refuses a non-ASCII str: a forged URL, not an error
        return hmac.compare_digest(self.sign(purpose, token + suffix), signature)

    def pixel_url(self, token: str, host: str | None = None) -> str:
        return f"{self.base(host)}/t/o/{token}/{self.sign('open tracking', token)}.gif"

    def click_url(self, token: str, index: int, host: str | None = None) -> str:
        signature = self.sign("click tracking", f"{token}.{index}")
        return f"{self.base(host)}/t/c/{token}/{index}/{signature}"

    def unsubscribe_url(self, token: str, host: str | None = None) -> str:
        return f"{self.base(host)}/u/{token}/{self.sign('unsubscribe', token)}"


# RFC 8058 §3.1: the body a one-click unsubscribe POSTs.
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


def unsubscribe_headers(url: str) -> dict[str, str]:
    """The two fields of a campaign message (RFC 2369 §3.2, RFC 8058 §3.1). Both must be covered
    by the DKIM signature (RFC 8058 §4), which smtp_out/dkim.py's signed field list does."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK_BODY}


def rewrite_links(body: str, redirect: Callable[[int], str]) -> tuple[str, list[str]]:
    """The HTML with each http(s) link replaced by `redirect(index)`, and the links by index
    (one index per distinct URL, at most MAX_TRACKED_LINKS)."""
    links: list[str] = []

    def replace(match: re.Match[str]) -> str:
        quoted = match.group(2)
        url = html.unescape(quoted.strip("\"'")).strip()
        scheme = url.partition(":")[0].lower()
        if (
            scheme not in ("http", "https")
            or len(url) > MAX_LINK
            or not urlsplit(url).netloc
            or _CONTROL.search(url) is not None  # no Location header could carry it
        ):
            return match.group(0)
        if url in links:
            index = links.index(url)
        elif len(links) < MAX_TRACKED_LINKS:
            index = len(links)
            links.append(url)
        else:
            return match.group(0)
        return f'{match.group(1)}"{html.escape(redirect(index))}"'

    return _HREF.sub(replace, body), links


@dataclass(frozen=True)
class TrackedMessage:
    """What the endpoints need of an outbound message, cached by token."""

    outbound_id: int
    links: tuple[str, ...]


@dataclass(frozen=True)
class Hit:
    """One load of a pixel or follow of a link, waiting to be written."""

    type: EventType
    outbound_id: int
    at: datetime
    method: str
    user_agent: str | None
    client: str | None
    url: str | None = None


class Tracking:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, signer: LinkSigner) -> None:
        self._uow = uow
        self._clock = clock
        self.signer = signer
        self._cache: collections.OrderedDict[str, TrackedMessage] = collections.OrderedDict()
        self._pending: collections.deque[Hit] = collections.deque()
        self._added = 0
        self._done = 0
        self._progress = asyncio.Condition()
        self._arrived = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def pixel_html(self, token: str, host: str | None = None) -> str:
        """The image to append to a message's HTML."""
        return (
            f'<img src="{html.escape(self.signer.pixel_url(token, host))}" width="1" height="1" '
            'alt="" style="display:block;width:1px;height:1px;border:0">'
        )

    def tracked_links(self, body: str, token: str, host: str | None) -> tuple[str, list[str]]:
        """The HTML with its links rewritten to this message's redirects, and the links."""
        return rewrite_links(body, lambda index: self.signer.click_url(token, index, host))

    async def record_open(
        self, token: str, signature: str, *, method: str, user_agent: str | None, client: str | None
    ) -> bool:
        """Queue `email.opened` for the message of `token`; False for a URL we did not write or a
        message that is gone."""
        if not self.signer.verify("open tracking", token, signature):
            return False
        tracked = await self._message(token)
        if tracked is None:
            return False
        await self._add(
            Hit(
                EventType.OPENED, tracked.outbound_id, self._clock.now(), method, user_agent, client
            )
        )
        return True

    async def record_click(
        self,
        token: str,
        index: str,
        signature: str,
        *,
        method: str,
        user_agent: str | None,
        client: str | None,
    ) -> str | None:
        """Queue `email.clicked` and return the link to redirect to; None (and nothing recorded)
        for a URL we did not write or a link the message does not have."""
        if not (index.isascii() and index.isdigit() and len(index) <= 3):
            return None
        if not self.signer.verify("click tracking", token, signature, f".{index}"):
            return None
        tracked = await self._message(token)
        if tracked is None or int(index) >= len(tracked.links):
            return None
        url = tracked.links[int(index)]
        await self._add(
            Hit(
                EventType.CLICKED,
                tracked.outbound_id,
                self._clock.now(),
                method,
                user_agent,
                client,
                url,
            )
        )
        return url

    async def _message(self, token: str) -> TrackedMessage | None:
        cached = self._cache.get(token)
        if cached is not None:
            self._cache.move_to_end(token)
            return cached
        async with self._uow(read_only=True) as uow:
            outbound = await uow.outbound.get_by_token(token)
        if outbound is None or outbound.id is None:
            return None
        tracked = TrackedMessage(outbound.id, tuple(outbound.tracked_links or ()))
        self._cache[token] = tracked
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return tracked

    # --- the batched writer -------------------------------------------------------------------

    async def _add(self, hit: Hit) -> None:
        if len(self._pending) >= MAX_PENDING:
            async with self._progress:
                await self._progress.wait_for(lambda: len(self._pending) < MAX_PENDING)
        self._pending.append(hit)
        self._added += 1
        self._arrived.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop(), name="tracking events")

    async def flush(self) -> None:
        """Wait until every hit queued so far is written (or, on a database error, dropped)."""
        target = self._added
        async with self._progress:
            await self._progress.wait_for(lambda: self._done >= target)

    async def close(self) -> None:
        """Write what is queued, then stop the writer."""
        await self.flush()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    async def _write_loop(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._pending:
                batch = [
                    self._pending.popleft() for _ in range(min(BATCH_SIZE, len(self._pending)))
                ]
                try:
                    await self._write(batch)
                except Exception:
                    log.exception("tracking: %d opens and clicks could not be written", len(batch))
                async with self._progress:
                    self._done += len(batch)
                    self._progress.notify_all()

    async def _write(self, hits: Sequence[Hit]) -> None:
        """One transaction for the hits: each becomes an event unless its message is gone or it
        repeats an open within REPEAT_WINDOW."""
        async with self._uow() as uow:
            ids = sorted({hit.outbound_id for hit in hits})
            messages = await uow.outbound.get_many(ids)
            times = await uow.events.first_and_last(ids, [EventType.DELIVERED, EventType.OPENED])
            last_open = {
                outbound_id: last
                for (outbound_id, kind), (_, last) in times.items()
                if kind == EventType.OPENED
            }
            events: list[NewEvent] = []
            for hit in hits:
                outbound = messages.get(hit.outbound_id)
                if outbound is None:
                    continue
                if hit.type is EventType.OPENED:
                    previous = last_open.get(hit.outbound_id)
                    if previous is not None and timedelta(0) <= hit.at - previous < REPEAT_WINDOW:
                        continue
                    last_open[hit.outbound_id] = hit.at
                delivered = times.get((hit.outbound_id, EventType.DELIVERED))
                since = hit.at - delivered[0] if delivered else None
                reason = machine_reason(hit.method, hit.user_agent, hit.client, since)
                payload: dict[str, object] = {
                    "messageId": outbound.message_id_header,
                    "from": outbound.from_addr,
                    "userAgent": (hit.user_agent or "")[:MAX_USER_AGENT],
                    "machine": reason is not None,
                }
                if reason is not None:
                    payload["machineReason"] = reason
                if hit.url is not None:
                    payload["url"] = hit.url
                if outbound.batch_id is not None:
                    payload["batchId"] = outbound.batch_id
                events.append(
                    NewEvent(
                        outbound.account_id, hit.type, payload, hit.at, outbound_id=hit.outbound_id
                    )
                )
            await record_events(uow, events)
            await uow.commit()

"""The webhook worker: lease due deliveries, re-check each target, post the signed event, record.

Each attempt connects to the address `TargetPolicy.check` has just approved — the URL's name is
not resolved again by the HTTP client — with the Host header and TLS SNI (and so the certificate
check) of the name in the URL. Redirects are never followed; only a 2xx counts as delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import OrderedDict
from datetime import timedelta

import httpx

from mailmark.core.errors import InvalidInput
from mailmark.core.model import LeasedWebhookDelivery, WebhookOutcome
from mailmark.core.states import WebhookDeliveryStatus
from mailmark.core.webhooks import (
    SIGNATURE_HEADER,
    WebhookService,
    WebhookTarget,
    event_body,
    event_id,
    outcome,
    public_event_type,
    sign,
)

__all__ = ["WebhookWorker"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 10.0
MIN_LEASE = timedelta(seconds=TOTAL_TIMEOUT * 1.5)
# The receiver's answer matters only for its status: read at most this much of its body.
MAX_RESPONSE_BYTES = 4096
# Deliveries leased (and then posted concurrently) at a time: a crashed worker strands no more.
LEASE_BATCH = 16
POLL_INTERVAL = 1.0
# Connection pools kept, one per (scheme, name, address, port): a pooled TLS connection is only
# ever reused for the name whose certificate it verified. Twice the batch, so the pool evicted
# (least recently used) is never one an attempt of the running batch holds.
MAX_CLIENTS = 2 * LEASE_BATCH
USER_AGENT = "Mailmark-Webhooks/1"

_PoolKey = tuple[str, str, str, int]


class WebhookWorker:
    """Delivers pending webhook deliveries until stopped. Several workers (processes, and nodes
    on PostgreSQL) share the outbox, each leasing its own rows (FOR UPDATE SKIP LOCKED)."""

    def __init__(
        self,
        service: WebhookService,
        *,
        owner: str,
        lease_for: timedelta,
        verify: ssl.SSLContext | bool = True,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        # A batch's attempts run at once and take TOTAL_TIMEOUT at most (the re-check's DNS
        # lookup included): a shorter lease would let another worker take rows still in hand.
        if lease_for < MIN_LEASE:
            raise ValueError(f"the webhook lease must be at least {MIN_LEASE.total_seconds():g}s")
        self._service = service
        self._owner = owner
        self._lease_for = lease_for
        self._verify = verify
        self._poll_interval = poll_interval
        self._clients: OrderedDict[_PoolKey, httpx.AsyncClient] = OrderedDict()
        self._runner: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def owner(self) -> str:
        return self._owner

    def start(self) -> None:
        log.info("webhook worker %s started", self._owner)
        self._runner = asyncio.create_task(self._run(), name="webhook-worker")

    async def stop(self, grace: float = 15.0) -> None:
        """Lease nothing more and finish the batch in hand (its attempts are bounded by
        TOTAL_TIMEOUT). Rows left unrecorded stay leased and are retried after the lease."""
        self._stopping.set()
        if self._runner is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._runner), grace)
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self.close()

    async def close(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()

    async def run_once(self) -> int:
        """Lease one batch of due deliveries, attempt each, record the outcomes; how many."""
        leased = await self._service.lease_due(self._owner, LEASE_BATCH, self._lease_for)
        if not leased:
            return 0
        outcomes = await asyncio.gather(*(self._attempt(delivery) for delivery in leased))
        applied = await self._service.record(outcomes)
        if len(applied) < len(outcomes):
            log.warning(
                "%d webhook outcomes not recorded: their lease had run out",
                len(outcomes) - len(applied),
            )
        return len(leased)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                done = await self.run_once()
            except Exception:
                log.exception("webhook delivery pass failed")
                done = 0
            if done >= LEASE_BATCH:
                continue
            # New events are written by other services' transactions: poll for them.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._poll_interval)

    async def _attempt(self, delivery: LeasedWebhookDelivery) -> WebhookOutcome:
        code: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(TOTAL_TIMEOUT):
                # Resolved and checked again now: the name may point elsewhere since it was saved.
                target = await self._service.targets.check(delivery.url)
                code = await self._post(target, delivery)
        except InvalidInput as exc:
            error = f"refused: {exc.message}"
        except TimeoutError:
            error = f"timed out after {TOTAL_TIMEOUT:g}s"
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if code is not None and 300 <= code < 400:
            error = f"HTTP {code}: redirects are not followed"
        result = outcome(delivery, code, error, self._service.now())
        if result.status != WebhookDeliveryStatus.DELIVERED:
            log.info(
                "webhook %d event %s attempt %d: %s",
                delivery.webhook_id,
                event_id(delivery.event_id),
                delivery.attempts,
                result.last_error,
            )
        return result

    async def _post(self, target: WebhookTarget, delivery: LeasedWebhookDelivery) -> int:
        body = event_body(delivery)
        timestamp = int(self._service.now().timestamp())
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(delivery.secret, timestamp, body),
            "Mailmark-Event-Id": event_id(delivery.event_id),
            "Mailmark-Event-Type": public_event_type(delivery.event_type) or delivery.event_type,
        }
        address = f"[{target.address}]" if ":" in target.address else target.address
        url = f"{target.scheme}://{address}:{target.port}{target.target}"
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        client = await self._client((target.scheme, target.host, target.address, target.port))
        async with client.stream(
            "POST", url, content=body, headers=headers, extensions=extensions
        ) as response:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= MAX_RESPONSE_BYTES:
                    break
            return response.status_code

    async def _client(self, key: _PoolKey) -> httpx.AsyncClient:
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(TOTAL_TIMEOUT, connect=CONNECT_TIMEOUT),
            follow_redirects=False,
            # No proxy from the environment: the connection must go to the checked address.
            trust_env=False,
            verify=self._verify,
            # A connection for every attempt of a batch: none waits for a pooled one, which would
            # eat into its own time bound.
            limits=httpx.Limits(max_connections=LEASE_BATCH, max_keepalive_connections=4),
        )
        self._clients[key] = client
        if len(self._clients) > MAX_CLIENTS:
            _, evicted = self._clients.popitem(last=False)
            await evicted.aclose()
        return client

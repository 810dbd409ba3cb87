"""The webhook worker: lease due deliveries, post each signed event, record the outcomes.

Posting (target re-check, pinned address, no redirects) is `WebhookPoster`'s, shared with the
dashboard's test deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from datetime import timedelta

from mailmark.core.model import LeasedWebhookDelivery, WebhookOutcome
from mailmark.core.states import WebhookDeliveryStatus
from mailmark.core.webhooks import (
    WebhookService,
    event_body,
    event_id,
    outcome,
    public_event_type,
)
from mailmark.metrics import Metrics
from mailmark.webhooks.poster import TOTAL_TIMEOUT, WebhookPoster

__all__ = ["WebhookWorker"]

log = logging.getLogger(__name__)

MIN_LEASE = timedelta(seconds=TOTAL_TIMEOUT * 1.5)
# Deliveries leased (and then posted concurrently) at a time: a crashed worker strands no more.
LEASE_BATCH = 16
POLL_INTERVAL = 1.0
# Connection pools kept: twice the batch, so the pool evicted (least recently used) is never
# one an attempt of the running batch holds.
MAX_CLIENTS = 2 * LEASE_BATCH
# An attempt's result as the metrics name it: a pending delivery is one that will be retried.
_RESULT_LABELS: dict[str, str] = {
    WebhookDeliveryStatus.DELIVERED: "delivered",
    WebhookDeliveryStatus.PENDING: "retrying",
    WebhookDeliveryStatus.FAILED: "failed",
}


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
        metrics: Metrics | None = None,
    ) -> None:
        # A batch's attempts run at once and take TOTAL_TIMEOUT at most (the re-check's DNS
        # lookup included): a shorter lease would let another worker take rows still in hand.
        if lease_for < MIN_LEASE:
            raise ValueError(f"the webhook lease must be at least {MIN_LEASE.total_seconds():g}s")
        self._service = service
        self._owner = owner
        self._lease_for = lease_for
        self._poll_interval = poll_interval
        self._metrics = metrics or Metrics()
        self._poster = WebhookPoster(
            service.targets,
            verify=verify,
            max_clients=MAX_CLIENTS,
            connections_per_client=LEASE_BATCH,
        )
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
        await self._poster.close()

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
        result = await self._poster.attempt(
            delivery.url,
            delivery.secret,
            event_body(delivery),
            event_id(delivery.event_id),
            public_event_type(delivery.event_type) or delivery.event_type,
            int(self._service.now().timestamp()),
        )
        done = outcome(delivery, result.status_code, result.error, self._service.now())
        self._metrics.webhook_deliveries.labels(_RESULT_LABELS[done.status]).inc()
        if done.status != WebhookDeliveryStatus.DELIVERED:
            log.info(
                "webhook %d event %s attempt %d: %s",
                delivery.webhook_id,
                event_id(delivery.event_id),
                delivery.attempts,
                done.last_error,
            )
        return done

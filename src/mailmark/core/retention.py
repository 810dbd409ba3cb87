"""Retention: what the maintenance loop forgets once it is old enough to be of no more use.

Rows go oldest first in batches of `BATCH`, each batch its own short transaction, so that
pruning a large backlog never holds the database's write lock for long; one pass stops after
`MAX_BATCHES` and the next pass goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailmark.core.idempotency import KEY_LIFETIME
from mailmark.core.maintenance import MaintenanceTask
from mailmark.core.ports import BlobStore, Clock, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

BATCH = 500
MAX_BATCHES = 200
# Looking for unreferenced blobs lists the whole blob store: once an hour is plenty, as only
# blobs older than the grace period (a day by default) are candidates.
BLOB_SWEEP_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True)
class RetentionPolicy:
    # None: kept for ever.
    events_kept: timedelta | None
    webhook_deliveries_kept: timedelta | None
    # A blob is removed only when nothing references it and it was written this long ago: a
    # delivery writes its blob before the transaction that references it commits.
    unreferenced_blob_grace: timedelta


class Retention:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, blobs: BlobStore, policy: RetentionPolicy
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._blobs = blobs
        self._policy = policy
        self._last_blob_sweep: datetime | None = None

    def tasks(self) -> list[MaintenanceTask]:
        return [
            ("events pruned", self.prune_events),
            ("webhook deliveries pruned", self.prune_webhook_deliveries),
            ("expired idempotency keys pruned", self.prune_idempotency_keys),
            ("unreferenced blobs removed", self._remove_unreferenced_blobs_when_due),
        ]

    async def prune_events(self) -> int:
        """Events (an email's timeline, what webhooks were told) older than the policy's;
        their finished webhook deliveries go with them, pending ones keep them."""
        kept = self._policy.events_kept
        if kept is None:
            return 0
        before = self._clock.now() - kept
        return await self._in_batches(lambda uow: uow.events.delete_created_before(before, BATCH))

    async def prune_webhook_deliveries(self) -> int:
        """Delivered and given-up webhook deliveries last changed before the policy's age."""
        kept = self._policy.webhook_deliveries_kept
        if kept is None:
            return 0
        before = self._clock.now() - kept
        return await self._in_batches(
            lambda uow: uow.webhook_deliveries.delete_finished_before(before, BATCH)
        )

    async def prune_idempotency_keys(self) -> int:
        """Keys past the time a retry gets the first answer (IdempotencyService): no request
        is answered from them any more."""
        before = self._clock.now() - KEY_LIFETIME
        return await self._in_batches(
            lambda uow: uow.idempotency.delete_created_before(before, BATCH)
        )

    async def _in_batches(self, delete: Callable[[UnitOfWork], Awaitable[int]]) -> int:
        deleted = 0
        for _ in range(MAX_BATCHES):
            async with self._uow() as uow:
                done = await delete(uow)
                await uow.commit()
            deleted += done
            if done < BATCH:
                break
        return deleted

    async def _remove_unreferenced_blobs_when_due(self) -> int:
        now = self._clock.now()
        if self._last_blob_sweep is not None and now - self._last_blob_sweep < BLOB_SWEEP_INTERVAL:
            return 0
        self._last_blob_sweep = now
        return await self.remove_unreferenced_blobs()

    async def remove_unreferenced_blobs(self) -> int:
        """Blobs no row references and written before the grace period: left by a crash
        between a blob's write and its transaction, or by mail removed while a removal failed.

        A blob written within the grace period may belong to a delivery whose transaction has
        not committed yet. An older one may be put again by a delivery of the same content
        right now: such a delivery takes the blob's lock and checks that the blob is still there
        (InboundDelivery), so the last check is made under that lock, as MailStore does."""
        written_before: datetime = self._clock.now() - self._policy.unreferenced_blob_grace
        removed = 0
        async for keys in self._blobs.keys_written_before(written_before):
            async with self._uow(read_only=True) as uow:
                candidates = await uow.messages.unreferenced_blobs(keys)
            for key in candidates:
                async with self._uow() as uow:
                    await uow.messages.lock_blob(key)
                    if not await uow.messages.blob_referenced(key):
                        await self._blobs.delete(key)
                        removed += 1
                    await uow.commit()
        return removed

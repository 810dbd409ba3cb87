"""Operating the outbound queue by hand (`mailmark queue list|retry|delete`)."""

from __future__ import annotations

from dataclasses import dataclass

from mailmark.core.errors import NotFound
from mailmark.core.model import QueueEntry
from mailmark.core.ports import Clock, UnitOfWorkFactory
from mailmark.core.queue import OutboundQueue
from mailmark.core.states import WAITING_STATUSES, DeliveryStatus


@dataclass(frozen=True)
class QueueDepth:
    """The rows waiting in one status, and how long the oldest of them has been queued."""

    status: DeliveryStatus
    count: int
    oldest_age_seconds: float


class QueueAdmin:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, queue: OutboundQueue) -> None:
        self._uow = uow
        self._clock = clock
        self._queue = queue

    async def list(
        self, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[QueueEntry]:
        """Queue rows, oldest first, optionally of one status."""
        async with self._uow(read_only=True) as uow:
            return await uow.deliveries.entries(status, limit)

    async def depth(self) -> tuple[QueueDepth, ...]:
        """Every waiting status (queued, deferred, held), those without rows at zero."""
        async with self._uow(read_only=True) as uow:
            counts = {
                status: (count, oldest)
                for status, count, oldest in await uow.deliveries.waiting_counts()
            }
        now = self._clock.now()
        return tuple(
            QueueDepth(
                status,
                counts[status][0] if status in counts else 0,
                max(0.0, (now - counts[status][1]).total_seconds()) if status in counts else 0.0,
            )
            for status in WAITING_STATUSES
        )

    async def retry(self, delivery_id: int | None) -> int:
        """Make deferred or held deliveries (one, or all when None) due now; how many were."""
        async with self._uow() as uow:
            count = await uow.deliveries.retry(delivery_id, self._clock.now())
            missing = count == 0 and delivery_id is not None
            if missing and await uow.deliveries.get(delivery_id or 0) is None:
                raise NotFound(f"No delivery {delivery_id} in the queue.")
            await uow.commit()
        if count:
            self._queue.kick()
        return count

    async def delete(self, delivery_id: int) -> None:
        """Remove one delivery from the queue; it will not be attempted again."""
        async with self._uow() as uow:
            if not await uow.deliveries.delete(delivery_id):
                raise NotFound(f"No delivery {delivery_id} in the queue.")
            await uow.commit()

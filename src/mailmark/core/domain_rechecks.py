"""The background re-check of unverified domains: a person fixes their DNS and the dashboard
turns green without them pressing anything.

Each pass checks at most `batch` domains whose planned check is due (DomainService.verify plans
the next one further out after each check that leaves a domain unverified), so a server with many
abandoned domains spends a bounded share of its time, and of the nameservers', on them. Of
several nodes sharing a database only the leader runs the passes (`BackgroundLoop.leading`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mailmark.core.background import BackgroundLoop
from mailmark.core.domains import DomainService

log = logging.getLogger(__name__)

BATCH = 10


class DomainRechecker(BackgroundLoop):
    name = "domain-rechecks"

    def __init__(
        self,
        domains: DomainService,
        *,
        interval: float,
        batch: int = BATCH,
        leader: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(leader=leader)
        self._domains = domains
        self._interval = interval
        self._batch = batch

    async def run_once(self) -> int:
        """Check the due domains (one batch); how many were checked."""
        done = await self._domains.recheck_due(self._batch)
        for verification in done:
            if verification.domain.verified_at is not None and verification.required_ok:
                log.info("domain %s verified by the background check", verification.domain.name)
        return len(done)

    async def _run(self) -> None:
        while not self.stopping:
            if not self.leading:
                await self._pause(self._interval)
                continue
            try:
                checked = await self.run_once()
            except Exception:
                log.exception("domain re-check pass failed")
                checked = 0
            if checked < self._batch:
                await self._pause(self._interval)

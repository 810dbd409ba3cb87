"""Readiness: whether this process can do its work now (`GET /readyz`).

Each check is a small coroutine that raises when its part is not usable: the database answers a
trivial query, the blob store takes a write and reads it back, the queue worker runs. Checks run
at once, each bounded by a timeout, and one result serves every request of the next second, so
that a probe every second from several load balancers costs one round of checks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from mailmark.core.ports import BlobStore

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0
RESULT_SECONDS = 1.0
# The readiness write: always these bytes, so always the same key (blob keys are content hashes)
# and the store never grows.
BLOB_PROBE = b"Mailmark readiness probe: the blob store takes a write and reads it back.\n"

Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    # For people: "ok", or what failed in a few words (no addresses, paths or secrets: it is
    # answered to anyone who asks; the log has the details).
    detail: str


class Readiness:
    def __init__(
        self,
        checks: Sequence[tuple[str, Check]],
        *,
        timeout: float = CHECK_TIMEOUT_SECONDS,
        result_seconds: float = RESULT_SECONDS,
    ) -> None:
        self._checks = list(checks)
        self._timeout = timeout
        self._result_seconds = result_seconds
        self._latest: asyncio.Future[list[CheckResult]] | None = None
        self._latest_at = 0.0

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._checks]

    async def check(self) -> list[CheckResult]:
        """Every check's result: the round in progress or finished within the last second, or
        a new one."""
        loop = asyncio.get_running_loop()
        latest = self._latest
        if latest is None or (
            latest.done() and loop.time() - self._latest_at > self._result_seconds
        ):
            self._latest_at = loop.time()
            latest = self._latest = asyncio.ensure_future(self._run_all())
        return await asyncio.shield(latest)

    async def _run_all(self) -> list[CheckResult]:
        results = await asyncio.gather(*(self._run(name, check) for name, check in self._checks))
        self._latest_at = asyncio.get_running_loop().time()
        return list(results)

    async def _run(self, name: str, check: Check) -> CheckResult:
        try:
            await asyncio.wait_for(check(), self._timeout)
        except TimeoutError:
            log.warning("readiness check %s: no answer within %.1f s", name, self._timeout)
            return CheckResult(name, False, f"no answer within {self._timeout:g} s")
        except Exception as error:
            log.warning("readiness check %s failed", name, exc_info=True)
            return CheckResult(name, False, f"failed ({type(error).__name__})")
        return CheckResult(name, True, "ok")


async def check_blob_store(blobs: BlobStore) -> None:
    """Write the probe blob and read it back intact."""
    key, _ = await blobs.put(BLOB_PROBE)
    if await blobs.get(key) != BLOB_PROBE:
        raise RuntimeError("the blob store returned other bytes than were written")


def running_check(name: str, is_running: Callable[[], bool]) -> Check:
    async def check() -> None:
        if not is_running():
            raise RuntimeError(f"the {name} is not running")

    return check

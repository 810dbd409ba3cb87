"""Group commit: concurrent callers share blob writes and one SQL transaction.

Durability is what makes a mail server slow, so jobs that arrive while a batch is being written
wait for the next one, which stores all of their blobs in one `BlobStore.put_many` and records all
of them in one transaction. Nobody is answered before the transaction holding their data has
committed. One job's failure fails it alone: a batch that cannot be recorded is recorded again one
job at a time, and blobs that only failed jobs created are removed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mailmark.core.errors import MailmarkError, StorageUnavailable
from mailmark.core.ports import BlobStore

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")


@dataclass(frozen=True)
class StoredJob(Generic[J]):
    """A job whose blobs are durable: per blob, in the order given, its key and whether this
    write created it."""

    job: J
    blobs: tuple[tuple[str, bool], ...]


# Records stored jobs in one transaction: per job, its result or the error that refused it alone.
# Raising fails the whole attempt, which is then made again one job at a time.
Record = Callable[[Sequence[StoredJob[J]]], Awaitable[Sequence[R | Exception]]]


@dataclass
class _Waiting(Generic[J, R]):
    job: J
    raws: Sequence[bytes]
    done: asyncio.Future[R]


class GroupCommitter(Generic[J, R]):
    """Batches jobs of `J` into shared transactions; each caller gets its own `R` or error."""

    def __init__(
        self,
        blobs: BlobStore,
        *,
        blobs_of: Callable[[J], Sequence[bytes]],
        record: Record[J, R],
        max_blobs: int,
        name: str,
    ) -> None:
        """`max_blobs` bounds a batch's blobs; a job with more than that is a batch of its own.
        `name` says in log lines what the jobs are."""
        self._blobs = blobs
        self._blobs_of = blobs_of
        self._record = record
        self._max_blobs = max_blobs
        self._name = name
        self._pending: list[_Waiting[J, R]] = []
        self._writer: asyncio.Task[None] | None = None

    async def commit(self, job: J) -> R:
        """Store and record `job`; returns once the transaction holding it has committed.

        Cancelling the caller cancels only its wait: the job stays in its batch."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(job, self._blobs_of(job), done)
        self._pending.append(waiting)
        if self._writer is None or self._writer.done():
            # The writer is its own task: a caller that goes away (a client disconnecting) must
            # not cancel a batch that other callers are waiting on.
            self._writer = asyncio.create_task(self._write_pending())
        return await waiting.done

    async def close(self) -> None:
        """Wait for the jobs already accepted into a batch."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def _write_pending(self) -> None:
        while self._pending:
            batch = [self._pending.pop(0)]
            size = len(batch[0].raws)
            while self._pending and size + len(self._pending[0].raws) <= self._max_blobs:
                size += len(self._pending[0].raws)
                batch.append(self._pending.pop(0))
            try:
                await self._write_batch(batch)
            except Exception as exc:  # never leave a caller waiting
                log.exception("%s batch failed", self._name)
                for waiting in batch:
                    _settle(waiting, exc)

    async def _write_batch(self, batch: list[_Waiting[J, R]]) -> None:
        # The blobs are durable before the transaction that references them.
        stored = await self._blobs.put_many([raw for waiting in batch for raw in waiting.raws])
        ready: list[tuple[_Waiting[J, R], StoredJob[J]]] = []
        unstored: list[tuple[_Waiting[J, R], StoredJob[J], Exception]] = []
        offset = 0
        for waiting in batch:
            results = stored[offset : offset + len(waiting.raws)]
            offset += len(waiting.raws)
            kept = StoredJob(waiting.job, tuple(r for r in results if not isinstance(r, Exception)))
            error = next((r for r in results if isinstance(r, Exception)), None)
            if error is None:
                ready.append((waiting, kept))
            else:
                log.error("%s blob write failed: %s", self._name, error)
                unstored.append((waiting, kept, error))
        outcomes = await self._record_all([job for _, job in ready])
        recorded = [(job, outcome) for (_, job), outcome in zip(ready, outcomes, strict=True)]
        committed = [job for job, outcome in recorded if not isinstance(outcome, Exception)]
        failed = [job for job, outcome in recorded if isinstance(outcome, Exception)]
        await self._remove_orphans([*failed, *(job for _, job, _ in unstored)], committed)
        for (waiting, _), outcome in zip(ready, outcomes, strict=True):
            if isinstance(outcome, Exception) and not isinstance(outcome, MailmarkError):
                log.error("%s failed: %r", self._name, outcome)
            _settle(waiting, outcome)
        for waiting, _, error in unstored:
            _settle(waiting, error)

    async def _record_all(self, jobs: list[StoredJob[J]]) -> Sequence[R | Exception]:
        if not jobs:
            return []
        try:
            return await self._record(jobs)
        except Exception as exc:  # noqa: BLE001 - logged here or settled as the jobs' answer
            if len(jobs) == 1:
                return [exc]
            # One bad job must not fail its neighbours: record them one by one.
            log.warning(
                "%s batch of %d failed (%s); recording one by one", self._name, len(jobs), exc
            )
            return [await self._record_alone(job) for job in jobs]

    async def _record_alone(self, job: StoredJob[J]) -> R | Exception:
        try:
            [outcome] = await self._record([job])
        except Exception as exc:  # noqa: BLE001 - the error is this job's answer
            return exc
        return outcome

    async def _remove_orphans(
        self, failed: Sequence[StoredJob[J]], committed: Sequence[StoredJob[J]]
    ) -> None:
        """Delete the blobs only failed jobs created: identical content stored by a committed
        job shares the key."""
        kept = {key for job in committed for key, _ in job.blobs}
        for key in {key for job in failed for key, created in job.blobs if created} - kept:
            try:
                await self._blobs.delete(key)
            except (OSError, StorageUnavailable):
                log.exception("could not remove orphan blob %s", key)


def _settle(waiting: _Waiting[J, R], outcome: R | BaseException) -> None:
    """Answer one caller, unless it went away.

    A caller whose wait was cancelled has a cancelled future: setting it would raise
    InvalidStateError and, mid-loop, fail every later caller of the batch although their jobs were
    committed."""
    if waiting.done.done():
        return
    if isinstance(outcome, BaseException):
        waiting.done.set_exception(outcome)
    else:
        waiting.done.set_result(outcome)

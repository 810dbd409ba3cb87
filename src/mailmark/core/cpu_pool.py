"""CPU-heavy work on large messages, run in worker processes so that the event loop stays free.

MX, submission, IMAP and HTTP share one event loop, and Python threads share one interpreter
lock: parsing an 8 MiB message in a worker thread still held the loop for most of the parse (loop
lag p99 869 ms with four threads against 94 ms with four processes, issue 19). So the work whose
cost grows with the message (MIME parsing, transfer decoding, metadata and index extraction) runs
in a small process pool when the message is larger than `threshold`, and inline when it is small,
where a round trip to another process would cost more than the work.

Jobs are plain functions of bytes that return plain data: they never touch the database or the
blob store. At most `max_pending` jobs are submitted at once; others wait their turn on the loop,
so a flood of large FETCH commands holds a bounded number of message copies in the pool's pipes.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from mailmark.core.cpu_ration import charge_current_command

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_THRESHOLD = 256 * 1024


@dataclass
class CpuPoolCounters:
    """What went where, for tests, benchmarks and monitoring."""

    jobs: int = 0  # jobs run in a worker process
    inline: int = 0  # jobs small enough to run on the caller's thread
    threaded: int = 0  # large jobs run in a thread because the pool was not started
    restarts: int = 0  # pools replaced after a worker died
    # Processor seconds the jobs run off the caller's thread spent (in workers and threads).
    seconds: float = 0.0


class CpuPool:
    def __init__(
        self, *, workers: int, threshold: int = DEFAULT_THRESHOLD, max_pending: int | None = None
    ) -> None:
        self.workers = workers
        self.threshold = threshold
        self.counters = CpuPoolCounters()
        self._max_pending = max_pending or 4 * workers
        self._executor: ProcessPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def running(self) -> bool:
        return self._executor is not None

    def start(self) -> None:
        """Create the pool. Workers are spawned on the first job that needs one: a server that
        never sees a large message never pays for them."""
        if self._executor is None and self.workers > 0:
            try:
                self._executor = _executor(self.workers)
            except (ImportError, NotImplementedError, OSError) as error:
                # E.g. a service that dropped to a user who cannot read the standard library's
                # multiprocessing modules, or a system without POSIX semaphores.
                log.warning(
                    "cannot start the CPU worker processes (%s): large messages are parsed in"
                    " threads, where they can hold the event loop",
                    error,
                )
                return
            self._slots = asyncio.Semaphore(self._max_pending)

    async def stop(self) -> None:
        executor, self._executor = self._executor, None
        self._slots = None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def run(self, size: int, job: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`job(*args)` for a message of `size` bytes: inline when it is small, in a worker
        process when it is large (in a thread while the pool is not started, e.g. in the
        command-line tools). The processor time a job spends off the caller's thread is charged
        to the client command that asked for it (core/cpu_ration.py); inline, the command's own
        meter sees it."""
        if size <= self.threshold:
            self.counters.inline += 1
            return job(*args, **kwargs)
        result, seconds = await self._off_the_loop(functools.partial(job, *args, **kwargs))
        self.counters.seconds += seconds
        charge_current_command(seconds)
        return result

    async def _off_the_loop(self, call: Callable[[], T]) -> tuple[T, float]:
        if self._slots is None:
            return await self._in_thread(call)
        async with self._slots:
            executor = self._executor
            if executor is None:  # stopped while the job waited for a slot
                return await self._in_thread(call)
            self.counters.jobs += 1
            try:
                return await asyncio.wrap_future(executor.submit(_timed, call))
            except BrokenProcessPool:
                # A worker died (killed, out of memory) and the executor refuses every later job.
                # Replace it once and run the job again; a job that kills its worker twice fails.
                if self._executor is executor:
                    log.warning("a CPU worker process died; starting a new pool")
                    self.counters.restarts += 1
                    executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = _executor(self.workers)
                if self._executor is None:
                    raise
                return await asyncio.wrap_future(self._executor.submit(_timed, call))

    async def run_each(self, job: Callable[[bytes], T], items: Sequence[bytes]) -> list[T]:
        """`[job(item) for item in items]`, judged by the items' total size: many small messages
        (a campaign's batch of Sent copies) are as much work as one large one. Large batches are
        split into one chunk per worker, so that the workers share them."""
        total = sum(len(item) for item in items)
        if total <= self.threshold or self.workers <= 1 or len(items) <= 1:
            return await self.run(total, _each, job, list(items))
        chunks = _split_evenly(items, self.workers)
        done = await asyncio.gather(*(self.run(total, _each, job, chunk) for chunk in chunks))
        return [result for results in done for result in results]

    async def _in_thread(self, call: Callable[[], T]) -> tuple[T, float]:
        self.counters.threaded += 1
        return await asyncio.to_thread(_timed, call)


def _executor(workers: int) -> ProcessPoolExecutor:
    # "spawn", not "fork": the server has threads (executor, database drivers), and a forked
    # child may inherit a lock one of them held. Workers are spawned by the thread that submits
    # (the event loop's), which lives as long as the server: the parent-death signal below is
    # tied to the spawning thread, not to the process.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )


def _timed(call: Callable[[], T]) -> tuple[T, float]:
    """`call()` and the processor time of the thread (in a worker, the process) it ran on."""
    started = time.thread_time()
    result = call()
    return result, time.thread_time() - started


def _each(job: Callable[[bytes], T], items: list[bytes]) -> list[T]:
    return [job(item) for item in items]


def _split_evenly(items: Sequence[bytes], parts: int) -> list[list[bytes]]:
    """`items` in order, cut into at most `parts` runs of about the same number of bytes."""
    share = sum(len(item) for item in items) / parts
    chunks: list[list[bytes]] = [[]]
    held = 0
    for item in items:
        if chunks[-1] and held >= share and len(chunks) < parts:
            chunks.append([])
            held = 0
        chunks[-1].append(item)
        held += len(item)
    return chunks


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _worker_init(server_pid: int) -> None:
    # A Ctrl-C in the terminal reaches the whole process group: the server stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(server_pid)


def _die_with(server_pid: int) -> None:
    """End this worker when the server ends, however it ends. A server stopped cleanly shuts its
    pool down; one killed with SIGKILL cannot, and its workers would live on holding its open
    files, sockets and the pipes of whoever started it (a service manager, a test)."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("cannot tie a CPU worker's life to the server's: errno %d", ctypes.get_errno())
        return
    # The server may have died between spawning this worker and the prctl above.
    if os.getppid() != server_pid:
        os._exit(0)

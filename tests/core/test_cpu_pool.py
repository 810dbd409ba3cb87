"""The CPU pool runs large jobs in worker processes, small ones in place, and outlives a worker
that dies."""

from __future__ import annotations

import os
import signal

import pytest

from mailmark.core.cpu_pool import CpuPool
from mailmark.core.imap_structure import SectionRequest, extract

THRESHOLD = 1024


async def test_large_jobs_run_in_another_process_small_ones_in_place() -> None:
    pool = CpuPool(workers=1, threshold=THRESHOLD)
    pool.start()
    try:
        assert await pool.run(THRESHOLD, os.getpid) == os.getpid()
        assert (pool.counters.inline, pool.counters.jobs) == (1, 0)
        assert await pool.run(THRESHOLD + 1, os.getpid) != os.getpid()
        assert (pool.counters.inline, pool.counters.jobs) == (1, 1)
        raw = b"Subject: hi\r\n\r\n" + b"x" * 2 * THRESHOLD
        found = await pool.run(len(raw), extract, raw, [SectionRequest("BODY", (), "HEADER")])
        assert found.sections[(), "HEADER", ()] == b"Subject: hi\r\n\r\n"
    finally:
        await pool.stop()
    # Stopped (as in the command-line tools, which never start it): a thread does the work.
    assert await pool.run(THRESHOLD + 1, os.getpid) == os.getpid()
    assert pool.counters.threaded == 1


async def test_a_worker_that_dies_is_replaced() -> None:
    pool = CpuPool(workers=1, threshold=THRESHOLD)
    pool.start()
    try:
        worker = await pool.run(THRESHOLD + 1, os.getpid)
        os.kill(worker, signal.SIGKILL)
        # The job that meets the broken pool runs again in a new one.
        assert await pool.run(THRESHOLD + 1, os.getpid) not in (worker, os.getpid())
        assert pool.counters.restarts == 1
    finally:
        await pool.stop()


async def test_an_exception_in_a_job_reaches_the_caller() -> None:
    pool = CpuPool(workers=1, threshold=THRESHOLD)
    pool.start()
    try:
        with pytest.raises(ValueError, match="invalid literal"):
            await pool.run(THRESHOLD + 1, int, "not a number")
        assert pool.counters.restarts == 0
    finally:
        await pool.stop()


def item_length(item: bytes) -> tuple[int, int]:
    """A job that says where it ran."""
    return len(item), os.getpid()


async def test_many_small_items_are_one_large_job_shared_by_the_workers() -> None:
    pool = CpuPool(workers=2, threshold=THRESHOLD)
    pool.start()
    try:
        few = [b"x" * 10, b"y" * 20]
        assert await pool.run_each(item_length, few) == [(10, os.getpid()), (20, os.getpid())]
        assert (pool.counters.inline, pool.counters.jobs) == (1, 0)
        # Each small, together over the threshold: split in two, answers in the items' order.
        many = [b"z" * (n % 7 + 100) for n in range(60)]
        results = await pool.run_each(item_length, many)
        assert [size for size, _ in results] == [len(item) for item in many]
        assert os.getpid() not in {pid for _, pid in results}
        assert pool.counters.jobs == 2
    finally:
        await pool.stop()

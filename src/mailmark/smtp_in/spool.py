"""Where mail data waits while it is received, and how much of it the process holds in memory.

A session receiving DATA keeps at most `threshold` bytes in memory; beyond that the data goes to
an unlinked temporary file (0600, in the data directory), so twenty slow clients each sending a
24 MiB message cost twenty small buffers, not half a gigabyte. Once the data is complete, the
message is loaded for the handler (SPF, DKIM, delivery take bytes) under a process-wide byte
budget: sessions whose messages do not fit wait until others finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass
class SpoolCounters:
    """What the sessions of one listener hold, for tests, benchmarks and monitoring."""

    buffered: int = 0  # bytes of mail data now held in memory while being received
    peak_buffered: int = 0  # the most one session held in memory while receiving
    spooled: int = 0  # messages that went to a temporary file
    loaded: int = 0  # bytes of complete messages now loaded for their handler
    peak_loaded: int = 0


@dataclass(frozen=True)
class DataSpooling:
    """How the SMTP listeners of one process keep mail data: shared by all of them."""

    threshold: int
    directory: Path
    budget: MemoryBudget
    counters: SpoolCounters

    @classmethod
    def create(cls, *, threshold: int, directory: Path, memory: int) -> DataSpooling:
        counters = SpoolCounters()
        return cls(threshold, directory, MemoryBudget(memory, counters), counters)

    def spool(self) -> MessageSpool:
        return MessageSpool(
            threshold=self.threshold, directory=self.directory, counters=self.counters
        )


class MessageSpool:
    """One message's data as it is received: in memory up to `threshold`, then in a file."""

    def __init__(self, *, threshold: int, directory: Path, counters: SpoolCounters) -> None:
        self._threshold = threshold
        self._directory = directory
        self._counters = counters
        self._memory = bytearray()
        self._file: IO[bytes] | None = None
        self.size = 0

    async def write(self, piece: bytes) -> None:
        self.size += len(piece)
        if self._file is None and len(self._memory) + len(piece) <= self._threshold:
            self._memory += piece
            self._counters.buffered += len(piece)
            self._counters.peak_buffered = max(self._counters.peak_buffered, len(self._memory))
            return
        if self._file is None:
            self._file = await asyncio.to_thread(self._open)
            held, self._memory = bytes(self._memory), bytearray()
            self._counters.buffered -= len(held)
            self._counters.spooled += 1
            piece = held + piece
        await asyncio.to_thread(self._file.write, piece)

    def _open(self) -> IO[bytes]:
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return tempfile.TemporaryFile(dir=self._directory)

    async def read(self) -> bytes:
        """Everything written, from memory or the file."""
        if self._file is None:
            return bytes(self._memory)
        spool = self._file

        def read_all() -> bytes:
            spool.seek(0)
            return spool.read()

        return await asyncio.to_thread(read_all)

    def close(self) -> None:
        """Drop the data (the file is unlinked already: closing frees its blocks)."""
        self._counters.buffered -= len(self._memory)
        self._memory = bytearray()
        if self._file is not None:
            self._file.close()
            self._file = None


class MemoryBudget:
    """Bytes of complete messages the process holds for their handlers at once. A message larger
    than the whole budget still goes through, alone."""

    def __init__(self, capacity: int, counters: SpoolCounters) -> None:
        self._capacity = capacity
        self._counters = counters
        self._free = capacity
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        need = min(size, self._capacity)
        async with self._changed:
            await self._changed.wait_for(lambda: self._free >= need)
            self._free -= need
        self._counters.loaded += size
        self._counters.peak_loaded = max(self._counters.peak_loaded, self._counters.loaded)
        try:
            yield
        finally:
            self._counters.loaded -= size
            async with self._changed:
                self._free += need
                self._changed.notify_all()

"""Filesystem blob store: content-addressed by SHA-256, durable before `put` returns."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from mailmark.core.errors import StorageFull, StorageUnavailable

log = logging.getLogger(__name__)

_TEMP_PREFIX = ".tmp-"
# A batch's blobs are split into at most this many shares, each written in turn by one thread.
# The shares' fsyncs overlap, which a journalling file system flushes together. A thread per blob
# (up to 32) cost more than it saved: each woke a thread and took turns at the interpreter lock
# for each of its system calls, 32 context switches per message delivered (bench/smtp_in.py).
WRITER_THREADS = 4
_KEY = re.compile(r"[0-9a-f]{64}")
_READ_CHUNK = 256 * 1024


def _fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_files(paths: Sequence[str]) -> list[bytes]:
    """Each file's bytes, read with plain descriptors: a file object per path cost a third of
    the reads of a hundred small messages (IMAP FETCH BODY[] reads them in batches)."""
    out = []
    for path in paths:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = []
            while chunk := os.read(descriptor, _READ_CHUNK):
                chunks.append(chunk)
        finally:
            os.close(descriptor)
        out.append(chunks[0] if len(chunks) == 1 else b"".join(chunks))
    return out


def _keys_written_before(directory: str, moment: float) -> list[str]:
    keys = []
    with os.scandir(directory) as entries:
        for entry in entries:
            # Half-written temporary files are sweep_temporary's.
            if _KEY.fullmatch(entry.name) and entry.stat().st_mtime < moment:
                keys.append(entry.name)
    return sorted(keys)


# A write refused for want of room: the disk is full, a quota or a file-size limit is reached.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _write_fault(error: OSError) -> Exception:
    """A blob write that failed, as the core error adapters answer (IMAP NO [OVERQUOTA], SMTP
    452, HTTP 503) when the cause is the disk's; any other OSError as it is."""
    if error.errno in _NO_ROOM:
        return StorageFull(f"The message store is full ({os.strerror(error.errno)}).")
    if error.errno in (errno.EROFS, errno.EACCES):
        return StorageUnavailable("The message store cannot be written now; try again later.")
    return error


class FileBlobStore:
    """`<root>/<first two hex digits>/<sha256>`. Keys are computed here, never taken from users.

    A write is: temporary file in the target directory → fsync → rename → fsync the directory, so a
    crash leaves either the whole blob or nothing under its name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._writers = ThreadPoolExecutor(WRITER_THREADS, thread_name_prefix="blob-write")
        self._root_text = str(root)
        # Fan-out directories known to exist (and to be synced into their parent): never
        # removed while the store runs, so each is checked once.
        self._directories: set[str] = set()

    def _path(self, key: str) -> Path:
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a blob key: {key!r}")
        return f"{self._root_text}/{key[:2]}/{key}"

    async def put(self, data: bytes) -> tuple[str, bool]:
        try:
            return await asyncio.to_thread(self._put, data)
        except OSError as error:
            raise _write_fault(error) from error

    async def put_many(self, items: Sequence[bytes]) -> list[tuple[str, bool] | Exception]:
        # One trip to a worker thread for the whole batch: the hand-offs, not the fsyncs, are
        # what a per-message thread costs under load.
        return await asyncio.to_thread(self._put_many, items)

    def _put_many(self, items: Sequence[bytes]) -> list[tuple[str, bool] | Exception]:
        if len(items) == 1:
            return [self._put_or_error(items[0])]
        size = -(-len(items) // WRITER_THREADS)
        shares = [items[start : start + size] for start in range(0, len(items), size)]
        return [
            result for written in self._writers.map(self._put_share, shares) for result in written
        ]

    def _put_share(self, items: Sequence[bytes]) -> list[tuple[str, bool] | Exception]:
        return [self._put_or_error(data) for data in items]

    def _put_or_error(self, data: bytes) -> tuple[str, bool] | Exception:
        try:
            return self._put(data)
        except OSError as exc:
            return _write_fault(exc)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def get_many(self, keys: Sequence[str]) -> list[bytes]:
        # One worker-thread trip for the batch: for small files the hand-off costs more than the read.
        # Plain string paths and unbuffered reads: pathlib's object building cost as much as the
        # reads of a hundred 5 KiB messages.
        return await asyncio.to_thread(_read_files, [self._file(key) for key in keys])

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def keys_written_before(self, moment: datetime) -> AsyncIterator[list[str]]:
        """One page per fan-out directory: at most a 256th of the store at a time."""
        if not await asyncio.to_thread(self.root.is_dir):
            return
        directories = await asyncio.to_thread(
            lambda: sorted(entry.path for entry in os.scandir(self.root) if entry.is_dir())
        )
        for directory in directories:
            keys = await asyncio.to_thread(_keys_written_before, directory, moment.timestamp())
            if keys:
                yield keys

    async def check(self) -> None:
        """The root is a directory this process may write into; StorageUnavailable if not."""
        usable = await asyncio.to_thread(
            lambda: self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)
        )
        if not usable:
            raise StorageUnavailable(f"The message store {self.root} cannot be written now.")

    async def close(self) -> None:
        self._writers.shutdown(wait=False)

    def _put(self, data: bytes) -> tuple[str, bool]:
        key = hashlib.sha256(data).hexdigest()
        path = self._file(key)
        directory = path.rpartition("/")[0]
        if os.path.isfile(path):
            return key, False
        if directory not in self._directories:
            self._make_dir(Path(directory))
            self._directories.add(directory)
        # Plain descriptor calls: a file object adds an fstat, an isatty ioctl and a flush, each
        # a release of the interpreter lock that another thread may take.
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=_TEMP_PREFIX)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(directory)
        return key, True

    def _make_dir(self, directory: Path) -> None:
        if directory.is_dir():
            return
        # Each new directory entry must itself survive a crash, the root's included (on first start
        # `mkdir(parents=True)` created it and its parents without syncing theirs): create the
        # missing levels top-down and fsync the parent of each.
        missing = [d for d in (directory, *directory.parents) if not d.is_dir()]
        for new_dir in reversed(missing):
            new_dir.mkdir(exist_ok=True)
            _fsync_dir(new_dir.parent)

    def sweep_temporary(self) -> int:
        """Remove half-written files a crash left behind; call before accepting mail."""
        removed = 0
        if not self.root.is_dir():
            return removed
        for temp in self.root.glob(f"*/{_TEMP_PREFIX}*"):
            temp.unlink(missing_ok=True)
            removed += 1
        if removed:
            log.info("removed %d half-written blob(s)", removed)
        return removed

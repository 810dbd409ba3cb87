"""APPEND when storage really fails: a database that cannot take the write (another connection
holds SQLite's write lock; a PostgreSQL database made read-only) answers NO [UNAVAILABLE], a
disk refusing the blob (the process's file-size limit, as a full disk or quota refuses it)
answers NO [OVERQUOTA], and in both cases the session goes on and the next APPEND succeeds."""

from __future__ import annotations

import contextlib
import resource
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest

from mailmark.bootstrap import Listeners
from mailmark.config import Settings
from tests.imap.raw import Raw
from tests.support.faults import database_refusing_writes
from tests.support.world import World

MiB = 1024 * 1024
MESSAGE = b"From: a@example.org\r\nTo: sales@acme.test\r\nSubject: Appended\r\n\r\nBody\r\n"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A writer gives up on a locked SQLite database after this, instead of 15 s.
    return settings.model_copy(update={"sqlite_busy_timeout": timedelta(seconds=0.2)})


@pytest.fixture
async def client(listeners: Listeners, world: World) -> AsyncIterator[Raw]:
    client = await Raw.connect(listeners.imaps_port, tls=True)
    try:
        await client.login()
        await client.ok(b"S1", b"SELECT INBOX")
        yield client
    finally:
        await client.close()


async def append(client: Raw, tag: bytes, message: bytes) -> list[bytes]:
    await client.send(tag + b" APPEND INBOX {%d}\r\n" % len(message))
    go_ahead = await client.line()
    assert go_ahead.startswith(b"+"), go_ahead
    await client.send(message + b"\r\n")
    return await client.until(tag)


@contextlib.contextmanager
def file_size_limit(size: int) -> Iterator[None]:
    """Writes past `size` bytes of any file fail with EFBIG (Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


async def test_append_to_a_database_refusing_writes_is_unavailable(
    client: Raw, world: World
) -> None:
    async with database_refusing_writes(world.services):
        done = await append(client, b"A1", MESSAGE)
        assert done[-1].startswith(b"A1 NO [UNAVAILABLE] "), done
        await client.ok(b"N1", b"NOOP")
    done = await append(client, b"A2", MESSAGE)
    assert done[-1].startswith(b"A2 OK [APPENDUID "), done
    status = await client.ok(b"S2", b"STATUS INBOX (MESSAGES)")
    assert b"(MESSAGES 1)" in status[0], status


async def test_append_to_a_full_disk_is_overquota(client: Raw) -> None:
    large = MESSAGE + b"x" * (2 * MiB) + b"\r\n"
    with file_size_limit(1 * MiB):
        done = await append(client, b"A1", large)
    assert done[-1].startswith(b"A1 NO [OVERQUOTA] "), done
    await client.ok(b"N1", b"NOOP")
    done = await append(client, b"A2", MESSAGE)
    assert done[-1].startswith(b"A2 OK [APPENDUID "), done

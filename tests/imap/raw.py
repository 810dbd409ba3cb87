"""A byte-level IMAP client for transcript tests, and shared helpers for tests/imap/."""

from __future__ import annotations

import asyncio
import contextlib
import re
import zlib
from datetime import timedelta
from typing import Self

from tests.support.tls import client_tls

TIMEOUT = 10.0
# An IMAP poll interval no test outlives: a session that reports a change in a test whose settings
# use it was woken by the folder signals, and not by a poll, however slow the machine is.
NO_POLL = timedelta(hours=1)
_LITERAL = re.compile(rb"\{(\d+)\}\r\n\Z")


class Raw:
    """Sends exactly the bytes a test writes; reads responses line by line, literals included."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.greeting = b""
        self._deflater: zlib._Compress | None = None
        self._inflating: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, port: int, *, tls: bool = True, source: str | None = None) -> Self:
        """`source`: the local address to connect from (127.0.0.1 is exempt from per-IP caps)."""
        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            port,
            ssl=client_tls() if tls else None,
            limit=8 * 1024 * 1024,
            local_addr=(source, 0) if source else None,
        )
        client = cls(reader, writer)
        client.greeting = await client.line()
        return client

    async def line(self, timeout: float = TIMEOUT) -> bytes:
        data = await asyncio.wait_for(self.reader.readline(), timeout)
        if not data:
            raise EOFError("the server closed the connection")
        while literal := _LITERAL.search(data):
            data += await asyncio.wait_for(self.reader.readexactly(int(literal[1])), timeout)
            data += await asyncio.wait_for(self.reader.readline(), timeout)
        return data

    async def send(self, data: bytes) -> None:
        if self._deflater is not None:
            data = self._deflater.compress(data) + self._deflater.flush(zlib.Z_SYNC_FLUSH)
        self.writer.write(data)
        await self.writer.drain()

    def deflate(self) -> None:
        """After the OK to COMPRESS DEFLATE: raw deflate both ways (RFC 4978), as a client does
        it with zlib; what the server sends is inflated before `line` reads it, so a response
        that was not compressed fails to inflate."""
        compressed = self.reader
        self.reader = asyncio.StreamReader(limit=8 * 1024 * 1024)
        self._deflater = zlib.compressobj(6, zlib.DEFLATED, -15)

        async def inflate(inflated: asyncio.StreamReader) -> None:
            inflater = zlib.decompressobj(-15)
            try:
                while data := await compressed.read(65536):
                    inflated.feed_data(inflater.decompress(data))
                inflated.feed_eof()
            except (zlib.error, ConnectionError) as error:
                inflated.set_exception(error)

        self._inflating = asyncio.create_task(inflate(self.reader))

    async def until(self, tag: bytes, timeout: float = TIMEOUT) -> list[bytes]:
        lines: list[bytes] = []
        while True:
            lines.append(await self.line(timeout))
            if lines[-1].startswith(tag + b" "):
                return lines

    async def run(self, tag: bytes, text: bytes) -> list[bytes]:
        await self.send(tag + b" " + text + b"\r\n")
        return await self.until(tag)

    async def ok(self, tag: bytes, text: bytes) -> list[bytes]:
        lines = await self.run(tag, text)
        assert lines[-1].startswith(tag + b" OK"), lines
        return lines

    async def login(self, user: str = "sales@acme.test", password: str = "sales-pass-1") -> None:
        await self.ok(b"L0", f'LOGIN "{user}" "{password}"'.encode())

    async def close(self) -> None:
        if self._inflating is not None:
            self._inflating.cancel()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def session(port: int, *, tls: bool = True, login: bool = True, select: str | None = None):  # type: ignore[no-untyped-def]
    client = await Raw.connect(port, tls=tls)
    try:
        if login:
            await client.login()
        if select is not None:
            await client.ok(b"S0", b"SELECT " + select.encode())
        yield client
    finally:
        await client.close()

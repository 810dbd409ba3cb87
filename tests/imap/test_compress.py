"""COMPRESS=DEFLATE (RFC 4978) over TLS, byte for byte: what a zlib client sends and inflates."""

from __future__ import annotations

import logging
import tracemalloc
import zlib

import pytest

from mailmark.bootstrap import Listeners
from mailmark.imap.reader import MAX_LINE
from tests.imap.raw import Raw, session
from tests.support.world import World

MESSAGE = b"From: a@example.org\r\nSubject: squeezed\r\n\r\n" + b"the same line again\r\n" * 200


async def test_compress_deflate_after_tls_and_login(listeners: Listeners, world: World) -> None:
    async with session(listeners.imaps_port, login=False) as client:
        # Only offered, and only allowed, once authenticated.
        assert b"COMPRESS=DEFLATE" not in client.greeting
        assert await client.run(b"C0", b"COMPRESS DEFLATE") == [
            b"C0 BAD Command not allowed when not authenticated\r\n"
        ]
        await client.login()
        assert b" COMPRESS=DEFLATE" in (await client.ok(b"C1", b"CAPABILITY"))[0]
        assert await client.run(b"C2", b"COMPRESS LZ4") == [
            b"C2 BAD Unsupported compression mechanism LZ4\r\n"
        ]
        # The tagged OK itself is not compressed; everything after it is, both ways.
        assert await client.run(b"C3", b"COMPRESS DEFLATE") == [b"C3 OK DEFLATE active\r\n"]
        client.deflate()
        assert await client.run(b"C4", b"COMPRESS DEFLATE") == [
            b"C4 NO [COMPRESSIONACTIVE] DEFLATE is already active\r\n"
        ]
        await client.send(b"A1 APPEND INBOX {%d}\r\n" % len(MESSAGE))
        assert (await client.line()).startswith(b"+ ")
        await client.send(MESSAGE + b"\r\n")
        assert (await client.until(b"A1"))[-1].startswith(b"A1 OK [APPENDUID ")
        await client.ok(b"S1", b"SELECT INBOX")
        assert await client.ok(b"F1", b"FETCH 1 BODY.PEEK[]") == [
            b"* 1 FETCH (BODY[] {%d}\r\n%s)\r\n" % (len(MESSAGE), MESSAGE),
            b"F1 OK FETCH completed\r\n",
        ]
        assert await client.ok(b"L1", b"LOGOUT") == [
            b"* BYE Logging out\r\n",
            b"L1 OK LOGOUT completed\r\n",
        ]


async def test_deflate_bomb_is_inflated_in_bounded_pieces(
    listeners: Listeners, world: World
) -> None:
    """32 MiB of one byte deflate to some 32 KiB: the server must never inflate more than a
    bounded piece at a time, whatever the ratio, and the line limit still applies."""
    bomb = 32 * MAX_LINE
    async with session(listeners.imaps_port) as client:
        await client.ok(b"C1", b"COMPRESS DEFLATE")
        client.deflate()
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
        chunk = b"A" * (1024 * 1024)
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            client.writer.write(deflater.compress(b"X1 NOOP "))
            for _ in range(bomb // len(chunk)):
                client.writer.write(deflater.compress(chunk))
            client.writer.write(deflater.compress(b"\r\nX2 NOOP\r\n"))
            client.writer.write(deflater.flush(zlib.Z_SYNC_FLUSH))
            await client.writer.drain()
            assert await client.until(b"X1", timeout=60) == [b"X1 BAD Command line too long\r\n"]
            assert await client.until(b"X2") == [b"X2 OK NOOP completed\r\n"]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # The line limit's worth of pieces, the client's own 1 MiB chunks, the buffers: far
        # below what inflating one 16 KiB read of this stream in one go would take (16 MiB).
        assert peak < 6 * MAX_LINE, peak
        await client.ok(b"N1", b"NOOP")


async def test_invalid_compressed_input_closes_the_connection_quietly(
    listeners: Listeners, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    client = await Raw.connect(listeners.imaps_port)
    try:
        await client.login()
        await client.ok(b"C1", b"COMPRESS DEFLATE")
        client.deflate()
        # Not deflate data at all: a stored block whose length check fails.
        client.writer.write(b"\x00\x05\x00\x05\x00hello")
        await client.writer.drain()
        with pytest.raises(EOFError):
            await client.line()
    finally:
        await client.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records

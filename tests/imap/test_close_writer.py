"""Closing a session whose peer reset the connection leaves no reference cycle behind, so its
TLS transport and buffers go at once rather than at the next full collection (which a long soak
saw as slowly growing memory)."""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmark.imap.server import close_writer
from mailmark.security import ensure_self_signed_certificate, server_tls_context
from tests.support.tls import client_tls

SESSIONS = 10


@pytest.fixture
def collector_paused() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_a_reset_session_is_freed_without_the_collector(
    tmp_path: Path, collector_paused: None
) -> None:
    certificate, key = ensure_self_signed_certificate(tmp_path, "mail.acme.test")
    failures: list[BaseException] = []
    closed = asyncio.Queue[None]()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()
            for _ in range(100):  # far more than the socket buffers hold: the reset stops it
                writer.write(b"* 1 FETCH (BODY[] {65536}\r\n" + b"x" * 65536)
                await writer.drain()
        except OSError as error:
            failures.append(type(error)(*error.args))
        finally:
            await close_writer(writer)
            closed.put_nowait(None)

    server = await asyncio.start_server(
        session, "127.0.0.1", 0, ssl=server_tls_context(certificate, key)
    )
    port = server.sockets[0].getsockname()[1]
    try:
        for _ in range(SESSIONS):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_tls())
            writer.write(b"a1 FETCH 1:* BODY[]\r\n")
            await writer.drain()
            await reader.read(1000)
            # SO_LINGER 0 makes the close a reset (RST), as a client that dies does.
            connection = writer.get_extra_info("socket")
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            await asyncio.wait_for(closed.get(), 10)
    finally:
        server.close()
        await server.wait_closed()
    assert len(failures) == SESSIONS, "every session met the reset"
    assert left_for_the_collector() == {}


def left_for_the_collector() -> dict[str, int]:
    """What only a collection would free, of the kinds a closed session's cycle held (the
    plain-socket transports of the stdlib loop have cycles of their own, not ours)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        kinds = Counter(type(thing).__name__ for thing in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    held = {"StreamWriter", "StreamReader", "_SSLProtocolTransport", "traceback", "frame"}
    return {kind: count for kind, count in kinds.items() if kind in held}

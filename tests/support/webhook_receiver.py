"""A small HTTP/1.1 webhook receiver on loopback that records every request it is sent."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

MAX_REQUEST = 1 << 20


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, object]:
        document: dict[str, object] = json.loads(self.body)
        return document


@dataclass
class Receiver:
    """A small HTTP/1.1 server on loopback recording each request and answering from `statuses`
    (then 200), optionally over TLS."""

    tls: ssl.SSLContext | None = None
    delay: float = 0.0
    statuses: list[int] = field(default_factory=list)
    # A JSON body to answer each request with (by method and path), instead of "ok".
    answer: Callable[[Request], object] | None = None
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        async def enough() -> None:
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            method, target, _ = line.decode().split(" ", 2)
            headers: dict[str, str] = {}
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            length = min(int(headers.get("content-length", "0")), MAX_REQUEST)
            body = await reader.readexactly(length)
            await asyncio.sleep(self.delay)
            self.requests.append(Request(method, target, headers, body))
            self.arrived.set()
            status = self.statuses.pop(0) if self.statuses else 200
            extra = "Location: http://127.0.0.1:1/elsewhere\r\n" if 300 <= status < 400 else ""
            content = b"ok"
            if self.answer is not None:
                content = json.dumps(self.answer(self.requests[-1])).encode()
                extra += "Content-Type: application/json\r\n"
            writer.write(
                f"HTTP/1.1 {status} X\r\n{extra}Content-Length: {len(content)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + content
            )
            await writer.drain()
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.close()

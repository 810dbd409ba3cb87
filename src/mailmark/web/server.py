"""Serve the web app with uvicorn inside the running event loop, next to the mail listeners."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from litestar import Litestar

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 10.0
# Requests still running at shutdown get this long before they are cancelled.
GRACEFUL_SHUTDOWN_SECONDS = 5


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handling.

    `Server.serve` replaces the SIGINT/SIGTERM handlers for as long as it runs, which would take
    them away from `mailmark serve` (it stops every listener on SIGTERM, this one included)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class HttpListener:
    server: uvicorn.Server
    task: asyncio.Task[None]
    host: str
    port: int

    async def close(self) -> None:
        self.server.should_exit = True
        await self.task


async def start_http_listener(
    app: Litestar, *, host: str, port: int, reuse_port: bool = False
) -> HttpListener:
    """Listen on host:port (port 0 picks a free one) and serve `app` until `close()`.

    `reuse_port`: other processes may listen on the same port too (SO_REUSEPORT), and the kernel
    spreads new connections across them (`mailmark serve --http-workers`)."""
    sock = _bind(host, port, reuse_port)
    bound_host, bound_port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        # uvicorn's default log_config calls logging.config.dictConfig for the whole process;
        # logging is configured once, by the CLI, and uvicorn's loggers propagate to it.
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"http {bound_host}:{bound_port}")
    try:
        await _wait_started(server, task)
    except BaseException:
        server.should_exit = True
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):
            await task
        sock.close()
        raise
    log.info("HTTP listening on %s:%s", bound_host, bound_port)
    return HttpListener(server, task, bound_host, bound_port)


def _bind(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Until uvicorn has created its server; raises if serving ended (or never began) instead."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if task.done():
            task.result()  # re-raise what stopped it (uvicorn sys.exit()s on startup failure)
            raise RuntimeError("the HTTP server stopped before it started")
        if loop.time() > deadline:
            raise TimeoutError(f"the HTTP server did not start within {STARTUP_TIMEOUT_SECONDS} s")
        await asyncio.wait({task}, timeout=0.01)

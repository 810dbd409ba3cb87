"""Serve the web app with uvicorn inside the running event loop, next to the mail listeners:
over plain HTTP, and over TLS (HTTPS) with the certificate holder's context."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from litestar.types import ASGIApp
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from mailmark.connections import ConnectionLimits, descriptor_of, listening_socket

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 10.0
# Requests still running at shutdown get this long before they are cancelled.
GRACEFUL_SHUTDOWN_SECONDS = 5

_BUSY_BODY = (
    b'{"error": {"code": "server_busy", "message": "Too many connections; try again later.",'
    b' "field": null}}'
)
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(_BUSY_BODY) + _BUSY_BODY
)


class _AdmissionMixin(asyncio.Protocol):
    """Put before uvicorn's HTTP protocol class: the connection limits every listener applies
    (mailmark.connections), and a deadline for a request's headers.

    uvicorn closes a connection idle between requests after its keep-alive timeout, but waits for
    the headers of a request begun for ever: a client sending one header byte a minute would hold
    a connection, and a descriptor, for as long as it likes."""

    _limits: ConnectionLimits
    _header_timeout: float
    _ip: str | None = None
    _header_deadline: asyncio.TimerHandle | None = None
    _cycle_awaited: object = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if peer else ""
        refusal = self._limits.admit(ip, descriptor_of(transport.get_extra_info("socket")))
        if refusal is not None:
            self._limits.refusals.refused("HTTP", ip, refusal)
            getattr(transport, "write")(_BUSY)  # noqa: B009
            transport.close()
            return
        self._ip = ip
        self._await_headers(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        if self._ip is not None:
            self._limits.release(self._ip)
            self._ip = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        getattr(super(), "data_received")(data)  # noqa: B009
        # uvicorn starts a new request cycle once a request's headers are complete.
        if self._header_deadline is not None and getattr(self, "cycle", None) is not (
            self._cycle_awaited
        ):
            self._stop_waiting()

    def on_response_complete(self) -> None:
        getattr(super(), "on_response_complete")()  # noqa: B009
        # uvicorn arms its keep-alive timer when it waits for the next request (and not while a
        # pipelined one runs): from then on that request's headers have a deadline too.
        if getattr(self, "timeout_keep_alive_task", None) is not None:
            self._await_headers(getattr(self, "transport"))  # noqa: B009

    def _await_headers(self, transport: asyncio.BaseTransport) -> None:
        self._stop_waiting()
        self._cycle_awaited = getattr(self, "cycle", None)
        self._header_deadline = asyncio.get_running_loop().call_later(
            self._header_timeout, self._headers_late, transport
        )

    def _stop_waiting(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self, transport: asyncio.BaseTransport) -> None:
        self._header_deadline = None
        if not transport.is_closing():
            log.info("closing HTTP connection from %s: no complete request headers", self._ip)
            transport.close()


def _admitting_protocol(limits: ConnectionLimits, header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools when installed, else h11) behind the admission rules."""
    return type(
        "AdmittingHttpProtocol",
        (_AdmissionMixin, AutoHTTPProtocol),
        {"_limits": limits, "_header_timeout": header_timeout},
    )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handling.

    `Server.serve` replaces the SIGINT/SIGTERM handlers for as long as it runs, which would take
    them away from `mailmark serve` (it stops every listener on SIGTERM, this one included)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class HttpListener:
    name: str
    server: uvicorn.Server
    task: asyncio.Task[None]
    host: str
    port: int
    limits: ConnectionLimits

    async def close(self) -> None:
        self.server.should_exit = True
        await self.task


async def start_http_listener(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    limits: ConnectionLimits,
    header_timeout: float,
    reuse_port: bool = False,
    sock: socket.socket | None = None,
    tls: ssl.SSLContext | None = None,
    name: str = "HTTP",
) -> HttpListener:
    """Listen on host:port (port 0 picks a free one) and serve `app` until `close()`.

    `limits` admits each connection; a request's headers must arrive within `header_timeout`
    seconds of the connection (or of the previous response).

    `tls`: serve HTTPS with this context, used as it is (not copied), so a certificate the
    holder reloads into it is presented from the next handshake on. Requests then have the
    scheme `https` from the connection itself, never from a client's X-Forwarded-Proto.

    `reuse_port`: other processes may listen on the same port too (SO_REUSEPORT), and the kernel
    spreads new connections across them (`mailmark serve --http-workers`).

    `sock`: a socket bound earlier (before dropping root), served instead of binding host:port."""
    if sock is None:
        sock = listening_socket(host, port, reuse_port=reuse_port)
    bound_host, bound_port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        http=_admitting_protocol(limits, header_timeout),
        lifespan="off",
        log_level="warning",
        # uvicorn's default log_config calls logging.config.dictConfig for the whole process;
        # logging is configured once, by the CLI, and uvicorn's loggers propagate to it.
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # An idle kept-alive connection lasts as long as a request's headers may take: uvicorn's
        # own 5 s equals httpx's keep-alive expiry, so a client reusing a connection just as the
        # server closed it got "Server disconnected without sending a response".
        timeout_keep_alive=max(1, round(header_timeout)),
        # Behind TLS the client is whoever connected: no header may claim another address or
        # scheme. On plain HTTP, uvicorn applies X-Forwarded-* from its trusted proxies (loopback).
        proxy_headers=tls is None,
        ssl_context_factory=None if tls is None else lambda _config, _default: tls,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(
        server.serve(sockets=[sock]), name=f"{name} {bound_host}:{bound_port}"
    )
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
    log.info("%s listening on %s:%s", name, bound_host, bound_port)
    return HttpListener(name, server, task, bound_host, bound_port, limits)


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

"""The aiosmtpd protocol class shared by every Mailmark SMTP listener, and how listeners start.

Protocol concerns live here (enhanced status codes, connection limits, the listening socket);
what to do with a command is the handler's business (see mx.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections import Counter
from collections.abc import Callable
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope

from mailmark.smtp_in.replies import with_enhanced_code

log = logging.getLogger(__name__)

IDENT = "Mailmark ESMTP"
# RFC 5321 §4.5.3.1.6 sets 1000 octets as the minimum a server must accept; real mail (long HTML
# lines) exceeds it, so accept much longer lines, still bounded.
LINE_LENGTH_LIMIT = 64 * 1024
# Each SMTP verb may be used this often per connection; bounds every per-session loop.
COMMAND_CALL_LIMIT = 10_000
IDLE_TIMEOUT_SECONDS = 300  # RFC 5321 §4.5.3.2.7

# RFC 5321 §2.3.8: lines end with CRLF only. A bare CR or LF is how SMTP smuggling hides a second
# message inside the first, so a message containing one is refused, never repaired.
_BARE_LINE_ENDING = re.compile(rb"\r(?!\n)|(?<!\r)\n")


def has_bare_line_ending(data: bytes) -> bool:
    return _BARE_LINE_ENDING.search(data) is not None


class MailmarkEnvelope(Envelope):
    """aiosmtpd's envelope plus the recipients resolved to mailboxes at RCPT time."""

    def __init__(self) -> None:
        super().__init__()
        self.mailboxes: list[Any] = []
        self.transaction_id = ""


class ConnectionLimiter:
    """Open connections per client IP; loopback is exempt (local tools, health checks)."""

    def __init__(self, max_per_ip: int) -> None:
        self.max_per_ip = max_per_ip
        self._open: Counter[str] = Counter()

    def acquire(self, ip: str) -> bool:
        if ip in ("127.0.0.1", "::1") or self._open[ip] < self.max_per_ip:
            self._open[ip] += 1
            return True
        return False

    def release(self, ip: str) -> None:
        self._open[ip] -= 1
        if self._open[ip] <= 0:
            del self._open[ip]


class MailmarkSMTP(SMTP):
    line_length_limit = LINE_LENGTH_LIMIT

    def __init__(self, handler: Any, *, limiter: ConnectionLimiter, **kwargs: Any) -> None:
        super().__init__(
            handler,
            ident=IDENT,
            decode_data=False,
            enable_SMTPUTF8=True,
            timeout=IDLE_TIMEOUT_SECONDS,
            command_call_limit=COMMAND_CALL_LIMIT,
            **kwargs,
        )
        self._limiter = limiter
        self._client_ip: str | None = None
        self._in_ehlo = False

    def _create_envelope(self) -> MailmarkEnvelope:
        return MailmarkEnvelope()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # A source route (`<@relay:user@elsewhere>`, RFC 5321 Appendix C) is handed to the handler
        # as-is, so relay policy answers it ("554 5.7.1 relay denied") instead of a syntax error.
        text = arg.strip()
        if text.startswith("<@") and ">" in text:
            route, _, rest = text[1:].partition(">")
            return route, rest.strip()
        address, rest = super()._getaddr(arg)
        return address, rest

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first_time = self.transport is None
        super().connection_made(transport)
        if not first_time:
            return  # the same connection, after STARTTLS
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if peer else ""
        if self._limiter.acquire(ip):
            self._client_ip = ip
            return
        log.warning("refusing %s: too many connections from this address", ip)
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"421 4.7.0 Too many connections from your address; try again later\r\n")
        transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if self._client_ip is not None:
            self._limiter.release(self._client_ip)
            self._client_ip = None
        super().connection_lost(error)

    async def smtp_EHLO(self, hostname: str) -> None:
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and not self._in_ehlo:
            status = with_enhanced_code(status)
        await super().push(status)


async def start_smtp_listener(
    name: str,
    handler: Any,
    *,
    host: str,
    port: int,
    hostname: str,
    limiter: ConnectionLimiter,
    data_size_limit: int,
    tls_context: ssl.SSLContext | None,
    implicit_tls: bool = False,
    **smtp_options: Any,
) -> asyncio.Server:
    """Listen on host:port (port 0 picks a free one); returns the started asyncio server."""

    def make_protocol() -> MailmarkSMTP:
        return MailmarkSMTP(
            handler,
            limiter=limiter,
            hostname=hostname,
            data_size_limit=data_size_limit,
            tls_context=None if implicit_tls else tls_context,
            **smtp_options,
        )

    factory: Callable[[], MailmarkSMTP] = make_protocol
    server = await asyncio.get_running_loop().create_server(
        factory, host=host, port=port, ssl=tls_context if implicit_tls else None
    )
    bound = server.sockets[0].getsockname()
    log.info("%s listening on %s:%s", name, bound[0], bound[1])
    return server

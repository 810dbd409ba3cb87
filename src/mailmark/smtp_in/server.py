"""The aiosmtpd protocol class shared by every Mailmark SMTP listener, what its handlers share,
and how listeners start.

Protocol concerns live here (enhanced status codes, connection limits, the listening socket);
what to do with a command is the handler's business (see mx.py, submission.py). The protocol class
overrides and calls a few of aiosmtpd's private names; tests/smtp_in/test_aiosmtpd_edges.py checks
that the pinned aiosmtpd still has them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from collections.abc import Callable
from email._header_value_parser import AddrSpec, AngleAddr, get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any, AnyStr, ClassVar, cast

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from mailmark.connections import ConnectionLimits, Refusal, descriptor_of
from mailmark.core.addresses import is_malformed_path
from mailmark.core.model import Mailbox
from mailmark.core.reports import ReportAddress
from mailmark.metrics import Metrics, reply_code
from mailmark.smtp_in import replies
from mailmark.smtp_in.spool import DataSpooling, MessageSpool

log = logging.getLogger(__name__)

IDENT = "Mailmark ESMTP"
# RFC 5321 §4.5.3.1.6 sets 1000 octets as the minimum a server must accept; real mail (long HTML
# lines) exceeds it, so accept much longer lines, still bounded.
LINE_LENGTH_LIMIT = 64 * 1024
# Each SMTP verb may be used this often per connection; bounds every per-session loop.
COMMAND_CALL_LIMIT = 10_000
IDLE_TIMEOUT_SECONDS = 300  # RFC 5321 §4.5.3.2.7

# The handler hooks whose refusals are counted, and the stage each is named by in the metrics.
_COUNTED_HOOKS = {"MAIL": "mail", "RCPT": "rcpt", "DATA": "data"}

# RFC 5321 §2.3.8: lines end with CRLF only. A bare CR or LF is how SMTP smuggling hides a second
# message inside the first, so a message containing one is refused, never repaired.
# RFC 5321 §4.1.1.4: the mail data ends with a line holding a single ".", i.e. CRLF "." CRLF,
# where the first CRLF may be the one that ended the DATA command.
_END_OF_DATA = b"\r\n.\r\n"

# RFC 5322 §3.2.3 atext; RFC 5321 §4.1.2 Dot-string. The common path `<local@domain>`, both parts
# dot-atoms, possibly followed by ESMTP parameters: what the stdlib's address parser returns for
# it is the text itself, so it can be read with one regular expression (see MailmarkSMTP._getaddr).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*)>")


def has_bare_line_ending(data: bytes) -> bool:
    # Each CRLF holds one CR and one LF, and pairs cannot overlap: no bare CR or LF exists exactly
    # when all three counts agree. Three C-speed scans beat a regular expression by ~10x.
    pairs = data.count(b"\r\n")
    return data.count(b"\r") != pairs or data.count(b"\n") != pairs


class MailmarkEnvelope(Envelope):
    """aiosmtpd's envelope plus the recipients resolved at RCPT time."""

    def __init__(self) -> None:
        super().__init__()
        self.mailboxes: list[Mailbox] = []
        # Tokens of the VERP return paths (bounce+<token>@mail.<domain>) among the recipients.
        self.report_tokens: list[str] = []
        # dmarc@ and tls-reports@ of hosted domains (DMARC and TLS report addresses).
        self.report_addresses: list[ReportAddress] = []
        # SRS addresses of mail we forwarded (bounces to send on to the original senders).
        self.srs_returns: list[str] = []
        # The id the 250 names ("queued as …"): set by the handler, logged with the transaction.
        self.transaction_id = ""


class SmtpHandler:
    """What the MX and submission handlers share: the EHLO answer, and the bounds and bookkeeping
    of every RCPT."""

    offers_auth: ClassVar[bool]  # AUTH is advertised only where there are logins

    def __init__(self, *, max_recipients: int) -> None:
        self._max_recipients = max_recipients

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """aiosmtpd's extensions without HELP, plus PIPELINING and ENHANCEDSTATUSCODES (RFC 2920,
        RFC 2034)."""
        session.host_name = hostname
        extensions = [
            line[4:]
            for line in responses[1:]
            if line[4:] != "HELP" and (self.offers_auth or line[4:].split(" ")[0].upper() != "AUTH")
        ]
        extensions += ["PIPELINING", "ENHANCEDSTATUSCODES"]
        lines = [responses[0], *(f"250-{ext}" for ext in extensions)]
        lines[-1] = "250 " + lines[-1][4:]
        return lines

    def recipient_refusal(self, envelope: Envelope, address: str) -> str | None:
        """The reply refusing one more recipient, or None when it may be considered."""
        if len(envelope.rcpt_tos) >= self._max_recipients:
            # RFC 5321 §4.5.3.1.10: a temporary code, so the client sends the rest later.
            return replies.TOO_MANY_RECIPIENTS
        if is_malformed_path(address):
            return replies.MALFORMED_RECIPIENT
        return None

    @staticmethod
    def accept_recipient(envelope: Envelope, address: str, options: list[str]) -> str:
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return replies.RECIPIENT_OK


class Connections:
    """A listener's open sessions: the shared admission limits (mailmark.connections), and the
    sessions to close when the server stops."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._sessions: set[MailmarkSMTP] = set()

    def acquire(self, ip: str, descriptor: int, session: MailmarkSMTP) -> Refusal | None:
        refusal = self.limits.admit(ip, descriptor)
        if refusal is None:
            self._sessions.add(session)
        return refusal

    def release(self, ip: str, session: MailmarkSMTP) -> None:
        self._sessions.discard(session)
        self.limits.release(ip)

    def close_all(self) -> None:
        # RFC 5321 §3.8: a server shutting down answers 421 and closes the channel.
        for session in list(self._sessions):
            session.shut_down()


class MailmarkSMTP(SMTP):
    line_length_limit = LINE_LENGTH_LIMIT

    def __init__(
        self,
        handler: Any,
        *,
        connections: Connections,
        spooling: DataSpooling,
        listener: str = "SMTP",
        metrics: Metrics | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            handler,
            ident=IDENT,
            decode_data=False,
            enable_SMTPUTF8=True,
            timeout=IDLE_TIMEOUT_SECONDS,
            command_call_limit=COMMAND_CALL_LIMIT,
            **kwargs,
        )
        self._connections = connections
        self._spooling = spooling
        self._listener = listener
        self._metrics = metrics or Metrics()
        self._client_ip: str | None = None
        self._in_ehlo = False
        self._greeted = False

    def _create_envelope(self) -> MailmarkEnvelope:
        return MailmarkEnvelope()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # A source route (`<@relay:user@elsewhere>`, RFC 5321 Appendix C) is handed to the handler
        # as-is, so relay policy answers it ("554 5.7.1 relay denied") instead of a syntax error.
        text = arg.strip()
        if text.startswith("<@") and ">" in text:
            route, _, parameters = text[1:].partition(">")
            return route, parameters.strip()
        # aiosmtpd's _getaddr runs the stdlib's RFC 5322 address parser and defines a typing
        # Protocol class on every call: together ~10% of the event loop's time under load. The
        # plain path takes a regular expression; everything else (quoted strings, literals,
        # comments, UTF-8, obsolete syntax, errors) goes through the same parser as aiosmtpd.
        match = _SIMPLE_PATH.match(arg)
        if match is not None:
            rest = arg[match.end() :].lstrip(" \t")
            if not rest.startswith("("):  # a comment: the full parser strips it
                return self._checked_local_part(match[1], rest)
        if not arg:
            return "", ""
        parsed: AngleAddr | AddrSpec
        try:
            if arg.lstrip().startswith("<"):
                parsed, rest = get_angle_addr(arg)
            else:
                parsed, rest = get_addr_spec(arg)
        except HeaderParseError:
            return None, None
        return self._checked_local_part(parsed.addr_spec, rest)

    def _checked_local_part(self, address: str, rest: str) -> tuple[str | None, str | None]:
        # As aiosmtpd: refuse a local part over the limit (RFC 5321 §4.5.3.1.1: 64 octets).
        local_part = address.rpartition("@")[0]
        if self.local_part_limit and len(local_part) > self.local_part_limit:
            return None, None
        return address, rest

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first_time = self.transport is None
        super().connection_made(transport)
        if not first_time:
            return  # the same connection, after STARTTLS
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            # Implicit TLS (RFC 8314 §3.3): encrypted from the first byte, so AUTH needs no
            # STARTTLS first, and the trace names the session as TLS.
            self._auth_require_tls = False
            assert self.session is not None
            self.session.ssl = {"ssl_object": ssl_object, "cipher": ssl_object.cipher()}
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if peer else ""
        refusal = self._connections.acquire(
            ip, descriptor_of(transport.get_extra_info("socket")), self
        )
        admitted = refusal is None
        self._metrics.smtp_connections.labels(
            self._listener, "admitted" if admitted else "refused"
        ).inc()
        if refusal is None:
            self._client_ip = ip
            return
        self._connections.limits.refusals.refused("SMTP", ip, refusal)
        reply = replies.TOO_MANY_CONNECTIONS if refusal is Refusal.PER_IP else replies.SERVER_BUSY
        # uvloop's transports implement the interface without subclassing asyncio's classes.
        cast(asyncio.WriteTransport, transport).write(f"{reply}\r\n".encode())
        transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if self._client_ip is not None:
            self._connections.release(self._client_ip, self)
            self._client_ip = None
        super().connection_lost(error)

    def shut_down(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            goodbye = f"{replies.SHUTTING_DOWN}\r\n".encode()
            cast(asyncio.WriteTransport, transport).write(goodbye)
            transport.close()

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname: str) -> None:
        self._in_ehlo = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._in_ehlo = False

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False

    async def push(self, status: AnyStr) -> None:
        # RFC 2034 §3: every reply carries an enhanced code except the greeting (the first reply
        # of the connection) and the replies to HELO and EHLO; we still code their errors.
        if isinstance(status, str):
            exempt = not self._greeted or (self._in_ehlo and status.startswith("250"))
            if not exempt:
                status = replies.with_enhanced_code(status)
        self._greeted = True
        await super().push(status)

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        """aiosmtpd's call of the handler's `handle_<command>`, counting the refusals."""
        status = await super()._call_handler_hook(command, *args)
        stage = _COUNTED_HOOKS.get(command)
        if stage is not None and isinstance(status, str) and status[:1] in ("4", "5"):
            self._metrics.smtp_refusals.labels(self._listener, stage, reply_code(status)).inc()
        return status

    def _log_transaction(self, envelope: Envelope, size: int, reply: str) -> None:
        """One line per transaction that reached the end of DATA, accepted or not, with the id
        its 250 names (the MX's transaction id, the submission's queue id)."""
        transaction_id = getattr(envelope, "transaction_id", "")
        code = reply_code(reply)
        log.info(
            "%s transaction %s from %s: <%s> to %d recipient(s), %d bytes: %s",
            self._listener,
            transaction_id or "-",
            self._client_ip,
            envelope.mail_from or "",
            len(envelope.rcpt_tos),
            size,
            code,
            extra={
                "listener": self._listener,
                "queue_id": transaction_id or None,
                "client_ip": self._client_ip,
                "mail_from": envelope.mail_from or "",
                "recipients": len(envelope.rcpt_tos),
                "size": size,
                "reply": code,
            },
        )

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, reading the mail data in bulk instead of one line per call.

        aiosmtpd spends seconds of event-loop time on a message of half a million short lines;
        this reads up to the next "." CRLF per call, and checks size and line length as it goes.
        The replies and the handler call are aiosmtpd's."""
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(replies.NEED_RCPT)
            return
        if arg:
            await self.push(replies.DATA_SYNTAX)
            return
        await self.push(replies.START_DATA)
        spool = self._spooling.spool()
        try:
            try:
                refusal = await self._receive_data(spool)
            except asyncio.CancelledError:  # the connection was lost (eof_received cancels us)
                log.info("connection lost during DATA")
                self._writer.close()
                raise
            if refusal is not None:
                self._metrics.smtp_refusals.labels(
                    self._listener, "data", reply_code(refusal)
                ).inc()
                self._log_transaction(self.envelope, spool.size, refusal)
                self._set_post_data_state()  # type: ignore[no-untyped-call]
                await self.push(refusal)
                return
            async with self._spooling.budget.hold(spool.size):
                stuffed = await spool.read()
                spool.close()
                # RFC 5321 §4.5.2: drop the first "." of every line that starts with one.
                content = stuffed[: -len(b".\r\n")].replace(b"\r\n.", b"\r\n")[2:]
                del stuffed
                self.envelope.content = content
                self.envelope.original_content = content
                envelope = self.envelope
                status = await self._call_handler_hook("DATA")
                self._set_post_data_state()  # type: ignore[no-untyped-call]
        finally:
            spool.close()
        reply = replies.DATA_OK if status is MISSING else str(status)
        if reply.startswith("250"):
            self._metrics.smtp_messages_accepted.labels(self._listener).inc()
        self._log_transaction(envelope, len(content), reply)
        await self.push(reply)

    async def _receive_data(self, spool: MessageSpool) -> str | None:
        """Write the mail data up to the end-of-data line, dot-stuffed as received, to `spool`,
        and return None; or the reply when it is over the size or line-length limit.

        Everything is read to the end-of-data line either way, so that the rest of the data is
        never taken for commands (RFC 5321 §4.2.5 lets the reply wait until then)."""
        limit = self.data_size_limit
        # The CRLF that ended the DATA command line comes first: an empty message is "." CRLF.
        await spool.write(b"\r\n")
        tail = b"\r\n"  # the last bytes of the stream, to recognise the end even when not kept
        received = 0
        open_line = 0  # length of the line not yet ended by CRLF
        carry = b""  # a CR ending the previous piece, which this one may complete into CRLF
        refusal: str | None = None
        while not tail.endswith(_END_OF_DATA):
            try:
                # Every end-of-data line ends in "." CRLF, so stopping at each one finds it.
                piece = await self._reader.readuntil(b".\r\n")
            except asyncio.LimitOverrunError as overrun:
                # No separator in what it has read so far: take what cannot hold one.
                piece = await self._reader.readexactly(overrun.consumed)
            received += len(piece)
            tail = (tail + piece)[-len(_END_OF_DATA) :]
            scan = carry + piece
            open_line -= len(carry)
            first, last = scan.find(b"\r\n"), scan.rfind(b"\r\n")
            if first < 0:
                open_line += len(scan)
                longest = open_line
            else:
                longest = open_line + first
                if last > first:
                    longest = max(longest, *map(len, scan[first + 2 : last].split(b"\r\n")))
                open_line = len(scan) - last - 2
                longest = max(longest, open_line)
            carry = b"\r" if scan.endswith(b"\r") else b""
            if refusal is None and longest + 2 > self.line_length_limit:
                # RFC 5321 §4.5.3.1.6; the stuffing dot counts, as in aiosmtpd.
                refusal = replies.LINE_TOO_LONG
            # The final "." CRLF is not data; aiosmtpd counts everything else, dots included.
            elif refusal is None and limit and received - 3 > limit:
                refusal = replies.TOO_MUCH_DATA
            if refusal is not None:
                spool.close()
            else:
                await spool.write(piece)
        return refusal


class SmtpListener:
    """A started SMTP listener: its socket server and its open sessions."""

    def __init__(
        self, server: asyncio.Server, connections: Connections, spooling: DataSpooling
    ) -> None:
        self.server = server
        self.connections = connections
        self.spooling = spooling

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop accepting, tell open sessions we are going, and wait for the sockets to close."""
        self.server.close()
        self.connections.close_all()
        await self.server.wait_closed()


async def start_smtp_listener(
    name: str,
    handler: Any,
    *,
    host: str,
    port: int,
    hostname: str,
    limits: ConnectionLimits,
    spooling: DataSpooling,
    data_size_limit: int,
    tls_context: ssl.SSLContext | None,
    implicit_tls: bool = False,
    metrics: Metrics | None = None,
    sock: socket.socket | None = None,
    **smtp_options: Any,
) -> SmtpListener:
    """Listen on host:port (port 0 picks a free one), or on `sock` when it was bound earlier."""
    connections = Connections(limits)
    metrics = metrics or Metrics()

    def make_protocol() -> MailmarkSMTP:
        return MailmarkSMTP(
            handler,
            connections=connections,
            spooling=spooling,
            listener=name,
            metrics=metrics,
            hostname=hostname,
            data_size_limit=data_size_limit,
            tls_context=None if implicit_tls else tls_context,
            **smtp_options,
        )

    factory: Callable[[], MailmarkSMTP] = make_protocol
    where: dict[str, Any] = {"sock": sock} if sock is not None else {"host": host, "port": port}
    server = await asyncio.get_running_loop().create_server(
        factory, ssl=tls_context if implicit_tls else None, **where
    )
    bound = (sock or server.sockets[0]).getsockname()
    log.info("%s listening on %s:%s", name, bound[0], bound[1])
    return SmtpListener(server, connections, spooling)

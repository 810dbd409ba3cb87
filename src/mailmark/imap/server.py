"""The IMAP listeners: 143-style (cleartext until STARTTLS) and 993-style (implicit TLS, RFC 8314).

Each connection gets a Session; this module owns the socket concerns: the connection limits (mailmark.connections),
the stream buffer bound, closing every session at shutdown, and turning an unexpected exception
into a logged error and `* BYE Internal error` (never a traceback to the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from dataclasses import dataclass, field

from mailmark.connections import ConnectionLimits, Refusal, descriptor_of
from mailmark.core.cpu_pool import CpuPool
from mailmark.core.cpu_ration import ProcessorRation
from mailmark.core.logins import MailboxLogins
from mailmark.core.mailstore import MailStore
from mailmark.imap import encoder
from mailmark.imap.handlers import HANDLERS
from mailmark.imap.reader import STREAM_LIMIT, LiteralSpooling
from mailmark.imap.session import ImapCounters, Session, SessionConfig
from mailmark.metrics import Metrics

log = logging.getLogger(__name__)

TLS_HANDSHAKE_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0


@dataclass
class _Connections:
    limits: ConnectionLimits
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass
class ImapListener:
    server: asyncio.Server
    host: str
    port: int
    connections: _Connections
    counters: ImapCounters
    ration: ProcessorRation | None = None

    async def close(self) -> None:
        self.server.close()
        tasks = list(self.connections.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), CLOSE_TIMEOUT)


async def start_imap_listener(
    *,
    store: MailStore,
    logins: MailboxLogins,
    host: str,
    port: int,
    hostname: str,
    tls_context: ssl.SSLContext,
    implicit_tls: bool,
    max_message_size: int,
    limits: ConnectionLimits,
    idle_timeout: float,
    poll_interval: float = 5.0,
    metrics: Metrics | None = None,
    sock: socket.socket | None = None,
    cpu: CpuPool | None = None,
    spooling: LiteralSpooling | None = None,
    ration: ProcessorRation | None = None,
) -> ImapListener:
    """Listen on host:port (0 picks a free port), or on `sock` when it was bound earlier, until
    `close()`."""
    open_sessions = (metrics or Metrics()).imap_sessions.labels("IMAPS" if implicit_tls else "IMAP")
    config = SessionConfig(
        hostname=hostname,
        max_message_size=max_message_size,
        idle_timeout=idle_timeout,
        tls_context=tls_context,
        poll_interval=poll_interval,
        cpu=cpu or CpuPool(workers=0),
        spooling=spooling,
        ration=ration,
    )
    connections = _Connections(limits)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if peer else ""
        refusal = limits.admit(ip, descriptor_of(writer.get_extra_info("socket")))
        if refusal is not None:
            limits.refusals.refused("IMAP", ip, refusal)
            text = (
                "Too many connections from your address"
                if refusal is Refusal.PER_IP
                else "Too many connections to this server, try again later"
            )
            with contextlib.suppress(ConnectionError, OSError):
                await _say(writer, encoder.untagged_status("BYE", text))
            await close_writer(writer)
            return
        connections.tasks.add(task)
        open_sessions.inc()
        if isinstance(getattr(writer.transport, "max_size", None), int):
            # asyncio's socket transports receive up to 256 KiB at a time; smaller receives keep
            # what a client flooding one endless line costs close to the line bound itself.
            setattr(writer.transport, "max_size", 4 * STREAM_LIMIT)  # noqa: B010
        session = Session(
            reader,
            writer,
            config=config,
            store=store,
            logins=logins,
            handlers=HANDLERS,
            tls=implicit_tls,
        )
        try:
            await session.run()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, BrokenPipeError):
            pass  # the client went away
        except asyncio.CancelledError:
            # The listener is closing. The task ends normally: asyncio's stream callback asks a
            # finished connection task for its exception, which fails on a cancelled one.
            with contextlib.suppress(ConnectionError, OSError, RuntimeError, TimeoutError):
                await asyncio.wait_for(
                    session.send(encoder.untagged_status("BYE", "Server shutting down")), 1
                )
        except Exception:
            log.exception("IMAP session from %s failed", ip)
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                await session.send(encoder.untagged_status("BYE", "Internal error"))
        finally:
            session.close()
            connections.tasks.discard(task)
            open_sessions.dec()
            limits.release(ip)
            await close_writer(writer)

    server = await asyncio.start_server(
        serve,
        None if sock is not None else host,
        None if sock is not None else port,
        sock=sock,
        ssl=tls_context if implicit_tls else None,
        ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if implicit_tls else None,
        # Small stream buffers; the reader gathers long lines piecewise up to its own bound.
        limit=STREAM_LIMIT,
    )
    # The socket handed in is the one listening: uvloop has once answered `server.sockets`
    # with None for it right after starting.
    bound_host, bound_port = (sock or server.sockets[0]).getsockname()[:2]
    log.info("IMAP%s listening on %s:%d", "S" if implicit_tls else "", bound_host, bound_port)
    return ImapListener(server, bound_host, bound_port, connections, config.counters, ration)


async def _say(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close a session's stream, whatever state the peer left it in."""
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT)
    except Exception as error:  # noqa: BLE001 - a peer gone mid-close leaves nothing to do
        # The error's traceback holds wait_closed's frame, which holds the writer, whose
        # protocol's future holds the error: a cycle that would keep the TLS transport and its
        # buffers (256 KiB each) alive until a full collection.
        error.__traceback__ = None

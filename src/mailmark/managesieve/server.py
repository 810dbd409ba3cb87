"""The ManageSieve listener (RFC 5804), port 4190: a line-and-literal protocol over TCP.

Each session reads one command at a time (a line, with non-synchronizing literals `{n+}` for
script text, RFC 5804 §4), checks the session state, calls the core `SieveScripts` service and
answers OK / NO / BYE. Passwords cross only an encrypted connection: before STARTTLS the SASL
list is empty and AUTHENTICATE is refused (RFC 5804 §2.1). Lines, literals, the number of
arguments, failed logins and idle time are all bounded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import re
import socket
import ssl
from dataclasses import dataclass, field

from mailmark.connections import ConnectionLimits, Refusal, descriptor_of
from mailmark.core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    MailmarkError,
    NotFound,
    TooManyAttempts,
)
from mailmark.core.logins import MailboxLogins
from mailmark.core.model import Mailbox
from mailmark.core.sieve.compiler import EXTENSIONS
from mailmark.core.sieve.interpreter import MAX_REDIRECTS
from mailmark.core.sieve.scripts import SieveScripts, check_script
from mailmark.core.sieve.syntax import MAX_SCRIPT_BYTES

log = logging.getLogger(__name__)

MAX_LINE = 8 * 1024
MAX_ARGUMENTS = 8
MAX_FAILED_LOGINS = 3
IDLE_TIMEOUT = 300.0
TLS_HANDSHAKE_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0
_LITERAL = re.compile(rb"\{(\d{1,10})\+?\}$")


class ProtocolError(Exception):
    """A command that cannot be read; answered NO, and the session goes on."""


class LineTooLong(Exception):
    """A line over MAX_LINE: what follows it cannot be told apart, so the session ends."""


@dataclass
class ManageSieveListener:
    server: asyncio.Server
    host: str
    port: int
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def close(self) -> None:
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=CLOSE_TIMEOUT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), CLOSE_TIMEOUT)


def quoted(text: str) -> bytes:
    """A string as RFC 5804 §4 writes it: quoted when short and plain, else a literal."""
    data = text.encode()
    if len(data) < 1024 and not re.search(rb'[\r\n"\\\x00]', data):
        return b'"' + data + b'"'
    return b"{%d}\r\n" % len(data) + data


class Session:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        scripts: SieveScripts,
        logins: MailboxLogins,
        tls_context: ssl.SSLContext,
        client_ip: str,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.scripts = scripts
        self.logins = logins
        self.tls_context = tls_context
        self.client_ip = client_ip
        self.tls = False
        self.mailbox: Mailbox | None = None
        self.failed_logins = 0

    # Reading

    async def read_line(self) -> bytes:
        try:
            line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), IDLE_TIMEOUT)
        except asyncio.LimitOverrunError:
            raise LineTooLong(f"A line is at most {MAX_LINE} bytes") from None
        return line[:-2]

    async def read_arguments(self, line: bytes) -> list[str]:
        """The command's arguments: atoms, quoted strings and literals (which continue the
        command on the lines after them)."""
        arguments: list[str] = []
        while True:
            position = 0
            while position < len(line):
                if len(arguments) > MAX_ARGUMENTS:
                    raise ProtocolError("Too many arguments")
                char = line[position : position + 1]
                if char == b" ":
                    position += 1
                elif char == b'"':
                    end = position + 1
                    value = bytearray()
                    while end < len(line) and line[end : end + 1] != b'"':
                        if line[end : end + 1] == b"\\":
                            end += 1
                        value += line[end : end + 1]
                        end += 1
                    if end >= len(line):
                        raise ProtocolError("Unterminated string")
                    arguments.append(value.decode("utf-8", "replace"))
                    position = end + 1
                elif char == b"{":
                    literal = _LITERAL.match(line, position)
                    if literal is None:
                        raise ProtocolError("Bad literal")
                    size = int(literal.group(1))
                    if size > MAX_SCRIPT_BYTES:
                        # The literal is not read: the connection cannot go on after it.
                        raise OverflowError(f"A script is at most {MAX_SCRIPT_BYTES} bytes")
                    data = await asyncio.wait_for(self.reader.readexactly(size), IDLE_TIMEOUT)
                    arguments.append(data.decode("utf-8", "replace"))
                    line = await self.read_line()
                    break
                else:
                    end = line.find(b" ", position)
                    end = len(line) if end < 0 else end
                    arguments.append(line[position:end].decode("utf-8", "replace"))
                    position = end
            else:
                return arguments

    # Writing

    async def send(self, *parts: bytes) -> None:
        self.writer.write(b"".join(parts))
        await self.writer.drain()

    async def ok(self, text: str = "", code: str = "") -> None:
        await self.send(b"OK", _code(code), (b" " + quoted(text)) if text else b"", b"\r\n")

    async def no(self, text: str, code: str = "") -> None:
        await self.send(b"NO", _code(code), b" ", quoted(text), b"\r\n")

    def capabilities(self) -> bytes:
        """RFC 5804 §1.7; PLAIN is offered only once the connection is encrypted."""
        lines = [
            b'"IMPLEMENTATION" "Mailmark"',
            b'"SASL" "PLAIN"' if self.tls else b'"SASL" ""',
            b'"SIEVE" "' + " ".join(EXTENSIONS).encode() + b'"',
            b'"MAXREDIRECTS" "%d"' % MAX_REDIRECTS,
            b'"VERSION" "1.0"',
        ]
        if not self.tls:
            lines.append(b'"STARTTLS"')
        return b"".join(line + b"\r\n" for line in lines)

    # The session

    async def run(self) -> None:
        await self.send(self.capabilities(), b'OK "Mailmark ManageSieve ready"\r\n')
        while True:
            try:
                line = await self.read_line()
            except TimeoutError:
                await self.send(b'BYE "Idle too long"\r\n')
                return
            except LineTooLong as error:
                await self.send(b"BYE ", quoted(str(error)), b"\r\n")
                return
            try:
                name, _, rest = line.partition(b" ")
                arguments = await self.read_arguments(rest)
                if not await self.dispatch(name.decode("ascii", "replace").upper(), arguments):
                    return
            except ProtocolError as error:
                await self.no(str(error))
            except OverflowError as error:
                await self.send(b"BYE (QUOTA/MAXSIZE) ", quoted(str(error)), b"\r\n")
                return
            except LineTooLong as error:
                await self.send(b"BYE ", quoted(str(error)), b"\r\n")
                return
            except TimeoutError:
                await self.send(b'BYE "Idle too long"\r\n')
                return
            except NotFound as error:
                await self.no(error.message, "NONEXISTENT")
            except Conflict as error:
                await self.no(
                    error.message, "ALREADYEXISTS" if "exists" in error.message else "ACTIVE"
                )
            except InvalidInput as error:
                await self.no(error.message)
            except MailmarkError as error:
                await self.no(error.message, "TRYLATER")

    async def dispatch(self, command: str, arguments: list[str]) -> bool:
        """Carry out one command; False when the session ends."""
        if command == "LOGOUT":
            await self.ok("Bye")
            return False
        if command == "NOOP":
            await self.ok(arguments[0] if arguments else "")
            return True
        if command == "CAPABILITY":
            await self.send(self.capabilities())
            await self.ok()
            return True
        if command == "STARTTLS":
            await self.starttls()
            return True
        if command == "AUTHENTICATE":
            return await self.authenticate(arguments)
        if self.mailbox is None:
            await self.no("Log in first")
            return True
        return await self.mailbox_command(command, arguments, self.mailbox.id or 0)

    async def starttls(self) -> None:
        if self.tls:
            await self.no("TLS is already on")
            return
        await self.ok("Begin TLS negotiation now")
        await self.writer.start_tls(self.tls_context, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        self.tls = True
        # RFC 5804 §2.2: the capabilities again, as they are over TLS.
        await self.send(self.capabilities(), b"OK\r\n")

    async def authenticate(self, arguments: list[str]) -> bool:
        if self.mailbox is not None:
            await self.no("Already logged in")
            return True
        if not self.tls:
            # RFC 5804 §2.1: no password over an unencrypted connection.
            await self.no("Authentication needs TLS: use STARTTLS first", "ENCRYPT-NEEDED")
            return True
        if not arguments or arguments[0].upper() != "PLAIN" or len(arguments) > 2:
            await self.no("Only the PLAIN mechanism is supported")
            return True
        if len(arguments) == 2:
            response = arguments[1]
        else:
            await self.send(b'""\r\n')  # RFC 5804 §2.1: an empty challenge
            answer = await self.read_arguments(await self.read_line())
            if not answer or answer[0] == "*":
                await self.no("Authentication cancelled")
                return True
            response = answer[0]
        try:
            _, user, password = base64.b64decode(response, validate=True).decode().split("\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            await self.no("The PLAIN response could not be read")
            return True
        try:
            self.mailbox = await self.logins.authenticate(user, password, self.client_ip)
        except (AuthenticationFailed, TooManyAttempts) as error:
            self.failed_logins += 1
            if self.failed_logins >= MAX_FAILED_LOGINS:
                await self.send(b'BYE "Too many failed logins"\r\n')
                return False
            await self.no(error.message)
            return True
        await self.ok("Logged in")
        return True

    async def mailbox_command(self, command: str, arguments: list[str], mailbox_id: int) -> bool:
        scripts = self.scripts
        if command == "LISTSCRIPTS":
            for script in await scripts.list_scripts(mailbox_id):
                await self.send(quoted(script.name), b" ACTIVE" if script.active else b"", b"\r\n")
            await self.ok()
        elif command == "GETSCRIPT" and len(arguments) == 1:
            script = await scripts.script(mailbox_id, arguments[0])
            data = script.content.encode()
            await self.send(b"{%d}\r\n" % len(data), data, b"\r\n")
            await self.ok()
        elif command == "PUTSCRIPT" and len(arguments) == 2:
            if not await self.checked(arguments[1]):
                return True
            await scripts.put_script(mailbox_id, arguments[0], arguments[1])
            await self.ok()
        elif command == "CHECKSCRIPT" and len(arguments) == 1:
            if await self.checked(arguments[0]):
                await self.ok()
        elif command == "SETACTIVE" and len(arguments) == 1:
            await scripts.set_active(mailbox_id, arguments[0] or None)
            await self.ok()
        elif command == "DELETESCRIPT" and len(arguments) == 1:
            await scripts.delete_script(mailbox_id, arguments[0])
            await self.ok()
        elif command == "RENAMESCRIPT" and len(arguments) == 2:
            await scripts.rename_script(mailbox_id, arguments[0], arguments[1])
            await self.ok()
        elif command == "HAVESPACE" and len(arguments) == 2:
            if not arguments[1].isdigit() or int(arguments[1]) > MAX_SCRIPT_BYTES:
                await self.no(f"A script is at most {MAX_SCRIPT_BYTES} bytes", "QUOTA/MAXSIZE")
            else:
                await self.ok()
        else:
            await self.no(f"Unknown command or wrong arguments: {command}")
        return True

    async def checked(self, text: str) -> bool:
        problem = check_script(text)
        if problem is None:
            return True
        await self.no(f"line {problem.line}: {problem.message}")
        return False


def _code(code: str) -> bytes:
    return f" ({code})".encode() if code else b""


async def start_managesieve_listener(
    *,
    scripts: SieveScripts,
    logins: MailboxLogins,
    host: str,
    port: int,
    tls_context: ssl.SSLContext,
    limits: ConnectionLimits,
    sock: socket.socket | None = None,
) -> ManageSieveListener:
    """Listen on host:port (0 picks a free port), or on `sock` when it was bound earlier, until
    `close()`."""
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if peer else ""
        refusal = limits.admit(ip, descriptor_of(writer.get_extra_info("socket")))
        if refusal is not None:
            text = b"Too many connections" + (
                b" from your address" if refusal is Refusal.PER_IP else b""
            )
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(b'BYE "' + text + b'"\r\n')
                await writer.drain()
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        session = Session(
            reader, writer, scripts=scripts, logins=logins, tls_context=tls_context, client_ip=ip
        )
        try:
            await session.run()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            pass  # the client went away, or never finished its TLS handshake
        except asyncio.CancelledError:
            pass  # the listener is closing
        except Exception:
            log.exception("ManageSieve session from %s failed", ip)
        finally:
            tasks.discard(task)
            limits.release(ip)
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                writer.close()

    if sock is not None:
        server = await asyncio.start_server(serve, sock=sock, limit=MAX_LINE)
    else:
        server = await asyncio.start_server(serve, host, port, limit=MAX_LINE)
    bound_host, bound_port = (sock or server.sockets[0]).getsockname()[:2]
    log.info("ManageSieve listening on %s:%d", bound_host, bound_port)
    return ManageSieveListener(server, bound_host, bound_port, tasks)

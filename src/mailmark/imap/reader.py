"""Reading one IMAP command off the stream: lines and the literals between them, all bounded.

A command is returned as its wire bytes without the final CRLF, literals inline after their
`{n}` CRLF, which is what imap/parser.py reads. Limits:
- a line over `max_line` is answered BAD as soon as it is seen and then skipped up to its LF
  without being kept;
- a synchronising literal over `max_literal` gets `NO [TOOBIG]` instead of a continuation, so the
  client never sends it and the session goes on (RFC 7888 §4 / RFC 9051 §7.1 TOOBIG);
- LITERAL+ (RFC 7888 §3): a non-synchronising literal is read like a synchronising one, without
  the continuation, under the same limit. One over it is already on its way and its octets cannot
  be told apart from commands; RFC 7888 §4 leaves the server two ways out, and both are used: up to
  MAX_DISCARD octets (the rest of the command's literals included) are read and thrown away piece by
  piece, never held, and the command is answered `NO [TOOBIG]`; beyond that the answer is
  `BAD [TOOBIG]` and the connection closes.

A literal larger than the spooling threshold (an APPEND of a large message) is received as SMTP
DATA is (smtp_in/spool.py, passed in as `spooling`): into an unlinked temporary file, then
loaded under the process's memory budget, which it holds until `release()`, once the command
is done with it. A slow client sending a large message costs a small buffer, not the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
from collections.abc import Awaitable, Callable
from typing import Protocol

from mailmark.imap.encoder import continuation
from mailmark.imap.parser import parse_tag

MAX_LINE = 1024 * 1024  # one line of a command, literals excluded
STREAM_LIMIT = 16 * 1024  # the asyncio stream buffer's limit (start_server(limit=...))
# The octets of refused non-synchronising literals one command may make the server read and drop.
MAX_DISCARD = 64 * 1024 * 1024
MAX_LITERALS = 1000  # literals in one command
_FULL = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
_LITERAL_AT_END = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}\Z")


class CommandRefused(Exception):
    """The command cannot be read: answer `<tag> <status> [<code>] <text>`; close when `fatal`."""

    def __init__(
        self, tag: str, status: str, text: str, code: str | None = None, fatal: bool = False
    ) -> None:
        super().__init__(text)
        self.tag = tag
        self.status = status
        self.text = text
        self.code = code
        self.fatal = fatal


class LiteralSpool(Protocol):
    async def write(self, piece: bytes) -> None: ...

    async def read(self) -> bytes: ...

    def close(self) -> None: ...


class MemoryBudget(Protocol):
    def hold(self, size: int) -> contextlib.AbstractAsyncContextManager[None]: ...


class LiteralSpooling(Protocol):
    """Where large literals wait while they are received (smtp_in.spool.DataSpooling)."""

    @property
    def threshold(self) -> int: ...

    @property
    def budget(self) -> MemoryBudget: ...

    def spool(self) -> LiteralSpool: ...


class CommandReader:
    def __init__(
        self,
        stream: asyncio.StreamReader,
        send: Callable[[bytes], Awaitable[None]],
        literal_limit: Callable[[bytes], int],
        *,
        max_line: int = MAX_LINE,
        spooling: LiteralSpooling | None = None,
    ) -> None:
        """`literal_limit(first_line)` says how large a literal the command starting with that
        line may carry, or raises CommandRefused (e.g. a command not allowed in this state), so
        no continuation invites data the command could never use."""
        self._stream = stream
        self._send = send
        self._literal_limit = literal_limit
        self._max_line = max_line
        self._skip_to_eol = False
        self._spooling = spooling
        self._held = contextlib.AsyncExitStack()

    def switch_stream(self, stream: asyncio.StreamReader) -> None:
        """Read from `stream` from now on (the inflated input once COMPRESS is active)."""
        self._stream = stream

    async def read_line(self) -> bytes:
        """One line without its line ending; CommandRefused(BAD) when it is over the limit.
        EOF raises asyncio.IncompleteReadError.

        The stream's own buffer limit is small (STREAM_LIMIT); a longer line is gathered from
        pieces, so the limit here can be large without a hostile line ever being held whole."""
        if self._skip_to_eol:
            await self._discard_line()
        pieces: list[bytes] = []
        size = 0
        while True:
            try:
                piece = await self._stream.readuntil(b"\n")
            except asyncio.LimitOverrunError as exc:
                # Small reads: each copies its bytes out of the stream buffer, twice.
                piece = await self._stream.read(min(exc.consumed, STREAM_LIMIT))
                size += len(piece)
                if size > self._max_line:
                    tag = parse_tag((pieces or [piece])[0][:200])
                    pieces.clear()
                    self._skip_to_eol = True
                    raise CommandRefused(tag, "BAD", "Command line too long") from None
                pieces.append(piece)
                continue
            size += len(piece)
            if size > self._max_line + 2:
                raise CommandRefused(
                    parse_tag((pieces or [piece])[0][:200]), "BAD", "Command line too long"
                )
            line = b"".join((*pieces, piece)) if pieces else piece
            return line[:-2] if line.endswith(b"\r\n") else line[:-1]

    async def _discard_line(self) -> None:
        while True:
            try:
                await self._stream.readuntil(b"\n")
            except asyncio.LimitOverrunError as exc:
                await self._stream.read(min(exc.consumed, STREAM_LIMIT))
                continue
            self._skip_to_eol = False
            return

    async def read_command(self) -> bytes:
        """The next complete command, literals included, without the final CRLF."""
        parts: list[bytes] = []
        total = 0
        for _ in range(MAX_LITERALS + 1):
            line = await self.read_line()
            total += len(line) + 2
            match = _LITERAL_AT_END.search(line)
            if match is None:
                parts.append(line)
                return b"".join(parts)
            first = parts[0] if parts else line
            tag = parse_tag(first)
            size = int(match[2])
            synchronising = not match[3]
            try:
                limit = self._literal_limit(first)
                if size > limit or total + size > limit + 4 * self._max_line:
                    # RFC 7888 §4: a synchronising literal never comes without a continuation.
                    raise CommandRefused(tag, "NO", "Literal is larger than allowed", code="TOOBIG")
            except CommandRefused:
                if not synchronising:
                    await self._discard_command(tag, size)
                raise
            if synchronising:
                await self._send(continuation("Ready for literal data"))
            data = await self._literal(tag, size)
            total += size
            parts.append(line + b"\r\n")
            parts.append(data)
        raise CommandRefused(
            parse_tag(parts[0]), "BAD", "Too many literals in one command", fatal=True
        )

    async def _literal(self, tag: str, size: int) -> bytes:
        spooling = self._spooling
        if spooling is None or size <= spooling.threshold:
            return await self._stream.readexactly(size)
        spool = spooling.spool()
        try:
            remaining = size
            while remaining:
                piece = await self._stream.read(min(remaining, 4 * STREAM_LIMIT))
                if not piece:
                    raise asyncio.IncompleteReadError(b"", remaining)
                remaining -= len(piece)
                try:
                    await spool.write(piece)
                except OSError as error:
                    # The client sends the rest regardless: read it and drop it, then answer
                    # as a full store is answered (RFC 5530 §3).
                    await self._discard_command(tag, remaining)
                    if error.errno in _FULL:
                        raise CommandRefused(
                            tag, "NO", "The server's disk is full; nothing was stored.", "OVERQUOTA"
                        ) from None
                    raise CommandRefused(
                        tag, "NO", "The message could not be received; try again.", "UNAVAILABLE"
                    ) from None
            await self._held.enter_async_context(spooling.budget.hold(size))
            return await spool.read()
        finally:
            spool.close()

    async def release(self) -> None:
        """Give back the memory budget the literals of the last command held."""
        await self._held.aclose()

    async def _discard_command(self, tag: str, size: int) -> None:
        """Read and drop a refused non-synchronising literal of `size` octets and the rest of its
        command, literals included (a later `{n+}` is data too, never commands). Past MAX_DISCARD
        octets, or when the rest cannot be read, the connection has to close (RFC 7888 §4)."""
        fatal = CommandRefused(
            tag, "BAD", "Non-synchronizing literal is larger than allowed", "TOOBIG", fatal=True
        )
        budget = MAX_DISCARD
        for _ in range(MAX_LITERALS):
            if size > budget:
                raise fatal
            budget -= size
            while size:
                size -= len(await self._stream.readexactly(min(size, STREAM_LIMIT)))
            try:
                line = await self.read_line()
            except CommandRefused:
                raise fatal from None
            match = _LITERAL_AT_END.search(line)
            if match is None or not match[3]:
                # The command ends here, or the client waits for a continuation it will not get.
                return
            size = int(match[2])
        raise fatal

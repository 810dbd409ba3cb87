"""The per-connection IMAP state machine (RFC 9051 §3): not authenticated → authenticated →
selected → logout.

A session reads one command, checks that the state allows it, hands it to the handler of its
command group (imap/handlers/), and writes the tagged reply. Around that it keeps what the
connection knows: the logged-in mailbox, the selected folder's UID list (sequence number n is
uids[n-1]), its HIGHESTMODSEQ, and the extensions enabled. Changes made by other sessions are
announced as untagged EXISTS/EXPUNGE/FETCH at command boundaries (RFC 9051 §5.2, §7.5).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from mailmark.core import search
from mailmark.core.cpu_pool import CpuPool
from mailmark.core.cpu_ration import ProcessorRation
from mailmark.core.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    InvalidInput,
    MailmarkError,
    MessageTooLarge,
    NotFound,
    QuotaExceeded,
    StorageFull,
    StorageUnavailable,
    TooManyAttempts,
)
from mailmark.core.folder_signals import FolderSignals
from mailmark.core.logins import MailboxLogins
from mailmark.core.mailstore import SYSTEM_FLAGS, FlagState, MailStore
from mailmark.core.model import Mailbox
from mailmark.imap import encoder, mutf7
from mailmark.imap.commands import (
    Append,
    Authenticate,
    Command,
    Compress,
    Copy,
    Enable,
    Expunge,
    Fetch,
    Id,
    ListCommand,
    Login,
    MailboxCommand,
    Quota,
    Rename,
    Search,
    Select,
    SequenceRef,
    SequenceSet,
    Simple,
    Sort,
    Status,
    Store,
    Thread,
)
from mailmark.imap.compression import Deflater, Inflater
from mailmark.imap.parser import ParseError, parse_command, parse_tag
from mailmark.imap.reader import MAX_LINE, CommandReader, CommandRefused, LiteralSpooling

log = logging.getLogger(__name__)

# Literals for commands other than APPEND (a password, a search string) stay small.
SMALL_LITERAL = 64 * 1024
# Output kept before it is handed to the transport (Session.write).
OUTPUT_BATCH = 64 * 1024


class SessionState(StrEnum):
    """RFC 9051 §3; the text is what "Command not allowed when …" replies say."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class Reply(Exception):
    """Raised by handlers to end a command with `<tag> NO|BAD [code] text`."""

    def __init__(self, status: str, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code


@dataclass(frozen=True)
class Done:
    """What a handler ends its command with: `<tag> OK [code] text`."""

    text: str
    code: str | None = None


# A handler that wrote its own tagged reply (STARTTLS must before the handshake) returns this.
ANSWERED = Done("")


@dataclass
class SelectedFolder:
    folder_id: int
    name: str
    read_only: bool
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    uids: list[int]
    keywords: set[str]
    # The MODSEQ this session last announced per UID, so its own changes are not echoed back.
    announced: dict[int, int] = field(default_factory=dict)
    # Expunges learnt of while they could not be announced (during FETCH, STORE, SEARCH).
    pending_expunges: set[int] = field(default_factory=set)
    saved: list[int] = field(default_factory=list)  # SEARCHRES `$` (RFC 5182)
    # RFC 3501 §2.3.2: the UIDs that are \Recent to this session (IMAP4rev1 only).
    recent: set[int] = field(default_factory=set)
    generation: int = 0
    polled_at: float = 0.0

    def seq_of(self, uid: int) -> int | None:
        index = bisect.bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def sees(self, uid: int) -> bool:
        return self.seq_of(uid) is not None


@dataclass
class ImapCounters:
    """What the sessions of one listener have cost, for tests, benchmarks and monitoring."""

    bytes_decoded: int = 0  # encoded body bytes run through a BINARY decoder (base64, QP)


@dataclass(frozen=True)
class SessionConfig:
    hostname: str
    max_message_size: int
    idle_timeout: float
    tls_context: ssl.SSLContext
    # Seconds between a selected session's looks at its folder's HIGHESTMODSEQ for changes made
    # by other nodes (the in-process folder signals wake it at once for this node's).
    poll_interval: float = 5.0
    counters: ImapCounters = field(default_factory=ImapCounters)
    # Where FETCH parses and decodes large messages; not started, it uses a thread.
    cpu: CpuPool = field(default_factory=lambda: CpuPool(workers=0))
    # Where large APPEND literals wait while they arrive (None: in memory).
    spooling: LiteralSpooling | None = None
    # Processor time per client address (core/cpu_ration.py), shared by the listeners; None: no
    # limit.
    ration: ProcessorRation | None = None


Handler = Callable[["Session", Command], Awaitable[Done | None]]


class Session:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        config: SessionConfig,
        store: MailStore,
        logins: MailboxLogins,
        handlers: dict[str, tuple[frozenset[SessionState], Handler]],
        tls: bool,
    ) -> None:
        self.stream = reader
        self.writer = writer
        self.config = config
        self.store = store
        self.logins = logins
        self.signals: FolderSignals = store.signals
        self._handlers = handlers
        self.tls = tls
        self.state = SessionState.NOT_AUTHENTICATED
        self.mailbox: Mailbox | None = None
        self._selected: SelectedFolder | None = None
        self.enabled: set[str] = set()
        self.condstore = False
        peer = writer.get_extra_info("peername")
        self.client_ip = str(peer[0]) if peer else ""
        ration = config.ration
        self._ration = ration if ration is not None and ration.applies_to(self.client_ip) else None
        self.reader = CommandReader(
            reader, self.send, self._literal_limit, max_line=MAX_LINE, spooling=config.spooling
        )
        self._inflater: Inflater | None = None
        self._deflater: Deflater | None = None
        # Output written since the last flush, sent as one piece: over TLS every transport write
        # is a record and a send of its own, and a SELECT answers in nine lines.
        self._output: list[bytes] = []
        self._output_bytes = 0

    @property
    def selected(self) -> SelectedFolder | None:
        return self._selected

    @selected.setter
    def selected(self, folder: SelectedFolder | None) -> None:
        """Selecting and deselecting tell the store which messages this session still sees."""
        if self._selected is not None:
            self.store.close_view(self._selected.folder_id, self._selected)
        self._selected = folder
        if folder is not None:
            self.store.open_view(folder.folder_id, folder)

    # Output

    async def send(self, data: bytes) -> None:
        self.write(data)
        await self.flush()

    def write(self, data: bytes) -> None:
        """Queue output; `flush` (or the next `send`) pushes it out. More than OUTPUT_BATCH
        bytes go to the transport at once, so a large response is never held whole here."""
        if self._deflater is not None:
            data = self._deflater.compress(data)
        self._output.append(data)
        self._output_bytes += len(data)
        if self._output_bytes >= OUTPUT_BATCH:
            self._push()

    async def flush(self) -> None:
        if self._deflater is not None:
            self._output.append(self._deflater.flush())
        self._push()
        await self.writer.drain()

    def _push(self) -> None:
        if self._output:
            self.writer.write(b"".join(self._output))
            self._output.clear()
            self._output_bytes = 0

    # COMPRESS=DEFLATE (RFC 4978)

    @property
    def compressed(self) -> bool:
        return self._deflater is not None

    def start_compression(self) -> None:
        """Everything after the tagged OK to COMPRESS is deflated, both ways (RFC 4978 §3)."""
        self._inflater = Inflater(self.stream)
        self._deflater = Deflater()
        self.reader.switch_stream(self._inflater.stream)

    def close(self) -> None:
        """The connection is over: leave the selected folder, stop inflating input."""
        self.selected = None
        if self._inflater is not None:
            self._inflater.close()

    # Names: modified UTF-7 until IMAP4rev2 (RFC 9051 §5.1) or UTF8=ACCEPT (RFC 6855 §3) is
    # enabled, UTF-8 quoted strings then.

    @property
    def rev2(self) -> bool:
        return "IMAP4REV2" in self.enabled

    @property
    def utf8_accept(self) -> bool:
        return "UTF8=ACCEPT" in self.enabled

    @property
    def utf8(self) -> bool:
        return self.rev2 or self.utf8_accept

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    def decode_name(self, name: str) -> str:
        if self.utf8:
            return name
        try:
            return mutf7.decode(name)
        except mutf7.MailboxNameError as exc:
            raise Reply("NO", str(exc), "CANNOT") from None

    def encode_name(self, name: str) -> bytes:
        if self.utf8:
            return encoder.string(name, utf8=True)
        return encoder.string(mutf7.encode(name))

    @property
    def mailbox_id(self) -> int:
        assert self.mailbox is not None and self.mailbox.id is not None
        return self.mailbox.id

    # The main loop

    async def run(self) -> None:
        await self.send(
            encoder.untagged_status(
                "OK", f"{self.config.hostname} Mailmark IMAP ready", self.capability_code()
            )
        )
        try:
            await self._serve_commands()
        finally:
            await self.reader.release()

    async def _serve_commands(self) -> None:
        while self.state != SessionState.LOGOUT:
            # Nothing written is left waiting while the client is waited for.
            self._push()
            # What the previous command's literals held of the memory budget is free again.
            await self.reader.release()
            if self._ration is not None:
                # The next command is not even read while this address is over its ration: what
                # it pipelines waits in the socket's buffers, then in the client's.
                await self._ration.wait_turn(self.client_ip)
            try:
                data = await asyncio.wait_for(self.reader.read_command(), self.config.idle_timeout)
            except TimeoutError:
                # RFC 3501 §5.4: the autologout timer.
                await self.send(encoder.untagged_status("BYE", "Autologout; idle for too long"))
                return
            except CommandRefused as refused:
                await self.send(
                    encoder.tagged(refused.tag, refused.status, refused.text, refused.code)
                )
                if refused.fatal:
                    await self.send(encoder.untagged_status("BYE", "Closing the connection"))
                    return
                continue
            try:
                if self._ration is None:
                    await self.execute(data)
                else:
                    await self._ration.run(self.client_ip, self.execute(data))
            except TimeoutError:
                # A command waiting on the client (IDLE, an AUTHENTICATE exchange) ran out the timer.
                await self.send(encoder.untagged_status("BYE", "Autologout; idle for too long"))
                return

    def _literal_limit(self, first_line: bytes) -> int:
        words = first_line.split(b" ", 3)
        verb = words[1].upper() if len(words) > 1 else b""
        if verb == b"UID" and len(words) > 2:
            verb = words[2].upper()
        allowed = self._handlers.get(verb.decode("ascii", "replace"))
        if allowed is None:
            raise CommandRefused(parse_tag(first_line), "BAD", "Unknown command")
        if self.state not in allowed[0]:
            raise CommandRefused(
                parse_tag(first_line), "BAD", f"Command not allowed when {self.state}"
            )
        if verb == b"APPEND":
            return self.config.max_message_size
        return SMALL_LITERAL

    async def execute(self, data: bytes) -> None:
        try:
            command = parse_command(data)
        except ParseError as exc:
            await self.send(encoder.tagged(exc.tag, "BAD", exc.text))
            return
        verb = command_verb(command)
        entry = self._handlers.get(verb)
        if entry is None:
            await self.send(encoder.tagged(command.tag, "BAD", f"Unknown command {verb}"))
            return
        states, handler = entry
        if self.state not in states:
            if SessionState.SELECTED in states and self.state == SessionState.AUTHENTICATED:
                text = "No mailbox selected"
            else:
                text = f"Command not allowed when {self.state}"
            await self.send(encoder.tagged(command.tag, "BAD", text))
            return
        try:
            done = await handler(self, command)
        except (Reply, MailmarkError, CommandRefused) as exc:
            if isinstance(exc, CommandRefused):
                # A line read inside the command (IDLE's DONE, a SASL response) was refused.
                reply = Reply(exc.status, exc.text, exc.code)
            else:
                reply = exc if isinstance(exc, Reply) else error_reply(exc)
            if self.selected is not None:
                await self.announce_changes(expunges=_expunges_allowed(command))
            await self.send(encoder.tagged(command.tag, reply.status, reply.text, reply.code))
            return
        if done is ANSWERED:
            return
        if self.state == SessionState.LOGOUT:
            await self.send(encoder.tagged(command.tag, "OK", "LOGOUT completed"))
            return
        if self.selected is not None:
            await self.announce_changes(expunges=_expunges_allowed(command))
        done = done or Done(f"{verb} completed")
        await self.send(encoder.tagged(command.tag, "OK", done.text, done.code))

    # Capabilities (RFC 9051 §7.2.2); only what works is advertised.

    def capabilities(self) -> list[str]:
        caps = [
            "IMAP4rev1",
            "IMAP4rev2",
            "LITERAL+",
            "SASL-IR",
            "ID",
            "ENABLE",
            "UTF8=ACCEPT",
            "IDLE",
            "NAMESPACE",
        ]
        if self.state != SessionState.NOT_AUTHENTICATED:
            caps.append("COMPRESS=DEFLATE")
        if self.state == SessionState.NOT_AUTHENTICATED:
            if self.tls:
                caps.append("AUTH=PLAIN")
            else:
                caps += ["STARTTLS", "LOGINDISABLED"]
        caps += [
            "UIDPLUS",
            "MULTIAPPEND",
            "MOVE",
            "UNSELECT",
            "CHILDREN",
            "SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "ESEARCH",
            "SEARCHRES",
            "SORT",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "CONDSTORE",
            "QRESYNC",
            "BINARY",
            "STATUS=SIZE",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "QUOTA=RES-MESSAGE",
        ]
        return caps

    def capability_code(self) -> str:
        return "CAPABILITY " + " ".join(self.capabilities())

    # Sequence sets → UIDs

    def resolve(self, sequence: SequenceSet, *, uid: bool, strict: bool = True) -> list[int]:
        """The UIDs a sequence set names, ascending. A message sequence number beyond the folder
        is a BAD (RFC 9051 §6.4.5) unless not `strict` (SEARCH: it matches nothing); UIDs that
        do not exist are simply left out (RFC 9051 §6.4.9)."""
        selected = self.selected
        assert selected is not None
        uids = selected.uids
        if sequence.saved:
            return [u for u in selected.saved if selected.seq_of(u) is not None]
        picked: set[int] = set()
        if uid:
            ranges = sequence.resolve(uids[-1] if uids else 0)
            if len(ranges) == 1:
                # The common `1:*` or `n:m`: a slice, already ascending and without repeats.
                low, high = ranges[0]
                return uids[bisect.bisect_left(uids, low) : bisect.bisect_right(uids, high)]
            for low, high in ranges:
                picked.update(uids[bisect.bisect_left(uids, low) : bisect.bisect_right(uids, high)])
            return sorted(picked)
        count = len(uids)
        for low, high in sequence.resolve(count):
            if high > count:
                if strict:
                    raise Reply("BAD", "Invalid message sequence number")
                high = count
            picked.update(uids[max(low, 1) - 1 : high])
        return sorted(picked)

    def resolve_criteria(self, criteria: search.Criteria) -> search.Criteria:
        """Replace the sequence sets inside SEARCH criteria by the UIDs they name."""
        if isinstance(criteria, SequenceRef):
            return search.UidSet.of(self.resolve(criteria.sequence, uid=criteria.uid, strict=False))
        # RFC 3501 §6.4.4: \Recent is this session's, so RECENT, NEW and OLD are resolved here.
        if isinstance(criteria, search.Recent | search.New | search.Old) or (
            isinstance(criteria, search.Flag) and criteria.name.lower() == "\\recent"
        ):
            assert self.selected is not None
            recent = search.UidSet.of(sorted(self.selected.recent) if not self.rev2 else [])
            if isinstance(criteria, search.New):
                return search.And((recent, search.Flag("\\Seen", False)))
            if isinstance(criteria, search.Old) or (
                isinstance(criteria, search.Flag) and not criteria.present
            ):
                return search.Not(recent)
            return recent
        if isinstance(criteria, search.And):
            return search.And(tuple(self.resolve_criteria(item) for item in criteria.items))
        if isinstance(criteria, search.Or):
            return search.Or(
                self.resolve_criteria(criteria.left), self.resolve_criteria(criteria.right)
            )
        if isinstance(criteria, search.Not):
            return search.Not(self.resolve_criteria(criteria.item))
        return criteria

    def enable_condstore(self) -> None:
        """RFC 7162 §3.1: the first CONDSTORE-enabling command while a folder is selected is
        told the folder's HIGHESTMODSEQ (SELECT and EXAMINE report it themselves)."""
        if self.condstore:
            return
        self.condstore = True
        if self.selected is not None:
            self.write(
                encoder.untagged_status(
                    "OK", "Highest", f"HIGHESTMODSEQ {self.selected.highestmodseq}"
                )
            )

    # Changes made elsewhere

    def announce_keywords(self, flags: Iterable[str]) -> None:
        """RFC 9051 §7.3.5: before any response that uses a keyword the client was not told
        of (another session added it), an updated FLAGS, and PERMANENTFLAGS when writable."""
        selected = self.selected
        assert selected is not None
        known = {keyword.lower() for keyword in selected.keywords}
        new = {flag for flag in flags if not flag.startswith("\\") and flag.lower() not in known}
        if not new:
            return
        selected.keywords |= new
        everything = [*SYSTEM_FLAGS, *sorted(selected.keywords)]
        self.write(encoder.untagged(b"FLAGS " + encoder.flag_list(everything)))
        if not selected.read_only:
            permanent = encoder.flag_list([*everything, "\\*"]).decode()
            self.write(
                encoder.untagged_status("OK", "Flags permitted", f"PERMANENTFLAGS {permanent}")
            )

    def flags_of(self, uid: int, flags: Sequence[str]) -> Sequence[str]:
        """A message's flags as this session shows them: with \\Recent when it is recent to
        this IMAP4rev1 session (RFC 3501 §2.3.2)."""
        selected = self.selected
        if selected is not None and uid in selected.recent and not self.rev2:
            return (*flags, "\\Recent")
        return flags

    async def claim_recent(self, uids: Sequence[int]) -> None:
        """Make the newly seen `uids` recent to this session unless another saw them first."""
        selected = self.selected
        assert selected is not None
        if self.rev2 or selected.read_only or not uids:
            return
        first = await self.store.claim_recent(selected.folder_id, max(uids) + 1)
        selected.recent.update(uid for uid in uids if uid >= first)

    def flag_fetch(self, seq: int, state: FlagState, with_uid: bool = True) -> bytes:
        items = [b"FLAGS " + encoder.flag_list(self.flags_of(state.uid, state.flags))]
        if with_uid:
            items.append(b"UID %d" % state.uid)
        if self.condstore:
            items.append(b"MODSEQ (%d)" % state.modseq)
        return encoder.fetch(seq, items)

    async def announce_changes(self, *, expunges: bool) -> bool:
        """Tell the client what changed in the selected folder since it last looked; True when
        something was sent. EXPUNGE responses wait while `expunges` is False (RFC 9051 §7.5.1:
        not during FETCH, STORE or SEARCH, which address messages by sequence number)."""
        selected = self.selected
        if selected is None:
            return False
        generation = self.signals.generation(self.mailbox_id)
        now = time.monotonic()
        if generation == selected.generation:
            if expunges and selected.pending_expunges:
                self.remove_expunged(sorted(selected.pending_expunges))
                await self.flush()
                return True
            if now - selected.polled_at < self.config.poll_interval:
                return False
            # Another node may have changed the folder: a cheap look before the full query.
            selected.polled_at = now
            highest, uidnext = await self.store.highest_modseq(selected.folder_id)
            if highest <= selected.highestmodseq and uidnext <= selected.uidnext:
                return False
        selected.generation = generation
        selected.polled_at = now
        changes = await self.store.changes_since(selected.folder_id, selected.highestmodseq)
        sent = False
        selected.pending_expunges.update(changes.expunged_among(selected.uids))
        if expunges and selected.pending_expunges:
            self.remove_expunged(sorted(selected.pending_expunges))
            sent = True
        new: list[int] = []
        last = selected.uids[-1] if selected.uids else 0
        for state in changes.changed:
            if state.uid > last and state.uid not in selected.pending_expunges:
                new.append(state.uid)
                selected.announced[state.uid] = state.modseq
                continue
            seq = selected.seq_of(state.uid)
            if seq is None or selected.announced.get(state.uid) == state.modseq:
                continue
            selected.announced[state.uid] = state.modseq
            self.announce_keywords(state.flags)
            self.write(self.flag_fetch(seq, state))
            sent = True
        if new:
            selected.uids.extend(sorted(new))
            await self.claim_recent(new)
            self.write(b"* %d EXISTS\r\n" % len(selected.uids))
            if not self.rev2:
                self.write(b"* %d RECENT\r\n" % len(selected.recent))
            sent = True
        selected.highestmodseq = max(selected.highestmodseq, changes.highestmodseq)
        selected.uidnext = max(selected.uidnext, changes.uidnext)
        if sent:
            await self.flush()
        return sent

    def note_own_changes(self, states: Sequence[FlagState]) -> None:
        if self.selected is not None:
            for state in states:
                self.selected.announced[state.uid] = state.modseq

    def write_vanished(self, ranges: Sequence[tuple[int, int]]) -> None:
        """`* VANISHED (EARLIER)` for these UID ranges (RFC 7162 §3.2.10), if any."""
        if ranges:
            listed = ",".join(str(low) if low == high else f"{low}:{high}" for low, high in ranges)
            self.write(b"* VANISHED (EARLIER) " + listed.encode() + b"\r\n")

    def remove_expunged(self, uids: Sequence[int]) -> None:
        """Send `* n EXPUNGE` for UIDs this session expunged or moved away, highest first so the
        numbers of the others are not shifted by earlier responses (VANISHED under QRESYNC)."""
        selected = self.selected
        assert selected is not None
        gone: list[int] = []
        for uid in sorted(uids, reverse=True):
            seq = selected.seq_of(uid)
            if seq is not None:
                del selected.uids[seq - 1]
                selected.announced.pop(uid, None)
                selected.recent.discard(uid)
                selected.pending_expunges.discard(uid)
                gone.append(uid)
                if not self.qresync:
                    self.write(b"* %d EXPUNGE\r\n" % seq)
        if self.qresync and gone:
            # RFC 7162 §3.2.10: with QRESYNC, VANISHED (by UID) replaces EXPUNGE.
            self.write(b"* VANISHED " + encoder.sequence_set(sorted(gone)).encode() + b"\r\n")
        if gone:
            self.store.view_changed(selected.folder_id)


def error_reply(error: MailmarkError) -> Reply:
    """Core errors as IMAP replies, with RFC 5530 response codes; mapped here once."""
    codes: list[tuple[type[MailmarkError], str]] = [
        (MessageTooLarge, "TOOBIG"),
        (NotFound, "NONEXISTENT"),
        (Conflict, "ALREADYEXISTS"),
        (Forbidden, "CANNOT"),
        (InvalidInput, "CANNOT"),
        (QuotaExceeded, "OVERQUOTA"),
        (AuthenticationFailed, "AUTHENTICATIONFAILED"),
        (TooManyAttempts, "UNAVAILABLE"),
        # RFC 5530 §3: OVERQUOTA when storage is full, UNAVAILABLE when it is temporarily not
        # there; either way nothing was stored and the session goes on.
        (StorageFull, "OVERQUOTA"),
        (StorageUnavailable, "UNAVAILABLE"),
    ]
    code = next((code for kind, code in codes if isinstance(error, kind)), None)
    return Reply("NO", error.message, code)


def command_verb(command: Command) -> str:
    """The verb a command is dispatched on (UID forms share their command's verb)."""
    if isinstance(command, (Simple, MailboxCommand, Quota)):
        return command.name
    if isinstance(command, ListCommand):
        return "LSUB" if command.lsub else "LIST"
    if isinstance(command, Copy):
        return "MOVE" if command.move else "COPY"
    if isinstance(command, Select):
        return "EXAMINE" if command.read_only else "SELECT"
    return _VERBS[type(command)]


_VERBS: dict[type[Command], str] = {
    Login: "LOGIN",
    Authenticate: "AUTHENTICATE",
    Enable: "ENABLE",
    Compress: "COMPRESS",
    Id: "ID",
    Rename: "RENAME",
    Status: "STATUS",
    Append: "APPEND",
    Search: "SEARCH",
    Sort: "SORT",
    Thread: "THREAD",
    Fetch: "FETCH",
    Store: "STORE",
    Expunge: "EXPUNGE",
}


def _expunges_allowed(command: Command) -> bool:
    # RFC 9051 §7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH (UID forms excepted).
    if isinstance(command, (Fetch, Store, Search, Sort, Thread)):
        return command.uid
    return True

"""The IMAP command parser: the bytes of one complete command (literals included, as they came
on the wire) -> a typed command from imap/commands.py, or ParseError.

Pure: no I/O, no state but the bytes. Grammar from RFC 9051 §9 (and RFC 3501 §9 where rev1
differs); every loop is bounded by the input and every nesting by MAX_DEPTH, so hostile input gets
a ParseError, never a RecursionError.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from mailmark.core import search
from mailmark.core.imap_sort import SORT_KEYS, THREAD_ALGORITHMS, SortKey
from mailmark.core.mailstore import StoreMode
from mailmark.core.states import SystemFlag
from mailmark.imap.commands import (
    Append,
    AppendMessage,
    Authenticate,
    Command,
    Compress,
    Copy,
    Enable,
    Expunge,
    Fetch,
    FetchAttribute,
    Id,
    ListCommand,
    Login,
    MailboxCommand,
    QresyncParameters,
    Quota,
    Rename,
    Search,
    Section,
    Select,
    SequenceRef,
    SequenceSet,
    Simple,
    Sort,
    Status,
    Store,
    Thread,
)

MAX_DEPTH = 32  # parenthesised search keys nest at most this deep
MAX_ITEMS = 10_000  # items in one list, ranges in one sequence set
MAX_NUMBER = 2**63 - 1  # RFC 9051 number64; nz-number and uniqueid are 32-bit
MAX_UINT32 = 2**32 - 1

# RFC 9051 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
# resp-specials. ASTRING-CHAR adds "]" back.
_ATOM_EXCLUDED = frozenset(b'(){ %*"\\]') | frozenset(range(0x20)) | {0x7F}
_ASTRING_EXCLUDED = _ATOM_EXCLUDED - {ord("]")}
_LIST_EXCLUDED = _ASTRING_EXCLUDED - {ord("%"), ord("*")}
_TAG_EXCLUDED = _ASTRING_EXCLUDED | {ord("+")}
_LITERAL = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}\r\n")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_DATE = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})\Z")
_DATE_TIME = re.compile(
    r"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z"
)
# Any case is the same flag (RFC 9051 §2.3.2); `\Recent` is read, never stored.
SYSTEM_FLAGS: dict[str, str] = {
    **{flag.upper(): flag for flag in SystemFlag},
    "\\RECENT": "\\Recent",
}
_SIMPLE_COMMANDS = frozenset(
    {"CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "UNSELECT", "IDLE", "NAMESPACE"}
)
_FETCH_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_FETCH_SIMPLE = frozenset(
    {
        "FLAGS",
        "UID",
        "INTERNALDATE",
        "RFC822.SIZE",
        "ENVELOPE",
        "BODYSTRUCTURE",
        "BODY",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.TEXT",
        "MODSEQ",
    }
)
_STATUS_ITEMS = frozenset(
    {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE"}
)


class ParseError(Exception):
    """A command that does not follow the grammar; answered with `<tag> BAD <text>`."""

    def __init__(self, tag: str, text: str) -> None:
        super().__init__(text)
        self.tag = tag
        self.text = text


class _Syntax(Exception):
    """Raised inside the parser; parse_command adds the tag."""


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def peek_is(self, text: bytes) -> bool:
        return self.data.startswith(text, self.pos)

    def expect(self, text: bytes, what: str) -> None:
        if not self.data.startswith(text, self.pos):
            raise _Syntax(f"expected {what}")
        self.pos += len(text)

    def sp(self) -> None:
        self.expect(b" ", "a space")

    def optional_sp(self) -> bool:
        if self.peek() == 0x20:
            self.pos += 1
            return True
        return False

    def run(self, excluded: frozenset[int]) -> bytes:
        start = self.pos
        data = self.data
        end = len(data)
        position = start
        while position < end and data[position] not in excluded and data[position] < 0x80:
            position += 1
        self.pos = position
        return data[start:position]

    def atom(self, what: str = "an atom") -> str:
        chunk = self.run(_ATOM_EXCLUDED)
        if not chunk:
            raise _Syntax(f"expected {what}")
        return chunk.decode("ascii")

    def number(self, limit: int = MAX_UINT32) -> int:
        start = self.pos
        while self.peek() is not None and 0x30 <= self.data[self.pos] <= 0x39:
            self.pos += 1
            if self.pos - start > 20:
                raise _Syntax("number too long")
        if start == self.pos:
            raise _Syntax("expected a number")
        value = int(self.data[start : self.pos])
        if value > limit:
            raise _Syntax("number out of range")
        return value

    def nz_number(self) -> int:
        value = self.number()
        if value == 0:
            raise _Syntax("expected a non-zero number")
        return value

    def quoted(self) -> bytes:
        self.expect(b'"', "a quoted string")
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise _Syntax("unterminated quoted string")
            byte = data[self.pos]
            self.pos += 1
            if byte == 0x22:
                return bytes(out)
            if byte == 0x5C:
                if self.pos >= len(data) or data[self.pos] not in (0x22, 0x5C):
                    raise _Syntax("invalid escape in quoted string")
                out.append(data[self.pos])
                self.pos += 1
            elif byte in (0x0D, 0x0A, 0x00):
                raise _Syntax("line break inside a quoted string")
            else:
                out.append(byte)

    def literal(self, allow_binary: bool = False) -> tuple[bytes, bool]:
        """A literal's bytes and whether it was a literal8 (`~{n}`, RFC 3516)."""
        match = _LITERAL.match(self.data, self.pos)
        if match is None:
            raise _Syntax("malformed literal")
        binary = bool(match[1])
        if binary and not allow_binary:
            raise _Syntax("a literal8 is only allowed in APPEND")
        size = int(match[2])
        start = match.end()
        if start + size > len(self.data):
            raise _Syntax("literal is shorter than announced")
        self.pos = start + size
        value = self.data[start : self.pos]
        if not binary and b"\x00" in value:
            raise _Syntax("NUL in a literal (RFC 9051 §4.3)")
        return value, binary

    def string_bytes(self) -> bytes:
        byte = self.peek()
        if byte == 0x22:
            return self.quoted()
        if byte == 0x7B:
            return self.literal()[0]
        raise _Syntax("expected a string")

    def astring_bytes(self, excluded: frozenset[int] = _ASTRING_EXCLUDED) -> bytes:
        byte = self.peek()
        if byte in (0x22, 0x7B):
            return self.string_bytes()
        chunk = self.run(excluded)
        if not chunk:
            raise _Syntax("expected a string or atom")
        return chunk

    def astring(self) -> str:
        return _text(self.astring_bytes())

    def string(self) -> str:
        return _text(self.string_bytes())

    def nstring(self) -> str | None:
        if self.data[self.pos : self.pos + 3].upper() == b"NIL" and self._boundary(self.pos + 3):
            self.pos += 3
            return None
        return self.string()

    def _boundary(self, position: int) -> bool:
        return position >= len(self.data) or self.data[position] in b" )"

    def end(self) -> None:
        if not self.at_end():
            raise _Syntax("unexpected characters at the end of the command")


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Syntax("string is not valid UTF-8") from exc


def parse_tag(line: bytes) -> str:
    """The tag of a (possibly malformed) command, or "*" when even that is unreadable."""
    cursor = _Cursor(line)
    chunk = cursor.run(_TAG_EXCLUDED)
    return chunk.decode("ascii") if chunk and cursor.peek() == 0x20 else "*"


def parse_command(data: bytes) -> Command:
    """Parse one command (without its final CRLF)."""
    cursor = _Cursor(data)
    tag = "*"
    try:
        raw_tag = cursor.run(_TAG_EXCLUDED)
        if not raw_tag or cursor.peek() not in (0x20, None):
            raise _Syntax("missing or invalid tag")
        tag = raw_tag.decode("ascii")
        cursor.sp()
        name = cursor.atom("a command name").upper()
        command = _parse_body(cursor, tag, name)
        cursor.end()
        return command
    except _Syntax as exc:
        raise ParseError(tag, str(exc)) from None
    except RecursionError:  # not reachable with MAX_DEPTH, kept as a last line of defence
        raise ParseError(tag, "command nests too deeply") from None


def _parse_body(cur: _Cursor, tag: str, name: str) -> Command:
    if name in _SIMPLE_COMMANDS:
        return Simple(tag, name)
    if name == "EXPUNGE":
        return Expunge(tag)
    if name == "LOGIN":
        cur.sp()
        user = cur.astring()
        cur.sp()
        return Login(tag, user, cur.astring())
    if name == "AUTHENTICATE":
        cur.sp()
        mechanism = cur.atom("a SASL mechanism").upper()
        initial = None
        if cur.optional_sp():
            initial = cur.run(_ATOM_EXCLUDED).decode("ascii")
            if not initial:
                raise _Syntax("expected a base64 initial response")
        return Authenticate(tag, mechanism, initial)
    if name == "COMPRESS":
        cur.sp()
        return Compress(tag, cur.atom("a compression mechanism").upper())
    if name == "ENABLE":
        extensions = []
        while cur.optional_sp():
            extensions.append(cur.atom("a capability").upper())
            if len(extensions) > 100:
                raise _Syntax("too many capabilities")
        if not extensions:
            raise _Syntax("ENABLE needs at least one capability")
        return Enable(tag, tuple(extensions))
    if name == "ID":
        cur.sp()
        return Id(tag, _id_fields(cur))
    if name in ("SELECT", "EXAMINE"):
        cur.sp()
        mailbox = _mailbox(cur)
        condstore, qresync = False, None
        if cur.optional_sp():
            condstore, qresync = _select_parameters(cur)
        return Select(
            tag, mailbox, read_only=name == "EXAMINE", condstore=condstore, qresync=qresync
        )
    if name in ("GETQUOTA", "SETQUOTA"):
        cur.sp()
        root = cur.astring()
        limits: list[tuple[str, int]] = []
        if name == "SETQUOTA":
            # RFC 9208 formal syntax: "(" [setquota-resource *(SP setquota-resource)] ")"
            cur.sp()
            cur.expect(b"(", "'('")
            while not cur.peek_is(b")"):
                if limits:
                    cur.sp()
                resource = cur.atom("a resource name").upper()
                cur.sp()
                limits.append((resource, cur.number(MAX_NUMBER)))
                if len(limits) > 100:
                    raise _Syntax("too many quota resources")
            cur.expect(b")", "')'")
        return Quota(tag, name, root, tuple(limits))
    if name == "GETQUOTAROOT":
        cur.sp()
        return MailboxCommand(tag, name, _mailbox(cur))
    if name in ("CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE"):
        cur.sp()
        mailbox = _mailbox(cur)
        if name == "CREATE" and cur.optional_sp():
            _skip_parenthesised(cur)  # RFC 4466 create parameters (e.g. USE): accepted, ignored
        return MailboxCommand(tag, name, mailbox)
    if name == "RENAME":
        cur.sp()
        old = _mailbox(cur)
        cur.sp()
        return Rename(tag, old, _mailbox(cur))
    if name == "LIST":
        return _list(cur, tag)
    if name == "LSUB":
        cur.sp()
        reference = _mailbox(cur)
        cur.sp()
        return ListCommand(tag, reference, (_list_mailbox(cur),), lsub=True)
    if name == "STATUS":
        cur.sp()
        mailbox = _mailbox(cur)
        cur.sp()
        items = tuple(item.upper() for item in _atom_list(cur))
        unknown = [item for item in items if item not in _STATUS_ITEMS]
        if unknown or not items:
            raise _Syntax(f"unknown STATUS item {unknown[0]}" if unknown else "no STATUS items")
        return Status(tag, mailbox, items)
    if name == "APPEND":
        return _append(cur, tag)
    if name == "UID":
        cur.sp()
        sub = cur.atom("a UID command").upper()
        if sub == "EXPUNGE":
            cur.sp()
            return Expunge(tag, _sequence_set(cur))
        if sub not in _SELECTED_COMMANDS:
            raise _Syntax(f"unknown UID command {sub}")
        return _selected(cur, tag, sub, uid=True)
    if name in _SELECTED_COMMANDS:
        return _selected(cur, tag, name, uid=False)
    raise _Syntax(f"unknown command {name}")


_SELECTED_COMMANDS = frozenset({"FETCH", "SEARCH", "SORT", "THREAD", "STORE", "COPY", "MOVE"})


def _selected(cur: _Cursor, tag: str, name: str, *, uid: bool) -> Command:
    cur.sp()
    if name == "SEARCH":
        return _search(cur, tag, uid)
    if name == "SORT":
        return _sort(cur, tag, uid)
    if name == "THREAD":
        return _thread(cur, tag, uid)
    sequence = _sequence_set(cur)
    cur.sp()
    if name == "FETCH":
        return _fetch(cur, tag, sequence, uid)
    if name == "STORE":
        return _store(cur, tag, sequence, uid)
    return Copy(tag, sequence, _mailbox(cur), move=name == "MOVE", uid=uid)


def _mailbox(cur: _Cursor) -> str:
    name = cur.astring()
    # RFC 3501 §5.1: INBOX is case-insensitive.
    return "INBOX" if name.upper() == "INBOX" else name


def _list_mailbox(cur: _Cursor) -> str:
    return _text(cur.astring_bytes(frozenset(_LIST_EXCLUDED)))


def _atom_list(cur: _Cursor) -> list[str]:
    cur.expect(b"(", "(")
    items: list[str] = []
    while not cur.peek_is(b")"):
        if items:
            cur.sp()
        items.append(cur.atom())
        if len(items) > MAX_ITEMS:
            raise _Syntax("list too long")
    cur.pos += 1
    return items


def _skip_parenthesised(cur: _Cursor) -> None:
    """Consume one balanced parenthesised list (strings inside it included), bounded in depth."""
    cur.expect(b"(", "(")
    depth = 1
    while depth:
        byte = cur.peek()
        if byte is None:
            raise _Syntax("unbalanced parentheses")
        if byte == 0x22:
            cur.quoted()
        elif byte == 0x7B:
            cur.literal()
        else:
            cur.pos += 1
            if byte == 0x28:
                depth += 1
                if depth > MAX_DEPTH:
                    raise _Syntax("parentheses nest too deeply")
            elif byte == 0x29:
                depth -= 1


def _id_fields(cur: _Cursor) -> tuple[tuple[str, str | None], ...]:
    if cur.data[cur.pos : cur.pos + 3].upper() == b"NIL":
        cur.pos += 3
        return ()
    cur.expect(b"(", "( or NIL")
    fields: list[tuple[str, str | None]] = []
    while not cur.peek_is(b")"):
        if fields:
            cur.sp()
        key = cur.string()
        cur.sp()
        fields.append((key, cur.nstring()))
        if len(fields) > 30:  # RFC 2971 §3.3: at most 30 field-value pairs
            raise _Syntax("too many ID fields")
    cur.pos += 1
    return tuple(fields)


def _select_parameters(cur: _Cursor) -> tuple[bool, QresyncParameters | None]:
    """RFC 7162: `(CONDSTORE)` and `(QRESYNC (uidvalidity modseq [known-uids [seq-match]]))`."""
    cur.expect(b"(", "(")
    condstore = False
    qresync = None
    count = 0
    while not cur.peek_is(b")"):
        if count:
            cur.sp()
        count += 1
        if count > 10:
            raise _Syntax("too many SELECT parameters")
        parameter = cur.atom("a SELECT parameter").upper()
        if parameter == "CONDSTORE":
            condstore = True
        elif parameter == "QRESYNC":
            cur.sp()
            cur.expect(b"(", "(")
            uidvalidity = cur.nz_number()
            cur.sp()
            modseq = cur.number(MAX_NUMBER)
            known = None
            if cur.optional_sp():
                if cur.peek_is(b"("):
                    _skip_parenthesised(cur)  # only sequence match data: an optimisation hint
                else:
                    known = _sequence_set(cur)
                    if cur.optional_sp():
                        _skip_parenthesised(cur)
            cur.expect(b")", ")")
            qresync = QresyncParameters(uidvalidity, modseq, known)
        else:
            raise _Syntax(f"unsupported SELECT parameter {parameter}")
    cur.pos += 1
    return condstore, qresync


def _list(cur: _Cursor, tag: str) -> ListCommand:
    cur.sp()
    options: dict[str, bool] = {}
    extended = False
    if cur.peek_is(b"("):
        extended = True
        for option in _atom_list(cur):
            option = option.upper()
            if option == "SUBSCRIBED":
                options["select_subscribed"] = True
            elif option == "SPECIAL-USE":
                options["select_special_use"] = True
            elif option == "RECURSIVEMATCH":
                options["recursive_match"] = True
            elif option == "REMOTE":
                pass  # RFC 5258 §3.1: no remote mailboxes here
            else:
                raise _Syntax(f"unknown LIST selection option {option}")
        cur.sp()
        if options.get("recursive_match") and len(options) == 1:
            raise _Syntax("RECURSIVEMATCH needs another selection option (RFC 5258 §3.1)")
    reference = _mailbox(cur)
    cur.sp()
    patterns: list[str] = []
    if cur.peek_is(b"("):
        extended = True
        cur.pos += 1
        while not cur.peek_is(b")"):
            if patterns:
                cur.sp()
            patterns.append(_list_mailbox(cur))
            if len(patterns) > 100:
                raise _Syntax("too many LIST patterns")
        cur.pos += 1
        if not patterns:
            raise _Syntax("empty LIST pattern list")
    else:
        patterns.append(_list_mailbox(cur))
    status: tuple[str, ...] = ()
    if cur.optional_sp():
        extended = True
        keyword = cur.atom("RETURN").upper()
        if keyword != "RETURN":
            raise _Syntax("expected RETURN")
        cur.sp()
        cur.expect(b"(", "(")
        first = True
        while not cur.peek_is(b")"):
            if not first:
                cur.sp()
            first = False
            option = cur.atom("a LIST return option").upper()
            if option == "SUBSCRIBED":
                options["return_subscribed"] = True
            elif option == "SPECIAL-USE":
                options["return_special_use"] = True
            elif option == "CHILDREN":
                options["return_children"] = True
            elif option == "STATUS":
                cur.sp()
                status = tuple(item.upper() for item in _atom_list(cur))
                if not status or any(item not in _STATUS_ITEMS for item in status):
                    raise _Syntax("invalid STATUS items in LIST RETURN")
            else:
                raise _Syntax(f"unknown LIST return option {option}")
        cur.pos += 1
    return ListCommand(
        tag, reference, tuple(patterns), return_status=status, extended=extended, **options
    )


def parse_date(text: str) -> datetime:
    """RFC 9051 `date` (d-Mon-yyyy) as midnight UTC."""
    match = _DATE.match(text)
    if match is None or match[2].upper() not in _MONTHS:
        raise _Syntax("invalid date (expected e.g. 1-Feb-2026)")
    try:
        return datetime(int(match[3]), _MONTHS[match[2].upper()], int(match[1]), tzinfo=UTC)
    except ValueError as exc:
        raise _Syntax("invalid date") from exc


def _date(cur: _Cursor) -> datetime:
    if cur.peek_is(b'"'):
        return parse_date(_text(cur.quoted()))
    return parse_date(cur.atom("a date"))


def _date_time(text: str) -> datetime:
    match = _DATE_TIME.match(text)
    if match is None or match[2].upper() not in _MONTHS:
        raise _Syntax('invalid date-time (expected e.g. "01-Feb-2026 10:00:00 +0000")')
    offset = timedelta(hours=int(match[8]), minutes=int(match[9]))
    try:
        return datetime(
            int(match[3]),
            _MONTHS[match[2].upper()],
            int(match[1]),
            int(match[4]),
            int(match[5]),
            int(match[6]),
            tzinfo=timezone(-offset if match[7] == "-" else offset),
        )
    except ValueError as exc:
        raise _Syntax("invalid date-time") from exc


def _flag(cur: _Cursor) -> str:
    if cur.peek_is(b"\\"):
        cur.pos += 1
        if cur.peek_is(b"*"):
            raise _Syntax("\\* is not a flag")
        name = "\\" + cur.atom("a flag name")
        canonical = SYSTEM_FLAGS.get(name.upper())
        if canonical is None:
            raise _Syntax(f"unknown system flag {name}")
        return canonical
    return cur.atom("a flag")


def _flag_list(cur: _Cursor) -> tuple[str, ...]:
    cur.expect(b"(", "(")
    flags: list[str] = []
    while not cur.peek_is(b")"):
        if flags:
            cur.sp()
        flags.append(_flag(cur))
        if len(flags) > 100:
            raise _Syntax("too many flags")
    cur.pos += 1
    return tuple(flags)


def _append(cur: _Cursor, tag: str) -> Append:
    cur.sp()
    mailbox = _mailbox(cur)
    messages: list[AppendMessage] = []
    # RFC 3502 §6: append-message *(SP append-message); the reader bounds the literals.
    while not messages or not cur.at_end():
        cur.sp()
        flags: tuple[str, ...] = ()
        if cur.peek_is(b"("):
            flags = _flag_list(cur)
            cur.sp()
        internal_date = None
        if cur.peek_is(b'"'):
            internal_date = _date_time(_text(cur.quoted()))
            cur.sp()
        utf8 = cur.data[cur.pos : cur.pos + 6].upper() == b"UTF8 ("
        if utf8:
            # RFC 6855 §4: append-data =/ "UTF8" SP "(" literal8 ")"
            cur.pos += 6
            if not cur.peek_is(b"~"):
                raise _Syntax("UTF8 ( must be followed by a literal8")
        message, _binary = cur.literal(allow_binary=True)
        if utf8:
            cur.expect(b")", "')' after the UTF8 literal8")
        messages.append(AppendMessage(flags, internal_date, message, utf8))
    return Append(tag, mailbox, tuple(messages))


# A sequence set of plain numbers (at most ten digits) and `*`: read at once, not a byte at a
# time. Anything else, including every error, is left to the cursor below.
_PLAIN_SEQUENCE_SET = re.compile(
    rb"(?:[0-9]{1,10}|\*)(?::(?:[0-9]{1,10}|\*))?(?:,(?:[0-9]{1,10}|\*)(?::(?:[0-9]{1,10}|\*))?)*"
    rb"(?![0-9:,*])"
)


def _plain_number(text: bytes) -> int | None:
    return None if text == b"*" else int(text)


def _sequence_set(cur: _Cursor) -> SequenceSet:
    if cur.peek_is(b"$"):
        cur.pos += 1
        return SequenceSet(saved=True)
    plain = _PLAIN_SEQUENCE_SET.match(cur.data, cur.pos)
    if plain is not None:
        pieces = plain[0].split(b",")
        numbers = plain[0].replace(b":", b",").split(b",")
        if len(pieces) <= MAX_ITEMS and all(n == b"*" or 0 < int(n) <= MAX_UINT32 for n in numbers):
            cur.pos = plain.end()
            return SequenceSet(
                tuple(
                    (_plain_number(low), _plain_number(high or low))
                    for low, _, high in (piece.partition(b":") for piece in pieces)
                )
            )
    ranges: list[tuple[int | None, int | None]] = []
    while True:
        start = _seq_number(cur)
        end = start
        if cur.peek_is(b":"):
            cur.pos += 1
            end = _seq_number(cur)
        ranges.append((start, end))
        if len(ranges) > MAX_ITEMS:
            raise _Syntax("sequence set too long")
        if not cur.peek_is(b","):
            return SequenceSet(tuple(ranges))
        cur.pos += 1


def _seq_number(cur: _Cursor) -> int | None:
    if cur.peek_is(b"*"):
        cur.pos += 1
        return None
    return cur.nz_number()


def _fetch(cur: _Cursor, tag: str, sequence: SequenceSet, uid: bool) -> Fetch:
    attributes: list[FetchAttribute] = []
    if cur.peek_is(b"("):
        cur.pos += 1
        while not cur.peek_is(b")"):
            if attributes:
                cur.sp()
            attributes.append(_fetch_attribute(cur))
            if len(attributes) > 100:
                raise _Syntax("too many FETCH items")
        cur.pos += 1
        if not attributes:
            raise _Syntax("empty FETCH item list")
    else:
        word = cur.data[cur.pos : cur.pos + 4].upper()
        macro = next((m for m in _FETCH_MACROS if word.startswith(m.encode())), None)
        if macro is not None and cur._boundary(cur.pos + len(macro)):
            cur.pos += len(macro)
            attributes = [FetchAttribute(item) for item in _FETCH_MACROS[macro]]
        else:
            attributes.append(_fetch_attribute(cur))
    changed_since = None
    vanished = False
    if cur.optional_sp():
        cur.expect(b"(", "(")
        first = True
        while not cur.peek_is(b")"):
            if not first:
                cur.sp()
            first = False
            modifier = cur.atom("a FETCH modifier").upper()
            if modifier == "CHANGEDSINCE":
                cur.sp()
                changed_since = cur.number(MAX_NUMBER)
            elif modifier == "VANISHED":
                vanished = True
            else:
                raise _Syntax(f"unknown FETCH modifier {modifier}")
        cur.pos += 1
        if vanished and (not uid or changed_since is None):
            raise _Syntax("VANISHED needs UID FETCH with CHANGEDSINCE (RFC 7162 §3.2.6)")
    if uid and not any(a.name == "UID" for a in attributes):
        # RFC 3501 §6.4.8: UID FETCH always returns the UID.
        attributes.insert(0, FetchAttribute("UID"))
    if changed_since is not None and not any(a.name == "MODSEQ" for a in attributes):
        attributes.append(FetchAttribute("MODSEQ"))  # RFC 7162 §3.1.4.1
    return Fetch(tag, sequence, tuple(attributes), uid, changed_since, vanished)


def _fetch_attribute(cur: _Cursor) -> FetchAttribute:
    start = cur.pos
    while cur.peek() is not None and cur.data[cur.pos] not in b" ()[<":
        cur.pos += 1
    name = cur.data[start : cur.pos].decode("ascii", "replace").upper()
    if name in ("BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE") and cur.peek_is(b"["):
        cur.pos += 1
        section = _section(cur, binary=name.startswith("BINARY"))
        cur.expect(b"]", "]")
        partial = None
        if cur.peek_is(b"<") and name != "BINARY.SIZE":
            cur.pos += 1
            origin = cur.number()
            cur.expect(b".", ". in a partial")
            length = cur.nz_number()
            cur.expect(b">", ">")
            partial = (origin, length)
        base = name.split(".")[0] if name != "BINARY.SIZE" else name
        return FetchAttribute(base, section, partial, peek=name.endswith(".PEEK"))
    if name in _FETCH_SIMPLE:
        return FetchAttribute(name)
    raise _Syntax(f"unknown FETCH item {name or cur.data[start : start + 20]!r}")


def _section(cur: _Cursor, *, binary: bool) -> Section:
    part: list[int] = []
    while cur.peek() is not None and 0x31 <= cur.data[cur.pos] <= 0x39:
        part.append(cur.nz_number())
        if len(part) > 100:
            raise _Syntax("section part too deep")
        if not cur.peek_is(b"."):
            break
        cur.pos += 1
        if not (cur.peek() is not None and 0x31 <= cur.data[cur.pos] <= 0x39):
            break
    if binary:
        return Section(tuple(part))
    if cur.peek_is(b"]"):
        return Section(tuple(part))
    text = cur.atom("a section").upper()
    if text in ("HEADER", "TEXT") or (text == "MIME" and part):
        return Section(tuple(part), text)
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        cur.sp()
        cur.expect(b"(", "(")
        fields: list[str] = []
        while not cur.peek_is(b")"):
            if fields:
                cur.sp()
            fields.append(cur.astring().upper())
            if len(fields) > 200:
                raise _Syntax("too many header fields")
        cur.pos += 1
        if not fields:
            raise _Syntax("empty header field list")
        return Section(tuple(part), text, tuple(fields))
    raise _Syntax(f"unknown section {text}")


def _store(cur: _Cursor, tag: str, sequence: SequenceSet, uid: bool) -> Store:
    unchanged_since = None
    if cur.peek_is(b"("):
        cur.pos += 1
        modifier = cur.atom("UNCHANGEDSINCE").upper()
        if modifier != "UNCHANGEDSINCE":
            raise _Syntax(f"unknown STORE modifier {modifier}")
        cur.sp()
        unchanged_since = cur.number(MAX_NUMBER)
        cur.expect(b")", ")")
        cur.sp()
    item = cur.atom("a STORE item").upper()
    silent = item.endswith(".SILENT")
    base = item.removesuffix(".SILENT")
    modes: dict[str, StoreMode] = {"FLAGS": "replace", "+FLAGS": "add", "-FLAGS": "remove"}
    if base not in modes:
        raise _Syntax(f"unknown STORE item {item}")
    cur.sp()
    if cur.peek_is(b"("):
        flags = _flag_list(cur)
    else:
        single = [_flag(cur)]
        while cur.optional_sp():
            single.append(_flag(cur))
            if len(single) > 100:
                raise _Syntax("too many flags")
        flags = tuple(single)
    return Store(tag, sequence, modes[base], silent, flags, uid, unchanged_since)


_ESEARCH_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
_FLAG_KEYS: dict[str, tuple[str, bool]] = {
    "ANSWERED": (SystemFlag.ANSWERED, True),
    "DELETED": (SystemFlag.DELETED, True),
    "DRAFT": (SystemFlag.DRAFT, True),
    "FLAGGED": (SystemFlag.FLAGGED, True),
    "SEEN": (SystemFlag.SEEN, True),
    "UNANSWERED": (SystemFlag.ANSWERED, False),
    "UNDELETED": (SystemFlag.DELETED, False),
    "UNDRAFT": (SystemFlag.DRAFT, False),
    "UNFLAGGED": (SystemFlag.FLAGGED, False),
    "UNSEEN": (SystemFlag.SEEN, False),
}
_STRING_KEYS: dict[
    str,
    type[
        search.From
        | search.To
        | search.Cc
        | search.Bcc
        | search.Subject
        | search.Body
        | search.Text
    ],
] = {
    "FROM": search.From,
    "TO": search.To,
    "CC": search.Cc,
    "BCC": search.Bcc,
    "SUBJECT": search.Subject,
    "BODY": search.Body,
    "TEXT": search.Text,
}
_DATE_KEYS: dict[
    str,
    type[
        search.Before
        | search.On
        | search.Since
        | search.SentBefore
        | search.SentOn
        | search.SentSince
    ],
] = {
    "BEFORE": search.Before,
    "ON": search.On,
    "SINCE": search.Since,
    "SENTBEFORE": search.SentBefore,
    "SENTON": search.SentOn,
    "SENTSINCE": search.SentSince,
}


def _search(cur: _Cursor, tag: str, uid: bool) -> Search:
    return_options: tuple[str, ...] | None = None
    charset = None
    if cur.data[cur.pos : cur.pos + 7].upper() == b"RETURN ":
        cur.pos += 7
        options = [option.upper() for option in _atom_list_or_empty(cur)]
        unknown = [option for option in options if option not in _ESEARCH_OPTIONS]
        if unknown:
            raise _Syntax(f"unknown SEARCH RETURN option {unknown[0]}")
        return_options = tuple(options)
        cur.sp()
    if cur.data[cur.pos : cur.pos + 8].upper() == b"CHARSET ":
        cur.pos += 8
        charset = cur.astring().upper()
        cur.sp()
    return Search(tag, _search_keys(cur), uid, return_options, charset)


def _search_keys(cur: _Cursor) -> search.Criteria:
    keys = [_search_key(cur, 1)]
    while cur.optional_sp():
        keys.append(_search_key(cur, 1))
        if len(keys) > search.MAX_NODES:
            raise _Syntax("too many search keys")
    criteria: search.Criteria = keys[0] if len(keys) == 1 else search.And(tuple(keys))
    try:
        search.check_bounds(criteria)
    except ValueError as exc:
        raise _Syntax(str(exc)) from None
    return criteria


def _sort(cur: _Cursor, tag: str, uid: bool) -> Sort:
    """RFC 5256 §5: sort-criteria SP search-criteria, where search-criteria names its charset."""
    words = [word.upper() for word in _atom_list(cur)]
    keys = []
    reverse = False
    for word in words:
        if word == "REVERSE" and not reverse:
            reverse = True
        elif word in SORT_KEYS:
            keys.append(SortKey(word, reverse))
            reverse = False
        else:
            raise _Syntax(f"unknown sort key {word}")
    if reverse or not keys:
        raise _Syntax("REVERSE must be followed by a sort key")
    cur.sp()
    charset = cur.astring().upper()
    cur.sp()
    return Sort(tag, tuple(keys), charset, _search_keys(cur), uid)


def _thread(cur: _Cursor, tag: str, uid: bool) -> Thread:
    algorithm = cur.atom("a threading algorithm").upper()
    if algorithm not in THREAD_ALGORITHMS:
        raise _Syntax(f"unknown threading algorithm {algorithm}")
    cur.sp()
    charset = cur.astring().upper()
    cur.sp()
    return Thread(tag, algorithm, charset, _search_keys(cur), uid)


def _atom_list_or_empty(cur: _Cursor) -> list[str]:
    if cur.peek_is(b"()"):
        cur.pos += 2
        return []
    return _atom_list(cur)


def _search_key(cur: _Cursor, depth: int) -> search.Criteria:
    if depth > MAX_DEPTH:
        raise _Syntax("search keys nest too deeply")
    byte = cur.peek()
    if byte == 0x28:
        cur.pos += 1
        keys = [_search_key(cur, depth + 1)]
        while cur.optional_sp():
            keys.append(_search_key(cur, depth + 1))
            if len(keys) > search.MAX_NODES:
                raise _Syntax("too many search keys")
        cur.expect(b")", ")")
        return keys[0] if len(keys) == 1 else search.And(tuple(keys))
    if byte is not None and (0x30 <= byte <= 0x39 or byte in b"*$"):
        return SequenceRef((), _sequence_set(cur), uid=False)
    name = cur.atom("a search key").upper()
    if name == "ALL":
        return search.All()
    if name in _FLAG_KEYS:
        flag, present = _FLAG_KEYS[name]
        return search.Flag(flag, present)
    if name == "NEW":
        return search.New()
    if name == "OLD":
        return search.Old()
    if name == "RECENT":
        return search.Recent()
    if name in _STRING_KEYS:
        cur.sp()
        return _STRING_KEYS[name](cur.astring())
    if name in _DATE_KEYS:
        cur.sp()
        return _DATE_KEYS[name](_date(cur).date())
    if name in ("KEYWORD", "UNKEYWORD"):
        cur.sp()
        return search.Flag(_flag(cur), name == "KEYWORD")
    if name == "HEADER":
        cur.sp()
        field = cur.astring()
        cur.sp()
        return search.Header(field, cur.astring())
    if name in ("LARGER", "SMALLER"):
        cur.sp()
        size = cur.number(MAX_NUMBER)
        return search.Larger(size) if name == "LARGER" else search.Smaller(size)
    if name == "NOT":
        cur.sp()
        return search.Not(_search_key(cur, depth + 1))
    if name == "OR":
        cur.sp()
        left = _search_key(cur, depth + 1)
        cur.sp()
        return search.Or(left, _search_key(cur, depth + 1))
    if name == "UID":
        cur.sp()
        return SequenceRef((), _sequence_set(cur), uid=True)
    if name == "MODSEQ":
        cur.sp()
        if cur.peek_is(b'"'):  # RFC 7162 §3.1.5: entry-name entry-type-req, not kept apart
            cur.quoted()
            cur.sp()
            cur.atom("an entry type")
            cur.sp()
        return search.ModSeq(cur.number(MAX_NUMBER))
    raise _Syntax(f"unknown search key {name}")

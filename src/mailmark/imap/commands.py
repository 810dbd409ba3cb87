"""Typed IMAP commands: what the parser produces and the session dispatches on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailmark.core import search
from mailmark.core.imap_sort import SortKey
from mailmark.core.mailstore import StoreMode


@dataclass(frozen=True)
class SequenceSet:
    """A sequence set (RFC 9051 §9 `sequence-set`); `None` stands for `*`.

    `saved` is the `$` of SEARCHRES (RFC 5182): the result of the last SEARCH ... RETURN (SAVE)."""

    ranges: tuple[tuple[int | None, int | None], ...] = ()
    saved: bool = False

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """The ranges as ascending (low, high) pairs, `*` being `largest` (RFC 3501 §6.4.8:
        `n:*` includes the largest even when n is greater)."""
        out = []
        for start, end in self.ranges:
            low = largest if start is None else start
            high = largest if end is None else end
            if low > high:
                low, high = high, low
            out.append((low, high))
        return out


@dataclass(frozen=True)
class SequenceRef(search.UidSet):
    """A sequence set inside SEARCH criteria: message sequence numbers, or UIDs with `uid`. Its
    `ranges` stay empty until the session, which owns the numbering and knows what `*` and `$`
    stand for, replaces it with a plain `search.UidSet`."""

    sequence: SequenceSet = SequenceSet()
    uid: bool = False


@dataclass(frozen=True)
class Section:
    """BODY[<part>.<kind> (<fields>)] (RFC 9051 §6.4.5)."""

    part: tuple[int, ...] = ()
    kind: str = ""  # "" | "HEADER" | "HEADER.FIELDS" | "HEADER.FIELDS.NOT" | "TEXT" | "MIME"
    fields: tuple[str, ...] = ()

    def render(self) -> str:
        pieces = [".".join(str(n) for n in self.part)] if self.part else []
        if self.kind:
            pieces.append(self.kind)
        text = ".".join(pieces)
        if self.fields:
            text += " (" + " ".join(self.fields) + ")"
        return text


@dataclass(frozen=True)
class FetchAttribute:
    """One FETCH data item. `name` is the upper-case item: FLAGS, UID, INTERNALDATE, RFC822.SIZE,
    ENVELOPE, BODYSTRUCTURE, BODY (non-extensible structure), BODY[...] as "BODY" with a section,
    BINARY[...], BINARY.SIZE[...], RFC822, RFC822.HEADER, RFC822.TEXT, MODSEQ."""

    name: str
    section: Section | None = None
    partial: tuple[int, int] | None = None  # (origin octet, length)
    peek: bool = False


@dataclass(frozen=True)
class Command:
    tag: str


@dataclass(frozen=True)
class Simple(Command):
    """Commands without arguments: CAPABILITY NOOP LOGOUT STARTTLS CHECK CLOSE UNSELECT EXPUNGE
    IDLE NAMESPACE."""

    name: str


@dataclass(frozen=True)
class Login(Command):
    user: str
    password: str


@dataclass(frozen=True)
class Authenticate(Command):
    mechanism: str
    initial: str | None  # SASL-IR (RFC 4959): base64 text, "=" for an empty response


@dataclass(frozen=True)
class Enable(Command):
    extensions: tuple[str, ...]


@dataclass(frozen=True)
class Quota(Command):
    """GETQUOTA <root>, or SETQUOTA <root> (<resource> <limit> ...) (RFC 9208)."""

    name: str
    root: str
    limits: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Compress(Command):
    mechanism: str


@dataclass(frozen=True)
class Id(Command):
    fields: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class QresyncParameters:
    """SELECT (QRESYNC (...)) (RFC 7162 §3.2.5): what the client remembers of the folder."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None


@dataclass(frozen=True)
class Select(Command):
    mailbox: str
    read_only: bool  # EXAMINE
    condstore: bool = False
    qresync: QresyncParameters | None = None


@dataclass(frozen=True)
class MailboxCommand(Command):
    """CREATE DELETE SUBSCRIBE UNSUBSCRIBE GETQUOTAROOT <mailbox>."""

    name: str
    mailbox: str


@dataclass(frozen=True)
class Rename(Command):
    old: str
    new: str


@dataclass(frozen=True)
class ListCommand(Command):
    """LIST (RFC 5258 LIST-EXTENDED basics, RFC 6154 SPECIAL-USE) and LSUB."""

    reference: str
    patterns: tuple[str, ...]
    lsub: bool = False
    select_subscribed: bool = False
    select_special_use: bool = False
    recursive_match: bool = False
    return_subscribed: bool = False
    return_special_use: bool = False
    return_children: bool = False
    return_status: tuple[str, ...] = ()
    extended: bool = False  # any selection or return option was given


@dataclass(frozen=True)
class Status(Command):
    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True)
class AppendMessage:
    flags: tuple[str, ...]
    internal_date: datetime | None
    message: bytes
    # Sent as RFC 6855 §4 `UTF8 (literal8)`: allowed only once UTF8=ACCEPT is enabled.
    utf8: bool = False


@dataclass(frozen=True)
class Append(Command):
    """APPEND of one message, or of several (RFC 3502 MULTIAPPEND)."""

    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True)
class Search(Command):
    criteria: search.Criteria
    uid: bool = False
    # RFC 4731 ESEARCH: None for a plain SEARCH; else the RETURN options (empty means ALL).
    return_options: tuple[str, ...] | None = None
    charset: str | None = None


@dataclass(frozen=True)
class Sort(Command):
    """RFC 5256 SORT: the matching messages ordered by `keys`."""

    keys: tuple[SortKey, ...]
    charset: str
    criteria: search.Criteria
    uid: bool = False


@dataclass(frozen=True)
class Thread(Command):
    """RFC 5256 THREAD: the matching messages grouped by `algorithm`."""

    algorithm: str
    charset: str
    criteria: search.Criteria
    uid: bool = False


@dataclass(frozen=True)
class Fetch(Command):
    sequence: SequenceSet
    attributes: tuple[FetchAttribute, ...]
    uid: bool = False
    changed_since: int | None = None  # RFC 7162 §3.1.4
    vanished: bool = False


@dataclass(frozen=True)
class Store(Command):
    sequence: SequenceSet
    mode: StoreMode
    silent: bool
    flags: tuple[str, ...]
    uid: bool = False
    unchanged_since: int | None = None  # RFC 7162 §3.1.3


@dataclass(frozen=True)
class Copy(Command):
    sequence: SequenceSet
    mailbox: str
    move: bool = False
    uid: bool = False


@dataclass(frozen=True)
class Expunge(Command):
    """EXPUNGE, or UID EXPUNGE <set> (RFC 4315 §2.1)."""

    sequence: SequenceSet | None = None

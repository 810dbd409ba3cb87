"""Typed message search criteria (RFC 3501 §6.4.4, RFC 9051 §6.4.4, RFC 7162 §3.1.5).

The IMAP parser builds these; `MailStore.search` hands them to storage, which compiles them to SQL.
Sequence-number sets are resolved to UIDs by the session (it owns the sequence numbers), so only
`UidSet` exists here. Dates are calendar days: RFC 3501 compares them "disregarding time and
timezone", internal dates in UTC, and the Date header in its own written zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TypeAlias

# Nested criteria are bounded so a hostile command cannot build an unbounded SQL expression.
MAX_DEPTH = 64
MAX_NODES = 1_000


@dataclass(frozen=True)
class All:
    """Every message (ALL)."""


@dataclass(frozen=True)
class And:
    """Every item matches (a parenthesised list, or criteria written side by side)."""

    items: tuple[Criteria, ...]


@dataclass(frozen=True)
class Or:
    left: Criteria
    right: Criteria


@dataclass(frozen=True)
class Not:
    item: Criteria


@dataclass(frozen=True)
class Flag:
    """A system flag (`\\Seen`, `\\Answered`, `\\Flagged`, `\\Deleted`, `\\Draft`) or a keyword is set,
    or, with `present=False`, is not (SEEN/UNSEEN, KEYWORD/UNKEYWORD, ...). System flags match
    case-insensitively, keywords too (RFC 3501 §2.3.2: flag names are case-insensitive)."""

    name: str
    present: bool = True


@dataclass(frozen=True)
class New:
    """RECENT and not \\Seen. `\\Recent` is never stored, so nothing is new."""


@dataclass(frozen=True)
class Old:
    """Not RECENT: every message, as `\\Recent` is never stored."""


@dataclass(frozen=True)
class Recent:
    """Messages with `\\Recent`: none, as it is never stored."""


@dataclass(frozen=True)
class Header:
    """The named header field contains `value` (case-insensitive substring; an empty value matches
    every message that has the field)."""

    name: str
    value: str


@dataclass(frozen=True)
class From:
    value: str


@dataclass(frozen=True)
class To:
    value: str


@dataclass(frozen=True)
class Cc:
    value: str


@dataclass(frozen=True)
class Bcc:
    value: str


@dataclass(frozen=True)
class Subject:
    value: str


@dataclass(frozen=True)
class Body:
    """The body (after the header) contains `value`, case-insensitively."""

    value: str


@dataclass(frozen=True)
class Text:
    """The header or the body contains `value`, case-insensitively."""

    value: str


@dataclass(frozen=True)
class Before:
    """Internal date earlier than this day."""

    day: date


@dataclass(frozen=True)
class On:
    day: date


@dataclass(frozen=True)
class Since:
    """Internal date on or after this day."""

    day: date


@dataclass(frozen=True)
class SentBefore:
    """Date header earlier than this day."""

    day: date


@dataclass(frozen=True)
class SentOn:
    day: date


@dataclass(frozen=True)
class SentSince:
    day: date


@dataclass(frozen=True)
class Larger:
    """RFC822.SIZE greater than `size`."""

    size: int


@dataclass(frozen=True)
class Smaller:
    size: int


@dataclass(frozen=True)
class UidSet:
    """UIDs in any of these inclusive (first, last) ranges, first <= last."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, uids: Iterable[int]) -> UidSet:
        """The set of exactly these UIDs, as few ranges as possible."""
        ranges: list[tuple[int, int]] = []
        for uid in sorted(set(uids)):
            if ranges and ranges[-1][1] == uid - 1:
                ranges[-1] = (ranges[-1][0], uid)
            else:
                ranges.append((uid, uid))
        return cls(tuple(ranges))


@dataclass(frozen=True)
class HasAttachment:
    """The message has at least one attachment (as read when it was stored). Not an IMAP SEARCH
    key: the webmail's `has:attachment`."""


@dataclass(frozen=True)
class ModSeq:
    """MODSEQ of the message at least `modseq` (RFC 7162 §3.1.5; entry names are not kept
    apart, so the metadata-item part of the criterion does not narrow it)."""

    modseq: int


Criteria: TypeAlias = (
    All
    | And
    | Or
    | Not
    | Flag
    | New
    | Old
    | Recent
    | Header
    | From
    | To
    | Cc
    | Bcc
    | Subject
    | Body
    | Text
    | Before
    | On
    | Since
    | SentBefore
    | SentOn
    | SentSince
    | Larger
    | Smaller
    | UidSet
    | ModSeq
    | HasAttachment
)


def children(criteria: Criteria) -> tuple[Criteria, ...]:
    if isinstance(criteria, And):
        return criteria.items
    if isinstance(criteria, Or):
        return (criteria.left, criteria.right)
    if isinstance(criteria, Not):
        return (criteria.item,)
    return ()


def check_bounds(criteria: Criteria) -> None:
    """Raise ValueError when the criteria nest deeper than MAX_DEPTH or hold more than MAX_NODES."""
    count = 0
    stack: list[tuple[Criteria, int]] = [(criteria, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ValueError(f"search criteria nest deeper than {MAX_DEPTH}")
        if count > MAX_NODES:
            raise ValueError(f"more than {MAX_NODES} search criteria")
        stack.extend((child, depth + 1) for child in children(node))


def _uses(criteria: Criteria, kinds: tuple[type, ...]) -> bool:
    stack = [criteria]
    while stack:
        node = stack.pop()
        if isinstance(node, kinds):
            return True
        stack.extend(children(node))
    return False


def uses_modseq(criteria: Criteria) -> bool:
    """Whether a MODSEQ criterion appears: RFC 7162 §3.1.5 then wants `(MODSEQ n)` in the reply."""
    return _uses(criteria, (ModSeq,))


def uses_body_text(criteria: Criteria) -> bool:
    """Whether a criterion looks in the body text of the full-text index (BODY, TEXT), which
    mail the MX accepts gets only after its 250 (core/text_index.py)."""
    return _uses(criteria, (Body, Text))


def uses_index(criteria: Criteria) -> bool:
    """Whether a criterion is answered from what is computed when a message is stored: the
    full-text index (header fields, text) or the Date header's day."""
    return _uses(
        criteria, (Header, From, To, Cc, Bcc, Subject, Body, Text, SentBefore, SentOn, SentSince)
    )

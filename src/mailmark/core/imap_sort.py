"""IMAP SORT and THREAD (RFC 5256) over the metadata kept at delivery.

Both work on `SortRow`s, one per message of the folder that matched the search criteria. SORT
orders them by a list of keys; THREAD groups them into conversations: ORDEREDSUBJECT by base
subject, REFERENCES by the thread ids delivery already assigned (References/In-Reply-To first,
then the subject of replies: the same rules as RFC 5256 §3 REFERENCES steps 1–5, applied once at
delivery rather than on every command), with the parent of each message inside its thread taken
from its References.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SORT_KEYS = frozenset({"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO"})
THREAD_ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")


@dataclass(frozen=True)
class SortRow:
    """What SORT and THREAD read of one message in a folder."""

    uid: int
    internal_date: datetime
    date: datetime | None
    size: int
    subject_key: str  # the RFC 5256 §2.1 base subject, case-folded
    from_addr: str | None
    to_addrs: tuple[str, ...]
    cc_addrs: tuple[str, ...]
    message_id: str | None
    parents: tuple[str, ...]  # References, then In-Reply-To: nearest parent last
    thread_id: str

    @property
    def sent(self) -> datetime:
        """RFC 5256 §2.2: the Date field in UTC; the internal date when it has none."""
        return self.date or self.internal_date


@dataclass(frozen=True)
class SortKey:
    name: str  # one of SORT_KEYS
    reverse: bool = False


def _mailbox_part(address: str | None) -> str:
    """RFC 5256 §3 FROM/TO/CC: the addr-mailbox (local part) of the first address, compared
    with i;ascii-casemap."""
    if not address:
        return ""
    return address.rpartition("@")[0].lower() if "@" in address else address.lower()


_KEYS: dict[str, Callable[[SortRow], Any]] = {
    "ARRIVAL": lambda row: row.internal_date,
    "DATE": lambda row: row.sent,
    "SIZE": lambda row: row.size,
    "SUBJECT": lambda row: row.subject_key,
    "FROM": lambda row: _mailbox_part(row.from_addr),
    "TO": lambda row: _mailbox_part(row.to_addrs[0] if row.to_addrs else None),
    "CC": lambda row: _mailbox_part(row.cc_addrs[0] if row.cc_addrs else None),
}


def sort(rows: Iterable[SortRow], keys: Sequence[SortKey]) -> list[SortRow]:
    """Order by the keys, the first most significant; ties keep mailbox order (RFC 5256 §3)."""
    ordered = sorted(rows, key=lambda row: row.uid)
    # Stable sorts from the least significant key to the most significant one.
    for key in reversed(keys):
        ordered.sort(key=_KEYS[key.name], reverse=key.reverse)
    return ordered


@dataclass
class ThreadNode:
    row: SortRow | None  # None: a placeholder parent of several roots in one thread
    children: list[ThreadNode] = field(default_factory=list)
    parent: ThreadNode | None = None

    @property
    def order(self) -> tuple[datetime, int]:
        first = self
        while first.row is None:
            first = min(first.children, key=lambda child: child.order)
        assert first.row is not None
        return first.row.sent, first.row.uid


def thread(rows: Iterable[SortRow], algorithm: str) -> list[ThreadNode]:
    """The threads of these messages, each a tree, in the order RFC 5256 §3 gives them."""
    if algorithm == "ORDEREDSUBJECT":
        roots = _ordered_subject(rows)
    else:
        roots = [_references_tree(members) for members in _by_thread_id(rows)]
    return sorted(roots, key=lambda node: node.order)


def _ordered_subject(rows: Iterable[SortRow]) -> list[ThreadNode]:
    """RFC 5256 §3 ORDEREDSUBJECT: one thread per base subject; its first message by sent date
    is the parent of all the others."""
    groups: dict[str, list[SortRow]] = defaultdict(list)
    for row in rows:
        groups[row.subject_key].append(row)
    roots = []
    for members in groups.values():
        first, *rest = sorted(members, key=lambda row: (row.sent, row.uid))
        roots.append(ThreadNode(first, [ThreadNode(row) for row in rest]))
    return roots


def _by_thread_id(rows: Iterable[SortRow]) -> list[list[SortRow]]:
    groups: dict[str, list[SortRow]] = defaultdict(list)
    for row in rows:
        groups[row.thread_id].append(row)
    return list(groups.values())


def _references_tree(members: list[SortRow]) -> ThreadNode:
    """One thread's messages as a tree: each message hangs under the nearest message of its
    References (or In-Reply-To) found in the thread; the rest are roots, under a placeholder
    when there are several (RFC 5256 §3 REFERENCES step 4)."""
    members = sorted(members, key=lambda row: (row.sent, row.uid))
    nodes = {id(row): ThreadNode(row) for row in members}
    by_message_id: dict[str, ThreadNode] = {}
    for row in members:
        if row.message_id and row.message_id not in by_message_id:
            by_message_id[row.message_id] = nodes[id(row)]
    roots = []
    for row in members:
        node = nodes[id(row)]
        parent = next(
            (
                by_message_id[ref]
                for ref in reversed(row.parents)
                if ref in by_message_id and not _below(by_message_id[ref], node)
            ),
            None,
        )
        if parent is None:
            roots.append(node)
        else:
            parent.children.append(node)
            node.parent = parent
    for node in nodes.values():
        node.children.sort(key=lambda child: child.order)
    return roots[0] if len(roots) == 1 else ThreadNode(None, roots)


def _below(candidate: ThreadNode, node: ThreadNode) -> bool:
    """Whether `candidate` is `node` or below it: making it the parent would close a loop."""
    current: ThreadNode | None = candidate
    while current is not None:
        if current is node:
            return True
        current = current.parent
    return False


def render(threads: Sequence[ThreadNode], number: Callable[[int], int]) -> str:
    """The THREAD response's thread-lists (RFC 5256 §4), messages named by `number(uid)`."""
    return "".join(_thread_list(node, number) for node in threads)


def _thread_list(node: ThreadNode, number: Callable[[int], int]) -> str:
    # thread-list = "(" (thread-members / thread-nested) ")"; a chain of only children is
    # written as members, and several children as nested thread-lists.
    members = []
    while node.row is not None and len(node.children) == 1:
        members.append(str(number(node.row.uid)))
        node = node.children[0]
    if node.row is not None:
        members.append(str(number(node.row.uid)))
    nested = "".join(_thread_list(child, number) for child in node.children)
    return "(" + " ".join(members) + (" " if members and nested else "") + nested + ")"

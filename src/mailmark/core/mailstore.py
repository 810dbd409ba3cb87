"""The IMAP view of a mailbox: folders, UIDs, flags, MODSEQs, fetch, search, copy/move, expunge.

Everything the IMAP server (and the web UI) does to folders goes through `MailStore`; its rules
(UIDs strictly ascending and never reused, a new MODSEQ per change, `\\Recent` never stored,
tombstones for expunged UIDs) live here once. Each mutation is one transaction, and
`FolderSignals.publish` is called only after its commit.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from mailmark.core import imap_sort
from mailmark.core.background import STOP_GRACE_SECONDS, BackgroundLoop
from mailmark.core.delivery import InboundDelivery
from mailmark.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MessageTooLarge,
    NotFound,
    StorageUnavailable,
)
from mailmark.core.folder_signals import FolderSignals
from mailmark.core.imap_sort import SortKey, SortRow, ThreadNode
from mailmark.core.mailboxes import DEFAULT_FOLDERS
from mailmark.core.message_meta import check_header_limits, read_index, read_metadata
from mailmark.core.model import (
    ConversationHead,
    FetchRow,
    Folder,
    FolderTotals,
    FolderUids,
    MailRow,
    NewPlacement,
    PlacementState,
)
from mailmark.core.plans import MailboxQuota, ensure_mailbox_room, mailbox_plan
from mailmark.core.ports import (
    BlobStore,
    Clock,
    UnitOfWork,
    UnitOfWorkFactory,
    blob_batches,
    read_blobs,
)
from mailmark.core.search import Criteria, Flag, check_bounds, uses_body_text, uses_index
from mailmark.core.spam import SpamLearning
from mailmark.core.states import SystemFlag

log = logging.getLogger(__name__)

# RFC 3501 §5.1: "/" separates hierarchy levels in folder names.
DELIMITER = "/"
INBOX = "INBOX"
# RFC 3501 §2.3.2 system flags, in their canonical spelling. `\Recent` is never stored.
SYSTEM_FLAGS = tuple(SystemFlag)
# Rows per chunk yielded by `fetch`.
FETCH_CHUNK = 500
# A chunk carrying message contents holds at most this many bytes (or one larger message).
CONTENT_CHUNK_BYTES = 16 * 1024 * 1024
MAX_FOLDER_NAME = 255
# UIDs kept by SELECT's cache of unchanged folders, over all of them (about 36 bytes each).
SELECTED_UIDS_KEPT = 500_000
# Messages whose place of content FETCH keeps (see `MailStore._content_rows`): about 100 bytes
# each plus the trace fields we add in front of a message, 0.5 to 1 KiB in all.
CONTENT_ROWS_KEPT = 30_000
# A session's SELECT has this node read, in the background, where the contents of the folder's
# newest messages lie, at most this many (half of what is kept: one big folder never pushes out
# every other), in statements of FETCH_CHUNK rows (`MailStore._read_places`).
CONTENT_ROWS_READ_AHEAD = CONTENT_ROWS_KEPT // 2
# Conversation counts kept, by folder state: a page of a big folder need not count it again.
CONVERSATION_COUNTS_KEPT = 1_000
MAX_FLAGS = 100
MAX_FLAG_LENGTH = 100
# Delivery, sending and the web UI find these folders by name: they can be neither deleted nor
# renamed (INBOX can be renamed, which moves its messages; RFC 3501 §6.3.5).
PROTECTED_FOLDERS = frozenset(name for name, _ in DEFAULT_FOLDERS)
_CANONICAL_FLAGS = {flag.lower(): flag for flag in SYSTEM_FLAGS}
# RFC 6855 §3 (and RFC 9051 §5.1): no C0 or C1 controls, DEL, or line/paragraph separators;
# "*" and "%" are LIST wildcards and could never be listed on their own.
_BAD_FOLDER_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029*%]")
# RFC 3501 §9: flag-keyword = atom; atom-specials are ( ) { SP CTL % * " \ ]
_KEYWORD = re.compile(r'[^\x00-\x20\x7f(){%*"\\\]]+')

# An APPEND of a message with the Message-ID of one the mailbox submitted over SMTP within this
# time, to the folder the server filed that one in, is answered with the filed copy.
SUBMITTED_COPY_WINDOW = timedelta(minutes=10)
# Every node renews its row and its sessions' views this often, and releases the expunged
# messages no session can see any more (issue 16 item 10, across nodes).
NODE_RENEW_SECONDS = 10.0
# A node not renewed for this long is gone with its sessions: its views hold nothing back.
NODE_GONE_AFTER = timedelta(seconds=60)
# RFC 6154 §2: the special-use attributes that say where spam and deleted mail go.
_JUNK = "\\Junk"
_TRASH = "\\Trash"

StoreMode = Literal["add", "remove", "replace"]


class FolderView(Protocol):
    """What an open IMAP session shows of a folder: the UIDs it has not yet been told are
    expunged, and the MODSEQ it has caught up to."""

    highestmodseq: int

    def sees(self, uid: int) -> bool: ...


@dataclass(frozen=True)
class FolderInfo:
    """One folder as LIST shows it."""

    id: int
    name: str
    special_use: str | None  # RFC 6154 attribute, e.g. "\\Sent"
    subscribed: bool


@dataclass(frozen=True)
class FolderStatus:
    """STATUS items (RFC 3501 §6.3.10, RFC 7162 HIGHESTMODSEQ, RFC 9051 SIZE)."""

    messages: int
    recent: int
    uidnext: int
    uidvalidity: int
    unseen: int
    highestmodseq: int
    size: int


@dataclass(frozen=True)
class FolderSnapshot:
    """What SELECT/EXAMINE reports and what the session keeps: `uids` ascending, so the sequence
    number of `uids[i]` is i + 1."""

    folder_id: int
    mailbox_id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    uids: list[int]
    first_unseen_seq: int | None  # sequence number of the first message without \Seen
    unseen: int
    keywords: tuple[str, ...]  # keywords in use in the folder (system flags are always offered)
    first_recent_uid: int = 1  # RFC 3501 §2.3.2: the UIDs from here on no session saw yet


@dataclass(frozen=True)
class FlagState:
    """A message's flags and MODSEQ after a change (untagged FETCH FLAGS / MODSEQ)."""

    uid: int
    flags: tuple[str, ...]
    modseq: int


@dataclass(frozen=True)
class FolderChanges:
    """Everything in a folder with MODSEQ above the one asked about: new and changed messages
    (`changed`, by uid ascending; a uid at or above the session's old UIDNEXT is new) and UIDs
    expunged since (from tombstones), for NOOP, IDLE, CONDSTORE and QRESYNC (RFC 7162 §3.2.5)."""

    changed: list[FlagState]
    expunged: list[int]
    highestmodseq: int
    uidnext: int
    # Every UID in the folder now, when the tombstones as old as the MODSEQ asked about were
    # pruned (`expunged` is then empty): what is missing from it below UIDNEXT is gone.
    present: list[int] | None = None

    def expunged_among(self, uids: Sequence[int]) -> list[int]:
        """Those of `uids` (ascending, each known to have existed) that were expunged since."""
        if self.present is None:
            return [uid for uid in self.expunged if _contains(uids, uid)]
        present = set(self.present)
        return [uid for uid in uids if uid not in present]

    def vanished(
        self, ranges: Sequence[tuple[int, int]] | None = None, still_seen: Sequence[int] = ()
    ) -> list[tuple[int, int]]:
        """RFC 7162 §3.2.5.1 VANISHED (EARLIER) as UID ranges, within `ranges` when given, less
        the UIDs a session still shows (it is told of those by EXPUNGE). Without tombstones,
        every UID below UIDNEXT not in the folder: some may never have existed, which §3.2.10
        allows."""
        if self.present is None:
            gone = [(uid, uid) for uid in self.expunged]
        else:
            gone = []
            start = 1
            for uid in [*self.present, self.uidnext]:
                if uid > start:
                    gone.append((start, uid - 1))
                start = uid + 1
        if ranges is not None:
            gone = [
                (max(low, a), min(high, b))
                for low, high in gone
                for a, b in ranges
                if max(low, a) <= min(high, b)
            ]
        return _without(_merged(gone), still_seen)


def _contains(ascending: Sequence[int], value: int) -> bool:
    index = bisect.bisect_left(ascending, value)
    return index < len(ascending) and ascending[index] == value


def _without(ranges: list[tuple[int, int]], points: Sequence[int]) -> list[tuple[int, int]]:
    """Ascending disjoint ranges less the ascending `points` inside them."""
    out = []
    for low, high in ranges:
        index = bisect.bisect_left(points, low)
        while index < len(points) and points[index] <= high:
            if points[index] > low:
                out.append((low, points[index] - 1))
            low = points[index] + 1
            index += 1
        if low <= high:
            out.append((low, high))
    return out


def _merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out


@dataclass(frozen=True)
class FetchWants:
    """What a FETCH needs beyond uid, flags, modseq, internal date and size."""

    envelope: bool = False
    bodystructure: bool = False  # BODYSTRUCTURE and BODY (non-extensible) both come with this
    content: bool = False  # the message's bytes (BODY[...], BINARY[...], RFC822*)
    # The flags and MODSEQ must be current. When not, a message whose content this node read
    # lately may come with the flags and MODSEQ it had then (see `MailStore._content_rows`).
    state: bool = True


@dataclass(slots=True)
class FetchedMessage:
    """One message as a FETCH renders it. Not frozen: one is built per message fetched, and a
    frozen dataclass's __init__ (object.__setattr__ per field) cost five times as much."""

    uid: int
    flags: tuple[str, ...]
    modseq: int
    internal_date: datetime
    size: int
    envelope: bytes | None = None  # IMAP syntax, e.g. b'("date" "subject" ...)'
    bodystructure: bytes | None = None  # extensible BODYSTRUCTURE, IMAP syntax
    body: bytes | None = None  # non-extensible BODY, IMAP syntax
    content: bytes | None = None  # trace prefix + blob: exactly what BODY[] returns


@dataclass(frozen=True)
class StoreResult:
    """`changed`: messages whose flags changed (each with its new MODSEQ). `modified`: UIDs that
    failed UNCHANGEDSINCE (RFC 7162 §3.1.3), for `[MODIFIED ...]`; they were not changed."""

    changed: list[FlagState]
    modified: list[int]


@dataclass(frozen=True)
class CopyResult:
    """For COPYUID (RFC 4315 §3): destination UIDVALIDITY and the uids, pairwise in order."""

    uidvalidity: int
    source_uids: list[int]
    dest_uids: list[int]


@dataclass(frozen=True)
class AppendResult:
    """For APPENDUID (RFC 4315 §3)."""

    uidvalidity: int
    uid: int


@dataclass(frozen=True)
class AppendItem:
    """One message of an APPEND."""

    raw: bytes
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None


@dataclass(frozen=True)
class MultiAppendResult:
    """For APPENDUID with a UID set (RFC 4315 §3, RFC 3502): the UIDs in the messages' order."""

    uidvalidity: int
    uids: list[int]


class MailStore:
    """Folders and messages of mailboxes, by mailbox id and folder id.

    Callers are trusted with ids: a session gets a folder id only from `select` on its own
    mailbox. Typed errors: `NotFound` (no such folder or message), `Conflict` (folder exists),
    `Forbidden` (INBOX/special-use rules), `InvalidInput` (bad name, flags, criteria),
    `MessageTooLarge`."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        blobs: BlobStore,
        clock: Clock,
        signals: FolderSignals,
        max_message_size: int,
        delivery: InboundDelivery,
        learning: SpamLearning | None = None,
        node_id: str | None = None,
    ) -> None:
        self._uow = uow
        # This process among those serving IMAP on the same database.
        self.node_id = node_id or uuid.uuid4().hex
        self._blobs = blobs
        self._clock = clock
        self.signals = signals
        self._max_message_size = max_message_size
        self._delivery = delivery
        self._learning = learning
        # Folders found fully indexed, at their (HIGHESTMODSEQ, UIDNEXT) then.
        self._indexed: dict[int, tuple[int, int]] = {}
        # The UIDs, unseen count and keywords SELECT last read of a folder, at its (UIDVALIDITY,
        # HIGHESTMODSEQ, UIDNEXT) then: every change to a folder's messages raises one of them
        # (RFC 7162 §3.1.1: each change gets a MODSEQ above the folder's HIGHESTMODSEQ), so a
        # folder selected again unchanged, by any session on this node, costs one row.
        self._selected_uids: dict[int, tuple[tuple[int, int, int], FolderUids]] = {}
        self._selected_uids_held = 0
        # Where the content of a message FETCH read lately lies, by (folder, UIDVALIDITY, UID):
        # none of it changes while the UID names the message (RFC 9051 §2.3.1.1: a UID is never
        # given twice under one UIDVALIDITY), so a content FETCH that reports no flags reads
        # only the blobs. The oldest go beyond CONTENT_ROWS_KEPT.
        self._content_rows: dict[tuple[int, int, int], FetchRow] = {}
        # Dovecot's index files keep these for every message of a folder, so that a client
        # downloading new mail reads only the contents. Here a SELECT reads them ahead, once per
        # (UIDVALIDITY, UIDNEXT) of the folder: the read in progress, by folder, and the last
        # state read ahead, by folder.
        self._reading_places: dict[int, asyncio.Task[None]] = {}
        self._places_read: dict[int, tuple[int, int]] = {}
        self._conversation_counts: dict[
            tuple[tuple[tuple[int, int, int], ...], Criteria | None], int
        ] = {}
        # RFC 9051 §7.5.1: a session must not be told of an expunge in the middle of a FETCH,
        # STORE or SEARCH by sequence number, and until it is told it may still FETCH the
        # message. So a placement expunged while a session (here or on another node) may still
        # see it is retained in the database, and its message row and blob with it, until none
        # does. The folders open here, by session; the floor this node published for each
        # (`imap_node_views`); when each SELECT whose view is not open yet read its snapshot;
        # by folder, the retained UIDs a session here saw when last looked at.
        self._views: dict[int, dict[int, FolderView]] = {}
        self._held: dict[int, int] = {}
        self._selecting: dict[int, list[float]] = {}
        self._selects_in_flight = 0
        self._views_lock = asyncio.Lock()
        self._retained_uids: dict[int, set[int]] = {}
        self._pruning: set[asyncio.Task[None]] = set()

    # Open sessions

    def open_view(self, folder_id: int, view: FolderView) -> None:
        """A session selected the folder: what it sees stays readable until it is told."""
        self._views.setdefault(folder_id, {})[id(view)] = view
        pending = self._selecting.get(folder_id)
        if pending:
            del pending[0]

    def close_view(self, folder_id: int, view: FolderView) -> None:
        views = self._views.get(folder_id)
        if views is not None:
            views.pop(id(view), None)
            if not views:
                del self._views[folder_id]
        self.view_changed(folder_id)

    def view_changed(self, folder_id: int) -> None:
        """A session was told of expunges (or closed the folder): release what no one sees."""
        retained = self._retained_uids.get(folder_id)
        if retained and len(self._seen(folder_id, list(retained), None)) < len(retained):
            task = asyncio.get_running_loop().create_task(self._release(folder_id))
            self._pruning.add(task)
            task.add_done_callback(self._pruning.discard)

    def _seen(self, folder_id: int, uids: Sequence[int], caller: FolderView | None) -> list[int]:
        views = [v for v in self._views.get(folder_id, {}).values() if v is not caller]
        return [uid for uid in uids if any(view.sees(uid) for view in views)]

    def _note_retained(self, folder_id: int, kept: Sequence[PlacementState]) -> None:
        if kept:
            self._retained_uids.setdefault(folder_id, set()).update(s.uid for s in kept)

    def _alive_since(self) -> datetime:
        return self._clock.now() - NODE_GONE_AFTER

    async def _hold(self, folder_id: int) -> None:
        """Before a session's first view of the folder on this node is read: publish that this
        node's sessions may see its messages expunged from now on. A SELECT of a folder held
        already writes nothing."""
        async with self._views_lock:
            if folder_id in self._held:
                return
            async with self._uow() as uow:
                floor = await uow.mailstore.hold_folder(self.node_id, folder_id, self._clock.now())
                await uow.commit()
            if floor is not None:
                self._held[folder_id] = floor

    async def _retain(
        self,
        uow: UnitOfWork,
        folder_id: int,
        uids: Sequence[int],
        caller: FolderView | None,
    ) -> list[PlacementState]:
        """In an expunge's transaction, after the folder is locked: the placements among `uids`
        that a session may still see, to retain. All of them when another node's sessions have
        the folder open (what each sees is known only there); else those an open session here
        other than `caller` sees."""
        elsewhere = await uow.mailstore.other_views_floor(
            folder_id, self.node_id, self._alive_since()
        )
        seen = list(uids) if elsewhere is not None else self._seen(folder_id, uids, caller)
        return await uow.mailstore.placements(folder_id, seen) if seen else []

    async def _release(self, folder_id: int) -> None:
        """Stop retaining the folder's expunged placements that no session here sees and no
        other live node's sessions may still see; remove what nothing holds any more. What is
        free stays free (floors only rise, and a folder held anew sees no earlier expunge), so
        it is judged on a read and written only when something is."""
        try:
            async with self._uow(read_only=True) as uow:
                kept = await uow.mailstore.retained(folder_id, None)
                elsewhere = (
                    await uow.mailstore.other_views_floor(
                        folder_id, self.node_id, self._alive_since()
                    )
                    if kept
                    else None
                )
            seen_here = set(self._seen(folder_id, [state.uid for state, _ in kept], None))
            free = [
                state.uid
                for state, expunged_at in kept
                if (elsewhere is None or elsewhere >= expunged_at) and state.uid not in seen_here
            ]
            if seen_here:
                # Released once the last session here is told of them (view_changed).
                self._retained_uids[folder_id] = seen_here
            else:
                self._retained_uids.pop(folder_id, None)
            if free:
                async with self._uow() as uow:
                    orphaned = await uow.mailstore.release(folder_id, free)
                    await uow.commit()
                await self.remove_unused_blobs(orphaned)
        except Exception:
            # Still retained: the next renewal (renew_views) tries again.
            log.exception("could not release the expunged messages of folder %d", folder_id)

    async def renew_views(self) -> int:
        """Every NODE_RENEW_SECONDS on every node: say this node is alive, raise its views'
        floors to what its sessions have been told, drop the folders none has open, forget
        nodes gone silent, and release what no session anywhere can still see; how many folders
        retained placements."""
        now = self._clock.now()
        async with self._views_lock:
            recent = time.monotonic() - NODE_RENEW_SECONDS
            raised: dict[int, int] = {}
            dropped: list[int] = []
            for folder_id, floor in [] if self._selects_in_flight else self._held.items():
                pending = [t for t in self._selecting.pop(folder_id, []) if t > recent]
                if pending:
                    # A SELECT is between its snapshot and its view: leave the floor be.
                    self._selecting[folder_id] = pending
                    continue
                views = self._views.get(folder_id)
                if not views:
                    dropped.append(folder_id)
                    continue
                lowest = min(view.highestmodseq for view in views.values())
                if lowest > floor:
                    raised[folder_id] = lowest
            # A node with no folder held has nothing to renew: other nodes only look at it
            # through its views. It writes again when a SELECT holds a folder (hold_folder).
            if self._held:
                # Forgotten before the write: a SELECT from now on holds the folder again.
                for folder_id in dropped:
                    del self._held[folder_id]
                async with self._uow() as uow:
                    await uow.mailstore.renew_node(self.node_id, now)
                    await uow.mailstore.set_view_floors(self.node_id, raised)
                    await uow.mailstore.drop_views(self.node_id, dropped)
                    await uow.mailstore.forget_nodes(now - NODE_GONE_AFTER)
                    await uow.commit()
                self._held.update(raised)
        async with self._uow(read_only=True) as uow:
            retaining = await uow.mailstore.retaining_folders()
        for folder_id in retaining:
            await self._release(folder_id)
        return len(retaining)

    async def leave(self) -> None:
        """This node stops serving IMAP: its views hold nothing back any more."""
        for task in list(self._reading_places.values()):
            task.cancel()
        async with self._views_lock:
            async with self._uow() as uow:
                await uow.mailstore.forget_node(self.node_id)
                await uow.commit()
            self._held.clear()

    async def remove_unplaced(self) -> None:
        """At start: remove the messages left without a placement, retained or not (a run ended
        between committing an expunge and removing what it left)."""
        async with self._uow() as uow:
            orphaned = await uow.mailstore.remove_unplaced(None)
            await uow.commit()
        await self.remove_unused_blobs(orphaned)

    # Folders

    async def list_folders(self, mailbox_id: int) -> list[FolderInfo]:
        """Every folder of the mailbox, INBOX first, then by name."""
        async with self._uow(read_only=True) as uow:
            found = await uow.folders.list_for_mailbox(mailbox_id)
        found.sort(key=lambda f: (f.name != INBOX, f.name))
        return [_info(folder) for folder in found]

    async def create_folder(
        self, mailbox_id: int, name: str, *, subscribe: bool = True
    ) -> FolderInfo:
        """Create a folder (RFC 3501 §6.3.3): a trailing delimiter is dropped; missing parents
        ("a" for "a/b") are created too. INBOX in any case, or an existing name, is `Conflict`.
        `subscribe`: put the folder's name on the subscription list, so that IMAP clients that
        show subscribed folders only see what the webmail created; IMAP CREATE leaves it to the
        client, as Dovecot does."""
        name = new_folder_name(name.removesuffix(DELIMITER))
        async with self._uow() as uow:
            existing = {f.name: f for f in await uow.folders.list_for_mailbox(mailbox_id)}
            if name in existing:
                raise Conflict(f"Folder {name} already exists.")
            await self._add_with_parents(uow, mailbox_id, name, existing)
            if subscribe:
                await uow.mailstore.set_subscribed(mailbox_id, [name], True)
            created = await uow.folders.get_by_name(mailbox_id, name)
            await uow.commit()
        assert created is not None
        self.signals.publish(mailbox_id)
        return _info(created)

    async def _add_with_parents(
        self,
        uow: UnitOfWork,
        mailbox_id: int,
        name: str,
        existing: dict[str, Folder],
        template: Folder | None = None,
    ) -> None:
        # RFC 9051 §2.3.1.1: a folder re-created under an old name needs a greater UIDVALIDITY,
        # even within the same second: the mailbox remembers the greatest it ever gave.
        validity = await uow.mailboxes.allocate_uid_validity(
            mailbox_id,
            max(
                [int(self._clock.now().timestamp())]
                + [f.uid_validity + 1 for f in existing.values()]
            ),
        )
        parts = name.split(DELIMITER)
        new = []
        for depth in range(1, len(parts) + 1):
            path = DELIMITER.join(parts[:depth])
            if path in existing or (depth < len(parts) and path == INBOX):
                continue
            if depth == len(parts) and template is not None:
                new.append(
                    Folder(
                        mailbox_id,
                        path,
                        None,
                        template.uid_validity,
                        template.uid_next,
                        template.highest_modseq,
                        False,
                    )
                )
            else:
                new.append(Folder(mailbox_id, path, None, validity, subscribed=False))
        await uow.folders.add_many(new)

    async def delete_folder(self, mailbox_id: int, name: str) -> None:
        """Delete a folder and its placements (RFC 3501 §6.3.4). INBOX, special-use and the other
        default folders cannot be deleted (`Forbidden`); a folder's children stay."""
        async with self._uow() as uow:
            folder = await self._folder(uow, mailbox_id, name)
            if folder.name in PROTECTED_FOLDERS or folder.special_use:
                raise Forbidden(f"Folder {folder.name} cannot be deleted.")
            assert folder.id is not None
            orphaned = await uow.mailstore.delete_folder(folder.id)
            await uow.commit()
        # SQLite may give the id to a later folder; its UIDVALIDITY tells them apart too.
        for key in [key for key in self._content_rows if key[0] == folder.id]:
            del self._content_rows[key]
        self._places_read.pop(folder.id, None)
        self.signals.publish(mailbox_id)
        await self.remove_unused_blobs(orphaned)

    async def rename_folder(self, mailbox_id: int, old: str, new: str) -> None:
        """Rename a folder and its children (RFC 3501 §6.3.5), creating missing parents of the new
        name. Renaming INBOX moves its messages, UIDs kept, into a new folder `new` and leaves
        INBOX empty (its UIDs are tombstoned there); its children stay where they are."""
        new = new_folder_name(new.removesuffix(DELIMITER))
        async with self._uow() as uow:
            folder = await self._folder(uow, mailbox_id, old)
            assert folder.id is not None
            existing = {f.name: f for f in await uow.folders.list_for_mailbox(mailbox_id)}
            if new in existing:
                raise Conflict(f"Folder {new} already exists.")
            if folder.name == INBOX:
                locked = await uow.mailstore.lock_folder(folder.id)
                assert locked is not None
                await self._add_with_parents(uow, mailbox_id, new, existing, template=locked)
                target = await uow.folders.get_by_name(mailbox_id, new)
                assert target is not None and target.id is not None
                modseq = await uow.mailstore.allocate_modseqs(folder.id, 1)
                await uow.mailstore.move_placements(folder.id, target.id, modseq)
            else:
                if folder.name in PROTECTED_FOLDERS or folder.special_use:
                    raise Forbidden(f"Folder {folder.name} cannot be renamed.")
                if new == folder.name or new.startswith(folder.name + DELIMITER):
                    raise InvalidInput(f"Folder {folder.name} cannot move into itself.")
                prefix = folder.name + DELIMITER
                renames: list[tuple[int, str]] = []
                for other in existing.values():
                    if other.id is not None and (
                        other.id == folder.id or other.name.startswith(prefix)
                    ):
                        renamed = new + other.name[len(folder.name) :]
                        if len(renamed) > MAX_FOLDER_NAME:
                            raise InvalidInput("The new folder name is too long.")
                        renames.append((other.id, renamed))
                await uow.mailstore.rename_folders(mailbox_id, renames)
                remaining = {
                    f.name: f for f in existing.values() if f.id not in {r[0] for r in renames}
                }
                remaining.update({n: Folder(mailbox_id, n, None, 0) for _, n in renames})
                parent = new.rpartition(DELIMITER)[0]
                if parent and parent not in remaining:
                    await self._add_with_parents(uow, mailbox_id, parent, remaining)
            await uow.commit()
        self.signals.publish(mailbox_id)

    async def set_subscribed(self, mailbox_id: int, name: str, subscribed: bool) -> None:
        """SUBSCRIBE an existing folder's name, UNSUBSCRIBE a name (RFC 9051 §6.3.7-6.3.8).

        SUBSCRIBE checks that the folder exists (§6.3.7 allows it), which also bounds the list by
        the folders. UNSUBSCRIBE takes a subscribed name whether or not its folder still exists,
        and answers OK for an existing folder that was not subscribed; any other name is
        `NotFound`."""
        name = folder_name(name)
        async with self._uow() as uow:
            folder = await uow.folders.get_by_name(mailbox_id, name)
            if subscribed and folder is None:
                raise NotFound(f"No folder {name}.")
            if (
                not subscribed
                and folder is None
                and not await uow.mailstore.subscriptions(mailbox_id, [name])
            ):
                raise NotFound(f"{name} is not subscribed.")
            await uow.mailstore.set_subscribed(mailbox_id, [name], subscribed)
            await uow.commit()

    async def subscriptions(self, mailbox_id: int) -> list[str]:
        """The subscribed names, their folders existing or not (LSUB, LIST (SUBSCRIBED))."""
        async with self._uow(read_only=True) as uow:
            return await uow.mailstore.subscriptions(mailbox_id)

    async def status(self, mailbox_id: int, name: str) -> FolderStatus:
        """STATUS counts: one aggregate query, nothing loaded per message."""
        async with self._uow(read_only=True) as uow:
            folder = await self._folder(uow, mailbox_id, name)
            assert folder.id is not None
            counts = await uow.mailstore.counts(folder.id, folder.first_recent_uid)
        return FolderStatus(
            counts.messages,
            counts.recent,
            folder.uid_next,
            folder.uid_validity,
            counts.unseen,
            folder.highest_modseq,
            counts.size,
        )

    async def select(self, mailbox_id: int, name: str, *, view: bool = False) -> FolderSnapshot:
        """SELECT/EXAMINE: the folder's UIDs and counters (INBOX matched case-insensitively).
        `view`: for a session that will `open_view` it; the folder is held for this node first
        (`_hold`), so that an expunge on any node retains what the session sees."""
        if not view:
            return await self._snapshot(mailbox_id, name)
        # While the snapshot is read, renew_views neither raises nor drops a floor: the view is
        # not open yet, and what it will see is not known.
        self._selects_in_flight += 1
        try:
            snapshot = await self._snapshot(mailbox_id, name)
            if snapshot.folder_id not in self._held:
                await self._hold(snapshot.folder_id)
                snapshot = await self._snapshot(mailbox_id, name)
            # Until the session opens its view (`open_view`), or for NODE_RENEW_SECONDS.
            self._selecting.setdefault(snapshot.folder_id, []).append(time.monotonic())
            self._read_places_ahead(snapshot)
            return snapshot
        finally:
            self._selects_in_flight -= 1

    async def _snapshot(self, mailbox_id: int, name: str) -> FolderSnapshot:
        async with self._uow(read_only=True) as uow:
            folder = await self._folder(uow, mailbox_id, name)
            assert folder.id is not None
            version = (folder.uid_validity, folder.highest_modseq, folder.uid_next)
            state = self._cached_uids(folder.id, version)
            if state is None:
                state = await uow.mailstore.folder_uids(folder.id)
            self._cache_uids(folder.id, version, state)
        # On PostgreSQL each statement sees the latest commits: messages committed between the
        # two reads must still lie below UIDNEXT.
        uidnext = max(folder.uid_next, state.uids[-1] + 1 if state.uids else 0)
        return FolderSnapshot(
            folder_id=folder.id,
            mailbox_id=mailbox_id,
            name=folder.name,
            special_use=folder.special_use,
            uidvalidity=folder.uid_validity,
            uidnext=uidnext,
            highestmodseq=folder.highest_modseq,
            uids=state.uids,
            first_unseen_seq=None if state.first_unseen is None else state.first_unseen + 1,
            unseen=state.unseen,
            keywords=state.keywords,
            first_recent_uid=folder.first_recent_uid,
        )

    def _cached_uids(self, folder_id: int, version: tuple[int, int, int]) -> FolderUids | None:
        cached = self._selected_uids.pop(folder_id, None)
        if cached is None:
            return None
        self._selected_uids_held -= len(cached[1].uids)
        return cached[1] if cached[0] == version else None

    def _cache_uids(self, folder_id: int, version: tuple[int, int, int], state: FolderUids) -> None:
        """Keep `state`, most recently selected last; the oldest go once SELECTED_UIDS_KEPT UIDs
        are held."""
        if len(state.uids) > SELECTED_UIDS_KEPT:
            return
        self._selected_uids[folder_id] = (version, state)
        self._selected_uids_held += len(state.uids)
        while self._selected_uids_held > SELECTED_UIDS_KEPT:
            oldest = next(iter(self._selected_uids))
            self._selected_uids_held -= len(self._selected_uids.pop(oldest)[1].uids)

    def _read_places_ahead(self, snapshot: FolderSnapshot) -> None:
        """Start reading where the contents of the folder's newest messages lie, unless read
        already at this UIDVALIDITY and UIDNEXT or being read; the SELECT does not wait."""
        folder_id = snapshot.folder_id
        state = (snapshot.uidvalidity, snapshot.uidnext)
        read = self._places_read.get(folder_id)
        if read == state or folder_id in self._reading_places:
            return
        uids = snapshot.uids[-CONTENT_ROWS_READ_AHEAD:]
        if read is not None and read[0] == snapshot.uidvalidity:
            # Those below the UIDNEXT read then are kept or were pushed out since.
            uids = uids[bisect.bisect_left(uids, read[1]) :]
        task = asyncio.get_running_loop().create_task(self._read_places(folder_id, state, uids))
        self._reading_places[folder_id] = task
        task.add_done_callback(lambda _: self._reading_places.pop(folder_id, None))

    async def _read_places(
        self, folder_id: int, state: tuple[int, int], uids: Sequence[int]
    ) -> None:
        """Keep the content rows of those of `uids` not kept yet, FETCH_CHUNK per statement so
        that building them never holds the loop long."""
        validity = state[0]
        _, missing = self._cached_content_rows(folder_id, validity, list(uids))
        try:
            for start in range(0, len(missing), FETCH_CHUNK):
                async with self._uow(read_only=True) as uow:
                    rows = await uow.mailstore.fetch_rows(
                        folder_id, missing[start : start + FETCH_CHUNK], False, True
                    )
                self._keep_content_rows(folder_id, validity, rows)
        except Exception:
            # Only a speed-up: a content FETCH reads what is not kept.
            log.exception("could not read ahead where folder %d's contents lie", folder_id)
            return
        self._places_read[folder_id] = state
        if len(self._places_read) > CONTENT_ROWS_KEPT:
            del self._places_read[next(iter(self._places_read))]

    async def places_read(self, folder_id: int) -> None:
        """Wait for the read a SELECT started of where the folder's contents lie, if any."""
        task = self._reading_places.get(folder_id)
        if task is not None:
            await asyncio.shield(task)

    async def claim_recent(self, folder_id: int, uid_next: int) -> int:
        """For an IMAP4rev1 session: the first UID that is \\Recent to it (RFC 3501 §2.3.2);
        the messages from there up to `uid_next` are recent to no other session."""
        async with self._uow() as uow:
            first = await uow.mailstore.claim_recent(folder_id, uid_next)
            await uow.commit()
        return first

    async def highest_modseq(self, folder_id: int) -> tuple[int, int]:
        """(HIGHESTMODSEQ, UIDNEXT) of the folder: a cheap poll for changes made on other nodes.
        `NotFound` once the folder is gone."""
        async with self._uow(read_only=True) as uow:
            folder = await uow.mailstore.folder(folder_id)
        if folder is None:
            raise NotFound("The folder no longer exists.")
        return folder.highest_modseq, folder.uid_next

    async def changes_since(self, folder_id: int, modseq: int) -> FolderChanges:
        """Placements and tombstones with MODSEQ above `modseq`. `NotFound` once the folder is
        gone (deleted or renamed away by another session)."""
        async with self._uow(read_only=True) as uow:
            folder = await uow.mailstore.folder(folder_id)
            if folder is None:
                raise NotFound("The folder no longer exists.")
            changed = await uow.mailstore.changed_since(folder_id, modseq)
            if modseq < folder.expunged_floor:  # the tombstones that old were pruned
                gone, present = [], await uow.mailstore.present_uids(folder_id)
            else:
                gone, present = await uow.mailstore.expunged_since(folder_id, modseq), None
        # The folder row was read first: changes committed since are reported too, and the
        # counters are raised to cover them.
        return FolderChanges(
            [FlagState(p.uid, p.flags, p.modseq) for p in changed],
            gone,
            max([folder.highest_modseq] + [p.modseq for p in changed]),
            max([folder.uid_next] + [p.uid + 1 for p in changed]),
            present,
        )

    async def prune_tombstones(self, kept: int) -> int:
        """Keep each folder's `kept` newest expunge tombstones, and any a session open here or on
        another live node has not caught up with; how many were deleted. Sessions and QRESYNC
        clients asking about an older MODSEQ are answered from the folder's UIDs instead
        (`FolderChanges.present`)."""
        deleted = 0
        async with self._uow(read_only=True) as uow:
            folder_ids = await uow.mailstore.tombstone_heavy_folders(kept)
        for folder_id in folder_ids:
            async with self._uow() as uow:
                cutoff = await uow.mailstore.tombstone_cutoff(folder_id, kept)
                views = self._views.get(folder_id, {}).values()
                if cutoff is not None and views:
                    cutoff = min([cutoff, *(view.highestmodseq for view in views)])
                elsewhere = await uow.mailstore.other_views_floor(
                    folder_id, self.node_id, self._alive_since()
                )
                if cutoff is not None and elsewhere is not None:
                    cutoff = min(cutoff, elsewhere)
                if cutoff is not None and cutoff > 0:
                    deleted += await uow.mailstore.prune_tombstones(folder_id, cutoff)
                    await uow.commit()
        return deleted

    # Messages

    async def fetch(
        self,
        folder_id: int,
        uids: Sequence[int],
        want: FetchWants,
        *,
        uidvalidity: int | None = None,
    ) -> AsyncIterator[list[FetchedMessage]]:
        """The messages among `uids` still in the folder, by uid ascending, in chunks of at most
        FETCH_CHUNK (fewer when contents are wanted: at most CONTENT_CHUNK_BYTES of them): a
        FETCH over a large folder never holds it all. Each chunk's contents are read in one batch
        (`BlobStore.get_many`). No transaction stays open while the caller consumes a chunk.

        With the folder's `uidvalidity`, a content FETCH without structure uses and fills the
        cache of where contents lie; with `want.state` False a cached message is served without
        reading the database, even when another node expunged it meanwhile (RFC 9051 §7.5.1
        lets a server serve a message it has not yet told the session is gone)."""
        wanted = sorted(set(uids))
        structure = want.envelope or want.bodystructure
        validity = uidvalidity if want.content and not structure else None
        for start in range(0, len(wanted), FETCH_CHUNK):
            chunk = wanted[start : start + FETCH_CHUNK]
            cached: list[FetchRow] = []
            if validity is not None and not want.state:
                cached, chunk = self._cached_content_rows(folder_id, validity, chunk)
            rows = await self._fetch_rows(folder_id, chunk, structure, want.content)
            if validity is not None:
                self._keep_content_rows(folder_id, validity, rows)
            if cached:
                rows = sorted(cached + rows, key=lambda row: row.uid)
            if structure:
                rows = await self._fill_index(folder_id, rows)
            if not want.content:
                yield [_fetched(row, want, None) for row in rows]
                continue
            for group in _by_size(rows):
                contents = await self._read_contents(group)
                yield [
                    _fetched(row, want, data)
                    for row, data in zip(group, contents, strict=True)
                    if data is not None
                ]

    async def _fetch_rows(
        self, folder_id: int, uids: list[int], structure: bool, content: bool
    ) -> list[FetchRow]:
        """The rows of `uids` in the folder, and of those expunged that a session still sees."""
        if not uids:
            return []
        async with self._uow(read_only=True) as uow:
            rows = await uow.mailstore.fetch_rows(folder_id, uids, structure, content)
            found = {row.uid for row in rows}
            missing = [uid for uid in uids if uid not in found]
            kept = (
                [state for state, _ in await uow.mailstore.retained(folder_id, missing)]
                if missing
                else []
            )
            if kept:
                rows = sorted(
                    rows + await self._retained_rows(uow, kept, structure, content),
                    key=lambda row: row.uid,
                )
        return rows

    def _cached_content_rows(
        self, folder_id: int, uidvalidity: int, uids: list[int]
    ) -> tuple[list[FetchRow], list[int]]:
        """The cached rows among `uids`, and the UIDs not cached."""
        content_rows = self._content_rows
        found: list[FetchRow] = []
        missing: list[int] = []
        for uid in uids:
            row = content_rows.get((folder_id, uidvalidity, uid))
            if row is None:
                missing.append(uid)
            else:
                found.append(row)
        return found, missing

    def _keep_content_rows(
        self, folder_id: int, uidvalidity: int, rows: Sequence[FetchRow]
    ) -> None:
        content_rows = self._content_rows
        for row in rows:
            content_rows[folder_id, uidvalidity, row.uid] = row
        while len(content_rows) > CONTENT_ROWS_KEPT:
            del content_rows[next(iter(content_rows))]

    @staticmethod
    async def _retained_rows(
        uow: UnitOfWork, kept: Sequence[PlacementState], structure: bool, content: bool
    ) -> list[FetchRow]:
        """Expunged messages a session still sees, as they were when expunged."""
        found = await uow.mailstore.message_rows(
            [state.message_id for state in kept], structure, content
        )
        return [
            replace(
                found[state.message_id],
                uid=state.uid,
                flags=state.flags,
                modseq=state.modseq,
                internal_date=state.internal_date,
            )
            for state in kept
            if state.message_id in found
        ]

    async def _read_contents(self, rows: Sequence[FetchRow]) -> list[bytes | None]:
        """Each row's bytes; None for a message expunged (by another node) since it was read."""
        # Rows come in groups bounded by size (_by_size), so one batch read stays bounded too.
        blobs = await read_blobs(self._blobs, [row.blob_key for row in rows])
        return [
            None if blob is None else row.trace_prefix + blob
            for row, blob in zip(rows, blobs, strict=True)
        ]

    async def _fill_index(self, folder_id: int, rows: list[FetchRow]) -> list[FetchRow]:
        """Compute and keep the IMAP index of messages stored without it: before it existed,
        or as Sent copies placed with `index_later`. Expunged messages a session still sees
        are among `rows` and are indexed too."""
        missing = [row for row in rows if row.envelope is None or row.bodystructure is None]
        if not missing:
            return rows
        with_prefix = await self._fetch_rows(folder_id, [row.uid for row in missing], False, True)
        indexes = {}
        for group in _by_size(with_prefix):
            found = [
                (row, data)
                for row, data in zip(group, await self._read_contents(group), strict=True)
                if data is not None
            ]
            made = await self._delivery.cpu.run_each(read_index, [data for _, data in found])
            for (row, _), index in zip(found, made, strict=True):
                indexes[row.message_id] = index
        async with self._uow() as uow:
            for message_id, index in indexes.items():
                await uow.mailstore.set_index(message_id, index)
            await uow.commit()
        out = []
        for row in rows:
            computed = indexes.get(row.message_id)
            if computed is not None:
                row = FetchRow(
                    row.uid,
                    row.message_id,
                    row.flags,
                    row.modseq,
                    row.internal_date,
                    row.size,
                    row.blob_key,
                    row.trace_prefix,
                    computed.envelope,
                    computed.bodystructure,
                    computed.body,
                )
            out.append(row)
        return out

    async def message_bytes(self, folder_id: int, uid: int) -> bytes:
        """Exactly what BODY[] returns: trace prefix + blob. `NotFound` when expunged."""
        async with self._uow(read_only=True) as uow:
            rows = await uow.mailstore.fetch_rows(folder_id, [uid], False, True)
        if not rows:
            raise NotFound(f"No message with UID {uid}.")
        return rows[0].trace_prefix + await self._blobs.get(rows[0].blob_key)

    async def store_flags(
        self,
        folder_id: int,
        uids: Sequence[int],
        mode: StoreMode,
        flags: Sequence[str],
        unchanged_since: int | None = None,
    ) -> StoreResult:
        """STORE FLAGS / +FLAGS / -FLAGS. System flags are matched case-insensitively and kept in
        their canonical spelling; keywords keep the case first given. `\\Recent` is ignored.
        Only messages whose flags really change get a new MODSEQ, one each."""
        given = canonical_flags(flags)
        async with self._uow() as uow:
            folder = await uow.mailstore.lock_folder(folder_id)
            if folder is None:
                raise NotFound("The folder no longer exists.")
            current = await uow.mailstore.placements(folder_id, uids)
            modified: list[int] = []
            updates: list[tuple[PlacementState, tuple[str, ...]]] = []
            for placement in current:
                if unchanged_since is not None and placement.modseq > unchanged_since:
                    # RFC 7162 §3.1.3: changed since the client looked; reported as MODIFIED.
                    modified.append(placement.uid)
                    continue
                new_flags = _apply(placement.flags, mode, given)
                if {f.lower() for f in new_flags} != {f.lower() for f in placement.flags}:
                    updates.append((placement, new_flags))
            changed: list[FlagState] = []
            if updates:
                first = await uow.mailstore.allocate_modseqs(folder_id, len(updates))
                changed = [
                    FlagState(p.uid, new_flags, first + i)
                    for i, (p, new_flags) in enumerate(updates)
                ]
                await uow.mailstore.set_flags(
                    folder_id, [(c.uid, c.flags, c.modseq) for c in changed]
                )
            await uow.commit()
        if changed:
            self.signals.publish(folder.mailbox_id)
        return StoreResult(changed, modified)

    async def copy(
        self,
        mailbox_id: int,
        folder_id: int,
        uids: Sequence[int],
        dest_name: str,
        move: bool,
        caller: FolderView | None = None,
    ) -> CopyResult:
        """COPY (RFC 3501 §6.4.7) or MOVE (RFC 6851): new placements of the same message rows in
        `dest_name`, flags and internal date kept; MOVE removes the source placements and
        tombstones them in the same transaction. Missing destination is `NotFound` (the adapter
        answers [TRYCREATE])."""
        async with self._uow() as uow:
            dest = await self._folder(uow, mailbox_id, dest_name)
            assert dest.id is not None
            kept = []
            if move:
                # Read before the move takes the placements away, with both folders locked
                # first in id order, as copy_placements locks them.
                for locked in sorted({folder_id, dest.id}):
                    await uow.mailstore.lock_folder(locked)
                kept = await self._retain(uow, folder_id, uids, caller)
            moved = await copy_placements(uow, mailbox_id, folder_id, uids, dest.id, move=move)
            if kept:
                # The source placements were removed under the folder's latest MODSEQ.
                removed = await uow.mailstore.folder(folder_id)
                assert removed is not None
                await uow.mailstore.retain(folder_id, kept, removed.highest_modseq)
            source = await uow.mailstore.folder(folder_id) if self._learning else None
            await uow.commit()
        self._note_retained(folder_id, kept)
        self.signals.publish(mailbox_id)
        if source is not None:
            self._teach(source, dest, [uid for _, uid in moved])
        return CopyResult(dest.uid_validity, [p.uid for p, _ in moved], [uid for _, uid in moved])

    def _teach(self, source: Folder, dest: Folder, dest_uids: Sequence[int]) -> None:
        """A person filing mail into Junk says it is spam; taking it out of Junk (other than to
        Trash) says it is not. The copies in `dest` are learned in the background."""
        assert self._learning is not None and dest.id is not None
        into_junk = dest.special_use == _JUNK and source.special_use != _JUNK
        out_of_junk = source.special_use == _JUNK and dest.special_use not in (_JUNK, _TRASH)
        if into_junk or out_of_junk:
            self._learning.submit(dest.id, dest_uids, self.message_bytes, spam=into_junk)

    async def expunge(
        self,
        folder_id: int,
        uids: Sequence[int] | None = None,
        caller: FolderView | None = None,
    ) -> list[int]:
        """Remove the messages flagged \\Deleted (only those among `uids` when given, for UID
        EXPUNGE); returns their UIDs ascending. Tombstones are written; blobs no message
        references any more are removed after commit. A message another open session (not
        `caller`) still sees is kept, row and blob, until it no longer does."""
        async with self._uow() as uow:
            folder = await uow.mailstore.lock_folder(folder_id)
            if folder is None:
                raise NotFound("The folder no longer exists.")
            doomed = await uow.mailstore.search(folder_id, Flag(SystemFlag.DELETED), uids)
            if not doomed:
                return []
            kept = await self._retain(uow, folder_id, doomed, caller)
            modseq = await uow.mailstore.allocate_modseqs(folder_id, 1)
            await uow.mailstore.retain(folder_id, kept, modseq)
            orphaned = await uow.mailstore.remove_placements(folder_id, doomed, modseq)
            await uow.commit()
        self._note_retained(folder_id, kept)
        self.signals.publish(folder.mailbox_id)
        await self.remove_unused_blobs(orphaned)
        return doomed

    async def append(
        self,
        mailbox_id: int,
        folder_name: str,
        raw: bytes,
        flags: Sequence[str] = (),
        internal_date: datetime | None = None,
    ) -> AppendResult:
        """APPEND (RFC 3501 §6.3.11) of one message: `append_many` of one."""
        result = await self.append_many(
            mailbox_id, folder_name, [AppendItem(raw, tuple(flags), internal_date)]
        )
        return AppendResult(result.uidvalidity, result.uids[0])

    async def append_many(
        self, mailbox_id: int, folder_name: str, items: Sequence[AppendItem]
    ) -> MultiAppendResult:
        """APPEND of one message or several (RFC 3502 MULTIAPPEND): each stored durably, then all
        placed in one transaction, so either every message is in the folder or none is. Nothing
        is sent, whatever the folder. A message over the size limit is `MessageTooLarge`; a
        missing folder is `NotFound` (the adapter answers [TRYCREATE])."""
        prepared: list[tuple[AppendItem, tuple[str, ...], datetime | None, str]] = []
        for item in items:
            if len(item.raw) > self._max_message_size:
                raise MessageTooLarge(
                    f"Message exceeds the size limit of {self._max_message_size} bytes."
                )
            check_header_limits(item.raw)
            internal_date = item.internal_date
            if internal_date is not None and internal_date.tzinfo is None:
                internal_date = internal_date.replace(tzinfo=UTC)
            # As SendingService.submit_raw keeps it: the first <id> of the field, without brackets.
            message_id = (read_metadata(item.raw).message_id or "").strip("<>")
            prepared.append((item, canonical_flags(item.flags), internal_date, message_id))
        # A mail client saving to Sent what it just submitted, which the server filed there
        # already: that message is answered with the filed copy's UID instead of kept twice.
        filed: dict[int, int] = {}
        async with self._uow(read_only=True) as uow:
            folder = await self._folder(uow, mailbox_id, folder_name)
            assert folder.id is not None
            for index, (_, _, _, message_id) in enumerate(prepared):
                if message_id:
                    uid = await uow.mailstore.filed_on_submission(
                        folder.id, message_id, self._clock.now() - SUBMITTED_COPY_WINDOW
                    )
                    if uid is not None:
                        filed[index] = uid
        if len(filed) == len(prepared):
            return MultiAppendResult(folder.uid_validity, [filed[i] for i in range(len(prepared))])
        created_blobs: list[str] = []
        try:
            blob_keys: dict[int, tuple[str, bool]] = {}
            for index, (item, _, _, _) in enumerate(prepared):
                if index not in filed:
                    blob_key, created = await self._blobs.put(item.raw)
                    blob_keys[index] = (blob_key, created)
                    if created:
                        created_blobs.append(blob_key)
            uids: list[int] = []
            async with self._uow() as uow:
                mailbox = await uow.mailboxes.get(mailbox_id)
                if mailbox is None:
                    raise NotFound("The mailbox no longer exists.")
                quota = await self._quota(uow, mailbox_id, mailbox.account_id, lock=True)
                if quota is not None:
                    # Over the limit nothing is stored; IMAP answers NO [OVERQUOTA] (RFC 5530 §3).
                    adding = [
                        item.raw for i, (item, _, _, _) in enumerate(prepared) if i not in filed
                    ]
                    ensure_mailbox_room(quota, sum(map(len, adding)), len(adding))
                for index, (item, flags, internal_date, _) in enumerate(prepared):
                    if index in filed:
                        uids.append(filed[index])
                        continue
                    blob_key, created = blob_keys[index]
                    receipt = await self._delivery.place_in(
                        uow,
                        item.raw,
                        blob_key=blob_key,
                        created_blob=created,
                        mailbox=mailbox,
                        folder=folder.name,
                        mail_from="",
                        flags=flags,
                        internal_date=internal_date,
                    )
                    uids.append(receipt.placements[0].uid)
                await uow.commit()
        except BaseException:
            if created_blobs:
                await self.remove_unused_blobs(created_blobs)
            raise
        self.signals.publish(mailbox_id)
        return MultiAppendResult(folder.uid_validity, uids)

    async def quota(self, mailbox_id: int) -> MailboxQuota:
        """The mailbox's use of its plan's per-mailbox limits (IMAP GETQUOTA, RFC 9208)."""
        async with self._uow(read_only=True) as uow:
            mailbox = await uow.mailboxes.get(mailbox_id)
            if mailbox is None:
                raise NotFound("The mailbox no longer exists.")
            quota = await self._quota(uow, mailbox_id, mailbox.account_id, lock=False)
            if quota is None:
                messages, size = await uow.mailstore.mailbox_usage(mailbox_id)
                quota = MailboxQuota(size, None, messages, None)
            return quota

    async def _quota(
        self, uow: UnitOfWork, mailbox_id: int, account_id: int, *, lock: bool
    ) -> MailboxQuota | None:
        """The use and limits when the plan limits the mailbox, None when it does not (and then
        nothing is counted). With `lock`, additions to the account wait until this commits."""
        account = await uow.accounts.get(account_id)
        if account is None:
            raise NotFound("The account no longer exists.")
        plan = mailbox_plan(account, self._clock.now())
        if plan.mailbox_storage is None and plan.mailbox_messages is None:
            return None
        if lock:
            await uow.accounts.lock(account_id)
        messages, size = await uow.mailstore.mailbox_usage(mailbox_id)
        return MailboxQuota(size, plan.mailbox_storage, messages, plan.mailbox_messages)

    async def search(
        self, folder_id: int, criteria: Criteria, uid_universe: Sequence[int] | None = None
    ) -> list[int]:
        """UIDs matching `criteria`, ascending; only among `uid_universe` when given (e.g. the
        session's snapshot, so messages it has not yet been told about stay out)."""
        try:
            check_bounds(criteria)
        except ValueError as error:
            raise InvalidInput(str(error)) from error
        if uses_index(criteria):
            await self._index_unindexed(folder_id, body_text=uses_body_text(criteria))
        async with self._uow(read_only=True) as uow:
            return await uow.mailstore.search(folder_id, criteria, uid_universe)

    async def sort(
        self, folder_id: int, criteria: Criteria, keys: Sequence[SortKey], uids: Sequence[int]
    ) -> list[int]:
        """RFC 5256 SORT: the UIDs among `uids` matching `criteria`, in the keys' order."""
        rows = await self._sort_rows(folder_id, criteria, uids)
        return [row.uid for row in imap_sort.sort(rows, keys)]

    async def thread(
        self, folder_id: int, criteria: Criteria, algorithm: str, uids: Sequence[int]
    ) -> list[ThreadNode]:
        """RFC 5256 THREAD: the messages among `uids` matching `criteria`, as threads."""
        rows = await self._sort_rows(folder_id, criteria, uids)
        return imap_sort.thread(rows, algorithm)

    async def _sort_rows(
        self, folder_id: int, criteria: Criteria, uids: Sequence[int]
    ) -> list[SortRow]:
        found = await self.search(folder_id, criteria, uids)
        async with self._uow(read_only=True) as uow:
            return await uow.mailstore.sort_rows(folder_id, found)

    # The webmail's view: the same placements, grouped into conversations

    async def folder_totals(self, mailbox_id: int) -> list[FolderTotals]:
        """Every folder of the mailbox with its total and unseen counts, in one query."""
        async with self._uow(read_only=True) as uow:
            return await uow.mailstore.folder_totals(mailbox_id)

    async def conversations(
        self,
        mailbox_id: int,
        folder_ids: Sequence[int],
        criteria: Criteria | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> tuple[list[ConversationHead], list[MailRow], int]:
        """One page of the conversations with messages in `folder_ids` (matching `criteria`):
        the page's threads latest first, their placements in those folders, and how many
        conversations there are in all. Text criteria use the full-text index IMAP SEARCH uses."""
        if criteria is not None:
            try:
                check_bounds(criteria)
            except ValueError as error:
                raise InvalidInput(str(error)) from error
            if uses_index(criteria):
                for folder_id in folder_ids:
                    await self._index_unindexed(folder_id, body_text=uses_body_text(criteria))
        if not folder_ids:
            return [], [], 0
        async with self._uow(read_only=True) as uow:
            heads = await uow.mailstore.conversations(folder_ids, criteria, before, limit)
            # Placements come and go only with a new MODSEQ or UID in their folder (and a
            # placement's thread never changes): the count holds while those do.
            state = []
            for folder_id in sorted(folder_ids):
                folder = await uow.mailstore.folder(folder_id)
                if folder is not None:
                    state.append((folder_id, folder.highest_modseq, folder.uid_next))
            key = (tuple(state), criteria)
            total = self._conversation_counts.get(key)
            if total is None:
                total = await uow.mailstore.conversation_count(folder_ids, criteria)
                if len(self._conversation_counts) >= CONVERSATION_COUNTS_KEPT:
                    self._conversation_counts.pop(next(iter(self._conversation_counts)))
                self._conversation_counts[key] = total
            rows = (
                await uow.mailstore.mail_rows(
                    mailbox_id, folder_ids=folder_ids, thread_ids=[h.thread_id for h in heads]
                )
                if heads
                else []
            )
        return heads, rows, total

    async def thread_rows(self, mailbox_id: int, thread_id: str) -> list[MailRow]:
        """Every placement of the thread in the mailbox, oldest first."""
        async with self._uow(read_only=True) as uow:
            return await uow.mailstore.mail_rows(mailbox_id, thread_ids=[thread_id])

    async def mail_rows(
        self, mailbox_id: int, folder_id: int, uids: Sequence[int]
    ) -> list[MailRow]:
        """These uids of one folder of the mailbox (those still there)."""
        async with self._uow(read_only=True) as uow:
            return await uow.mailstore.mail_rows(mailbox_id, folder_id=folder_id, uids=uids)

    async def _index_unindexed(self, folder_id: int, *, body_text: bool) -> None:
        """Index messages stored without their index (before it existed, or Sent copies placed
        with `index_later`), so that text searches find them. A folder found complete is not
        looked through again while its MODSEQ and UIDNEXT stay: any arrival changes them.

        With `body_text`, body texts still waiting for the full-text indexer are indexed first."""
        if body_text:
            await self._delivery.texts.catch_up(folder_id)
        while True:
            async with self._uow(read_only=True) as uow:
                folder = await uow.mailstore.folder(folder_id)
                state = None if folder is None else (folder.highest_modseq, folder.uid_next)
                if state is not None and self._indexed.get(folder_id) == state:
                    return
                uids = await uow.mailstore.unindexed(folder_id, FETCH_CHUNK)
                rows = await uow.mailstore.fetch_rows(folder_id, uids, True, False) if uids else []
            if not rows:
                if state is not None:
                    if len(self._indexed) >= CONVERSATION_COUNTS_KEPT:
                        self._indexed.clear()
                    self._indexed[folder_id] = state
                return
            await self._fill_index(folder_id, rows)

    # Helpers

    async def _folder(self, uow: UnitOfWork, mailbox_id: int, name: str) -> Folder:
        folder = await uow.folders.get_by_name(mailbox_id, folder_name(name))
        if folder is None or folder.id is None:
            raise NotFound(f"No folder {name}.")
        return folder

    async def remove_unused_blobs(self, keys: Sequence[str]) -> None:
        """After the commit, remove blobs no message uses, re-checking under each blob's lock as
        a delivery of identical content may reuse one meanwhile (MailboxService.delete does too)."""
        for key in keys:
            try:
                async with self._uow() as uow:
                    await uow.messages.lock_blob(key)
                    if not await uow.messages.blob_referenced(key):
                        await self._blobs.delete(key)
                    await uow.commit()
            except (OSError, StorageUnavailable):
                log.exception("could not remove unused blob %s", key)


class NodeRenewal(BackgroundLoop):
    """`MailStore.renew_views` every NODE_RENEW_SECONDS, on every node (not only the leader);
    stopped once the node's IMAP listeners are closed, it leaves (`MailStore.leave`)."""

    name = "IMAP node renewal"

    def __init__(self, store: MailStore, interval: float = NODE_RENEW_SECONDS) -> None:
        super().__init__()
        self._store = store
        self._interval = interval

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        await super().stop(grace)
        try:
            await self._store.leave()
        except Exception:
            log.exception(
                "could not remove this node's IMAP views; they lapse in %s", NODE_GONE_AFTER
            )

    async def _run(self) -> None:
        while not self.stopping:
            try:
                await self._store.renew_views()
            except Exception:
                log.exception("could not renew this node's IMAP views")
            await self._pause(self._interval)


async def copy_placements(
    uow: UnitOfWork,
    mailbox_id: int,
    source_id: int,
    uids: Sequence[int],
    dest_id: int,
    *,
    move: bool,
    flags: tuple[str, ...] | None = None,
) -> list[tuple[PlacementState, int]]:
    """COPY, or MOVE (RFC 6851), in the caller's transaction: new placements of the same message
    rows in `dest_id` (flags kept, or `flags` when given), and for MOVE the source placements
    removed and tombstoned. Returns (source placement, destination uid) pairs in uid order."""
    # Both folders locked in id order: opposite moves at once never deadlock.
    locked = {fid: await uow.mailstore.lock_folder(fid) for fid in sorted({source_id, dest_id})}
    source = locked[source_id]
    if source is None or source.mailbox_id != mailbox_id:
        raise NotFound("The folder no longer exists.")
    if locked[dest_id] is None:
        raise NotFound("The folder no longer exists.")
    found = await uow.mailstore.placements(source_id, uids)
    if not found:
        return []
    first_uid, first_modseq = await uow.folders.allocate_uids(dest_id, len(found))
    await uow.messages.add_placements(
        [
            NewPlacement(
                p.message_id,
                mailbox_id,
                dest_id,
                first_uid + i,
                first_modseq + i,
                p.thread_id,
                p.internal_date,
                p.flags if flags is None else flags,
            )
            for i, p in enumerate(found)
        ]
    )
    if move:
        modseq = await uow.mailstore.allocate_modseqs(source_id, 1)
        await uow.mailstore.remove_placements(source_id, [p.uid for p in found], modseq)
    return [(p, first_uid + i) for i, p in enumerate(found)]


async def expunge_placements(uow: UnitOfWork, folder_id: int, uids: Sequence[int]) -> list[str]:
    """Remove these placements at once in the caller's transaction (tombstoned under one new
    MODSEQ); the blob keys nothing references any more, to remove after the commit."""
    folder = await uow.mailstore.lock_folder(folder_id)
    if folder is None:
        raise NotFound("The folder no longer exists.")
    modseq = await uow.mailstore.allocate_modseqs(folder_id, 1)
    return await uow.mailstore.remove_placements(folder_id, uids, modseq)


def folder_name(name: str) -> str:
    """A folder name as stored: INBOX (and its children's first level) in upper case, any case
    given (RFC 3501 §5.1); `InvalidInput` for names no folder can have."""
    if not name or len(name) > MAX_FOLDER_NAME:
        raise InvalidInput("A folder name must have 1 to 255 characters.")
    if _BAD_FOLDER_CHARS.search(name) or any(not part for part in name.split(DELIMITER)):
        raise InvalidInput(f"{name!r} is not a valid folder name.")
    head, sep, rest = name.partition(DELIMITER)
    if head.upper() == INBOX:
        return INBOX + sep + rest
    return name


def new_folder_name(name: str) -> str:
    """`folder_name` for a folder about to be created or renamed to: besides, no level may be
    "." or ".." (nor, as for any name, empty: no leading "/"), which clients that mirror folders
    to a local Maildir would follow out of it."""
    name = folder_name(name)
    if any(part in (".", "..") for part in name.split(DELIMITER)):
        raise InvalidInput(f"{name!r} is not a valid folder name: no level may be . or ..")
    return name


def canonical_flags(flags: Sequence[str]) -> tuple[str, ...]:
    """Flags as stored: system flags in their canonical spelling, keywords as given, each once
    (compared case-insensitively), `\\Recent` left out. `InvalidInput` for anything else."""
    if len(flags) > MAX_FLAGS:
        raise InvalidInput(f"At most {MAX_FLAGS} flags at once.")
    out: dict[str, str] = {}
    for flag in flags:
        lower = flag.lower()
        if lower == "\\recent":
            continue  # RFC 3501 §2.3.2: \Recent cannot be stored by clients
        if lower in _CANONICAL_FLAGS:
            out.setdefault(lower, _CANONICAL_FLAGS[lower])
        elif flag.startswith("\\") or len(flag) > MAX_FLAG_LENGTH or not _KEYWORD.fullmatch(flag):
            raise InvalidInput(f"{flag!r} is not a flag that can be stored.")
        else:
            out.setdefault(lower, flag)
    return tuple(out.values())


def _apply(current: tuple[str, ...], mode: StoreMode, given: tuple[str, ...]) -> tuple[str, ...]:
    if mode == "replace":
        return given
    lowered = {flag.lower() for flag in given}
    if mode == "remove":
        return tuple(flag for flag in current if flag.lower() not in lowered)
    have = {flag.lower() for flag in current}
    return current + tuple(flag for flag in given if flag.lower() not in have)


def _info(folder: Folder) -> FolderInfo:
    assert folder.id is not None
    return FolderInfo(folder.id, folder.name, folder.special_use, folder.subscribed)


def _by_size(rows: Sequence[FetchRow]) -> list[list[FetchRow]]:
    """Consecutive groups of rows whose contents together stay under CONTENT_CHUNK_BYTES."""
    return blob_batches(rows, lambda row: row.size, CONTENT_CHUNK_BYTES)


def _fetched(row: FetchRow, want: FetchWants, content: bytes | None) -> FetchedMessage:
    return FetchedMessage(
        uid=row.uid,
        flags=row.flags,
        modseq=row.modseq,
        internal_date=row.internal_date,
        size=row.size,
        envelope=row.envelope if want.envelope else None,
        bodystructure=row.bodystructure if want.bodystructure else None,
        body=row.body if want.bodystructure else None,
        content=content,
    )

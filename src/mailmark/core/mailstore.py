"""The IMAP view of a mailbox: folders, UIDs, flags, MODSEQs, fetch, search, copy/move, expunge.

Everything the IMAP server (and the web UI) does to folders goes through `MailStore`; its rules
(UIDs strictly ascending and never reused, a new MODSEQ per change, `\\Recent` never stored,
tombstones for expunged UIDs) live here once. Each mutation is one transaction, and
`FolderSignals.publish` is called only after its commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from mailmark.core.folder_signals import FolderSignals
from mailmark.core.ports import BlobStore, Clock, UnitOfWorkFactory
from mailmark.core.search import Criteria

# RFC 3501 §5.1: "/" separates hierarchy levels in folder names.
DELIMITER = "/"
INBOX = "INBOX"
# RFC 3501 §2.3.2 system flags, in their canonical spelling. `\Recent` is never stored.
SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
# Rows per chunk yielded by `fetch`, and blobs read at once when bodies are wanted.
FETCH_CHUNK = 500
BLOB_READS_AT_ONCE = 16

StoreMode = Literal["add", "remove", "replace"]


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


@dataclass(frozen=True)
class FetchWants:
    """What a FETCH needs beyond uid, flags, modseq, internal date and size."""

    envelope: bool = False
    bodystructure: bool = False  # BODYSTRUCTURE and BODY (non-extensible) both come with this
    content: bool = False  # the message's bytes (BODY[...], BINARY[...], RFC822*)


@dataclass(frozen=True)
class FetchedMessage:
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


class MailStore:
    """Folders and messages of mailboxes, by mailbox id and folder id.

    Callers are trusted with ids: a session gets a folder id only from `select` on its own
    mailbox. Typed errors: `NotFound` (no such folder or message), `Conflict` (folder exists),
    `Forbidden` (INBOX/special-use rules), `InvalidInput` (bad name, flags), `MessageTooLarge`."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        blobs: BlobStore,
        clock: Clock,
        signals: FolderSignals,
        max_message_size: int,
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._clock = clock
        self.signals = signals
        self._max_message_size = max_message_size

    # Folders

    async def list_folders(self, mailbox_id: int) -> list[FolderInfo]:
        """Every folder of the mailbox, INBOX first, then by name."""
        raise NotImplementedError

    async def create_folder(self, mailbox_id: int, name: str) -> FolderInfo:
        """Create a folder (RFC 3501 §6.3.3): a trailing delimiter is dropped; missing parents
        ("a" for "a/b") are created too. INBOX in any case, or an existing name, is `Conflict`."""
        raise NotImplementedError

    async def delete_folder(self, mailbox_id: int, name: str) -> None:
        """Delete a folder and its placements (RFC 3501 §6.3.4). INBOX and special-use folders
        cannot be deleted (`Forbidden`); a folder with children may be (its children stay)."""
        raise NotImplementedError

    async def rename_folder(self, mailbox_id: int, old: str, new: str) -> None:
        """Rename a folder and its children (RFC 3501 §6.3.5). Renaming INBOX moves its
        messages into a new folder `new` and leaves INBOX empty. New UIDVALIDITY is not needed:
        UIDs move with the folder."""
        raise NotImplementedError

    async def set_subscribed(self, mailbox_id: int, name: str, subscribed: bool) -> None:
        """SUBSCRIBE / UNSUBSCRIBE an existing folder."""
        raise NotImplementedError

    async def status(self, mailbox_id: int, name: str) -> FolderStatus:
        """STATUS counts in one query."""
        raise NotImplementedError

    async def select(self, mailbox_id: int, name: str) -> FolderSnapshot:
        """SELECT/EXAMINE: the folder's UIDs and counters (INBOX matched case-insensitively)."""
        raise NotImplementedError

    async def highest_modseq(self, folder_id: int) -> tuple[int, int]:
        """(HIGHESTMODSEQ, UIDNEXT) of the folder: a cheap poll for changes made on other nodes."""
        raise NotImplementedError

    async def changes_since(self, folder_id: int, modseq: int) -> FolderChanges:
        """Placements and tombstones with MODSEQ above `modseq`."""
        raise NotImplementedError

    # Messages

    def fetch(
        self, folder_id: int, uids: Sequence[int], want: FetchWants
    ) -> AsyncIterator[list[FetchedMessage]]:
        """The messages among `uids` still in the folder, by uid ascending, in chunks of at most
        FETCH_CHUNK: a FETCH over a large folder never holds it all. Contents are read at most
        BLOB_READS_AT_ONCE at a time."""
        raise NotImplementedError

    async def message_bytes(self, folder_id: int, uid: int) -> bytes:
        """Exactly what BODY[] returns: trace prefix + blob. `NotFound` when expunged."""
        raise NotImplementedError

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
        Only messages whose flags really change get a new MODSEQ."""
        raise NotImplementedError

    async def copy(
        self, mailbox_id: int, folder_id: int, uids: Sequence[int], dest_name: str, move: bool
    ) -> CopyResult:
        """COPY (RFC 3501 §6.4.7) or MOVE (RFC 6851): new placements of the same message rows in
        `dest_name`, flags kept; MOVE removes the source placements and tombstones them in the
        same transaction. Missing destination is `NotFound` (the adapter answers [TRYCREATE])."""
        raise NotImplementedError

    async def expunge(self, folder_id: int, uids: Sequence[int] | None = None) -> list[int]:
        """Remove the messages flagged \\Deleted (only those among `uids` when given, for UID
        EXPUNGE); returns their UIDs ascending. Tombstones are written; blobs no message
        references any more are removed after commit."""
        raise NotImplementedError

    async def append(
        self,
        mailbox_id: int,
        folder_name: str,
        raw: bytes,
        flags: Sequence[str] = (),
        internal_date: datetime | None = None,
    ) -> AppendResult:
        """APPEND (RFC 3501 §6.3.11): store `raw` durably, then place it in one transaction.
        Nothing is sent, whatever the folder. Over the size limit is `MessageTooLarge`."""
        raise NotImplementedError

    async def search(
        self, folder_id: int, criteria: Criteria, uid_universe: Sequence[int] | None = None
    ) -> list[int]:
        """UIDs matching `criteria`, ascending; only among `uid_universe` when given (e.g. the
        session's snapshot, so messages it has not yet been told about stay out)."""
        raise NotImplementedError

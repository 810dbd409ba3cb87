"""The webmail's read side: mailboxes, folders, conversations, threads, messages and their parts,
actions on messages, search and live folder counts, over the same folders, UIDs and flags IMAP
serves (everything goes through `MailStore`, so an IMAP session sees a change at once).

Access is one check, `MailboxService.usable_by`: a mailbox the viewer may not use answers
`NotFound`, like one that does not exist; a folder id of another mailbox does too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email
import email.message
import email.policy
import hashlib
import hmac
import html
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import getaddresses, parseaddr
from typing import Literal, Protocol, get_args
from urllib.parse import quote

from mailmark.core import search as crit
from mailmark.core.access import Viewer
from mailmark.core.errors import InvalidInput, NotFound, RateLimited
from mailmark.core.mailboxes import MailboxService
from mailmark.core.mailstore import DELIMITER, INBOX, PROTECTED_FOLDERS, FolderInfo, MailStore
from mailmark.core.model import Mailbox, MailRow
from mailmark.core.ports import Clock, UnitOfWorkFactory
from mailmark.core.states import SpecialFolder, SystemFlag

# The roles of the special folders, by name, and the order the folder list shows them in.
ROLES: dict[str, str] = {
    INBOX: "inbox",
    SpecialFolder.DRAFTS: "drafts",
    SpecialFolder.SENT: "sent",
    "Outbox": "outbox",
    SpecialFolder.ARCHIVE: "archive",
    SpecialFolder.JUNK: "junk",
    SpecialFolder.TRASH: "trash",
}
_ROLE_ORDER = list(ROLES.values())
_BY_ROLE = {role: name for name, role in ROLES.items()}
# Folders whose messages carry the mailbox's own Bcc.
_OWN_MAIL_ROLES = frozenset({"sent", "drafts", "outbox"})
_HIDDEN_ROLES = frozenset({"trash", "junk"})

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_ACTION_MESSAGES = 1000
MAX_QUERY = 500
MAX_QUERY_TERMS = 30
MAX_THREAD_MESSAGES = 200
# The plain-text body the API gives inline; the rest is in "show original".
MAX_TEXT_CHARS = 256 * 1024
MAX_PARTS = 500
MAX_PARTICIPANTS = 10
MAX_REFERENCES = 50
# SSE: at most this many streams per user at once; a ping this often; a poll for changes made
# by other processes (other HTTP workers, other nodes) this often.
MAX_STREAMS_PER_USER = 5
PING_SECONDS = 15.0
POLL_SECONDS = 5.0
# Keywords spam reports set (RFC 5788 registry: $Junk / $NotJunk).
JUNK_KEYWORD = "$Junk"
NOT_JUNK_KEYWORD = "$NotJunk"

Action = Literal[
    "read", "unread", "star", "unstar", "archive", "move", "trash", "delete", "spam", "notspam"
]
ACTIONS: tuple[str, ...] = get_args(Action)
_FLAG_ACTIONS: dict[str, tuple[Literal["add", "remove"], str]] = {
    "read": ("add", SystemFlag.SEEN),
    "unread": ("remove", SystemFlag.SEEN),
    "star": ("add", SystemFlag.FLAGGED),
    "unstar": ("remove", SystemFlag.FLAGGED),
}


# --- values -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    name: str
    address: str


@dataclass(frozen=True)
class MessageRef:
    folder_id: int
    uid: int


@dataclass(frozen=True)
class MailboxSummary:
    id: int
    address: str
    display_name: str
    unread: int


@dataclass(frozen=True)
class FolderView:
    id: int
    name: str
    role: str | None
    total: int
    unread: int
    subscribed: bool


@dataclass(frozen=True)
class ConversationSummary:
    thread_id: str
    subject: str
    snippet: str
    participants: list[Address]
    count: int
    unread: bool
    starred: bool
    has_attachments: bool
    date: datetime
    latest: MessageRef
    messages: list[MessageRef]


@dataclass(frozen=True)
class ConversationPage:
    items: list[ConversationSummary]
    next_cursor: str | None
    total: int


@dataclass(frozen=True)
class AttachmentInfo:
    part_id: str
    filename: str
    content_type: str
    size: int
    inline: bool
    url: str


@dataclass(frozen=True)
class AuthResults:
    spf: str
    dkim: str
    dmarc: str
    warning: str | None


@dataclass(frozen=True)
class MessageDetail:
    folder_id: int
    folder: str
    role: str | None
    uid: int
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    from_: Address | None
    sender: Address | None
    reply_to: list[Address]
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    subject: str
    date: datetime
    received_at: datetime
    flags: list[str]
    seen: bool
    starred: bool
    snippet: str
    size: int
    text: str | None
    has_html: bool
    html_url: str | None
    raw_url: str
    attachments: list[AttachmentInfo]
    remote_images: bool
    images_allowed: bool
    auth: AuthResults


@dataclass(frozen=True)
class ThreadView:
    thread_id: str
    subject: str
    messages: list[MessageDetail]


@dataclass(frozen=True)
class Moved:
    source: MessageRef
    dest: MessageRef


@dataclass(frozen=True)
class ActionResult:
    moved: list[Moved]
    updated: int


@dataclass(frozen=True)
class FolderCount:
    id: int
    total: int
    unread: int


@dataclass(frozen=True)
class Part:
    """A decoded MIME part, for download or inline display."""

    content: bytes
    content_type: str
    filename: str


@dataclass(frozen=True)
class CleanedHtml:
    """A sanitised HTML document and whether the original referred to remote images."""

    html: str
    remote_images: bool


class MailHtmlCleaner(Protocol):
    def clean(
        self,
        html: str,
        *,
        remote_image: Callable[[str], str | None],
        inline_image: Callable[[str], str | None],
    ) -> CleanedHtml: ...


# --- search queries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchQuery:
    """A parsed search box: criteria for `MailStore`, and the folders `in:` names (lower case)."""

    criteria: crit.Criteria
    folders: tuple[str, ...] = ()


_TOKEN = re.compile(r'\s*(?:([A-Za-z]+):)?(?:"([^"]*)"|(\S+))?')
_OPERATORS = frozenset({"from", "to", "subject", "has", "is", "in", "before", "after"})


def parse_search(query: str) -> SearchQuery:
    """Gmail-like operators: from: to: subject: has:attachment is:unread|read|starred in:<folder>
    before:/after:YYYY-MM-DD, "quoted phrases" and free words, all of which must match.
    `InvalidInput` (field "q") says which operator is wrong."""
    if len(query) > MAX_QUERY:
        raise InvalidInput(f"A search has at most {MAX_QUERY} characters.", field="q")
    if query.count('"') % 2:
        raise InvalidInput('A quoted phrase is not closed: add the missing ".', field="q")
    items: list[crit.Criteria] = []
    folders: list[str] = []
    position = 0
    terms = 0
    text = query.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            break
        position = match.end()
        operator, quoted, bare = match.group(1), match.group(2), match.group(3)
        value = quoted if quoted is not None else bare
        if operator is not None and operator.lower() not in _OPERATORS:
            # Not one of ours ("re:meeting", a URL's "https:"): the whole token is searched for.
            value = f"{operator}:{value or ''}"
            operator = None
        if operator is None and not value:
            continue
        terms += 1
        if terms > MAX_QUERY_TERMS:
            raise InvalidInput(f"A search has at most {MAX_QUERY_TERMS} terms.", field="q")
        if operator is None:
            assert value is not None
            items.append(crit.Text(value))
            continue
        operator = operator.lower()
        if not value:
            raise InvalidInput(f"{operator}: needs a value, like {_EXAMPLES[operator]}.", field="q")
        items.extend(_operator(operator, value, folders))
    if not items and not folders:
        raise InvalidInput("Type something to search for.", field="q")
    criteria: crit.Criteria = crit.And(tuple(items)) if items else crit.All()
    return SearchQuery(criteria, tuple(folders))


_EXAMPLES = {
    "from": "from:alice@example.com",
    "to": "to:bob",
    "subject": 'subject:"monthly report"',
    "has": "has:attachment",
    "is": "is:unread",
    "in": "in:archive",
    "before": "before:2026-01-31",
    "after": "after:2026-01-01",
}


def _operator(operator: str, value: str, folders: list[str]) -> list[crit.Criteria]:
    if operator == "from":
        return [crit.From(value)]
    if operator == "to":
        return [crit.Or(crit.To(value), crit.Cc(value))]
    if operator == "subject":
        return [crit.Subject(value)]
    if operator == "has":
        if value.lower() in ("attachment", "attachments"):
            return [crit.HasAttachment()]
        raise InvalidInput(f"has:{value} is not known; use has:attachment.", field="q")
    if operator == "is":
        flags = {
            "unread": crit.Flag(SystemFlag.SEEN, present=False),
            "read": crit.Flag(SystemFlag.SEEN),
            "starred": crit.Flag(SystemFlag.FLAGGED),
            "unstarred": crit.Flag(SystemFlag.FLAGGED, present=False),
        }
        found = flags.get(value.lower())
        if found is None:
            raise InvalidInput(
                f"is:{value} is not known; use is:unread, is:read or is:starred.", field="q"
            )
        return [found]
    if operator == "in":
        folders.append(value.lower())
        return []
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{operator}:{value} is not a date; write it as {_EXAMPLES[operator]}.", field="q"
        ) from None
    # Days of the internal (received) date: before: excludes the day, after: includes it.
    return [crit.Before(day)] if operator == "before" else [crit.Since(day)]


# --- cursors and signed image URLs --------------------------------------------------------------


def encode_cursor(latest: datetime, thread_id: str) -> str:
    text = f"{latest.astimezone(UTC).isoformat()}|{thread_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, _, thread_id = base64.urlsafe_b64decode(padded).decode().partition("|")
        latest = datetime.fromisoformat(moment)
        if latest.tzinfo is None or not thread_id or len(thread_id) > 32:
            raise ValueError(cursor)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput(
            "The cursor is not one this list gave; start again without it.", field="cursor"
        ) from None
    return latest, thread_id


class ImageSigner:
    """HMAC signatures of the remote image URLs the sanitiser rewrote: the proxy fetches only
    those, never a URL someone made up."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"mailmark image proxy\x00" + key).digest()

    def sign(self, url: str) -> str:
        digest = hmac.new(self._key, url.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode()

    def verify(self, url: str, signature: str) -> None:
        if not hmac.compare_digest(self.sign(url).encode(), signature.encode()):
            raise NotFound("No such image.")

    def proxy_url(self, url: str) -> str:
        return f"/api/mail/image?url={quote(url, safe='')}&sig={self.sign(url)}"


# --- the service --------------------------------------------------------------------------------


@dataclass
class _Parsed:
    """A message read with the stdlib parser: its leaves by IMAP part number."""

    message: email.message.EmailMessage
    leaves: dict[str, email.message.Message] = field(default_factory=dict)
    text_part: str | None = None
    html_part: str | None = None


class WebmailService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        mailboxes: MailboxService,
        store: MailStore,
        cleaner: MailHtmlCleaner,
        images: ImageSigner,
        *,
        hostname: str,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._mailboxes = mailboxes
        self._store = store
        self._cleaner = cleaner
        self.images = images
        self._hostname = hostname.lower()
        self._streams: dict[int, int] = {}

    # Mailboxes and folders

    async def mailboxes(self, viewer: Viewer) -> list[MailboxSummary]:
        """The mailboxes the viewer may use, with their Inbox's unseen count."""
        out = []
        for view in await self._mailboxes.list_for(viewer):
            mailbox = view.mailbox
            assert mailbox.id is not None
            totals = await self._store.folder_totals(mailbox.id)
            unread = next((t.unseen for t in totals if t.folder.name == INBOX), 0)
            out.append(MailboxSummary(mailbox.id, mailbox.address, mailbox.display_name, unread))
        return out

    async def folders(self, viewer: Viewer, mailbox_id: int) -> list[FolderView]:
        await self._mailbox(viewer, mailbox_id)
        return await self._folder_views(mailbox_id)

    async def _folder_views(self, mailbox_id: int) -> list[FolderView]:
        views = [
            FolderView(
                t.folder.id or 0,
                t.folder.name,
                ROLES.get(t.folder.name),
                t.total,
                t.unseen,
                t.folder.subscribed,
            )
            for t in await self._store.folder_totals(mailbox_id)
        ]
        views.sort(
            key=lambda f: (
                (0, _ROLE_ORDER.index(f.role), "") if f.role else (1, 0, f.name.casefold())
            )
        )
        return views

    async def create_folder(self, viewer: Viewer, mailbox_id: int, name: str) -> FolderView:
        await self._mailbox(viewer, mailbox_id)
        created = await self._store.create_folder(mailbox_id, _folder_name_input(name))
        return await self._folder_view(mailbox_id, created.id)

    async def rename_folder(
        self, viewer: Viewer, mailbox_id: int, folder_id: int, name: str
    ) -> FolderView:
        folder = await self._user_folder(viewer, mailbox_id, folder_id, "renamed")
        await self._store.rename_folder(mailbox_id, folder.name, _folder_name_input(name))
        return await self._folder_view(mailbox_id, folder_id)

    async def delete_folder(self, viewer: Viewer, mailbox_id: int, folder_id: int) -> None:
        folder = await self._user_folder(viewer, mailbox_id, folder_id, "deleted")
        await self._store.delete_folder(mailbox_id, folder.name)

    async def _user_folder(
        self, viewer: Viewer, mailbox_id: int, folder_id: int, verb: str
    ) -> FolderInfo:
        await self._mailbox(viewer, mailbox_id)
        folder = (await self._folders(mailbox_id)).get(folder_id)
        if folder is None:
            raise NotFound("No such folder.")
        if folder.name in PROTECTED_FOLDERS or folder.special_use:
            raise InvalidInput(f"The {folder.name} folder cannot be {verb}.", field="folderId")
        return folder

    async def _folder_view(self, mailbox_id: int, folder_id: int) -> FolderView:
        for view in await self._folder_views(mailbox_id):
            if view.id == folder_id:
                return view
        raise NotFound("No such folder.")

    # Lists

    async def conversations(
        self,
        viewer: Viewer,
        mailbox_id: int,
        folder_id: int,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> ConversationPage:
        await self._mailbox(viewer, mailbox_id)
        folders = await self._folders(mailbox_id)
        if folder_id not in folders:
            raise NotFound("No such folder.")
        return await self._page(mailbox_id, [folder_id], None, limit, cursor)

    async def search(
        self,
        viewer: Viewer,
        mailbox_id: int,
        query: str,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> ConversationPage:
        """Conversations with messages matching the query, in every folder but Trash and Junk
        unless `in:` names folders (by name or role, case-insensitively)."""
        parsed = parse_search(query)
        await self._mailbox(viewer, mailbox_id)
        folders = await self._folders(mailbox_id)
        if parsed.folders:
            chosen = []
            for wanted in parsed.folders:
                found = [
                    f.id
                    for f in folders.values()
                    if f.name.casefold() == wanted or ROLES.get(f.name) == _ROLE_ALIASES.get(wanted)
                ]
                if not found:
                    raise InvalidInput(f"in:{wanted} names no folder of this mailbox.", field="q")
                chosen += found
        else:
            chosen = [f.id for f in folders.values() if ROLES.get(f.name) not in _HIDDEN_ROLES]
        return await self._page(mailbox_id, sorted(set(chosen)), parsed.criteria, limit, cursor)

    async def _page(
        self,
        mailbox_id: int,
        folder_ids: Sequence[int],
        criteria: crit.Criteria | None,
        limit: int,
        cursor: str | None,
    ) -> ConversationPage:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1 to {MAX_PAGE}.", field="limit")
        before = decode_cursor(cursor) if cursor else None
        heads, rows, total = await self._store.conversations(
            mailbox_id, folder_ids, criteria, before, limit + 1
        )
        more = len(heads) > limit
        heads = heads[:limit]
        by_thread: dict[str, list[MailRow]] = {}
        for row in rows:
            by_thread.setdefault(row.thread_id, []).append(row)
        items = [
            summary
            for h in heads
            if (summary := _summary(h.thread_id, by_thread.get(h.thread_id, []))) is not None
        ]
        next_cursor = encode_cursor(heads[-1].latest, heads[-1].thread_id) if more else None
        return ConversationPage(items, next_cursor, total)

    # Reading

    async def thread(
        self, viewer: Viewer, mailbox_id: int, thread_id: str, folder_id: int | None = None
    ) -> ThreadView:
        """The thread's messages in every folder, oldest first; those in Trash and Junk only
        when asked from there (`folder_id`) or when the whole thread lies there."""
        mailbox = await self._mailbox(viewer, mailbox_id)
        if not thread_id or len(thread_id) > 32:
            raise NotFound("No such conversation.")
        folders = await self._folders(mailbox_id)
        rows = await self._store.thread_rows(mailbox_id, thread_id)
        if not rows:
            raise NotFound("No such conversation.")
        asked_role = ROLES.get(folders[folder_id].name) if folder_id in folders else None
        if asked_role not in _HIDDEN_ROLES:
            visible = [r for r in rows if ROLES.get(folders[r.folder_id].name) not in _HIDDEN_ROLES]
            rows = visible or rows
        rows = rows[-MAX_THREAD_MESSAGES:]
        trusted = await self._trusted(mailbox_id, rows)
        details = [await self._detail(mailbox, folders, row, trusted) for row in rows]
        subject = next((d.subject for d in details if d.subject), "")
        return ThreadView(thread_id, subject, details)

    async def message(
        self, viewer: Viewer, mailbox_id: int, folder_id: int, uid: int
    ) -> MessageDetail:
        mailbox = await self._mailbox(viewer, mailbox_id)
        folders = await self._folders(mailbox_id)
        row = await self._row(mailbox_id, folders, folder_id, uid)
        return await self._detail(mailbox, folders, row, await self._trusted(mailbox_id, [row]))

    async def body(
        self, viewer: Viewer, mailbox_id: int, folder_id: int, uid: int, images: bool
    ) -> str:
        """The message's HTML (or its text as HTML), sanitised, as a whole document; remote
        images removed, or with `images` rewritten to signed proxy URLs."""
        await self._mailbox(viewer, mailbox_id)
        folders = await self._folders(mailbox_id)
        await self._row(mailbox_id, folders, folder_id, uid)
        parsed = await self._parse(folder_id, uid)
        return self._clean(mailbox_id, folder_id, uid, parsed, images).html

    async def raw(self, viewer: Viewer, mailbox_id: int, folder_id: int, uid: int) -> bytes:
        """Exactly what IMAP's BODY[] gives."""
        await self._mailbox(viewer, mailbox_id)
        folders = await self._folders(mailbox_id)
        if folder_id not in folders:
            raise NotFound("No such message.")
        return await self._store.message_bytes(folder_id, uid)

    async def part(
        self, viewer: Viewer, mailbox_id: int, folder_id: int, uid: int, part_id: str
    ) -> Part:
        await self._mailbox(viewer, mailbox_id)
        if folder_id not in await self._folders(mailbox_id):
            raise NotFound("No such message.")
        parsed = await self._parse(folder_id, uid)
        leaf = parsed.leaves.get(part_id)
        if leaf is None:
            raise NotFound(f"The message has no part {part_id}.")
        return Part(_decoded(leaf), leaf.get_content_type(), _filename(leaf, part_id))

    async def trust_sender(self, viewer: Viewer, mailbox_id: int, address: str) -> None:
        """Always show remote images (through the proxy) of mail from this address."""
        await self._mailbox(viewer, mailbox_id)
        _, addr = parseaddr(address)
        addr = addr.strip().lower()
        if "@" not in addr or len(addr) > 320 or any(c.isspace() for c in addr):
            raise InvalidInput(f"{address!r} is not an email address.", field="address")
        async with self._uow() as uow:
            await uow.mailboxes.trust_sender(mailbox_id, addr, self._clock.now())
            await uow.commit()

    # Actions

    async def act(
        self,
        viewer: Viewer,
        mailbox_id: int,
        refs: Sequence[MessageRef],
        action: str,
        target_folder_id: int | None = None,
    ) -> ActionResult:
        """Flag changes and moves with IMAP's semantics, through MailStore (which publishes the
        folder signals IMAP IDLE and the event stream wait on)."""
        if action not in ACTIONS:
            raise InvalidInput(
                f"Unknown action {action!r}; use one of {', '.join(ACTIONS)}.", field="action"
            )
        if not refs:
            raise InvalidInput("Choose at least one message.", field="messages")
        if len(refs) > MAX_ACTION_MESSAGES:
            raise InvalidInput(f"At most {MAX_ACTION_MESSAGES} messages at once.", field="messages")
        await self._mailbox(viewer, mailbox_id)
        folders = await self._folders(mailbox_id)
        by_folder: dict[int, list[int]] = {}
        for ref in refs:
            if ref.folder_id not in folders:
                raise NotFound("No such folder.")
            by_folder.setdefault(ref.folder_id, []).append(ref.uid)
        if action in _FLAG_ACTIONS:
            mode, flag = _FLAG_ACTIONS[action]
            updated = 0
            for folder_id, uids in by_folder.items():
                stored = await self._store.store_flags(folder_id, uids, mode, [flag])
                updated += len(stored.changed)
            return ActionResult([], updated)
        if action == "delete":
            return await self._delete(folders, by_folder)
        dest = self._destination(folders, action, target_folder_id)
        moved: list[Moved] = []
        updated = 0
        for folder_id, uids in by_folder.items():
            if action == "spam":
                await self._store.store_flags(folder_id, uids, "remove", [NOT_JUNK_KEYWORD])
                await self._store.store_flags(folder_id, uids, "add", [JUNK_KEYWORD])
            elif action == "notspam":
                await self._store.store_flags(folder_id, uids, "remove", [JUNK_KEYWORD])
                await self._store.store_flags(folder_id, uids, "add", [NOT_JUNK_KEYWORD])
                if ROLES.get(folders[folder_id].name) != "junk":
                    continue  # marked, but only Junk's messages go back to the Inbox
            if folder_id == dest.id:
                continue
            result = await self._store.copy(mailbox_id, folder_id, uids, dest.name, move=True)
            moved += [
                Moved(MessageRef(folder_id, s), MessageRef(dest.id, d))
                for s, d in zip(result.source_uids, result.dest_uids, strict=True)
            ]
            updated += len(result.source_uids)
        return ActionResult(moved, updated)

    def _destination(
        self, folders: dict[int, FolderInfo], action: str, target_folder_id: int | None
    ) -> FolderInfo:
        if action == "move":
            if target_folder_id is None:
                raise InvalidInput("Say which folder to move to.", field="folderId")
            target = folders.get(target_folder_id)
            if target is None:
                raise NotFound("No such folder.")
            return target
        role = {"archive": "archive", "trash": "trash", "spam": "junk", "notspam": "inbox"}[action]
        name = _BY_ROLE[role]
        found = next((f for f in folders.values() if f.name == name), None)
        if found is None:
            raise NotFound(f"The mailbox has no {name} folder.")
        return found

    async def _delete(
        self, folders: dict[int, FolderInfo], by_folder: dict[int, list[int]]
    ) -> ActionResult:
        for folder_id in by_folder:
            if ROLES.get(folders[folder_id].name) not in _HIDDEN_ROLES:
                raise InvalidInput(
                    "Messages are deleted for good only from Trash or Junk; move them to Trash "
                    "first.",
                    field="action",
                )
        updated = 0
        for folder_id, uids in by_folder.items():
            await self._store.store_flags(folder_id, uids, "add", [SystemFlag.DELETED])
            updated += len(await self._store.expunge(folder_id, uids))
        return ActionResult([], updated)

    async def empty(self, viewer: Viewer, mailbox_id: int, folder_id: int) -> None:
        """Delete every message of Trash or Junk for good (\\Deleted + EXPUNGE, in bounded
        chunks)."""
        await self._mailbox(viewer, mailbox_id)
        folders = await self._folders(mailbox_id)
        folder = folders.get(folder_id)
        if folder is None:
            raise NotFound("No such folder.")
        if ROLES.get(folder.name) not in _HIDDEN_ROLES:
            raise InvalidInput("Only Trash and Junk can be emptied.", field="folderId")
        snapshot = await self._store.select(mailbox_id, folder.name)
        for start in range(0, len(snapshot.uids), MAX_ACTION_MESSAGES):
            chunk = snapshot.uids[start : start + MAX_ACTION_MESSAGES]
            await self._store.store_flags(folder_id, chunk, "add", [SystemFlag.DELETED])
            await self._store.expunge(folder_id, chunk)

    # Live counts

    @contextlib.asynccontextmanager
    async def stream_slot(self, viewer: Viewer, mailbox_id: int) -> AsyncIterator[None]:
        """One of the viewer's (at most MAX_STREAMS_PER_USER) event streams."""
        await self._mailbox(viewer, mailbox_id)
        if self._streams.get(viewer.user_id, 0) >= MAX_STREAMS_PER_USER:
            raise RateLimited(
                f"At most {MAX_STREAMS_PER_USER} live update streams at once; close a tab.",
                retry_after=POLL_SECONDS,
            )
        self._streams[viewer.user_id] = self._streams.get(viewer.user_id, 0) + 1
        try:
            yield
        finally:
            left = self._streams[viewer.user_id] - 1
            if left:
                self._streams[viewer.user_id] = left
            else:
                del self._streams[viewer.user_id]

    async def watch(self, mailbox_id: int) -> AsyncIterator[list[FolderCount] | None]:
        """The folder counts now, then again after every change (None when PING_SECONDS pass
        without one). Woken by FolderSignals, the signal IMAP IDLE waits on; changes made by
        other processes are found by polling the folders' MODSEQs and UIDNEXTs."""
        signals = self._store.signals
        generation = signals.generation(mailbox_id)
        fingerprint = await self._fingerprint(mailbox_id)
        yield await self._counts(mailbox_id)
        quiet = 0.0
        while True:
            woke = await signals.wait(mailbox_id, POLL_SECONDS, after=generation)
            generation = signals.generation(mailbox_id)
            now = await self._fingerprint(mailbox_id)
            if woke or now != fingerprint:
                fingerprint = now
                quiet = 0.0
                yield await self._counts(mailbox_id)
                continue
            quiet += POLL_SECONDS
            if quiet >= PING_SECONDS:
                quiet = 0.0
                yield None

    async def _counts(self, mailbox_id: int) -> list[FolderCount]:
        return [FolderCount(f.id, f.total, f.unread) for f in await self._folder_views(mailbox_id)]

    async def _fingerprint(self, mailbox_id: int) -> tuple[tuple[int, int, int], ...]:
        async with self._uow(read_only=True) as uow:
            found = await uow.folders.list_for_mailbox(mailbox_id)
        return tuple(sorted((f.id or 0, f.highest_modseq, f.uid_next) for f in found))

    # Helpers

    async def _mailbox(self, viewer: Viewer, mailbox_id: int) -> Mailbox:
        return await self._mailboxes.usable_by(viewer, mailbox_id)

    async def _folders(self, mailbox_id: int) -> dict[int, FolderInfo]:
        return {f.id: f for f in await self._store.list_folders(mailbox_id)}

    async def _row(
        self, mailbox_id: int, folders: dict[int, FolderInfo], folder_id: int, uid: int
    ) -> MailRow:
        if folder_id not in folders:
            raise NotFound("No such message.")
        rows = await self._store.mail_rows(mailbox_id, folder_id, [uid])
        if not rows:
            raise NotFound("No such message.")
        return rows[0]

    async def _parse(self, folder_id: int, uid: int) -> _Parsed:
        raw = await self._store.message_bytes(folder_id, uid)
        return await asyncio.to_thread(_parse, raw)

    async def _trusted(self, mailbox_id: int, rows: Sequence[MailRow]) -> set[str]:
        """Which of the rows' senders the mailbox shows images of (one query)."""
        senders = sorted({row.from_addr.lower() for row in rows if row.from_addr})
        async with self._uow(read_only=True) as uow:
            return await uow.mailboxes.trusted_senders(mailbox_id, senders)

    async def _detail(
        self,
        mailbox: Mailbox,
        folders: dict[int, FolderInfo],
        row: MailRow,
        trusted_senders: set[str],
    ) -> MessageDetail:
        assert mailbox.id is not None
        parsed = await self._parse(row.folder_id, row.uid)
        message = parsed.message
        folder = folders[row.folder_id]
        role = ROLES.get(folder.name)
        sender = _first(_addresses(message, "from"))
        trusted = sender is not None and sender.address.lower() in trusted_senders
        base = f"/api/mail/{mailbox.id}/messages/{row.folder_id}/{row.uid}"
        cleaned = (
            self._clean(mailbox.id, row.folder_id, row.uid, parsed, False)
            if parsed.html_part is not None
            else None
        )
        shown = {parsed.text_part, parsed.html_part}
        attachments = [
            AttachmentInfo(
                part_id,
                _filename(leaf, part_id),
                leaf.get_content_type(),
                len(_decoded(leaf)),
                _is_inline(leaf),
                f"{base}/parts/{part_id}",
            )
            for part_id, leaf in parsed.leaves.items()
            if part_id not in shown
        ]
        text = None
        if parsed.text_part is not None:
            text = _text_of(parsed.leaves[parsed.text_part])[:MAX_TEXT_CHARS]
        flags = list(row.flags)
        return MessageDetail(
            folder_id=row.folder_id,
            folder=folder.name,
            role=role,
            uid=row.uid,
            message_id=next(iter(_message_ids(message, "message-id")), None),
            in_reply_to=next(iter(_message_ids(message, "in-reply-to")), None),
            references=_message_ids(message, "references")[-MAX_REFERENCES:],
            from_=sender,
            sender=_first(_addresses(message, "sender")),
            reply_to=_addresses(message, "reply-to"),
            to=_addresses(message, "to"),
            cc=_addresses(message, "cc"),
            bcc=_addresses(message, "bcc") if role in _OWN_MAIL_ROLES else [],
            subject=row.subject or "",
            date=row.date or row.internal_date,
            received_at=row.internal_date,
            flags=flags,
            seen=SystemFlag.SEEN in flags,
            starred=SystemFlag.FLAGGED in flags,
            snippet=row.snippet,
            size=row.size,
            text=text,
            has_html=cleaned is not None,
            html_url=f"{base}/body?images={int(trusted)}" if cleaned is not None else None,
            raw_url=f"{base}/raw",
            attachments=attachments,
            remote_images=cleaned.remote_images if cleaned is not None else False,
            images_allowed=trusted,
            auth=self._auth(message, sender, role),
        )

    def _clean(
        self, mailbox_id: int, folder_id: int, uid: int, parsed: _Parsed, images: bool
    ) -> CleanedHtml:
        base = f"/api/mail/{mailbox_id}/messages/{folder_id}/{uid}/parts/"
        content_ids = {
            cid: part_id
            for part_id, leaf in parsed.leaves.items()
            if (cid := str(leaf.get("content-id", "")).strip().strip("<>"))
        }

        def inline(content_id: str) -> str | None:
            part_id = content_ids.get(content_id.strip().strip("<>"))
            return f"{base}{part_id}?inline=1" if part_id else None

        def remote(url: str) -> str | None:
            return self.images.proxy_url(url) if images else None

        if parsed.html_part is not None:
            source = _text_of(parsed.leaves[parsed.html_part])
        elif parsed.text_part is not None:
            source = _plain_as_html(_text_of(parsed.leaves[parsed.text_part])[:MAX_TEXT_CHARS])
        else:
            source = ""
        return self._cleaner.clean(source, remote_image=remote, inline_image=inline)

    def _auth(
        self, message: email.message.EmailMessage, sender: Address | None, role: str | None
    ) -> AuthResults:
        """SPF/DKIM/DMARC as our MX recorded them (Authentication-Results with our authserv-id;
        forged ones with our id are removed on delivery), and a warning for failing senders."""
        results = {"spf": "none", "dkim": "none", "dmarc": "none"}
        for value in message.get_all("authentication-results", []) or []:
            text = str(value)
            authserv = text.split(";", 1)[0].strip().split()[0].lower() if text.strip() else ""
            if authserv != self._hostname:
                continue
            for method, result in re.findall(r"\b(spf|dkim|dmarc)=([A-Za-z]+)", text):
                if results[method.lower()] == "none":
                    results[method.lower()] = result.lower()
            break
        warning = None
        if role not in _OWN_MAIL_ROLES:
            if results["dmarc"] == "fail":
                warning = (
                    "This message failed DMARC: its sender's domain did not authorise it, so "
                    "it may not come from who it claims."
                )
            elif results["spf"] == "fail" and results["dkim"] != "pass":
                warning = (
                    "This message failed SPF and has no valid DKIM signature: it may not come "
                    "from who it claims."
                )
            elif sender is not None and _lookalike(sender):
                warning = (
                    f"The sender's name shows an address other than the one it came from "
                    f"({sender.address})."
                )
        return AuthResults(results["spf"], results["dkim"], results["dmarc"], warning)


_ROLE_ALIASES = {**{role: role for role in _ROLE_ORDER}, "spam": "junk", "bin": "trash"}


def _folder_name_input(name: str) -> str:
    name = name.strip()
    if not name or name.endswith(DELIMITER):
        raise InvalidInput("Give the folder a name.", field="name")
    return name


_MESSAGE_ID = re.compile(r"<[^<>\s]{1,500}>")


def _message_ids(message: email.message.Message, name: str) -> list[str]:
    try:
        return _MESSAGE_ID.findall(" ".join(str(v) for v in message.get_all(name, []) or []))
    except Exception:  # noqa: BLE001 - a header the stdlib cannot read gives none
        return []


def _first(addresses: list[Address]) -> Address | None:
    return addresses[0] if addresses else None


def _addresses(message: email.message.Message, name: str) -> list[Address]:
    try:
        values = [str(v) for v in message.get_all(name, []) or []]
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001 - a header the stdlib cannot read is shown as none
        return []
    return [Address(n, a) for n, a in pairs if "@" in a][:100]


def _lookalike(sender: Address) -> bool:
    """The display name holds an email address that is not the sender's."""
    shown = re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", sender.name)
    return any(addr.lower() != sender.address.lower() for addr in shown)


# "Name <address>" as the index keeps the From line; anything else goes through parseaddr.
_NAME_ADDR = re.compile(r'^\s*"?([^"<>]*?)"?\s*<([^<>\s]+@[^<>\s]+)>\s*$')


def _participant(row: MailRow) -> Address:
    simple = _NAME_ADDR.match(row.from_header)
    if simple is not None:
        return Address(simple.group(1).strip(), simple.group(2).lower())
    name, address = parseaddr(row.from_header)
    return Address(name, (address or row.from_addr or "").lower())


def _summary(thread_id: str, rows: list[MailRow]) -> ConversationSummary | None:
    if not rows:
        return None
    newest = sorted(rows, key=lambda r: (r.internal_date, r.folder_id, r.uid), reverse=True)
    latest = newest[0]
    participants: list[Address] = []
    seen: set[str] = set()
    for row in reversed(newest):  # in the order they wrote
        person = _participant(row)
        if person.address and person.address not in seen:
            seen.add(person.address)
            participants.append(person)
    oldest_subject = next((r.subject for r in reversed(newest) if r.subject), "")
    return ConversationSummary(
        thread_id=thread_id,
        subject=oldest_subject or latest.subject or "",
        snippet=latest.snippet,
        participants=participants[:MAX_PARTICIPANTS],
        count=len(rows),
        unread=any(SystemFlag.SEEN not in r.flags for r in rows),
        starred=any(SystemFlag.FLAGGED in r.flags for r in rows),
        has_attachments=any(r.has_attachments for r in rows),
        date=latest.internal_date,
        latest=MessageRef(latest.folder_id, latest.uid),
        messages=[MessageRef(r.folder_id, r.uid) for r in newest],
    )


def _parse(raw: bytes) -> _Parsed:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    parsed = _Parsed(message)
    for part_id, leaf in _leaves(message, ()):
        parsed.leaves[part_id] = leaf
        if len(parsed.leaves) >= MAX_PARTS:
            break
    by_identity = {id(leaf): part_id for part_id, leaf in parsed.leaves.items()}
    for subtype in ("plain", "html"):
        try:
            body = message.get_body(preferencelist=(subtype,))
        except Exception:  # noqa: BLE001 - hostile structure: no body of that kind
            body = None
        if body is not None and id(body) in by_identity:
            if subtype == "plain":
                parsed.text_part = by_identity[id(body)]
            else:
                parsed.html_part = by_identity[id(body)]
    return parsed


def _leaves(
    part: email.message.Message, path: tuple[int, ...]
) -> Iterator[tuple[str, email.message.Message]]:
    """The leaf parts by IMAP part number (RFC 3501 §6.4.5: a non-multipart message's body is
    part 1); an attached message is one leaf. Depth is bounded by the parser's nesting."""
    if part.is_multipart() and part.get_content_type() != "message/rfc822" and len(path) < 30:
        payload = part.get_payload()
        assert isinstance(payload, list)
        for number, child in enumerate(payload, 1):
            yield from _leaves(child, (*path, number))
        return
    yield ".".join(str(n) for n in path) or "1", part


def _decoded(part: email.message.Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        payload = part.get_payload()
        if isinstance(payload, list) and payload:
            inner = payload[0]
            assert isinstance(inner, email.message.Message)
            return inner.as_bytes()
        return b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _text_of(part: email.message.Message) -> str:
    data = _decoded(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("latin-1")


def _filename(part: email.message.Message, part_id: str) -> str:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001 - a broken parameter: a generated name
        name = None
    if name:
        return re.sub(r"[\x00-\x1f\x7f/\\]", "_", str(name))[:255]
    extension = {
        "text/plain": ".txt",
        "text/html": ".html",
        "message/rfc822": ".eml",
        "image/png": ".png",
        "image/jpeg": ".jpg",
        "image/gif": ".gif",
        "application/pdf": ".pdf",
    }.get(part.get_content_type(), ".bin")
    return f"part-{part_id}{extension}"


def _is_inline(part: email.message.Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    return disposition == "inline" or (disposition != "attachment" and "content-id" in part)


_URL = re.compile(r"https?://[^\s<>\"']+")


def _plain_as_html(text: str) -> str:
    """Plain text as HTML with its links made clickable (the sanitiser still runs after)."""
    out = []
    last = 0
    for match in _URL.finditer(text):
        out.append(html.escape(text[last : match.start()]))
        url = match.group(0)
        out.append(f'<a href="{html.escape(url)}">{html.escape(url)}</a>')
        last = match.end()
    out.append(html.escape(text[last:]))
    return '<pre style="white-space: pre-wrap">' + "".join(out) + "</pre>"

"""The webmail's compose side: uploads, drafts in Drafts, sending through `SendingService`, the
Outbox (cancel, reschedule, undo), delivery status per recipient, correspondents.

Every method takes the viewer and a mailbox id and starts with `MailboxService.usable_by`, so a
mailbox the viewer may not use answers NotFound like one that does not exist. Messages are named
as IMAP names them, by folder id and UID; drafts and the copies of sent mail are ordinary IMAP
messages, so desktop clients see the same Drafts, Outbox and Sent.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import re
import secrets
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from mailmark.core import compose
from mailmark.core.access import Viewer
from mailmark.core.addresses import check_header_value, normalize_address
from mailmark.core.campaigns import MAX_SCHEDULE_AHEAD
from mailmark.core.delivery import InboundDelivery
from mailmark.core.emails import untried
from mailmark.core.errors import (
    Conflict,
    InvalidInput,
    MessageTooLarge,
    NotFound,
    naming,
)
from mailmark.core.events import record_events
from mailmark.core.mailboxes import MailboxService
from mailmark.core.mailstore import MailStore, expunge_placements
from mailmark.core.message_meta import header_section, html_to_text
from mailmark.core.model import Folder, Mailbox, QueueEntry, Upload
from mailmark.core.ports import BlobStore, Clock, NewEvent, UnitOfWork, UnitOfWorkFactory
from mailmark.core.queue import OutboundQueue
from mailmark.core.sending import (
    MAX_ATTACHMENTS,
    MAX_FILENAME,
    MAX_SUBJECT,
    SIGNING_ALLOWANCE,
    Draft,
    SendingService,
    Submission,
)
from mailmark.core.states import DeliveryStatus, EventType, SpecialFolder, SystemFlag

UPLOAD_LIFETIME = timedelta(days=1)
# Room kept in a message for its header fields, text and HTML beside the largest upload.
BODY_ALLOWANCE = 16 * 1024
# Expired uploads removed per new upload, so the table never grows without bound.
EXPIRED_PER_UPLOAD = 50
MAX_UNDO_SECONDS = 30
MAX_ADDRESSES = 100  # per field; SendingService bounds the recipients of a send as a whole
MAX_HTML = 5 * 1024 * 1024
# RFC 5322 §3.6.4 lets References grow with each reply; keep the first (the thread's root) and the
# latest ones, as most clients do.
MAX_REFERENCES = 20
# The contacts autocomplete reads the addresses of this many of the mailbox's latest messages.
CONTACT_SCAN = 2000
MAX_CONTACTS = 50
MAX_QUERY = 100
MAX_PARTS = 500
MAX_PART_ID = 40
DEFAULT_CONTENT_TYPE = "application/octet-stream"
DRAFT_FLAGS = (SystemFlag.DRAFT, SystemFlag.SEEN)
# RFC 5550 §5.9: the keyword clients set on a message that was forwarded.
FORWARDED = "$Forwarded"
_MSGID = re.compile(r"<[^<>\s]{1,500}>")
_PART_ID = re.compile(r"^[1-9][0-9]{0,3}(\.[1-9][0-9]{0,3}){0,9}$")
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}$")
# What a recipient's queue state is called in the webmail.
_SHOWN_STATUS = {
    DeliveryStatus.HELD: "held",
    DeliveryStatus.DEFERRED: "deferred",
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.BOUNCED: "bounced",
    DeliveryStatus.COMPLAINED: "failed",
    DeliveryStatus.CANCELED: "failed",
}


@dataclass(frozen=True)
class MessageRef:
    """A message as IMAP names it: its folder and UID."""

    folder_id: int
    uid: int


@dataclass(frozen=True)
class PartRef:
    """A part of a stored message, by its IMAP section number (RFC 3501 §6.4.5, e.g. "2.1")."""

    folder_id: int
    uid: int
    part_id: str


@dataclass(frozen=True)
class UploadRef:
    upload_id: str


AttachmentRef = UploadRef | PartRef


@dataclass(frozen=True)
class Composition:
    """What the compose form holds. `reply_to` is the message answered, `forward_of` the one
    forwarded (its attachments come along), `draft` the saved draft this one replaces."""

    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject: str = ""
    html: str = ""
    text: str | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    reply_to: MessageRef | None = None
    forward_of: MessageRef | None = None
    draft: MessageRef | None = None


@dataclass(frozen=True)
class SendResult:
    outbound_id: int
    status: str  # "scheduled" (waits in Outbox) | "queued"
    send_at: datetime
    outbox: MessageRef | None


@dataclass(frozen=True)
class RecipientStatus:
    address: str
    status: str  # scheduled | queued | delivered | deferred | bounced | failed | suppressed
    detail: str | None
    updated_at: datetime


@dataclass(frozen=True)
class DeliveryReport:
    recipients: list[RecipientStatus]
    opens: list[datetime]


@dataclass(frozen=True)
class Contact:
    name: str
    address: str


class WebmailCompose:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        blobs: BlobStore,
        clock: Clock,
        *,
        mailboxes: MailboxService,
        mailstore: MailStore,
        sending: SendingService,
        queue: OutboundQueue,
        delivery: InboundDelivery,
        max_message_size: int,
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._clock = clock
        self._mailboxes = mailboxes
        self._mailstore = mailstore
        self._sending = sending
        self._queue = queue
        self._delivery = delivery
        self._max_message_size = max_message_size

    @property
    def upload_limit(self) -> int:
        """The largest file that still fits in a message once base64-encoded (RFC 2045 §6.8:
        76-character lines of 57 octets each, plus CRLF), beside the header fields and a short
        body: the send's own size limit."""
        room = self._max_message_size - SIGNING_ALLOWANCE - BODY_ALLOWANCE
        return max(0, room * 57 // 78)

    async def mailbox(self, viewer: Viewer, mailbox_id: int) -> Mailbox:
        """The mailbox when the viewer may use it; NotFound otherwise."""
        return await self._mailboxes.usable_by(viewer, mailbox_id)

    # Uploads

    async def upload(
        self, viewer: Viewer, mailbox_id: int, filename: str, content_type: str, content: bytes
    ) -> Upload:
        """Keep an uploaded file for a day, for this user and mailbox only."""
        mailbox = await self.mailbox(viewer, mailbox_id)
        assert mailbox.id is not None
        if len(content) > self.upload_limit:
            raise MessageTooLarge(
                f"The file is {len(content)} bytes; attachments can be at most "
                f"{self.upload_limit} bytes.",
                field="file",
            )
        with naming("file"):
            filename = _filename(filename)
        content_type = content_type.split(";", 1)[0].strip().lower()
        if not _CONTENT_TYPE.match(content_type):
            content_type = DEFAULT_CONTENT_TYPE
        now = self._clock.now()
        blob_key, created = await self._blobs.put(content)
        upload = Upload(
            id=secrets.token_urlsafe(18),
            user_id=viewer.user_id,
            mailbox_id=mailbox.id,
            filename=filename,
            content_type=content_type,
            size=len(content),
            blob_key=blob_key,
            created_at=now,
            expires_at=now + UPLOAD_LIFETIME,
        )
        try:
            async with self._uow() as uow:
                await uow.compose.add_upload(upload)
                expired = await uow.compose.take_expired_uploads(now, EXPIRED_PER_UPLOAD)
                await uow.commit()
        except BaseException:
            if created:
                await self._mailstore.remove_unused_blobs([blob_key])
            raise
        await self._mailstore.remove_unused_blobs(expired)
        return upload

    # Drafts

    async def save_draft(self, viewer: Viewer, mailbox_id: int, draft: Composition) -> MessageRef:
        """File the draft in Drafts (\\Draft \\Seen), replacing `draft.draft` in the same
        transaction: IMAP clients see the new one appear as the old one is expunged, never both.
        Conflict when the draft it replaces is gone (a later save or another client got there
        first). The new draft stays in the conversation of the one it replaces, so a link to it
        (a list row loaded before this save) still opens it."""
        mailbox = await self.mailbox(viewer, mailbox_id)
        assert mailbox.id is not None
        raw = await self._draft_bytes(viewer, mailbox, draft)
        drafts = await self._special(mailbox, SpecialFolder.DRAFTS)
        assert drafts.id is not None
        if draft.draft is not None and draft.draft.folder_id != drafts.id:
            raise InvalidInput("The draft to replace must be in Drafts.", field="draft")
        blob_key, created = await self._blobs.put(raw)
        orphaned: list[str] = []
        try:
            async with self._uow() as uow:
                await uow.mailstore.lock_folder(drafts.id)
                replaced = (
                    await uow.mailstore.placements(drafts.id, [draft.draft.uid])
                    if draft.draft is not None
                    else []
                )
                if draft.draft is not None and not replaced:
                    raise Conflict(
                        "This draft was replaced or deleted meanwhile (in another window or "
                        "mail client); reopen it from Drafts.",
                        field="draft",
                    )
                receipt = await self._delivery.place_in(
                    uow,
                    raw,
                    blob_key=blob_key,
                    created_blob=created,
                    mailbox=mailbox,
                    folder=SpecialFolder.DRAFTS,
                    mail_from="",
                    flags=DRAFT_FLAGS,
                )
                if draft.draft is not None:
                    new_uid = receipt.placements[0].uid
                    await uow.mailstore.set_thread(drafts.id, new_uid, replaced[0].thread_id)
                    orphaned = await expunge_placements(uow, drafts.id, [draft.draft.uid])
                await uow.commit()
        except BaseException:
            if created:
                await self._mailstore.remove_unused_blobs([blob_key])
            raise
        self._delivery.notify([mailbox.id])
        await self._mailstore.remove_unused_blobs(orphaned)
        return MessageRef(drafts.id, receipt.placements[0].uid)

    async def _draft_bytes(self, viewer: Viewer, mailbox: Mailbox, draft: Composition) -> bytes:
        to, cc, bcc = _recipients(draft, required=False)
        _check_content(draft)
        attachments = await self._attachments(viewer, mailbox, draft)
        headers = await self._thread_headers(mailbox, draft)
        text = draft.text if draft.text is not None else html_to_text(draft.html)
        raw = compose.build_message(
            sender=compose.mailbox(mailbox.display_name, mailbox.address),
            to=to,
            cc=cc,
            bcc=bcc,
            reply_to=None,
            subject=draft.subject,
            date=self._clock.now(),
            message_id=f"{secrets.token_hex(16)}@{mailbox.domain_name}",
            extra_headers=headers,
            text=text,
            html=draft.html,
            signature="",
            attachments=attachments,
        )
        if len(raw) > self._max_message_size:
            raise MessageTooLarge(
                f"The draft would be {len(raw)} bytes, over the limit of "
                f"{self._max_message_size} bytes.",
                field="attachments",
            )
        return raw

    # Sending

    async def send(
        self,
        viewer: Viewer,
        mailbox_id: int,
        message: Composition,
        *,
        scheduled_at: datetime | None = None,
        undo_seconds: int = 0,
    ) -> SendResult:
        """Send through the one sending path (quotas, suppressions, DKIM at delivery). With
        `scheduled_at` or an undo window the message waits in Outbox until its time; the draft
        it came from is removed in the send's own transaction."""
        mailbox = await self.mailbox(viewer, mailbox_id)
        assert mailbox.id is not None
        now = self._clock.now()
        send_at = _send_time(scheduled_at, undo_seconds, now)
        to, cc, bcc = _recipients(message, required=True)
        _check_content(message)
        drafts_id: int | None = None
        if message.draft is not None:
            drafts = await self._special(mailbox, SpecialFolder.DRAFTS)
            if message.draft.folder_id != drafts.id:
                raise InvalidInput("The draft to send must be in Drafts.", field="draft")
            drafts_id = drafts.id
        attachments = await self._attachments(viewer, mailbox, message)
        headers = await self._thread_headers(mailbox, message)
        text = message.text if message.text is not None else html_to_text(message.html)
        orphaned: list[str] = []

        async def remove_draft(uow: UnitOfWork, _: list[Submission]) -> None:
            if drafts_id is not None and message.draft is not None:
                orphaned.extend(await expunge_placements(uow, drafts_id, [message.draft.uid]))

        [submission] = await self._sending.submit_many(
            [
                Draft(
                    mailbox=mailbox,
                    to=to,
                    cc=cc,
                    bcc=bcc,
                    subject=message.subject,
                    text=text,
                    html=message.html,
                    headers=headers,
                    scheduled_at=send_at,
                    attachments=attachments,
                    with_signature=False,
                )
            ],
            source="dashboard",
            before_commit=remove_draft,
        )
        await self._mailstore.remove_unused_blobs(orphaned)
        await self._mark_source(mailbox, message)
        copy = submission.copy
        outbox = MessageRef(copy.folder_id, copy.uid) if send_at is not None and copy else None
        return SendResult(
            submission.outbound_id,
            "scheduled" if send_at is not None else "queued",
            send_at or now,
            outbox,
        )

    async def _mark_source(self, mailbox: Mailbox, message: Composition) -> None:
        """\\Answered on the message replied to, $Forwarded on the one forwarded, as desktop
        clients do (RFC 3501 §2.3.2, RFC 5550 §5.9)."""
        for ref, flag in ((message.reply_to, SystemFlag.ANSWERED), (message.forward_of, FORWARDED)):
            if ref is None:
                continue
            try:
                await self._folder_of(mailbox, ref.folder_id)
                await self._mailstore.store_flags(ref.folder_id, [ref.uid], "add", [flag])
            except NotFound:
                continue  # moved or deleted meanwhile: the message was sent all the same

    # The Outbox

    async def cancel(self, viewer: Viewer, mailbox_id: int, uid: int) -> MessageRef:
        """Withdraw a message waiting in Outbox: its queue rows are cancelled and it goes back to
        Drafts (with its Bcc recipients named again, as a draft does). Conflict once the queue
        has taken it (it is then in Sent)."""
        mailbox = await self.mailbox(viewer, mailbox_id)
        assert mailbox.id is not None
        outbox = await self._special(mailbox, SpecialFolder.OUTBOX)
        drafts = await self._special(mailbox, SpecialFolder.DRAFTS)
        assert outbox.id is not None and drafts.id is not None
        now = self._clock.now()
        created_blob: str | None = None
        try:
            async with self._uow() as uow:
                outbound_id, entries = await self._waiting(uow, mailbox, outbox, uid)
                [row] = await uow.mailstore.fetch_rows(outbox.id, [uid], False, True)
                raw = await self._blobs.get(row.blob_key)
                draft_raw = _with_bcc(raw, [entry.recipient for entry in entries])
                blob_key, created = await self._blobs.put(draft_raw)
                created_blob = blob_key if created else None
                await uow.deliveries.cancel([entry.id for entry in entries], now)
                await record_events(
                    uow,
                    [
                        NewEvent(
                            mailbox.account_id,
                            EventType.CANCELED,
                            {
                                "to": entry.recipient,
                                "messageId": entry.message_id_header,
                                "status": DeliveryStatus.CANCELED,
                            },
                            now,
                            outbound_id=outbound_id,
                        )
                        for entry in entries
                    ],
                )
                receipt = await self._delivery.place_in(
                    uow,
                    draft_raw,
                    blob_key=blob_key,
                    created_blob=created,
                    mailbox=mailbox,
                    folder=SpecialFolder.DRAFTS,
                    mail_from="",
                    flags=DRAFT_FLAGS,
                )
                orphaned = await expunge_placements(uow, outbox.id, [uid])
                await uow.commit()
        except BaseException:
            if created_blob is not None:
                await self._mailstore.remove_unused_blobs([created_blob])
            raise
        self._delivery.notify([mailbox.id])
        await self._mailstore.remove_unused_blobs(orphaned)
        return MessageRef(drafts.id, receipt.placements[0].uid)

    async def reschedule(
        self, viewer: Viewer, mailbox_id: int, uid: int, scheduled_at: datetime
    ) -> SendResult:
        """Move the time of a message waiting in Outbox. Conflict once the queue has taken it."""
        mailbox = await self.mailbox(viewer, mailbox_id)
        outbox = await self._special(mailbox, SpecialFolder.OUTBOX)
        assert outbox.id is not None
        now = self._clock.now()
        when = _send_time(scheduled_at, 0, now)
        assert when is not None
        async with self._uow() as uow:
            outbound_id, entries = await self._waiting(uow, mailbox, outbox, uid)
            await uow.deliveries.reschedule(
                [entry.id for entry in entries], when, self._queue.expires_at(when), now
            )
            await uow.commit()
        # The workers may be asleep until the old time.
        self._queue.kick()
        return SendResult(outbound_id, "scheduled", when, MessageRef(outbox.id, uid))

    async def _waiting(
        self, uow: UnitOfWork, mailbox: Mailbox, outbox: Folder, uid: int
    ) -> tuple[int, list[QueueEntry]]:
        """The outbound message behind Outbox's `uid` and its queue rows, locked, all still
        waiting for their first attempt; Conflict when the queue has taken any."""
        assert outbox.id is not None and mailbox.id is not None
        found = await uow.mailstore.placements(outbox.id, [uid])
        if not found and uid < outbox.uid_next:
            # UIDs only grow and are never reused (RFC 3501 §2.3.1.1): this one was in Outbox
            # and has left it, taken by the queue (or cancelled or deleted meanwhile).
            raise Conflict(
                "This message is no longer waiting in Outbox: it is being sent or was sent "
                "(or it was cancelled or deleted meanwhile)."
            )
        if not found:
            raise NotFound(f"No message with UID {uid} in Outbox.")
        message_row = found[0].message_id
        header = await uow.compose.message_id_header(message_row)
        outbound = await uow.compose.outbound_of_copy(
            mailbox.id, message_row, header.strip("<>") if header else None
        )
        if outbound is None or outbound.id is None:
            raise NotFound("This message in Outbox is not one waiting to be sent.")
        entries = await uow.deliveries.for_outbound(outbound.id, lock=True)
        if not entries or not all(untried(entry) for entry in entries):
            raise Conflict(
                "This message is already being sent or was sent; it can no longer be cancelled "
                "or rescheduled."
            )
        return outbound.id, entries

    # Status and contacts

    async def delivery(
        self, viewer: Viewer, mailbox_id: int, folder_id: int, uid: int
    ) -> DeliveryReport:
        """Each recipient's state in the queue, and the opens recorded, for a message of Sent or
        Outbox that was sent from here."""
        mailbox = await self.mailbox(viewer, mailbox_id)
        assert mailbox.id is not None
        folder = await self._folder_of(mailbox, folder_id)
        if folder.name not in (SpecialFolder.SENT, SpecialFolder.OUTBOX):
            raise NotFound("Delivery status is kept for messages in Sent and Outbox.")
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            found = await uow.mailstore.placements(folder_id, [uid])
            if not found:
                raise NotFound(f"No message with UID {uid} in {folder.name}.")
            header = await uow.compose.message_id_header(found[0].message_id)
            outbound = await uow.compose.outbound_of_copy(
                mailbox.id, found[0].message_id, header.strip("<>") if header else None
            )
            if outbound is None or outbound.id is None:
                raise NotFound("This message was not sent through this server.")
            entries = await uow.deliveries.for_outbound(outbound.id)
            events = await uow.sent_emails.events(outbound.id, 1000)
        return DeliveryReport(
            [
                RecipientStatus(
                    entry.recipient, _status(entry, now), _detail(entry), entry.updated_at
                )
                for entry in entries
            ],
            [event.created_at for event in events if event.type == EventType.OPENED],
        )

    async def contacts(
        self, viewer: Viewer, mailbox_id: int, query: str, limit: int = 10
    ) -> list[Contact]:
        """Addresses the mailbox corresponded with (From, To, Cc of its latest messages) whose
        address, or a word of it, starts with `query`; the full-address matches first, then the
        most frequent."""
        mailbox = await self.mailbox(viewer, mailbox_id)
        assert mailbox.id is not None
        if not 1 <= limit <= MAX_CONTACTS:
            raise InvalidInput(f"limit is between 1 and {MAX_CONTACTS}.", field="limit")
        if len(query) > MAX_QUERY:
            raise InvalidInput(f"q is at most {MAX_QUERY} characters.", field="q")
        wanted = query.strip().lower()
        async with self._uow(read_only=True) as uow:
            found = await uow.compose.correspondence(mailbox.id, CONTACT_SCAN)
        counts: Counter[str] = Counter()
        for item in found:
            for address in (item.from_addr, *item.to_addrs, *item.cc_addrs):
                if address and address != mailbox.address.lower():
                    counts[address] += 1
        matches = [address for address in counts if not wanted or _matches(address, wanted)]
        matches.sort(key=lambda a: (not a.startswith(wanted), -counts[a], a))
        return [Contact("", address) for address in matches[:limit]]

    # Helpers

    async def _special(self, mailbox: Mailbox, name: str) -> Folder:
        assert mailbox.id is not None
        async with self._uow(read_only=True) as uow:
            folder = await uow.folders.get_by_name(mailbox.id, name)
        if folder is None or folder.id is None:
            raise NotFound(f"The mailbox has no {name} folder.")
        return folder

    async def _folder_of(self, mailbox: Mailbox, folder_id: int) -> Folder:
        """The folder when it belongs to the mailbox; NotFound otherwise."""
        async with self._uow(read_only=True) as uow:
            folder = await uow.mailstore.folder(folder_id)
        if folder is None or folder.mailbox_id != mailbox.id:
            raise NotFound("No such folder in this mailbox.")
        return folder

    async def _message(self, mailbox: Mailbox, ref: MessageRef | PartRef) -> bytes:
        await self._folder_of(mailbox, ref.folder_id)
        return await self._mailstore.message_bytes(ref.folder_id, ref.uid)

    async def _thread_headers(self, mailbox: Mailbox, message: Composition) -> dict[str, str]:
        """In-Reply-To and References of a reply (RFC 5322 §3.6.4): the answered message's
        Message-ID, after its References (or its In-Reply-To when it has none). A draft being
        sent without `reply_to` keeps the ones it was saved with."""
        source = message.reply_to or message.draft
        if source is None:
            return {}
        try:
            with naming("replyTo" if message.reply_to else "draft"):
                raw = await self._message(mailbox, source)
        except NotFound:
            if message.reply_to is not None:
                raise
            return {}  # the draft is gone: saving answers Conflict, sending goes ahead
        fields = BytesHeaderParser(policy=email.policy.compat32).parsebytes(header_section(raw))
        if message.reply_to is None:
            kept = {}
            for name in ("In-Reply-To", "References"):
                ids = _MSGID.findall(str(fields.get(name, "")))
                if ids:
                    kept[name] = " ".join(_trimmed(ids))
            return kept
        parent = _MSGID.findall(str(fields.get("Message-ID", "")))
        if not parent:
            return {}
        chain = (
            _MSGID.findall(str(fields.get("References", "")))
            or _MSGID.findall(str(fields.get("In-Reply-To", "")))[:1]
        )
        return {
            "In-Reply-To": parent[0],
            "References": " ".join(_trimmed([*chain, parent[0]])),
        }

    async def _attachments(
        self, viewer: Viewer, mailbox: Mailbox, message: Composition
    ) -> tuple[compose.Attachment, ...]:
        """The files of the message: uploads, parts of stored messages, and for a forward every
        attachment of the forwarded message."""
        assert mailbox.id is not None
        refs: list[tuple[str, AttachmentRef]] = [
            (f"attachments[{index}]", ref) for index, ref in enumerate(message.attachments)
        ]
        if len(refs) > MAX_ATTACHMENTS:
            raise InvalidInput(f"At most {MAX_ATTACHMENTS} attachments.", field="attachments")
        files: list[compose.Attachment] = []
        named_parts = {(r.folder_id, r.uid, r.part_id) for _, r in refs if isinstance(r, PartRef)}
        parsed: dict[tuple[int, int], email.message.Message] = {}
        for field, ref in refs:
            with naming(field):
                if isinstance(ref, UploadRef):
                    files.append(await self._uploaded(viewer, mailbox, ref))
                    continue
                key = (ref.folder_id, ref.uid)
                if key not in parsed:
                    parsed[key] = _parse(await self._message(mailbox, ref))
                part = _section(parsed[key], ref.part_id)
                if part is None:
                    raise NotFound(f"The message has no part {ref.part_id}.")
                files.append(_as_attachment(part))
        if message.forward_of is not None:
            forwarded = message.forward_of
            with naming("forwardOf"):
                original = _parse(await self._message(mailbox, forwarded))
            for part_id, part in _sections(original):
                named = (forwarded.folder_id, forwarded.uid, part_id) in named_parts
                if not named and _is_attachment(part):
                    files.append(_as_attachment(part))
        self._sending.check_attachments(files)
        return tuple(files)

    async def _uploaded(
        self, viewer: Viewer, mailbox: Mailbox, ref: UploadRef
    ) -> compose.Attachment:
        assert mailbox.id is not None
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            upload = await uow.compose.upload(ref.upload_id[:64], viewer.user_id, mailbox.id)
        if upload is None or upload.expires_at <= now:
            raise InvalidInput(
                "This upload is gone (uploads are kept for a day); attach the file again."
            )
        content = await self._blobs.get(upload.blob_key)
        return compose.Attachment(upload.filename, content, upload.content_type)


def _recipients(
    message: Composition, *, required: bool
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    out = []
    for name, addresses in (("to", message.to), ("cc", message.cc), ("bcc", message.bcc)):
        if len(addresses) > MAX_ADDRESSES:
            raise InvalidInput(f"At most {MAX_ADDRESSES} addresses in {name}.", field=name)
        checked = []
        for index, address in enumerate(addresses):
            with naming(f"{name}[{index}]"):
                checked.append(normalize_address(address, f"The {name.title()} address"))
        out.append(tuple(checked))
    to, cc, bcc = out
    if required and not (to or cc or bcc):
        raise InvalidInput("Give at least one recipient.", field="to")
    return to, cc, bcc


def _check_content(message: Composition) -> None:
    with naming("subject"):
        check_header_value("The subject", message.subject, MAX_SUBJECT)
    if len(message.html) > MAX_HTML or (message.text is not None and len(message.text) > MAX_HTML):
        raise MessageTooLarge(f"The body is over {MAX_HTML} characters.", field="html")


def _send_time(scheduled_at: datetime | None, undo_seconds: int, now: datetime) -> datetime | None:
    if not 0 <= undo_seconds <= MAX_UNDO_SECONDS:
        raise InvalidInput(f"undoSeconds is between 0 and {MAX_UNDO_SECONDS}.", field="undoSeconds")
    if scheduled_at is not None:
        if scheduled_at.tzinfo is None:
            raise InvalidInput(
                "scheduledAt needs a time zone, like 2026-12-24T09:00:00+01:00.",
                field="scheduledAt",
            )
        if scheduled_at <= now:
            raise InvalidInput("scheduledAt must be in the future.", field="scheduledAt")
        if scheduled_at > now + MAX_SCHEDULE_AHEAD:
            raise InvalidInput("scheduledAt is at most a year ahead.", field="scheduledAt")
        return scheduled_at
    if undo_seconds:
        return now + timedelta(seconds=undo_seconds)
    return None


def _filename(name: str) -> str:
    # Browsers may send a path ("C:\\fakepath\\x.pdf"); only its last part is the name.
    name = name.replace("\\", "/").rpartition("/")[2].strip()
    if not name or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidInput("The file needs a printable, non-empty name.")
    if len(name) > MAX_FILENAME:
        raise InvalidInput(f"The file name is longer than {MAX_FILENAME} characters.")
    return name


def _trimmed(ids: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(ids))
    if len(unique) <= MAX_REFERENCES:
        return unique
    return [unique[0], *unique[-(MAX_REFERENCES - 1) :]]


def _with_bcc(raw: bytes, recipients: Sequence[str]) -> bytes:
    """The message with a Bcc field naming the recipients its To and Cc do not (the sent bytes
    never name them; a draft does, RFC 5322 §3.6.3)."""
    fields = BytesHeaderParser(policy=email.policy.compat32).parsebytes(header_section(raw))
    shown = {
        address.lower()
        for _, address in getaddresses([*fields.get_all("To", []), *fields.get_all("Cc", [])])
    }
    hidden = [r for r in recipients if r.lower() not in shown]
    if not hidden:
        return raw
    return compose.address_list("Bcc", hidden).encode("ascii") + raw


def _parse(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def _sections(message: email.message.Message) -> Iterator[tuple[str, email.message.Message]]:
    """The leaf parts with their IMAP section numbers (RFC 3501 §6.4.5): a single-part message's
    body is "1"; the parts of a multipart are numbered from 1, nested ones after a dot. A
    message/rfc822 part is a leaf here (it is forwarded whole). Bounded by MAX_PARTS."""
    count = 0
    stack: list[tuple[str, email.message.Message]] = [("", message)]
    while stack:
        prefix, part = stack.pop()
        if part.get_content_maintype() == "multipart" and isinstance(part.get_payload(), list):
            children = list(part.get_payload())
            for index in range(len(children), 0, -1):
                child = children[index - 1]
                if isinstance(child, email.message.Message):
                    stack.append((f"{prefix}.{index}" if prefix else str(index), child))
            continue
        count += 1
        if count > MAX_PARTS:
            return
        yield prefix or "1", part


def _section(message: email.message.Message, part_id: str) -> email.message.Message | None:
    if len(part_id) > MAX_PART_ID or not _PART_ID.match(part_id):
        raise InvalidInput("A part id is an IMAP section number, such as 2 or 1.2.")
    for section, part in _sections(message):
        if section == part_id:
            return part
    return None


def _is_attachment(part: email.message.Message) -> bool:
    return part.get_content_disposition() == "attachment" or bool(part.get_filename())


def _as_attachment(part: email.message.Message) -> compose.Attachment:
    content_type = part.get_content_type()
    if content_type == "message/rfc822":
        inner = part.get_payload()
        payload = (
            inner[0].as_bytes()
            if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message)
            else b""
        )
        default_name = "message.eml"
    else:
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        default_name = "attachment"
    name = part.get_filename() or default_name
    name = "".join(ch for ch in str(name) if ord(ch) >= 32 and ord(ch) != 127)[:MAX_FILENAME]
    if not _CONTENT_TYPE.match(content_type):
        content_type = DEFAULT_CONTENT_TYPE
    return compose.Attachment(name.strip() or default_name, payload, content_type)


def _status(entry: QueueEntry, now: datetime) -> str:
    if entry.status is DeliveryStatus.QUEUED:
        return "scheduled" if untried(entry) and entry.next_attempt_at > now else "queued"
    return _SHOWN_STATUS.get(entry.status, str(entry.status))


def _detail(entry: QueueEntry) -> str | None:
    if entry.status is DeliveryStatus.CANCELED:
        return "Cancelled before it was sent."
    if entry.status is DeliveryStatus.COMPLAINED:
        return "The recipient marked it as spam."
    if entry.last_reply:
        code = f"{entry.last_code} {entry.last_status or ''}".strip() if entry.last_code else ""
        return f"{code} {entry.last_reply}".strip()
    return None


def _matches(address: str, wanted: str) -> bool:
    if address.startswith(wanted):
        return True
    return any(word.startswith(wanted) for word in re.split(r"[@._+-]", address) if word)

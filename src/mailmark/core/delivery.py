"""Inbound delivery: put the blob on stable storage, then record it in one transaction.

Concurrent deliveries are committed together (`GroupCommitter`): the next batch writes all of
their blobs in parallel and records all of them in a single SQL transaction. Nobody is answered
before the transaction holding their message has committed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mailmark.core import imap_structure
from mailmark.core.cpu_pool import CpuPool
from mailmark.core.errors import PolicyRejected
from mailmark.core.events import record_events
from mailmark.core.folder_signals import FolderSignals
from mailmark.core.group_commit import GroupCommitter, StoredJob
from mailmark.core.message_meta import read_index, read_metadata
from mailmark.core.model import (
    Folder,
    Mailbox,
    MessageIndex,
    MessageMetadata,
    NewMessage,
    NewPlacement,
)
from mailmark.core.ports import BlobStore, Clock, NewEvent, UnitOfWork, UnitOfWorkFactory
from mailmark.core.states import EventType, SpecialFolder
from mailmark.core.text_index import TextIndexer

# Subject-only threading looks this far back; older conversations start a new thread.
SUBJECT_THREAD_WINDOW = timedelta(days=30)
MAX_BATCH = 64


def inbound_folder(
    dmarc_result: str, dmarc_policy: str | None, from_domain: str | None
) -> SpecialFolder:
    """Where an inbound message goes, honouring the From domain's DMARC policy (RFC 7489 §6.3, §6.7).

    A failing message is refused under p=reject and filed in Junk under p=quarantine."""
    if dmarc_result == "fail" and dmarc_policy == "reject":
        raise PolicyRejected(
            f"Unauthenticated email from {from_domain} is not accepted due to the domain's DMARC "
            "policy"
        )
    if dmarc_result == "fail" and dmarc_policy == "quarantine":
        return SpecialFolder.JUNK
    return SpecialFolder.INBOX


@dataclass(frozen=True)
class StoredPlacement:
    mailbox_id: int
    folder_id: int
    uid: int
    thread_id: str


@dataclass(frozen=True)
class DeliveryReceipt:
    message_id: int
    blob_key: str
    placements: tuple[StoredPlacement, ...]


@dataclass(frozen=True)
class DeliveryTarget:
    """One copy of a message: the mailbox, the folder it is filed in, and its first flags."""

    mailbox: Mailbox
    folder: str = SpecialFolder.INBOX
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Request:
    raw: bytes
    trace_prefix: bytes
    mail_from: str
    targets: Sequence[DeliveryTarget]
    meta: MessageMetadata
    blob_key: str = ""  # set once the blob is stored
    created_blob: bool = False
    # An email.received event for each placement; a copy of one's own sent mail has none.
    announce: bool = True
    index: MessageIndex | None = None
    internal_date: datetime | None = None
    # The body text goes into the full-text index after the commit (`TextIndexer`).
    body_text_later: bool = False


def read_message(raw: bytes) -> tuple[MessageMetadata, MessageIndex]:
    """Everything stored beside the blob: metadata, IMAP structures and full-text source."""
    root = imap_structure.parse(raw)
    return read_metadata(raw, root), read_index(raw, root)


@dataclass(frozen=True)
class SentCopy:
    """A message already stored under `blob_key`, to place in `folder` of `mailbox`."""

    raw: bytes
    blob_key: str
    created_blob: bool
    mailbox: Mailbox
    folder: str
    mail_from: str
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None


class InboundDelivery:
    """`deliver_inbound`: one blob, one message row, one INBOX placement per recipient mailbox."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        blobs: BlobStore,
        clock: Clock,
        max_batch: int = MAX_BATCH,
        signals: FolderSignals | None = None,
        cpu: CpuPool | None = None,
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._clock = clock
        # Parsing a large message takes a while: done in a worker process, other sessions keep
        # the event loop.
        self.cpu = cpu or CpuPool(workers=0)
        # Told after each commit, so IMAP IDLE on the mailbox wakes (one node; others poll).
        self.signals = signals or FolderSignals()
        # Delivered mail's body text is indexed after the 250; searches catch up through it.
        self.texts = TextIndexer(uow, blobs, self.cpu)
        self._committer: GroupCommitter[_Request, DeliveryReceipt] = GroupCommitter(
            blobs,
            blobs_of=lambda request: (request.raw,),
            record=self._record,
            max_blobs=max_batch,
            name="inbound delivery",
        )

    async def deliver(
        self,
        raw: bytes,
        *,
        recipients: Sequence[Mailbox],
        mail_from: str,
        trace_prefix: bytes = b"",
        folder: str = SpecialFolder.INBOX,
    ) -> DeliveryReceipt:
        """Store `raw` in `folder` of every recipient; returns once it is durable and committed."""
        targets = [DeliveryTarget(mailbox, folder) for mailbox in recipients]
        return await self.deliver_to(raw, targets, mail_from=mail_from, trace_prefix=trace_prefix)

    async def deliver_to(
        self,
        raw: bytes,
        targets: Sequence[DeliveryTarget],
        *,
        mail_from: str,
        trace_prefix: bytes = b"",
    ) -> DeliveryReceipt:
        """Store `raw` once and place it as each target says (its own folder and flags, e.g. as a
        mailbox's filters decided); returns once it is durable and committed. A mailbox gets one
        copy per folder, however many targets name that folder."""
        if not targets:
            raise ValueError("deliver needs at least one recipient")
        meta, index = await self.cpu.run(len(raw), read_message, raw)
        unique = list({(t.mailbox.id, t.folder): t for t in targets}.values())
        request = _Request(
            raw, trace_prefix, mail_from, unique, meta, index=index, body_text_later=True
        )
        return await self._committer.commit(request)

    async def place_in(
        self,
        uow: UnitOfWork,
        raw: bytes,
        *,
        blob_key: str,
        created_blob: bool,
        mailbox: Mailbox,
        folder: str,
        mail_from: str,
        flags: Sequence[str] = (),
        trace_prefix: bytes = b"",
        internal_date: datetime | None = None,
    ) -> DeliveryReceipt:
        """Record `raw`, already stored under `blob_key`, in `folder` of `mailbox` within the
        caller's transaction (e.g. the Sent copy of a message being submitted, an IMAP APPEND).
        No event is written: the caller writes its own, and calls `notify` after its commit."""
        copy = SentCopy(
            raw, blob_key, created_blob, mailbox, folder, mail_from, tuple(flags), internal_date
        )
        [receipt] = await self.place_many_in(uow, [copy], trace_prefix=trace_prefix)
        return receipt

    async def place_many_in(
        self,
        uow: UnitOfWork,
        copies: Sequence[SentCopy],
        *,
        trace_prefix: bytes = b"",
        index_later: bool = False,
    ) -> list[DeliveryReceipt]:
        """`place_in` for several messages at once, with a handful of statements in all.

        `index_later`: store only the metadata lists show, not the IMAP index (ENVELOPE,
        BODYSTRUCTURE, searchable text), which is half the parsing. The first IMAP FETCH or
        text SEARCH that needs it computes and stores it (`MailStore._fill_index`), as for a
        message stored before the index existed."""
        requests = []
        # A campaign's batch is hundreds of small messages: parsed together, in the CPU pool.
        parsed: Sequence[tuple[MessageMetadata, MessageIndex | None]]
        if index_later:
            metas = await self.cpu.run_each(read_metadata, [copy.raw for copy in copies])
            parsed = [(meta, None) for meta in metas]
        else:
            parsed = await self.cpu.run_each(read_message, [copy.raw for copy in copies])
        for copy, (meta, index) in zip(copies, parsed, strict=True):
            requests.append(
                _Request(
                    copy.raw,
                    trace_prefix,
                    copy.mail_from,
                    [DeliveryTarget(copy.mailbox, copy.folder, copy.flags)],
                    meta,
                    blob_key=copy.blob_key,
                    created_blob=copy.created_blob,
                    announce=False,
                    index=index,
                    internal_date=copy.internal_date,
                )
            )
        return await self._place(uow, requests)

    def notify(self, mailbox_ids: Sequence[int | None]) -> None:
        """Tell waiting IMAP sessions that these mailboxes changed; only after the commit."""
        for mailbox_id in set(mailbox_ids):
            if mailbox_id is not None:
                self.signals.publish(mailbox_id)

    async def close(self) -> None:
        """Wait for deliveries already accepted into a batch."""
        await self._committer.close()

    async def _record(self, stored: Sequence[StoredJob[_Request]]) -> list[DeliveryReceipt]:
        """Record a batch in one transaction with a handful of statements, whatever its size."""
        requests = []
        for job in stored:
            [(key, created)] = job.blobs
            requests.append(replace(job.job, blob_key=key, created_blob=created))
        async with self._uow() as uow:
            receipts = await self._place(uow, requests)
            await uow.commit()
        self.notify([p.mailbox_id for receipt in receipts for p in receipt.placements])
        self.texts.remember(
            {
                receipt.message_id: request.index.body_text
                for request, receipt in zip(requests, receipts, strict=True)
                if request.index is not None and request.body_text_later
            }
        )
        return receipts

    async def _place(self, uow: UnitOfWork, requests: list[_Request]) -> list[DeliveryReceipt]:
        """Message rows, placements and events for a batch, in the caller's transaction."""
        for request in requests:
            if not request.created_blob:
                # The blob existed already: a mailbox deletion may be removing it right now.
                # Under the blob's lock (MailboxService.delete takes it too) make sure it is
                # still there.
                await uow.messages.lock_blob(request.blob_key)
                if not await self._blobs.exists(request.blob_key):
                    await self._blobs.put(request.raw)
        now = self._clock.now()
        message_ids = await uow.messages.add_many(
            [
                NewMessage(
                    blob_key=request.blob_key,
                    size=len(request.trace_prefix) + len(request.raw),
                    trace_prefix=request.trace_prefix,
                    received_at=now,
                    mail_from=request.mail_from,
                    meta=request.meta,
                    index=request.index,
                    body_text_later=request.body_text_later,
                )
                for request in requests
            ]
        )
        targets = [target for request in requests for target in request.targets]
        folders = await uow.folders.find_many(
            [(target.mailbox.id or 0, target.folder) for target in targets]
        )
        next_uids = await self._allocate_uids(uow, folders, targets)
        threads = _BatchThreads()
        placements: list[NewPlacement] = []
        events: list[NewEvent] = []
        receipts = []
        for request, message_id in zip(requests, message_ids, strict=True):
            stored = []
            for target in request.targets:
                mailbox = target.mailbox
                assert mailbox.id is not None
                folder = folders[(mailbox.id, target.folder)]
                assert folder.id is not None
                thread_id = (
                    threads.find(mailbox.id, request.meta)
                    or await self._thread_for(uow, mailbox.id, request.meta)
                    or str(message_id)
                )
                threads.remember(mailbox.id, request.meta, thread_id)
                uid, modseq = next_uids[folder.id]
                next_uids[folder.id] = (uid + 1, modseq + 1)
                placements.append(
                    NewPlacement(
                        message_id,
                        mailbox.id,
                        folder.id,
                        uid,
                        modseq,
                        thread_id,
                        request.internal_date or now,
                        target.flags,
                    )
                )
                if request.announce:
                    events.append(_received_event(target, request, uid, now))
                stored.append(StoredPlacement(mailbox.id, folder.id, uid, thread_id))
            receipts.append(DeliveryReceipt(message_id, request.blob_key, tuple(stored)))
        await uow.messages.add_placements(placements)
        if events:
            await record_events(uow, events)
        return receipts

    @staticmethod
    async def _allocate_uids(
        uow: UnitOfWork, folders: dict[tuple[int, str], Folder], targets: list[DeliveryTarget]
    ) -> dict[int, tuple[int, int]]:
        """The first (UID, MODSEQ) of each target folder's range, one UPDATE per folder."""
        counts: Counter[int] = Counter()
        for target in targets:
            folder = folders.get((target.mailbox.id or 0, target.folder))
            if folder is None or folder.id is None:
                raise LookupError(f"mailbox {target.mailbox.address} has no folder {target.folder}")
            counts[folder.id] += 1
        return {
            folder_id: await uow.folders.allocate_uids(folder_id, count)
            for folder_id, count in sorted(counts.items())  # a fixed order: no lock cycles
        }

    async def _thread_for(
        self, uow: UnitOfWork, mailbox_id: int, meta: MessageMetadata
    ) -> str | None:
        """References/In-Reply-To first; then, for replies only, the normalised subject."""
        parents = _parents(meta)
        if parents:
            thread = await uow.messages.thread_of_references(mailbox_id, parents)
            if thread is not None:
                return thread
        if meta.is_reply and meta.subject_key:
            since = self._clock.now() - SUBJECT_THREAD_WINDOW
            return await uow.messages.thread_of_subject(mailbox_id, meta.subject_key, since)
        return None


def _parents(meta: MessageMetadata) -> list[str]:
    return [*meta.references, *([meta.in_reply_to] if meta.in_reply_to else [])]


class _BatchThreads:
    """Threads of messages earlier in the same batch, which the database cannot see yet."""

    def __init__(self) -> None:
        self._by_message_id: dict[tuple[int, str], str] = {}
        self._by_subject: dict[tuple[int, str], str] = {}

    def find(self, mailbox_id: int, meta: MessageMetadata) -> str | None:
        for parent in reversed(_parents(meta)):
            if (mailbox_id, parent) in self._by_message_id:
                return self._by_message_id[(mailbox_id, parent)]
        if meta.is_reply and meta.subject_key:
            return self._by_subject.get((mailbox_id, meta.subject_key))
        return None

    def remember(self, mailbox_id: int, meta: MessageMetadata, thread_id: str) -> None:
        if meta.message_id:
            self._by_message_id[(mailbox_id, meta.message_id)] = thread_id
        if meta.subject_key:
            self._by_subject[(mailbox_id, meta.subject_key)] = thread_id


def _received_event(target: DeliveryTarget, request: _Request, uid: int, now: datetime) -> NewEvent:
    mailbox = target.mailbox
    return NewEvent(
        mailbox.account_id,
        EventType.RECEIVED,
        {
            "mailbox": mailbox.address,
            "messageId": request.meta.message_id,
            "from": request.meta.from_addr,
            "subject": request.meta.subject,
            "folder": target.folder,
            "uid": uid,
        },
        now,
        domain_id=mailbox.domain_id,
    )

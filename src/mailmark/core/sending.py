"""Sending: the one entry point for every sender (SMTP submission, the API, the dashboard,
campaigns).

A submission is checked (sender, quota, suppressions, header injection), stored as one blob, and
recorded in one transaction: the Sent copy, the outbound message and one queue row per recipient.
The queue's workers are woken once it has committed.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, getaddresses

from mailmark.core import compose
from mailmark.core.addresses import (
    check_header_value,
    normalize_address,
    return_path_domain,
    verp_address,
)
from mailmark.core.delivery import InboundDelivery, SentCopy, StoredPlacement
from mailmark.core.errors import (
    Forbidden,
    InvalidInput,
    MailmarkError,
    MessageTooLarge,
    NotFound,
    Suppressed,
    naming,
)
from mailmark.core.events import record_events
from mailmark.core.group_commit import GroupCommitter, StoredJob
from mailmark.core.message_meta import (
    check_header_limits,
    header_values,
    read_metadata,
    without_bcc,
    without_our_authentication_results,
)
from mailmark.core.model import Mailbox, OutboundMessage, Suppression
from mailmark.core.plans import Plan, effective_plan, ensure_email_quota, usage_month
from mailmark.core.ports import BlobStore, Clock, NewEvent, UnitOfWork, UnitOfWorkFactory
from mailmark.core.queue import OutboundQueue, QueuedMessage
from mailmark.core.states import EventType, SpecialFolder, SuppressionReason, SystemFlag
from mailmark.core.tracking import Tracking, unsubscribe_headers

TOKEN_LENGTH = 24
# Lower-case only: some systems change the case of a return path's local part.
TOKEN_ALPHABET = string.ascii_lowercase + string.digits
MAX_SUBJECT = 998  # RFC 5322 §2.1.1: no line longer than 998 characters
MAX_EXTRA_HEADERS = 50
MAX_BATCH_ID = 64
MAX_ATTACHMENTS = 20
MAX_TAGS = 10
# A tag is what `GET /v1/emails?tag=` takes: short, and safe in a URL as it is.
TAG = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
TAG_RULE = "A tag is 1 to 64 letters, digits and _.:- characters."
MAX_FILENAME = 255
MAX_CONTENT_ID = 100
# Room kept under the size limit for the fields added on the way out (DKIM-Signature, Received).
SIGNING_ALLOWANCE = 4096
# RFC 2045 §5.1: type "/" subtype, both tokens; no parameters.
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}$")
# RFC 2392 / RFC 5322 §3.6.4: a Content-ID is dot-atom text, usually with an @.
_CONTENT_ID = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]+$")
# Fields the message is built with; callers cannot replace them through `headers`.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "reply-to",
        "return-path",
        "received",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "dkim-signature",
        # RFC 5322 §3.6.6 and RFC 8601 §5: originator and trust fields checked on submission.
        "resent-from",
        "resent-sender",
        "authentication-results",
    }
)
# RFC 5322 §2.2: a field name is printable ASCII except the colon.
_FIELD_NAME = re.compile(r"^[!-9;-~]{1,76}$")
_REASONS = {
    SuppressionReason.BOUNCE: "an earlier message to it bounced",
    SuppressionReason.COMPLAINT: "its owner marked an earlier message as spam",
    SuppressionReason.MANUAL: "it was added to the list by hand",
    SuppressionReason.UNSUBSCRIBE: "its owner unsubscribed from the account's campaigns",
}
# Set on a message with an unsubscribe link; a caller's own would contradict ours.
_UNSUBSCRIBE_FIELDS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})


_TOKEN_SPACE = len(TOKEN_ALPHABET) ** TOKEN_LENGTH


def new_token() -> str:
    """The per-message VERP token: 24 characters, lower-case letters and digits, uniform over
    all of them. One draw from `secrets` written in base 36: a draw per character (24 reads of
    the system's random source) cost a quarter of a millisecond, per message of a campaign."""
    number = secrets.randbelow(_TOKEN_SPACE)
    characters = []
    for _ in range(TOKEN_LENGTH):
        number, digit = divmod(number, len(TOKEN_ALPHABET))
        characters.append(TOKEN_ALPHABET[digit])
    return "".join(characters)


@dataclass(frozen=True)
class Submission:
    outbound_id: int
    message_id: str  # the Message-ID without <>
    recipients: tuple[str, ...]
    # The sender's copy: in Sent, or in Outbox while the message waits for its time.
    copy: StoredPlacement | None = None


@dataclass(frozen=True)
class Draft:
    """A message to build from a mailbox and queue (`SendingService.submit_many`)."""

    mailbox: Mailbox
    to: tuple[str, ...]
    subject: str
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    text: str | None = None
    html: str | None = None
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    scheduled_at: datetime | None = None
    batch_id: str | None = None
    attachments: tuple[compose.Attachment, ...] = ()
    tags: tuple[str, ...] = ()
    # False when the author already placed the mailbox's signature (the webmail's editor does).
    with_signature: bool = True
    # Tracking of this message: opens (None: as its mailbox is set, for one-to-one mail), clicks
    # (its HTML links become signed redirects), and the RFC 8058 unsubscribe link of campaign mail,
    # which also holds the message back from addresses that unsubscribed from the account.
    track_opens: bool | None = None
    track_clicks: bool = False
    unsubscribe: bool = False


@dataclass(frozen=True)
class _Prepared:
    """A built message about to be queued."""

    mailbox: Mailbox
    sender_address: str
    raw: bytes
    recipients: tuple[str, ...]
    subject: str | None
    message_id: str
    scheduled_at: datetime | None
    batch_id: str | None
    tags: tuple[str, ...] = ()
    # Other addresses the message claims as its author's (Sender, Resent-From, Resent-Sender),
    # each held to the rule From is.
    identities: tuple[str, ...] = ()
    # The per-message VERP token; chosen when the message is built, as its tracking pixel names it.
    token: str = field(default_factory=new_token)
    tracked_links: list[str] | None = None
    # Campaign mail: not sent to addresses that unsubscribed from the account.
    unsubscribe: bool = False


# Writes more in a submission's own transaction, just before it commits (an idempotency record).
BeforeCommit = Callable[[UnitOfWork, list[Submission]], Awaitable[None]]
# A last check in the sending transaction, before anything is written: raising a MailmarkError
# refuses that caller's messages alone (e.g. a campaign paused since its pass began).
Admission = Callable[[UnitOfWork], Awaitable[None]]
# Items (one per message) one group commit takes at most; a larger campaign goes alone.
MAX_BATCH_ITEMS = 200


@dataclass(frozen=True)
class _Job:
    """One caller's submission: its items, committed together or not at all."""

    items: list[_Prepared]
    source: str
    before_commit: BeforeCommit | None
    admit: Admission | None = None


def _by_sender(
    items: Sequence[_Prepared], senders: Sequence[tuple[Mailbox, Mailbox]]
) -> list[tuple[Mailbox, list[_Prepared]]]:
    groups: dict[int | None, tuple[Mailbox, list[_Prepared]]] = {}
    for item, (_, sender) in zip(items, senders, strict=True):
        groups.setdefault(sender.id, (sender, []))[1].append(item)
    return list(groups.values())


class SendingService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        blobs: BlobStore,
        clock: Clock,
        queue: OutboundQueue,
        delivery: InboundDelivery,
        *,
        hostname: str,
        max_recipients: int = 100,
        max_message_size: int = 25 * 1024 * 1024,
        tracking: Tracking | None = None,
    ) -> None:
        """`hostname` is the server's own name: the domain of the return paths of domains
        whose mail.<domain> records are not published (core/addresses.py). With `tracking`, the
        HTML of tracked mail gets its pixel and redirects, and campaign mail its unsubscribe
        link."""
        self._uow = uow
        self._tracking = tracking
        # Our MX advertises this SIZE (RFC 1870); a message we build stays within it.
        self._max_message_size = max_message_size
        self._hostname = hostname
        self._clock = clock
        self._queue = queue
        self._delivery = delivery
        self._max_recipients = max_recipients
        self._committer: GroupCommitter[_Job, list[Submission]] = GroupCommitter(
            blobs,
            blobs_of=lambda job: [item.raw for item in job.items],
            record=self._record,
            max_blobs=MAX_BATCH_ITEMS,
            name="submission",
        )

    def check_sender(self, mailbox: Mailbox, address: str) -> None:
        """Raise Forbidden unless `address` is the mailbox's own. (`submit_raw` also accepts the
        address of another mailbox of the same user, which needs a lookup.)"""
        if normalize_address(address, "The sender").lower() != mailbox.address.lower():
            raise Forbidden(f"{mailbox.address} may not send as {address}.")

    async def check_recipient(self, mailbox: Mailbox, address: str) -> None:
        """Raise InvalidInput for a malformed address, Suppressed for one the mailbox's domain
        no longer mails."""
        recipient = normalize_address(address, "The recipient")
        async with self._uow(read_only=True) as uow:
            await self._check_suppressions(uow, mailbox, [recipient])

    async def submit(
        self,
        *,
        mailbox: Mailbox,
        to: Sequence[str],
        cc: Sequence[str] = (),
        bcc: Sequence[str] = (),
        subject: str,
        text: str | None = None,
        html: str | None = None,
        reply_to: str | None = None,
        headers: Mapping[str, str] | None = None,
        source: str = "api",
        scheduled_at: datetime | None = None,
        batch_id: str | None = None,
    ) -> Submission:
        """Build a message from the mailbox (display name, signature) and queue it.

        Bcc recipients get the message but are never named in it."""
        draft = Draft(
            mailbox=mailbox,
            to=tuple(to) if not isinstance(to, str) else (to,),
            cc=tuple(cc) if not isinstance(cc, str) else (cc,),
            bcc=tuple(bcc) if not isinstance(bcc, str) else (bcc,),
            subject=subject,
            text=text,
            html=html,
            reply_to=reply_to,
            headers=dict(headers or {}),
            scheduled_at=scheduled_at,
            batch_id=batch_id,
        )
        [submission] = await self.submit_many([draft], source=source)
        return submission

    async def submit_many(
        self,
        drafts: Sequence[Draft],
        *,
        source: str = "api",
        before_commit: BeforeCommit | None = None,
        admit: Admission | None = None,
    ) -> list[Submission]:
        """Queue several messages (a campaign's, one per recipient) in one transaction: all of
        them or, on any refusal, none. `admit` checks once more in that transaction, before any
        write; `before_commit` writes more in it."""
        if not drafts:
            raise InvalidInput("Give at least one message to send.")
        hosts = await self._tracking_hosts(drafts)
        built = [self._build(draft, hosts.get(draft.mailbox.domain_id)) for draft in drafts]
        return await self._enqueue(built, source, before_commit, admit)

    async def _tracking_hosts(self, drafts: Sequence[Draft]) -> dict[int, str]:
        """The tracking hosts of the domains of the drafts that carry tracked links."""
        linked = {
            draft.mailbox.domain_id
            for draft in drafts
            if draft.track_clicks or draft.unsubscribe or _tracks_opens(draft)
        }
        if not linked or self._tracking is None:
            return {}
        async with self._uow(read_only=True) as uow:
            return await uow.domains.tracking_hosts(sorted(linked))

    async def suppressed(
        self, mailbox: Mailbox, addresses: Sequence[str], *, campaign: bool
    ) -> dict[str, str]:
        """Which of these addresses the mailbox's messages would be refused for, each with the
        reason: its domain's suppression list and, for campaign mail, the account's
        unsubscribes. Keys are lower-case."""
        wanted = sorted({address.lower() for address in addresses})
        found: dict[str, str] = {}
        async with self._uow(read_only=True) as uow:
            if campaign:
                for address in await uow.suppressions.find_for_account(mailbox.account_id, wanted):
                    found[address] = SuppressionReason.UNSUBSCRIBE
            for entry in await uow.suppressions.find(mailbox.domain_id, wanted):
                found[entry.address] = entry.reason
        return found

    def _build(self, draft: Draft, tracking_host: str | None = None) -> _Prepared:
        to_addrs = _addresses("To", draft.to)
        cc_addrs = _addresses("Cc", draft.cc)
        bcc_addrs = _addresses("Bcc", draft.bcc)
        check_header_value("The subject", draft.subject, MAX_SUBJECT)
        extra = dict(draft.headers)
        if len(extra) > MAX_EXTRA_HEADERS:
            raise InvalidInput(f"At most {MAX_EXTRA_HEADERS} extra headers may be given.")
        for name, value in extra.items():
            if not _FIELD_NAME.match(name) or name.lower() in RESERVED_HEADERS:
                raise InvalidInput(f"{name!r} cannot be set as an extra header.")
            check_header_value(f"The {name} header", value)
        reply = (
            normalize_address(draft.reply_to, "The Reply-To address") if draft.reply_to else None
        )
        if draft.batch_id is not None:
            check_header_value("The batch id", draft.batch_id, MAX_BATCH_ID)
        self.check_attachments(draft.attachments)
        tags = check_tags(draft.tags)
        recipients = self._recipients([*to_addrs, *cc_addrs, *bcc_addrs])
        mailbox = draft.mailbox
        now = self._clock.now()
        message_id = f"{secrets.token_hex(16)}@{mailbox.domain_name}"
        token = new_token()
        html = draft.html
        links: list[str] | None = None
        if self._tracking is not None:
            if html is not None and draft.track_clicks:
                html, links = self._tracking.tracked_links(html, token, tracking_host)
            if html is not None and _tracks_opens(draft):
                html += self._tracking.pixel_html(token, tracking_host)
            if draft.unsubscribe:
                if len(recipients) != 1:
                    raise InvalidInput("A message with an unsubscribe link has one recipient.")
                extra = {k: v for k, v in extra.items() if k.lower() not in _UNSUBSCRIBE_FIELDS}
                url = self._tracking.signer.unsubscribe_url(token, tracking_host)
                extra.update(unsubscribe_headers(url))
        raw = compose.build_message(
            sender=compose.mailbox(mailbox.display_name, mailbox.address),
            to=to_addrs,
            cc=cc_addrs,
            reply_to=reply,
            subject=draft.subject,
            date=now,
            message_id=message_id,
            extra_headers=extra,
            text=draft.text,
            html=html,
            signature=mailbox.signature if draft.with_signature else "",
            attachments=draft.attachments,
        )
        if len(raw) + SIGNING_ALLOWANCE > self._max_message_size:
            raise MessageTooLarge(
                f"The message would be {len(raw)} bytes, over the limit of "
                f"{self._max_message_size - SIGNING_ALLOWANCE} bytes.",
                field="attachments" if draft.attachments else None,
            )
        return _Prepared(
            mailbox,
            mailbox.address,
            raw,
            recipients,
            draft.subject,
            message_id,
            draft.scheduled_at,
            draft.batch_id,
            tags,
            token=token,
            tracked_links=links or None,
            unsubscribe=draft.unsubscribe,
        )

    def check_attachments(self, attachments: Sequence[compose.Attachment]) -> None:
        """Refuse too many attachments, too many bytes in all, and a filename, type or Content-ID
        that could not be written into the part's header fields; errors name the field as the
        API spells it (`attachments[2].filename`)."""
        if len(attachments) > MAX_ATTACHMENTS:
            raise InvalidInput(f"At most {MAX_ATTACHMENTS} attachments.", field="attachments")
        total = sum(len(a.content) for a in attachments)
        if total + SIGNING_ALLOWANCE > self._max_message_size:
            raise MessageTooLarge(
                f"The attachments hold {total} bytes, over the message size limit of "
                f"{self._max_message_size - SIGNING_ALLOWANCE} bytes.",
                field="attachments",
            )
        content_ids: set[str] = set()
        for index, attachment in enumerate(attachments):
            with naming(f"attachments[{index}].filename"):
                check_header_value("The filename", attachment.filename, MAX_FILENAME)
                if not attachment.filename.strip() or any(
                    ord(ch) < 32 or ord(ch) == 127 for ch in attachment.filename
                ):
                    raise InvalidInput("The filename must be printable and not empty.")
            if not _CONTENT_TYPE.match(attachment.content_type):
                raise InvalidInput(
                    "The content type is type/subtype, such as image/png.",
                    field=f"attachments[{index}].contentType",
                )
            cid = attachment.content_id
            if cid is not None:
                if len(cid) > MAX_CONTENT_ID or not _CONTENT_ID.match(cid):
                    raise InvalidInput(
                        f"A content id is up to {MAX_CONTENT_ID} characters of letters, digits "
                        "and .@-_ (no spaces or angle brackets).",
                        field=f"attachments[{index}].contentId",
                    )
                if cid.lower() in content_ids:
                    raise InvalidInput(
                        f"The content id {cid} is given twice.",
                        field=f"attachments[{index}].contentId",
                    )
                content_ids.add(cid.lower())

    async def submit_raw(
        self, *, mailbox: Mailbox, recipients: Sequence[str], raw: bytes, source: str = "submission"
    ) -> Submission:
        """Queue a message a client composed (SMTP submission, RFC 6409).

        Its From must be the mailbox or another mailbox of the same user (else Forbidden); a
        missing Message-ID or Date is added (RFC 6409 §8.2, §8.3) and Bcc fields are removed."""
        check_header_limits(raw)
        unique = self._recipients([normalize_address(r, "The recipient") for r in recipients])
        meta = read_metadata(raw)
        senders = [addr for _, addr in getaddresses(header_values(raw, b"from")) if addr]
        if len(senders) != 1:
            raise Forbidden("The message needs exactly one From address, the sending mailbox.")
        sender = normalize_address(senders[0], "The From address")
        # RFC 6409 §8.1 and RFC 5322 §3.6.2, §3.6.6: Sender and the Resent-* originator fields
        # name the message's author too, so each must be an address the mailbox may send as.
        identities = tuple(
            normalize_address(address, f"The {label} address")
            for name, label in _IDENTITY_FIELDS
            for _, address in getaddresses(header_values(raw, name))
            if address
        )
        raw = without_our_authentication_results(raw, self._hostname)
        now = self._clock.now()
        message_id = meta.message_id.strip("<>") if meta.message_id else None
        added = b""
        if meta.message_id is None:
            message_id = f"{secrets.token_hex(16)}@{mailbox.domain_name}"
            added += f"Message-ID: <{message_id}>\r\n".encode()
        if not header_values(raw, b"date"):
            added += f"Date: {format_datetime(now)}\r\n".encode()
        prepared = without_bcc(raw, added)
        assert message_id is not None
        [submission] = await self._enqueue(
            [
                _Prepared(
                    mailbox,
                    sender,
                    prepared,
                    unique,
                    meta.subject,
                    message_id,
                    None,
                    None,
                    identities=identities,
                )
            ],
            source,
            None,
        )
        return submission

    def _recipients(self, addresses: Sequence[str]) -> tuple[str, ...]:
        unique = tuple({address.lower(): address for address in addresses}.values())
        if not unique:
            raise InvalidInput("Give at least one recipient.")
        if len(unique) > self._max_recipients:
            raise InvalidInput(f"Too many recipients: at most {self._max_recipients} per message.")
        return unique

    async def _enqueue(
        self,
        items: Sequence[_Prepared],
        source: str,
        before_commit: BeforeCommit | None,
        admit: Admission | None = None,
    ) -> list[Submission]:
        """Queue the items, committed when this returns. Concurrent callers share transactions
        (group commit): one blob batch, one transaction and one commit for all that wait."""
        for item in items:
            if item.scheduled_at is not None and item.scheduled_at.tzinfo is None:
                raise InvalidInput("The scheduled time needs a time zone.")
        return await self._committer.commit(_Job(list(items), source, before_commit, admit))

    async def close(self) -> None:
        """Wait for submissions already accepted into a batch."""
        await self._committer.close()

    async def _record(
        self, stored: Sequence[StoredJob[_Job]]
    ) -> list[list[Submission] | Exception]:
        """One transaction for the jobs. A job refused by a check (sender, quota, suppression)
        gets its error and the others go ahead; an error while writing fails them all. The
        workers and the senders' IMAP sessions are woken once it has committed."""
        now = self._clock.now()
        jobs = [job.job for job in stored]
        outcomes: list[list[Submission] | Exception] = [[] for _ in jobs]
        async with self._uow() as uow:
            known: dict[tuple[int | None, str], tuple[Mailbox, Mailbox]] = {}
            senders: dict[int, list[tuple[Mailbox, Mailbox]]] = {}
            for index, job in enumerate(jobs):
                try:
                    senders[index] = await self._senders(uow, job.items, known)
                except MailmarkError as error:
                    outcomes[index] = error
            # Accounts locked in one order, so that concurrent batches never wait on each other
            # in a cycle; each account's count is read once per batch.
            usage: dict[int, tuple[Plan, int]] = {}
            for account_id in sorted(
                {s.account_id for pairs in senders.values() for _, s in pairs}
            ):
                account = await uow.accounts.get(account_id)
                assert account is not None
                try:
                    plan = effective_plan(account, now)
                except MailmarkError as error:
                    for index, pairs in senders.items():
                        if any(s.account_id == account_id for _, s in pairs):
                            outcomes[index] = error
                    continue
                await uow.accounts.lock(account_id)
                # Without a monthly limit there is nothing to count (the count grows all month).
                sent = 0
                if plan.emails_per_month is not None:
                    sent = await uow.usage.sent_in(account_id, usage_month(now))
                usage[account_id] = (plan, sent)
            # One suppression lookup per sending domain for the whole batch.
            wanted: dict[int, set[str]] = {}
            for index, pairs in senders.items():
                if not isinstance(outcomes[index], Exception):
                    for item, (_, sender) in zip(jobs[index].items, pairs, strict=True):
                        wanted.setdefault(sender.domain_id, set()).update(
                            r.lower() for r in item.recipients
                        )
            suppressed: dict[int, dict[str, Suppression]] = {}
            for domain_id, addresses in sorted(wanted.items()):
                found = await uow.suppressions.find(domain_id, sorted(addresses))
                suppressed[domain_id] = {entry.address: entry for entry in found}
            # Campaign mail is also held back from whoever unsubscribed from the account.
            campaign_mail: dict[int, set[str]] = {}
            for index, pairs in senders.items():
                if not isinstance(outcomes[index], Exception):
                    for item, (_, sender) in zip(jobs[index].items, pairs, strict=True):
                        if item.unsubscribe:
                            campaign_mail.setdefault(sender.account_id, set()).update(
                                r.lower() for r in item.recipients
                            )
            unsubscribed: dict[int, set[str]] = {}
            for account_id, addresses in sorted(campaign_mail.items()):
                unsubscribed[account_id] = await uow.suppressions.find_for_account(
                    account_id, sorted(addresses)
                )
            accepted: list[int] = []
            for index, pairs in senders.items():
                if isinstance(outcomes[index], Exception):
                    continue
                try:
                    admit = jobs[index].admit
                    if admit is not None:
                        await admit(uow)
                    self._check_job(jobs[index], pairs, usage, suppressed, unsubscribed, now)
                except MailmarkError as error:
                    outcomes[index] = error
                    continue
                accepted.append(index)
            if not accepted:
                return outcomes
            items = [item for index in accepted for item in jobs[index].items]
            pairs_all = [pair for index in accepted for pair in senders[index]]
            blobs = [blob for index in accepted for blob in stored[index].blobs]
            submissions = await self._insert(uow, items, pairs_all, blobs, jobs, accepted, now)
            offset = 0
            for index in accepted:
                job = jobs[index]
                mine = submissions[offset : offset + len(job.items)]
                offset += len(job.items)
                if job.before_commit is not None:
                    await job.before_commit(uow, mine)
                outcomes[index] = mine
            await uow.commit()
        self._queue.kick()
        # The Sent copies are placed: wake the senders' IMAP sessions idling on them.
        self._delivery.notify([item.mailbox.id for index in accepted for item in jobs[index].items])
        return outcomes

    @staticmethod
    def _check_job(
        job: _Job,
        pairs: Sequence[tuple[Mailbox, Mailbox]],
        usage: dict[int, tuple[Plan, int]],
        suppressed: dict[int, dict[str, Suppression]],
        unsubscribed: dict[int, set[str]],
        now: datetime,
    ) -> None:
        """The quota and suppression checks of one job, on what the batch read; counts the
        job's emails into `usage` once it passes."""
        wanted: dict[int, int] = {}
        for item, (_, sender) in zip(job.items, pairs, strict=True):
            wanted[sender.account_id] = wanted.get(sender.account_id, 0) + len(item.recipients)
        for account_id, count in wanted.items():
            plan, sent = usage[account_id]
            ensure_email_quota(plan, sent, count)
        for sender, group in _by_sender(job.items, pairs):
            listed = suppressed.get(sender.domain_id, {})
            found = [
                listed[r.lower()] for item in group for r in item.recipients if r.lower() in listed
            ]
            if found:
                raise _suppressed(sender, found)
            gone = unsubscribed.get(sender.account_id, set())
            refused = [
                Suppression(sender.domain_id, r.lower(), SuppressionReason.UNSUBSCRIBE, "", now)
                for item in group
                if item.unsubscribe
                for r in item.recipients
                if r.lower() in gone
            ]
            if refused:
                raise _suppressed(sender, refused)
        for account_id, count in wanted.items():
            plan, sent = usage[account_id]
            usage[account_id] = (plan, sent + count)

    async def _insert(
        self,
        uow: UnitOfWork,
        items: Sequence[_Prepared],
        senders: Sequence[tuple[Mailbox, Mailbox]],
        blobs: Sequence[tuple[str, bool]],
        jobs: Sequence[_Job],
        accepted: Sequence[int],
        now: datetime,
    ) -> list[Submission]:
        """The Sent copies, outbound rows, queue rows and events of the items, in batches."""
        sources = [jobs[index].source for index in accepted for _ in jobs[index].items]
        tokens = [item.token for item in items]
        returns = [
            verp_address(
                token,
                return_path_domain(
                    sender.domain_name,
                    published=sender.return_path_published,
                    server_hostname=self._hostname,
                ),
            )
            for token, (_, sender) in zip(tokens, senders, strict=True)
        ]
        # A mail client that saves its own copy in Sent asks the server not to file one for
        # what it submits over SMTP (the mailbox's `save_sent_copy`).
        filed = [
            source != "submission" or current.save_sent_copy
            for source, (current, _) in zip(sources, senders, strict=True)
        ]
        copies = [
            SentCopy(
                raw=item.raw,
                blob_key=key,
                created_blob=created,
                mailbox=current,
                folder=copy_folder(item.scheduled_at, now),
                mail_from=return_path,
                flags=(SystemFlag.SEEN,),
            )
            for item, (key, created), (current, _), return_path, file in zip(
                items, blobs, senders, returns, filed, strict=True
            )
            if file
        ]
        # Most Sent copies of API and campaign sends are never read over IMAP: their IMAP index
        # (of a submission's copy too) waits for the first FETCH or SEARCH that needs it.
        placed = iter(
            await self._delivery.place_many_in(uow, copies, index_later=True) if copies else []
        )
        sent_copies = [next(placed) if file else None for file in filed]
        sent_message_ids = [copy.message_id if copy else None for copy in sent_copies]
        outbound_ids = await uow.outbound.add_many(
            [
                OutboundMessage(
                    account_id=sender.account_id,
                    domain_id=sender.domain_id,
                    mailbox_id=sender.id,
                    blob_key=key,
                    size=len(item.raw),
                    envelope_from=return_path,
                    token=token,
                    from_addr=sender.address,
                    subject=item.subject,
                    message_id_header=item.message_id,
                    source=source,
                    created_at=now,
                    batch_id=item.batch_id,
                    sent_message_id=sent_message_id,
                    tracked_links=item.tracked_links,
                )
                for item, (key, _), (_, sender), token, return_path, sent_message_id, source in zip(
                    items, blobs, senders, tokens, returns, sent_message_ids, sources, strict=True
                )
            ]
        )
        await uow.outbound.add_tags(
            [
                (outbound_id, sender.domain_id, tag)
                for item, outbound_id, (_, sender) in zip(items, outbound_ids, senders, strict=True)
                for tag in item.tags
            ]
        )
        await self._queue.enqueue(
            uow,
            [
                QueuedMessage(outbound_id, sender.account_id, item.recipients, item.scheduled_at)
                for item, outbound_id, (_, sender) in zip(items, outbound_ids, senders, strict=True)
            ],
            now,
        )
        new_events: list[NewEvent] = []
        for item, (_, sender), outbound_id, source in zip(
            items, senders, outbound_ids, sources, strict=True
        ):
            payload: dict[str, object] = {
                "from": sender.address,
                "to": list(item.recipients),
                "subject": item.subject,
                "messageId": item.message_id,
                "source": source,
                "batchId": item.batch_id,
                "scheduledAt": item.scheduled_at.isoformat() if item.scheduled_at else None,
                "tags": list(item.tags),
            }
            new_events.append(
                NewEvent(sender.account_id, EventType.SENT, payload, now, outbound_id=outbound_id)
            )
        await record_events(uow, new_events)
        return [
            Submission(
                outbound_id, item.message_id, item.recipients, copy.placements[0] if copy else None
            )
            for item, outbound_id, copy in zip(items, outbound_ids, sent_copies, strict=True)
        ]

    async def _senders(
        self,
        uow: UnitOfWork,
        items: Sequence[_Prepared],
        known: dict[tuple[int | None, str], tuple[Mailbox, Mailbox]],
    ) -> list[tuple[Mailbox, Mailbox]]:
        """Per item: (the submitting mailbox as stored now, the mailbox named in From)."""
        result = []
        for item in items:
            for address in (item.sender_address, *item.identities):
                key = (item.mailbox.id, address.lower())
                if key not in known:
                    current = await uow.mailboxes.get(item.mailbox.id) if item.mailbox.id else None
                    if current is None:
                        raise NotFound(f"No mailbox {item.mailbox.address} here.")
                    known[key] = (current, await self._sending_mailbox(uow, current, address))
            result.append(known[(item.mailbox.id, item.sender_address.lower())])
        return result

    @staticmethod
    async def _sending_mailbox(uow: UnitOfWork, current: Mailbox, address: str) -> Mailbox:
        """The mailbox named in From: the caller's own, or another mailbox of the same user."""
        if address.lower() == current.address.lower():
            return current
        local, _, domain = address.rpartition("@")
        other = await uow.mailboxes.find(domain.lower(), local.lower())
        if other is None or current.user_id is None or other.user_id != current.user_id:
            raise Forbidden(f"{current.address} may not send as {address}.")
        return other

    @staticmethod
    async def _check_suppressions(
        uow: UnitOfWork, mailbox: Mailbox, recipients: Sequence[str]
    ) -> None:
        found = await uow.suppressions.find(mailbox.domain_id, [r.lower() for r in recipients])
        if found:
            raise _suppressed(mailbox, found)


_IDENTITY_FIELDS = (
    (b"sender", "Sender"),
    (b"resent-from", "Resent-From"),
    (b"resent-sender", "Resent-Sender"),
)


def copy_folder(scheduled_at: datetime | None, now: datetime) -> SpecialFolder:
    """Where the sender's copy goes: Outbox while the message waits for a later first attempt
    (scheduled, or in its undo window), else Sent. The queue moves it to Sent when it takes it."""
    if scheduled_at is not None and scheduled_at > now:
        return SpecialFolder.OUTBOX
    return SpecialFolder.SENT


def _tracks_opens(draft: Draft) -> bool:
    """Whether the draft gets a pixel: as asked, else as its mailbox is set."""
    return draft.mailbox.track_opens if draft.track_opens is None else draft.track_opens


def check_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """The tags without repeats, in their order; InvalidInput naming `tags` for too many or a
    malformed one."""
    unique = tuple(dict.fromkeys(tags))
    if len(unique) > MAX_TAGS:
        raise InvalidInput(f"At most {MAX_TAGS} tags per email.", field="tags")
    for tag in unique:
        if not TAG.match(tag):
            raise InvalidInput(TAG_RULE, field="tags")
    return unique


def _suppressed(mailbox: Mailbox, found: Sequence[Suppression]) -> Suppressed:
    first = min(found, key=lambda s: s.address)
    reason = _REASONS.get(first.reason, first.reason)
    return Suppressed(
        f"{first.address} is on the suppression list of {mailbox.domain_name}: {reason}. "
        "Mail to it is not sent."
    )


def _addresses(label: str, addresses: Sequence[str]) -> list[str]:
    if isinstance(addresses, str):
        addresses = [addresses]
    return [normalize_address(address, f"The {label} address") for address in addresses]

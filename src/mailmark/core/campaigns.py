"""Sending a request: one transactional email to every recipient, or a campaign expanded into one
individually addressed email per recipient (PRODUCT.md "Send Email", "Sender Groups").

The rules of a send request live here, for every caller (the /v1 API, the dashboard, the CLI, the
campaign engine): the recipient cap, the schedule window, no cc/bcc on a campaign, variables only
for campaigns, recipient de-duplication, sender-group rotation, merge-tag rendering, skipping suppressed recipients of a campaign, tracking and
unsubscribe options, and the decoding of attachments (base64, as JSON carries them). Errors
name the request field at fault (`field`), in the API's spelling, which every caller shares.
Sender ownership, quota, suppression and header checks of each message are `SendingService`'s.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from mailmark.core.addresses import check_header_value, normalize_address
from mailmark.core.compose import Attachment
from mailmark.core.errors import InvalidInput, MessageTooLarge, NotFound, naming
from mailmark.core.mailboxes import MailboxService
from mailmark.core.merge_tags import MAX_VALUE, MAX_VARIABLES, render
from mailmark.core.model import Mailbox
from mailmark.core.ports import Clock, UnitOfWork
from mailmark.core.sender_groups import MAX_EMAILS, SenderGroupService
from mailmark.core.sending import Draft, SendingService, Submission, check_tags

MAX_CAMPAIGN = 1000  # recipients of one campaign request naming them in `to`
# A sender group's own recipients go in one request, however many the group holds, queued this
# many (each their own transaction) at a time, so that memory stays bounded.
CAMPAIGN_BATCH = 1000
MAX_SCHEDULE_AHEAD = timedelta(days=366)
# Attachment bytes one campaign request may build in all (each recipient's email carries them).
MAX_CAMPAIGN_ATTACHMENT_BYTES = 200 * 1024 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class AttachmentRequest:
    """An attachment as the API gives it: `content` in base64 (RFC 4648 §4, line breaks
    allowed); without `content_type`, one is guessed from the filename's extension."""

    filename: str
    content: str
    content_type: str | None = None
    content_id: str | None = None


class SendType(StrEnum):
    TRANSACTIONAL = "transactional"  # one email to every recipient
    CAMPAIGN = "campaign"  # one email per recipient, under one batch id


@dataclass(frozen=True)
class SendRequest:
    """What a caller asks to send. `cc` and `bcc` are None when not given at all (a campaign
    refuses even an empty list); `variables` maps a recipient to its merge-tag values."""

    subject: str
    from_address: str | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] | None = None
    bcc: tuple[str, ...] | None = None
    text: str | None = None
    html: str | None = None
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    type: SendType = SendType.TRANSACTIONAL
    variables: Mapping[str, Mapping[str, str]] | None = None
    sender_group_id: str | None = None
    scheduled_at_ms: int | None = None  # unix time in milliseconds, as the API gives it
    attachments: tuple[AttachmentRequest, ...] = ()
    tags: tuple[str, ...] = ()
    # Campaign sends only: opens and clicks tracked (None: yes). One-to-one mail is tracked as
    # its mailbox is set.
    track_opens: bool | None = None
    track_clicks: bool | None = None


@dataclass(frozen=True)
class SendingDomain:
    """The one domain the caller may send from (an API key's, say)."""

    id: int
    name: str


@dataclass(frozen=True)
class Skipped:
    """A campaign recipient not mailed, and why (`bounce`, `complaint`, `manual`,
    `unsubscribe`)."""

    email: str
    reason: str


@dataclass(frozen=True)
class Expansion:
    """The messages a request becomes, built batch by batch; `batch_id` groups a campaign's
    (None when transactional); `skipped` are the campaign recipients left out."""

    batch_id: str | None
    size: int
    build: Callable[[int, int], list[Draft]]
    skipped: list[Skipped] = field(default_factory=list)

    def batch(self, start: int, stop: int) -> list[Draft]:
        return self.build(start, min(stop, self.size))

    @property
    def drafts(self) -> list[Draft]:
        return self.batch(0, self.size)


@dataclass(frozen=True)
class Sent:
    submissions: list[Submission]
    batch_id: str | None
    skipped: list[Skipped] = field(default_factory=list)


# Writes more in the send's own transaction, just before it commits (an idempotency record).
BeforeCommit = Callable[[UnitOfWork, Sent], Awaitable[None]]


class CampaignExpansion:
    def __init__(
        self,
        sending: SendingService,
        mailboxes: MailboxService,
        sender_groups: SenderGroupService,
        clock: Clock,
    ) -> None:
        self._sending = sending
        self._mailboxes = mailboxes
        self._sender_groups = sender_groups
        self._clock = clock

    async def send(
        self,
        request: SendRequest,
        domain: SendingDomain,
        *,
        source: str = "api",
        before_commit: BeforeCommit | None = None,
    ) -> Sent:
        """Check and expand the request, then queue its messages: up to CAMPAIGN_BATCH in one
        transaction, all or none; a larger sender-group send in one transaction per
        CAMPAIGN_BATCH, the last of which runs `before_commit`."""
        expansion = await self.expand(request, domain)
        batch_id = expansion.batch_id
        submissions: list[Submission] = []

        async def record(uow: UnitOfWork, mine: list[Submission]) -> None:
            assert before_commit is not None
            await before_commit(uow, Sent([*submissions, *mine], batch_id, expansion.skipped))

        for start in range(0, expansion.size, CAMPAIGN_BATCH):
            last = start + CAMPAIGN_BATCH >= expansion.size
            submissions.extend(
                await self._sending.submit_many(
                    expansion.batch(start, start + CAMPAIGN_BATCH),
                    source=source,
                    before_commit=record if before_commit is not None and last else None,
                )
            )
        return Sent(submissions, batch_id, expansion.skipped)

    async def expand(self, request: SendRequest, domain: SendingDomain) -> Expansion:
        """The drafts the request becomes, or InvalidInput/NotFound naming the field at fault."""
        _check_fields(request)
        scheduled_at = scheduled_time(request.scheduled_at_ms, self._clock.now())
        attachments = _decoded(request.attachments)
        self._sending.check_attachments(attachments)
        tags = check_tags(request.tags)
        if request.type is SendType.TRANSACTIONAL:
            if request.sender_group_id is not None:
                raise InvalidInput("senderGroupId is for campaign sends.", field="senderGroupId")
            for name, given in (
                ("trackOpens", request.track_opens),
                ("trackClicks", request.track_clicks),
            ):
                if given is not None:
                    raise InvalidInput(
                        f"{name} is for campaign sends; one-to-one mail is tracked as its "
                        "mailbox is set.",
                        field=name,
                    )
            draft = Draft(
                mailbox=await self._sender(domain, request.from_address),
                to=request.to,
                cc=request.cc or (),
                bcc=request.bcc or (),
                subject=request.subject,
                text=request.text,
                html=request.html,
                reply_to=request.reply_to,
                headers=request.headers,
                scheduled_at=scheduled_at,
                attachments=attachments,
                tags=tags,
            )
            return Expansion(None, 1, lambda start, stop: [draft][start:stop])
        if request.cc is not None or request.bcc is not None:
            raise InvalidInput("A campaign email has one recipient: no cc or bcc.", field="cc")
        to = request.to
        senders: list[Mailbox]
        if request.sender_group_id is not None:
            with naming("senderGroupId"):
                group = await self._sender_groups.get(domain.id, request.sender_group_id)
            senders = group.mailboxes
            if not senders:
                raise InvalidInput("The sender group has no mailboxes.", field="senderGroupId")
            to = to or group.group.emails
        else:
            senders = [await self._sender(domain, request.from_address)]
        recipients = list({address.lower(): address for address in to}.values())
        if not recipients:
            raise InvalidInput("Give at least one recipient.", field="to")
        limit = MAX_EMAILS if request.sender_group_id is not None else MAX_CAMPAIGN
        if len(recipients) > limit:
            raise InvalidInput(f"At most {limit} recipients per campaign request.", field="to")
        attached = sum(len(a.content) for a in attachments) * len(recipients)
        if attached > MAX_CAMPAIGN_ATTACHMENT_BYTES:
            raise MessageTooLarge(
                f"The attachments of all the campaign's emails would hold {attached} bytes, over "
                f"the limit of {MAX_CAMPAIGN_ATTACHMENT_BYTES} per request.",
                field="attachments",
            )
        variables = {
            address.lower(): values for address, values in (request.variables or {}).items()
        }
        # A suppressed or unsubscribed recipient is left out and reported, not a refusal of all.
        suppressed = await self._sending.suppressed(senders[0], recipients, campaign=True)
        skipped = [
            Skipped(address, suppressed[address.lower()])
            for address in recipients
            if address.lower() in suppressed
        ]
        recipients = [address for address in recipients if address.lower() not in suppressed]
        batch_id = f"batch_{secrets.token_hex(12)}"
        track_opens = request.track_opens is not False
        track_clicks = request.track_clicks is not False

        def build(start: int, stop: int) -> list[Draft]:
            drafts = []
            for index in range(start, stop):
                recipient = recipients[index]
                values = variables.get(recipient.lower(), {})
                drafts.append(
                    Draft(
                        # PRODUCT.md "Sender Groups": sends rotate across the group's mailboxes.
                        mailbox=senders[index % len(senders)],
                        to=(recipient,),
                        subject=render(request.subject, values),
                        text=render(request.text, values) if request.text is not None else None,
                        html=render(request.html, values, html=True)
                        if request.html is not None
                        else None,
                        reply_to=request.reply_to,
                        headers=request.headers,
                        scheduled_at=scheduled_at,
                        batch_id=batch_id,
                        attachments=attachments,
                        tags=tags,
                        track_opens=track_opens,
                        track_clicks=track_clicks,
                        unsubscribe=True,
                    )
                )
            return drafts

        return Expansion(batch_id, len(recipients), build, skipped)

    async def _sender(self, domain: SendingDomain, address: str | None) -> Mailbox:
        if not address:
            raise InvalidInput("Give the sending mailbox's full address.", field="from")
        with naming("from"):
            normalized = normalize_address(address, "The from address")
            if normalized.rpartition("@")[2] != domain.name:
                raise NotFound(f"No mailbox {address} here.")
            return await self._mailboxes.get_recent(normalized)


def _check_fields(request: SendRequest) -> None:
    """The header-bound fields, each named in its error, then the body and the variables."""
    for name, values in (("to", request.to), ("cc", request.cc), ("bcc", request.bcc)):
        with naming(name):
            for value in values or ():
                normalize_address(value, f"The {name} address")
    with naming("subject"):
        check_header_value("The subject", request.subject)
    if request.reply_to is not None:
        with naming("replyTo"):
            normalize_address(request.reply_to, "The Reply-To address")
    with naming("headers"):
        for header, value in request.headers.items():
            check_header_value("A header name", header)
            check_header_value(f"The {header} header", value)
    if request.html is None and request.text is None:
        raise InvalidInput("Give html or text (or both).", field="html")
    if request.variables is not None:
        if request.type is not SendType.CAMPAIGN:
            raise InvalidInput("variables are for campaign sends.", field="variables")
        for given in request.variables.values():
            if len(given) > MAX_VARIABLES or any(len(v) > MAX_VALUE for v in given.values()):
                raise InvalidInput(
                    f"At most {MAX_VARIABLES} variables of {MAX_VALUE} characters per recipient.",
                    field="variables",
                )


def _decoded(given: tuple[AttachmentRequest, ...]) -> tuple[Attachment, ...]:
    """The attachments with their content decoded and a content type for each."""
    attachments = []
    for index, attachment in enumerate(given):
        try:
            content = base64.b64decode("".join(attachment.content.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(
                "The content is not valid base64.", field=f"attachments[{index}].content"
            ) from None
        content_type = attachment.content_type
        if content_type is None:
            content_type = mimetypes.guess_type(attachment.filename, strict=False)[0]
        attachments.append(
            Attachment(
                filename=attachment.filename,
                content=content,
                content_type=content_type or DEFAULT_CONTENT_TYPE,
                content_id=attachment.content_id,
            )
        )
    return tuple(attachments)


def scheduled_time(at_ms: int | None, now: datetime) -> datetime | None:
    """`scheduledAt` (unix ms) as a time: in the future, at most a year ahead."""
    if at_ms is None:
        return None
    if not 0 < at_ms < 10**14:
        raise InvalidInput("scheduledAt is a unix time in milliseconds.", field="scheduledAt")
    when = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    if when <= now:
        raise InvalidInput("scheduledAt must be in the future.", field="scheduledAt")
    if when > now + MAX_SCHEDULE_AHEAD:
        raise InvalidInput("scheduledAt is at most a year ahead.", field="scheduledAt")
    return when

"""POST /v1/send: transactional (one email to every recipient) or campaign (one per recipient).

Everything goes through `SendingService.submit_many` (sender ownership, quota, suppressions and
header checks live there), in one transaction with the Idempotency-Key record when one is given.
Header-bound fields are checked here first only to name the field at fault in the error.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
from litestar import Request, Response, post
from litestar.params import JSONBody

from mailmark.core.apikeys import ApiPrincipal
from mailmark.core.errors import Conflict, InvalidInput, NotFound
from mailmark.core.idempotency import FIELD, IdempotencyService, check_key, fingerprint
from mailmark.core.mailboxes import MailboxService
from mailmark.core.merge_tags import MAX_VALUE, MAX_VARIABLES, render
from mailmark.core.model import Mailbox
from mailmark.core.ports import Clock
from mailmark.core.sender_groups import SenderGroupService
from mailmark.core.addresses import check_header_value, normalize_address
from mailmark.core.sending import Draft, SendingService, Submission
from mailmark.web.api.v1.auth import Injected
from mailmark.web.api.v1.docs import samples
from mailmark.web.errors import naming

MAX_CAMPAIGN = 1000  # recipients of one campaign request, queued in one transaction
MAX_SCHEDULE_AHEAD = timedelta(days=366)
STATUS = 200

EXAMPLE_BODY = {
    "from": "hello@yourdomain.com",
    "to": ["recipient@example.com"],
    "subject": "Hello!",
    "html": "<p>Hello!</p><p>Sent via Mailmark API.</p>",
    "type": "transactional",
}


class SendIn(msgspec.Struct, rename="camel", kw_only=True):
    subject: str
    to: str | list[str] | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    html: str | None = None
    text: str | None = None
    cc: str | list[str] | None = None
    bcc: str | list[str] | None = None
    reply_to: str | None = None
    headers: dict[str, str] | None = None
    type: Literal["transactional", "campaign"] = "transactional"
    scheduled_at: int | None = None
    variables: dict[str, dict[str, str]] | None = None
    sender_group_id: str | None = None


class SendOut(msgspec.Struct, rename="camel", omit_defaults=True):
    status: str = "queued"
    message_id: str | None = None
    message_ids: list[str] | None = None
    batch_id: str | None = None


def _as_list(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _scheduled(at_ms: int | None, now: datetime) -> datetime | None:
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


def _check_fields(data: SendIn) -> None:
    """The header-bound fields, each named in its error (CR/LF/NUL → 422)."""
    for name, values in (("to", data.to), ("cc", data.cc), ("bcc", data.bcc)):
        with naming(name):
            for value in _as_list(values):
                normalize_address(value, f"The {name} address")
    with naming("subject"):
        check_header_value("The subject", data.subject)
    if data.reply_to is not None:
        with naming("replyTo"):
            normalize_address(data.reply_to, "The Reply-To address")
    with naming("headers"):
        for header, value in (data.headers or {}).items():
            check_header_value("A header name", header)
            check_header_value(f"The {header} header", value)
    if data.html is None and data.text is None:
        raise InvalidInput("Give html or text (or both).", field="html")
    if data.variables is not None:
        if data.type != "campaign":
            raise InvalidInput("variables are for campaign sends.", field="variables")
        for given in data.variables.values():
            if len(given) > MAX_VARIABLES or any(len(v) > MAX_VALUE for v in given.values()):
                raise InvalidInput(
                    f"At most {MAX_VARIABLES} variables of {MAX_VALUE} characters per recipient.",
                    field="variables",
                )


async def _sender(
    principal: ApiPrincipal, mailboxes: MailboxService, address: str | None
) -> Mailbox:
    if not address:
        raise InvalidInput("Give the sending mailbox's full address.", field="from")
    with naming("from"):
        normalized = normalize_address(address, "The from address")
        if normalized.rpartition("@")[2] != principal.domain_name:
            raise NotFound(f"No mailbox {address} here.")
        return await mailboxes.get_recent(normalized)


@post(
    "/send",
    operation_id="send",
    summary="Send an email or a campaign",
    tags=["Send"],
    status_code=STATUS,
    operation_class=samples(
        "POST",
        "/v1/send",
        body=EXAMPLE_BODY,
        response={"messageId": "5f1c…@yourdomain.com", "status": "queued"},
        sdk=(
            "await client.send({\n  from: 'hello@yourdomain.com',\n  to: 'recipient@example.com',"
            "\n  subject: 'Hello!',\n  html: '<p>Hello!</p>',\n});"
        ),
    ),
)
async def send(
    request: Request[Any, Any, Any],
    principal: Injected[ApiPrincipal],
    mailboxes: Injected[MailboxService],
    sending: Injected[SendingService],
    sender_groups: Injected[SenderGroupService],
    idempotency: Injected[IdempotencyService],
    clock: Injected[Clock],
    data: JSONBody[SendIn],
) -> Response[Any]:
    """Send now, or at `scheduledAt` (unix ms, in the future). `type: "transactional"` (default)
    sends one email to every recipient; `type: "campaign"` one individually addressed and tracked
    email per recipient under a shared `batchId`, merge tags such as `{{firstName}}` filled from
    `variables[recipient]`, taking turns among the mailboxes of `senderGroupId` when given.

    With an `Idempotency-Key` header, a retry with the same key and body gets the first answer
    and sends nothing; the same key with another body is refused (422)."""
    key = request.headers.get("idempotency-key")
    request_hash = ""
    if key is not None:
        check_key(key)
        request_hash = fingerprint(await request.body())
        stored = await idempotency.replay(principal.domain_id, key, request_hash)
        if stored is not None:
            return _replayed(stored.body, stored.status_code)
    _check_fields(data)
    scheduled_at = _scheduled(data.scheduled_at, clock.now())
    drafts, batch_id = await _drafts(principal, mailboxes, sender_groups, data, scheduled_at)

    def answer(submissions: list[Submission]) -> dict[str, object]:
        if batch_id is None:
            return {"messageId": submissions[0].message_id, "status": "queued"}
        return {
            "messageIds": [s.message_id for s in submissions],
            "batchId": batch_id,
            "status": "queued",
        }

    recorder = None
    if key is not None:
        recorder = idempotency.recorder(principal.domain_id, key, request_hash, STATUS, answer)
    try:
        submissions = await sending.submit_many(drafts, source="api", before_commit=recorder)
    except Conflict as error:
        if key is None or error.field != FIELD:
            raise
        # A concurrent request with the same key committed first: answer as it did.
        stored = await idempotency.replay(principal.domain_id, key, request_hash)
        if stored is None:
            raise
        return _replayed(stored.body, stored.status_code)
    return Response(answer(submissions), status_code=STATUS)


def _replayed(body: Mapping[str, object], status: int) -> Response[Any]:
    return Response(dict(body), status_code=status, headers={"Idempotent-Replayed": "true"})


async def _drafts(
    principal: ApiPrincipal,
    mailboxes: MailboxService,
    sender_groups: SenderGroupService,
    data: SendIn,
    scheduled_at: datetime | None,
) -> tuple[list[Draft], str | None]:
    to = _as_list(data.to)
    extra = data.headers or {}
    if data.type == "transactional":
        if data.sender_group_id is not None:
            raise InvalidInput("senderGroupId is for campaign sends.", field="senderGroupId")
        mailbox = await _sender(principal, mailboxes, data.from_)
        draft = Draft(
            mailbox=mailbox,
            to=to,
            cc=_as_list(data.cc),
            bcc=_as_list(data.bcc),
            subject=data.subject,
            text=data.text,
            html=data.html,
            reply_to=data.reply_to,
            headers=extra,
            scheduled_at=scheduled_at,
        )
        return [draft], None
    if data.cc is not None or data.bcc is not None:
        raise InvalidInput("A campaign email has one recipient: no cc or bcc.", field="cc")
    senders: list[Mailbox]
    if data.sender_group_id is not None:
        with naming("senderGroupId"):
            group = await sender_groups.get(principal.domain_id, data.sender_group_id)
        senders = group.mailboxes
        if not senders:
            raise InvalidInput("The sender group has no mailboxes.", field="senderGroupId")
        to = to or group.group.emails
    else:
        senders = [await _sender(principal, mailboxes, data.from_)]
    recipients = list({address.lower(): address for address in to}.values())
    if not recipients:
        raise InvalidInput("Give at least one recipient.", field="to")
    if len(recipients) > MAX_CAMPAIGN:
        raise InvalidInput(
            f"At most {MAX_CAMPAIGN} recipients per campaign request.", field="to"
        )
    variables = {address.lower(): values for address, values in (data.variables or {}).items()}
    batch_id = f"batch_{secrets.token_hex(12)}"
    drafts = []
    for index, recipient in enumerate(recipients):
        values = variables.get(recipient.lower(), {})
        drafts.append(
            Draft(
                # PRODUCT.md "Sender Groups": sends rotate across the group's mailboxes.
                mailbox=senders[index % len(senders)],
                to=(recipient,),
                subject=render(data.subject, values),
                text=render(data.text, values) if data.text is not None else None,
                html=render(data.html, values, html=True) if data.html is not None else None,
                reply_to=data.reply_to,
                headers=extra,
                scheduled_at=scheduled_at,
                batch_id=batch_id,
            )
        )
    return drafts, batch_id

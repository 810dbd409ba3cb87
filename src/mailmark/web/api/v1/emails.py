"""GET /v1/emails (newest first, cursor pages, filters), GET /v1/emails/{id}, and cancelling or
rescheduling a scheduled email while it waits for its first attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from mailmark.core.apikeys import ApiPrincipal
from mailmark.core.emails import Cancellation, EmailService
from mailmark.core.model import EmailEvent, EmailRecipient, SentEmail
from mailmark.web.api.v1.auth import Injected
from mailmark.web.api.v1.docs import samples

EXAMPLE = {
    "_id": "42",
    "messageId": "5f1c…@yourdomain.com",
    "from": "hello@yourdomain.com",
    "to": ["recipient@example.com"],
    "subject": "Hello!",
    "status": "delivered",
    "batchId": None,
    "tags": ["welcome"],
    "createdAt": "2026-12-03T13:00:00+00:00",
    "scheduledAt": None,
}


class EmailOut(msgspec.Struct, rename="camel"):
    id: str = msgspec.field(name="_id")
    message_id: str | None = None
    from_: str = msgspec.field(default="", name="from")
    to: list[str] = msgspec.field(default_factory=list)
    subject: str | None = None
    status: str = "queued"
    batch_id: str | None = None
    source: str = "api"
    created_at: datetime | None = None
    scheduled_at: datetime | None = None
    tags: list[str] = msgspec.field(default_factory=list)


class EmailPage(msgspec.Struct, rename="camel"):
    data: list[EmailOut]
    next_cursor: str | None


class RecipientOut(msgspec.Struct, rename="camel"):
    address: str
    status: str
    attempts: int
    updated_at: datetime
    last_code: int | None
    last_status: str | None
    last_reply: str | None


class EventOut(msgspec.Struct, rename="camel"):
    type: str
    created_at: datetime
    data: dict[str, object]


class EmailDetail(EmailOut, kw_only=True):
    recipients: list[RecipientOut]
    events: list[EventOut]


class NotCanceledOut(msgspec.Struct):
    address: str
    status: str


class CancellationOut(msgspec.Struct, rename="camel"):
    id: str = msgspec.field(name="_id")
    message_id: str | None = None
    status: str = "canceled"
    canceled: list[str] = msgspec.field(default_factory=list)
    not_canceled: list[NotCanceledOut] = msgspec.field(default_factory=list)


class EmailPatch(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    scheduled_at: int  # unix time in milliseconds, as in /v1/send


def cancellation_out(done: Cancellation) -> CancellationOut:
    return CancellationOut(
        id=str(done.email.id),
        message_id=done.email.message_id,
        status=done.email.status,
        canceled=done.canceled,
        not_canceled=[NotCanceledOut(e.recipient, e.status) for e in done.not_canceled],
    )


def email_out(email: SentEmail) -> EmailOut:
    return EmailOut(
        id=str(email.id),
        message_id=email.message_id,
        from_=email.from_addr,
        to=[r.address for r in email.recipients],
        subject=email.subject,
        status=email.status,
        batch_id=email.batch_id,
        source=email.source,
        created_at=email.created_at,
        scheduled_at=email.scheduled_at,
        tags=list(email.tags),
    )


def _recipient(r: EmailRecipient) -> RecipientOut:
    return RecipientOut(
        r.address, r.status, r.attempts, r.updated_at, r.last_code, r.last_status, r.last_reply
    )


def _event(event: EmailEvent) -> EventOut:
    return EventOut(event.type, event.created_at, event.payload)


class EmailController(Controller):
    path = "/emails"
    tags = ("Emails",)

    @get(
        operation_id="listEmails",
        summary="List sent emails",
        operation_class=samples(
            "GET",
            "/v1/emails?tag=welcome&limit=20",
            response={"data": [EXAMPLE], "nextCursor": None},
            sdk="const page = await client.listEmails({ tag: 'welcome', limit: 20 });",
        ),
    )
    async def list_emails(
        self,
        principal: Injected[ApiPrincipal],
        emails: Injected[EmailService],
        status: FromQuery[str | None] = None,
        from_: Annotated[str | None, Parameter(query="from")] = None,
        batch_id: Annotated[str | None, Parameter(query="batchId")] = None,
        tag: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> EmailPage:
        """The domain's sent emails, newest first; filter by `status` (any recipient in it),
        `from`, `batchId` or `tag`; pass `nextCursor` back as `cursor` for the next page."""
        page = await emails.sent(
            principal.domain_id,
            cursor=cursor,
            limit=limit,
            status=status,
            from_addr=from_,
            batch_id=batch_id,
            tag=tag,
        )
        return EmailPage([email_out(e) for e in page.items], page.next_cursor)

    @get(
        "/{email_id:str}",
        operation_id="getEmail",
        summary="Get a sent email with its recipients and events",
        operation_class=samples(
            "GET",
            "/v1/emails/42",
            response={**EXAMPLE, "recipients": [], "events": []},
            sdk="const email = await client.getEmail('42');",
        ),
    )
    async def get_email(
        self,
        principal: Injected[ApiPrincipal],
        emails: Injected[EmailService],
        email_id: FromPath[str],
    ) -> EmailDetail:
        """One sent email by `_id` or `messageId`: each recipient's delivery status, and the
        event timeline (sent, deferred, delivered, bounced, …), oldest first."""
        email, events = await emails.get(principal.domain_id, email_id)
        return EmailDetail(
            **msgspec.structs.asdict(email_out(email)),
            recipients=[_recipient(r) for r in email.recipients],
            events=[_event(e) for e in events],
        )

    @post(
        "/{email_id:str}/cancel",
        operation_id="cancelEmail",
        summary="Cancel a scheduled email",
        status_code=200,
        operation_class=samples(
            "POST",
            "/v1/emails/42/cancel",
            response={
                "_id": "42",
                "messageId": EXAMPLE["messageId"],
                "status": "canceled",
                "canceled": ["recipient@example.com"],
                "notCanceled": [],
            },
            sdk="const result = await client.cancelEmail('42');",
        ),
    )
    async def cancel_email(
        self,
        principal: Injected[ApiPrincipal],
        emails: Injected[EmailService],
        email_id: FromPath[str],
    ) -> CancellationOut:
        """Withdraw, by `_id` or `messageId`, every recipient still waiting for its first
        attempt: `canceled` lists them (each gets an `email.canceled` event), `notCanceled` the
        others with their status (already attempted, being attempted, or canceled before).
        409 when no recipient was waiting."""
        return cancellation_out(await emails.cancel(principal.domain_id, email_id))

    @patch(
        "/{email_id:str}",
        operation_id="rescheduleEmail",
        summary="Reschedule a scheduled email",
        operation_class=samples(
            "PATCH",
            "/v1/emails/42",
            body={"scheduledAt": 1750000000000},
            response={**EXAMPLE, "status": "queued", "scheduledAt": "2025-06-15T15:06:40+00:00"},
            sdk="const email = await client.rescheduleEmail('42', new Date('2025-06-15T15:06:40Z'));",
        ),
    )
    async def reschedule_email(
        self,
        principal: Injected[ApiPrincipal],
        emails: Injected[EmailService],
        email_id: FromPath[str],
        data: JSONBody[EmailPatch],
    ) -> EmailOut:
        """Move the first attempt of every recipient still waiting for it to `scheduledAt` (unix
        ms, in the future, at most a year ahead, as in /v1/send). 409 when no recipient is
        waiting any more."""
        return email_out(await emails.reschedule(principal.domain_id, email_id, data.scheduled_at))

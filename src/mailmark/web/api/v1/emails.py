"""GET /v1/emails (newest first, cursor pages, filters) and GET /v1/emails/{id}."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.params import FromPath, FromQuery, Parameter

from mailmark.core.apikeys import ApiPrincipal
from mailmark.core.emails import EmailService
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

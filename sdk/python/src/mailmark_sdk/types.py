"""What the API returns, as typed values (snake_case attributes over the API's camelCase JSON)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

SendType = Literal["transactional", "campaign"]


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _strs(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    return [str(item) for item in value] if isinstance(value, list) else []


@dataclass(frozen=True)
class Mailbox:
    id: str
    #: The local part, e.g. ``hello``.
    address: str
    #: The full address, e.g. ``hello@yourdomain.com``.
    full_address: str
    display_name: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Mailbox:
        return cls(
            id=_str(data, "_id"),
            address=_str(data, "address"),
            full_address=_str(data, "fullAddress"),
            display_name=_str(data, "displayName"),
        )


@dataclass(frozen=True)
class Alias:
    """An address that delivers to one or more mailboxes of the domain."""

    id: str
    #: The local part, e.g. ``team``.
    address: str
    #: The full address, e.g. ``team@yourdomain.com``.
    full_address: str
    #: Full addresses of the mailboxes it delivers to.
    targets: list[str]
    created_at: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alias:
        return cls(
            id=_str(data, "_id"),
            address=_str(data, "address"),
            full_address=_str(data, "fullAddress"),
            targets=_strs(data, "targets"),
            created_at=_str(data, "createdAt"),
        )


@dataclass(frozen=True)
class SenderGroup:
    id: str
    name: str
    #: Full addresses of the sender mailboxes.
    mailboxes: list[str]
    #: The recipient list.
    emails: list[str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SenderGroup:
        return cls(
            id=_str(data, "_id"),
            name=_str(data, "name"),
            mailboxes=_strs(data, "mailboxes"),
            emails=_strs(data, "emails"),
        )


@dataclass(frozen=True)
class Attachment:
    """A file to send with an email: its bytes as `content`, or a `path` to read them from
    (then `filename` defaults to the file's name). A `content_id` makes it an inline image the
    HTML shows as ``<img src="cid:<content_id>">``. Without `content_type` the server guesses one
    from the filename."""

    filename: str | None = None
    content: bytes | None = None
    path: str | os.PathLike[str] | None = None
    content_type: str | None = None
    content_id: str | None = None

    def to_json(self) -> dict[str, str]:
        if (self.content is None) == (self.path is None):
            raise ValueError("an attachment needs either content or path")
        content = self.content if self.content is not None else Path(self.path or "").read_bytes()
        filename = self.filename or (Path(self.path).name if self.path is not None else None)
        if not filename:
            raise ValueError("an attachment given by content needs a filename")
        body = {"filename": filename, "content": base64.b64encode(content).decode("ascii")}
        if self.content_type is not None:
            body["contentType"] = self.content_type
        if self.content_id is not None:
            body["contentId"] = self.content_id
        return body


@dataclass(frozen=True)
class SendResult:
    """A transactional send: one message to every recipient."""

    message_id: str
    status: str


@dataclass(frozen=True)
class CampaignSendResult:
    """A campaign send: one individually addressed message per recipient, under one batch."""

    message_ids: list[str]
    batch_id: str
    status: str
    # Recipients left out: (address, reason: bounce, complaint, manual or unsubscribe).
    skipped: list[tuple[str, str]] = field(default_factory=list)


def send_result_from_json(data: dict[str, Any]) -> SendResult | CampaignSendResult:
    if "messageIds" in data:
        return CampaignSendResult(
            message_ids=_strs(data, "messageIds"),
            batch_id=_str(data, "batchId"),
            status=_str(data, "status"),
            skipped=[
                (_str(item, "email"), _str(item, "reason"))
                for item in data.get("skipped") or []
                if isinstance(item, dict)
            ],
        )
    return SendResult(message_id=_str(data, "messageId"), status=_str(data, "status"))


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Email:
    """A sent email; `raw` keeps every field the server returned."""

    id: str
    #: The Message-ID header.
    message_id: str | None
    from_: str
    to: list[str]
    subject: str | None
    #: Where its least advanced recipient stands: queued, deferred, bounced, delivered, ...
    status: str
    batch_id: str | None
    #: How it was sent: api, campaign, submission, ...
    source: str
    created_at: str | None
    scheduled_at: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    #: The tags given when it was sent.
    tags: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Email:
        return cls(
            id=_str(data, "_id"),
            message_id=_opt_str(data, "messageId"),
            from_=_str(data, "from"),
            to=_strs(data, "to"),
            subject=_opt_str(data, "subject"),
            status=_str(data, "status"),
            batch_id=_opt_str(data, "batchId"),
            source=_str(data, "source"),
            created_at=_opt_str(data, "createdAt"),
            scheduled_at=_opt_str(data, "scheduledAt"),
            raw=data,
            tags=_strs(data, "tags") if "tags" in data else [],
        )


@dataclass(frozen=True)
class EmailRecipient:
    address: str
    status: str
    attempts: int
    updated_at: str
    last_code: int | None
    last_status: str | None
    last_reply: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmailRecipient:
        return cls(
            address=_str(data, "address"),
            status=_str(data, "status"),
            attempts=_opt_int(data, "attempts") or 0,
            updated_at=_str(data, "updatedAt"),
            last_code=_opt_int(data, "lastCode"),
            last_status=_opt_str(data, "lastStatus"),
            last_reply=_opt_str(data, "lastReply"),
        )


@dataclass(frozen=True)
class EmailEvent:
    type: str
    created_at: str
    data: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmailEvent:
        details = data.get("data")
        return cls(
            _str(data, "type"),
            _str(data, "createdAt"),
            details if isinstance(details, dict) else {},
        )


@dataclass(frozen=True)
class EmailDetail:
    """One sent email with each recipient's delivery and the event timeline, oldest first."""

    email: Email
    recipients: list[EmailRecipient]
    events: list[EmailEvent]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmailDetail:
        recipients = data.get("recipients")
        events = data.get("events")
        return cls(
            email=Email.from_json(data),
            recipients=[EmailRecipient.from_json(r) for r in recipients if isinstance(r, dict)]
            if isinstance(recipients, list)
            else [],
            events=[EmailEvent.from_json(e) for e in events if isinstance(e, dict)]
            if isinstance(events, list)
            else [],
        )


@dataclass(frozen=True)
class EmailPage:
    data: list[Email]
    #: Pass as ``cursor`` to get the next page; None on the last page.
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmailPage:
        items = data.get("data")
        cursor = data.get("nextCursor")
        return cls(
            data=[Email.from_json(item) for item in items if isinstance(item, dict)]
            if isinstance(items, list)
            else [],
            next_cursor=cursor if isinstance(cursor, str) else None,
        )


@dataclass(frozen=True)
class WebhookDelivery:
    event_id: str
    event: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    created_at: str
    updated_at: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookDelivery:
        return cls(
            event_id=_str(data, "eventId"),
            event=_str(data, "event"),
            status=_str(data, "status"),
            attempts=_opt_int(data, "attempts") or 0,
            last_status_code=_opt_int(data, "lastStatusCode"),
            last_error=_opt_str(data, "lastError"),
            next_attempt_at=_opt_str(data, "nextAttemptAt"),
            created_at=_str(data, "createdAt"),
            updated_at=_str(data, "updatedAt"),
        )


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    events: list[str]
    created_at: str
    #: Recent deliveries (listings only).
    deliveries: list[WebhookDelivery]
    #: The signing secret: in the answer to `create_webhook` only, never again.
    secret: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Webhook:
        deliveries = data.get("deliveries")
        return cls(
            id=_str(data, "id"),
            url=_str(data, "url"),
            events=_strs(data, "events"),
            created_at=_str(data, "createdAt"),
            deliveries=[WebhookDelivery.from_json(d) for d in deliveries if isinstance(d, dict)]
            if isinstance(deliveries, list)
            else [],
            secret=_opt_str(data, "secret"),
        )


@dataclass(frozen=True)
class Suppression:
    address: str
    #: Why mail to it stopped: ``bounce``, ``complaint`` or ``manual``.
    reason: str
    detail: str
    created_at: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Suppression:
        return cls(
            _str(data, "address"),
            _str(data, "reason"),
            _str(data, "detail"),
            _str(data, "createdAt"),
        )


@dataclass(frozen=True)
class SuppressionPage:
    data: list[Suppression]
    #: Pass as ``cursor`` to get the next page; None on the last page.
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SuppressionPage:
        items = data.get("data")
        return cls(
            data=[Suppression.from_json(item) for item in items if isinstance(item, dict)]
            if isinstance(items, list)
            else [],
            next_cursor=_opt_str(data, "nextCursor"),
        )


@dataclass(frozen=True)
class NotCanceled:
    """A recipient a cancel left alone, with its status (attempted, or being attempted)."""

    address: str
    status: str


@dataclass(frozen=True)
class CancelResult:
    """What cancelling an email did."""

    id: str
    message_id: str | None
    #: The email's status afterwards (``canceled`` unless some recipients were already tried).
    status: str
    #: The recipients withdrawn: each gets an ``email.canceled`` event.
    canceled: list[str]
    not_canceled: list[NotCanceled]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CancelResult:
        others = data.get("notCanceled")
        return cls(
            id=_str(data, "_id"),
            message_id=_opt_str(data, "messageId"),
            status=_str(data, "status"),
            canceled=_strs(data, "canceled"),
            not_canceled=[
                NotCanceled(_str(item, "address"), _str(item, "status"))
                for item in others
                if isinstance(item, dict)
            ]
            if isinstance(others, list)
            else [],
        )


#: A custom field's value on a contact.
FieldValue = str | int | float | bool | None


@dataclass(frozen=True)
class Contact:
    id: str
    email: str
    first_name: str
    last_name: str
    company: str
    fields: dict[str, FieldValue]
    tags: list[str]
    #: "subscribed", "unsubscribed", "bounced" or "complained".
    status: str
    #: On the account's suppression list: never mailed, whatever the status.
    suppressed: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Contact:
        fields = data.get("fields")
        return cls(
            id=_str(data, "_id"),
            email=_str(data, "email"),
            first_name=_str(data, "firstName"),
            last_name=_str(data, "lastName"),
            company=_str(data, "company"),
            fields=dict(fields) if isinstance(fields, dict) else {},
            tags=_strs(data, "tags"),
            status=_str(data, "status"),
            suppressed=data.get("suppressed") is True,
        )


@dataclass(frozen=True)
class ContactPage:
    data: list[Contact]
    #: Pass as ``cursor`` to get the next page; None on the last page.
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContactPage:
        items = data.get("data")
        return cls(
            data=[Contact.from_json(item) for item in items if isinstance(item, dict)]
            if isinstance(items, list)
            else [],
            next_cursor=_opt_str(data, "nextCursor"),
        )


@dataclass(frozen=True)
class ContactList:
    id: str
    name: str
    #: A segment's saved filter; None for a list with members of its own.
    filter: dict[str, Any] | None
    size: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContactList:
        saved = data.get("filter")
        return cls(
            id=_str(data, "_id"),
            name=_str(data, "name"),
            filter=dict(saved) if isinstance(saved, dict) else None,
            size=_opt_int(data, "size") or 0,
        )


@dataclass(frozen=True)
class RowError:
    #: The row as a spreadsheet numbers it (the header is row 1).
    row: int
    reason: str


@dataclass(frozen=True)
class ContactImport:
    id: str
    #: "running", "done" or "failed".
    status: str
    mapping: dict[str, str]
    total_bytes: int
    bytes_read: int
    rows_done: int
    created: int
    updated: int
    skipped: int
    failed: int
    errors: list[RowError]
    #: Why the file as a whole could not be read (empty unless status is "failed").
    failure: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContactImport:
        mapping = data.get("mapping")
        errors = data.get("errors")
        return cls(
            id=_str(data, "_id"),
            status=_str(data, "status"),
            mapping=dict(mapping) if isinstance(mapping, dict) else {},
            total_bytes=_opt_int(data, "totalBytes") or 0,
            bytes_read=_opt_int(data, "bytesRead") or 0,
            rows_done=_opt_int(data, "rowsDone") or 0,
            created=_opt_int(data, "created") or 0,
            updated=_opt_int(data, "updated") or 0,
            skipped=_opt_int(data, "skipped") or 0,
            failed=_opt_int(data, "failed") or 0,
            errors=[
                RowError(int(e.get("row", 0)), str(e.get("reason", "")))
                for e in errors
                if isinstance(e, dict)
            ]
            if isinstance(errors, list)
            else [],
            failure=str(data.get("failure") or ""),
        )


@dataclass(frozen=True)
class Campaign:
    """A multi-stage campaign; `stages`, `audience` and `schedule` are as the API spells them."""

    id: str
    name: str
    #: "draft", "running", "paused", "completed" or "canceled".
    status: str
    #: Why a paused campaign is paused (by its owner, a guardrail, the plan's quota).
    pause_reason: str
    from_address: str | None
    sender_group_id: str | None
    stages: list[dict[str, Any]]
    audience: dict[str, Any]
    schedule: dict[str, Any]
    #: The `batchId` of its emails (``list_emails(batch_id=...)``).
    batch_id: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Campaign:
        stages = data.get("stages")
        audience = data.get("audience")
        schedule = data.get("schedule")
        return cls(
            id=_str(data, "_id"),
            name=_str(data, "name"),
            status=_str(data, "status"),
            pause_reason=_str(data, "pauseReason"),
            from_address=_opt_str(data, "from"),
            sender_group_id=_opt_str(data, "senderGroupId"),
            stages=[dict(s) for s in stages if isinstance(s, dict)]
            if isinstance(stages, list)
            else [],
            audience=dict(audience) if isinstance(audience, dict) else {},
            schedule=dict(schedule) if isinstance(schedule, dict) else {},
            batch_id=_str(data, "batchId"),
        )


@dataclass(frozen=True)
class CampaignPage:
    data: list[Campaign]
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CampaignPage:
        items = data.get("data")
        return cls(
            data=[Campaign.from_json(item) for item in items if isinstance(item, dict)]
            if isinstance(items, list)
            else [],
            next_cursor=_opt_str(data, "nextCursor"),
        )


@dataclass(frozen=True)
class CampaignRecipient:
    id: str
    email: str
    contact_id: str | None
    #: "active", "completed", "replied", "bounced", "complained", "unsubscribed", …
    state: str
    stages_sent: int
    next_stage: int
    stop_reason: str
    auto_replies: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CampaignRecipient:
        return cls(
            id=_str(data, "_id"),
            email=_str(data, "email"),
            contact_id=_opt_str(data, "contactId"),
            state=_str(data, "state"),
            stages_sent=_opt_int(data, "stagesSent") or 0,
            next_stage=_opt_int(data, "nextStage") or 1,
            stop_reason=_str(data, "stopReason"),
            auto_replies=_opt_int(data, "autoReplies") or 0,
        )


@dataclass(frozen=True)
class CampaignRecipientPage:
    data: list[CampaignRecipient]
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CampaignRecipientPage:
        items = data.get("data")
        return cls(
            data=[CampaignRecipient.from_json(item) for item in items if isinstance(item, dict)]
            if isinstance(items, list)
            else [],
            next_cursor=_opt_str(data, "nextCursor"),
        )

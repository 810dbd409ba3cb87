"""What the API returns, as typed values (snake_case attributes over the API's camelCase JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
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


def send_result_from_json(data: dict[str, Any]) -> SendResult | CampaignSendResult:
    if "messageIds" in data:
        return CampaignSendResult(
            message_ids=_strs(data, "messageIds"),
            batch_id=_str(data, "batchId"),
            status=_str(data, "status"),
        )
    return SendResult(message_id=_str(data, "messageId"), status=_str(data, "status"))


@dataclass(frozen=True)
class Email:
    """A sent email; `raw` keeps every field the server returned."""

    id: str
    from_: str
    to: list[str]
    subject: str
    status: str
    batch_id: str | None
    created_at: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Email:
        batch_id = data.get("batchId")
        return cls(
            id=_str(data, "_id"),
            from_=_str(data, "from"),
            to=_strs(data, "to"),
            subject=_str(data, "subject"),
            status=_str(data, "status"),
            batch_id=batch_id if isinstance(batch_id, str) else None,
            created_at=_str(data, "createdAt"),
            raw=data,
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

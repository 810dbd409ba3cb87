"""What a domain has sent, for the API: sent emails with per-recipient status and timeline, and
the suppression list. Every query is scoped to one domain; anything outside it is NotFound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from mailmark.core.addresses import normalize_address
from mailmark.core.errors import InvalidInput, NotFound
from mailmark.core.model import EmailEvent, SentEmail, Suppression
from mailmark.core.ports import UnitOfWorkFactory
from mailmark.core.sending import TAG, TAG_RULE
from mailmark.core.states import DeliveryStatus

DEFAULT_PAGE = 50
MAX_PAGE = 100
MAX_TIMELINE = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # pass as `cursor` for the next page; None on the last one


def page_size(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit is between 1 and {MAX_PAGE}.", field="limit")
    return limit


def cursor_id(cursor: str | None) -> int | None:
    """Cursors are opaque to callers; here they are the last id of the previous page."""
    if cursor is None or cursor == "":
        return None
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
        raise InvalidInput("This cursor was not given by this API.", field="cursor")
    return int(cursor)


class EmailService:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def sent(
        self,
        domain_id: int,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        status: str | None = None,
        from_addr: str | None = None,
        batch_id: str | None = None,
        tag: str | None = None,
    ) -> Page[SentEmail]:
        """The domain's sent emails, newest first."""
        size = page_size(limit)
        before = cursor_id(cursor)
        if status is not None and status not in set(DeliveryStatus):
            raise InvalidInput(f"status is one of {', '.join(DeliveryStatus)}.", field="status")
        if tag is not None and not TAG.match(tag):
            raise InvalidInput(TAG_RULE, field="tag")
        # PostgreSQL refuses NUL in text: such a filter could only fail, never match.
        for name, value in (("from", from_addr), ("batchId", batch_id)):
            if value is not None and "\0" in value:
                raise InvalidInput(f"{name} must not contain NUL characters.", field=name)
        async with self._uow(read_only=True) as uow:
            emails = await uow.sent_emails.list_for_domain(
                domain_id,
                before_id=before,
                limit=size + 1,
                status=status,
                from_addr=from_addr,
                batch_id=batch_id,
                tag=tag,
            )
        more = len(emails) > size
        emails = emails[:size]
        return Page(emails, str(emails[-1].id) if more else None)

    async def get(self, domain_id: int, email_id: str) -> tuple[SentEmail, list[EmailEvent]]:
        """One email by its id or its Message-ID, with its event timeline (oldest first)."""
        async with self._uow(read_only=True) as uow:
            if email_id.isascii() and email_id.isdigit() and len(email_id) <= 18:
                email = await uow.sent_emails.get(domain_id, int(email_id))
            else:
                email = await uow.sent_emails.get_by_message_id(domain_id, email_id.strip("<>"))
            if email is None:
                raise NotFound(f"No email {email_id} here.")
            return email, await uow.sent_emails.events(email.id, MAX_TIMELINE)

    async def suppressions(
        self, domain_id: int, *, cursor: str | None = None, limit: int | None = None
    ) -> Page[Suppression]:
        size = page_size(limit)
        after = cursor_id(cursor)
        async with self._uow(read_only=True) as uow:
            found = await uow.suppressions.list_for_domain(domain_id, after, size + 1)
        more = len(found) > size
        found = found[:size]
        return Page(found, str(found[-1].id) if more and found[-1].id else None)

    async def unsuppress(self, domain_id: int, address: str) -> None:
        """Mail the address again. NotFound when it is not suppressed."""
        try:
            normalized = normalize_address(address).lower()
        except InvalidInput:
            raise NotFound(f"{address} is not on the suppression list.") from None
        async with self._uow() as uow:
            removed = await uow.suppressions.delete(domain_id, normalized)
            await uow.commit()
        if not removed:
            raise NotFound(f"{address} is not on the suppression list.")

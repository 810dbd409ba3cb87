"""What a domain has sent, for the API: sent emails with per-recipient status and timeline,
cancelling or rescheduling a scheduled one, and the suppression list. Every query is scoped to one
domain; anything outside it is NotFound."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from mailmark.core.addresses import normalize_address
from mailmark.core.campaigns import scheduled_time
from mailmark.core.errors import Conflict, InvalidInput, NotFound
from mailmark.core.events import record_events
from mailmark.core.model import EmailEvent, QueueEntry, SentEmail, Suppression
from mailmark.core.ports import Clock, NewEvent, UnitOfWork, UnitOfWorkFactory
from mailmark.core.queue import OutboundQueue
from mailmark.core.sending import TAG, TAG_RULE
from mailmark.core.states import DeliveryStatus, EventType

DEFAULT_PAGE = 50
MAX_PAGE = 100
MAX_TIMELINE = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # pass as `cursor` for the next page; None on the last one


@dataclass(frozen=True)
class Cancellation:
    """What cancelling an email did: the recipients it withdrew, and those it could not."""

    email: SentEmail  # as it stands after the cancellation
    canceled: list[str]
    not_canceled: list[QueueEntry]


def untried(entry: QueueEntry) -> bool:
    """Whether a recipient is still only waiting for its first attempt (queued, or held while its
    account may not send). Leasing a row counts an attempt, so a row a worker holds (or held, and
    may have sent) is never untried."""
    return (
        entry.status in (DeliveryStatus.QUEUED, DeliveryStatus.HELD)
        and entry.attempts == 0
        and not entry.lease_owner
    )


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
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, queue: OutboundQueue) -> None:
        self._uow = uow
        self._clock = clock
        self._queue = queue

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
            email = await _find(uow, domain_id, email_id)
            return email, await uow.sent_emails.events(email.id, MAX_TIMELINE)

    async def cancel(self, domain_id: int, email_id: str) -> Cancellation:
        """Withdraw every recipient still waiting for its first attempt, in one transaction, with
        an `email.canceled` event each. Conflict when there is none left to withdraw."""
        now = self._clock.now()
        async with self._uow() as uow:
            email = await _find(uow, domain_id, email_id)
            entries = await uow.deliveries.for_outbound(email.id, lock=True)
            waiting = [entry for entry in entries if untried(entry)]
            if not waiting:
                raise Conflict(
                    f"Email {email_id} has no recipient waiting for its first attempt: it was "
                    "already sent or canceled, so nothing was canceled."
                )
            outbound = await uow.outbound.get(email.id)
            assert outbound is not None  # found above, in this transaction
            await uow.deliveries.cancel([entry.id for entry in waiting], now)
            await record_events(
                uow,
                [_canceled_event(outbound.account_id, email, e, now) for e in waiting],
            )
            after = await _find(uow, domain_id, str(email.id))
            await uow.commit()
        return Cancellation(
            after,
            [entry.recipient for entry in waiting],
            [entry for entry in entries if not untried(entry)],
        )

    async def reschedule(self, domain_id: int, email_id: str, scheduled_at_ms: int) -> SentEmail:
        """Move the first attempt of every recipient still waiting for it to `scheduled_at_ms`
        (the rules of /v1/send's `scheduledAt`). Conflict when no recipient is waiting."""
        now = self._clock.now()
        when = scheduled_time(scheduled_at_ms, now)
        assert when is not None  # a time was given
        async with self._uow() as uow:
            email = await _find(uow, domain_id, email_id)
            entries = await uow.deliveries.for_outbound(email.id, lock=True)
            waiting = [entry.id for entry in entries if untried(entry)]
            if not waiting:
                raise Conflict(
                    f"Email {email_id} has no recipient waiting for its first attempt: it was "
                    "already sent or canceled, so it cannot be rescheduled."
                )
            await uow.deliveries.reschedule(waiting, when, self._queue.expires_at(when), now)
            after = await _find(uow, domain_id, str(email.id))
            await uow.commit()
        # The workers may be asleep until the old time.
        self._queue.kick()
        return after

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


async def _find(uow: UnitOfWork, domain_id: int, email_id: str) -> SentEmail:
    """The domain's email by its id or its Message-ID (with or without angle brackets)."""
    if email_id.isascii() and email_id.isdigit() and len(email_id) <= 18:
        email = await uow.sent_emails.get(domain_id, int(email_id))
    else:
        email = await uow.sent_emails.get_by_message_id(domain_id, email_id.strip("<>"))
    if email is None:
        raise NotFound(f"No email {email_id} here.")
    return email


def _canceled_event(
    account_id: int, email: SentEmail, entry: QueueEntry, now: datetime
) -> NewEvent:
    payload: dict[str, object] = {
        "to": entry.recipient,
        "messageId": email.message_id,
        "status": DeliveryStatus.CANCELED,
    }
    return NewEvent(account_id, EventType.CANCELED, payload, now, outbound_id=email.id)

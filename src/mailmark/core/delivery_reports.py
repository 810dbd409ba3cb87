"""Telling senders what became of their mail, and learning it from reports that come back.

Recipients the queue gives up on are listed in one RFC 3464 report per message, filed in the
sender's INBOX. DSN and ARF reports that remote servers send to a message's VERP return path
(bounce+<token>@…) turn its recipients bounced or complained. Either way an address whose refusal
was permanent, or whose owner complained, is suppressed for the sending domain.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime

from mailmark.core.bounce_reports import BounceReport
from mailmark.core.delivery import InboundDelivery
from mailmark.core.dsn import build_dsn
from mailmark.core.errors import StorageUnavailable
from mailmark.core.events import record_events
from mailmark.core.model import LeasedDelivery, OutboundMessage, QueueEntry, Suppression
from mailmark.core.ports import BlobStore, Clock, NewEvent, UnitOfWork, UnitOfWorkFactory
from mailmark.core.smtp_reply import MAX_REPLY_TEXT, SmtpReply, is_permanent_failure
from mailmark.core.states import (
    GIVEN_UP_STATUSES,
    DeliveryStatus,
    EventType,
    SpecialFolder,
    SuppressionReason,
)

log = logging.getLogger(__name__)

_BASIC_CODE = re.compile(r"^\s*(?:smtp\s*;\s*)?([2-5]\d\d)\b", re.IGNORECASE)


async def suppress_if_permanent(
    uow: UnitOfWork, domain_id: int, address: str, reply: SmtpReply, now: datetime
) -> None:
    """Stop the domain mailing `address` when `reply` condemns the address itself."""
    if is_permanent_failure(reply):
        detail = reply.line()[:MAX_REPLY_TEXT]
        await uow.suppressions.add(
            Suppression(domain_id, address.lower(), SuppressionReason.BOUNCE, detail, now)
        )


class DeliveryReports:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        blobs: BlobStore,
        clock: Clock,
        delivery: InboundDelivery,
        hostname: str,
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._clock = clock
        self._delivery = delivery
        self._hostname = hostname

    async def originals(self, bounced: Sequence[LeasedDelivery]) -> dict[str, bytes]:
        """The stored messages the bounce notices will quote, to read before the transaction."""
        originals: dict[str, bytes] = {}
        for leased in bounced:
            key = leased.blob_key
            if leased.mailbox_id and key not in originals:
                try:
                    originals[key] = await self._blobs.get(key)
                except (OSError, KeyError):
                    log.warning("bounced message %s has no stored copy to quote", key)
                    originals[key] = b""
        return originals

    async def file_bounce_notices(
        self,
        uow: UnitOfWork,
        bounced: Sequence[tuple[LeasedDelivery, SmtpReply]],
        originals: dict[str, bytes],
        now: datetime,
        created: list[str],
    ) -> None:
        """One RFC 3464 report per outbound message into its sender's INBOX, listing every
        recipient of `bounced` given up on. The report is filed, never sent: no bounce loops.
        The keys of the blobs this creates are added to `created`, for removal if the caller's
        transaction fails (`discard_notices`)."""
        by_message: dict[int, list[tuple[LeasedDelivery, SmtpReply]]] = {}
        for leased, reply in bounced:
            if leased.mailbox_id is not None:
                by_message.setdefault(leased.outbound_id, []).append((leased, reply))
        for outbound_id, failures in by_message.items():
            first = failures[0][0]
            assert first.mailbox_id is not None
            sender = await uow.mailboxes.get(first.mailbox_id)
            outbound = await uow.outbound.get(outbound_id)
            if sender is None or outbound is None:
                continue  # the sender's mailbox is gone: nobody to tell
            report = build_dsn(
                reporting_mta=self._hostname,
                original_envelope_from=first.envelope_from,
                original_headers=originals.get(first.blob_key, b""),
                failures=[(leased.recipient, reply) for leased, reply in failures],
                arrival=outbound.created_at,
                now=now,
                message_id_domain=self._hostname,
            )
            key, new = await self._blobs.put(report)
            if new:
                created.append(key)
            await self._delivery.place_in(
                uow,
                report,
                blob_key=key,
                created_blob=new,
                mailbox=sender,
                folder=SpecialFolder.INBOX,
                mail_from="",
            )

    async def discard_notices(self, keys: Sequence[str]) -> None:
        """Remove the blobs of notices whose transaction did not commit."""
        for key in keys:
            try:
                await self._blobs.delete(key)
            except (OSError, StorageUnavailable):
                log.exception("could not remove orphan blob %s", key)

    async def process_report(self, token: str, report: BounceReport) -> bool:
        """Apply a DSN or ARF report that came back to bounce+<token>@…: the matching recipients
        become bounced or complained and are suppressed; False when the token is unknown."""
        now = self._clock.now()
        async with self._uow() as uow:
            outbound = await uow.outbound.get_by_token(token)
            if outbound is None or outbound.id is None:
                return False
            entries = await uow.deliveries.for_outbound(outbound.id)
            by_address = {entry.recipient.lower(): entry for entry in entries}
            targets = [
                (by_address[r.address.lower()], r.status, r.diagnostic)
                for r in report.recipients
                if r.address.lower() in by_address
            ]
            if not targets and report.kind == "complaint" and len(entries) == 1:
                # Feedback reports often redact the recipient; a single-recipient message is
                # unambiguous.
                targets = [(entries[0], None, report.feedback_type)]
            events = []
            for entry, status, diagnostic in targets:
                event = await self._apply_report(
                    uow, outbound, entry, report, status, diagnostic, now
                )
                if event is not None:
                    events.append(event)
            if events:
                await record_events(uow, events)
            await uow.commit()
        return True

    @staticmethod
    async def _apply_report(
        uow: UnitOfWork,
        outbound: OutboundMessage,
        entry: QueueEntry,
        report: BounceReport,
        status: str | None,
        diagnostic: str | None,
        now: datetime,
    ) -> NewEvent | None:
        """One recipient's new state from a report; the event to write, if any."""
        assert outbound.id is not None
        reply = _reported_reply(status, diagnostic)
        payload = _entry_payload(entry, reply) | {"reported": True}
        if report.kind == "delay":
            return NewEvent(
                outbound.account_id, EventType.DEFERRED, payload, now, outbound_id=outbound.id
            )
        if entry.status in GIVEN_UP_STATUSES:
            return None
        if report.kind == "complaint":
            detail = f"complaint ({report.feedback_type or 'abuse'})"
            await uow.deliveries.set_status(entry.id, DeliveryStatus.COMPLAINED, None, detail, now)
            await uow.suppressions.add(
                Suppression(
                    outbound.domain_id,
                    entry.recipient.lower(),
                    SuppressionReason.COMPLAINT,
                    detail,
                    now,
                )
            )
            payload["feedbackType"] = report.feedback_type
            return NewEvent(
                outbound.account_id, EventType.COMPLAINED, payload, now, outbound_id=outbound.id
            )
        await uow.deliveries.set_status(
            entry.id, DeliveryStatus.BOUNCED, reply.enhanced, reply.text[:MAX_REPLY_TEXT], now
        )
        await suppress_if_permanent(uow, outbound.domain_id, entry.recipient, reply, now)
        return NewEvent(
            outbound.account_id, EventType.BOUNCED, payload, now, outbound_id=outbound.id
        )


def _reported_reply(status: str | None, diagnostic: str | None) -> SmtpReply:
    """A reply as a remote report tells it: `Diagnostic-Code: smtp; 550 5.1.1 …` and `Status:`."""
    text = diagnostic or ""
    match = _BASIC_CODE.match(text)
    if match:
        code = int(match[1])
    elif status:
        code = 550 if status.startswith("5") else 450
    else:
        code = 0
    return SmtpReply(code, status, text)


def _entry_payload(entry: QueueEntry, reply: SmtpReply) -> dict[str, object]:
    return {
        "to": entry.recipient,
        "messageId": entry.message_id_header,
        "code": reply.code,
        "enhanced": reply.enhanced,
        "reply": reply.text[:MAX_REPLY_TEXT],
    }

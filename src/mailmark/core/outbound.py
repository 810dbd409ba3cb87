"""The outbound queue: leasing due deliveries, recording what the receiving servers answered.

Workers (smtp_out) lease due rows, deliver them and hand the replies back to `record`, which turns
each into a transition (delivered, deferred, bounced) with an event, and for bounces a suppression
and one RFC 3464 report in the sender's INBOX — all in one transaction per batch. Mail for domains
hosted here never leaves the machine: `deliver_locally` files it through the inbound path.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime

from mailmark.core.bounce_reports import BounceReport
from mailmark.core.delivery import INBOX, InboundDelivery
from mailmark.core.dsn import build_dsn
from mailmark.core.errors import NotFound, RelayDenied, UnknownMailbox
from mailmark.core.events import record_events
from mailmark.core.mailboxes import MailboxService
from mailmark.core.model import (
    DeliveryOutcome,
    DkimKey,
    LeasedDelivery,
    OutboundMessage,
    QueueEntry,
    Suppression,
)
from mailmark.core.ports import BlobStore, Clock, NewEvent, UnitOfWork, UnitOfWorkFactory

__all__ = ["LeasedDelivery", "OutboundQueue", "QueueEntry", "SmtpReply", "is_permanent_failure"]

log = logging.getLogger(__name__)

MAX_REPLY_TEXT = 2000
SIGNING_KEY_CACHE_SECONDS = 60.0
# Without an enhanced code, these basic codes say the address itself is bad (RFC 5321 §4.2.3).
PERMANENT_ADDRESS_CODES = frozenset({550, 551, 553})
_BASIC_CODE = re.compile(r"^\s*(?:smtp\s*;\s*)?([2-5]\d\d)\b", re.IGNORECASE)


@dataclass(frozen=True)
class SmtpReply:
    """What a remote server (or our local delivery) answered."""

    code: int  # 250, 451, 550 ...; 0 for a network error or timeout
    enhanced: str | None  # "5.1.1" or None
    text: str  # human text; several lines joined by "\n"
    mx_host: str | None = None


def is_permanent_failure(reply: SmtpReply) -> bool:
    """Whether a refusal condemns the address (suppress it), not only this message.

    An enhanced code is the precise answer (RFC 3463 §3.2: X.1.X are addressing failures, e.g.
    5.1.1 no such mailbox, 5.1.10 null MX); a 550 5.7.1 is a policy refusal of this message. Without
    one, or with the undefined 5.0.0 (Exim's habit), 550/551/553 are taken as addressing failures."""
    if not 500 <= reply.code <= 599:
        return False
    if reply.enhanced and reply.enhanced != "5.0.0":
        return reply.enhanced.startswith("5.1.")
    return reply.code in PERMANENT_ADDRESS_CODES


@dataclass(frozen=True)
class _Decision:
    leased: LeasedDelivery
    reply: SmtpReply
    status: str  # "delivered" | "deferred" | "bounced"
    next_attempt_at: datetime
    expired: bool = False


class OutboundQueue:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        blobs: BlobStore,
        clock: Clock,
        delivery: InboundDelivery,
        mailboxes: MailboxService,
        retry_schedule: Sequence[timedelta],
        queue_lifetime: timedelta,
        hostname: str,
    ) -> None:
        if not retry_schedule:
            raise ValueError("the retry schedule needs at least one delay")
        self._uow = uow
        self._blobs = blobs
        self._clock = clock
        self._delivery = delivery
        self._mailboxes = mailboxes
        self.retry_schedule = tuple(retry_schedule)
        self.queue_lifetime = queue_lifetime
        self._hostname = hostname
        # Set by submissions and retries; the worker waits on it between due times.
        self.wakeup = asyncio.Event()
        self._signing_keys: dict[str, tuple[float, DkimKey | None]] = {}

    async def lease_due(self, owner: str, limit: int, lease_for: timedelta) -> list[LeasedDelivery]:
        """Lease up to `limit` due deliveries for `lease_for`; a crashed owner's rows come back
        once their lease runs out."""
        now = self._clock.now()
        async with self._uow() as uow:
            leased = await uow.deliveries.lease_due(owner, now, limit, now + lease_for)
            await uow.commit()
        return leased

    async def next_due_at(self) -> datetime | None:
        """When a queued or deferred delivery next becomes leasable; None when there is none."""
        async with self._uow(read_only=True) as uow:
            return await uow.deliveries.next_due_at()

    def retry_delay(self, attempts: int) -> timedelta:
        """The wait after attempt number `attempts` (1 = first); the last step repeats."""
        return self.retry_schedule[min(max(attempts, 1) - 1, len(self.retry_schedule) - 1)]

    async def record(self, outcomes: Sequence[tuple[LeasedDelivery, SmtpReply]]) -> None:
        """Record a batch of attempts in one transaction and release their leases.

        2xx: delivered. 4xx or a network error (code 0): deferred to the next step of the retry
        schedule, or bounced when that would pass the queue lifetime. 5xx: bounced. Rows whose
        lease was lost (expired and taken by another worker, or deleted) are left alone."""
        if not outcomes:
            return
        now = self._clock.now()
        decisions = [self._decide(leased, reply, now) for leased, reply in outcomes]
        originals = await self._originals_of_bounces(decisions)
        created_reports: list[str] = []
        try:
            async with self._uow() as uow:
                applied_ids = set(
                    await uow.deliveries.record_outcomes([_outcome(d, now) for d in decisions])
                )
                applied = [d for d in decisions if d.leased.id in applied_ids]
                if not applied:
                    return
                await record_events(uow, [_transition_event(d, now) for d in applied])
                for decision in applied:
                    if decision.status == "bounced" and not decision.expired:
                        await self._suppress_if_permanent(uow, decision, now)
                await self._report_bounces(uow, applied, originals, now, created_reports)
                await uow.commit()
        except BaseException:
            for key in created_reports:
                await self._remove_blob(key)
            raise

    def _decide(self, leased: LeasedDelivery, reply: SmtpReply, now: datetime) -> _Decision:
        if 200 <= reply.code <= 299:
            return _Decision(leased, reply, "delivered", now)
        if 500 <= reply.code <= 599:
            return _Decision(leased, reply, "bounced", now)
        # 4xx, a network error, or a reply no server should give: try again later.
        next_attempt_at = now + self.retry_delay(leased.attempts)
        if next_attempt_at > leased.expires_at:
            return _Decision(leased, reply, "bounced", now, expired=True)
        return _Decision(leased, reply, "deferred", next_attempt_at)

    async def _originals_of_bounces(self, decisions: Sequence[_Decision]) -> dict[str, bytes]:
        """The stored messages a bounce report will quote, read before the transaction."""
        originals: dict[str, bytes] = {}
        for decision in decisions:
            key = decision.leased.blob_key
            if decision.status == "bounced" and decision.leased.mailbox_id and key not in originals:
                try:
                    originals[key] = await self._blobs.get(key)
                except (OSError, KeyError):
                    log.warning("bounced message %s has no stored copy to quote", key)
                    originals[key] = b""
        return originals

    async def _suppress_if_permanent(
        self, uow: UnitOfWork, decision: _Decision, now: datetime
    ) -> None:
        if not is_permanent_failure(decision.reply):
            return
        leased = decision.leased
        detail = _reply_line(decision.reply)[:MAX_REPLY_TEXT]
        await uow.suppressions.add(
            Suppression(leased.domain_id, leased.recipient.lower(), "bounce", detail, now)
        )

    async def _report_bounces(
        self,
        uow: UnitOfWork,
        applied: Sequence[_Decision],
        originals: dict[str, bytes],
        now: datetime,
        created: list[str],
    ) -> None:
        """One RFC 3464 report per outbound message into its sender's INBOX, listing every
        recipient of the batch given up on. The report is filed, never sent: no bounce loops."""
        by_message: dict[int, list[_Decision]] = {}
        for decision in applied:
            if decision.status == "bounced" and decision.leased.mailbox_id is not None:
                by_message.setdefault(decision.leased.outbound_id, []).append(decision)
        for outbound_id, bounced in by_message.items():
            first = bounced[0].leased
            assert first.mailbox_id is not None
            sender = await uow.mailboxes.get(first.mailbox_id)
            outbound = await uow.outbound.get(outbound_id)
            if sender is None or outbound is None:
                continue  # the sender's mailbox is gone: nobody to tell
            report = build_dsn(
                reporting_mta=self._hostname,
                original_envelope_from=first.envelope_from,
                original_headers=originals.get(first.blob_key, b""),
                failures=[(d.leased.recipient, d.reply) for d in bounced],
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
                folder=INBOX,
                mail_from="",
            )

    async def deliver_locally(self, leased: LeasedDelivery) -> SmtpReply:
        """Deliver to a mailbox hosted here through the inbound path, without a network hop."""
        try:
            mailbox = await self._mailboxes.resolve_recipient(leased.recipient)
        except UnknownMailbox as error:
            return SmtpReply(550, "5.1.1", error.message)
        except RelayDenied:
            # The domain left this server since the row was leased: the next attempt goes out
            # over the network.
            return SmtpReply(451, "4.4.0", f"{leased.recipient_domain} is no longer hosted here")
        try:
            raw = await self._blobs.get(leased.blob_key)
            await self._delivery.deliver(
                raw,
                recipients=[mailbox],
                mail_from=leased.envelope_from,
                trace_prefix=self._local_trace(leased),
            )
        except Exception as error:  # any storage failure is temporary: the row is retried
            log.exception("local delivery of queue row %s failed", leased.id)
            return SmtpReply(451, "4.3.0", f"Local delivery failed: {error.__class__.__name__}")
        return SmtpReply(250, "2.0.0", f"Delivered locally to {mailbox.address}")

    def _local_trace(self, leased: LeasedDelivery) -> bytes:
        """Return-Path and Received (RFC 5321 §4.4) for mail that never left this server."""
        return (
            f"Return-Path: <{leased.envelope_from}>\r\n"
            f"Received: by {self._hostname} (Mailmark) with LOCAL id q{leased.id}\r\n"
            f"\tfor <{leased.recipient}>; {format_datetime(self._clock.now())}\r\n"
        ).encode()

    async def signing_key(self, domain: str) -> DkimKey | None:
        """The domain's active RSA signing key (rsa-sha256), cached for a minute."""
        name = domain.lower()
        now = self._clock.now().timestamp()
        cached = self._signing_keys.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._uow(read_only=True) as uow:
            found = await uow.domains.get_by_name(name)
            keys = await uow.domains.dkim_keys(found.id, ["active"]) if found and found.id else []
        rsa = [key for key in keys if key.algorithm == "rsa-sha256"]
        key = rsa[-1] if rsa else None
        self._signing_keys[name] = (now + SIGNING_KEY_CACHE_SECONDS, key)
        return key

    async def retry(self, delivery_id: int | None) -> int:
        """Make deferred deliveries (one, or all when None) due now; how many were."""
        async with self._uow() as uow:
            count = await uow.deliveries.retry(delivery_id, self._clock.now())
            missing = count == 0 and delivery_id is not None
            if missing and await uow.deliveries.get(delivery_id or 0) is None:
                raise NotFound(f"No delivery {delivery_id} in the queue.")
            await uow.commit()
        if count:
            self.wakeup.set()
        return count

    async def delete(self, delivery_id: int) -> None:
        """Remove one delivery from the queue; it will not be attempted again."""
        async with self._uow() as uow:
            if not await uow.deliveries.delete(delivery_id):
                raise NotFound(f"No delivery {delivery_id} in the queue.")
            await uow.commit()

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

    async def _apply_report(
        self,
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
            return _event(outbound.account_id, "email.deferred", payload, now, outbound.id)
        if entry.status in ("bounced", "complained"):
            return None
        address = entry.recipient.lower()
        if report.kind == "complaint":
            detail = f"complaint ({report.feedback_type or 'abuse'})"
            await uow.deliveries.set_status(entry.id, "complained", None, detail, now)
            await uow.suppressions.add(
                Suppression(outbound.domain_id, address, "complaint", detail, now)
            )
            payload["feedbackType"] = report.feedback_type
            return _event(outbound.account_id, "email.complained", payload, now, outbound.id)
        await uow.deliveries.set_status(
            entry.id, "bounced", reply.enhanced, reply.text[:MAX_REPLY_TEXT], now
        )
        if is_permanent_failure(reply):
            detail = _reply_line(reply)[:MAX_REPLY_TEXT]
            await uow.suppressions.add(
                Suppression(outbound.domain_id, address, "bounce", detail, now)
            )
        return _event(outbound.account_id, "email.bounced", payload, now, outbound.id)

    async def _remove_blob(self, key: str) -> None:
        try:
            await self._blobs.delete(key)
        except OSError:
            log.exception("could not remove orphan blob %s", key)

    async def list(self, status: str | None = None, limit: int = 100) -> list[QueueEntry]:
        """Queue rows, oldest first, optionally of one status (for `mailmark queue list`)."""
        async with self._uow(read_only=True) as uow:
            return await uow.deliveries.entries(status, limit)


def _outcome(decision: _Decision, now: datetime) -> DeliveryOutcome:
    reply = decision.reply
    return DeliveryOutcome(
        delivery_id=decision.leased.id,
        lease_owner=decision.leased.lease_owner,
        status=decision.status,
        next_attempt_at=decision.next_attempt_at,
        last_code=reply.code,
        last_status=reply.enhanced,
        last_reply=reply.text[:MAX_REPLY_TEXT],
        mx_host=reply.mx_host,
        updated_at=now,
    )


def _reply_line(reply: SmtpReply) -> str:
    return " ".join(part for part in (str(reply.code), reply.enhanced or "", reply.text) if part)


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


def _transition_event(decision: _Decision, now: datetime) -> NewEvent:
    leased, reply = decision.leased, decision.reply
    payload: dict[str, object] = {
        "to": leased.recipient,
        "messageId": leased.message_id_header,
        "status": decision.status,
        "code": reply.code,
        "enhanced": reply.enhanced,
        "reply": reply.text[:MAX_REPLY_TEXT],
        "mxHost": reply.mx_host,
        "attempt": leased.attempts,
    }
    if decision.status == "deferred":
        payload["nextAttemptAt"] = decision.next_attempt_at.isoformat()
    if decision.expired:
        payload["expired"] = True
    return _event(leased.account_id, f"email.{decision.status}", payload, now, leased.outbound_id)


def _event(
    account_id: int, kind: str, payload: dict[str, object], now: datetime, outbound_id: int
) -> NewEvent:
    return NewEvent(account_id, kind, payload, now, outbound_id=outbound_id)

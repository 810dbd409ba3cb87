"""The outbound queue: its rows, leasing due deliveries, recording what the receiving servers
answered.

Submissions `enqueue` one row per recipient and `kick` the workers once they have committed.
Workers (smtp_out) lease due rows, deliver them and hand the replies back to `record`, which turns
each into a transition (delivered, deferred, bounced) with an event, and for bounces a suppression
and one RFC 3464 report in the sender's INBOX — all in one transaction per batch. Mail for domains
hosted here never leaves the machine: `deliver_locally` files it through the inbound path.

Quotas are checked when mail is accepted, and once more when a row becomes due: the account may
have been paused, or its plan lowered below what it sent this month, since. Then the row is held
(status `held`, the product's text as its last reply, its attempt not counted) and looked at again
every HOLD_RECHECK, at once when the account is resumed or its plan changed, and at the start of the
next month, when the quota resets. It is sent as soon as the account may send again, or bounced
with a DSN to the sender once its queue lifetime has passed: the same promise as for deferred mail,
so a sender learns within days what became of a message, and a paused account's backlog never
goes out weeks late, when a scheduled message has long lost its point.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime

from mailmark.core.delivery import InboundDelivery
from mailmark.core.delivery_reports import DeliveryReports, suppress_if_permanent
from mailmark.core.errors import RelayDenied, UnknownMailbox
from mailmark.core.events import record_events
from mailmark.core.mailboxes import MailboxService
from mailmark.core.mailstore import copy_placements
from mailmark.core.model import DeliveryOutcome, LeasedDelivery, NewDelivery
from mailmark.core.plans import UNCOUNTED_PLANS, held_reason, next_month_start, usage_month
from mailmark.core.ports import BlobStore, Clock, NewEvent, UnitOfWork, UnitOfWorkFactory
from mailmark.core.smtp_reply import MAX_REPLY_TEXT, SmtpReply
from mailmark.core.states import DeliveryStatus, EventType, SpecialFolder

log = logging.getLogger(__name__)

# How often a held row is looked at again when nothing released it (a plan changed on another
# node or by billing); never later than the quota's monthly reset or the row's expiry.
HOLD_RECHECK = timedelta(minutes=15)
# How long an account's count of this month's mail is reused by the lease-time check. Counting a
# month of a busy account reads every one of its rows (~35 ms for 100,000 on SQLite): once a
# minute, not once per batch. The count only grows by mail accepted under the plan's limit, so a
# reused one can only miss the last minute's mail of an account whose plan was just lowered;
# status and plan are read afresh for every batch.
MONTH_COUNT_REUSE = timedelta(minutes=1)
MONTH_COUNTS_KEPT = 10_000

_TRANSITION_EVENTS = {
    DeliveryStatus.DELIVERED: EventType.DELIVERED,
    DeliveryStatus.DEFERRED: EventType.DEFERRED,
    DeliveryStatus.BOUNCED: EventType.BOUNCED,
}


@dataclass(frozen=True)
class QueuedMessage:
    """An outbound message to queue for its recipients, first tried at `scheduled_at` or now."""

    outbound_id: int
    account_id: int  # whose monthly usage the recipients count in
    recipients: Sequence[str]
    scheduled_at: datetime | None = None


@dataclass(frozen=True)
class _Decision:
    leased: LeasedDelivery
    reply: SmtpReply
    status: DeliveryStatus  # delivered, deferred or bounced
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
        reports: DeliveryReports,
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
        self._reports = reports
        self.retry_schedule = tuple(retry_schedule)
        self.queue_lifetime = queue_lifetime
        self._hostname = hostname
        # Set by `kick`; the workers wait on it between due times.
        self._wakeup = asyncio.Event()
        # Account id → (month start, counted at, emails that month), for `_blocked_accounts`.
        self._month_counts: dict[int, tuple[str, datetime, int]] = {}

    async def enqueue(
        self, uow: UnitOfWork, messages: Sequence[QueuedMessage], now: datetime
    ) -> None:
        """One row per recipient in the caller's transaction, given up `queue_lifetime` after its
        first attempt, each counted in its account's usage row for this calendar month (the
        quota's count, kept in step with the rows it counts). The caller kicks the workers once
        that transaction has committed."""
        rows = []
        per_account: dict[int, int] = {}
        for message in messages:
            per_account[message.account_id] = per_account.get(message.account_id, 0) + len(
                message.recipients
            )
            first_attempt = max(now, message.scheduled_at) if message.scheduled_at else now
            rows += [
                NewDelivery(
                    message.outbound_id,
                    address,
                    address.rpartition("@")[2].lower(),
                    first_attempt,
                    self.expires_at(first_attempt),
                    now,
                )
                for address in message.recipients
            ]
        await uow.deliveries.add_many(rows)
        month = usage_month(now)
        for account_id, emails in sorted(per_account.items()):
            await uow.usage.add(account_id, month, emails)

    def expires_at(self, first_attempt: datetime) -> datetime:
        """When a row first tried at `first_attempt` is given up: `queue_lifetime` later."""
        return first_attempt + self.queue_lifetime

    def kick(self) -> None:
        """Wake the workers of this process: deliveries may be due now."""
        self._wakeup.set()

    async def wait_for_kick(self) -> None:
        """Return once `kick` has been called since the last `clear_kick`."""
        await self._wakeup.wait()

    def clear_kick(self) -> None:
        """Forget earlier kicks, before looking for due deliveries."""
        self._wakeup.clear()

    async def lease_due(self, owner: str, limit: int, lease_for: timedelta) -> list[LeasedDelivery]:
        """Lease up to `limit` due deliveries for `lease_for`; a crashed owner's rows come back
        once their lease runs out."""
        now = self._clock.now()
        expired: list[tuple[LeasedDelivery, SmtpReply]] = []
        async with self._uow() as uow:
            leased = await uow.deliveries.lease_due(owner, now, limit, now + lease_for)
            blocked = await self._blocked_accounts(uow, leased, now)
            if blocked:
                holds: list[tuple[int, datetime, str]] = []
                sendable: list[LeasedDelivery] = []
                for delivery in leased:
                    reason = blocked.get(delivery.account_id)
                    if reason is None:
                        sendable.append(delivery)
                    elif delivery.expires_at <= now:
                        expired.append((delivery, _expired_hold(reason)))
                    else:
                        look_again = min(
                            now + HOLD_RECHECK, next_month_start(now), delivery.expires_at
                        )
                        holds.append((delivery.id, look_again, reason))
                await uow.deliveries.hold(holds, now)
                leased = sendable
            moved = await self._file_as_sent(uow, [*leased, *(d for d, _ in expired)])
            await uow.commit()
        self._delivery.notify(moved)
        if expired:
            try:
                await self.record(expired)
            except Exception:  # they stay leased, and are given up again once the lease ends
                log.exception("bouncing %d expired held deliveries failed", len(expired))
        return leased

    async def _blocked_accounts(
        self, uow: UnitOfWork, leased: Sequence[LeasedDelivery], now: datetime
    ) -> dict[int, str]:
        """The accounts of the batch that may not send now, with why: one statement per batch,
        which counts this month's mail only for accounts with a limit and no recent count."""
        if not leased:
            return {}
        since = usage_month(now)
        account_ids = sorted({d.account_id for d in leased})
        recent: dict[int, int] = {}
        for account_id in account_ids:
            kept = self._month_counts.get(account_id)
            if kept is not None and kept[0] == since and now - kept[1] < MONTH_COUNT_REUSE:
                recent[account_id] = kept[2]
        to_count = [account_id for account_id in account_ids if account_id not in recent]
        states = await uow.accounts.sending_states(account_ids, since, to_count, UNCOUNTED_PLANS)
        if len(self._month_counts) > MONTH_COUNTS_KEPT:
            self._month_counts.clear()
        blocked: dict[int, str] = {}
        for account, sent in states:
            assert account.id is not None
            if sent is not None:
                self._month_counts[account.id] = (since, now, sent)
            elif account.id in recent:
                sent = recent[account.id]
            reason = held_reason(account, sent, now)
            if reason is not None:
                blocked[account.id] = reason
        return blocked

    @staticmethod
    async def _file_as_sent(uow: UnitOfWork, leased: Sequence[LeasedDelivery]) -> list[int]:
        """Move the sender's copies of messages taken for the first time from Outbox to Sent
        (IMAP MOVE semantics), in the lease's transaction: once a worker holds a recipient the
        message is being sent and can no longer be cancelled. The mailboxes changed."""
        first = [d.sent_message_id for d in leased if d.attempts == 1 and d.sent_message_id]
        if not first:
            return []
        copies = await uow.compose.copies_in(first, SpecialFolder.OUTBOX)
        moved: list[int] = []
        for copy in copies:
            sent = await uow.folders.get_by_name(copy.mailbox_id, SpecialFolder.SENT)
            if sent is None or sent.id is None:
                continue
            await copy_placements(
                uow, copy.mailbox_id, copy.folder_id, [copy.uid], sent.id, move=True
            )
            moved.append(copy.mailbox_id)
        return moved

    async def next_due_at(self) -> datetime | None:
        """When a queued or deferred delivery next becomes leasable; None when there is none."""
        async with self._uow(read_only=True) as uow:
            return await uow.deliveries.next_due_at()

    def retry_delay(self, attempts: int) -> timedelta:
        """The wait after attempt number `attempts` (1 = first); the last step repeats."""
        return self.retry_schedule[min(max(attempts, 1) - 1, len(self.retry_schedule) - 1)]

    async def record(
        self, outcomes: Sequence[tuple[LeasedDelivery, SmtpReply]]
    ) -> list[tuple[LeasedDelivery, DeliveryStatus]]:
        """Record a batch of attempts in one transaction and release their leases; the rows
        recorded, each with its new status.

        2xx: delivered. 4xx or a network error (code 0): deferred to the next step of the retry
        schedule, or bounced when that would pass the queue lifetime. 5xx: bounced. Rows whose
        lease was lost (expired and taken by another worker, or deleted) are left alone."""
        if not outcomes:
            return []
        now = self._clock.now()
        decisions = [self._decide(leased, reply, now) for leased, reply in outcomes]
        originals = await self._reports.originals(
            [d.leased for d in decisions if d.status is DeliveryStatus.BOUNCED]
        )
        created_notices: list[str] = []
        try:
            async with self._uow() as uow:
                applied_ids = set(
                    await uow.deliveries.record_outcomes([_outcome(d, now) for d in decisions])
                )
                applied = [d for d in decisions if d.leased.id in applied_ids]
                if not applied:
                    return []
                await record_events(uow, [_transition_event(d, now) for d in applied])
                bounced = [
                    (d.leased, d.reply) for d in applied if d.status is DeliveryStatus.BOUNCED
                ]
                for leased, reply in bounced:
                    await suppress_if_permanent(uow, leased.domain_id, leased.recipient, reply, now)
                await self._reports.file_bounce_notices(
                    uow, bounced, originals, now, created_notices
                )
                await uow.commit()
            # The notices are in the senders' INBOXes: wake their IMAP sessions now, not at
            # their next poll.
            self._delivery.notify([leased.mailbox_id for leased, _ in bounced])
        except BaseException:
            await self._reports.discard_notices(created_notices)
            raise
        return [(d.leased, d.status) for d in applied]

    def _decide(self, leased: LeasedDelivery, reply: SmtpReply, now: datetime) -> _Decision:
        if 200 <= reply.code <= 299:
            return _Decision(leased, reply, DeliveryStatus.DELIVERED, now)
        if 500 <= reply.code <= 599:
            return _Decision(leased, reply, DeliveryStatus.BOUNCED, now)
        # 4xx, a network error, or a reply no server should give: try again later.
        next_attempt_at = now + self.retry_delay(leased.attempts)
        if next_attempt_at > leased.expires_at:
            return _Decision(leased, reply, DeliveryStatus.BOUNCED, now, expired=True)
        return _Decision(leased, reply, DeliveryStatus.DEFERRED, next_attempt_at)

    async def deliver_locally(self, leased: LeasedDelivery) -> SmtpReply:
        """Deliver to a mailbox hosted here through the inbound path, without a network hop."""
        try:
            mailboxes = await self._mailboxes.resolve_recipients(leased.recipient)
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
                recipients=list(mailboxes),
                mail_from=leased.envelope_from,
                trace_prefix=self._local_trace(leased),
            )
        except Exception as error:  # any storage failure is temporary: the row is retried
            log.exception("local delivery of queue row %s failed", leased.id)
            return SmtpReply(451, "4.3.0", f"Local delivery failed: {error.__class__.__name__}")
        delivered_to = ", ".join(mailbox.address for mailbox in mailboxes)
        return SmtpReply(250, "2.0.0", f"Delivered locally to {delivered_to}")

    def _local_trace(self, leased: LeasedDelivery) -> bytes:
        """Return-Path and Received (RFC 5321 §4.4) for mail that never left this server."""
        return (
            f"Return-Path: <{leased.envelope_from}>\r\n"
            f"Received: by {self._hostname} (Mailmark) with LOCAL id q{leased.id}\r\n"
            f"\tfor <{leased.recipient}>; {format_datetime(self._clock.now())}\r\n"
        ).encode()


def _expired_hold(reason: str) -> SmtpReply:
    """The bounce of a row held until its queue lifetime ran out. RFC 3463 §3.8: X.7.0, a policy
    status; not X.1.x, so the recipient is not suppressed."""
    return SmtpReply(554, "5.7.0", f"Not sent before the queue lifetime ran out: {reason}")


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
    if decision.status is DeliveryStatus.DEFERRED:
        payload["nextAttemptAt"] = decision.next_attempt_at.isoformat()
    if decision.expired:
        payload["expired"] = True
    kind = _TRANSITION_EVENTS[decision.status]
    return NewEvent(leased.account_id, kind, payload, now, outbound_id=leased.outbound_id)

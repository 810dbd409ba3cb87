"""The named states and kinds the system stores and reports, defined once.

Each is a `StrEnum`: its members are the very strings written to the database, sent in API answers
and webhook bodies, and printed by the CLI, so a member compares equal to its stored text.
"""

from __future__ import annotations

from enum import StrEnum


class AccountStatus(StrEnum):
    TRIAL = "trial"  # Starter limits until trial_ends_at, then paused
    ACTIVE = "active"  # a plan is paid for
    PAUSED = "paused"


class DeliveryStatus(StrEnum):
    """One recipient's place in the outbound queue."""

    QUEUED = "queued"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    CANCELED = "canceled"  # withdrawn by the sender before its first attempt
    # Due, but its account is paused or over its monthly email limit: kept, re-checked, sent once
    # the account may send again (core/queue.py).
    HELD = "held"


# Rows a worker may still lease: never attempted, waiting for their next retry, or held (leasing
# a held row re-checks its account).
WAITING_STATUSES = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED, DeliveryStatus.HELD)
# Final states a delivery report cannot change any more (a canceled recipient was never sent it).
GIVEN_UP_STATUSES = (DeliveryStatus.BOUNCED, DeliveryStatus.COMPLAINED, DeliveryStatus.CANCELED)
# When a message's recipients differ, the message shows the first of these any of them holds.
STATUS_PRECEDENCE = (
    DeliveryStatus.QUEUED,
    DeliveryStatus.HELD,
    DeliveryStatus.DEFERRED,
    DeliveryStatus.BOUNCED,
    DeliveryStatus.COMPLAINED,
    DeliveryStatus.CANCELED,
    DeliveryStatus.DELIVERED,
)


class EventType(StrEnum):
    """What an event records. All but `email.sent` are also webhook events."""

    SENT = "email.sent"
    RECEIVED = "email.received"
    DELIVERED = "email.delivered"
    DEFERRED = "email.deferred"
    BOUNCED = "email.bounced"
    COMPLAINED = "email.complained"
    OPENED = "email.opened"
    CLICKED = "email.clicked"
    CANCELED = "email.canceled"
    # A reply to a campaign email reached its mailbox (core/campaign_replies.py).
    CAMPAIGN_REPLIED = "campaign.replied"
    # A recipient asked for no more campaign mail (RFC 8058 one-click, or the unsubscribe page).
    UNSUBSCRIBED = "email.unsubscribed"


class WebhookDeliveryStatus(StrEnum):
    """One event's delivery to one webhook."""

    PENDING = "pending"  # posted at next_attempt_at
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after the last retry


class DkimKeyState(StrEnum):
    ACTIVE = "active"  # signs outgoing mail
    PENDING = "pending"  # published, awaiting DNS before it signs
    RETIRED = "retired"


class SuppressionReason(StrEnum):
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    MANUAL = "manual"
    UNSUBSCRIBE = "unsubscribe"


class SystemFlag(StrEnum):
    """The IMAP system flags a message can carry (RFC 9051 §2.3.2). `\\Recent` is never stored."""

    SEEN = "\\Seen"
    ANSWERED = "\\Answered"
    FLAGGED = "\\Flagged"
    DELETED = "\\Deleted"
    DRAFT = "\\Draft"


class SpecialFolder(StrEnum):
    """The folders every mailbox has, with their SPECIAL-USE roles (RFC 6154)."""

    INBOX = "INBOX"
    SENT = "Sent"
    DRAFTS = "Drafts"
    TRASH = "Trash"
    JUNK = "Junk"
    ARCHIVE = "Archive"
    # Scheduled mail and mail in its undo window wait here until the queue takes them.
    OUTBOX = "Outbox"

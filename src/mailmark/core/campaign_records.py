"""What the campaign engine reads and writes through its repository (storage/campaigns.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mailmark.core.contacts import ContactFilter
from mailmark.core.sequences import Campaign, MergeValues, RecipientState, ThreadState


@dataclass(frozen=True)
class DueRecipient:
    id: int
    contact_id: int | None
    email: str
    next_stage: int  # 1-based
    mailbox_id: int | None  # the thread's sender, once stage 1 went
    thread: ThreadState
    values: MergeValues
    # Why it leaves the sequence instead (its last message bounced, its contact unsubscribed…).
    departed: RecipientState | None = None
    departure_reason: str = ""


@dataclass(frozen=True)
class SentStage:
    """One stage message queued for one recipient, and where that leaves the recipient."""

    recipient_id: int
    stage: int
    variant: int
    outbound_id: int
    message_id: str
    mailbox_id: int
    thread_subject: str | None
    references: tuple[str, ...]
    next_send_at: datetime
    finished: bool  # that was the last stage


@dataclass(frozen=True)
class MailboxUsage:
    sent_today: int
    last_sent_at: datetime | None


@dataclass(frozen=True)
class StageCounts:
    stage: int
    variant: int
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    replied: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    # Messages opened or clicked by a person (not only by a privacy proxy or a link scanner).
    human_opened: int = 0
    human_clicked: int = 0


@dataclass(frozen=True)
class RecipientView:
    id: int
    contact_id: int | None
    email: str
    state: RecipientState
    stages_sent: int
    next_stage: int
    next_send_at: datetime
    stop_reason: str
    auto_replies: int
    updated_at: datetime


@dataclass(frozen=True)
class ActivityHit:
    """One thing that happened in a campaign at a moment: a stage sent, a person's open or
    click, a reply (the time series of its charts)."""

    kind: str  # "sent" | "opened" | "clicked" | "replied"
    at: datetime
    count: int = 1  # how many, when storage counted them per hour (`at`: the hour's start)


@dataclass(frozen=True)
class RecipientMessage:
    """One stage message sent to a recipient."""

    stage: int
    variant: int
    outbound_id: int | None
    message_id: str
    sent_at: datetime
    replied_at: datetime | None


@dataclass(frozen=True)
class RecipientEvent:
    """One event of a recipient's stage message (delivered, opened, clicked, bounced, …)."""

    type: str
    at: datetime
    outbound_id: int
    payload: dict[str, object]


@dataclass(frozen=True)
class CampaignMessageRef:
    """A stage message some inbound mail names (In-Reply-To/References)."""

    id: int
    campaign_id: int
    recipient_id: int
    stage: int
    outbound_id: int | None
    message_id: str
    replied: bool
    email: str
    contact_id: int | None
    state: RecipientState
    account_id: int
    domain_id: int


class CampaignRepository(Protocol):
    async def add(self, campaign: Campaign) -> Campaign: ...
    async def get(self, domain_id: int, campaign_id: int) -> Campaign | None: ...
    async def lock(self, campaign_id: int) -> Campaign | None: ...
    async def page(self, domain_id: int, after_id: int | None, limit: int) -> list[Campaign]: ...
    async def running(self) -> list[Campaign]: ...
    async def update(self, campaign: Campaign) -> None: ...
    async def add_contacts(
        self, campaign_id: int, account_id: int, where: ContactFilter, first_at: datetime
    ) -> None: ...
    async def add_emails(
        self, campaign_id: int, emails: Sequence[str], first_at: datetime
    ) -> None: ...
    async def count_recipients(
        self, campaign_id: int, state: RecipientState | None = None
    ) -> int: ...
    async def stop_departed(self, campaign_id: int, now: datetime) -> int: ...
    async def due(self, campaign_id: int, now: datetime, limit: int) -> list[DueRecipient]: ...
    async def mailbox_usage(
        self, mailbox_ids: Sequence[int], since: datetime
    ) -> dict[int, MailboxUsage]: ...
    async def record_sent(
        self, campaign_id: int, sent: Sequence[SentStage], now: datetime
    ) -> None: ...
    async def stop(
        self, recipient_ids: Sequence[int], state: RecipientState, reason: str, now: datetime
    ) -> None: ...
    async def cancel_recipients(self, campaign_id: int, now: datetime) -> None: ...
    async def messages_with_ids(
        self, message_ids: Sequence[str], account_id: int
    ) -> list[CampaignMessageRef]: ...
    async def mark_replied(self, message: CampaignMessageRef, now: datetime) -> None: ...
    async def count_auto_reply(self, recipient_id: int, now: datetime) -> None: ...
    async def stage_counts(self, campaign_id: int) -> list[StageCounts]: ...
    async def recipients_page(
        self, campaign_id: int, state: RecipientState | None, after_id: int | None, limit: int
    ) -> list[RecipientView]: ...
    async def get_in_account(self, account_id: int, campaign_id: int) -> Campaign | None: ...
    async def page_for_account(
        self, account_id: int, after_id: int | None, limit: int
    ) -> list[Campaign]: ...
    async def activity(
        self, campaign_id: int, *, quarter_hours: bool = False
    ) -> list[ActivityHit]: ...
    async def recipient(self, campaign_id: int, recipient_id: int) -> RecipientView | None: ...
    async def recipient_messages(self, recipient_id: int) -> list[RecipientMessage]: ...
    async def recipient_events(self, recipient_id: int) -> list[RecipientEvent]: ...
    async def recipient_event_counts(
        self, recipient_ids: Sequence[int]
    ) -> dict[int, dict[str, int]]: ...

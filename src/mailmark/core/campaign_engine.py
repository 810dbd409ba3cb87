"""The campaign engine: campaigns created, edited, launched, paused, resumed and canceled, and the
scheduler that sends their stages as the schedule, the caps and the account's plan allow.

Each stage message goes through `SendingService.submit_many`, the path `/v1/send` takes (sender,
quota, suppression and header checks, the Sent copy, the queue), and its `before_commit` writes
the stage's row and moves the recipient to its next stage in that same transaction: after a
kill -9 a stage was either queued and recorded, or neither, so it is never sent twice nor skipped.

The plan's quota is checked at launch and again each time a message is about to be queued (a
paused account's or an exhausted quota's campaign pauses, with the product's text as its reason).
Guardrails pause a campaign whose bounce or complaint rate passes the bulk-sender lines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from mailmark.core.access import Viewer, require_manager
from mailmark.core.addresses import normalize_address
from mailmark.core.background import BackgroundLoop
from mailmark.core.campaign_analytics import (
    Activity,
    Bucket,
    RecipientTimeline,
    bucket_activity,
    export_lines,
    off_the_hour,
    timeline,
)
from mailmark.core.campaign_records import DueRecipient, MailboxUsage, SentStage, StageCounts
from mailmark.core.contacts import Contact, ContactFilter, ContactList, parse_id
from mailmark.core.emails import Page, cursor_id, page_size
from mailmark.core.errors import (
    AccountPaused,
    Conflict,
    HeaderInjection,
    InvalidInput,
    MailmarkError,
    NotFound,
    QuotaExceeded,
    Suppressed,
    naming,
)
from mailmark.core.model import Mailbox, SenderGroup
from mailmark.core.plans import effective_plan, ensure_email_quota, usage_month
from mailmark.core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from mailmark.core.sender_groups import SenderGroupService
from mailmark.core.sending import Draft, SendingService, Submission
from mailmark.core.sequences import (
    EDITABLE,
    Audience,
    Campaign,
    CampaignStatus,
    MergeValues,
    RecipientState,
    RenderedStage,
    Schedule,
    ThreadState,
    clean_audience,
    clean_name,
    clean_schedule,
    clean_stages,
    render_stage,
    stage_delay,
    variant_for,
    with_reference,
)
from mailmark.core.states import SuppressionReason

log = logging.getLogger(__name__)

# Recipients one pass sends per campaign, queued in one transaction.
SEND_BATCH = 500
# How often a running campaign's recipients are swept for bounces, complaints and unsubscribes
# that arrived since (and its guardrails checked): a recipient about to get a stage is checked
# in any case, so this only keeps the states and stats of waiting recipients current.
SWEEP_INTERVAL = timedelta(minutes=1)
# Guardrails (issue 14): a bounce rate over 5% once 100 messages went, or complaints over 0.3%
# (the Gmail and Yahoo bulk-sender line).
GUARDRAIL_MIN_SENT = 100
MAX_BOUNCE_RATE = 0.05
MAX_COMPLAINT_RATE = 0.003
USER_PAUSED = "Paused by the user."
TEST_PREFIX = "[Test] "
_SUPPRESSED_STATES: dict[str, RecipientState] = {
    SuppressionReason.BOUNCE: RecipientState.BOUNCED,
    SuppressionReason.COMPLAINT: RecipientState.COMPLAINED,
    SuppressionReason.MANUAL: RecipientState.SUPPRESSED,
    SuppressionReason.UNSUBSCRIBE: RecipientState.UNSUBSCRIBED,
}


@dataclass(frozen=True)
class CampaignScope:
    """Whose campaigns: an API key's domain, and its account."""

    account_id: int
    domain_id: int
    domain_name: str


@dataclass(frozen=True)
class CampaignDraft:
    """What a caller gives to create or change a campaign; None leaves a field as it is."""

    name: str | None = None
    from_address: str | None = None
    sender_group_id: str | None = None
    audience: Any = None
    stages: Any = None
    schedule: Any = None


@dataclass(frozen=True)
class CampaignStats:
    campaign: Campaign
    recipients: int
    by_state: dict[str, int]
    stages: list[StageCounts]

    def total(self, name: str) -> int:
        return sum(getattr(counts, name) for counts in self.stages)


@dataclass(frozen=True)
class CampaignChoices:
    """What a campaign of the account can be sent from and to."""

    mailboxes: list[Mailbox]
    sender_groups: list[tuple[str, SenderGroup]]  # (its domain's name, the group)
    lists: list[ContactList]


@dataclass(frozen=True)
class Preview:
    stage: int
    email: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]


class CampaignService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        sending: SendingService,
        sender_groups: SenderGroupService,
        *,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._sending = sending
        self._sender_groups = sender_groups
        self._wake = wake

    # -- reading -------------------------------------------------------------------------------

    async def get(self, scope: CampaignScope, campaign_id: str) -> Campaign:
        async with self._uow(read_only=True) as uow:
            return await self._get(uow, scope, campaign_id)

    async def page(
        self, scope: CampaignScope, *, cursor: str | None, limit: int | None
    ) -> Page[Campaign]:
        size = page_size(limit)
        async with self._uow(read_only=True) as uow:
            found = await uow.campaigns.page(scope.domain_id, cursor_id(cursor), size + 1)
        more = len(found) > size
        items = found[:size]
        return Page(items, str(items[-1].id) if more and items else None)

    async def stats(self, scope: CampaignScope, campaign_id: str) -> CampaignStats:
        async with self._uow(read_only=True) as uow:
            campaign = await self._get(uow, scope, campaign_id)
            assert campaign.id is not None
            by_state = {
                state.value: await uow.campaigns.count_recipients(campaign.id, state)
                for state in RecipientState
            }
            stages = await uow.campaigns.stage_counts(campaign.id)
        return CampaignStats(campaign, sum(by_state.values()), by_state, stages)

    async def recipients(
        self,
        scope: CampaignScope,
        campaign_id: str,
        *,
        state: str | None,
        cursor: str | None,
        limit: int | None,
    ) -> Page[Any]:
        size = page_size(limit)
        wanted = None
        if state is not None:
            try:
                wanted = RecipientState(state)
            except ValueError:
                raise InvalidInput(
                    f"state is one of {', '.join(s.value for s in RecipientState)}.",
                    field="state",
                ) from None
        async with self._uow(read_only=True) as uow:
            campaign = await self._get(uow, scope, campaign_id)
            assert campaign.id is not None
            found = await uow.campaigns.recipients_page(
                campaign.id, wanted, cursor_id(cursor), size + 1
            )
        more = len(found) > size
        items = found[:size]
        return Page(items, str(items[-1].id) if more and items else None)

    # -- the web app: a signed-in viewer's campaigns, across the account's domains ---------------

    async def scope_for(self, viewer: Viewer, campaign_id: str) -> CampaignScope:
        """The scope of one of the viewer's account's campaigns (another account's: NotFound).
        Campaigns send from any mailbox of a domain: owners and admins run them."""
        require_manager(viewer, "run campaigns")
        async with self._uow(read_only=True) as uow:
            found = await uow.campaigns.get_in_account(
                viewer.account_id, parse_id(campaign_id, "campaign")
            )
            if found is None:
                raise NotFound(f"No campaign {campaign_id} here.")
            domain = await uow.domains.get(found.domain_id)
        assert domain is not None and domain.id is not None
        return CampaignScope(viewer.account_id, domain.id, domain.name)

    async def scope_for_domain(self, viewer: Viewer, domain_name: str) -> CampaignScope:
        """The scope a new campaign of the viewer's account on `domain_name` is made in."""
        require_manager(viewer, "run campaigns")
        async with self._uow(read_only=True) as uow:
            domain = await uow.domains.get_by_name(domain_name.strip().lower())
        if domain is None or domain.id is None or domain.account_id != viewer.account_id:
            raise NotFound(f"No domain {domain_name} here.", field="domain")
        return CampaignScope(viewer.account_id, domain.id, domain.name)

    async def account_page(
        self, viewer: Viewer, *, cursor: str | None, limit: int | None
    ) -> Page[CampaignStats]:
        """The account's campaigns, newest first, each with its counts."""
        require_manager(viewer, "run campaigns")
        size = page_size(limit)
        async with self._uow(read_only=True) as uow:
            found = await uow.campaigns.page_for_account(
                viewer.account_id, cursor_id(cursor), size + 1
            )
            items = []
            for campaign in found[:size]:
                assert campaign.id is not None
                items.append(
                    CampaignStats(
                        campaign,
                        await uow.campaigns.count_recipients(campaign.id),
                        {},
                        await uow.campaigns.stage_counts(campaign.id),
                    )
                )
        more = len(found) > size
        return Page(items, str(items[-1].campaign.id) if more and items else None)

    async def choices(self, viewer: Viewer) -> CampaignChoices:
        """The account's mailboxes, sender groups and contact lists a campaign may use."""
        require_manager(viewer, "run campaigns")
        async with self._uow(read_only=True) as uow:
            mailboxes = await uow.mailboxes.list_for_account(viewer.account_id)
            domains = await uow.domains.list_for_account(viewer.account_id)
            lists = await uow.contacts.all_lists(viewer.account_id)
        groups: list[tuple[str, SenderGroup]] = []
        for domain, _ in domains:
            assert domain.id is not None
            groups += [
                (domain.name, view.group) for view in await self._sender_groups.list(domain.id)
            ]
        return CampaignChoices(mailboxes, groups, lists)

    async def audience_sample(
        self, scope: CampaignScope, campaign_id: str, *, limit: int = 50
    ) -> list[Contact]:
        """Contacts of the campaign's first list or segment, to preview the stages for."""
        async with self._uow(read_only=True) as uow:
            campaign = await self._get(uow, scope, campaign_id)
            for list_id in campaign.audience.list_ids:
                contact_list = await uow.contacts.get_list(scope.account_id, list_id)
                if contact_list is None:
                    continue
                where = contact_list.segment or ContactFilter(list_id=list_id)
                found = await uow.contacts.page(scope.account_id, where, None, limit)
                if found:
                    return found
        return []

    async def activity(
        self, scope: CampaignScope, campaign_id: str, *, bucket: str | None = None
    ) -> Activity:
        """Sends, people's opens and clicks, and replies per hour or day, in the campaign's
        time zone (the charts of its analytics)."""
        wanted = None
        if bucket is not None:
            try:
                wanted = Bucket(bucket)
            except ValueError:
                raise InvalidInput("bucket is hour or day.", field="bucket") from None
        async with self._uow(read_only=True) as uow:
            campaign = await self._get(uow, scope, campaign_id)
            assert campaign.id is not None
            hits = await uow.campaigns.activity(
                campaign.id, quarter_hours=off_the_hour(campaign.schedule.zone, self._clock.now())
            )
        return bucket_activity(hits, campaign.schedule.zone, wanted)

    async def recipient_timeline(
        self, scope: CampaignScope, campaign_id: str, recipient_id: str
    ) -> RecipientTimeline:
        async with self._uow(read_only=True) as uow:
            campaign = await self._get(uow, scope, campaign_id)
            assert campaign.id is not None
            with naming("recipientId"):
                number = parse_id(recipient_id, "recipient")
            recipient = await uow.campaigns.recipient(campaign.id, number)
            if recipient is None:
                raise NotFound(f"No recipient {recipient_id} in this campaign.")
            messages = await uow.campaigns.recipient_messages(recipient.id)
            events = await uow.campaigns.recipient_events(recipient.id)
        return timeline(recipient, messages, events)

    async def export_recipients(
        self, scope: CampaignScope, campaign_id: str, *, batch: int = 500
    ) -> AsyncIterator[str]:
        """The recipients as CSV records, a page at a time (bounded memory for any audience);
        the caller writes `EXPORT_HEADER` first. The campaign is checked before the first."""
        async with self._uow(read_only=True) as uow:
            campaign = await self._get(uow, scope, campaign_id)
        assert campaign.id is not None
        campaign_key = campaign.id

        async def pages() -> AsyncIterator[str]:
            after: int | None = None
            while True:
                async with self._uow(read_only=True) as uow:
                    found = await uow.campaigns.recipients_page(campaign_key, None, after, batch)
                    counts = await uow.campaigns.recipient_event_counts([r.id for r in found])
                if not found:
                    return
                yield export_lines(found, counts)
                if len(found) < batch:
                    return
                after = found[-1].id

        return pages()

    # -- changing ------------------------------------------------------------------------------

    async def create(self, scope: CampaignScope, draft: CampaignDraft) -> Campaign:
        now = self._clock.now()
        stages = clean_stages(draft.stages)
        audience = clean_audience(draft.audience)
        schedule = clean_schedule(draft.schedule)
        name = clean_name(draft.name)
        async with self._uow() as uow:
            mailbox_id, group_id = await self._sender(uow, scope, draft)
            await self._check_lists(uow, scope, audience)
            campaign = await uow.campaigns.add(
                Campaign(
                    account_id=scope.account_id,
                    domain_id=scope.domain_id,
                    name=name,
                    status=CampaignStatus.DRAFT,
                    stages=stages,
                    audience=audience,
                    schedule=schedule,
                    created_at=now,
                    updated_at=now,
                    mailbox_id=mailbox_id,
                    sender_group_id=group_id,
                )
            )
            assert campaign.id is not None
            stored = await uow.campaigns.get(scope.domain_id, campaign.id)
            await uow.commit()
        assert stored is not None
        return stored

    async def update(
        self, scope: CampaignScope, campaign_id: str, draft: CampaignDraft
    ) -> Campaign:
        """Change a draft or paused campaign. A launched one keeps its recipients; new stages
        and a new schedule apply to what is still to send."""
        async with self._uow() as uow:
            campaign = await self._locked(uow, scope, campaign_id)
            if campaign.status not in EDITABLE:
                raise Conflict(f"A {campaign.status} campaign cannot be changed; pause it first.")
            changed = campaign
            if draft.name is not None:
                changed = replace(changed, name=clean_name(draft.name))
            if draft.stages is not None:
                stages = clean_stages(draft.stages)
                if campaign.status is not CampaignStatus.DRAFT and len(stages) < len(
                    campaign.stages
                ):
                    raise InvalidInput(
                        "A launched campaign's stages can be changed or added, not removed.",
                        field="stages",
                    )
                changed = replace(changed, stages=stages)
            if draft.schedule is not None:
                changed = replace(changed, schedule=clean_schedule(draft.schedule))
            if draft.audience is not None:
                if campaign.status is not CampaignStatus.DRAFT:
                    raise InvalidInput("A launched campaign's audience is fixed.", field="audience")
                audience = clean_audience(draft.audience)
                await self._check_lists(uow, scope, audience)
                changed = replace(changed, audience=audience)
            if draft.from_address is not None or draft.sender_group_id is not None:
                mailbox_id, group_id = await self._sender(uow, scope, draft)
                changed = replace(changed, mailbox_id=mailbox_id, sender_group_id=group_id)
            changed = replace(changed, updated_at=self._clock.now())
            await uow.campaigns.update(changed)
            assert campaign.id is not None
            stored = await uow.campaigns.get(scope.domain_id, campaign.id)
            await uow.commit()
        assert stored is not None
        return stored

    async def launch(self, scope: CampaignScope, campaign_id: str) -> Campaign:
        """Fix the audience (subscribed, unsuppressed contacts of its lists and segments, or the
        sender group's recipients) and start sending. QuotaExceeded or AccountPaused, with the
        product's text, when the account may not send now."""
        now = self._clock.now()
        async with self._uow() as uow:
            campaign = await self._locked(uow, scope, campaign_id)
            assert campaign.id is not None
            if campaign.status is not CampaignStatus.DRAFT:
                raise Conflict(f"The campaign is {campaign.status}: only a draft is launched.")
            await self._check_quota(uow, campaign, now)
            senders = await self._senders(uow, campaign)
            if not senders:
                raise InvalidInput("The campaign's sender has no mailbox.", field="from")
            first_at = max(now, campaign.schedule.start_at or now)
            for list_id in campaign.audience.list_ids:
                contact_list = await uow.contacts.get_list(scope.account_id, list_id)
                if contact_list is None:
                    raise NotFound(f"No list {list_id} here.", field="audience.listIds")
                where = contact_list.segment or ContactFilter(list_id=list_id)
                await uow.campaigns.add_contacts(campaign.id, scope.account_id, where, first_at)
            if campaign.audience.sender_group_recipients:
                emails = await self._group_emails(uow, campaign)
                await uow.campaigns.add_emails(campaign.id, emails, first_at)
            if not await uow.campaigns.count_recipients(campaign.id):
                raise InvalidInput(
                    "The audience has nobody to send to (subscribed and not suppressed).",
                    field="audience",
                )
            launched = replace(
                campaign,
                status=CampaignStatus.RUNNING,
                launched_at=now,
                updated_at=now,
                pause_reason="",
            )
            await uow.campaigns.update(launched)
            await uow.commit()
        self._wake()
        return launched

    async def pause(self, scope: CampaignScope, campaign_id: str) -> Campaign:
        return await self._move(
            scope, campaign_id, (CampaignStatus.RUNNING,), CampaignStatus.PAUSED, USER_PAUSED
        )

    async def resume(self, scope: CampaignScope, campaign_id: str) -> Campaign:
        """Send again; refused with the product's text while the account may not send."""
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            campaign = await self._get(uow, scope, campaign_id)
            await self._check_quota(uow, campaign, now)
        resumed = await self._move(
            scope, campaign_id, (CampaignStatus.PAUSED,), CampaignStatus.RUNNING, ""
        )
        self._wake()
        return resumed

    async def cancel(self, scope: CampaignScope, campaign_id: str) -> Campaign:
        return await self._move(
            scope,
            campaign_id,
            (CampaignStatus.DRAFT, CampaignStatus.RUNNING, CampaignStatus.PAUSED),
            CampaignStatus.CANCELED,
            "",
        )

    async def preview(
        self, scope: CampaignScope, campaign_id: str, *, contact_id: str | None, stage: int
    ) -> Preview:
        """A stage as one contact would get it (without a contact: merge tags fall back)."""
        async with self._uow(read_only=True) as uow:
            campaign = await self._get(uow, scope, campaign_id)
            values = MergeValues("")
            if contact_id is not None:
                with naming("contactId"):
                    contact = await uow.contacts.get(
                        scope.account_id, parse_id(contact_id, "contact")
                    )
                    if contact is None:
                        raise NotFound(f"No contact {contact_id} here.")
                values = MergeValues(
                    contact.email,
                    contact.first_name,
                    contact.last_name,
                    contact.company,
                    contact.fields,
                )
        rendered = _render_preview(campaign, stage, values)
        return Preview(
            stage, values.email, rendered.subject, rendered.html, rendered.text, rendered.headers
        )

    async def test_send(
        self,
        scope: CampaignScope,
        campaign_id: str,
        *,
        to: str,
        contact_id: str | None,
        stage: int,
    ) -> Submission:
        """Send one stage, as `contact_id` would get it, to `to` (the author's own address),
        from the campaign's first sender, its subject marked as a test."""
        with naming("to"):
            address = normalize_address(to, "The test address")
        preview = await self.preview(scope, campaign_id, contact_id=contact_id, stage=stage)
        async with self._uow(read_only=True) as uow:
            campaign = await self._get(uow, scope, campaign_id)
            senders = await self._senders(uow, campaign)
        if not senders:
            raise InvalidInput("The campaign's sender has no mailbox.", field="from")
        [submission] = await self._sending.submit_many(
            [
                Draft(
                    mailbox=senders[0],
                    to=(address,),
                    subject=TEST_PREFIX + preview.subject,
                    html=preview.html,
                    text=preview.text,
                    with_signature=False,
                )
            ],
            source="campaign-test",
        )
        return submission

    # -- helpers -------------------------------------------------------------------------------

    async def _move(
        self,
        scope: CampaignScope,
        campaign_id: str,
        allowed: Sequence[CampaignStatus],
        status: CampaignStatus,
        reason: str,
    ) -> Campaign:
        now = self._clock.now()
        async with self._uow() as uow:
            campaign = await self._locked(uow, scope, campaign_id)
            assert campaign.id is not None
            if campaign.status not in allowed:
                raise Conflict(f"The campaign is {campaign.status}.")
            moved = replace(campaign, status=status, pause_reason=reason, updated_at=now)
            if status is CampaignStatus.CANCELED:
                moved = replace(moved, finished_at=now)
                await uow.campaigns.cancel_recipients(campaign.id, now)
            await uow.campaigns.update(moved)
            await uow.commit()
        return moved

    async def _get(self, uow: UnitOfWork, scope: CampaignScope, campaign_id: str) -> Campaign:
        found = await uow.campaigns.get(scope.domain_id, parse_id(campaign_id, "campaign"))
        if found is None:
            raise NotFound(f"No campaign {campaign_id} here.")
        return found

    async def _locked(self, uow: UnitOfWork, scope: CampaignScope, campaign_id: str) -> Campaign:
        campaign = await self._get(uow, scope, campaign_id)
        assert campaign.id is not None
        locked = await uow.campaigns.lock(campaign.id)
        assert locked is not None
        return locked

    async def _sender(
        self, uow: UnitOfWork, scope: CampaignScope, draft: CampaignDraft
    ) -> tuple[int | None, int | None]:
        """(mailbox id, sender group id): exactly one of `from` and `senderGroupId`."""
        if (draft.from_address is None) == (draft.sender_group_id is None):
            raise InvalidInput(
                "Give the sending mailbox (from) or a sender group (senderGroupId), not both.",
                field="from",
            )
        if draft.sender_group_id is not None:
            with naming("senderGroupId"):
                group = await self._sender_groups.get(scope.domain_id, draft.sender_group_id)
            return None, group.group.id
        assert draft.from_address is not None
        with naming("from"):
            address = normalize_address(draft.from_address, "The from address")
            local, _, domain = address.rpartition("@")
            mailbox = None
            if domain.lower() == scope.domain_name:
                mailbox = await uow.mailboxes.find(domain.lower(), local.lower())
            if mailbox is None:
                raise NotFound(f"No mailbox {draft.from_address} here.")
        return mailbox.id, None

    @staticmethod
    async def _check_lists(uow: UnitOfWork, scope: CampaignScope, audience: Audience) -> None:
        for list_id in audience.list_ids:
            if not await uow.contacts.list_exists(scope.account_id, list_id):
                raise NotFound(f"No list {list_id} here.", field="audience.listIds")

    async def _check_quota(self, uow: UnitOfWork, campaign: Campaign, now: datetime) -> None:
        account = await uow.accounts.get(campaign.account_id)
        assert account is not None
        plan = effective_plan(account, now)
        if plan.emails_per_month is not None:
            sent = await uow.usage.sent_in(campaign.account_id, usage_month(now))
            ensure_email_quota(plan, sent)

    async def _senders(self, uow: UnitOfWork, campaign: Campaign) -> list[Mailbox]:
        return await senders_of(uow, self._sender_groups, campaign)

    async def _group_emails(self, uow: UnitOfWork, campaign: Campaign) -> list[str]:
        if campaign.sender_group_id is None:
            raise InvalidInput(
                "senderGroupRecipients needs a sender group as the sender.",
                field="audience.senderGroupRecipients",
            )
        group = await self._sender_groups.get(campaign.domain_id, str(campaign.sender_group_id))
        return list(group.group.emails)


async def senders_of(
    uow: UnitOfWork, sender_groups: SenderGroupService, campaign: Campaign
) -> list[Mailbox]:
    """The mailboxes that send the campaign now (a group's as it stands)."""
    if campaign.mailbox_id is not None:
        mailbox = await uow.mailboxes.get(campaign.mailbox_id)
        return [mailbox] if mailbox is not None else []
    if campaign.sender_group_id is None:
        return []
    try:
        group = await sender_groups.get(campaign.domain_id, str(campaign.sender_group_id))
    except NotFound:
        return []
    return list(group.mailboxes)


def _render_preview(campaign: Campaign, stage: int, values: MergeValues) -> RenderedStage:
    if not 1 <= stage <= len(campaign.stages):
        raise InvalidInput(f"stage is 1 to {len(campaign.stages)}.", field="stage")
    first = campaign.stages[0]
    thread = ThreadState()
    if stage > 1:
        opening = render_stage(first, 1, 0, values, ThreadState())
        thread = ThreadState(opening.thread.subject, ("stage-1@preview.invalid",))
    try:
        return render_stage(campaign.stages[stage - 1], stage, 0, values, thread)
    except HeaderInjection as error:
        error.field = "contactId"
        raise


class _NoLongerRunning(Conflict):
    """A campaign paused, canceled or deleted while a pass was sending its batch."""


class CampaignEngine:
    """One pass over the running campaigns: what is due, within its window, caps and quota, is
    queued. The scheduler loop calls `run_once`; tests call it on an injected clock."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        sending: SendingService,
        sender_groups: SenderGroupService,
        *,
        batch: int = SEND_BATCH,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._sending = sending
        self._sender_groups = sender_groups
        self._batch = batch
        self.woken = asyncio.Event()
        # One pass at a time in this process (the scheduler's, or a caller's).
        self._passing = asyncio.Lock()
        # When each campaign's recipients were last swept for departures and its rates checked.
        self._swept: dict[int, datetime] = {}

    def wake(self) -> None:
        """Run a pass soon (a campaign was launched or resumed)."""
        self.woken.set()

    async def run_once(self) -> int:
        """Send what is due now; how many messages were queued."""
        async with self._passing:
            async with self._uow(read_only=True) as uow:
                running = await uow.campaigns.running()
            queued = 0
            for campaign in running:
                try:
                    queued += await self._advance(campaign)
                except Exception:
                    log.exception("campaign %s: sending failed", campaign.id)
            return queued

    async def _advance(self, campaign: Campaign) -> int:
        assert campaign.id is not None
        now = self._clock.now()
        swept = self._swept.get(campaign.id)
        if swept is None or now - swept >= SWEEP_INTERVAL or now < swept:
            # Whole-campaign work, so not on every pass: a due recipient is checked anyway.
            self._swept[campaign.id] = now
            async with self._uow() as uow:
                await uow.campaigns.stop_departed(campaign.id, now)
                await uow.commit()
            reason = await self._guardrail(campaign)
            if reason is not None:
                await self._pause(campaign, reason)
                return 0
        schedule = campaign.schedule
        if schedule.start_at is not None and now < schedule.start_at:
            return 0
        async with self._uow(read_only=True) as uow:
            due = await uow.campaigns.due(campaign.id, now, self._batch)
            finished = not due and not await uow.campaigns.count_recipients(
                campaign.id, RecipientState.ACTIVE
            )
            if not due or not schedule.open_at(now):
                senders: list[Mailbox] = []
            else:
                senders = await senders_of(uow, self._sender_groups, campaign)
            refusal = await _quota_refusal(uow, campaign, now) if senders else None
            remaining = refusal if isinstance(refusal, int) else None
            usage = {}
            if schedule.daily_cap is not None or schedule.spacing_seconds:
                usage = await uow.campaigns.mailbox_usage(
                    [m.id for m in senders if m.id is not None], schedule.day_start(now)
                )
        if finished:
            await self._finish(campaign)
            return 0
        if not due or not schedule.open_at(now):
            return 0
        if not senders:
            await self._pause(campaign, "The campaign's sender has no mailbox any more.")
            return 0
        if isinstance(refusal, str):
            await self._pause(campaign, refusal)
            return 0
        departed = [r for r in due if r.departed is not None]
        if departed:
            await self._stop_departed(departed, now)
            due = [r for r in due if r.departed is None]
        # The sending path's own rule: the domain's suppression list and the account's
        # one-click unsubscribes (SendingService refuses the batch for either).
        suppressed = await self._sending.suppressed(
            senders[0], [r.email for r in due], campaign=True
        )
        picked = assign_senders(due, senders, usage, schedule, now, remaining)
        stopped = [
            (r, suppressed[r.email.lower()]) for r, _ in picked if r.email.lower() in suppressed
        ]
        if stopped:
            await self._stop_suppressed(stopped, now)
        sending = [(r, m) for r, m in picked if r.email.lower() not in suppressed]
        return await self._send(campaign, sending, now)

    async def _send(
        self, campaign: Campaign, picked: Sequence[tuple[DueRecipient, Mailbox]], now: datetime
    ) -> int:
        assert campaign.id is not None
        campaign_id = campaign.id
        drafts: list[Draft] = []
        planned: list[tuple[DueRecipient, Mailbox, RenderedStage]] = []
        failed: list[tuple[int, str]] = []
        for recipient, mailbox in picked:
            stage = campaign.stages[recipient.next_stage - 1]
            try:
                rendered = render_stage(
                    stage,
                    recipient.next_stage,
                    variant_for(recipient.id, stage),
                    recipient.values,
                    recipient.thread,
                )
            except HeaderInjection as refused:
                failed.append((recipient.id, refused.message))
                continue
            planned.append((recipient, mailbox, rendered))
            drafts.append(
                Draft(
                    mailbox=mailbox,
                    to=(recipient.email,),
                    subject=rendered.subject,
                    html=rendered.html,
                    text=rendered.text,
                    headers=rendered.headers,
                    batch_id=campaign.batch_id,
                    with_signature=False,
                    track_opens=stage.track_opens,
                    track_clicks=stage.track_clicks,
                    unsubscribe=True,
                )
            )
        if failed:
            async with self._uow() as uow:
                for recipient_id, reason in failed:
                    await uow.campaigns.stop([recipient_id], RecipientState.FAILED, reason, now)
                await uow.commit()
        if not drafts:
            return 0
        stages = campaign.stages

        async def record(uow: UnitOfWork, submissions: list[Submission]) -> None:
            sent = []
            for (recipient, mailbox, rendered), submission in zip(
                planned, submissions, strict=True
            ):
                assert mailbox.id is not None
                number = recipient.next_stage
                finished = number >= len(stages)
                following = stages[number] if not finished else None
                sent.append(
                    SentStage(
                        recipient_id=recipient.id,
                        stage=number,
                        variant=rendered.variant,
                        outbound_id=submission.outbound_id,
                        message_id=submission.message_id,
                        mailbox_id=mailbox.id,
                        thread_subject=rendered.thread.subject,
                        references=with_reference(rendered.thread, submission.message_id),
                        next_send_at=now + stage_delay(following) if following else now,
                        finished=finished,
                    )
                )
            await uow.campaigns.record_sent(campaign_id, sent, now)

        async def still_running(uow: UnitOfWork) -> None:
            # A pause or cancel that committed while this pass rendered its batch wins: the row
            # lock makes one wait for the other, so nothing is queued after "paused" is answered.
            current = await uow.campaigns.lock(campaign_id)
            if current is None or current.status is not CampaignStatus.RUNNING:
                raise _NoLongerRunning(f"The campaign is {current.status if current else 'gone'}.")

        try:
            await self._sending.submit_many(
                drafts, source="campaign", before_commit=record, admit=still_running
            )
        except _NoLongerRunning:
            return 0
        except (AccountPaused, QuotaExceeded) as refused:
            await self._pause(campaign, refused.message)
            return 0
        except Suppressed as refused:
            # An address was suppressed or unsubscribed after this pass read the lists: the next
            # pass reads them again and stops that recipient alone.
            log.info("campaign %s: a pass waits for the next: %s", campaign.id, refused.message)
            return 0
        except MailmarkError as refused:
            log.warning("campaign %s paused: %s", campaign.id, refused.message)
            await self._pause(campaign, refused.message)
            return 0
        return len(drafts)

    async def _stop_departed(self, departed: Sequence[DueRecipient], now: datetime) -> None:
        async with self._uow() as uow:
            for recipient in departed:
                assert recipient.departed is not None
                await uow.campaigns.stop(
                    [recipient.id], recipient.departed, recipient.departure_reason, now
                )
            await uow.commit()

    async def _stop_suppressed(
        self, stopped: Sequence[tuple[DueRecipient, str]], now: datetime
    ) -> None:
        async with self._uow() as uow:
            for recipient, reason in stopped:
                state = _SUPPRESSED_STATES.get(reason, RecipientState.SUPPRESSED)
                await uow.campaigns.stop(
                    [recipient.id], state, "The address is on the suppression list.", now
                )
            await uow.commit()

    async def _guardrail(self, campaign: Campaign) -> str | None:
        assert campaign.id is not None
        async with self._uow(read_only=True) as uow:
            return guardrail_reason(await uow.campaigns.stage_counts(campaign.id))

    async def _pause(self, campaign: Campaign, reason: str) -> None:
        assert campaign.id is not None
        async with self._uow() as uow:
            current = await uow.campaigns.lock(campaign.id)
            if current is None or current.status is not CampaignStatus.RUNNING:
                return
            await uow.campaigns.update(
                replace(
                    current,
                    status=CampaignStatus.PAUSED,
                    pause_reason=reason,
                    updated_at=self._clock.now(),
                )
            )
            await uow.commit()
        log.info("campaign %s paused: %s", campaign.id, reason)

    async def _finish(self, campaign: Campaign) -> None:
        assert campaign.id is not None
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.campaigns.lock(campaign.id)
            if current is None or current.status is not CampaignStatus.RUNNING:
                return
            if await uow.campaigns.count_recipients(campaign.id, RecipientState.ACTIVE):
                return
            await uow.campaigns.update(
                replace(current, status=CampaignStatus.COMPLETED, finished_at=now, updated_at=now)
            )
            await uow.commit()


def guardrail_reason(counts: Sequence[StageCounts]) -> str | None:
    """Why a campaign must pause for its bounce or complaint rate, or None."""
    sent = sum(c.sent for c in counts)
    if sent < GUARDRAIL_MIN_SENT:
        return None
    bounced = sum(c.bounced for c in counts)
    complained = sum(c.complained for c in counts)
    if bounced / sent > MAX_BOUNCE_RATE:
        return (
            f"Paused automatically: {bounced} of {sent} emails bounced "
            f"({bounced / sent:.1%}), over the {MAX_BOUNCE_RATE:.0%} limit."
        )
    if complained / sent > MAX_COMPLAINT_RATE:
        return (
            f"Paused automatically: {complained} of {sent} emails drew a spam complaint "
            f"({complained / sent:.2%}), over the {MAX_COMPLAINT_RATE:.1%} limit."
        )
    return None


async def _quota_refusal(uow: UnitOfWork, campaign: Campaign, now: datetime) -> str | int | None:
    """Why the account may not send now (the product's text), or how many emails it may still
    send this month (None: no limit)."""
    account = await uow.accounts.get(campaign.account_id)
    assert account is not None
    try:
        plan = effective_plan(account, now)
        if plan.emails_per_month is None:
            return None
        sent = await uow.usage.sent_in(campaign.account_id, usage_month(now))
        ensure_email_quota(plan, sent)
    except (AccountPaused, QuotaExceeded) as refused:
        return refused.message
    return plan.emails_per_month - sent


def assign_senders(
    due: Sequence[DueRecipient],
    senders: Sequence[Mailbox],
    usage: dict[int, MailboxUsage],
    schedule: Schedule,
    now: datetime,
    remaining: int | None,
) -> list[tuple[DueRecipient, Mailbox]]:
    """Which mailbox sends to whom in this pass. A follow-up comes from its thread's mailbox;
    a first message from the mailbox with the fewest sends today that may still send (PRODUCT.md
    "Campaign sends are distributed across all senders in the group"). Each mailbox keeps to the
    daily cap and, with a spacing, to one message per spacing."""
    by_id = {m.id: m for m in senders if m.id is not None}
    sent_today: dict[int, int] = {}
    left: dict[int, int | None] = {}
    spacing = timedelta(seconds=schedule.spacing_seconds)
    for mailbox_id in by_id:
        used = usage.get(mailbox_id, MailboxUsage(0, None))
        sent_today[mailbox_id] = used.sent_today
        allowance = (
            None if schedule.daily_cap is None else max(0, schedule.daily_cap - used.sent_today)
        )
        if spacing:
            spaced = used.last_sent_at is None or now - used.last_sent_at >= spacing
            allowance = (1 if allowance is None else min(allowance, 1)) if spaced else 0
        left[mailbox_id] = allowance
    picked: list[tuple[DueRecipient, Mailbox]] = []
    for recipient in due:
        if remaining is not None and len(picked) >= remaining:
            break
        chosen: int | None = None
        if recipient.next_stage > 1 and recipient.mailbox_id in by_id:
            if left[recipient.mailbox_id] != 0:
                chosen = recipient.mailbox_id
        else:
            open_ = [mailbox_id for mailbox_id in by_id if left[mailbox_id] != 0]
            if open_:
                chosen = min(open_, key=lambda mailbox_id: (sent_today[mailbox_id], mailbox_id))
        if chosen is None:
            continue
        allowance = left[chosen]
        left[chosen] = None if allowance is None else allowance - 1
        sent_today[chosen] += 1
        picked.append((recipient, by_id[chosen]))
    return picked


class CampaignScheduler(BackgroundLoop):
    """Runs the engine in `serve`: at once when woken (a launch, a resume), else every
    `interval` seconds; again straight away while a pass finds a full batch due. Only the
    leader node runs it (several nodes would race for the same recipients)."""

    name = "campaign scheduler"

    def __init__(
        self,
        engine: CampaignEngine,
        *,
        interval: float,
        leader: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(leader=leader)
        self._engine = engine
        self._interval = interval

    async def _run(self) -> None:
        while not self.stopping:
            queued = 0
            # Cleared before the pass, so a launch or resume during it wakes the next one.
            self._engine.woken.clear()
            if self.leading:
                try:
                    queued = await self._engine.run_once()
                except Exception:
                    log.exception("campaign scheduler pass failed")
            if queued:
                continue
            stop = asyncio.ensure_future(self._pause(self._interval))
            woken = asyncio.ensure_future(self._engine.woken.wait())
            try:
                await asyncio.wait({stop, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                woken.cancel()

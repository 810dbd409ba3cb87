"""/v1/campaigns: multi-stage campaigns of the key's domain: create, change (while a draft or
paused), launch, pause, resume, cancel, stats per stage and variant, recipients, preview and a
test send."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from mailmark.core.apikeys import ApiPrincipal
from mailmark.core.campaign_engine import (
    CampaignDraft,
    CampaignScope,
    CampaignService,
    CampaignStats,
)
from mailmark.core.campaign_records import RecipientView
from mailmark.core.sequences import Campaign
from mailmark.web.api.v1.auth import Injected
from mailmark.web.api.v1.docs import samples

STAGES_EXAMPLE = [
    {
        "subject": "A question about {{company|your team}}",
        "subjectVariants": ["Quick question, {{firstName|there}}"],
        "html": "<p>Hi {{firstName|there}},</p><p>…</p>",
    },
    {"delayDays": 3, "html": "<p>Just following up, {{firstName|there}}.</p>"},
]
SCHEDULE_EXAMPLE = {
    "timezone": "Europe/Paris",
    "startAt": "2026-12-08T09:00",
    "days": [1, 2, 3, 4, 5],
    "hours": [9, 17],
    "dailyCap": 50,
    "spacingSeconds": 120,
}
CAMPAIGN_EXAMPLE = {
    "_id": "7",
    "name": "December outreach",
    "status": "running",
    "from": None,
    "senderGroupId": "3",
    "audience": {"listIds": ["5"], "senderGroupRecipients": False},
    "stages": STAGES_EXAMPLE,
    "schedule": SCHEDULE_EXAMPLE,
    "pauseReason": "",
    "batchId": "campaign_7",
    "createdAt": "2026-12-06T08:00:00+00:00",
    "updatedAt": "2026-12-06T08:00:00+00:00",
    "launchedAt": "2026-12-06T08:05:00+00:00",
    "finishedAt": None,
}
CREATE_EXAMPLE = {
    "name": "December outreach",
    "senderGroupId": "3",
    "audience": {"listIds": ["5"]},
    "stages": STAGES_EXAMPLE,
    "schedule": SCHEDULE_EXAMPLE,
}


class CampaignOut(msgspec.Struct, rename="camel"):
    id: str = msgspec.field(name="_id")
    name: str = ""
    # "draft" | "running" | "paused" | "completed" | "canceled"
    status: str = "draft"
    from_: str | None = msgspec.field(default=None, name="from")
    sender_group_id: str | None = None
    audience: dict[str, Any] = msgspec.field(default_factory=dict)
    stages: list[dict[str, Any]] = msgspec.field(default_factory=list)
    schedule: dict[str, Any] = msgspec.field(default_factory=dict)
    # Why a paused campaign is paused: by its owner, a guardrail, or the plan's quota.
    pause_reason: str = ""
    batch_id: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    launched_at: datetime | None = None
    finished_at: datetime | None = None


class CampaignPage(msgspec.Struct, rename="camel"):
    data: list[CampaignOut]
    next_cursor: str | None


class CampaignIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: str | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    sender_group_id: str | None = None
    audience: dict[str, Any] | None = None
    stages: list[Any] | None = None
    schedule: dict[str, Any] | None = None


class CountsOut(msgspec.Struct, rename="camel"):
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    replied: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    # Opened or clicked by a person: machine opens (privacy proxies) and link scanners left out.
    human_opened: int = 0
    human_clicked: int = 0


class VariantOut(msgspec.Struct, rename="camel"):
    variant: int
    subject: str
    counts: CountsOut


class StageOut(msgspec.Struct, rename="camel"):
    stage: int
    counts: CountsOut
    variants: list[VariantOut]


class StatsOut(msgspec.Struct, rename="camel"):
    campaign_id: str
    status: str
    pause_reason: str
    recipients: int
    # Recipients per state: active, completed, replied, bounced, complained, unsubscribed, …
    states: dict[str, int]
    totals: CountsOut
    stages: list[StageOut]


class RecipientOut(msgspec.Struct, rename="camel"):
    id: str = msgspec.field(name="_id")
    email: str = ""
    contact_id: str | None = None
    state: str = "active"
    stages_sent: int = 0
    next_stage: int = 1
    next_send_at: datetime | None = None
    stop_reason: str = ""
    auto_replies: int = 0
    updated_at: datetime | None = None


class RecipientPage(msgspec.Struct, rename="camel"):
    data: list[RecipientOut]
    next_cursor: str | None


class PreviewIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    stage: int = 1
    contact_id: str | None = None


class PreviewOut(msgspec.Struct, rename="camel"):
    stage: int
    email: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]


class TestSendIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    to: str
    stage: int = 1
    contact_id: str | None = None


class TestSendOut(msgspec.Struct, rename="camel"):
    message_id: str
    email_id: str


def scope_of(principal: ApiPrincipal) -> CampaignScope:
    return CampaignScope(principal.account_id, principal.domain_id, principal.domain_name)


def campaign_out(campaign: Campaign) -> CampaignOut:
    return CampaignOut(
        id=str(campaign.id),
        name=campaign.name,
        status=campaign.status.value,
        from_=campaign.from_address,
        sender_group_id=str(campaign.sender_group_id) if campaign.sender_group_id else None,
        audience=campaign.audience.as_json(),
        stages=[stage.as_json() for stage in campaign.stages],
        schedule=campaign.schedule.as_json(),
        pause_reason=campaign.pause_reason,
        batch_id=campaign.batch_id,
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
        launched_at=campaign.launched_at,
        finished_at=campaign.finished_at,
    )


def recipient_out(recipient: RecipientView) -> RecipientOut:
    return RecipientOut(
        id=str(recipient.id),
        email=recipient.email,
        contact_id=str(recipient.contact_id) if recipient.contact_id else None,
        state=recipient.state.value,
        stages_sent=recipient.stages_sent,
        next_stage=recipient.next_stage,
        next_send_at=recipient.next_send_at,
        stop_reason=recipient.stop_reason,
        auto_replies=recipient.auto_replies,
        updated_at=recipient.updated_at,
    )


def draft_of(data: CampaignIn) -> CampaignDraft:
    return CampaignDraft(
        name=data.name,
        from_address=data.from_,
        sender_group_id=data.sender_group_id,
        audience=data.audience,
        stages=data.stages,
        schedule=data.schedule,
    )


def _counts(source: Any) -> CountsOut:
    return CountsOut(
        **{name: getattr(source, name) for name in CountsOut.__struct_fields__},
    )


def stats_out(stats: CampaignStats) -> StatsOut:
    """Counts per stage and subject variant, and the totals (the /v1 and /api answer)."""
    campaign = stats.campaign
    stages = []
    for number, stage in enumerate(campaign.stages, start=1):
        rows = [c for c in stats.stages if c.stage == number]
        total = CountsOut()
        for row in rows:
            for name in CountsOut.__struct_fields__:
                setattr(total, name, getattr(total, name) + getattr(row, name))
        variants = [
            VariantOut(row.variant, stage.subjects[row.variant % len(stage.subjects)], _counts(row))
            for row in rows
        ]
        stages.append(StageOut(number, total, variants))
    return StatsOut(
        str(campaign.id),
        campaign.status.value,
        campaign.pause_reason,
        stats.recipients,
        stats.by_state,
        totals_of(stats),
        stages,
    )


def totals_of(stats: CampaignStats) -> CountsOut:
    return CountsOut(**{name: stats.total(name) for name in CountsOut.__struct_fields__})


class CampaignController(Controller):
    path = "/campaigns"
    tags = ("Campaigns",)

    @get(
        operation_id="listCampaigns",
        summary="List campaigns",
        operation_class=samples(
            "GET",
            "/v1/campaigns",
            response={"data": [CAMPAIGN_EXAMPLE], "nextCursor": None},
            sdk="const page = await client.listCampaigns();",
        ),
    )
    async def list_campaigns(
        self,
        principal: Injected[ApiPrincipal],
        campaign_service: Injected[CampaignService],
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> CampaignPage:
        """The domain's campaigns, newest first."""
        page = await campaign_service.page(scope_of(principal), cursor=cursor, limit=limit)
        return CampaignPage([campaign_out(c) for c in page.items], page.next_cursor)

    @post(
        operation_id="createCampaign",
        summary="Create a campaign",
        operation_class=samples(
            "POST",
            "/v1/campaigns",
            body=CREATE_EXAMPLE,
            response={**CAMPAIGN_EXAMPLE, "status": "draft", "launchedAt": None},
            status=201,
            sdk="const campaign = await client.createCampaign({ name: 'December outreach', "
            "from: 'sales@yourco.com', audience: { listIds: ['5'] }, stages: [...] });",
        ),
    )
    async def create_campaign(
        self,
        principal: Injected[ApiPrincipal],
        campaign_service: Injected[CampaignService],
        data: JSONBody[CampaignIn],
    ) -> CampaignOut:
        """A draft. The sender is one mailbox (`from`) or a sender group (`senderGroupId`); the
        audience is lists and segments of the account's contacts (`audience.listIds`) and/or the
        sender group's own recipients (`audience.senderGroupRecipients`). Stage 1 needs a
        subject; later stages give `delayDays` (after the previous stage, if no reply) and go
        as replies in the thread unless `newThread` is true; `trackOpens` and `trackClicks`
        (default true) choose a stage's tracking. Merge tags: `{{firstName}}`,
        `{{lastName}}`, `{{company}}`, `{{email}}`, any custom field, with a fallback
        after `|` (`{{firstName|there}}`)."""
        campaign = await campaign_service.create(scope_of(principal), draft_of(data))
        return campaign_out(campaign)

    @get(
        "/{campaign_id:str}",
        operation_id="getCampaign",
        summary="Get a campaign",
        operation_class=samples(
            "GET",
            "/v1/campaigns/7",
            response=CAMPAIGN_EXAMPLE,
            sdk="const campaign = await client.getCampaign('7');",
        ),
    )
    async def get_campaign(
        self,
        principal: Injected[ApiPrincipal],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> CampaignOut:
        return campaign_out(await campaign_service.get(scope_of(principal), campaign_id))

    @patch(
        "/{campaign_id:str}",
        operation_id="updateCampaign",
        summary="Update a campaign",
        operation_class=samples(
            "PATCH",
            "/v1/campaigns/7",
            body={"schedule": {"dailyCap": 80}},
            response=CAMPAIGN_EXAMPLE,
            sdk="await client.updateCampaign('7', { schedule: { dailyCap: 80 } });",
        ),
    )
    async def update_campaign(
        self,
        principal: Injected[ApiPrincipal],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
        data: JSONBody[CampaignIn],
    ) -> CampaignOut:
        """While a draft or paused; fields left out stay. 409 for a running, completed or
        canceled campaign."""
        campaign = await campaign_service.update(scope_of(principal), campaign_id, draft_of(data))
        return campaign_out(campaign)

    @post(
        "/{campaign_id:str}/launch",
        operation_id="launchCampaign",
        summary="Launch a campaign",
        status_code=200,
        operation_class=samples(
            "POST",
            "/v1/campaigns/7/launch",
            response=CAMPAIGN_EXAMPLE,
            sdk="await client.launchCampaign('7');",
        ),
    )
    async def launch_campaign(
        self,
        principal: Injected[ApiPrincipal],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> CampaignOut:
        """Fix the audience (subscribed, unsuppressed contacts) and start sending, now or at
        `schedule.startAt`. 403 with the plan's text when the account may not send."""
        return campaign_out(await campaign_service.launch(scope_of(principal), campaign_id))

    @post(
        "/{campaign_id:str}/pause",
        operation_id="pauseCampaign",
        summary="Pause a campaign",
        status_code=200,
        operation_class=samples(
            "POST",
            "/v1/campaigns/7/pause",
            response={**CAMPAIGN_EXAMPLE, "status": "paused", "pauseReason": "Paused by the user."},
            sdk="await client.pauseCampaign('7');",
        ),
    )
    async def pause_campaign(
        self,
        principal: Injected[ApiPrincipal],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> CampaignOut:
        return campaign_out(await campaign_service.pause(scope_of(principal), campaign_id))

    @post(
        "/{campaign_id:str}/resume",
        operation_id="resumeCampaign",
        summary="Resume a campaign",
        status_code=200,
        operation_class=samples(
            "POST",
            "/v1/campaigns/7/resume",
            response=CAMPAIGN_EXAMPLE,
            sdk="await client.resumeCampaign('7');",
        ),
    )
    async def resume_campaign(
        self,
        principal: Injected[ApiPrincipal],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> CampaignOut:
        return campaign_out(await campaign_service.resume(scope_of(principal), campaign_id))

    @post(
        "/{campaign_id:str}/cancel",
        operation_id="cancelCampaign",
        summary="Cancel a campaign",
        status_code=200,
        operation_class=samples(
            "POST",
            "/v1/campaigns/7/cancel",
            response={**CAMPAIGN_EXAMPLE, "status": "canceled"},
            sdk="await client.cancelCampaign('7');",
        ),
    )
    async def cancel_campaign(
        self,
        principal: Injected[ApiPrincipal],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> CampaignOut:
        """No further stage is sent; emails already queued still go."""
        return campaign_out(await campaign_service.cancel(scope_of(principal), campaign_id))

    @get(
        "/{campaign_id:str}/stats",
        operation_id="getCampaignStats",
        summary="Get a campaign's stats",
        operation_class=samples(
            "GET",
            "/v1/campaigns/7/stats",
            sdk="const stats = await client.getCampaignStats('7');",
        ),
    )
    async def campaign_stats(
        self,
        principal: Injected[ApiPrincipal],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> StatsOut:
        """Counts per campaign, stage and subject variant: sent, delivered, bounced, complained,
        replied, opened and clicked (where tracking recorded them; `humanOpened` and
        `humanClicked` leave out privacy proxies and link scanners), unsubscribed."""
        return stats_out(await campaign_service.stats(scope_of(principal), campaign_id))

    @get(
        "/{campaign_id:str}/recipients",
        operation_id="listCampaignRecipients",
        summary="List a campaign's recipients",
        operation_class=samples(
            "GET",
            "/v1/campaigns/7/recipients?state=replied",
            sdk="const page = await client.listCampaignRecipients('7', { state: 'replied' });",
        ),
    )
    async def campaign_recipients(
        self,
        principal: Injected[ApiPrincipal],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
        in_state: Annotated[str | None, QueryParameter(name="state")] = None,
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> RecipientPage:
        """Each recipient's state in the sequence (`state` filters), oldest first."""
        page = await campaign_service.recipients(
            scope_of(principal), campaign_id, state=in_state, cursor=cursor, limit=limit
        )
        return RecipientPage([recipient_out(r) for r in page.items], page.next_cursor)

    @post(
        "/{campaign_id:str}/preview",
        operation_id="previewCampaign",
        summary="Preview a stage for a contact",
        status_code=200,
        operation_class=samples(
            "POST",
            "/v1/campaigns/7/preview",
            body={"stage": 1, "contactId": "42"},
            sdk="const preview = await client.previewCampaign('7', { stage: 1, contactId: '42' });",
        ),
    )
    async def preview_campaign(
        self,
        principal: Injected[ApiPrincipal],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
        data: JSONBody[PreviewIn],
    ) -> PreviewOut:
        """The stage's subject, HTML and generated text as the contact would get them."""
        preview = await campaign_service.preview(
            scope_of(principal), campaign_id, contact_id=data.contact_id, stage=data.stage
        )
        return PreviewOut(
            preview.stage,
            preview.email,
            preview.subject,
            preview.html,
            preview.text,
            preview.headers,
        )

    @post(
        "/{campaign_id:str}/test-send",
        operation_id="testSendCampaign",
        summary="Send a stage as a test",
        status_code=202,
        operation_class=samples(
            "POST",
            "/v1/campaigns/7/test-send",
            body={"to": "me@yourco.com", "stage": 1, "contactId": "42"},
            response={"messageId": "…@yourco.com", "emailId": "981"},
            status=202,
            sdk="await client.testSendCampaign('7', { to: 'me@yourco.com' });",
        ),
    )
    async def test_send_campaign(
        self,
        principal: Injected[ApiPrincipal],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
        data: JSONBody[TestSendIn],
    ) -> TestSendOut:
        """One stage, rendered for `contactId`, to `to`, its subject starting "[Test] "."""
        submission = await campaign_service.test_send(
            scope_of(principal),
            campaign_id,
            to=data.to,
            contact_id=data.contact_id,
            stage=data.stage,
        )
        return TestSendOut(submission.message_id, str(submission.outbound_id))

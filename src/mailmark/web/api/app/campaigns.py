"""/api/campaigns: the web app's campaign pages, for owners and admins. The same core service as
/v1/campaigns (core/campaign_engine.py), scoped by the signed-in viewer's account instead of an
API key's domain: the list across the account's domains, the editor's choices, create and change,
launch, pause, resume and cancel, stats, activity over time, recipients with their timelines,
preview, test send and a CSV export of the recipients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream

from mailmark.core.access import Viewer
from mailmark.core.campaign_analytics import EXPORT_HEADER, RecipientTimeline
from mailmark.core.campaign_engine import CampaignDraft, CampaignService, CampaignStats
from mailmark.core.contact_csv import csv_line
from mailmark.web.api.v1.auth import Injected
from mailmark.web.api.v1.campaigns import (
    CampaignIn,
    CampaignOut,
    CountsOut,
    PreviewIn,
    PreviewOut,
    RecipientOut,
    RecipientPage,
    StatsOut,
    TestSendIn,
    TestSendOut,
    campaign_out,
    draft_of,
    recipient_out,
    stats_out,
    totals_of,
)

Name = Annotated[str, msgspec.Meta(max_length=253)]


class CampaignSummaryOut(msgspec.Struct, rename="camel"):
    campaign: CampaignOut
    recipients: int
    totals: CountsOut


class CampaignListOut(msgspec.Struct, rename="camel"):
    data: list[CampaignSummaryOut]
    next_cursor: str | None


class NewCampaignIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    # The domain the campaign sends from (its mailbox's, or its sender group's).
    domain: Name
    name: str | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    sender_group_id: str | None = None
    audience: dict[str, object] | None = None
    stages: list[object] | None = None
    schedule: dict[str, object] | None = None


class MailboxChoice(msgspec.Struct, rename="camel"):
    address: str
    domain: str
    display_name: str


class SenderGroupChoice(msgspec.Struct, rename="camel"):
    id: str
    name: str
    domain: str


class ListChoice(msgspec.Struct, rename="camel"):
    id: str
    name: str
    size: int
    segment: bool


class ChoicesOut(msgspec.Struct, rename="camel"):
    mailboxes: list[MailboxChoice]
    sender_groups: list[SenderGroupChoice]
    lists: list[ListChoice]


class ContactChoice(msgspec.Struct, rename="camel"):
    id: str
    email: str
    name: str


class ActivityPointOut(msgspec.Struct, rename="camel"):
    start: datetime
    sent: int
    opened: int
    clicked: int
    replied: int


class ActivityOut(msgspec.Struct, rename="camel"):
    # "hour" | "day": what each point counts, from its `start`.
    bucket: str
    timezone: str
    points: list[ActivityPointOut]


class TimelineEntryOut(msgspec.Struct, rename="camel"):
    at: datetime
    kind: str
    stage: int | None
    detail: str
    machine: bool


class TimelineOut(msgspec.Struct, rename="camel"):
    recipient: RecipientOut
    entries: list[TimelineEntryOut]


def _summary(stats: CampaignStats) -> CampaignSummaryOut:
    return CampaignSummaryOut(campaign_out(stats.campaign), stats.recipients, totals_of(stats))


def _timeline_out(found: RecipientTimeline) -> TimelineOut:
    return TimelineOut(
        recipient_out(found.recipient),
        [
            TimelineEntryOut(entry.at, entry.kind, entry.stage, entry.detail, entry.machine)
            for entry in found.entries
        ],
    )


class CampaignsController(Controller):
    path = "/campaigns"
    tags = ("Campaigns",)

    @get(operation_id="appListCampaigns", summary="The account's campaigns")
    async def list_campaigns(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> CampaignListOut:
        """Newest first, across the account's domains, each with its totals."""
        page = await campaign_service.account_page(viewer, cursor=cursor, limit=limit)
        return CampaignListOut([_summary(s) for s in page.items], page.next_cursor)

    @get("/choices", operation_id="appCampaignChoices", summary="What a campaign can use")
    async def choices(
        self, viewer: Injected[Viewer], campaign_service: Injected[CampaignService]
    ) -> ChoicesOut:
        """The account's mailboxes and sender groups (senders) and contact lists (audiences)."""
        found = await campaign_service.choices(viewer)
        return ChoicesOut(
            mailboxes=[
                MailboxChoice(m.address, m.domain_name, m.display_name) for m in found.mailboxes
            ],
            sender_groups=[
                SenderGroupChoice(str(group.id), group.name, domain)
                for domain, group in found.sender_groups
            ],
            lists=[
                ListChoice(str(item.id), item.name, item.size, item.segment is not None)
                for item in found.lists
            ],
        )

    @post(operation_id="appCreateCampaign", summary="Create a campaign")
    async def create_campaign(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        data: JSONBody[NewCampaignIn],
    ) -> CampaignOut:
        """A draft on `domain`, as POST /v1/campaigns makes it."""
        scope = await campaign_service.scope_for_domain(viewer, data.domain)
        draft = CampaignDraft(
            name=data.name,
            from_address=data.from_,
            sender_group_id=data.sender_group_id,
            audience=data.audience,
            stages=data.stages,
            schedule=data.schedule,
        )
        return campaign_out(await campaign_service.create(scope, draft))

    @get("/{campaign_id:str}", operation_id="appGetCampaign", summary="A campaign")
    async def get_campaign(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> CampaignOut:
        scope = await campaign_service.scope_for(viewer, campaign_id)
        return campaign_out(await campaign_service.get(scope, campaign_id))

    @patch("/{campaign_id:str}", operation_id="appUpdateCampaign", summary="Change a campaign")
    async def update_campaign(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
        data: JSONBody[CampaignIn],
    ) -> CampaignOut:
        """While a draft or paused; fields left out stay."""
        scope = await campaign_service.scope_for(viewer, campaign_id)
        return campaign_out(await campaign_service.update(scope, campaign_id, draft_of(data)))

    @post(
        "/{campaign_id:str}/launch",
        operation_id="appLaunchCampaign",
        summary="Launch a campaign",
        status_code=200,
    )
    async def launch_campaign(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> CampaignOut:
        scope = await campaign_service.scope_for(viewer, campaign_id)
        return campaign_out(await campaign_service.launch(scope, campaign_id))

    @post(
        "/{campaign_id:str}/pause",
        operation_id="appPauseCampaign",
        summary="Pause a campaign",
        status_code=200,
    )
    async def pause_campaign(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> CampaignOut:
        scope = await campaign_service.scope_for(viewer, campaign_id)
        return campaign_out(await campaign_service.pause(scope, campaign_id))

    @post(
        "/{campaign_id:str}/resume",
        operation_id="appResumeCampaign",
        summary="Resume a campaign",
        status_code=200,
    )
    async def resume_campaign(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> CampaignOut:
        scope = await campaign_service.scope_for(viewer, campaign_id)
        return campaign_out(await campaign_service.resume(scope, campaign_id))

    @post(
        "/{campaign_id:str}/cancel",
        operation_id="appCancelCampaign",
        summary="Cancel a campaign",
        status_code=200,
    )
    async def cancel_campaign(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> CampaignOut:
        scope = await campaign_service.scope_for(viewer, campaign_id)
        return campaign_out(await campaign_service.cancel(scope, campaign_id))

    @get("/{campaign_id:str}/stats", operation_id="appCampaignStats", summary="A campaign's stats")
    async def campaign_stats(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> StatsOut:
        scope = await campaign_service.scope_for(viewer, campaign_id)
        return stats_out(await campaign_service.stats(scope, campaign_id))

    @get(
        "/{campaign_id:str}/activity",
        operation_id="appCampaignActivity",
        summary="A campaign's activity over time",
    )
    async def campaign_activity(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
        bucket: FromQuery[str | None] = None,
    ) -> ActivityOut:
        """Sends, people's opens and clicks, and replies per hour or day (`bucket`; by default
        hourly for up to three days of activity) in the campaign's time zone."""
        scope = await campaign_service.scope_for(viewer, campaign_id)
        found = await campaign_service.activity(scope, campaign_id, bucket=bucket)
        campaign = await campaign_service.get(scope, campaign_id)
        return ActivityOut(
            found.bucket.value,
            campaign.schedule.timezone,
            [
                ActivityPointOut(p.start, p.sent, p.opened, p.clicked, p.replied)
                for p in found.points
            ],
        )

    @get(
        "/{campaign_id:str}/recipients",
        operation_id="appCampaignRecipients",
        summary="A campaign's recipients",
    )
    async def campaign_recipients(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
        in_state: Annotated[str | None, QueryParameter(name="state")] = None,
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> RecipientPage:
        scope = await campaign_service.scope_for(viewer, campaign_id)
        page = await campaign_service.recipients(
            scope, campaign_id, state=in_state, cursor=cursor, limit=limit
        )
        return RecipientPage([recipient_out(r) for r in page.items], page.next_cursor)

    @get(
        "/{campaign_id:str}/recipients/{recipient_id:str}",
        operation_id="appCampaignRecipient",
        summary="A recipient's timeline",
    )
    async def campaign_recipient(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
        recipient_id: FromPath[str],
    ) -> TimelineOut:
        """The recipient's state and each stage sent and event of its mail, oldest first."""
        scope = await campaign_service.scope_for(viewer, campaign_id)
        found = await campaign_service.recipient_timeline(scope, campaign_id, recipient_id)
        return _timeline_out(found)

    @get(
        "/{campaign_id:str}/recipients.csv",
        operation_id="appExportCampaignRecipients",
        summary="Export a campaign's recipients as CSV",
    )
    async def export_recipients(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> Stream:
        scope = await campaign_service.scope_for(viewer, campaign_id)
        rows = await campaign_service.export_recipients(scope, campaign_id)

        async def body() -> AsyncIterator[str]:
            yield csv_line(EXPORT_HEADER)
            async for chunk in rows:
                yield chunk

        return Stream(
            body(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"',
                # Recipients' addresses and what they did: never kept in a shared or disk cache.
                "Cache-Control": "no-store",
            },
        )

    @get(
        "/{campaign_id:str}/contacts",
        operation_id="appCampaignContacts",
        summary="Contacts to preview a campaign for",
    )
    async def campaign_contacts(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
    ) -> list[ContactChoice]:
        """Up to 50 contacts of the campaign's audience."""
        scope = await campaign_service.scope_for(viewer, campaign_id)
        found = await campaign_service.audience_sample(scope, campaign_id)
        return [
            ContactChoice(
                str(c.id), c.email, " ".join(part for part in (c.first_name, c.last_name) if part)
            )
            for c in found
        ]

    @post(
        "/{campaign_id:str}/preview",
        operation_id="appPreviewCampaign",
        summary="Preview a stage for a contact",
        status_code=200,
    )
    async def preview_campaign(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
        data: JSONBody[PreviewIn],
    ) -> PreviewOut:
        scope = await campaign_service.scope_for(viewer, campaign_id)
        preview = await campaign_service.preview(
            scope, campaign_id, contact_id=data.contact_id, stage=data.stage
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
        operation_id="appTestSendCampaign",
        summary="Send a stage as a test",
        status_code=202,
    )
    async def test_send_campaign(
        self,
        viewer: Injected[Viewer],
        campaign_service: Injected[CampaignService],
        campaign_id: FromPath[str],
        data: JSONBody[TestSendIn],
    ) -> TestSendOut:
        scope = await campaign_service.scope_for(viewer, campaign_id)
        submission = await campaign_service.test_send(
            scope, campaign_id, to=data.to, contact_id=data.contact_id, stage=data.stage
        )
        return TestSendOut(submission.message_id, str(submission.outbound_id))

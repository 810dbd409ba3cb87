"""The Python SDK's campaign methods, sync and async, against the live listeners."""

from __future__ import annotations

import asyncio

import pytest
from mailmark_sdk import AsyncMailmark, ConflictError, Mailmark, NotFoundError, ValidationError

from tests.sdk.conftest import LiveApi

STAGES = [
    {"subject": "Hi {{firstName|there}}", "html": "<p>Hello {{firstName|there}}</p>"},
    {"delayDays": 2, "html": "<p>Following up</p>"},
]


def _sync_campaign(api: LiveApi) -> None:
    with Mailmark(api.api_key, base_url=api.base_url) as client:
        ann = client.create_contact("ann@example.com", first_name="Ann")
        audience = client.create_list("Audience")
        client.add_list_members(audience.id, emails=[ann.email])
        with pytest.raises(ValidationError) as invalid:
            client.create_campaign(
                name="x", stages=[{"html": "<p>x</p>"}], from_address="sales@acme.test"
            )
        assert invalid.value.field == "stages[0].subject"
        campaign = client.create_campaign(
            name="Intro",
            stages=STAGES,
            from_address="sales@acme.test",
            audience={"listIds": [audience.id]},
            schedule={"timezone": "Europe/Paris", "dailyCap": 50},
        )
        assert (campaign.status, campaign.from_address) == ("draft", "sales@acme.test")
        assert campaign.schedule["dailyCap"] == 50
        preview = client.preview_campaign(campaign.id, contact_id=ann.id)
        assert preview["subject"] == "Hi Ann"
        second = client.preview_campaign(campaign.id, stage=2, contact_id=ann.id)
        assert second["subject"] == "Re: Hi Ann"
        renamed = client.update_campaign(campaign.id, name="Intro 2")
        assert renamed.name == "Intro 2"
        test = client.test_send_campaign(campaign.id, to="me@example.com", contact_id=ann.id)
        assert test["messageId"]
        launched = client.launch_campaign(campaign.id)
        assert launched.status == "running"
        with pytest.raises(ConflictError):
            client.update_campaign(campaign.id, name="no")
        assert client.pause_campaign(campaign.id).pause_reason == "Paused by the user."
        assert client.resume_campaign(campaign.id).status == "running"
        recipients = client.list_campaign_recipients(campaign.id)
        assert [r.email for r in recipients.data] == ["ann@example.com"]
        assert client.get_campaign_stats(campaign.id)["recipients"] == 1
        assert [c.id for c in client.list_campaigns().data] == [campaign.id]
        assert client.cancel_campaign(campaign.id).status == "canceled"
        with pytest.raises(NotFoundError):
            client.get_campaign("999999")


async def test_sync_client_runs_a_campaign(live_api: LiveApi) -> None:
    await asyncio.to_thread(_sync_campaign, live_api)


async def test_async_client_creates_and_reads_campaigns(live_api: LiveApi) -> None:
    async with AsyncMailmark(live_api.api_key, base_url=live_api.base_url) as client:
        group = await client.create_sender_group("Team", mailboxes="all", emails=["x@example.com"])
        campaign = await client.create_campaign(
            name="Group",
            stages=STAGES[:1],
            sender_group_id=group.id,
            audience={"senderGroupRecipients": True},
        )
        assert campaign.sender_group_id == group.id and campaign.from_address is None
        launched = await client.launch_campaign(campaign.id)
        assert launched.status == "running"
        page = await client.list_campaign_recipients(campaign.id, state="active")
        assert [r.email for r in page.data] == ["x@example.com"]
        assert (await client.get_campaign(campaign.id)).batch_id == f"campaign_{campaign.id}"

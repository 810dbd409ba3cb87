"""Pacing over the API on an injected clock: rotation across a sender group's three mailboxes
within each one's daily cap and the sending window (days and hours in the campaign's time zone),
spacing between one mailbox's sends, and the plan's quota checked when each message is about to be
queued (a campaign that reaches it pauses with the product's text)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from mailmark.bootstrap import Services
from mailmark.core.plans import usage_month
from mailmark.core.sequences import CampaignStatus
from mailmark.storage.tables import account_usage
from tests.support.clock import SettableClock
from tests.support.world import World, queued_rows

STAGES = [{"subject": "Hello", "html": "<p>Hi {{firstName|there}}</p>"}]
# SettableClock starts on Monday 2030-01-07 09:00 UTC: 04:00 in New York.
NEW_YORK_NINE = datetime(2030, 1, 7, 14, 0, tzinfo=UTC)


async def group_campaign(
    api: httpx.AsyncClient, services: Services, emails: list[str], schedule: dict[str, object]
) -> str:
    await services.mailboxes.create("info@acme.test")
    group = await api.post(
        "/v1/sender-groups",
        json={"name": "Outbound", "mailboxes": ["sales", "support", "info"], "emails": emails},
    )
    assert group.status_code == 201, group.text
    created = await api.post(
        "/v1/campaigns",
        json={
            "name": "Rotation",
            "senderGroupId": group.json()["_id"],
            "audience": {"senderGroupRecipients": True},
            "stages": STAGES,
            "schedule": schedule,
        },
    )
    assert created.status_code == 201, created.text
    campaign_id: str = created.json()["_id"]
    launched = await api.post(f"/v1/campaigns/{campaign_id}/launch")
    assert launched.status_code == 200, launched.text
    return campaign_id


async def senders(world: World) -> Counter[str]:
    return Counter(from_addr for from_addr, _, _ in await queued_rows(world))


async def queued_after_a_pass(services: Services, world: World) -> int:
    """Run the engine at the clock's time; how many emails are queued in all. (A launch also
    wakes the scheduler of `serve`, whose pass may come first: the totals are the same.)"""
    await services.campaign_engine.run_once()
    return len(await queued_rows(world))


async def test_rotation_keeps_each_mailbox_to_its_cap_inside_the_window(
    services: Services, world: World, api: httpx.AsyncClient, clock: SettableClock
) -> None:
    emails = [f"r{n}@remote.test" for n in range(10)]
    await group_campaign(
        api,
        services,
        emails,
        {"timezone": "America/New_York", "days": [1, 2, 3, 4, 5], "hours": [9, 17], "dailyCap": 2},
    )
    assert await queued_after_a_pass(services, world) == 0  # 04:00 in New York
    clock.current = NEW_YORK_NINE
    assert await queued_after_a_pass(services, world) == 6
    assert await senders(world) == {
        "sales@acme.test": 2,
        "support@acme.test": 2,
        "info@acme.test": 2,
    }
    clock.advance(timedelta(hours=3))
    assert await queued_after_a_pass(services, world) == 6  # every mailbox is at its cap
    clock.current = NEW_YORK_NINE + timedelta(days=3, hours=8)  # Thursday 17:00: window closed
    assert await queued_after_a_pass(services, world) == 6
    clock.current = NEW_YORK_NINE + timedelta(days=4, hours=1)  # Friday 10:00
    assert await queued_after_a_pass(services, world) == 10
    sent = await senders(world)
    assert sum(sent.values()) == 10 and max(sent.values()) <= 4 and len(sent) == 3
    assert sorted(recipient for _, recipient, _ in await queued_rows(world)) == sorted(emails)


async def test_the_weekend_and_the_spacing_hold_mail_back(
    services: Services, world: World, api: httpx.AsyncClient, clock: SettableClock
) -> None:
    clock.current = datetime(2030, 1, 12, 10, 0, tzinfo=UTC)  # Saturday
    await group_campaign(
        api,
        services,
        [f"r{n}@remote.test" for n in range(5)],
        {"days": [1, 2, 3, 4, 5], "spacingSeconds": 600},
    )
    assert await queued_after_a_pass(services, world) == 0
    clock.current = datetime(2030, 1, 14, 10, 0, tzinfo=UTC)  # Monday
    assert await queued_after_a_pass(services, world) == 3  # one per mailbox
    clock.advance(timedelta(minutes=5))
    assert await queued_after_a_pass(services, world) == 3  # ten minutes apart
    clock.advance(timedelta(minutes=5))
    assert await queued_after_a_pass(services, world) == 5


async def test_a_campaign_that_reaches_the_monthly_limit_pauses_with_the_plan_text(
    services: Services, world: World, api: httpx.AsyncClient, clock: SettableClock
) -> None:
    await services.accounts.change_plan("acme", "starter")
    domain = await services.domains.get(world.domain)
    async with services.engine.begin() as conn:
        await conn.execute(
            account_usage.insert().values(
                account_id=domain.account_id, month=usage_month(clock.now()), emails_sent=998
            )
        )
    campaign_id = await group_campaign(api, services, [f"r{n}@remote.test" for n in range(5)], {})
    assert await queued_after_a_pass(services, world) == 2
    campaign = (await api.get(f"/v1/campaigns/{campaign_id}")).json()
    assert campaign["status"] == "paused"
    assert campaign["pauseReason"] == (
        "Monthly email limit reached (1000 emails). Please upgrade your plan."
    )
    resumed = await api.post(f"/v1/campaigns/{campaign_id}/resume")
    assert resumed.status_code == 403
    assert resumed.json()["error"]["message"].startswith("Monthly email limit reached")
    async with services.engine.connect() as conn:
        sent = (await conn.execute(sa.select(account_usage.c.emails_sent))).scalar_one()
    assert sent == 1000
    # A new month: the quota resets and the campaign goes on where it stopped.
    clock.current = datetime(2030, 2, 1, 9, 0, tzinfo=UTC)
    assert (await api.post(f"/v1/campaigns/{campaign_id}/resume")).status_code == 200
    assert await queued_after_a_pass(services, world) == 5
    recipients = (await api.get(f"/v1/campaigns/{campaign_id}/recipients")).json()["data"]
    assert [r["stagesSent"] for r in recipients] == [1, 1, 1, 1, 1]


async def test_an_address_unsubscribed_from_the_account_stops_alone(
    services: Services, world: World, api: httpx.AsyncClient, clock: SettableClock
) -> None:
    # The sender group's own recipients have no contact: only the account-wide list of
    # one-click unsubscribes (core/unsubscribe.py) says that r1 asked for no more.
    async with services.uow() as uow:
        await uow.suppressions.add_for_account(
            world.sales.account_id, "r1@remote.test", "unsubscribe", clock.now()
        )
        await uow.commit()
    campaign_id = await group_campaign(api, services, [f"r{n}@remote.test" for n in range(3)], {})

    assert await queued_after_a_pass(services, world) == 2
    campaign = (await api.get(f"/v1/campaigns/{campaign_id}")).json()
    recipients = (await api.get(f"/v1/campaigns/{campaign_id}/recipients")).json()["data"]
    assert campaign["status"] == "completed", campaign
    assert {r["email"]: r["state"] for r in recipients} == {
        "r0@remote.test": "completed",
        "r1@remote.test": "unsubscribed",
        "r2@remote.test": "completed",
    }
    assert sorted(recipient for _, recipient, _ in await queued_rows(world)) == [
        "r0@remote.test",
        "r2@remote.test",
    ]


async def test_a_pause_that_commits_while_a_pass_renders_queues_nothing(
    services: Services, world: World, api: httpx.AsyncClient, clock: SettableClock
) -> None:
    # Not due until tomorrow, so that no pass of the scheduler sends before the pause is held.
    start = (clock.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    campaign_id = await group_campaign(
        api, services, [f"r{n}@remote.test" for n in range(3)], {"startAt": start}
    )
    clock.advance(timedelta(days=1, minutes=1))
    # The pause is written but not committed when the pass starts: the pass reads the
    # campaign as running, renders its batch, and must see the pause before it queues.
    async with services.uow() as uow:
        held = await uow.campaigns.lock(int(campaign_id))
        assert held is not None and held.status is CampaignStatus.RUNNING
        await uow.campaigns.update(
            replace(held, status=CampaignStatus.PAUSED, pause_reason="Paused by you.")
        )
        passing = asyncio.create_task(services.campaign_engine.run_once())
        await asyncio.sleep(0.5)
        await uow.commit()
    assert await passing == 0
    assert await queued_rows(world) == []
    campaign = (await api.get(f"/v1/campaigns/{campaign_id}")).json()
    assert campaign["status"] == "paused", campaign

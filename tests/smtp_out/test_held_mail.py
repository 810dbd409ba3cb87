"""Scheduled mail of a paused or over-quota account: held in the queue when it becomes due, with
the product's text, and delivered to a receiving MTA on loopback once the account may send again,
or bounced once its queue lifetime has passed. The clock moves by hand past the schedule."""

from __future__ import annotations

import datetime
from datetime import timedelta
from pathlib import Path

import httpx

from mailmark.bootstrap import Listeners, Services
from mailmark.config import Settings
from mailmark.core.plans import PAUSED_TEXT
from mailmark.core.queue import HOLD_RECHECK
from tests.smtp_out.conftest import QUEUE_LIFETIME, delivered_to, send
from tests.support.clock import SettableClock
from tests.support.serve import cli_environment, mailmark
from tests.support.smtp_sink import AiosmtpdSink
from tests.support.world import World, stored_copies

STARTER_LIMIT = "Monthly email limit reached (1000 emails). Please upgrade your plan."


async def email(api: httpx.AsyncClient, message_id: str) -> dict[str, object]:
    answer = await api.get(f"/v1/emails/{message_id}")
    assert answer.status_code == 200, answer.text
    detail: dict[str, object] = answer.json()
    return detail


async def use_up_starter_quota(api: httpx.AsyncClient, clock: SettableClock) -> None:
    """1,100 recipients this month, scheduled far beyond the test (accepted on Pro, whose limit
    is 25,000): more than Starter's 1,000."""
    for batch in range(11):
        to = [f"r{batch}-{n}@far.test" for n in range(100)]
        await send(api, clock, to, timedelta(days=20))


async def test_a_paused_accounts_scheduled_mail_is_held_then_sent_on_resume(
    api: httpx.AsyncClient,
    listeners: Listeners,
    services: Services,
    world: World,
    sink: AiosmtpdSink,
    clock: SettableClock,
) -> None:
    held = await send(api, clock, ["ann@remote.test", "bob@remote.test"], timedelta(hours=1))
    await services.accounts.pause("acme")

    clock.advance(timedelta(hours=1, minutes=1))
    await listeners.outbound.wait_until_idle()

    assert delivered_to(sink) == []
    detail = await email(api, held)
    assert detail["status"] == "held"
    assert [
        (r["status"], r["attempts"], r["lastCode"], r["lastReply"])
        for r in detail["recipients"]  # type: ignore[attr-defined]
    ] == [("held", 0, None, PAUSED_TEXT)] * 2
    # Not sent, so still in the Outbox, where it can be seen and withdrawn.
    assert [c.folder for c in await stored_copies(services, world.sales)] == ["Outbox"]
    # Looked at again later, it is still held.
    clock.advance(HOLD_RECHECK + timedelta(seconds=1))
    await listeners.outbound.wait_until_idle()
    assert delivered_to(sink) == []

    overview, released = await services.accounts.resume("acme")
    await listeners.outbound.wait_until_idle()

    assert (overview.status, released) == ("active", 2)
    assert delivered_to(sink) == ["ann@remote.test", "bob@remote.test"]
    detail = await email(api, held)
    assert detail["status"] == "delivered"
    assert [r["attempts"] for r in detail["recipients"]] == [1, 1]  # type: ignore[attr-defined]
    assert [c.folder for c in await stored_copies(services, world.sales)] == ["Sent"]


async def test_a_held_email_can_be_canceled(
    api: httpx.AsyncClient, listeners: Listeners, services: Services, clock: SettableClock
) -> None:
    held = await send(api, clock, ["ann@remote.test"], timedelta(minutes=5))
    await services.accounts.pause("acme")
    clock.advance(timedelta(minutes=6))
    await listeners.outbound.wait_until_idle()

    canceled = await api.post(f"/v1/emails/{held}/cancel")

    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["canceled"] == ["ann@remote.test"]
    assert (await email(api, held))["status"] == "canceled"


async def test_mail_over_a_lowered_plans_quota_is_held_until_the_plan_allows_it(
    api: httpx.AsyncClient,
    listeners: Listeners,
    services: Services,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
    sink: AiosmtpdSink,
    clock: SettableClock,
) -> None:
    await services.accounts.change_plan("acme", "pro")
    await use_up_starter_quota(api, clock)
    due = await send(api, clock, ["ann@remote.test"], timedelta(hours=1))
    lowered, _ = await services.accounts.change_plan("acme", "starter")

    clock.advance(timedelta(hours=1, minutes=1))
    await listeners.outbound.wait_until_idle()

    assert STARTER_LIMIT in lowered.notices
    assert delivered_to(sink) == []
    [recipient] = (await email(api, due))["recipients"]  # type: ignore[misc]
    assert (recipient["status"], recipient["lastReply"]) == ("held", STARTER_LIMIT)
    # The operator sees it, and why, in the queue.
    env = cli_environment(settings.data_dir, database_url)
    listed = await mailmark(env, "queue", "list", "--status", "held", "--json", cwd=tmp_path)
    assert listed.code == 0, listed.err
    assert [(e["to"], e["status"], e["lastReply"]) for e in listed.json] == [  # type: ignore[union-attr]
        ("ann@remote.test", "held", STARTER_LIMIT)
    ]
    text = await mailmark(env, "queue", "list", "--status", "held", cwd=tmp_path)
    assert "held" in text.out and STARTER_LIMIT in text.out

    _, released = await services.accounts.change_plan("acme", "pro")
    await listeners.outbound.wait_until_idle()

    assert released == 1
    assert delivered_to(sink) == ["ann@remote.test"]
    assert (await email(api, due))["status"] == "delivered"


async def test_quota_held_mail_goes_out_when_the_month_turns(
    api: httpx.AsyncClient,
    listeners: Listeners,
    services: Services,
    sink: AiosmtpdSink,
    clock: SettableClock,
) -> None:
    clock.current = datetime.datetime(2030, 1, 31, 22, 0, tzinfo=datetime.UTC)
    await services.accounts.change_plan("acme", "pro")
    await use_up_starter_quota(api, clock)
    due = await send(api, clock, ["ann@remote.test"], timedelta(hours=1))
    await services.accounts.change_plan("acme", "starter")
    clock.advance(timedelta(hours=1, minutes=1))
    await listeners.outbound.wait_until_idle()
    assert (await email(api, due))["status"] == "held"

    # February's count starts at nothing: the held row's next look (never later than the
    # month's turn) sends it.
    clock.current = datetime.datetime(2030, 2, 1, 0, 0, 1, tzinfo=datetime.UTC)
    await listeners.outbound.wait_until_idle()

    assert delivered_to(sink) == ["ann@remote.test"]
    assert (await email(api, due))["status"] == "delivered"


async def test_mail_held_past_its_queue_lifetime_bounces_to_the_sender(
    api: httpx.AsyncClient,
    listeners: Listeners,
    services: Services,
    world: World,
    sink: AiosmtpdSink,
    clock: SettableClock,
) -> None:
    held = await send(api, clock, ["ann@remote.test"], timedelta(hours=1))
    await services.accounts.pause("acme")
    clock.advance(timedelta(hours=1, minutes=1))
    await listeners.outbound.wait_until_idle()
    assert (await email(api, held))["status"] == "held"

    clock.advance(QUEUE_LIFETIME)
    await listeners.outbound.wait_until_idle()

    assert delivered_to(sink) == []
    detail = await email(api, held)
    [recipient] = detail["recipients"]  # type: ignore[misc]
    assert (detail["status"], recipient["lastCode"], recipient["lastStatus"]) == (
        "bounced",
        554,
        "5.7.0",
    )
    assert PAUSED_TEXT in recipient["lastReply"]
    # The sender is told, in a delivery report in its INBOX...
    copies = await stored_copies(services, world.sales)
    assert sorted(c.folder for c in copies) == ["INBOX", "Sent"]
    [report] = [c for c in copies if c.folder == "INBOX"]
    assert PAUSED_TEXT.encode() in report.data
    # ...and the recipient, who refused nothing, is not suppressed.
    assert (await api.get("/v1/suppressions")).json()["data"] == []

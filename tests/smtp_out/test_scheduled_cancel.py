"""Scheduled sends cancelled or rescheduled over /v1 while the running worker delivers the queue to
a receiving MTA on loopback; the clock moves by hand past the schedule."""

from __future__ import annotations

from datetime import timedelta

import httpx

from mailmark.bootstrap import Listeners, Services, outbound_worker
from tests.smtp_out.conftest import delivered_to, send
from tests.support.clock import SettableClock
from tests.support.smtp_sink import AiosmtpdSink
from tests.support.world import World, stored_copies


async def test_a_canceled_scheduled_send_never_reaches_the_sink(
    api: httpx.AsyncClient, listeners: Listeners, sink: AiosmtpdSink, clock: SettableClock
) -> None:
    canceled = await send(api, clock, ["ann@remote.test", "bob@remote.test"], timedelta(hours=1))
    kept = await send(api, clock, ["carol@remote.test"], timedelta(hours=1))

    answer = await api.post(f"/v1/emails/{canceled}/cancel")
    clock.advance(timedelta(hours=2))
    await listeners.outbound.wait_until_idle()

    assert answer.status_code == 200, answer.text
    assert answer.json()["canceled"] == ["ann@remote.test", "bob@remote.test"]
    # The kept one shows that the worker did run past the schedule.
    assert delivered_to(sink) == ["carol@remote.test"]
    detail = (await api.get(f"/v1/emails/{canceled}")).json()
    assert [r["status"] for r in detail["recipients"]] == ["canceled", "canceled"]
    assert (await api.get(f"/v1/emails/{kept}")).json()["status"] == "delivered"


async def test_one_already_sent_cannot_be_canceled(
    api: httpx.AsyncClient, listeners: Listeners, sink: AiosmtpdSink, clock: SettableClock
) -> None:
    sent = await send(api, clock, ["ann@remote.test"], None)
    await listeners.outbound.wait_until_idle()
    assert delivered_to(sink) == ["ann@remote.test"]

    answer = await api.post(f"/v1/emails/{sent}/cancel")
    moved = await api.patch(
        f"/v1/emails/{sent}",
        json={"scheduledAt": int((clock.now() + timedelta(hours=1)).timestamp() * 1000)},
    )

    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "conflict"
    assert moved.status_code == 409, moved.text
    detail = (await api.get(f"/v1/emails/{sent}")).json()
    assert [r["status"] for r in detail["recipients"]] == ["delivered"]
    assert "email.canceled" not in [e["type"] for e in detail["events"]]


async def test_a_partly_attempted_send_cancels_only_its_untried_recipients(
    api: httpx.AsyncClient,
    listeners: Listeners,
    services: Services,
    sink: AiosmtpdSink,
    clock: SettableClock,
) -> None:
    """Another node's worker holds one recipient mid-delivery: only the other is withdrawn, and
    the held one is still delivered once that lease runs out."""
    await listeners.outbound.stop()
    sent = await send(api, clock, ["ann@remote.test", "bob@remote.test"], timedelta(hours=1))
    clock.advance(timedelta(hours=2))
    lease = services.settings.delivery_lease
    [held] = await services.queue.lease_due("other-node", 1, lease)
    untried = ({"ann@remote.test", "bob@remote.test"} - {held.recipient}).pop()

    answer = await api.post(f"/v1/emails/{sent}/cancel")

    assert answer.status_code == 200, answer.text
    assert answer.json()["canceled"] == [untried]
    assert answer.json()["notCanceled"] == [{"address": held.recipient, "status": "queued"}]
    worker = outbound_worker(services)
    worker.start()
    try:
        clock.advance(lease + timedelta(minutes=1))
        await worker.wait_until_idle()
    finally:
        await worker.stop()
    assert delivered_to(sink) == [held.recipient]
    detail = (await api.get(f"/v1/emails/{sent}")).json()
    assert {r["address"]: r["status"] for r in detail["recipients"]} == {
        held.recipient: "delivered",
        untried: "canceled",
    }


async def test_rescheduling_moves_the_delivery(
    api: httpx.AsyncClient, listeners: Listeners, sink: AiosmtpdSink, clock: SettableClock
) -> None:
    sent = await send(api, clock, ["ann@remote.test"], timedelta(hours=1))
    later = clock.now() + timedelta(hours=3)

    moved = await api.patch(
        f"/v1/emails/{sent}", json={"scheduledAt": int(later.timestamp() * 1000)}
    )
    clock.advance(timedelta(hours=2))
    await listeners.outbound.wait_until_idle()

    assert moved.status_code == 200, moved.text
    assert sink.received == []
    clock.advance(timedelta(hours=1))
    await listeners.outbound.wait_until_idle()
    assert delivered_to(sink) == ["ann@remote.test"]


async def test_a_scheduled_send_waits_in_outbox_and_moves_to_sent_when_taken(
    api: httpx.AsyncClient,
    listeners: Listeners,
    services: Services,
    world: World,
    sink: AiosmtpdSink,
    clock: SettableClock,
) -> None:
    """Issue 13: scheduled mail used to be filed in Sent before it was sent."""
    await send(api, clock, ["ann@remote.test"], timedelta(hours=1))
    await listeners.outbound.wait_until_idle()
    assert [c.folder for c in await stored_copies(services, world.sales)] == ["Outbox"]

    clock.advance(timedelta(hours=2))
    await listeners.outbound.wait_until_idle()

    assert delivered_to(sink) == ["ann@remote.test"]
    assert [c.folder for c in await stored_copies(services, world.sales)] == ["Sent"]

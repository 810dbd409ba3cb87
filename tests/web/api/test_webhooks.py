"""Webhooks end to end: the /v1/webhooks routes, events delivered to a receiver on loopback after
MX and outbound deliveries, signatures, retries, giving up, restarts and refused targets."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Services, build_services, outbound_worker, webhook_worker
from mailmark.config import Settings
from mailmark.core.errors import NotFound, TargetRefused
from mailmark.core.webhooks import MAX_ATTEMPTS, RETRY_SCHEDULE, verify_signature
from mailmark.storage.tables import webhook_deliveries
from mailmark.webhooks.worker import WebhookWorker
from tests.fakedns import FakeDns
from tests.smtp_out.conftest import publish_dkim
from tests.smtp_out.remote import TestCa
from tests.support.clock import SettableClock
from tests.support.smtp_sink import AiosmtpdSink
from tests.support.webhook_receiver import Receiver
from tests.support.world import World
from tests.web.api.conftest import Tenant, assert_error


@pytest.fixture
def settings(settings: Settings, sink: AiosmtpdSink) -> Settings:
    # The test-only allowlist: the receiver listens on loopback.
    return settings.model_copy(
        update={"webhook_allow_private_networks": ["127.0.0.1/32"], "remote_smtp_port": sink.port}
    )


async def domain_ids(world: World) -> tuple[int, int]:
    domain = await world.services.domains.get(world.domain)
    assert domain.id is not None
    return domain.account_id, domain.id


async def delivery_rows(services: Services) -> list[sa.Row[tuple[object, ...]]]:
    async with services.engine.connect() as conn:
        query = webhook_deliveries.select().order_by(webhook_deliveries.c.id)
        return list((await conn.execute(query)).all())


def mx_send(port: int, to: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.sendmail(
            "someone@example.net",
            [to],
            f"From: someone@example.net\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@example.net>\r\n\r\nHello.\r\n".encode(),
        )


# --- over the API, with the running listeners -------------------------------------------------


async def test_create_list_and_delete_a_webhook(acme: Tenant, receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.port}/hooks"
    response = await acme.client.post(
        "/v1/webhooks", json={"url": url, "events": ["email.received", "email.bounced"]}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["url"] == url and created["events"] == ["email.received", "email.bounced"]
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40

    listed = (await acme.client.get("/v1/webhooks")).json()
    assert [hook["id"] for hook in listed] == [created["id"]]
    assert "secret" not in listed[0] and listed[0]["deliveries"] == []

    response = await acme.client.delete(f"/v1/webhooks/{created['id']}")
    assert response.status_code == 200 and response.json() == {"deleted": True}
    assert (await acme.client.get("/v1/webhooks")).json() == []
    assert_error(await acme.client.delete(f"/v1/webhooks/{created['id']}"), 404, "not_found")


async def test_all_events_by_default_and_unknown_events_refused(
    acme: Tenant, receiver: Receiver
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/"
    created = (await acme.client.post("/v1/webhooks", json={"url": url})).json()
    assert created["events"] == [
        "email.received",
        "email.delivered",
        "email.deferred",
        "email.bounced",
        "email.complained",
        "email.opened",
        "email.clicked",
        "email.canceled",
        "campaign.replied",
        "email.unsubscribed",
    ]
    response = await acme.client.post("/v1/webhooks", json={"url": url, "events": ["email.sent"]})
    assert "email.sent" in assert_error(response, 400, "invalid_input", field="events")
    response = await acme.client.post("/v1/webhooks", json={"url": url, "events": []})
    assert_error(response, 400, "invalid_input", field="events")


async def test_another_domains_webhook_is_not_found(
    acme: Tenant, other: Tenant, receiver: Receiver
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/"
    created = (await acme.client.post("/v1/webhooks", json={"url": url})).json()
    assert (await other.client.get("/v1/webhooks")).json() == []
    assert_error(await other.client.delete(f"/v1/webhooks/{created['id']}"), 404, "not_found")
    assert_error(await other.client.delete("/v1/webhooks/not-a-number"), 404, "not_found")
    assert [hook["id"] for hook in (await acme.client.get("/v1/webhooks")).json()] == [
        created["id"]
    ]


async def test_webhook_routes_need_a_key(anonymous: httpx.AsyncClient, acme: Tenant) -> None:
    for response in (
        await anonymous.get("/v1/webhooks"),
        await anonymous.post("/v1/webhooks", json={"url": "https://example.com/"}),
        await anonymous.delete("/v1/webhooks/1"),
    ):
        assert response.status_code == 401 and response.json()["error"]["message"], response.text


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("https://127.0.0.2/hook", 422),  # loopback outside the allowlist
        ("https://10.1.2.3/hook", 422),
        ("https://172.16.0.1/hook", 422),
        ("https://192.168.1.1/hook", 422),
        ("https://169.254.169.254/latest/meta-data/", 422),  # cloud metadata
        ("https://100.64.0.1/hook", 422),  # CGNAT
        ("https://[::1]/hook", 422),
        ("https://[fd00::1]/hook", 422),
        ("https://[fe80::1]/hook", 422),
        ("https://[::ffff:10.0.0.1]/hook", 422),  # IPv4-mapped private
        ("https://[::ffff:169.254.169.254]/hook", 422),
        ("https://224.0.0.1/hook", 422),  # multicast
        ("https://0.0.0.0/hook", 422),
        ("https://240.0.0.1/hook", 422),  # reserved
        ("https://internal.webhooks.test/hook", 422),  # a name resolving to a private address
        ("https://mixed.webhooks.test/hook", 422),  # one public, one private address
        ("ftp://example.com/hook", 400),
        ("http://93.184.215.14/hook", 400),  # plain http to the Internet
        ("https://user:pw@93.184.215.14/hook", 400),
        ("https://nowhere.webhooks.test/hook", 400),  # no address at all
        ("not a url", 400),
    ],
)
async def test_internal_and_malformed_targets_are_refused_at_save_time(
    acme: Tenant, fake_dns: FakeDns, url: str, status: int
) -> None:
    fake_dns.add("internal.webhooks.test", "A", "10.0.0.7")
    fake_dns.add("mixed.webhooks.test", "A", "93.184.215.14", "192.168.0.9")
    response = await acme.client.post("/v1/webhooks", json={"url": url})
    assert_error(
        response, status, "target_refused" if status == 422 else "invalid_input", field="url"
    )
    assert (await acme.client.get("/v1/webhooks")).json() == []


async def test_a_public_https_target_is_accepted(acme: Tenant, fake_dns: FakeDns) -> None:
    fake_dns.add("hooks.webhooks.test", "A", "93.184.215.14")
    fake_dns.add("hooks.webhooks.test", "AAAA", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    response = await acme.client.post("/v1/webhooks", json={"url": "https://hooks.webhooks.test/x"})
    assert response.status_code == 201, response.text


async def test_email_received_is_posted_after_an_mx_delivery(
    acme: Tenant, receiver: Receiver, mx_port: int, world: World
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/inbound?src=mailmark"
    created = (
        await acme.client.post("/v1/webhooks", json={"url": url, "events": ["email.received"]})
    ).json()
    await asyncio.to_thread(mx_send, mx_port, world.sales.address, "Order 17")
    await receiver.wait_for(1)
    [request] = receiver.requests
    assert request.method == "POST" and request.target == "/inbound?src=mailmark"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["content-type"] == "application/json"
    event = request.event
    assert event["type"] == "email.received" and event["domain"] == world.domain
    assert isinstance(event["id"], str) and event["id"].startswith("evt_")
    assert request.headers["mailmark-event-id"] == event["id"]
    data = event["data"]
    assert isinstance(data, dict)
    assert data["mailbox"] == world.sales.address and data["subject"] == "Order 17"
    signature = request.headers["mailmark-signature"]
    timestamp = int(signature.split(",")[0].removeprefix("t="))
    assert verify_signature(created["secret"], signature, request.body, timestamp)
    assert not verify_signature(created["secret"], signature, request.body + b" ", timestamp)
    assert not verify_signature("whsec_wrong", signature, request.body, timestamp)

    for _ in range(100):
        [hook] = (await acme.client.get("/v1/webhooks")).json()
        if hook["deliveries"] and hook["deliveries"][0]["status"] == "delivered":
            break
        await asyncio.sleep(0.05)
    [delivery] = hook["deliveries"]
    assert delivery["eventId"] == event["id"] and delivery["event"] == "email.received"
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["lastStatusCode"] == 200


async def test_an_api_send_is_followed_by_delivered_and_bounced_posts(
    acme: Tenant, receiver: Receiver, remote_dns: FakeDns, world: World, sink: AiosmtpdSink
) -> None:
    """API → queue → the remote MTA → webhook, through the running listeners and workers."""
    await publish_dkim(world.services, remote_dns, world.domain)
    created = (
        await acme.client.post(
            "/v1/webhooks",
            json={
                "url": f"http://127.0.0.1:{receiver.port}/out",
                "events": ["email.delivered", "email.bounced"],
            },
        )
    ).json()
    sent = await acme.client.post(
        "/v1/send",
        json={
            "from": "sales@acme.test",
            "to": ["bob@remote.test", "reject@remote.test"],
            "subject": "Figures",
            "text": "Hello",
        },
    )
    assert sent.status_code == 200, sent.text
    await receiver.wait_for(2)
    events = {request.event["type"]: request.event for request in receiver.requests}
    assert set(events) == {"email.delivered", "email.bounced"}
    email = (await acme.client.get(f"/v1/emails/{sent.json()['messageId']}")).json()
    for event in events.values():
        data = event["data"]
        assert isinstance(data, dict) and data["emailId"] == email["_id"]
        assert data["messageId"] == sent.json()["messageId"]
    for request in receiver.requests:
        signature = request.headers["mailmark-signature"]
        timestamp = int(signature.split(",")[0].removeprefix("t="))
        assert verify_signature(created["secret"], signature, request.body, timestamp)
    assert [got.recipients for got in sink.received] == [["bob@remote.test"]]


async def test_a_canceled_send_is_posted_as_email_canceled(
    acme: Tenant, receiver: Receiver, world: World
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/canceled"
    await acme.client.post("/v1/webhooks", json={"url": url, "events": ["email.canceled"]})
    later = world.services.clock.now() + timedelta(hours=1)
    sent = await acme.client.post(
        "/v1/send",
        json={
            "from": "sales@acme.test",
            "to": ["bob@remote.test"],
            "subject": "Not after all",
            "text": "x",
            "scheduledAt": int(later.timestamp() * 1000),
        },
    )
    message_id = sent.json()["messageId"]

    canceled = await acme.client.post(f"/v1/emails/{message_id}/cancel")

    assert canceled.status_code == 200, canceled.text
    await receiver.wait_for(1)
    [request] = receiver.requests
    assert request.headers["mailmark-event-type"] == "email.canceled"
    event = request.event
    assert event["type"] == "email.canceled" and event["domain"] == world.domain
    assert event["data"] == {
        "to": "bob@remote.test",
        "messageId": message_id,
        "status": "canceled",
        "emailId": canceled.json()["_id"],
    }


async def test_other_domains_events_are_not_sent(
    acme: Tenant, other: Tenant, receiver: Receiver, mx_port: int, world: World
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/"
    await other.client.post("/v1/webhooks", json={"url": url})
    await acme.client.post("/v1/webhooks", json={"url": url + "acme"})
    await asyncio.to_thread(mx_send, mx_port, other.mailbox.address, "For other")
    await asyncio.to_thread(mx_send, mx_port, world.sales.address, "For acme")
    await receiver.wait_for(2)
    await asyncio.sleep(0.3)
    by_target = {request.target: request.event for request in receiver.requests}
    assert len(receiver.requests) == 2
    assert by_target["/"]["domain"] == other.domain
    assert by_target["/acme"]["domain"] == acme.domain


# --- the worker driven by hand, with a settable clock -----------------------------------------


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
async def worker(services: Services) -> AsyncIterator[WebhookWorker]:
    hand_driven = webhook_worker(services)
    try:
        yield hand_driven
    finally:
        await hand_driven.close()


async def deliver_inbound(services: Services, world: World, subject: str) -> None:
    raw = f"From: a@example.net\r\nSubject: {subject}\r\n\r\nHi.\r\n".encode()
    await services.delivery.deliver(raw, recipients=[world.sales], mail_from="a@example.net")


async def test_retries_after_500_then_success(
    services: Services,
    world: World,
    worker: WebhookWorker,
    receiver: Receiver,
    clock: SettableClock,
) -> None:
    account_id, domain_id = await domain_ids(world)
    await services.webhooks.create(
        account_id, domain_id, f"http://127.0.0.1:{receiver.port}/", ["email.received"]
    )
    await deliver_inbound(services, world, "Retry me")
    receiver.statuses = [500, 503]
    assert await worker.run_once() == 1
    [row] = await delivery_rows(services)
    assert (row.status, row.attempts, row.last_code) == ("pending", 1, 500)
    assert row.next_attempt_at == clock.now() + RETRY_SCHEDULE[0]
    assert await worker.run_once() == 0  # not due yet

    clock.advance(RETRY_SCHEDULE[0])
    assert await worker.run_once() == 1
    [row] = await delivery_rows(services)
    assert (row.status, row.attempts, row.last_code) == ("pending", 2, 503)
    assert row.next_attempt_at == clock.now() + RETRY_SCHEDULE[1]

    clock.advance(RETRY_SCHEDULE[1])
    assert await worker.run_once() == 1
    [row] = await delivery_rows(services)
    assert (row.status, row.attempts, row.last_code, row.next_attempt_at) == (
        "delivered",
        3,
        200,
        None,
    )
    # Every attempt carries the same event, id and body; the signature's time moves on.
    assert len({request.body for request in receiver.requests}) == 1
    assert len({request.headers["mailmark-signature"] for request in receiver.requests}) == 3


async def test_gives_up_after_the_schedule_and_records_it(
    services: Services,
    world: World,
    worker: WebhookWorker,
    receiver: Receiver,
    clock: SettableClock,
) -> None:
    account_id, domain_id = await domain_ids(world)
    await services.webhooks.create(
        account_id, domain_id, f"http://127.0.0.1:{receiver.port}/", None
    )
    await deliver_inbound(services, world, "Never answered well")
    receiver.statuses = [500] * (MAX_ATTEMPTS + 5)
    started = clock.now()
    for _ in range(MAX_ATTEMPTS):
        assert await worker.run_once() == 1
        [row] = await delivery_rows(services)
        if row.next_attempt_at is not None:
            clock.current = row.next_attempt_at
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", MAX_ATTEMPTS, None)
    assert row.last_code == 500 and row.last_error == "HTTP 500"
    assert timedelta(hours=23) < clock.now() - started < timedelta(hours=26)
    clock.advance(timedelta(days=2))
    assert await worker.run_once() == 0
    assert len(receiver.requests) == MAX_ATTEMPTS
    [view] = await services.webhooks.list_for_domain(domain_id)
    assert [state.status for state in view.recent] == ["failed"]


async def test_redirects_are_not_followed(
    services: Services, world: World, worker: WebhookWorker, receiver: Receiver
) -> None:
    account_id, domain_id = await domain_ids(world)
    await services.webhooks.create(
        account_id, domain_id, f"http://127.0.0.1:{receiver.port}/", None
    )
    await deliver_inbound(services, world, "Moved")
    receiver.statuses = [302]
    assert await worker.run_once() == 1
    assert len(receiver.requests) == 1
    [row] = await delivery_rows(services)
    assert (row.status, row.last_code) == ("pending", 302)
    assert "redirect" in row.last_error


async def test_a_new_worker_delivers_what_a_crashed_one_left(
    services: Services, world: World, receiver: Receiver, clock: SettableClock
) -> None:
    account_id, domain_id = await domain_ids(world)
    await services.webhooks.create(
        account_id, domain_id, f"http://127.0.0.1:{receiver.port}/", None
    )
    await deliver_inbound(services, world, "One")
    await deliver_inbound(services, world, "Two")
    # A worker leases both rows and dies before posting or recording anything.
    leased = await services.webhooks.lease_due(
        "crashed-worker", 50, services.settings.webhook_lease
    )
    assert len(leased) == 2
    successor = webhook_worker(services)
    try:
        assert await successor.run_once() == 0  # the lease still holds
        clock.advance(services.settings.webhook_lease + timedelta(seconds=1))
        assert await successor.run_once() == 2
    finally:
        await successor.close()
    assert sorted(request.event["data"]["subject"] for request in receiver.requests) == [  # type: ignore[index]
        "One",
        "Two",
    ]
    assert [row.status for row in await delivery_rows(services)] == ["delivered", "delivered"]


async def test_rows_survive_a_restart_of_the_services(
    settings: Settings, clock: SettableClock, receiver: Receiver
) -> None:
    first = await build_services(settings, clock=clock)
    try:
        await first.accounts.create(
            "acme", owner_email="o@acme.test", password="pw-123456", plan="unlimited"
        )
        domain = await first.domains.add("acme.test", account_name="acme", trust=True)
        mailbox = await first.mailboxes.create("sales@acme.test", password="pw-123456")
        assert domain.id is not None
        await first.webhooks.create(
            domain.account_id, domain.id, f"http://127.0.0.1:{receiver.port}/", None
        )
        raw = b"From: a@example.net\r\nSubject: Before restart\r\n\r\nHi.\r\n"
        await first.delivery.deliver(raw, recipients=[mailbox], mail_from="a@example.net")
    finally:
        await first.close()
    assert receiver.requests == []
    second = await build_services(settings, clock=clock)
    try:
        restarted = webhook_worker(second)
        try:
            assert await restarted.run_once() == 1
        finally:
            await restarted.close()
    finally:
        await second.close()
    assert receiver.requests[0].event["data"]["subject"] == "Before restart"  # type: ignore[index]


async def test_a_name_repointed_at_a_private_address_after_saving_is_not_connected(
    services: Services,
    world: World,
    worker: WebhookWorker,
    receiver: Receiver,
    fake_dns: FakeDns,
) -> None:
    account_id, domain_id = await domain_ids(world)
    fake_dns.add("hooks.rebind.test", "A", "127.0.0.1")  # allowed by the test allowlist
    await services.webhooks.create(
        account_id, domain_id, f"http://hooks.rebind.test:{receiver.port}/in", None
    )
    await deliver_inbound(services, world, "First")
    assert await worker.run_once() == 1
    [request] = receiver.requests
    # Connected to the checked address, with the URL's name in the Host header.
    assert request.headers["host"] == f"hooks.rebind.test:{receiver.port}"

    fake_dns.remove("hooks.rebind.test", "A")
    fake_dns.add("hooks.rebind.test", "A", "10.20.30.40")
    await deliver_inbound(services, world, "Second")
    assert await worker.run_once() == 1
    assert len(receiver.requests) == 1
    rows = await delivery_rows(services)
    assert rows[-1].status == "pending" and rows[-1].last_code is None
    assert "refused" in rows[-1].last_error and "10.20.30.40" in rows[-1].last_error


async def test_https_goes_to_the_checked_address_with_the_urls_name_for_sni(
    settings: Settings,
    clock: SettableClock,
    world: World,
    fake_dns: FakeDns,
    tmp_path: Path,
    services: Services,
) -> None:
    ca = TestCa(tmp_path / "ca")
    receiver = Receiver(tls=ca.server_context("hooks.secure.test"))
    await receiver.start()
    fake_dns.add("hooks.secure.test", "A", "127.0.0.1")
    account_id, domain_id = await domain_ids(world)
    await services.webhooks.create(
        account_id, domain_id, f"https://hooks.secure.test:{receiver.port}/tls", None
    )
    await deliver_inbound(services, world, "Over TLS")
    trusting = webhook_worker(services, verify=ca.client_context())
    try:
        assert await trusting.run_once() == 1
    finally:
        await trusting.close()
        await receiver.close()
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.secure.test:{receiver.port}"
    [row] = await delivery_rows(services)
    assert row.status == "delivered"


async def test_delete_refuses_another_domains_id(services: Services, world: World) -> None:
    account_id, domain_id = await domain_ids(world)
    await services.accounts.create(
        "b", owner_email="o@b.test", password="pw-123456", plan="unlimited"
    )
    other = await services.domains.add("b.test", account_name="b", trust=True)
    assert other.id is not None
    created = await services.webhooks.create(account_id, domain_id, "http://127.0.0.1:9/", None)
    assert created.webhook.id is not None
    with pytest.raises(NotFound):
        await services.webhooks.delete(other.id, created.webhook.id)
    assert len(await services.webhooks.list_for_domain(domain_id)) == 1


async def test_refused_at_save_time_without_the_allowlist(
    settings: Settings, clock: SettableClock, world: World, fake_dns: FakeDns
) -> None:
    fake_dns.add("localhost.rebind.test", "A", "127.0.0.1")
    strict = await build_services(
        settings.model_copy(update={"webhook_allow_private_networks": []}),
        clock=clock,
    )
    try:
        account_id, domain_id = await domain_ids(World(strict, world.sales, world.support))
        for url in (
            "http://127.0.0.1:8080/",
            "https://127.0.0.1/",
            "https://localhost.rebind.test/",
        ):
            with pytest.raises(TargetRefused) as refused:
                await strict.webhooks.create(account_id, domain_id, url, None)
            assert refused.value.field == "url"
    finally:
        await strict.close()


@pytest.fixture
def remote_dns(fake_dns: FakeDns) -> FakeDns:
    fake_dns.add("remote.test", "MX", "10 mx.remote.test.")
    fake_dns.add("mx.remote.test", "A", "127.0.0.1")
    return fake_dns


async def test_delivered_and_bounced_after_an_outbound_run(
    clock: SettableClock,
    world: World,
    remote_dns: FakeDns,
    receiver: Receiver,
    worker: WebhookWorker,
    services: Services,
) -> None:
    account_id, domain_id = await domain_ids(world)
    created = await services.webhooks.create(
        account_id,
        domain_id,
        f"http://127.0.0.1:{receiver.port}/",
        ["email.delivered", "email.bounced"],
    )
    await publish_dkim(services, remote_dns, world.domain)
    outbound = outbound_worker(services)
    outbound.start()
    try:
        sent = await services.sending.submit(
            mailbox=world.sales,
            to=["bob@remote.test", "reject@remote.test"],
            subject="Figures",
            text="Hello",
        )
        await outbound.wait_until_idle()
    finally:
        await outbound.stop()
    assert await worker.run_once() == 2
    events = {request.event["type"]: request.event for request in receiver.requests}
    assert set(events) == {"email.delivered", "email.bounced"}  # not email.sent
    assert events["email.delivered"]["data"]["to"] == "bob@remote.test"  # type: ignore[index]
    assert events["email.bounced"]["data"]["to"] == "reject@remote.test"  # type: ignore[index]
    assert events["email.bounced"]["data"]["code"] == 550  # type: ignore[index]
    email_id = events["email.delivered"]["data"]["emailId"]  # type: ignore[index]
    assert email_id == events["email.bounced"]["data"]["emailId"]  # type: ignore[index]
    assert email_id == str(sent.outbound_id)
    for request in receiver.requests:
        signature = request.headers["mailmark-signature"]
        assert verify_signature(
            created.secret, signature, request.body, int(clock.now().timestamp())
        )


async def test_a_body_without_url_names_the_field(acme: Tenant) -> None:
    response = await acme.client.post("/v1/webhooks", json={"events": ["email.received"]})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "url"
    response = await acme.client.post("/v1/webhooks", json={"url": 7})
    assert response.status_code == 400 and response.json()["error"]["field"] == "url"
    response = await acme.client.post(
        "/v1/webhooks", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


async def test_a_backlog_of_one_webhook_does_not_crowd_out_another(
    services: Services, world: World, receiver: Receiver
) -> None:
    account_id, domain_id = await domain_ids(world)
    busy = await services.webhooks.create(
        account_id, domain_id, f"http://127.0.0.1:{receiver.port}/busy", ["email.received"]
    )
    for n in range(30):
        await deliver_inbound(services, world, f"Backlog {n}")
    quiet = await services.webhooks.create(
        account_id, domain_id, f"http://127.0.0.1:{receiver.port}/quiet", ["email.received"]
    )
    await deliver_inbound(services, world, "Late 1")
    await deliver_inbound(services, world, "Late 2")
    leased = await services.webhooks.lease_due("w1", 16, services.settings.webhook_lease)
    by_hook = [delivery.webhook_id for delivery in leased]
    assert len(leased) == 16
    assert by_hook.count(quiet.webhook.id) == 2 and by_hook.count(busy.webhook.id) == 14
    # The busy webhook's oldest events go first.
    busy_subjects = sorted(
        int(str(d.event_payload["subject"]).split()[-1])
        for d in leased
        if d.webhook_id == busy.webhook.id and "Backlog" in str(d.event_payload["subject"])
    )
    assert busy_subjects == list(range(14))


async def test_a_batch_to_one_slow_receiver_is_posted_at_once(
    services: Services, world: World, worker: WebhookWorker
) -> None:
    """Sixteen attempts to one receiver answering after 2 s end within one time bound (10 s):
    none queues behind another for a connection."""
    slow = Receiver(delay=2.0)
    await slow.start()
    try:
        account_id, domain_id = await domain_ids(world)
        await services.webhooks.create(
            account_id, domain_id, f"http://127.0.0.1:{slow.port}/", None
        )
        for n in range(16):
            await deliver_inbound(services, world, f"Slow {n}")
        started = asyncio.get_running_loop().time()
        assert await worker.run_once() == 16
        assert asyncio.get_running_loop().time() - started < 8
    finally:
        await slow.close()
    assert {row.status for row in await delivery_rows(services)} == {"delivered"}

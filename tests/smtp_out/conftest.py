"""Fixtures of the outbound tests: a settable clock, a receiving MTA for remote.test and friends
behind the loopback DNS, our DKIM key published there, and the queue's worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from mailmark.bootstrap import Listeners, Services, outbound_worker
from mailmark.config import Settings
from mailmark.smtp_out.worker import OutboundWorker
from tests.fakedns import FakeDns
from tests.support.clock import SettableClock
from tests.support.smtp_sink import AiosmtpdSink
from tests.support.world import World
from tests.web.api.conftest import client

RETRY_SCHEDULE = [timedelta(minutes=5), timedelta(minutes=30)]
QUEUE_LIFETIME = timedelta(hours=2)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def settings(settings: Settings, sink: AiosmtpdSink) -> Settings:
    return settings.model_copy(
        update={
            "remote_smtp_port": sink.port,
            "retry_schedule": RETRY_SCHEDULE,
            "queue_lifetime": QUEUE_LIFETIME,
        }
    )


@pytest.fixture
def remote_dns(fake_dns: FakeDns) -> FakeDns:
    """remote.test and other.test have their MX on the sink (127.0.0.1); down.test's MX address
    refuses connections; nomail.test publishes a null MX."""
    fake_dns.add("remote.test", "MX", "10 mx.remote.test.")
    fake_dns.add("mx.remote.test", "A", "127.0.0.1")
    fake_dns.add("other.test", "MX", "10 mx.other.test.")
    fake_dns.add("mx.other.test", "A", "127.0.0.1")
    fake_dns.add("down.test", "MX", "10 mx.down.test.")
    fake_dns.add("mx.down.test", "A", "127.0.0.9")
    fake_dns.add("nomail.test", "MX", "0 .")
    return fake_dns


async def publish_dkim(services: Services, fake_dns: FakeDns, domain: str) -> None:
    _, records = await services.domains.records(domain)
    for record in records:
        if record.type == "TXT" and "._domainkey." in record.name:
            fake_dns.add(record.name, "TXT", record.value)


@pytest.fixture
async def outbound(
    services: Services, world: World, remote_dns: FakeDns
) -> AsyncIterator[OutboundWorker]:
    """The running worker, with acme.test's DKIM keys published."""
    await publish_dkim(services, remote_dns, world.domain)
    worker = outbound_worker(services)
    worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


@pytest.fixture
async def api(
    listeners: Listeners, world: World, remote_dns: FakeDns
) -> AsyncIterator[httpx.AsyncClient]:
    """An API client of acme.test, whose DKIM keys are published, with the worker running."""
    await publish_dkim(world.services, remote_dns, world.domain)
    key = await world.services.api_keys.create(world.domain, name="tests")
    async with client(listeners.http_port, key.secret) as http:
        yield http


async def send(
    api: httpx.AsyncClient, clock: SettableClock, to: list[str], ahead: timedelta | None
) -> str:
    body: dict[str, object] = {"from": "sales@acme.test", "to": to, "subject": "S", "text": "x"}
    if ahead is not None:
        body["scheduledAt"] = int((clock.now() + ahead).timestamp() * 1000)
    response = await api.post("/v1/send", json=body)
    assert response.status_code == 200, response.text
    message_id: str = response.json()["messageId"]
    return message_id


def delivered_to(sink: AiosmtpdSink) -> list[str]:
    return sorted(r for got in sink.received for r in got.recipients)

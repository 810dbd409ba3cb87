"""/healthz, /readyz and /metrics on the running listeners, over real HTTP, SMTP and IMAP; the
access and SMTP transaction log lines; JSON logs from a real `mailmark serve`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from mailmark.bootstrap import Listeners, Services, mail_server, observability
from mailmark.config import Settings
from mailmark.logs import JsonFormatter
from mailmark.metrics import Metrics
from mailmark.web.app import CONTENT_SECURITY_POLICY, create_app
from tests.support.faults import database_unreachable
from tests.support.serve import Server, free_port
from tests.support.web import api_url
from tests.support.webhook_receiver import Receiver
from tests.support.world import World
from tests.web.conftest import serving

TOKEN = "metrics-token-0123456789abcdef"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A webhook may point at the test's receiver on loopback.
    return settings.model_copy(update={"webhook_allow_private_networks": ["127.0.0.1/32"]})


@pytest.fixture
async def client(listeners: Listeners, world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url(listeners), trust_env=False, timeout=20) as http:
        yield http


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    """GET /metrics, parsed with prometheus_client's own parser: every sample by name and labels."""
    answer = await client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def message(to: str, sender: str = "alice@example.org") -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = "Counted"
    mail.set_content("Hello.\n")
    return mail


async def test_healthz_and_readyz_answer_without_credentials_with_security_headers(
    client: httpx.AsyncClient,
) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert health.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert health.headers["cache-control"] == "no-store"
    assert health.headers["x-request-id"]

    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ok",
        "checks": {"database": "ok", "blob_store": "ok", "queue_worker": "ok"},
    }
    # A POST is a wrong method, not a CSRF failure, and the app's other paths keep their answers.
    assert (await client.post("/healthz")).status_code == 405
    unknown = await client.get("/healthzz")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


async def test_readyz_names_the_database_when_it_cannot_be_reached(
    client: httpx.AsyncClient, services: Services
) -> None:
    async with database_unreachable(services):
        down = await client.get("/readyz")
        # Liveness does not depend on the database.
        assert (await client.get("/healthz")).status_code == 200
    assert down.status_code == 503, down.text
    body = down.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["database"]
    assert body["checks"]["database"].startswith("failed")
    assert body["checks"]["blob_store"] == "ok"
    # The answer is kept for a second; then the checks run again and pass.
    for _ in range(100):
        back = await client.get("/readyz")
        if back.status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert back.status_code == 200, back.text


async def test_counters_move_with_mx_mail_refusals_deliveries_and_imap_sessions(
    client: httpx.AsyncClient, listeners: Listeners, world: World
) -> None:
    before = await scrape(client)
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=listeners.mx_port, start_tls=False
    ) as smtp:
        await smtp.send_message(message(world.sales.address))
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await smtp.send_message(message("nobody@acme.test"))
    # Mail a mailbox sends to another hosted here goes through the queue and is delivered locally.
    await world.services.sending.submit_raw(
        mailbox=world.sales,
        recipients=[world.support.address],
        raw=message(world.support.address, world.sales.address).as_bytes(),
        source="submission",
    )
    await listeners.outbound.wait_until_idle()
    reader, writer = await asyncio.open_connection("127.0.0.1", listeners.imap_port)
    try:
        assert (await reader.readline()).startswith(b"* OK")
        after = await scrape(client)
    finally:
        writer.close()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("mailmark_smtp_connections_total", listener="MX", result="admitted") == 1
    assert moved("mailmark_smtp_messages_accepted_total", listener="MX") == 1
    assert moved("mailmark_smtp_refusals_total", listener="MX", stage="rcpt", code="550 5.1.1") == 1
    assert moved("mailmark_deliveries_total", result="delivered", destination="local") == 1
    assert value(after, "mailmark_imap_sessions", listener="IMAP") == 1
    for status in ("queued", "deferred", "held"):
        assert value(after, "mailmark_queue_depth", status=status) == 0
        assert ("mailmark_queue_oldest_age_seconds", frozenset({("status", status)})) in after
    assert value(after, "mailmark_queue_scrape_ok") == 1
    # Latency by route template and status class: the first scrape, not its raw path.
    assert (
        value(
            after,
            "mailmark_http_request_duration_seconds_count",
            method="GET",
            route="/metrics",
            status="2xx",
        )
        >= 1
    )


async def test_webhook_attempts_are_counted_by_result(
    client: httpx.AsyncClient, listeners: Listeners, world: World, receiver: Receiver
) -> None:
    domain = await world.services.domains.get(world.domain)
    assert domain.id is not None
    await world.services.webhooks.create(
        domain.account_id, domain.id, f"http://127.0.0.1:{receiver.port}/", ["email.received"]
    )
    receiver.statuses = [500]
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=listeners.mx_port, start_tls=False
    ) as smtp:
        await smtp.send_message(message(world.sales.address))
    await receiver.wait_for(1)
    for _ in range(100):  # the count follows the answer within the worker's pass
        samples = await scrape(client)
        if value(samples, "mailmark_webhook_deliveries_total", result="retrying"):
            break
        await asyncio.sleep(0.05)
    assert value(samples, "mailmark_webhook_deliveries_total", result="retrying") == 1
    assert value(samples, "mailmark_webhook_deliveries_total", result="delivered") == 0


async def test_queue_depth_counts_waiting_rows_and_routes_are_templates(
    client: httpx.AsyncClient, listeners: Listeners, world: World
) -> None:
    await listeners.outbound.stop()  # nothing leaves the queue meanwhile
    await world.services.sending.submit_raw(
        mailbox=world.sales,
        recipients=["a@remote.test", "b@remote.test"],
        raw=message("a@remote.test", world.sales.address).as_bytes(),
        source="submission",
    )
    await client.get("/invite/0123456789abcdef")
    await client.get("/no/such/path/at/all")
    for method in ("PROPFIND", "MKCOL"):  # methods outside the known set share one label value
        await client.request(method, "/healthz")
    samples = await scrape(client)
    assert value(samples, "mailmark_queue_depth", status="queued") == 2
    assert value(samples, "mailmark_queue_oldest_age_seconds", status="queued") >= 0
    routes = {dict(labels).get("route") for name, labels in samples if "http_request" in name}
    assert "/invite/{rest}" in routes and "unmatched" in routes
    assert not any(route and "0123456789abcdef" in route for route in routes)
    methods = {dict(labels).get("method") for name, labels in samples if "http_request" in name}
    assert methods == {"GET", "other"}


async def test_metrics_need_the_token_when_one_is_set(services: Services, world: World) -> None:
    guarded = dataclasses.replace(observability(services, []), metrics_token=TOKEN)
    app = create_app(
        mail_server=mail_server(services.settings),
        domains=services.domains,
        mailboxes=services.mailboxes,
        observability=guarded,
    )
    async with serving(app, services) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN}):
            refused = await http.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert refused.json()["error"]["code"] == "unauthenticated"
            assert "mailmark_" not in refused.text
        allowed = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200
        assert "mailmark_queue_depth" in allowed.text
        # Health and readiness stay open to the probes.
        assert (await http.get("/readyz")).status_code == 200


async def test_without_a_token_metrics_are_for_loopback_not_through_a_proxy(
    client: httpx.AsyncClient,
) -> None:
    proxied = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403
    assert "MAILMARK_METRICS_TOKEN" in proxied.json()["error"]["message"]
    assert (await client.get("/metrics")).status_code == 200


def test_a_short_metrics_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(data_dir=tmp_path, metrics_token="short")


def test_each_metrics_registry_counts_apart() -> None:
    first, second = Metrics(), Metrics()
    first.webhook_deliveries.labels("delivered").inc()
    assert b'mailmark_webhook_deliveries_total{result="delivered"} 1.0' in first.exposition(None)
    assert b"mailmark_webhook_deliveries_total{" not in second.exposition(None)


def test_destination_labels_stay_bounded() -> None:
    metrics = Metrics(destination_domains=["gmail.com"])
    assert metrics.destination("GMAIL.com", local=False) == "gmail.com"
    assert metrics.destination("random-1234.example", local=False) == "remote"
    assert metrics.destination("acme.test", local=True) == "local"


async def test_one_log_line_per_smtp_transaction_and_http_request_with_their_ids(
    client: httpx.AsyncClient,
    listeners: Listeners,
    world: World,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=listeners.mx_port, start_tls=False
    ) as smtp:
        _, reply = await smtp.send_message(message(world.sales.address))
    queue_id = reply.rsplit(" ", 1)[1]
    transactions = [r for r in caplog.records if getattr(r, "queue_id", None) == queue_id]
    assert len(transactions) == 1
    line = json.loads(JsonFormatter().format(transactions[0]))
    assert line["level"] == "INFO"
    assert line["logger"] == "mailmark.smtp_in.server"
    assert line["listener"] == "MX" and line["reply"] == "250 2.0.0" and line["recipients"] == 1
    assert queue_id in line["message"]

    answer = await client.get("/api/session", headers={"X-Request-ID": "probe-42"})
    assert answer.headers["x-request-id"] == "probe-42"
    access = [r for r in caplog.records if r.name == "mailmark.access"]
    assert [(r.route, r.status, r.request_id) for r in access] == [  # type: ignore[attr-defined]
        ("/api/session", answer.status_code, "probe-42")
    ]


@pytest.fixture
def json_serve_env(serve_env: dict[str, str]) -> Iterator[dict[str, str]]:
    yield {**serve_env, "MAILMARK_LOG_FORMAT": "json", "MAILMARK_HTTP_PORT": str(free_port())}


async def test_serve_writes_one_json_object_per_line(
    json_serve_env: dict[str, str], tmp_path: Path, servers: list[Server]
) -> None:
    server = await Server.start(json_serve_env, tmp_path)
    servers.append(server)
    await server.wait_for(r"HTTP listening on 127\.0\.0\.1:")
    port = json_serve_env["MAILMARK_HTTP_PORT"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
        answer = await http.get("/api/session")
    await server.wait_for(r'"logger": "mailmark.access"')
    entries = [json.loads(line) for line in server.lines]
    for entry in entries:
        assert {"timestamp", "level", "logger", "message"} <= entry.keys(), entry
    access = next(entry for entry in entries if entry["logger"] == "mailmark.access")
    assert access["method"] == "GET" and access["route"] == "/api/session"
    assert access["status"] == answer.status_code
    assert access["request_id"] == answer.headers["x-request-id"]
    assert isinstance(access["duration_ms"], float)

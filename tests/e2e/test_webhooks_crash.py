"""`mailmark serve` posting 300 webhook events, killed with SIGKILL part-way: after a restart every
event reaches the receiver (at least once) and every outbox row ends delivered."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import build_services
from mailmark.config import Settings
from mailmark.storage.db import create_engine
from mailmark.storage.tables import webhook_deliveries
from tests.fakedns import FakeDns
from tests.support.serve import Server, cli_environment, free_port, settings_for

pytestmark = pytest.mark.slow

EVENTS = 300
LEASE = "15s"
ALLOW = "127.0.0.1/32"


class SlowReceiver:
    """Answers every POST with 200 after 0.1 s, recording the event ids it was sent."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.partition(b":")[2])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                await asyncio.sleep(0.1)
                self.ids.append(json.loads(body)["id"])
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, StopIteration):
            pass
        finally:
            writer.close()


async def undelivered(settings: Settings) -> int:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            query = sa.select(sa.func.count()).where(webhook_deliveries.c.status != "delivered")
            return int((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()


@pytest.fixture
async def receiver() -> AsyncIterator[SlowReceiver]:
    server = SlowReceiver()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def test_kill_9_mid_posting_loses_no_event(
    tmp_path: Path, database_url: str, fake_dns: FakeDns, receiver: SlowReceiver
) -> None:
    data_dir = tmp_path / "data"
    settings = settings_for(data_dir, database_url).model_copy(
        update={"webhook_allow_private_networks": [ALLOW]}
    )
    # Every event and its outbox row is committed before any worker exists.
    services = await build_services(settings)
    try:
        await services.accounts.create(
            "acme", owner_email="owner@acme.test", password="owner-pass-1", plan="unlimited"
        )
        domain = await services.domains.add("acme.test", account_name="acme", trust=True)
        sales = await services.mailboxes.create("sales@acme.test", password="sales-pass-1")
        assert domain.id is not None
        await services.webhooks.create(
            domain.account_id, domain.id, f"http://127.0.0.1:{receiver.port}/hook", None
        )
        for n in range(EVENTS):
            raw = f"From: a@example.net\r\nSubject: Event {n}\r\n\r\nHi.\r\n".encode()
            await services.delivery.deliver(raw, recipients=[sales], mail_from="a@example.net")
    finally:
        await services.close()

    env = cli_environment(
        data_dir,
        database_url,
        MAILMARK_MX_PORT=str(free_port()),
        MAILMARK_SUBMISSION_PORT="0",
        MAILMARK_SUBMISSIONS_PORT="0",
        MAILMARK_IMAP_PORT="0",
        MAILMARK_IMAPS_PORT="0",
        MAILMARK_MANAGESIEVE_PORT="0",
        MAILMARK_HTTP_PORT="0",
        MAILMARK_DNS_NAMESERVERS=fake_dns.address,
        MAILMARK_WEBHOOK_LEASE=LEASE,
        MAILMARK_WEBHOOK_ALLOW_PRIVATE_NETWORKS=ALLOW,
    )
    servers: list[Server] = []
    try:
        first = await Server.start(env, tmp_path)
        servers.append(first)
        await first.wait_for(r"webhook worker \S+ started")
        deadline = time.monotonic() + 60
        while len(set(receiver.ids)) < EVENTS // 3:
            assert time.monotonic() < deadline, f"slow posting:\n{first.log}"
            await asyncio.sleep(0.005)
        os.kill(first.process.pid, signal.SIGKILL)
        assert await first.exit_status(timeout=10) == -signal.SIGKILL
        assert len(set(receiver.ids)) < EVENTS, (
            "the run finished before the kill; nothing was tested"
        )

        second = await Server.start(env, tmp_path)
        servers.append(second)
        await second.wait_for(r"webhook worker \S+ started")
        # The rows the killed worker held come back once its lease has run out.
        deadline = time.monotonic() + 90
        while (waiting := await undelivered(settings)) or len(set(receiver.ids)) < EVENTS:
            assert time.monotonic() < deadline, (
                f"{waiting} rows undelivered, {EVENTS - len(set(receiver.ids))} events never "
                f"arrived:\n{second.log}"
            )
            await asyncio.sleep(0.2)
        second.process.send_signal(signal.SIGTERM)
        assert await second.exit_status(timeout=30) == 0, second.log
    finally:
        for server in servers:
            await server.stop()

    services = await build_services(settings)
    try:
        async with services.engine.connect() as conn:
            statuses = (await conn.execute(sa.select(webhook_deliveries.c.status))).scalars().all()
    finally:
        await services.close()
    assert len(statuses) == EVENTS and set(statuses) == {"delivered"}
    # At least once: only what was in flight at the kill (one leased batch) is posted again.
    assert len(receiver.ids) - EVENTS <= 16

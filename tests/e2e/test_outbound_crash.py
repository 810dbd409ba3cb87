"""`mailmark serve` delivering a 1,000-message queue, killed with SIGKILL half-way: after a restart
every message reaches the remote MTA (at least once) and every queue row ends delivered."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from mailmark.bootstrap import build_services
from tests.fakedns import FakeDns
from tests.support.serve import Server, cli_environment, free_port, settings_for
from tests.support.smtp_sink import AiosmtpdSink

pytestmark = pytest.mark.slow

MESSAGES = 1000
DOMAINS = 5
LEASE = "6s"


def delivered_recipients(sink: AiosmtpdSink) -> set[str]:
    return {recipient for got in sink.received for recipient in got.recipients}


async def test_kill_9_mid_delivery_loses_no_message(
    tmp_path: Path, database_url: str, fake_dns: FakeDns, sink: AiosmtpdSink
) -> None:
    for n in range(DOMAINS):
        fake_dns.add(f"d{n}.remote.test", "MX", f"10 mx.d{n}.remote.test.")
        fake_dns.add(f"mx.d{n}.remote.test", "A", "127.0.0.1")
    data_dir = tmp_path / "data"
    recipients = [f"user{i}@d{i % DOMAINS}.remote.test" for i in range(MESSAGES)]

    # Queue the whole run before any worker exists.
    services = await build_services(settings_for(data_dir, database_url))
    try:
        await services.accounts.create(
            "acme", owner_email="owner@acme.test", password="owner-pass-1", plan="unlimited"
        )
        await services.domains.add("acme.test", account_name="acme", trust=True)
        sales = await services.mailboxes.create("sales@acme.test", password="sales-pass-1")
        for recipient in recipients:
            await services.sending.submit(
                mailbox=sales, to=[recipient], subject=f"For {recipient}", text="Crash test\n"
            )
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
        MAILMARK_REMOTE_SMTP_PORT=str(sink.port),
        MAILMARK_DELIVERY_LEASE=LEASE,
    )
    servers: list[Server] = []
    try:
        first = await Server.start(env, tmp_path)
        servers.append(first)
        await first.wait_for(r"outbound worker \S+ started")
        deadline = time.monotonic() + 60
        while len(delivered_recipients(sink)) < MESSAGES // 3:
            assert time.monotonic() < deadline, f"slow delivery:\n{first.log}"
            await asyncio.sleep(0.005)
        os.kill(first.process.pid, signal.SIGKILL)
        assert await first.exit_status(timeout=10) == -signal.SIGKILL
        at_kill = len(delivered_recipients(sink))
        assert at_kill < MESSAGES, "the run finished before the kill; nothing was tested"

        second = await Server.start(env, tmp_path)
        servers.append(second)
        await second.wait_for(r"outbound worker \S+ started")
        deadline = time.monotonic() + 90
        while len(delivered_recipients(sink)) < MESSAGES:
            assert time.monotonic() < deadline, (
                f"{MESSAGES - len(delivered_recipients(sink))} never arrived:\n{second.log}"
            )
            await asyncio.sleep(0.05)
        second.process.send_signal(signal.SIGTERM)
        assert await second.exit_status(timeout=20) == 0, second.log
    finally:
        for server in servers:
            await server.stop()

    assert delivered_recipients(sink) == set(recipients)
    services = await build_services(settings_for(data_dir, database_url))
    try:
        entries = await services.queue_admin.list(limit=MESSAGES + 10)
    finally:
        await services.close()
    assert len(entries) == MESSAGES
    assert {entry.status for entry in entries} == {"delivered"}
    # At least once: a message whose 250 was not yet recorded at the kill is sent again, no more.
    assert len(sink.received) - MESSAGES <= 400

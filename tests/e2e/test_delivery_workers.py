"""`mailmark serve --delivery-workers 2`: a second process delivers the outbound queue beside the
main one's worker, on SQLite and PostgreSQL alike. Every message goes out exactly once; the extra
process delivers on its own (`serve --delivery-only`), stops with the main process and exits when
that one is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from mailmark.bootstrap import build_services
from tests.e2e.test_http_workers import wait_gone
from tests.fakedns import FakeDns
from tests.support.serve import Server, cli_environment, settings_for
from tests.support.smtp_sink import AiosmtpdSink

pytestmark = pytest.mark.slow

DOMAINS = 3


async def queue_messages(data_dir: Path, database_url: str, count: int, first: int = 0) -> set[str]:
    """Queue `count` one-recipient messages through the core, as the API would; their recipients."""
    recipients = {f"user{n}@d{n % DOMAINS}.remote.test" for n in range(first, first + count)}
    services = await build_services(settings_for(data_dir, database_url))
    try:
        if first == 0:
            await services.accounts.create(
                "acme", owner_email="owner@acme.test", password="owner-pass-1", plan="unlimited"
            )
            await services.domains.add("acme.test", account_name="acme", trust=True)
            await services.mailboxes.create("sales@acme.test", password="sales-pass-1")
        sales = await services.mailboxes.get("sales@acme.test")
        for recipient in sorted(recipients):
            await services.sending.submit(
                mailbox=sales, to=[recipient], subject=f"For {recipient}", text="Hello\n"
            )
    finally:
        await services.close()
    return recipients


def environment(
    tmp_path: Path, database_url: str, fake_dns: FakeDns, sink: AiosmtpdSink
) -> dict[str, str]:
    for n in range(DOMAINS):
        fake_dns.add(f"d{n}.remote.test", "MX", f"10 mx.d{n}.remote.test.")
        fake_dns.add(f"mx.d{n}.remote.test", "A", "127.0.0.1")
    return cli_environment(
        tmp_path / "data",
        database_url,
        **{
            f"MAILMARK_{name}_PORT": "0"
            for name in ("MX", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "MANAGESIEVE", "HTTP")
        },
        MAILMARK_DNS_NAMESERVERS=fake_dns.address,
        MAILMARK_REMOTE_SMTP_PORT=str(sink.port),
    )


async def all_delivered(sink: AiosmtpdSink, expected: set[str], server: Server) -> None:
    deadline = time.monotonic() + 90
    while {r for got in sink.received for r in got.recipients} != expected:
        assert time.monotonic() < deadline, f"delivered {len(sink.received)}:\n{server.log}"
        await asyncio.sleep(0.05)


async def queue_statuses(data_dir: Path, database_url: str) -> list[str]:
    services = await build_services(settings_for(data_dir, database_url))
    try:
        return [entry.status for entry in await services.queue_admin.list(limit=10_000)]
    finally:
        await services.close()


async def test_two_delivery_processes_deliver_every_message_once(
    tmp_path: Path, database_url: str, fake_dns: FakeDns, sink: AiosmtpdSink
) -> None:
    env = environment(tmp_path, database_url, fake_dns, sink)
    data_dir = tmp_path / "data"
    expected = await queue_messages(data_dir, database_url, 200)
    server = await Server.start(env, tmp_path, "--delivery-workers", "2")
    try:
        extra = int((await server.wait_for(r"delivery worker process (\d+) started"))[1])
        # Mail queued while both run: the workers hear of it by their idle poll (SQLite) or the
        # node bus (PostgreSQL), and lease rows without taking each other's.
        await server.wait_for(rf"outbound worker \S+/{extra}/\S+ started")
        expected |= await queue_messages(data_dir, database_url, 200, first=200)
        await all_delivered(sink, expected, server)
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_status(30) == 0, server.log
        assert await wait_gone(extra, 10)
    finally:
        await server.stop()
    assert len(sink.received) == len(expected), "a message went out twice"
    statuses = await queue_statuses(data_dir, database_url)
    assert len(statuses) == len(expected)
    assert set(statuses) == {"delivered"}


async def test_a_delivery_process_delivers_on_its_own(
    tmp_path: Path, database_url: str, fake_dns: FakeDns, sink: AiosmtpdSink
) -> None:
    env = environment(tmp_path, database_url, fake_dns, sink)
    data_dir = tmp_path / "data"
    expected = await queue_messages(data_dir, database_url, 30)
    # What the main process starts, with this test as its parent.
    server = await Server.start(env, tmp_path, "--delivery-only", "--parent-pid", str(os.getpid()))
    try:
        await server.wait_for(r"outbound worker \S+ started")
        await all_delivered(sink, expected, server)
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_status(30) == 0, server.log
    finally:
        await server.stop()
    assert set(await queue_statuses(data_dir, database_url)) == {"delivered"}
    assert not any(" ERROR " in line for line in server.lines), server.log


async def test_the_delivery_process_exits_when_the_main_process_is_killed(
    tmp_path: Path, database_url: str, fake_dns: FakeDns, sink: AiosmtpdSink
) -> None:
    env = environment(tmp_path, database_url, fake_dns, sink)
    server = await Server.start(env, tmp_path, "--delivery-workers", "2")
    try:
        extra = int((await server.wait_for(r"delivery worker process (\d+) started"))[1])
        await server.wait_for(rf"outbound worker \S+/{extra}/\S+ started")
        server.process.kill()
        await server.process.wait()
        assert await wait_gone(extra, 15)
    finally:
        await server.stop()

"""`mailmark serve` launching a 1,500-recipient campaign, killed with SIGKILL while its scheduler
is queuing stage 1: after a restart every recipient has stage 1 queued exactly once, no recipient
twice and none skipped (the stage's row and the queued message commit together)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import build_services
from mailmark.core.campaign_engine import CampaignDraft, CampaignScope
from mailmark.storage.db import create_engine
from mailmark.storage.tables import campaign_messages, campaign_recipients, deliveries
from tests.fakedns import FakeDns
from tests.support.serve import Server, settings_for
from tests.support.smtp_sink import AiosmtpdSink

pytestmark = pytest.mark.slow

RECIPIENTS = 1500
# Thirty of the scheduler's batches, one transaction each: the kill lands after the first commit
# and long before the last, however the machine's load spaces the test's polls.
BATCH = 50


async def queued_recipients(engine: sa.ext.asyncio.AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(deliveries.c.recipient))).scalars())


async def test_kill_9_while_a_campaign_is_queued_sends_each_stage_once(
    tmp_path: Path,
    database_url: str,
    fake_dns: FakeDns,
    sink: AiosmtpdSink,
    serve_env: dict[str, str],
    servers: list[Server],
) -> None:
    fake_dns.add("remote.test", "MX", "10 mx.remote.test.")
    fake_dns.add("mx.remote.test", "A", "127.0.0.1")
    data_dir = tmp_path / "data"
    emails = [f"user{n}@remote.test" for n in range(RECIPIENTS)]
    settings = settings_for(data_dir, database_url)
    services = await build_services(settings)
    try:
        await services.accounts.create(
            "acme", owner_email="owner@acme.test", password="owner-pass-1", plan="unlimited"
        )
        await services.domains.add("acme.test", account_name="acme", trust=True)
        await services.mailboxes.create("sales@acme.test", password="sales-pass-1")
        domain = await services.domains.get("acme.test")
        assert domain.id is not None
        group = await services.sender_groups.create(
            domain.id, "acme.test", name="All", mailboxes="all", emails=emails
        )
        scope = CampaignScope(domain.account_id, domain.id, "acme.test")
        campaign = await services.campaign_service.create(
            scope,
            CampaignDraft(
                name="Crash",
                sender_group_id=str(group.group.id),
                audience={"senderGroupRecipients": True},
                stages=[{"subject": "Hello", "html": "<p>Hi {{email}}</p>"}],
            ),
        )
        # Launched before any scheduler runs: `serve` finds it due at start.
        await services.campaign_service.launch(scope, str(campaign.id))
    finally:
        await services.close()

    env = {
        **serve_env,
        "MAILMARK_REMOTE_SMTP_PORT": str(sink.port),
        "MAILMARK_CAMPAIGN_INTERVAL": "1s",
        "MAILMARK_CAMPAIGN_BATCH": str(BATCH),
    }
    engine = create_engine(settings.database_url)
    try:
        first = await Server.start(env, tmp_path)
        servers.append(first)
        deadline = time.monotonic() + 120
        while len(await queued_recipients(engine)) == 0:
            assert time.monotonic() < deadline, f"nothing queued:\n{first.log}"
            await asyncio.sleep(0.005)
        os.kill(first.process.pid, signal.SIGKILL)
        assert await first.exit_status(timeout=10) == -signal.SIGKILL
        at_kill = len(await queued_recipients(engine))
        assert at_kill < RECIPIENTS, "the launch finished before the kill; nothing was tested"

        second = await Server.start(env, tmp_path)
        servers.append(second)
        deadline = time.monotonic() + 180
        while len(await queued_recipients(engine)) < RECIPIENTS:
            assert time.monotonic() < deadline, f"stage 1 never reached everyone:\n{second.log}"
            await asyncio.sleep(0.1)
        second.process.send_signal(signal.SIGTERM)
        assert await second.exit_status(timeout=30) == 0, second.log

        queued = await queued_recipients(engine)
        async with engine.connect() as conn:
            stages = (
                await conn.execute(
                    sa.select(campaign_messages.c.recipient_id, campaign_messages.c.stage)
                )
            ).all()
            states = set((await conn.execute(sa.select(campaign_recipients.c.state))).scalars())
    finally:
        await engine.dispose()
    assert sorted(queued) == sorted(emails)  # each recipient once, none skipped
    assert len(stages) == RECIPIENTS and len(set(stages)) == RECIPIENTS
    assert states == {"completed"}

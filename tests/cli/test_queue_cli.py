"""`mailmark queue list|retry|delete`, run as the real console script against a prepared queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from mailmark.bootstrap import Services, build_services
from mailmark.core.smtp_reply import SmtpReply
from tests.support.serve import Run, cli_environment, mailmark, settings_for


@dataclass(frozen=True)
class Queue:
    """Three deliveries of two messages: one deferred after a 451, one delivered, one queued."""

    deferred: int
    delivered: int
    queued: int


async def open_services(tmp_path: Path, database_url: str) -> Services:
    return await build_services(settings_for(tmp_path / "data", database_url))


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return cli_environment(tmp_path / "data", database_url)


@pytest.fixture
async def queue(tmp_path: Path, database_url: str, env: dict[str, str]) -> Queue:
    services = await open_services(tmp_path, database_url)
    try:
        await services.accounts.create("acme", owner_email="o@acme.test", password="owner-pass-1")
        await services.domains.add("acme.test", account_name="acme", trust=True)
        sales = await services.mailboxes.create("sales@acme.test", password="sales-pass-1")
        await services.sending.submit(
            mailbox=sales, to=["bob@remote.test", "carol@remote.test"], subject="First", text="1"
        )
        leased = await services.queue.lease_due("test", 10, timedelta(minutes=5))
        by_recipient = {d.recipient: d for d in leased}
        await services.queue.record(
            [
                (
                    by_recipient["bob@remote.test"],
                    SmtpReply(451, "4.3.0", "Greylisted", "mx.remote.test"),
                ),
                (
                    by_recipient["carol@remote.test"],
                    SmtpReply(250, "2.0.0", "Ok", "mx.remote.test"),
                ),
            ]
        )
        await services.sending.submit(
            mailbox=sales,
            to=["dave@later.test"],
            subject="Second",
            text="2",
            scheduled_at=services.clock.now() + timedelta(days=1),
        )
        ids = {e.recipient: e.id for e in await services.queue_admin.list()}
    finally:
        await services.close()
    return Queue(ids["bob@remote.test"], ids["carol@remote.test"], ids["dave@later.test"])


async def test_list(env: dict[str, str], tmp_path: Path, queue: Queue) -> None:
    listed = await mailmark(env, "queue", "list", "--json", cwd=tmp_path)
    assert listed.code == 0, listed.err
    assert isinstance(listed.json, list)
    by_id = {entry["id"]: entry for entry in listed.json}
    assert {i: e["status"] for i, e in by_id.items()} == {
        queue.deferred: "deferred",
        queue.delivered: "delivered",
        queue.queued: "queued",
    }
    bob = by_id[queue.deferred]
    assert (bob["to"], bob["from"], bob["subject"]) == (
        "bob@remote.test",
        "sales@acme.test",
        "First",
    )
    assert (bob["attempts"], bob["lastCode"], bob["lastStatus"]) == (1, 451, "4.3.0")
    assert (bob["lastReply"], bob["mxHost"]) == ("Greylisted", "mx.remote.test")
    assert bob["nextAttemptAt"] > bob["updatedAt"]

    text = await mailmark(env, "queue", "list", cwd=tmp_path)
    assert text.code == 0
    assert f"{queue.deferred}  deferred   sales@acme.test -> bob@remote.test" in text.out
    assert "last reply: 451 4.3.0 Greylisted" in text.out

    only = await mailmark(env, "queue", "list", "--status", "deferred", "--json", cwd=tmp_path)
    assert isinstance(only.json, list)
    assert [entry["id"] for entry in only.json] == [queue.deferred]
    limited = await mailmark(env, "queue", "list", "--limit", "1", "--json", cwd=tmp_path)
    assert isinstance(limited.json, list) and len(limited.json) == 1
    bad = await mailmark(env, "queue", "list", "--status", "lost", cwd=tmp_path)
    assert bad.code == 2 and "invalid choice" in bad.err


async def test_retry_one_and_all(
    env: dict[str, str], tmp_path: Path, database_url: str, queue: Queue
) -> None:
    one = await mailmark(env, "queue", "retry", str(queue.deferred), cwd=tmp_path)
    assert (one.code, one.out.strip()) == (0, "1 delivery due now")
    services = await open_services(tmp_path, database_url)
    try:
        [entry] = await services.queue_admin.list("deferred")
        assert entry.next_attempt_at <= services.clock.now()
    finally:
        await services.close()

    every = await mailmark(env, "queue", "retry", "--all", "--json", cwd=tmp_path)
    assert every.code == 0 and every.json == {"retried": 1}
    # Only deferred deliveries are retried: a delivered one is left alone.
    delivered = await mailmark(env, "queue", "retry", str(queue.delivered), cwd=tmp_path)
    assert (delivered.code, delivered.out.strip()) == (0, "0 deliveries due now")

    missing = await mailmark(env, "queue", "retry", "999999", "--json", cwd=tmp_path)
    assert missing.code == 1
    assert missing.json == {"error": "No delivery 999999 in the queue."}
    neither = await mailmark(env, "queue", "retry", cwd=tmp_path)
    assert neither.code == 2 and "one of the arguments" in neither.err
    both = await mailmark(env, "queue", "retry", "1", "--all", cwd=tmp_path)
    assert both.code == 2 and "not allowed with" in both.err


async def test_delete(env: dict[str, str], tmp_path: Path, queue: Queue) -> None:
    deleted = await mailmark(env, "queue", "delete", str(queue.queued), cwd=tmp_path)
    assert deleted.code == 0, deleted.err
    assert deleted.out.strip() == f"Deleted delivery {queue.queued}; it will not be attempted again"
    listed = await mailmark(env, "queue", "list", "--json", cwd=tmp_path)
    assert isinstance(listed.json, list)
    assert sorted(entry["id"] for entry in listed.json) == sorted([queue.deferred, queue.delivered])
    again: Run = await mailmark(env, "queue", "delete", str(queue.queued), cwd=tmp_path)
    assert again.code == 1 and f"No delivery {queue.queued} in the queue." in again.err


async def test_an_empty_queue(env: dict[str, str], tmp_path: Path, database_url: str) -> None:
    # An installation with nothing queued (with no installation at all, the CLI says so instead).
    await (await open_services(tmp_path, database_url)).close()
    listed = await mailmark(env, "queue", "list", cwd=tmp_path)
    assert (listed.code, listed.out.strip()) == (0, "The queue is empty.")
    as_json = await mailmark(env, "queue", "list", "--json", cwd=tmp_path)
    assert as_json.json == []


async def test_canceled_rows_are_listed(
    env: dict[str, str], tmp_path: Path, database_url: str, queue: Queue
) -> None:
    services = await open_services(tmp_path, database_url)
    try:
        [entry] = [e for e in await services.queue_admin.list() if e.id == queue.queued]
        domain = await services.domains.get("acme.test")
        assert domain.id is not None
        await services.emails.cancel(domain.id, str(entry.outbound_id))
    finally:
        await services.close()

    only = await mailmark(env, "queue", "list", "--status", "canceled", "--json", cwd=tmp_path)
    assert only.code == 0, only.err
    assert isinstance(only.json, list)
    assert [(e["id"], e["status"]) for e in only.json] == [(queue.queued, "canceled")]
    text = await mailmark(env, "queue", "list", cwd=tmp_path)
    assert f"{queue.queued}  canceled   sales@acme.test -> dave@later.test" in text.out

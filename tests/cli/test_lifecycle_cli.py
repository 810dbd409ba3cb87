"""`mailmark account list|plan|pause|resume`, `domain list|remove` and `mailbox edit`, run as the
real console script against a prepared installation."""

from __future__ import annotations

import asyncio
import imaplib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mailmark.bootstrap import Services, build_services, start_listeners
from mailmark.core.plans import PAUSED_TEXT
from tests.support.serve import Run, cli_environment, mailmark, settings_for
from tests.support.tls import client_tls


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return cli_environment(tmp_path / "data", database_url)


@pytest.fixture
async def services(tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    """acme (Starter) with acme.test, sales@ and one scheduled email; beta (Pro) with beta.test."""
    settings = settings_for(tmp_path / "data", database_url).model_copy(
        update={
            "bind": "127.0.0.1",
            **dict.fromkeys(
                ("mx_port", "submission_port", "submissions_port", "imap_port", "imaps_port"), 0
            ),
            "http_port": 0,
        }
    )
    built = await build_services(settings)
    try:
        await built.accounts.create(
            "acme", owner_email="o@acme.test", password="owner-pass-1", plan="starter"
        )
        await built.accounts.create(
            "beta", owner_email="o@beta.test", password="owner-pass-1", plan="pro"
        )
        await built.domains.add("acme.test", account_name="acme", trust=True)
        await built.domains.add("beta.test", account_name="beta", trust=True)
        sales = await built.mailboxes.create("sales@acme.test", password="sales-pass-1")
        await built.sending.submit(
            mailbox=sales,
            to=["dave@later.test"],
            subject="Later",
            text="2",
            scheduled_at=built.clock.now() + timedelta(days=1),
        )
        yield built
    finally:
        await built.close()


async def run_in(env: dict[str, str], tmp_path: Path, *args: str) -> Run:
    return await mailmark(env, *args, cwd=tmp_path)


def data(run: Run) -> Any:
    assert run.code == 0, run.err
    return run.json


async def test_accounts_are_listed_and_put_on_plans_paused_and_resumed(
    env: dict[str, str], tmp_path: Path, services: Services
) -> None:
    listed, text = await asyncio.gather(
        run_in(env, tmp_path, "account", "list", "--json"),
        run_in(env, tmp_path, "account", "list"),
    )
    accounts = {a["name"]: a for a in data(listed)}
    assert list(accounts) == ["acme", "beta"]
    assert (accounts["acme"]["status"], accounts["acme"]["plan"]["name"]) == ("active", "starter")
    assert accounts["acme"]["usage"] == {"domains": 1, "mailboxes": 1, "emailsThisMonth": 1}
    assert accounts["beta"]["usage"] == {"domains": 1, "mailboxes": 0, "emailsThisMonth": 0}
    assert accounts["acme"]["plan"]["emailsPerMonth"] == 1000
    [acme_line] = [line for line in text.out.splitlines() if line.startswith("acme")]
    assert "Starter" in acme_line and "active" in acme_line
    assert "domains 1/1" in acme_line and "emails this month 1/1000" in acme_line

    upgraded = data(await run_in(env, tmp_path, "account", "plan", "acme", "pro", "--json"))
    assert (upgraded["plan"]["name"], upgraded["status"], upgraded["released"]) == (
        "pro",
        "active",
        0,
    )
    paused = await run_in(env, tmp_path, "account", "pause", "acme", "--json")
    assert (data(paused)["status"], data(paused)["notices"][0]) == ("paused", PAUSED_TEXT)
    # The plan chosen stays; Starter's limits apply meanwhile.
    assert (data(paused)["accountPlan"], data(paused)["plan"]["name"]) == ("pro", "starter")
    # A paused account accepts nothing for sending.
    sales = await services.mailboxes.get("sales@acme.test")
    with pytest.raises(Exception, match="paused") as refused:
        await services.sending.submit(mailbox=sales, to=["x@later.test"], subject="S", text="x")
    assert str(refused.value) == PAUSED_TEXT

    resumed = await run_in(env, tmp_path, "account", "resume", "acme")
    again, unknown, bad_plan = await asyncio.gather(
        run_in(env, tmp_path, "account", "resume", "acme"),
        run_in(env, tmp_path, "account", "plan", "nobody", "pro"),
        run_in(env, tmp_path, "account", "plan", "acme", "gold"),
    )

    assert (resumed.code, resumed.out) == (0, "Resumed acme (active)\n")
    assert (again.code, again.err) == (1, "mailmark: Account 'acme' is not paused.\n")
    assert (unknown.code, unknown.err) == (1, "mailmark: No account named 'nobody'.\n")
    assert bad_plan.code == 2 and "invalid choice: 'gold'" in bad_plan.err
    assert (await services.accounts.get("acme")).plan == "pro"


async def test_domains_are_listed_and_removed_only_when_confirmed(
    env: dict[str, str], tmp_path: Path, services: Services
) -> None:
    everything, of_beta, of_nobody = await asyncio.gather(
        run_in(env, tmp_path, "domain", "list", "--json"),
        run_in(env, tmp_path, "domain", "list", "--account", "beta", "--json"),
        run_in(env, tmp_path, "domain", "list", "--account", "nobody"),
    )
    assert [(d["name"], d["account"], d["mailboxes"]) for d in data(everything)] == [
        ("acme.test", "acme", 1),
        ("beta.test", "beta", 0),
    ]
    assert [d["name"] for d in data(of_beta)] == ["beta.test"]
    assert (of_nobody.code, of_nobody.err) == (1, "mailmark: No account named 'nobody'.\n")

    unconfirmed = await run_in(env, tmp_path, "domain", "remove", "ACME.test")
    assert unconfirmed.code == 1
    assert unconfirmed.out == (
        "acme.test holds 1 mailbox, 1 message, 1 queued delivery, 0 API keys, 0 webhooks. "
        "Removing it deletes all of these and its DKIM keys for good; run again with --yes to "
        "remove it.\n"
    )
    assert len(await services.mailboxes.list("acme.test")) == 1

    removed = await run_in(env, tmp_path, "domain", "remove", "acme.test", "--yes", "--json")
    assert data(removed) == {
        "removed": True,
        "contains": {"mailboxes": 1, "messages": 1, "queued": 1, "apiKeys": 0, "webhooks": 0},
    }
    left, queue, records, twice = await asyncio.gather(
        run_in(env, tmp_path, "domain", "list", "--json"),
        run_in(env, tmp_path, "queue", "list", "--json"),
        run_in(env, tmp_path, "domain", "records", "acme.test"),
        run_in(env, tmp_path, "domain", "remove", "acme.test", "--yes"),
    )
    assert [d["name"] for d in data(left)] == ["beta.test"]
    assert data(queue) == []
    assert (records.code, records.err) == (1, "mailmark: No domain acme.test here.\n")
    assert (twice.code, twice.err) == (1, "mailmark: No domain acme.test here.\n")
    # Its mail's blobs went with it.
    assert not [p for p in (tmp_path / "data" / "blobs").rglob("*") if p.is_file()]


def imap_login(port: int, user: str, password: str) -> bool:
    client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls())
    try:
        client.login(user, password)
    except imaplib.IMAP4.error:
        return False
    finally:
        client.shutdown()
    return True


async def test_a_mailbox_is_edited(env: dict[str, str], tmp_path: Path, services: Services) -> None:
    edited = await run_in(
        env,
        tmp_path,
        "mailbox",
        "edit",
        "Sales@ACME.test",
        "--display-name",
        "Sales Team",
        "--signature",
        "-- \nThe sales team",
    )
    assert (edited.code, edited.out) == (
        0,
        "Updated the display name, signature of sales@acme.test\n",
    )
    sales = await services.mailboxes.get("sales@acme.test")
    assert (sales.display_name, sales.signature) == ("Sales Team", "-- \nThe sales team")

    secret = tmp_path / "password"
    secret.write_text("new-sales-pass-2\n")
    changed, nothing, unknown, short = await asyncio.gather(
        run_in(
            env,
            tmp_path,
            "mailbox",
            "edit",
            "sales@acme.test",
            "--password-file",
            str(secret),
            "--json",
        ),
        run_in(env, tmp_path, "mailbox", "edit", "sales@acme.test"),
        run_in(env, tmp_path, "mailbox", "edit", "nobody@acme.test", "--display-name", "X"),
        run_in(env, tmp_path, "mailbox", "edit", "sales@beta.test", "--password", "short"),
    )
    assert data(changed)["displayName"] == "Sales Team"
    assert nothing.code == 1 and "Say what to change" in nothing.err
    assert (unknown.code, unknown.err) == (1, "mailmark: No mailbox nobody@acme.test here.\n")
    assert (short.code, short.err) == (
        1,
        "mailmark: Passwords must be at least 8 characters long.\n",
    )

    listeners = await start_listeners(services)
    try:
        port = listeners.imaps_port
        new = await asyncio.to_thread(imap_login, port, "sales@acme.test", "new-sales-pass-2")
        old = await asyncio.to_thread(imap_login, port, "sales@acme.test", "sales-pass-1")
    finally:
        await listeners.close()
    assert (new, old) == (True, False)

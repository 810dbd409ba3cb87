"""/api/account over a real listener: plan, limits, usage and the product's notices, and the
account's name, which only an owner or an admin may change."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from mailmark.storage.tables import accounts
from tests.support.web import ApiClient
from tests.support.world import World
from tests.web.api.conftest import assert_error


async def test_the_account_as_its_owner_and_a_member_see_it(
    owner_client: ApiClient, member_client: ApiClient, world: World
) -> None:
    account = (await owner_client.get("/api/account")).json()
    assert account["name"] == "acme" and account["status"] == "active"
    assert account["plan"] == {
        "name": "unlimited",
        "label": "Unlimited",
        "domains": None,
        "mailboxes": None,
        "emailsPerMonth": None,
    }
    assert account["usage"] == {"domains": 1, "mailboxes": 2, "emailsThisMonth": 0}
    assert account["notices"] == [] and account["trialDaysLeft"] is None
    assert account["signup"] in ("open", "closed")
    assert (await member_client.get("/api/account")).json()["name"] == "acme"

    async with world.services.engine.begin() as conn:
        await conn.execute(sa.update(accounts).values(plan="starter"))
    await world.services.mailboxes.create("third@acme.test")
    limited = (await owner_client.get("/api/account")).json()
    assert limited["plan"]["emailsPerMonth"] == 1000
    assert limited["notices"] == [
        "Domain limit reached. Your plan allows 1 domain(s). Please upgrade to add more.",
        "Mailbox limit reached. Your plan allows 3 mailbox(es). Please upgrade to add more.",
    ]


async def test_a_trial_that_ended_is_paused(owner_client: ApiClient, world: World) -> None:
    async with world.services.engine.begin() as conn:
        await conn.execute(
            sa.update(accounts).values(
                status="trial", trial_ends_at=world.services.clock.now() - timedelta(days=1)
            )
        )
    account = (await owner_client.get("/api/account")).json()
    assert account["status"] == "paused"
    assert account["notices"][0] == (
        "Your free trial has ended. Choose a plan to continue using Mailmark."
    )


async def test_only_managers_rename_the_account(
    owner_client: ApiClient, member_client: ApiClient
) -> None:
    refused = await member_client.patch("/api/account", json={"name": "Mine"})
    assert assert_error(refused, 403, "forbidden") == (
        "Only an owner or an admin can rename the account."
    )
    renamed = await owner_client.patch("/api/account", json={"name": "Acme Corp"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Acme Corp"
    assert (await member_client.get("/api/account")).json()["name"] == "Acme Corp"
    bad = await owner_client.patch("/api/account", json={"name": "\n"})
    assert_error(bad, 400, "invalid_input", "name")

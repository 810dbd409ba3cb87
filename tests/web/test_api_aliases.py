"""/api/domains/{name}/aliases and /catch-all over a real listener, alias domains on the domains
list, and the access rules: owners and admins only, never another account's mailboxes."""

from __future__ import annotations

import asyncio
import smtplib

from mailmark.bootstrap import Listeners
from tests.support.web import ApiClient
from tests.support.world import World, stored_copies
from tests.web.api.conftest import assert_error


def rcpt(port: int, recipient: str) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail("alice@example.org")
        return client.rcpt(recipient)[0]


def send(port: int, recipient: str) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.sendmail(
            "alice@example.org", [recipient], b"Subject: Caught\r\n\r\nHello.\r\n"
        )


async def test_an_owner_adds_lists_and_removes_aliases(
    owner_client: ApiClient, listeners: Listeners, world: World
) -> None:
    added = await owner_client.post(
        "/api/domains/acme.test/aliases",
        json={"localPart": "Team", "targets": ["sales@acme.test", "support@acme.test"]},
    )
    assert added.status_code == 201, added.text
    assert added.json()["address"] == "team@acme.test"
    assert added.json()["targets"] == ["sales@acme.test", "support@acme.test"]
    # At once on this node's MX: no cache in the way.
    assert await asyncio.to_thread(rcpt, listeners.mx_port, "team@acme.test") == 250

    listing = (await owner_client.get("/api/domains/acme.test/aliases")).json()
    assert [(a["localPart"], a["targets"]) for a in listing] == [
        ("team", ["sales@acme.test", "support@acme.test"])
    ]

    clash = await owner_client.post(
        "/api/domains/acme.test/aliases", json={"localPart": "sales", "targets": ["sales"]}
    )
    assert "is a mailbox already" in assert_error(clash, 409, "conflict")
    none = await owner_client.post(
        "/api/domains/acme.test/aliases", json={"localPart": "x", "targets": []}
    )
    assert_error(none, 400, "invalid_input", "targets")

    removed = await owner_client.delete("/api/domains/acme.test/aliases/team")
    assert removed.status_code == 204, removed.text
    assert (await owner_client.get("/api/domains/acme.test/aliases")).json() == []
    assert await asyncio.to_thread(rcpt, listeners.mx_port, "team@acme.test") == 550


async def test_the_catch_all_is_off_until_set(
    owner_client: ApiClient, listeners: Listeners, world: World
) -> None:
    assert (await owner_client.get("/api/domains/acme.test/catch-all")).json() == {"mailbox": None}
    on = await owner_client.put("/api/domains/acme.test/catch-all", json={"mailbox": "support"})
    assert on.status_code == 200, on.text
    assert on.json() == {"mailbox": "support@acme.test"}
    assert await asyncio.to_thread(send, listeners.mx_port, "anything@acme.test") == {}
    [copy] = await stored_copies(world.services, world.support)
    assert copy.subject == "Caught"

    off = await owner_client.put("/api/domains/acme.test/catch-all", json={"mailbox": None})
    assert off.json() == {"mailbox": None}
    assert await asyncio.to_thread(rcpt, listeners.mx_port, "anything@acme.test") == 550


async def test_an_alias_domain_is_added_and_listed(owner_client: ApiClient, world: World) -> None:
    added = await owner_client.post(
        "/api/domains", json={"name": "acme.example", "aliasOf": "acme.test"}
    )
    assert added.status_code == 201, added.text
    detail = added.json()
    assert detail["aliasOf"] == "acme.test"
    assert {r["type"] for r in detail["records"]} >= {"MX", "TXT"}

    listing = {d["name"]: d["aliasOf"] for d in (await owner_client.get("/api/domains")).json()}
    assert listing == {"acme.test": None, "acme.example": "acme.test"}
    target = (await owner_client.get("/api/domains/acme.test")).json()
    assert target["aliasDomains"] == ["acme.example"]
    refused = await owner_client.post(
        "/api/domains/acme.example/aliases", json={"localPart": "x", "targets": ["sales"]}
    )
    assert "is an alias of acme.test" in assert_error(refused, 400, "invalid_input")


async def test_members_and_other_accounts_are_refused(
    owner_client: ApiClient, member_client: ApiClient, world: World
) -> None:
    services = world.services
    await services.accounts.create(
        "rival", owner_email="owner@rival.test", password="owner-pass-1", plan="unlimited"
    )
    await services.domains.add("rival.test", account_name="rival", trust=True)
    await services.mailboxes.create("boss@rival.test")

    member = await member_client.post(
        "/api/domains/acme.test/aliases", json={"localPart": "x", "targets": ["sales"]}
    )
    assert_error(member, 403, "forbidden")
    assert_error(await member_client.get("/api/domains/acme.test/aliases"), 403, "forbidden")
    assert_error(await owner_client.get("/api/domains/rival.test/aliases"), 404, "not_found")
    foreign = await owner_client.post(
        "/api/domains/acme.test/aliases",
        json={"localPart": "spy", "targets": ["boss@rival.test"]},
    )
    assert_error(foreign, 404, "not_found", "targets")
    catch = await owner_client.put(
        "/api/domains/acme.test/catch-all", json={"mailbox": "boss@rival.test"}
    )
    assert_error(catch, 404, "not_found")
    alias_domain = await owner_client.post(
        "/api/domains", json={"name": "rival.example", "aliasOf": "rival.test"}
    )
    assert_error(alias_domain, 404, "not_found")

"""/api/domains over a real listener: add with the plan's quota text, the record table with its
live checks against the loopback DNS, the background re-check, the BIND zone, DKIM rotation and
removal with a typed confirmation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Listeners
from mailmark.config import Settings
from mailmark.core.ports import Clock
from mailmark.storage.tables import accounts
from tests.fakedns import FakeDns
from tests.support.clock import SettableClock
from tests.support.dns_records import publish
from tests.support.web import ApiClient
from tests.support.world import World
from tests.web.api.conftest import assert_error

NEW = "new.test"


@pytest.fixture
def clock() -> Clock:
    return SettableClock()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"domain_recheck_interval": timedelta(seconds=0.05)})


def rows(detail: dict[str, object]) -> dict[tuple[str, str], dict[str, object]]:
    records = detail["records"]
    assert isinstance(records, list)
    return {(r["type"], r["relativeHost"]): r for r in records}


async def test_add_check_and_fix_a_domain(
    owner_client: ApiClient, world: World, fake_dns: FakeDns
) -> None:
    added = await owner_client.post("/api/domains", json={"name": "New.Test"})
    assert added.status_code == 201, added.text
    detail = added.json()
    assert (detail["name"], detail["status"], detail["verified"]) == (NEW, "pending", False)
    assert detail["contains"] == {
        "mailboxes": 0,
        "messages": 0,
        "apiKeys": 0,
        "webhooks": 0,
        "queued": 0,
    }
    table = rows(detail)
    assert {r["status"] for r in table.values()} == {"unchecked"}
    assert table[("MX", "@")]["host"] == NEW and table[("MX", "@")]["priority"] == 10
    assert table[("MX", "mail")]["host"] == f"mail.{NEW}"
    assert table[("TXT", "_dmarc")]["required"] is True

    listing = (await owner_client.get("/api/domains")).json()
    assert [d["name"] for d in listing] == ["acme.test", NEW]
    assert listing[0]["mailboxCount"] == 2 and listing[1]["lastCheckedAt"] is None

    _, records = await world.services.domains.records(NEW)
    publish(fake_dns, [r for r in records if r.name != f"_dmarc.{NEW}"])
    fake_dns.add(f"_dmarc.{NEW}", "TXT", "v=DMARC1; p=none")
    checked = (await owner_client.post(f"/api/domains/{NEW}/verify")).json()
    table = rows(checked)
    assert table[("MX", "@")]["status"] == "ok" and table[("MX", "@")]["fix"] is None
    assert table[("MX", "@")]["checkedAt"] is not None
    dmarc = table[("TXT", "_dmarc")]
    assert dmarc["status"] == "mismatch" and dmarc["found"] == ["v=DMARC1; p=none"]
    assert "p=quarantine" in str(dmarc["fix"]) and "_dmarc" in str(dmarc["fix"])
    assert checked["verified"] is False and checked["lastCheckedAt"] is not None

    fake_dns.remove(f"_dmarc.{NEW}", "TXT")
    publish(fake_dns, [r for r in records if r.name == f"_dmarc.{NEW}"])
    fixed = (await owner_client.post(f"/api/domains/{NEW}/verify")).json()
    assert fixed["verified"] is True and fixed["status"] == "verified"
    assert all(r["status"] == "ok" for r in fixed["records"] if r["required"])


async def test_the_background_check_turns_the_records_ok(
    owner_client: ApiClient, world: World, fake_dns: FakeDns, clock: Clock
) -> None:
    assert isinstance(clock, SettableClock)
    await owner_client.post("/api/domains", json={"name": NEW})
    _, records = await world.services.domains.records(NEW)
    publish(fake_dns, records)
    clock.advance(timedelta(minutes=1))  # the first background check is due
    for _ in range(400):
        detail = (await owner_client.get(f"/api/domains/{NEW}")).json()
        if detail["verified"]:
            break
        await asyncio.sleep(0.05)
    assert detail["verified"] is True
    assert all(r["status"] == "ok" for r in detail["records"] if r["required"])


async def test_zone_file_and_dkim_rotation(owner_client: ApiClient, world: World) -> None:
    zone = await owner_client.get(f"/api/domains/{world.domain}/zone")
    assert zone.status_code == 200
    assert zone.headers["content-type"].startswith("text/plain")
    assert zone.headers["content-disposition"] == 'attachment; filename="acme.test.zone"'
    assert "acme.test.\t3600\tIN\tMX\t10 mx.mailmark.test." in zone.text
    assert "_dmarc.acme.test.\t3600\tIN\tTXT\t" in zone.text

    before = (await owner_client.get(f"/api/domains/{world.domain}")).json()
    rotated = await owner_client.post(f"/api/domains/{world.domain}/dkim/rotate")
    assert rotated.status_code == 200
    new_keys = {r["host"] for r in rotated.json()["records"]} - {
        r["host"] for r in before["records"]
    }
    assert len(new_keys) == 2 and all("._domainkey." in host for host in new_keys)
    again = await owner_client.post(f"/api/domains/{world.domain}/dkim/rotate")
    assert_error(again, 409, "conflict")


async def test_the_plans_domain_limit_is_the_product_text(
    owner_client: ApiClient, world: World
) -> None:
    async with world.services.engine.begin() as conn:
        await conn.execute(sa.update(accounts).values(plan="starter"))
    refused = await owner_client.post("/api/domains", json={"name": NEW})
    message = assert_error(refused, 403, "quota_exceeded")
    assert message == (
        "Domain limit reached. Your plan allows 1 domain(s). Please upgrade to add more."
    )


async def test_removal_needs_the_name_and_says_what_goes(
    owner_client: ApiClient, world: World
) -> None:
    detail = (await owner_client.get(f"/api/domains/{world.domain}")).json()
    assert detail["contains"]["mailboxes"] == 2
    wrong = await owner_client.delete(f"/api/domains/{world.domain}", json={"confirm": "acme"})
    assert_error(wrong, 400, "invalid_input", "confirm")
    missing = await owner_client.delete(f"/api/domains/{world.domain}")
    assert missing.status_code == 400
    gone = await owner_client.delete(f"/api/domains/{world.domain}", json={"confirm": world.domain})
    assert gone.status_code == 204, gone.text
    assert_error(await owner_client.get(f"/api/domains/{world.domain}"), 404, "not_found")
    assert (await owner_client.get("/api/mailboxes")).json() == []


async def test_bad_input_is_a_clear_4xx(owner_client: ApiClient, listeners: Listeners) -> None:
    unknown = await owner_client.post("/api/domains", json={"name": NEW, "trust": True})
    assert_error(unknown, 422, "unknown_field")
    long = await owner_client.post("/api/domains", json={"name": "a" * 300 + ".test"})
    assert long.status_code == 400
    junk = await owner_client.post("/api/domains", json={"name": "not a domain"})
    assert_error(junk, 400, "invalid_input")
    assert_error(await owner_client.get("/api/domains/nowhere.test"), 404, "not_found")

"""GET/POST /v1/mailboxes and DELETE /v1/mailboxes/{address} over real HTTP."""

from __future__ import annotations

import sqlalchemy as sa

from mailmark.storage.tables import sender_group_mailboxes
from tests.support.world import World
from tests.web.api.conftest import Tenant, assert_error


async def test_list_shows_the_product_fields(acme: Tenant) -> None:
    response = await acme.client.get("/v1/mailboxes")

    assert response.status_code == 200
    sales = next(m for m in response.json() if m["address"] == "sales")
    assert set(sales) == {"_id", "address", "fullAddress", "displayName"}
    assert sales["fullAddress"] == "sales@acme.test" and sales["displayName"] == "Sales"


async def test_create_takes_a_local_part_and_409s_a_duplicate(acme: Tenant, world: World) -> None:
    created = await acme.client.post(
        "/v1/mailboxes", json={"address": "hello", "displayName": "Hello Team"}
    )
    again = await acme.client.post("/v1/mailboxes", json={"address": "hello"})

    assert created.status_code == 201, created.text
    assert created.json()["fullAddress"] == "hello@acme.test"
    assert (await world.services.mailboxes.get("hello@acme.test")).display_name == "Hello Team"
    assert "already exists" in assert_error(again, 409, "conflict")


async def test_create_refuses_bad_input_naming_the_field(acme: Tenant) -> None:
    injected = await acme.client.post(
        "/v1/mailboxes", json={"address": "ok", "displayName": "A\r\nBcc: x@example.com"}
    )
    foreign = await acme.client.post("/v1/mailboxes", json={"address": "hello@other.test"})
    empty = await acme.client.post("/v1/mailboxes", json={"address": ""})
    missing = await acme.client.post("/v1/mailboxes", json={"displayName": "No address"})
    invalid = await acme.client.post("/v1/mailboxes", json={"address": "two..dots"})

    assert_error(injected, 422, "header_injection", "displayName")
    assert_error(foreign, 404, "not_found", "address")
    assert_error(empty, 400, "invalid_input", "address")
    assert_error(missing, 400, "invalid_request", "address")
    assert_error(invalid, 400, "invalid_input", "address")


async def test_the_mailbox_quota_text_is_the_products(acme: Tenant, world: World) -> None:
    async with world.services.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE accounts SET plan = 'starter'"))
    third = await acme.client.post("/v1/mailboxes", json={"address": "third"})
    fourth = await acme.client.post("/v1/mailboxes", json={"address": "fourth"})

    assert third.status_code == 201
    assert assert_error(fourth, 403, "quota_exceeded") == (
        "Mailbox limit reached. Your plan allows 3 mailbox(es). Please upgrade to add more."
    )


async def test_delete_by_local_part_or_address_removes_memberships(
    acme: Tenant, world: World
) -> None:
    group = await acme.client.post(
        "/v1/sender-groups", json={"name": "G", "mailboxes": ["sales", "support@acme.test"]}
    )
    assert group.status_code == 201

    by_local = await acme.client.delete("/v1/mailboxes/sales")
    by_address = await acme.client.delete("/v1/mailboxes/support@acme.test")
    gone = await acme.client.delete("/v1/mailboxes/sales")

    assert by_local.json() == {"deleted": True} and by_address.json() == {"deleted": True}
    assert_error(gone, 404, "not_found")
    assert (await acme.client.get("/v1/mailboxes")).json() == []
    [after] = (await acme.client.get("/v1/sender-groups")).json()
    assert after["mailboxes"] == []
    async with world.services.engine.connect() as conn:
        count = (
            await conn.execute(sa.select(sa.func.count()).select_from(sender_group_mailboxes))
        ).scalar_one()
    assert count == 0

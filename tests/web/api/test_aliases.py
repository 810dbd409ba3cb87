"""/v1/aliases with API keys over a real listener: the key's domain only."""

from __future__ import annotations

from tests.web.api.conftest import Tenant, assert_error


async def test_create_list_and_delete_an_alias(acme: Tenant) -> None:
    created = await acme.client.post(
        "/v1/aliases", json={"address": "team", "targets": ["sales", "support@acme.test"]}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["address"], body["fullAddress"]) == ("team", "team@acme.test")
    assert body["targets"] == ["sales@acme.test", "support@acme.test"]

    listed = (await acme.client.get("/v1/aliases")).json()
    assert [a["fullAddress"] for a in listed] == ["team@acme.test"]

    again = await acme.client.post("/v1/aliases", json={"address": "team", "targets": ["sales"]})
    assert_error(again, 409, "conflict")
    deleted = await acme.client.delete("/v1/aliases/team")
    assert deleted.json() == {"deleted": True}
    assert_error(await acme.client.delete("/v1/aliases/team"), 404, "not_found")


async def test_a_key_reaches_only_its_own_domain(acme: Tenant, other: Tenant) -> None:
    foreign_target = await acme.client.post(
        "/v1/aliases", json={"address": "spy", "targets": [other.mailbox.address]}
    )
    assert_error(foreign_target, 404, "not_found", "targets")
    foreign_alias = await acme.client.post(
        "/v1/aliases", json={"address": f"spy@{other.domain}", "targets": ["sales"]}
    )
    assert_error(foreign_alias, 404, "not_found", "address")
    await other.client.post("/v1/aliases", json={"address": "desk", "targets": ["news"]})
    assert (await acme.client.get("/v1/aliases")).json() == []
    assert_error(await acme.client.delete(f"/v1/aliases/desk@{other.domain}"), 404, "not_found")

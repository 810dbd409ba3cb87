"""GET/POST /v1/sender-groups and PATCH/DELETE /v1/sender-groups/{id} over real HTTP."""

from __future__ import annotations

from tests.web.api.conftest import Tenant, assert_error


async def test_create_with_all_mailboxes_and_a_recipient_list(acme: Tenant) -> None:
    created = await acme.client.post(
        "/v1/sender-groups",
        json={
            "name": "Marketing Team",
            "mailboxes": "all",
            "emails": ["user1@example.com", "USER1@example.com", "user2@example.com"],
        },
    )

    assert created.status_code == 201, created.text
    group = created.json()
    assert group["name"] == "Marketing Team" and group["allMailboxes"] is True
    assert group["mailboxes"] == ["sales@acme.test", "support@acme.test"]
    assert group["emails"] == ["user1@example.com", "user2@example.com"]
    assert (await acme.client.get("/v1/sender-groups")).json() == [group]


async def test_all_includes_mailboxes_created_later(acme: Tenant) -> None:
    group = (await acme.client.post("/v1/sender-groups", json={"name": "All"})).json()
    await acme.client.post("/v1/mailboxes", json={"address": "new"})

    [listed] = (await acme.client.get("/v1/sender-groups")).json()

    assert listed["_id"] == group["_id"]
    assert "new@acme.test" in listed["mailboxes"]


async def test_mailboxes_as_comma_separated_string_or_list(acme: Tenant) -> None:
    as_string = await acme.client.post(
        "/v1/sender-groups", json={"name": "S", "mailboxes": "sales, support@acme.test"}
    )
    as_list = await acme.client.post(
        "/v1/sender-groups", json={"name": "L", "mailboxes": ["support"]}
    )

    assert as_string.json()["mailboxes"] == ["sales@acme.test", "support@acme.test"]
    assert as_list.json()["mailboxes"] == ["support@acme.test"]
    assert as_list.json()["allMailboxes"] is False


async def test_patch_changes_only_what_is_given(acme: Tenant) -> None:
    group = (
        await acme.client.post(
            "/v1/sender-groups",
            json={"name": "G", "mailboxes": "sales", "emails": ["a@example.com", "b@example.com"]},
        )
    ).json()
    path = f"/v1/sender-groups/{group['_id']}"

    added = (
        await acme.client.patch(path, json={"addEmails": ["c@example.com", "A@example.com"]})
    ).json()
    removed = (await acme.client.patch(path, json={"removeEmails": ["B@example.com"]})).json()
    renamed = (await acme.client.patch(path, json={"name": "Renamed", "mailboxes": "all"})).json()
    replaced = (await acme.client.patch(path, json={"emails": ["z@example.com"]})).json()

    assert added["emails"] == ["a@example.com", "b@example.com", "c@example.com"]
    assert removed["emails"] == ["a@example.com", "c@example.com"]
    assert renamed["name"] == "Renamed" and renamed["emails"] == ["a@example.com", "c@example.com"]
    assert renamed["mailboxes"] == ["sales@acme.test", "support@acme.test"]
    assert replaced["emails"] == ["z@example.com"] and replaced["name"] == "Renamed"


async def test_delete_leaves_the_mailboxes(acme: Tenant) -> None:
    group = (await acme.client.post("/v1/sender-groups", json={"name": "G"})).json()

    deleted = await acme.client.delete(f"/v1/sender-groups/{group['_id']}")
    again = await acme.client.delete(f"/v1/sender-groups/{group['_id']}")

    assert deleted.json() == {"deleted": True}
    assert_error(again, 404, "not_found")
    assert (await acme.client.get("/v1/sender-groups")).json() == []
    assert len((await acme.client.get("/v1/mailboxes")).json()) == 2


async def test_bad_groups_are_refused_naming_the_field(acme: Tenant) -> None:
    cases = [
        ({"name": ""}, 400, "invalid_input", "name"),
        ({"name": "A\nB"}, 422, "header_injection", "name"),
        ({"name": "G", "mailboxes": "nobody"}, 404, "not_found", "mailboxes"),
        ({"name": "G", "mailboxes": ["news@other.test"]}, 404, "not_found", "mailboxes"),
        ({"name": "G", "emails": ["not an address"]}, 400, "invalid_input", "emails"),
        ({"name": "G", "emails": ["a@example.com\r\n"]}, 422, "header_injection", "emails"),
        ({"mailboxes": "all"}, 400, "invalid_request", "name"),
    ]
    for body, status, code, field in cases:
        assert_error(await acme.client.post("/v1/sender-groups", json=body), status, code, field)
    group = (await acme.client.post("/v1/sender-groups", json={"name": "G"})).json()
    bad_patch = await acme.client.patch(
        f"/v1/sender-groups/{group['_id']}", json={"addEmails": ["nope"]}
    )
    assert_error(bad_patch, 400, "invalid_input", "addEmails")
    assert_error(await acme.client.patch("/v1/sender-groups/abc", json={}), 404, "not_found")

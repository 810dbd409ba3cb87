"""/v1/contacts, its CSV import and export, and /v1/lists over real HTTP."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from mailmark.core.contacts import IMPORT_BATCH
from mailmark.core.model import Suppression
from tests.support.world import World
from tests.web.api.conftest import Tenant, assert_error

BIG_IMPORT_ROWS = 20_000


async def imported(client: httpx.AsyncClient, body: Any, **params: str) -> dict[str, Any]:
    """Upload a CSV and wait for its import to finish; the final status."""
    started = await client.post(
        "/v1/contacts/import", content=body, params=params, headers={"content-type": "text/csv"}
    )
    assert started.status_code == 202, started.text
    job: dict[str, Any] = started.json()
    for _ in range(1000):
        job = (await client.get(f"/v1/contacts/import/{job['_id']}")).json()
        if job["status"] != "running":
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"the import did not finish: {job}")


async def all_contacts(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await client.get(
            "/v1/contacts",
            params={**params, "limit": "100", **({"cursor": cursor} if cursor else {})},
        )
        assert page.status_code == 200, page.text
        found += page.json()["data"]
        cursor = page.json()["nextCursor"]
        if cursor is None:
            return found


async def test_create_get_update_delete(acme: Tenant) -> None:
    created = await acme.client.post(
        "/v1/contacts",
        json={
            "email": "Ann@Example.COM",
            "firstName": "Ann",
            "company": "Acme",
            "fields": {"plan": "pro", "seats": 5},
            "tags": ["Customer", "customer", "vip"],
        },
    )
    assert created.status_code == 201, created.text
    contact = created.json()
    assert contact["email"] == "Ann@example.com"
    assert contact["tags"] == ["customer", "vip"]
    assert contact["status"] == "subscribed" and contact["suppressed"] is False
    assert (await acme.client.get(f"/v1/contacts/{contact['_id']}")).json() == contact

    again = await acme.client.post("/v1/contacts", json={"email": "ann@example.com"})
    assert_error(again, 409, "conflict", "email")

    patched = await acme.client.patch(
        f"/v1/contacts/{contact['_id']}", json={"lastName": "Lee", "status": "unsubscribed"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["lastName"] == "Lee" and patched.json()["status"] == "unsubscribed"
    assert patched.json()["company"] == "Acme"

    deleted = await acme.client.delete(f"/v1/contacts/{contact['_id']}")
    assert deleted.json() == {"deleted": True}
    gone = await acme.client.get(f"/v1/contacts/{contact['_id']}")
    assert_error(gone, 404, "not_found")


async def test_bad_contacts_get_the_error_shape_naming_the_field(acme: Tenant) -> None:
    cases = [
        ({"email": "not an address"}, "email"),
        ({"email": "a@example.com", "firstName": "x\r\nBcc: y@example.com"}, "firstName"),
        ({"email": "a@example.com", "fields": {"1bad": "x"}}, "fields"),
        ({"email": "a@example.com", "fields": {f"f{i}": "x" for i in range(51)}}, "fields"),
        ({"email": "a@example.com", "fields": {"big": "x" * 1001}}, "fields"),
        ({"email": "a@example.com", "fields": {"nested": {"a": 1}}}, "fields"),
        ({"email": "a@example.com", "fields": {f"f{i}": "x" * 1000 for i in range(17)}}, "fields"),
        (
            {"email": "a@example.com", "fields": {f"f{i}": "\u0001" * 700 for i in range(4)}},
            "fields",
        ),
        ({"email": "a@example.com", "tags": [f"t{i}" for i in range(51)]}, "tags"),
        ({"email": "a@example.com", "tags": ["no,commas"]}, "tags"),
        ({"email": "a@example.com", "status": "maybe"}, "status"),
    ]
    for body, field in cases:
        response = await acme.client.post("/v1/contacts", json=body)
        assert response.status_code in (400, 422), (body, response.text)
        assert_error(response, response.status_code, response.json()["error"]["code"], field)
    listing = await acme.client.get("/v1/contacts", params={"field": "noequals"})
    assert_error(listing, 400, "invalid_input", "field")
    assert (await acme.client.get("/v1/contacts")).json()["data"] == []


async def test_listing_filters_and_pages(acme: Tenant, world: World) -> None:
    for n in range(5):
        await acme.client.post(
            "/v1/contacts",
            json={
                "email": f"p{n}@example.com",
                "tags": ["even"] if n % 2 == 0 else ["odd_one"],
                "fields": {"plan": "pro" if n < 2 else "free"},
            },
        )
    domain = await world.services.domains.get(world.domain)
    assert domain.id is not None
    async with world.services.uow() as uow:
        await uow.suppressions.add(
            Suppression(domain.id, "p4@example.com", "bounce", "550", world.services.clock.now())
        )
        await uow.commit()

    first = (await acme.client.get("/v1/contacts", params={"limit": "2"})).json()
    assert [c["email"] for c in first["data"]] == ["p0@example.com", "p1@example.com"]
    rest = await all_contacts(acme.client)
    assert len(rest) == 5
    assert {c["email"] for c in await all_contacts(acme.client, tag="even")} == {
        "p0@example.com",
        "p2@example.com",
        "p4@example.com",
    }
    # "_" is matched literally, not as a LIKE wildcard.
    assert len(await all_contacts(acme.client, tag="odd_one")) == 2
    assert len(await all_contacts(acme.client, tag="odd-one")) == 0
    assert len(await all_contacts(acme.client, field="plan=pro")) == 2
    [suppressed] = await all_contacts(acme.client, suppressed="true")
    assert suppressed["email"] == "p4@example.com" and suppressed["suppressed"] is True
    assert len(await all_contacts(acme.client, suppressed="false")) == 4


async def test_lists_members_and_segments(acme: Tenant) -> None:
    ids = []
    for n in range(3):
        made = await acme.client.post(
            "/v1/contacts", json={"email": f"m{n}@example.com", "tags": ["vip"] if n else []}
        )
        ids.append(made.json()["_id"])
    created = await acme.client.post("/v1/lists", json={"name": "Customers"})
    assert created.status_code == 201, created.text
    list_id = created.json()["_id"]
    assert_error(await acme.client.post("/v1/lists", json={"name": "Customers"}), 409, "conflict")

    added = await acme.client.post(
        f"/v1/lists/{list_id}/members", json={"contactIds": [ids[0]], "emails": ["M1@example.com"]}
    )
    assert added.status_code == 200, added.text
    assert added.json()["size"] == 2
    members = await all_contacts(acme.client, listId=list_id)
    assert [m["email"] for m in members] == ["m0@example.com", "m1@example.com"]
    unknown = await acme.client.post(
        f"/v1/lists/{list_id}/members", json={"emails": ["nobody@example.com"]}
    )
    assert_error(unknown, 404, "not_found")

    removed = await acme.client.delete(f"/v1/lists/{list_id}/members/{ids[0]}")
    assert removed.json() == {"deleted": True}
    assert (await acme.client.get(f"/v1/lists/{list_id}")).json()["size"] == 1

    segment = await acme.client.post("/v1/lists", json={"name": "VIPs", "filter": {"tag": "vip"}})
    assert segment.status_code == 201, segment.text
    assert segment.json()["filter"] == {"tag": "vip"} and segment.json()["size"] == 2
    seg_id = segment.json()["_id"]
    assert len(await all_contacts(acme.client, listId=seg_id)) == 2
    conflict = await acme.client.post(f"/v1/lists/{seg_id}/members", json={"contactIds": [ids[0]]})
    assert_error(conflict, 409, "conflict")
    bad = await acme.client.post("/v1/lists", json={"name": "X", "filter": {"opened": True}})
    assert_error(bad, 400, "invalid_input", "filter")

    renamed = await acme.client.patch(f"/v1/lists/{list_id}", json={"name": "Paying"})
    assert renamed.json()["name"] == "Paying"
    assert [x["name"] for x in (await acme.client.get("/v1/lists")).json()] == ["Paying", "VIPs"]
    assert (await acme.client.delete(f"/v1/lists/{list_id}")).json() == {"deleted": True}
    assert len(await all_contacts(acme.client)) == 3  # the contacts stay


async def test_import_with_mapping_row_errors_and_a_list(acme: Tenant) -> None:
    target = (await acme.client.post("/v1/lists", json={"name": "Imported"})).json()["_id"]
    text = (
        "E-mail,Given,Surname,Company,Tags,Plan Type,Notes\r\n"
        'ann@example.com,Ann,Lee,Acme,"customer, vip",pro,"two\nlines"\r\n'
        "not-an-address,Bob,,,,,\r\n"
        ",Nobody,,,,,\r\n"
        "\r\n"
        "cy@example.com,Cy,,,,free,,extra\r\n"
        "dee@example.com,Dee,,,bad;tag!,,\r\n"
        "eve@example.com,Eve,,,,,\r\n"
    )
    mapping = json.dumps({"Given": "first_name", "Surname": "last_name", "Notes": ""})

    job = await imported(acme.client, text.encode(), mapping=mapping, listId=target)

    assert job["status"] == "done", job
    assert job["created"] == 2 and job["failed"] == 4 and job["rowsDone"] == 6, job
    assert job["bytesRead"] == job["totalBytes"] == len(text.encode())
    reasons = {e["row"]: e["reason"] for e in job["errors"]}
    # Rows as a spreadsheet numbers them: the header is 1, a quoted line break stays in its row.
    assert set(reasons) == {3, 4, 6, 7}, reasons
    assert "not-an-address" in reasons[3]
    assert "empty" in reasons[4]
    assert "columns" in reasons[6]
    assert "tag" in reasons[7]
    assert job["mapping"]["Plan Type"] == "field:plan_type" and "Notes" not in job["mapping"]
    ann = (await all_contacts(acme.client, tag="vip"))[0]
    assert (ann["firstName"], ann["lastName"], ann["company"]) == ("Ann", "Lee", "Acme")
    assert ann["fields"] == {"plan_type": "pro"} and ann["tags"] == ["customer", "vip"]
    assert len(await all_contacts(acme.client, listId=target)) == 2


async def test_duplicates_update_or_skip_within_the_file_and_against_contacts(
    acme: Tenant,
) -> None:
    await acme.client.post(
        "/v1/contacts",
        json={"email": "old@example.com", "firstName": "Old", "status": "unsubscribed"},
    )
    text = (
        b"email,first_name,tags\n"
        b"old@example.com,Renamed,imported\n"
        b"new@example.com,First,a\n"
        b"NEW@example.com,Second,b\n"
    )

    skipped = await imported(acme.client, text, onDuplicate="skip")
    assert (skipped["created"], skipped["updated"], skipped["skipped"]) == (1, 0, 2), skipped
    by_email = {c["email"]: c for c in await all_contacts(acme.client)}
    assert by_email["old@example.com"]["firstName"] == "Old"
    assert by_email["new@example.com"]["firstName"] == "First"

    updated = await imported(acme.client, text, onDuplicate="update")
    assert (updated["created"], updated["updated"], updated["skipped"]) == (0, 3, 0), updated
    by_email = {c["email"]: c for c in await all_contacts(acme.client)}
    assert by_email["old@example.com"]["firstName"] == "Renamed"
    # An import never subscribes again someone who unsubscribed.
    assert by_email["old@example.com"]["status"] == "unsubscribed"
    assert by_email["NEW@example.com"]["firstName"] == "Second"
    assert by_email["NEW@example.com"]["tags"] == ["a", "b"]
    assert len(by_email) == 2


async def test_preview_applies_the_mapping_to_the_first_rows(acme: Tenant) -> None:
    rows = "".join(f"user{n}@example.com,User {n}\n" for n in range(100))
    body = ("Email,Name\nbroken,X\n" + rows).encode()

    preview = await acme.client.post(
        "/v1/contacts/import/preview",
        content=body,
        params={"rows": "3", "mapping": json.dumps({"Name": "first_name"})},
    )

    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["columns"] == ["Email", "Name"]
    assert shown["mapping"] == {"Email": "email", "Name": "first_name"}
    assert [r["row"] for r in shown["rows"]] == [2, 3, 4]
    assert shown["rows"][0]["contact"] is None and shown["rows"][0]["error"]
    assert shown["rows"][1]["contact"]["firstName"] == "User 0"
    assert (await acme.client.get("/v1/contacts")).json()["data"] == []


async def test_files_that_are_not_contact_csv_get_clear_errors(acme: Tenant) -> None:
    latin1 = "email,first_name\nzoe@example.com,Zoë\n".encode("latin-1")
    job = await imported(acme.client, latin1)
    assert job["status"] == "failed" and "UTF-8" in job["failure"], job

    long_line = b"email\n" + b"a" * 70_000 + b"@example.com\n"
    job = await imported(acme.client, long_line)
    assert job["status"] == "failed" and "longer than" in job["failure"], job

    wide = ",".join(f"c{n}" for n in range(300)).encode() + b"\n"
    response = await acme.client.post("/v1/contacts/import", content=wide)
    assert "columns" in assert_error(response, 400, "invalid_input")

    no_email = await acme.client.post("/v1/contacts/import", content=b"name,company\nx,y\n")
    assert "email" in assert_error(no_email, 400, "invalid_input", "mapping")
    empty = await acme.client.post("/v1/contacts/import", content=b"")
    assert_error(empty, 400, "invalid_input")
    bad_mapping = await acme.client.post(
        "/v1/contacts/import", content=b"email\na@example.com\n", params={"mapping": "{"}
    )
    assert_error(bad_mapping, 400, "invalid_input", "mapping")
    bad_mode = await acme.client.post(
        "/v1/contacts/import", content=b"email\n", params={"onDuplicate": "merge"}
    )
    assert_error(bad_mode, 400, "invalid_input", "onDuplicate")


async def test_a_large_import_streams_in_bounded_batches_and_exports_back(acme: Tenant) -> None:
    async def upload() -> AsyncIterator[bytes]:
        yield b"email,first_name,last_name,company,tags,plan\n"
        for start in range(0, BIG_IMPORT_ROWS, 1000):
            yield "".join(
                f"u{n}@example.com,First{n},Last{n},Co{n % 7},t{n % 3},p{n % 5}\n"
                for n in range(start, start + 1000)
            ).encode()
        yield b"broken-row,,,,,\n"

    job = await imported(acme.client, upload())

    assert job["status"] == "done", job
    assert job["rowsDone"] == BIG_IMPORT_ROWS + 1
    assert job["created"] == BIG_IMPORT_ROWS and job["failed"] == 1
    assert [e["row"] for e in job["errors"]] == [BIG_IMPORT_ROWS + 2]
    # Memory is bounded by the batch: never more rows held at once than one batch.
    assert 0 < job["peakRowsHeld"] <= IMPORT_BATCH

    async with acme.client.stream("GET", "/v1/contacts/export") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        exported = b"".join([chunk async for chunk in response.aiter_bytes()])
    records = list(csv.DictReader(io.StringIO(exported.decode())))
    assert len(records) == BIG_IMPORT_ROWS
    assert records[7] == {
        "email": "u7@example.com",
        "first_name": "First7",
        "last_name": "Last7",
        "company": "Co0",
        "tags": "t1",
        "status": "subscribed",
        "suppressed": "false",
        "plan": "p2",
    }

    again = await imported(acme.client, exported, onDuplicate="skip")
    assert (again["created"], again["skipped"], again["failed"]) == (0, BIG_IMPORT_ROWS, 0)

    filtered = await acme.client.get("/v1/contacts/export", params={"field": "plan=p2"})
    assert len(filtered.text.strip().splitlines()) == 1 + BIG_IMPORT_ROWS // 5


async def test_contacts_and_lists_stay_in_their_account(acme: Tenant, other: Tenant) -> None:
    made = (await acme.client.post("/v1/contacts", json={"email": "ann@example.com"})).json()
    listed = (await acme.client.post("/v1/lists", json={"name": "L"})).json()

    # The same address is a separate contact in another account.
    theirs = await other.client.post("/v1/contacts", json={"email": "ann@example.com"})
    assert theirs.status_code == 201
    assert (await other.client.get("/v1/contacts")).json()["data"] == [theirs.json()]
    assert_error(await other.client.get(f"/v1/contacts/{made['_id']}"), 404, "not_found")
    assert_error(
        await other.client.get("/v1/contacts", params={"listId": listed["_id"]}), 404, "not_found"
    )
    adding = await other.client.post(
        f"/v1/lists/{listed['_id']}/members", json={"contactIds": [theirs.json()["_id"]]}
    )
    assert_error(adding, 404, "not_found")

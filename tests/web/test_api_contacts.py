"""/api/contacts and /api/lists (the web app's contacts pages) over a real listener: the same
core rules as /v1, owners and admins only, and one account never sees or changes another's
contacts."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

from mailmark.bootstrap import Listeners
from mailmark.core.model import Suppression
from tests.support.web import ApiClient, api_url
from tests.support.world import World
from tests.web.api.conftest import assert_error

CSV_WITH_BAD_ROWS = (
    "E-mail,Given name,Surname,Organisation,Labels,Plan\r\n"
    "ann@example.com,Ann,Lee,Acme,customer;vip,pro\r\n"
    "not-an-address,Bob,Bad,Nowhere,,free\r\n"
    "cid@example.com,Cid,Moe,Initech,customer,free\r\n"
    ",Nobody,,,,\r\n"
    "dee@example.com,Dee,Roe,Acme,,pro\r\n"
)
MAPPING = (
    '{"E-mail": "email", "Given name": "first_name", "Surname": "last_name", '
    '"Organisation": "company", "Labels": "tags", "Plan": "field:plan"}'
)


async def imported(client: ApiClient, body: str, **params: str) -> dict[str, Any]:
    """Upload a CSV through /api and wait for its import to finish; the final status."""
    started = await client.post(
        "/api/contacts/import",
        content=body.encode(),
        params=params,
        headers={"content-type": "text/csv"},
    )
    assert started.status_code == 202, started.text
    job: dict[str, Any] = started.json()
    for _ in range(1000):
        job = (await client.get(f"/api/contacts/import/{job['_id']}")).json()
        if job["status"] != "running":
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"the import did not finish: {job}")


async def emails(client: ApiClient, **params: str) -> list[str]:
    response = await client.get("/api/contacts", params=params)
    assert response.status_code == 200, response.text
    return [c["email"] for c in response.json()["data"]]


async def test_an_owner_previews_and_imports_a_csv_with_bad_rows(owner_client: ApiClient) -> None:
    made = await owner_client.post("/api/lists", json={"name": "Leads"})
    assert made.status_code == 201, made.text
    leads = made.json()["_id"]

    preview = await owner_client.post(
        "/api/contacts/import/preview",
        content=CSV_WITH_BAD_ROWS.encode(),
        params={"mapping": MAPPING, "rows": "3"},
        headers={"content-type": "text/csv"},
    )
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["columns"][0] == "E-mail" and shown["mapping"]["Plan"] == "field:plan"
    assert [r["row"] for r in shown["rows"]] == [2, 3, 4]
    assert shown["rows"][0]["contact"]["fields"] == {"plan": "pro"}
    assert shown["rows"][1]["contact"] is None and shown["rows"][1]["error"]
    # A preview saves nothing.
    assert await emails(owner_client) == []

    job = await imported(owner_client, CSV_WITH_BAD_ROWS, mapping=MAPPING, listId=leads)
    assert job["status"] == "done", job
    assert (job["created"], job["failed"], job["rowsDone"]) == (3, 2, 5)
    assert [e["row"] for e in job["errors"]] == [3, 5]
    assert all(e["reason"] for e in job["errors"])

    listing = (await owner_client.get("/api/contacts")).json()
    assert [c["email"] for c in listing["data"]] == [
        "ann@example.com",
        "cid@example.com",
        "dee@example.com",
    ]
    ann = listing["data"][0]
    assert (ann["firstName"], ann["company"], ann["tags"]) == ("Ann", "Acme", ["customer", "vip"])
    assert ann["listIds"] == [leads]
    [lead_list] = (await owner_client.get("/api/lists")).json()
    assert lead_list["size"] == 3


async def test_the_columns_of_a_file_come_before_any_mapping(owner_client: ApiClient) -> None:
    # No column is called email: the preview refuses it until one is mapped, the columns don't.
    body = b"Mail,First Name,Plan type,###\r\nann@example.com,Ann,pro,x\r\n\r\nbob@x.test,Bob\r\n"
    columns = await owner_client.post(
        "/api/contacts/import/columns", content=body, headers={"content-type": "text/csv"}
    )
    assert columns.status_code == 200, columns.text
    assert columns.json() == {
        "columns": ["Mail", "First Name", "Plan type", "###"],
        "guessed": {
            "Mail": "field:mail",
            "First Name": "first_name",
            "Plan type": "field:plan_type",
            "###": "",
        },
        "rows": [["ann@example.com", "Ann", "pro", "x"], ["bob@x.test", "Bob", "", ""]],
    }
    preview = await owner_client.post(
        "/api/contacts/import/preview", content=body, headers={"content-type": "text/csv"}
    )
    assert_error(preview, 400, "invalid_input", "mapping")
    mapped = await owner_client.post(
        "/api/contacts/import/preview",
        content=body,
        params={"mapping": '{"Mail": "email", "###": ""}'},
        headers={"content-type": "text/csv"},
    )
    assert mapped.status_code == 200, mapped.text
    assert [r["contact"]["email"] for r in mapped.json()["rows"]] == [
        "ann@example.com",
        "bob@x.test",
    ]
    assert mapped.json()["rows"][0]["contact"]["fields"] == {"plan_type": "pro"}
    empty = await owner_client.post(
        "/api/contacts/import/columns", content=b"", headers={"content-type": "text/csv"}
    )
    assert_error(empty, 400, "invalid_input")


async def test_search_filters_pages_edits_and_deletes(
    owner_client: ApiClient, world: World
) -> None:
    for n, (name, company) in enumerate([("Ann", "Acme"), ("Bob", "Globex"), ("Cyd", "ACME Ltd")]):
        created = await owner_client.post(
            "/api/contacts",
            json={
                "email": f"c{n}@example.com",
                "firstName": name,
                "company": company,
                "tags": ["even"] if n % 2 == 0 else [],
            },
        )
        assert created.status_code == 201, created.text
    again = await owner_client.post("/api/contacts", json={"email": "C0@example.com"})
    assert "already a contact" in assert_error(again, 409, "conflict", "email")
    bad = await owner_client.post("/api/contacts", json={"email": "nope"})
    assert_error(bad, 400, "invalid_input", "email")

    # Search is a case-insensitive substring of the address, names and company.
    assert await emails(owner_client, q="acme") == ["c0@example.com", "c2@example.com"]
    assert await emails(owner_client, q="BOB") == ["c1@example.com"]
    assert await emails(owner_client, q="c2@") == ["c2@example.com"]
    assert await emails(owner_client, q="100%") == []
    assert await emails(owner_client, tag="even", q="ltd") == ["c2@example.com"]

    first = (await owner_client.get("/api/contacts", params={"limit": "2"})).json()
    assert len(first["data"]) == 2 and first["nextCursor"]
    rest = await owner_client.get(
        "/api/contacts", params={"limit": "2", "cursor": first["nextCursor"]}
    )
    assert [c["email"] for c in rest.json()["data"]] == ["c2@example.com"]
    assert rest.json()["nextCursor"] is None

    bob_id = first["data"][1]["_id"]
    changed = await owner_client.patch(
        f"/api/contacts/{bob_id}",
        json={"lastName": "Builder", "status": "unsubscribed", "tags": ["VIP"]},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["lastName"], changed.json()["status"]) == ("Builder", "unsubscribed")
    assert changed.json()["tags"] == ["vip"]
    assert await emails(owner_client, status="unsubscribed") == ["c1@example.com"]
    wrong = await owner_client.patch(f"/api/contacts/{bob_id}", json={"status": "gone"})
    assert_error(wrong, 400, "invalid_input", "status")

    # An address on the suppression list is marked, whatever its status.
    domain = await world.services.domains.get(world.domain)
    assert domain.id is not None
    async with world.services.uow() as uow:
        await uow.suppressions.add(
            Suppression(domain.id, "c2@example.com", "bounce", "550", world.services.clock.now())
        )
        await uow.commit()
    assert await emails(owner_client, suppressed="true") == ["c2@example.com"]
    got = (await owner_client.get(f"/api/contacts/{first['data'][0]['_id']}")).json()
    assert got["suppressed"] is False

    removed = await owner_client.delete(f"/api/contacts/{bob_id}")
    assert removed.status_code == 204, removed.text
    assert_error(await owner_client.get(f"/api/contacts/{bob_id}"), 404, "not_found")
    assert await emails(owner_client) == ["c0@example.com", "c2@example.com"]


async def test_lists_are_created_renamed_filled_and_deleted(owner_client: ApiClient) -> None:
    ann = (await owner_client.post("/api/contacts", json={"email": "ann@example.com"})).json()
    await owner_client.post("/api/contacts", json={"email": "bob@example.com"})
    made = (await owner_client.post("/api/lists", json={"name": "Customers"})).json()
    twice = await owner_client.post("/api/lists", json={"name": "Customers"})
    assert_error(twice, 409, "conflict", "name")
    assert_error(await owner_client.post("/api/lists", json={"name": " "}), 400, "invalid_input")

    renamed = await owner_client.patch(f"/api/lists/{made['_id']}", json={"name": "Paying"})
    assert renamed.json()["name"] == "Paying"
    added = await owner_client.post(
        f"/api/lists/{made['_id']}/members",
        json={"contactIds": [ann["_id"]], "emails": ["BOB@example.com"]},
    )
    assert added.status_code == 200, added.text
    assert added.json()["size"] == 2
    assert await emails(owner_client, listId=made["_id"]) == ["ann@example.com", "bob@example.com"]
    unknown = await owner_client.post(
        f"/api/lists/{made['_id']}/members", json={"emails": ["zed@example.com"]}
    )
    assert_error(unknown, 404, "not_found", "emails")

    off = await owner_client.delete(f"/api/lists/{made['_id']}/members/{ann['_id']}")
    assert off.status_code == 204, off.text
    assert await emails(owner_client, listId=made["_id"]) == ["bob@example.com"]

    assert (await owner_client.delete(f"/api/lists/{made['_id']}")).status_code == 204
    assert (await owner_client.get("/api/lists")).json() == []
    # The list's contacts stay.
    assert len(await emails(owner_client)) == 2


async def test_the_export_is_a_csv_download_of_the_filtered_contacts(
    owner_client: ApiClient,
) -> None:
    await owner_client.post(
        "/api/contacts",
        json={"email": "ann@example.com", "firstName": "Ann", "fields": {"plan": "pro"}},
    )
    await owner_client.post(
        "/api/contacts", json={"email": "bob@example.com", "company": "Bob, Inc"}
    )
    response = await owner_client.get("/api/contacts/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["email"], r["first_name"], r["company"], r["plan"]) for r in rows] == [
        ("ann@example.com", "Ann", "", "pro"),
        ("bob@example.com", "", "Bob, Inc", ""),
    ]
    only = await owner_client.get("/api/contacts/export", params={"q": "bob"})
    assert [r["email"] for r in csv.DictReader(io.StringIO(only.text))] == ["bob@example.com"]


async def test_another_account_cannot_see_or_change_these_contacts(
    owner_client: ApiClient, member_client: ApiClient, listeners: Listeners, world: World
) -> None:
    ann = (await owner_client.post("/api/contacts", json={"email": "ann@example.com"})).json()
    leads = (await owner_client.post("/api/lists", json={"name": "Leads"})).json()
    job = await imported(owner_client, "email\r\ncid@example.com\r\n")

    await world.services.accounts.create(
        "rival", owner_email="owner@rival.test", password="owner-pass-1", plan="unlimited"
    )
    async with ApiClient(api_url(listeners)) as rival:
        await rival.signed_in("owner@rival.test", "owner-pass-1")
        assert (await rival.get("/api/contacts")).json() == {"data": [], "nextCursor": None}
        assert (await rival.get("/api/lists")).json() == []
        export = await rival.get("/api/contacts/export")
        assert "ann@example.com" not in export.text
        for response in [
            await rival.get(f"/api/contacts/{ann['_id']}"),
            await rival.patch(f"/api/contacts/{ann['_id']}", json={"firstName": "Mallory"}),
            await rival.delete(f"/api/contacts/{ann['_id']}"),
            await rival.get(f"/api/contacts/import/{job['_id']}"),
            await rival.patch(f"/api/lists/{leads['_id']}", json={"name": "Mine"}),
            await rival.delete(f"/api/lists/{leads['_id']}"),
            await rival.post(
                f"/api/lists/{leads['_id']}/members", json={"contactIds": [ann["_id"]]}
            ),
            await rival.get("/api/contacts", params={"listId": leads["_id"]}),
        ]:
            assert_error(response, 404, "not_found")
        # Their own list cannot take acme's contact either.
        theirs = (await rival.post("/api/lists", json={"name": "Theirs"})).json()
        stolen = await rival.post(
            f"/api/lists/{theirs['_id']}/members", json={"contactIds": [ann["_id"]]}
        )
        assert_error(stolen, 404, "not_found")
        # The same address is a contact of each account on its own.
        mine = await rival.post("/api/contacts", json={"email": "ann@example.com"})
        assert mine.status_code == 201, mine.text

    # A member of acme manages no contacts.
    assert "owner or an admin" in assert_error(
        await member_client.get("/api/contacts"), 403, "forbidden"
    )
    assert_error(
        await member_client.post("/api/contacts", json={"email": "x@example.com"}),
        403,
        "forbidden",
    )
    kept = (await owner_client.get(f"/api/contacts/{ann['_id']}")).json()
    assert kept["firstName"] == "" and (await owner_client.get("/api/lists")).json()[0]["name"] == (
        "Leads"
    )


async def test_state_changes_need_the_csrf_token(owner_client: ApiClient) -> None:
    refused = await owner_client.post(
        "/api/contacts", json={"email": "ann@example.com"}, csrf=False
    )
    assert_error(refused, 403, "csrf_failed")
    upload = await owner_client.post(
        "/api/contacts/import",
        content=b"email\r\nann@example.com\r\n",
        headers={"content-type": "text/csv"},
        csrf=False,
    )
    assert_error(upload, 403, "csrf_failed")
    assert await emails(owner_client) == []


async def test_search_matches_wildcards_and_accented_letters_literally(
    owner_client: ApiClient,
) -> None:
    for email, name in [
        ("a_b@example.com", "Émile"),
        ("axb@example.com", "ÉLODIE"),
        ("pct@example.com", "100% Zoë"),
    ]:
        created = await owner_client.post("/api/contacts", json={"email": email, "firstName": name})
        assert created.status_code == 201, created.text

    # LIKE's wildcards are the characters themselves.
    assert await emails(owner_client, q="a_b") == ["a_b@example.com"]
    assert await emails(owner_client, q="_") == ["a_b@example.com"]
    assert await emails(owner_client, q="%") == ["pct@example.com"]
    assert await emails(owner_client, q="0% z") == ["pct@example.com"]
    # Case-insensitive beyond ASCII too, on every database.
    assert await emails(owner_client, q="émile") == ["a_b@example.com"]
    assert await emails(owner_client, q="ÉMILE") == ["a_b@example.com"]
    assert await emails(owner_client, q="élodie") == ["axb@example.com"]
    assert await emails(owner_client, q="ZOË") == ["pct@example.com"]


async def test_a_search_it_cannot_run_is_explained(owner_client: ApiClient) -> None:
    nul = await owner_client.get("/api/contacts", params={"q": "a\0b"})
    assert "NUL" in assert_error(nul, 400, "invalid_input", "q")
    long = await owner_client.get("/api/contacts/export", params={"q": "x" * 201})
    assert "at most 200" in assert_error(long, 400, "invalid_input", "q")


async def test_the_start_of_a_file_cut_inside_a_record_is_read_up_to_the_rows_asked(
    owner_client: ApiClient,
) -> None:
    # The page sends the first bytes of a large file: its last record may be cut anywhere, in
    # a quoted cell or a UTF-8 character.
    for tail in (b'cy@example.com,"Notes that go o', b"cy@example.com,Zo\xc3"):
        body = b"email,notes\r\nann@example.com,Hi\r\nbob@example.com,Yo\r\n" + tail
        columns = await owner_client.post(
            "/api/contacts/import/columns",
            content=body,
            params={"rows": "2"},
            headers={"content-type": "text/csv"},
        )
        assert columns.status_code == 200, columns.text
        assert [row[0] for row in columns.json()["rows"]] == ["ann@example.com", "bob@example.com"]
        preview = await owner_client.post(
            "/api/contacts/import/preview",
            content=body,
            params={"rows": "2"},
            headers={"content-type": "text/csv"},
        )
        assert preview.status_code == 200, preview.text
        shown = [row["contact"]["email"] for row in preview.json()["rows"]]
        assert shown == ["ann@example.com", "bob@example.com"]

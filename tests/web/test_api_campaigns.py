"""/api/campaigns over a real listener: a campaign built, previewed, launched and sent by the
engine, then its stats (with people's opens apart from machines'), activity over time, recipients,
a recipient's timeline and the CSV export; pause, resume and cancel; and the access rules: owners
and admins only, never another account's campaigns."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mailmark.bootstrap import Listeners
from mailmark.core.events import record_events
from mailmark.core.ports import NewEvent
from mailmark.core.states import EventType
from tests.support.web import ApiClient, api_url
from tests.support.world import World
from tests.web.api.conftest import assert_error

STAGES = [
    {
        "subject": "Hello {{firstName|there}}",
        "subjectVariants": ["A question for {{company|your team}}"],
        "html": "<p>Hi {{firstName|there}}, a word about {{plan|our plans}}.</p>",
    },
    {"delayDays": 3, "html": "<p>Following up, {{firstName|there}}.</p>"},
]


async def audience(world: World) -> tuple[str, dict[str, str]]:
    """A list of three contacts of acme; its id and the contacts' ids by address."""
    services = world.services
    account = await services.accounts.get("acme")
    assert account.id is not None
    ids = {}
    for email, first, fields in (
        ("ann@remote.test", "Ann", {"plan": "Pro"}),
        ("bob@remote.test", None, {}),
        ("cy@remote.test", "Cy", {}),
    ):
        contact = await services.contacts.create(
            account.id, email=email, first_name=first, company="Initech", fields=fields
        )
        ids[email] = str(contact.id)
    made = await services.contacts.create_list(account.id, "Prospects")
    await services.contacts.add_members(account.id, str(made.id), emails=list(ids))
    return str(made.id), ids


async def draft(client: ApiClient, list_id: str, **more: Any) -> dict[str, Any]:
    created = await client.post(
        "/api/campaigns",
        json={
            "domain": "acme.test",
            "name": "December outreach",
            "from": "sales@acme.test",
            "audience": {"listIds": [list_id]},
            "stages": STAGES,
            "schedule": {"timezone": "Europe/Paris", "dailyCap": 50},
            **more,
        },
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def test_a_campaign_is_built_launched_and_measured(
    owner_client: ApiClient, world: World
) -> None:
    list_id, contact_ids = await audience(world)
    choices = (await owner_client.get("/api/campaigns/choices")).json()
    assert [m["address"] for m in choices["mailboxes"]] == ["sales@acme.test", "support@acme.test"]
    assert choices["lists"] == [{"id": list_id, "name": "Prospects", "size": 3, "segment": False}]

    campaign = await draft(owner_client, list_id)
    assert campaign["status"] == "draft" and campaign["from"] == "sales@acme.test"
    url = f"/api/campaigns/{campaign['_id']}"
    listed = (await owner_client.get("/api/campaigns")).json()
    assert [c["campaign"]["_id"] for c in listed["data"]] == [campaign["_id"]]
    assert listed["data"][0]["totals"]["sent"] == 0

    contacts = (await owner_client.get(f"{url}/contacts")).json()
    assert {c["email"] for c in contacts} == set(contact_ids)
    preview = await owner_client.post(
        f"{url}/preview", json={"stage": 1, "contactId": contact_ids["ann@remote.test"]}
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["subject"] == "Hello Ann"
    assert "a word about Pro." in preview.json()["html"]
    fallback = (await owner_client.post(f"{url}/preview", json={"stage": 2})).json()
    assert fallback["subject"] == "Re: Hello there"
    assert "Following up, there." in fallback["html"]

    changed = await owner_client.patch(url, json={"name": "December outreach, take 2"})
    assert changed.status_code == 200 and changed.json()["name"] == "December outreach, take 2"

    launched = await owner_client.post(f"{url}/launch")
    assert launched.status_code == 200, launched.text
    assert launched.json()["status"] == "running"
    refused = await owner_client.patch(url, json={"name": "Too late"})
    assert_error(refused, 409, "conflict")
    # The listeners' scheduler may have sent the pass already; one pass at a time, so after this
    # one every due stage is queued.
    await world.services.campaign_engine.run_once()

    # One message opened by a person and by a privacy proxy, another by the proxy alone.
    listed_recipients = (await owner_client.get(f"{url}/recipients")).json()["data"]
    account = await world.services.accounts.get("acme")
    assert account.id is not None
    now = world.services.clock.now()
    async with world.services.uow() as uow:
        first, second = [
            (await uow.campaigns.recipient_messages(int(r["_id"])))[0].outbound_id
            for r in listed_recipients[:2]
        ]
        await record_events(
            uow,
            [
                NewEvent(account.id, EventType.OPENED, {"machine": False}, now, first),
                NewEvent(account.id, EventType.OPENED, {"machine": True}, now, first),
                NewEvent(
                    account.id,
                    EventType.OPENED,
                    {"machine": True, "machineReason": "Apple Mail Privacy Protection"},
                    now,
                    second,
                ),
            ],
        )
        await uow.commit()

    stats = (await owner_client.get(f"{url}/stats")).json()
    assert stats["recipients"] == 3 and stats["states"]["active"] == 3
    assert stats["totals"]["sent"] == 3
    assert (stats["totals"]["opened"], stats["totals"]["humanOpened"]) == (2, 1)
    assert [s["stage"] for s in stats["stages"]] == [1, 2]
    assert sum(v["counts"]["sent"] for v in stats["stages"][0]["variants"]) == 3

    activity = (await owner_client.get(f"{url}/activity")).json()
    assert activity["bucket"] == "hour" and activity["timezone"] == "Europe/Paris"
    assert sum(p["sent"] for p in activity["points"]) == 3
    # Machine opens are left out of the chart.
    assert sum(p["opened"] for p in activity["points"]) == 1
    daily = (await owner_client.get(f"{url}/activity", params={"bucket": "day"})).json()
    assert daily["bucket"] == "day" and len(daily["points"]) == 1
    assert_error(
        await owner_client.get(f"{url}/activity", params={"bucket": "week"}),
        400,
        "invalid_input",
        "bucket",
    )

    recipients = (await owner_client.get(f"{url}/recipients")).json()["data"]
    assert [r["email"] for r in recipients] == sorted(contact_ids)
    assert all(r["stagesSent"] == 1 and r["nextStage"] == 2 for r in recipients)
    ann = recipients[0]
    detail = (await owner_client.get(f"{url}/recipients/{ann['_id']}")).json()
    assert detail["recipient"]["email"] == "ann@remote.test"
    kinds = [(e["kind"], e["stage"], e["machine"]) for e in detail["entries"]]
    assert kinds[0] == ("sent", 1, False)
    assert ("opened", 1, False) in kinds and ("opened", 1, True) in kinds
    assert_error(await owner_client.get(f"{url}/recipients/999999"), 404, "not_found")

    exported = await owner_client.get(f"{url}/recipients.csv")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.headers["cache-control"] == "no-store"
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [row["email"] for row in table] == sorted(contact_ids)
    assert table[0]["state"] == "active" and table[0]["opened"] == "2"
    assert table[1]["opened"] == "1" and table[2]["opened"] == "0"

    paused = (await owner_client.post(f"{url}/pause")).json()
    assert paused["status"] == "paused" and paused["pauseReason"] == "Paused by the user."
    listed = (await owner_client.get("/api/campaigns")).json()["data"][0]
    assert listed["campaign"]["pauseReason"] == "Paused by the user."
    assert listed["totals"]["sent"] == 3 and listed["recipients"] == 3
    resumed = (await owner_client.post(f"{url}/resume")).json()
    assert resumed["status"] == "running" and resumed["pauseReason"] == ""
    canceled = (await owner_client.post(f"{url}/cancel")).json()
    assert canceled["status"] == "canceled"
    assert_error(await owner_client.post(f"{url}/resume"), 409, "conflict")


async def test_test_send_goes_to_the_author(owner_client: ApiClient, world: World) -> None:
    list_id, contact_ids = await audience(world)
    campaign = await draft(owner_client, list_id)
    sent = await owner_client.post(
        f"/api/campaigns/{campaign['_id']}/test-send",
        json={"to": "owner@acme.test", "contactId": contact_ids["cy@remote.test"]},
    )
    assert sent.status_code == 202, sent.text
    assert sent.json()["messageId"]
    bad = await owner_client.post(
        f"/api/campaigns/{campaign['_id']}/test-send", json={"to": "not an address"}
    )
    assert_error(bad, 400, "invalid_input", "to")


async def test_bad_input_is_explained(owner_client: ApiClient, world: World) -> None:
    list_id, _ = await audience(world)
    elsewhere = await owner_client.post(
        "/api/campaigns",
        json={"domain": "nowhere.test", "from": "sales@acme.test", "stages": STAGES},
    )
    assert_error(elsewhere, 404, "not_found", "domain")
    no_subject = await owner_client.post(
        "/api/campaigns",
        json={
            "domain": "acme.test",
            "name": "x",
            "from": "sales@acme.test",
            "audience": {"listIds": [list_id]},
            "stages": [{"html": "<p>Hi</p>"}],
        },
    )
    assert no_subject.status_code == 400, no_subject.text
    assert_error(await owner_client.get("/api/campaigns/abc"), 404, "not_found")


async def test_members_and_other_accounts_are_refused(
    listeners: Listeners, owner_client: ApiClient, member_client: ApiClient, world: World
) -> None:
    list_id, _ = await audience(world)
    campaign = await draft(owner_client, list_id)
    url = f"/api/campaigns/{campaign['_id']}"
    assert_error(await member_client.get("/api/campaigns"), 403, "forbidden")
    assert_error(await member_client.get(url), 403, "forbidden")
    assert_error(await member_client.post(f"{url}/launch"), 403, "forbidden")

    services = world.services
    await services.accounts.create(
        "rival", owner_email="owner@rival.test", password="rival-pass-1", plan="unlimited"
    )
    await services.domains.add("rival.test", account_name="rival", trust=True)
    await services.mailboxes.create("boss@rival.test")
    async with ApiClient(api_url(listeners)) as rival:
        await rival.signed_in("owner@rival.test", "rival-pass-1")
        assert (await rival.get("/api/campaigns")).json()["data"] == []
        for path in ("", "/stats", "/activity", "/recipients", "/recipients.csv", "/contacts"):
            assert_error(await rival.get(url + path), 404, "not_found")
        for action in ("launch", "pause", "resume", "cancel"):
            assert_error(await rival.post(f"{url}/{action}"), 404, "not_found")
        assert_error(await rival.patch(url, json={"name": "Mine now"}), 404, "not_found")
        assert_error(await rival.post(f"{url}/preview", json={"stage": 1}), 404, "not_found")
        assert_error(
            await rival.post(f"{url}/test-send", json={"to": "boss@rival.test"}), 404, "not_found"
        )
        # Nor can a campaign of theirs send from acme's mailbox or domain.
        stolen = await rival.post(
            "/api/campaigns",
            json={"domain": "acme.test", "from": "sales@acme.test", "stages": STAGES},
        )
        assert_error(stolen, 404, "not_found", "domain")
        choices = (await rival.get("/api/campaigns/choices")).json()
        assert [m["address"] for m in choices["mailboxes"]] == ["boss@rival.test"]
        assert choices["lists"] == []
    assert (await owner_client.get(url)).json()["name"] == "December outreach"
    assert (await owner_client.get(url)).json()["status"] == "draft"


async def test_a_draft_cannot_name_another_accounts_lists_senders_or_contacts(
    listeners: Listeners, owner_client: ApiClient, world: World
) -> None:
    list_id, contacts = await audience(world)
    services = world.services
    acme = await services.domains.get("acme.test")
    assert acme.id is not None
    group = await services.sender_groups.create(acme.id, acme.name, name="Acme senders")
    await services.accounts.create(
        "rival", owner_email="owner@rival.test", password="rival-pass-1", plan="unlimited"
    )
    await services.domains.add("rival.test", account_name="rival", trust=True)
    await services.mailboxes.create("boss@rival.test")
    async with ApiClient(api_url(listeners)) as rival:
        await rival.signed_in("owner@rival.test", "rival-pass-1")
        base = {"domain": "rival.test", "name": "Theirs", "stages": STAGES}
        for extra, field in (
            ({"from": "boss@rival.test", "audience": {"listIds": [list_id]}}, "audience.listIds"),
            ({"from": "sales@acme.test"}, "from"),
            ({"senderGroupId": str(group.group.id)}, "senderGroupId"),
        ):
            refused = await rival.post("/api/campaigns", json={**base, **extra})
            assert_error(refused, 404, "not_found", field)
        theirs = await rival.post("/api/campaigns", json={**base, "from": "boss@rival.test"})
        assert theirs.status_code == 201, theirs.text
        url = f"/api/campaigns/{theirs.json()['_id']}"
        for change, field in (
            ({"audience": {"listIds": [list_id]}}, "audience.listIds"),
            ({"from": "sales@acme.test"}, "from"),
            ({"senderGroupId": str(group.group.id)}, "senderGroupId"),
        ):
            assert_error(await rival.patch(url, json=change), 404, "not_found", field)
        ann = contacts["ann@remote.test"]
        peek = await rival.post(f"{url}/preview", json={"stage": 1, "contactId": ann})
        assert_error(peek, 404, "not_found", "contactId")
        sent = await rival.post(
            f"{url}/test-send", json={"to": "boss@rival.test", "contactId": ann}
        )
        assert_error(sent, 404, "not_found", "contactId")
        assert (await rival.get(f"{url}/contacts")).json() == []
        # Bad query values are explained, never a server error.
        assert_error(
            await rival.get(f"{url}/activity", params={"bucket": "week"}),
            400,
            "invalid_input",
            "bucket",
        )
        for params in ({"state": "lost"}, {"limit": "-1"}, {"limit": "x"}, {"cursor": "x"}):
            bad = await rival.get(f"{url}/recipients", params=params)
            assert bad.status_code == 400, (params, bad.text)
        for params in ({"limit": "0"}, {"limit": "100000"}, {"cursor": "-1"}):
            bad = await rival.get("/api/campaigns", params=params)
            assert bad.status_code == 400, (params, bad.text)
        assert_error(await rival.get(f"{url}/recipients/x"), 404, "not_found")
        assert_error(await rival.get(f"{url}/recipients.csv/x"), 404, "not_found")


async def test_hours_of_a_zone_off_utcs_hours_are_counted_apart(
    owner_client: ApiClient, world: World
) -> None:
    # Kolkata is UTC+05:30: a UTC hour straddles two of its hours.
    list_id, _ = await audience(world)
    campaign = await draft(owner_client, list_id, schedule={"timezone": "Asia/Kolkata"})
    url = f"/api/campaigns/{campaign['_id']}"
    assert (await owner_client.post(f"{url}/launch")).status_code == 200
    await world.services.campaign_engine.run_once()
    [first, *_] = (await owner_client.get(f"{url}/recipients")).json()["data"]
    account = await world.services.accounts.get("acme")
    assert account.id is not None
    hour = world.services.clock.now().replace(minute=0, second=0, microsecond=0)
    async with world.services.uow() as uow:
        [message] = await uow.campaigns.recipient_messages(int(first["_id"]))
        await record_events(
            uow,
            [
                # 15:40 and 16:10 in Kolkata, in the same UTC hour.
                NewEvent(
                    account.id,
                    EventType.OPENED,
                    {},
                    hour + timedelta(minutes=10),
                    message.outbound_id,
                ),
                NewEvent(
                    account.id,
                    EventType.OPENED,
                    {},
                    hour + timedelta(minutes=40),
                    message.outbound_id,
                ),
            ],
        )
        await uow.commit()
    activity = (await owner_client.get(f"{url}/activity", params={"bucket": "hour"})).json()
    opened = {p["start"]: p["opened"] for p in activity["points"] if p["opened"]}
    local = ZoneInfo("Asia/Kolkata")
    assert sorted(
        (datetime.fromisoformat(s).astimezone(local).minute, n) for s, n in opened.items()
    ) == [(0, 1), (0, 1)]
    assert len(opened) == 2
    # Storage counts per UTC quarter of an hour for such a zone.
    async with world.services.uow() as uow:
        hits = await uow.campaigns.activity(int(campaign["_id"]), quarter_hours=True)
    assert {h.at.minute for h in hits} <= {0, 15, 30, 45}
    assert sorted((h.at, h.count) for h in hits if h.kind == "opened") == [
        (hour, 1),
        (hour + timedelta(minutes=30), 1),
    ]

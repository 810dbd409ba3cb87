"""GET /v1/emails, GET /v1/emails/{id}, GET/DELETE /v1/suppressions over real HTTP."""

from __future__ import annotations

from datetime import datetime

from mailmark.core.events import record_events
from mailmark.core.model import Suppression
from mailmark.core.ports import NewEvent
from tests.support.world import World
from tests.web.api.conftest import Tenant, assert_error
from tests.web.api.test_send import later_ms


async def _send(acme: Tenant, subject: str, **extra: object) -> dict[str, object]:
    body = {
        "from": "sales@acme.test",
        "to": ["ann@example.com"],
        "subject": subject,
        "text": "x",
        "scheduledAt": later_ms(),
        **extra,
    }
    response = await acme.client.post("/v1/send", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


async def test_emails_are_listed_newest_first_in_cursor_pages(acme: Tenant) -> None:
    for n in range(5):
        await _send(acme, f"n{n}")

    first = (await acme.client.get("/v1/emails", params={"limit": 2})).json()
    second = (
        await acme.client.get("/v1/emails", params={"limit": 2, "cursor": first["nextCursor"]})
    ).json()
    third = (
        await acme.client.get("/v1/emails", params={"limit": 2, "cursor": second["nextCursor"]})
    ).json()

    subjects = [e["subject"] for page in (first, second, third) for e in page["data"]]
    assert subjects == ["n4", "n3", "n2", "n1", "n0"]
    assert third["nextCursor"] is None
    email = first["data"][0]
    assert email["from"] == "sales@acme.test" and email["to"] == ["ann@example.com"]
    assert email["status"] == "queued" and email["scheduledAt"] is not None


async def test_ids_and_cursors_in_other_scripts_digits_are_refused(acme: Tenant) -> None:
    # "¹" and "٣" are digits to str.isdigit but not to int(): they must not reach it.
    superscript = await acme.client.get("/v1/emails/\u00b9")
    arabic = await acme.client.get("/v1/emails", params={"cursor": "\u0663"})
    group = await acme.client.patch("/v1/sender-groups/\u00b9", json={"name": "x"})

    assert_error(superscript, 404, "not_found")
    assert arabic.status_code == 400, arabic.text
    assert group.status_code in (400, 404), group.text


async def test_emails_filter_by_status_from_and_batch(acme: Tenant, world: World) -> None:
    await _send(acme, "plain")
    campaign = await _send(acme, "camp", type="campaign", to=["a@example.com", "b@example.com"])
    sent = world.services.sending
    await sent.submit(mailbox=world.support, to=["c@example.com"], subject="other", text="x")

    by_batch = (await acme.client.get("/v1/emails", params={"batchId": campaign["batchId"]})).json()
    by_from = (await acme.client.get("/v1/emails", params={"from": "SUPPORT@acme.test"})).json()
    delivered = (await acme.client.get("/v1/emails", params={"status": "delivered"})).json()
    bad_status = await acme.client.get("/v1/emails", params={"status": "lost"})
    bad_cursor = await acme.client.get("/v1/emails", params={"cursor": "x"})
    bad_limit = await acme.client.get("/v1/emails", params={"limit": 1000})

    assert sorted(e["to"][0] for e in by_batch["data"]) == ["a@example.com", "b@example.com"]
    assert [e["subject"] for e in by_from["data"]] == ["other"]
    assert delivered["data"] == []
    assert_error(bad_status, 400, "invalid_input", "status")
    assert_error(bad_cursor, 400, "invalid_input", "cursor")
    assert_error(bad_limit, 400, "invalid_input", "limit")


async def test_one_email_has_recipients_and_a_timeline(acme: Tenant, world: World) -> None:
    sent = await _send(acme, "Timeline", to=["ann@example.com", "bob@example.com"])
    by_message_id = (await acme.client.get(f"/v1/emails/{sent['messageId']}")).json()
    async with world.services.uow() as uow:
        await record_events(
            uow,
            [
                NewEvent(
                    world.sales.account_id,
                    "email.deferred",
                    {"recipient": "bob@example.com"},
                    world.services.clock.now(),
                    outbound_id=int(by_message_id["_id"]),
                )
            ],
        )
        await uow.commit()

    detail = (await acme.client.get(f"/v1/emails/{by_message_id['_id']}")).json()

    assert detail["messageId"] == sent["messageId"]
    assert [(r["address"], r["status"]) for r in detail["recipients"]] == [
        ("ann@example.com", "queued"),
        ("bob@example.com", "queued"),
    ]
    assert [e["type"] for e in detail["events"]] == ["email.sent", "email.deferred"]
    assert detail["events"][1]["data"] == {"recipient": "bob@example.com"}
    assert_error(await acme.client.get("/v1/emails/999999"), 404, "not_found")
    assert_error(await acme.client.get("/v1/emails/nothing@acme.test"), 404, "not_found")


async def test_suppressions_are_listed_and_lifted(acme: Tenant, world: World) -> None:
    now = world.services.clock.now()
    async with world.services.uow() as uow:
        for n in range(3):
            await uow.suppressions.add(
                Suppression(
                    world.sales.domain_id, f"gone{n}@example.com", "bounce", "550 5.1.1", now
                )
            )
        await uow.commit()

    first = (await acme.client.get("/v1/suppressions", params={"limit": 2})).json()
    rest = (
        await acme.client.get("/v1/suppressions", params={"cursor": first["nextCursor"]})
    ).json()
    lifted = await acme.client.delete("/v1/suppressions/GONE0@example.com")
    again = await acme.client.delete("/v1/suppressions/gone0@example.com")
    after = (await acme.client.get("/v1/suppressions")).json()

    assert [s["address"] for s in first["data"] + rest["data"]] == [
        "gone0@example.com",
        "gone1@example.com",
        "gone2@example.com",
    ]
    assert first["data"][0]["reason"] == "bounce" and rest["nextCursor"] is None
    assert lifted.json() == {"deleted": True}
    assert_error(again, 404, "not_found")
    assert [s["address"] for s in after["data"]] == ["gone1@example.com", "gone2@example.com"]
    resent = await acme.client.post(
        "/v1/send",
        json={
            "from": "sales@acme.test",
            "to": "gone0@example.com",
            "subject": "back",
            "text": "x",
            "scheduledAt": later_ms(),
        },
    )
    assert resent.status_code == 200


async def test_a_scheduled_email_is_canceled_and_says_what_was(acme: Tenant, other: Tenant) -> None:
    sent = await _send(acme, "Cancel me", to=["ann@example.com", "bob@example.com"])
    by_other = await other.client.post(f"/v1/emails/{sent['messageId']}/cancel")

    response = await acme.client.post(f"/v1/emails/{sent['messageId']}/cancel")

    assert_error(by_other, 404, "not_found")
    assert response.status_code == 200, response.text
    answer = response.json()
    detail = (await acme.client.get(f"/v1/emails/{answer['_id']}")).json()
    assert answer == {
        "_id": detail["_id"],
        "messageId": sent["messageId"],
        "status": "canceled",
        "canceled": ["ann@example.com", "bob@example.com"],
        "notCanceled": [],
    }
    assert detail["status"] == "canceled"
    assert [r["status"] for r in detail["recipients"]] == ["canceled", "canceled"]
    assert [e["type"] for e in detail["events"]] == ["email.sent", *["email.canceled"] * 2]
    assert detail["events"][1]["data"] == {
        "to": "ann@example.com",
        "messageId": sent["messageId"],
        "status": "canceled",
    }
    listed = (await acme.client.get("/v1/emails", params={"status": "canceled"})).json()
    assert [e["_id"] for e in listed["data"]] == [detail["_id"]]

    again = await acme.client.post(f"/v1/emails/{detail['_id']}/cancel")
    assert "nothing was canceled" in assert_error(again, 409, "conflict")
    missing = await acme.client.post("/v1/emails/999999/cancel")
    assert_error(missing, 404, "not_found")


async def test_a_scheduled_email_is_rescheduled(acme: Tenant, other: Tenant) -> None:
    sent = await _send(acme, "Move me")
    later = later_ms(7200)

    response = await acme.client.patch(
        f"/v1/emails/{sent['messageId']}", json={"scheduledAt": later}
    )

    assert response.status_code == 200, response.text
    email = response.json()
    assert email["messageId"] == sent["messageId"] and email["status"] == "queued"
    assert datetime.fromisoformat(email["scheduledAt"]).timestamp() * 1000 == later
    path = f"/v1/emails/{email['_id']}"
    assert_error(await other.client.patch(path, json={"scheduledAt": later}), 404, "not_found")
    past = await acme.client.patch(path, json={"scheduledAt": later_ms(-60)})
    assert "future" in assert_error(past, 400, "invalid_input", "scheduledAt")
    far = await acme.client.patch(path, json={"scheduledAt": later_ms(400 * 86400)})
    assert_error(far, 400, "invalid_input", "scheduledAt")
    misspelt = await acme.client.patch(path, json={"scheduled_at": later})
    assert_error(misspelt, 422, "unknown_field", "scheduled_at")

    await acme.client.post(f"{path}/cancel")
    gone = await acme.client.patch(path, json={"scheduledAt": later})
    assert "cannot be rescheduled" in assert_error(gone, 409, "conflict")


async def test_tags_are_returned_and_filter_the_list(acme: Tenant, other: Tenant) -> None:
    welcome = await _send(acme, "welcome", tags=["welcome", "onboarding"])
    await _send(acme, "receipt", tags=["receipt"])
    await _send(acme, "untagged")
    campaign = await _send(
        acme, "camp", type="campaign", to=["a@example.com", "b@example.com"], tags=["welcome"]
    )
    await acme.client.post(
        "/v1/send",
        json={"from": other.mailbox.address, "to": ["z@example.com"], "subject": "o", "text": "x"},
    )
    await other.client.post(
        "/v1/send",
        json={
            "from": other.mailbox.address,
            "to": ["z@example.com"],
            "subject": "theirs",
            "text": "x",
            "tags": ["welcome"],
            "scheduledAt": later_ms(),
        },
    )

    tagged = (await acme.client.get("/v1/emails", params={"tag": "welcome"})).json()
    paged = (await acme.client.get("/v1/emails", params={"tag": "welcome", "limit": 2})).json()
    none = (await acme.client.get("/v1/emails", params={"tag": "nothing"})).json()
    malformed = await acme.client.get("/v1/emails", params={"tag": "a\x00b"})
    everything = (await acme.client.get("/v1/emails")).json()
    one = (await acme.client.get(f"/v1/emails/{welcome['messageId']}")).json()

    assert [e["subject"] for e in tagged["data"]] == ["camp", "camp", "welcome"]
    assert {e["messageId"] for e in tagged["data"][:2]} == set(campaign["messageIds"])  # type: ignore[arg-type]
    assert len(paged["data"]) == 2 and paged["nextCursor"] is not None
    assert none == {"data": [], "nextCursor": None}
    assert_error(malformed, 400, "invalid_input", "tag")
    for name in ("from", "batchId"):
        nul = await acme.client.get("/v1/emails", params={name: "a\x00b"})
        assert_error(nul, 400, "invalid_input", name)
    assert {e["subject"]: e["tags"] for e in everything["data"]} == {
        "camp": ["welcome"],
        "untagged": [],
        "receipt": ["receipt"],
        "welcome": ["onboarding", "welcome"],
    }
    assert one["tags"] == ["onboarding", "welcome"]

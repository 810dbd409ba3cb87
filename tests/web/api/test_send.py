"""POST /v1/send over real HTTP: transactional and campaign sends, scheduling, merge tags, sender
group rotation, idempotency, and every refusal in the one error shape."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time

import sqlalchemy as sa

from mailmark.core.model import Suppression
from mailmark.storage.tables import idempotency_keys, outbound_messages
from tests.support.world import World, queued_rows, stored_copies
from tests.web.api.conftest import Tenant, assert_error


def later_ms(seconds: int = 3600) -> int:
    """A scheduledAt far enough ahead that the delivery worker leaves the message queued."""
    return int((time.time() + seconds) * 1000)


async def test_a_transactional_send_is_queued_and_committed(acme: Tenant, world: World) -> None:
    response = await acme.client.post(
        "/v1/send",
        json={
            "from": "sales@acme.test",
            "to": ["ann@example.com", "bob@example.com"],
            "subject": "Hello!",
            "html": "<p>Hello!</p>",
            "scheduledAt": later_ms(),
        },
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "queued" and body["messageId"].endswith("@acme.test")
    assert await queued_rows(world) == [
        ("sales@acme.test", "ann@example.com", None),
        ("sales@acme.test", "bob@example.com", None),
    ]


async def test_to_may_be_one_address_and_text_alone_is_enough(acme: Tenant, world: World) -> None:
    response = await acme.client.post(
        "/v1/send",
        json={
            "from": "sales@acme.test",
            "to": "ann@example.com",
            "subject": "Hi",
            "text": "Hi",
            "scheduledAt": later_ms(),
        },
    )

    assert response.status_code == 200, response.text
    assert [row[1] for row in await queued_rows(world)] == ["ann@example.com"]


async def test_a_campaign_sends_one_email_per_recipient_with_merge_tags(
    acme: Tenant, world: World
) -> None:
    response = await acme.client.post(
        "/v1/send",
        json={
            "from": "sales@acme.test",
            "to": ["ann@example.com", "bob@example.com", "cy@example.com"],
            "subject": "Hi {{firstName}}",
            "html": "<p>Dear {{ firstName }} of {{company}}</p>",
            "text": "Dear {{firstName}}",
            "type": "campaign",
            "variables": {
                "ann@example.com": {"firstName": "Ann", "company": "<Acme & Co>"},
                "BOB@example.com": {"firstName": "Bob"},
            },
            "scheduledAt": later_ms(),
        },
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "queued" and body["batchId"].startswith("batch_")
    assert len(set(body["messageIds"])) == 3
    rows = await queued_rows(world)
    assert [row[1] for row in rows] == ["ann@example.com", "bob@example.com", "cy@example.com"]
    assert {row[2] for row in rows} == {body["batchId"]}
    subjects = await _subjects(world)
    assert subjects == ["Hi Ann", "Hi Bob", "Hi "]
    ann = (await acme.client.get(f"/v1/emails/{body['messageIds'][0]}")).json()
    assert ann["to"] == ["ann@example.com"] and ann["batchId"] == body["batchId"]
    raw = await _raw_of(world, body["messageIds"][0])
    assert b"&lt;Acme &amp; Co&gt;" in raw and b"<Acme & Co>" not in raw


async def _subjects(world: World) -> list[str]:
    async with world.services.engine.connect() as conn:
        query = sa.select(outbound_messages.c.subject).order_by(outbound_messages.c.id)
        return list((await conn.execute(query)).scalars())


async def _raw_of(world: World, message_id: str) -> bytes:
    async with world.services.engine.connect() as conn:
        key = (
            await conn.execute(
                sa.select(outbound_messages.c.blob_key).where(
                    outbound_messages.c.message_id_header == message_id
                )
            )
        ).scalar_one()
    raw: bytes = await world.services.blobs.get(key)
    return raw


async def test_a_campaign_from_a_sender_group_rotates_its_mailboxes(
    acme: Tenant, world: World
) -> None:
    group = await acme.client.post(
        "/v1/sender-groups",
        json={
            "name": "Team",
            "mailboxes": "sales, support",
            "emails": ["a@example.com", "b@example.com", "c@example.com"],
        },
    )
    assert group.status_code == 201, group.text

    response = await acme.client.post(
        "/v1/send",
        json={
            "senderGroupId": group.json()["_id"],
            "subject": "News",
            "text": "News",
            "type": "campaign",
            "scheduledAt": later_ms(),
        },
    )

    assert response.status_code == 200, response.text
    assert [(row[0], row[1]) for row in await queued_rows(world)] == [
        ("sales@acme.test", "a@example.com"),
        ("support@acme.test", "b@example.com"),
        ("sales@acme.test", "c@example.com"),
    ]


async def test_a_large_campaign_is_one_transaction(acme: Tenant, world: World) -> None:
    recipients = [f"user{i}@example.com" for i in range(500)]
    response = await acme.client.post(
        "/v1/send",
        json={
            "from": "sales@acme.test",
            "to": recipients,
            "subject": "Hi",
            "text": "Hi",
            "type": "campaign",
            "scheduledAt": later_ms(),
        },
    )

    assert response.status_code == 200, response.text
    assert len(response.json()["messageIds"]) == 500
    assert len(await queued_rows(world)) == 500


async def test_refusals_name_the_field_and_queue_nothing(acme: Tenant, world: World) -> None:
    base = {"from": "sales@acme.test", "to": ["ann@example.com"], "subject": "Hi", "text": "x"}
    cases = [
        ({**base, "subject": "Hi\r\nBcc: victim@example.com"}, 422, "header_injection", "subject"),
        ({**base, "to": ["ann@example.com\r\nX: y"]}, 422, "header_injection", "to"),
        ({**base, "from": "sales@acme.test\n"}, 422, "header_injection", "from"),
        ({**base, "headers": {"X-Tag": "a\u0000b"}}, 422, "header_injection", "headers"),
        ({**base, "replyTo": "a@example.com\rb"}, 422, "header_injection", "replyTo"),
        ({**base, "text": None}, 400, "invalid_input", "html"),
        ({**base, "to": ["not-an-address"]}, 400, "invalid_input", "to"),
        ({**base, "scheduledAt": 1750000000000}, 400, "invalid_input", "scheduledAt"),
        ({**base, "type": "newsletter"}, 400, "invalid_request", "type"),
        ({**base, "subject": 5}, 400, "invalid_request", "subject"),
        ({k: v for k, v in base.items() if k != "subject"}, 400, "invalid_request", "subject"),
        ({**base, "from": None}, 400, "invalid_input", "from"),
        ({**base, "from": "nobody@acme.test"}, 404, "not_found", "from"),
        ({**base, "from": "news@other.test"}, 404, "not_found", "from"),
        ({**base, "variables": {"ann@example.com": {"a": "b"}}}, 400, "invalid_input", "variables"),
    ]
    for body, status, code, field in cases:
        assert_error(await acme.client.post("/v1/send", json=body), status, code, field)
    malformed = await acme.client.post(
        "/v1/send", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(malformed, 400, "invalid_request")
    assert await queued_rows(world) == []


async def test_suppressed_recipients_and_the_monthly_quota_refuse_the_send(
    acme: Tenant, world: World
) -> None:
    async with world.services.uow() as uow:
        await uow.suppressions.add(
            Suppression(
                world.sales.domain_id,
                "gone@example.com",
                "bounce",
                "550",
                world.services.clock.now(),
            )
        )
        await uow.commit()
    base = {"from": "sales@acme.test", "subject": "Hi", "text": "x"}

    suppressed = await acme.client.post("/v1/send", json={**base, "to": ["Gone@example.com"]})

    assert "suppression list" in assert_error(suppressed, 422, "suppressed")
    async with world.services.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE accounts SET plan = 'starter'"))
    recipients = [f"u{i}@example.com" for i in range(1001)]
    over = await acme.client.post(
        "/v1/send", json={**base, "to": recipients[:1], "type": "campaign"}
    )
    assert over.status_code == 200
    too_many = await acme.client.post(
        "/v1/send", json={**base, "to": recipients[1:], "type": "campaign"}
    )
    message = assert_error(too_many, 403, "quota_exceeded")
    assert message == "Monthly email limit reached (1000 emails). Please upgrade your plan."
    assert len(await queued_rows(world)) == 1


async def test_the_same_idempotency_key_answers_the_same_and_sends_once(
    acme: Tenant, world: World
) -> None:
    body = {
        "from": "sales@acme.test",
        "to": ["ann@example.com"],
        "subject": "Once",
        "text": "x",
        "scheduledAt": later_ms(),
    }
    headers = {"Idempotency-Key": "order-1234"}

    first = await acme.client.post("/v1/send", json=body, headers=headers)
    again = await acme.client.post("/v1/send", json=body, headers=headers)
    different = await acme.client.post(
        "/v1/send", json={**body, "subject": "Twice"}, headers=headers
    )
    other_key = await acme.client.post(
        "/v1/send", json=body, headers={"Idempotency-Key": "order-1235"}
    )

    assert first.status_code == 200 and again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_error(different, 422, "idempotency_key_reused", "Idempotency-Key")
    assert other_key.status_code == 200, other_key.text
    assert other_key.json()["messageId"] != first.json()["messageId"]
    assert len(await queued_rows(world)) == 2


async def test_concurrent_retries_with_one_key_send_once(acme: Tenant, world: World) -> None:
    body = {
        "from": "sales@acme.test",
        "to": ["ann@example.com"],
        "subject": "Race",
        "text": "x",
        "scheduledAt": later_ms(),
    }
    headers = {"Idempotency-Key": "race-1"}

    answers = await asyncio.gather(
        *(acme.client.post("/v1/send", json=body, headers=headers) for _ in range(8))
    )

    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["messageId"] for a in answers}) == 1
    assert len(await queued_rows(world)) == 1
    async with world.services.engine.connect() as conn:
        count = (
            await conn.execute(sa.select(sa.func.count()).select_from(idempotency_keys))
        ).scalar_one()
    assert count == 1


async def test_a_failed_send_stores_no_idempotency_key(acme: Tenant, world: World) -> None:
    body = {
        "from": "sales@acme.test",
        "to": ["ann@example.com"],
        "subject": "Hi\nX",
        "text": "x",
        "scheduledAt": later_ms(),
    }
    headers = {"Idempotency-Key": "bad-1"}

    refused = await acme.client.post("/v1/send", json=body, headers=headers)
    fixed = await acme.client.post("/v1/send", json={**body, "subject": "Hi"}, headers=headers)

    assert refused.status_code == 422
    assert fixed.status_code == 200
    assert len(await queued_rows(world)) == 1


async def test_an_oversized_body_is_413_in_the_error_shape(acme: Tenant, world: World) -> None:
    body = {
        "from": "sales@acme.test",
        "to": "ann@example.com",
        "subject": "big",
        "text": "x" * (11 * 1024 * 1024),
    }

    response = await acme.client.post("/v1/send", json=body)

    assert_error(response, 413, "request_too_large")
    assert await queued_rows(world) == []


async def test_a_misspelt_field_is_a_422_naming_it_and_sends_nothing(
    acme: Tenant, world: World
) -> None:
    body = {"from": "sales@acme.test", "to": "ann@example.com", "subject": "Later", "text": "x"}

    response = await acme.client.post("/v1/send", json={**body, "scheduled_at": later_ms()})
    nested = await acme.client.post(
        "/v1/send",
        json={
            **body,
            "attachments": [{"filename": "a.txt", "content": "aGk=", "content_type": "text/plain"}],
        },
    )
    group = await acme.client.post("/v1/sender-groups", json={"name": "g", "mailbox": "all"})

    message = assert_error(response, 422, "unknown_field", "scheduled_at")
    assert "scheduled_at" in message
    assert_error(nested, 422, "unknown_field", "attachments[0].content_type")
    assert_error(group, 422, "unknown_field", "mailbox")
    assert await queued_rows(world) == []


async def test_a_campaign_carries_reply_to_headers_attachments_and_tags_to_every_email(
    acme: Tenant, world: World
) -> None:
    response = await acme.client.post(
        "/v1/send",
        json={
            "type": "campaign",
            "from": "sales@acme.test",
            "to": ["ann@example.com", "bob@example.com"],
            "subject": "Hi",
            "html": "<p>Hi</p>",
            "replyTo": "help@acme.test",
            "headers": {"X-Campaign": "spring"},
            "attachments": [{"filename": "terms.txt", "content": "dGVybXM="}],
            "tags": ["spring"],
            "scheduledAt": later_ms(),
        },
    )
    injected = await acme.client.post(
        "/v1/send",
        json={
            "type": "campaign",
            "from": "sales@acme.test",
            "to": ["ann@example.com"],
            "subject": "Hi",
            "text": "x",
            "headers": {"X-Campaign": "a\r\nBcc: eve@example.com"},
        },
    )

    assert response.status_code == 200, response.text
    copies = await stored_copies(world.services, world.sales)
    assert len(copies) == 2
    for copy in copies:
        message = email.message_from_bytes(copy.data, policy=email.policy.default)
        assert message["Reply-To"] == "help@acme.test" and message["X-Campaign"] == "spring"
        [terms] = message.iter_attachments()
        assert terms.get_filename() == "terms.txt" and terms.get_content() == "terms"
    listed = (await acme.client.get("/v1/emails", params={"tag": "spring"})).json()["data"]
    assert sorted(e["messageId"] for e in listed) == sorted(response.json()["messageIds"])
    assert_error(injected, 422, "header_injection", "headers")
    assert len(await queued_rows(world)) == 2

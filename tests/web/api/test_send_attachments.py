"""Attachments on POST /v1/send over real HTTP, with a small message size limit: what is over it
is refused with 413 naming `attachments` before anything is queued, and every malformed
attachment names its field."""

from __future__ import annotations

import base64
import email
import email.policy

import pytest

from mailmark.config import Settings
from tests.support.world import World, stored_copies
from tests.web.api.conftest import Tenant, assert_error
from tests.web.api.test_send import later_ms, queued_rows

LIMIT = 200_000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_message_size": LIMIT})


def body(*attachments: dict[str, str], **extra: object) -> dict[str, object]:
    return {
        "from": "sales@acme.test",
        "to": ["ann@example.com"],
        "subject": "Files",
        "html": '<p>Logo: <img src="cid:logo"></p>',
        "scheduledAt": later_ms(),
        "attachments": list(attachments),
        **extra,
    }


def encoded(size: int) -> str:
    return base64.b64encode(bytes(n % 251 for n in range(size))).decode("ascii")


async def test_attachments_are_built_into_the_sent_message(acme: Tenant, world: World) -> None:
    logo = bytes(range(256)) * 10
    response = await acme.client.post(
        "/v1/send",
        json=body(
            {
                "filename": "logo.png",
                "content": base64.b64encode(logo).decode(),
                "contentId": "logo",
            },
            {"filename": "Übersicht.csv", "content": "YSxiCjEsMgo=", "contentType": "text/csv"},
        ),
    )

    assert response.status_code == 200, response.text
    [copy] = await stored_copies(world.services, world.sales)
    message = email.message_from_bytes(copy.data, policy=email.policy.default)
    assert message.get_content_type() == "multipart/mixed"
    related, csv = message.get_payload()  # type: ignore[misc]
    assert related.get_content_type() == "multipart/related"
    html, image = related.get_payload()
    assert html.get_content_type() == "text/html"
    assert image.get_content_type() == "image/png" and image.get_content() == logo
    assert csv.get_filename() == "Übersicht.csv" and csv.get_content() == "a,b\n1,2\n"


async def test_attachments_over_the_message_size_limit_are_413_and_queue_nothing(
    acme: Tenant, world: World
) -> None:
    whole = await acme.client.post(
        "/v1/send", json=body({"filename": "big.bin", "content": encoded(LIMIT)})
    )
    # Under the limit decoded, over it once base64 in the message.
    encoded_over = await acme.client.post(
        "/v1/send",
        json=body(
            {"filename": "a.bin", "content": encoded(LIMIT // 2)},
            {"filename": "b.bin", "content": encoded(LIMIT // 3)},
        ),
    )

    assert "limit" in assert_error(whole, 413, "message_too_large", "attachments")
    assert "limit" in assert_error(encoded_over, 413, "message_too_large", "attachments")
    assert await queued_rows(world) == []
    assert await stored_copies(world.services, world.sales) == []


@pytest.mark.parametrize(
    ("attachment", "status", "code", "field"),
    [
        ({"filename": "a.txt", "content": "not base64!"}, 400, "invalid_input", "content"),
        ({"filename": "a\r\nX-Evil: 1", "content": "aGk="}, 422, "header_injection", "filename"),
        ({"filename": "", "content": "aGk="}, 400, "invalid_input", "filename"),
        (
            {"filename": "a", "content": "aGk=", "contentType": "text"},
            400,
            "invalid_input",
            "contentType",
        ),
        (
            {"filename": "a", "content": "aGk=", "contentId": "a b"},
            400,
            "invalid_input",
            "contentId",
        ),
    ],
)
async def test_a_malformed_attachment_names_its_field(
    acme: Tenant, world: World, attachment: dict[str, str], status: int, code: str, field: str
) -> None:
    response = await acme.client.post(
        "/v1/send", json=body({"filename": "ok.txt", "content": "aGk="}, attachment)
    )

    assert_error(response, status, code, f"attachments[1].{field}")
    assert await queued_rows(world) == []


async def test_too_many_attachments_are_refused(acme: Tenant, world: World) -> None:
    many = [{"filename": f"{n}.txt", "content": "aGk="} for n in range(21)]

    response = await acme.client.post("/v1/send", json=body(*many))

    assert "At most 20" in assert_error(response, 400, "invalid_input", "attachments")
    assert await queued_rows(world) == []

"""Requests the server cannot or will not process answer in the one error shape with the right
status: hostile JSON nesting is the client's fault (400), a database that cannot take writes
right now is the server's (503 with Retry-After), and the next request after it goes through."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailmark.config import Settings
from tests.support.faults import database_refusing_writes
from tests.support.world import World
from tests.web.api.conftest import Tenant, assert_error


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A writer gives up on a locked SQLite database after this, instead of 15 s.
    return settings.model_copy(update={"sqlite_busy_timeout": timedelta(seconds=0.2)})


@pytest.mark.parametrize("depth", [1_000, 100_000])
async def test_deeply_nested_json_is_a_400(acme: Tenant, depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    body = b'{"from": "sales@acme.test", "to": ' + nested + b', "subject": "x", "text": "y"}'
    response = await acme.client.post(
        "/v1/send", content=body, headers={"Content-Type": "application/json"}
    )
    message = assert_error(response, 400, "invalid_request")
    assert "nested too deeply" in message
    # The server is fine afterwards.
    assert (await acme.client.get("/v1/mailboxes")).status_code == 200


async def test_a_locked_or_read_only_database_is_a_503_with_retry_after(
    acme: Tenant, world: World
) -> None:
    async with database_refusing_writes(world.services):
        response = await acme.client.post("/v1/mailboxes", json={"address": "hello"})
        message = assert_error(response, 503, "storage_unavailable")
        assert "try again" in message
        assert int(response.headers["retry-after"]) >= 1
    created = await acme.client.post("/v1/mailboxes", json={"address": "hello"})
    assert created.status_code == 201, created.text

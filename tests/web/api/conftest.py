"""The running listeners (`mailmark serve`'s own), an API key for acme.test and one for a second
account's domain, and httpx clients that use them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from mailmark.bootstrap import Listeners
from mailmark.core.model import Mailbox
from tests.support.world import World

OTHER_DOMAIN = "other.test"


@dataclass
class Tenant:
    domain: str
    key: str
    client: httpx.AsyncClient
    mailbox: Mailbox


def client(port: int, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    # trust_env=False: a proxy from the environment must not sit between the test and loopback.
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, trust_env=False, timeout=20
    )


@pytest.fixture
async def acme(listeners: Listeners, world: World) -> AsyncIterator[Tenant]:
    created = await world.services.api_keys.create(world.domain, name="tests")
    async with client(listeners.http_port, created.secret) as http:
        yield Tenant(world.domain, created.secret, http, world.sales)


@pytest.fixture
async def other(listeners: Listeners, world: World) -> AsyncIterator[Tenant]:
    services = world.services
    await services.accounts.create(
        "other", owner_email="owner@other.test", password="owner-pass-1", plan="unlimited"
    )
    await services.domains.add(OTHER_DOMAIN, account_name="other", trust=True)
    mailbox = await services.mailboxes.create(f"news@{OTHER_DOMAIN}", display_name="News")
    created = await services.api_keys.create(OTHER_DOMAIN)
    async with client(listeners.http_port, created.secret) as http:
        yield Tenant(OTHER_DOMAIN, created.secret, http, mailbox)


@pytest.fixture
async def anonymous(listeners: Listeners) -> AsyncIterator[httpx.AsyncClient]:
    async with client(listeners.http_port, None) as http:
        yield http


def assert_error(response: httpx.Response, status: int, code: str, field: str | None = None) -> str:
    """The response is the one error shape with this status and code; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    assert body["error"]["code"] == code, body
    if field is not None:
        assert body["error"]["field"] == field, body
    message: str = body["error"]["message"]
    assert message
    return message

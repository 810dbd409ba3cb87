"""The web app's /api from a browser's side: `ApiClient` keeps the cookies and the CSRF token
the way the single-page app does, and fixtures give an owner, an admin and a member of the
acme.test world already signed in, over the running listeners' real HTTP port.

The member (member@acme.test) is assigned sales@acme.test only; the admin is admin@acme.test.
They join as people do: the owner invites them through /api/team/invitations and each accepts
the link.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any, Self

import httpx
import pytest

from mailmark.bootstrap import Listeners
from tests.support.world import World

OWNER_EMAIL, OWNER_PASSWORD = "owner@acme.test", "owner-pass-1"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@acme.test", "admin-pass-1"
MEMBER_EMAIL, MEMBER_PASSWORD = "member@acme.test", "member-pass-1"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ApiClient:
    """An httpx client on the web app that sends the CSRF token on every state change, as the
    page does; `csrf_token` is the one the last /api/session or sign-in answer gave."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        # trust_env=False: a proxy from the environment must not sit between the test and
        # loopback.
        self.http = httpx.AsyncClient(
            base_url=base_url,
            trust_env=False,
            timeout=20,
            headers=dict(headers or {}),
            verify=verify,
        )
        self.csrf_token = ""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def session(self) -> dict[str, Any]:
        """GET /api/session; keeps its CSRF token."""
        response = await self.http.get("/api/session")
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        self.csrf_token = state["csrfToken"]
        return state

    async def request(
        self, method: str, url: str, *, csrf: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """A request with the X-CSRF-Token header on POST/PUT/PATCH/DELETE (unless `csrf` is
        False); a Me answer's new token is kept."""
        headers = dict(kwargs.pop("headers", None) or {})
        if csrf and method.upper() in UNSAFE_METHODS:
            if not self.csrf_token:
                await self.session()
            headers.setdefault("X-CSRF-Token", self.csrf_token)
        response = await self.http.request(method, url, headers=headers, **kwargs)
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("csrfToken"), str):
                self.csrf_token = body["csrfToken"]
        return response

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def sign_in(self, email: str, password: str) -> httpx.Response:
        """POST /api/auth/sign-in (after fetching /api/session for a CSRF token)."""
        await self.session()
        return await self.post("/api/auth/sign-in", json={"email": email, "password": password})

    async def signed_in(self, email: str, password: str) -> dict[str, Any]:
        """Sign in, asserting it worked; the Me answer."""
        response = await self.sign_in(email, password)
        assert response.status_code == 200, response.text
        me: dict[str, Any] = response.json()
        assert me["email"] == email.strip().lower()
        return me


def api_url(listeners: Listeners) -> str:
    return f"http://127.0.0.1:{listeners.http_port}"


async def join_by_invitation(
    inviter: ApiClient,
    joiner: ApiClient,
    email: str,
    password: str,
    role: str,
    mailboxes: list[str],
) -> dict[str, Any]:
    """`inviter` invites `email`, `joiner` accepts the link (and is signed in); the Me answer."""
    invited = await inviter.post(
        "/api/team/invitations", json={"email": email, "role": role, "mailboxes": mailboxes}
    )
    assert invited.status_code == 201, invited.text
    token = invited.json()["acceptUrl"].rpartition("/")[2]
    await joiner.session()
    accepted = await joiner.post(
        f"/api/invitations/{token}/accept",
        json={"name": email.partition("@")[0].title(), "password": password},
    )
    assert accepted.status_code == 201, accepted.text
    me: dict[str, Any] = accepted.json()
    return me


@pytest.fixture
async def owner_client(listeners: Listeners, world: World) -> AsyncIterator[ApiClient]:
    """The acme account's owner, signed in."""
    async with ApiClient(api_url(listeners)) as client:
        await client.signed_in(OWNER_EMAIL, OWNER_PASSWORD)
        yield client


@pytest.fixture
async def admin_client(listeners: Listeners, owner_client: ApiClient) -> AsyncIterator[ApiClient]:
    """An admin of the acme account, signed in."""
    async with ApiClient(api_url(listeners)) as client:
        await join_by_invitation(owner_client, client, ADMIN_EMAIL, ADMIN_PASSWORD, "admin", [])
        yield client


@pytest.fixture
async def member_client(
    listeners: Listeners, world: World, owner_client: ApiClient
) -> AsyncIterator[ApiClient]:
    """A member of the acme account with sales@acme.test assigned (not support@), signed in."""
    async with ApiClient(api_url(listeners)) as client:
        await join_by_invitation(
            owner_client, client, MEMBER_EMAIL, MEMBER_PASSWORD, "member", [world.sales.address]
        )
        yield client

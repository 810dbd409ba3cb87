"""Signing in to the web app over a real listener: first-run setup, sign-in and sign-out,
wrong passwords, the session's id changing at sign-in, and /api/me."""

from __future__ import annotations

import httpx

from mailmark.bootstrap import Listeners, Services
from tests.support.web import (
    MEMBER_EMAIL,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    ApiClient,
    api_url,
)
from tests.support.world import World
from tests.web.api.conftest import assert_error


async def test_signed_out_session_state_gives_a_csrf_token_in_a_cookie(
    listeners: Listeners, world: World
) -> None:
    async with ApiClient(api_url(listeners)) as client:
        response = await client.http.get("/api/session")
        assert response.status_code == 200
        state = response.json()
        assert state["signedIn"] is False and state["user"] is None
        assert state["setupRequired"] is False
        assert state["signupOpen"] is False
        assert len(state["csrfToken"]) >= 32
        assert response.cookies["mailmark_csrf"] == state["csrfToken"]
        # The same browser keeps its token until it signs in.
        again = (await client.http.get("/api/session")).json()
        assert again["csrfToken"] == state["csrfToken"]


async def test_sign_in_returns_me_and_me_answers_from_the_session(
    listeners: Listeners, world: World
) -> None:
    async with ApiClient(api_url(listeners)) as client:
        me = await client.signed_in(OWNER_EMAIL.upper(), OWNER_PASSWORD)
        assert me["role"] == "owner" and me["accountName"] == "acme"
        assert me["email"] == OWNER_EMAIL
        assert (await client.get("/api/me")).json() == me
        state = await client.session()
        assert state["signedIn"] is True and state["user"]["id"] == me["id"]


async def test_a_wrong_password_or_unknown_email_is_one_401(
    listeners: Listeners, world: World
) -> None:
    async with ApiClient(api_url(listeners)) as client:
        for email, password in [
            (OWNER_EMAIL, "not-the-password"),
            ("nobody@acme.test", OWNER_PASSWORD),
            ("", ""),
        ]:
            response = await client.sign_in(email, password)
            message = assert_error(response, 401, "invalid_credentials")
            assert message == "Invalid email or password."
            assert "mailmark_session" not in response.cookies
        assert_error(await client.get("/api/me"), 401, "unauthenticated")


async def test_private_routes_need_a_session(listeners: Listeners, world: World) -> None:
    async with ApiClient(api_url(listeners)) as client:
        for method, url in [
            ("GET", "/api/me"),
            ("GET", "/api/me/sessions"),
            ("GET", "/api/team"),
            ("POST", "/api/me/password"),
        ]:
            response = await client.request(method, url, json={})
            assert assert_error(response, 401, "unauthenticated") == "Sign in to continue."
        # A made-up or malformed cookie is no session either.
        client.http.cookies.set("mailmark_session", "x" * 43)
        assert_error(await client.get("/api/me"), 401, "unauthenticated")
        client.http.cookies.set("mailmark_session", "y" * 5000)
        assert_error(await client.get("/api/me"), 401, "unauthenticated")


async def test_the_session_id_changes_at_sign_in(listeners: Listeners, world: World) -> None:
    """No session fixation: a token planted before sign-in (or the previous session's) never
    becomes the signed-in session."""
    async with ApiClient(api_url(listeners)) as client:
        planted = "planted-by-an-attacker-0123456789abcdefghijk"
        client.http.cookies.set("mailmark_session", planted)
        first = await client.sign_in(OWNER_EMAIL, OWNER_PASSWORD)
        assert first.status_code == 200
        first_token = first.cookies["mailmark_session"]
        assert first_token != planted
        second = await client.sign_in(OWNER_EMAIL, OWNER_PASSWORD)
        second_token = second.cookies["mailmark_session"]
        assert second_token not in (planted, first_token)
        # The session signed in before is over, not left running beside the new one.
        async with ApiClient(api_url(listeners)) as stale:
            stale.http.cookies.set("mailmark_session", first_token)
            assert_error(await stale.get("/api/me"), 401, "unauthenticated")


async def test_sign_out_ends_the_session_on_the_server(
    listeners: Listeners, owner_client: ApiClient
) -> None:
    token = owner_client.http.cookies["mailmark_session"]
    response = await owner_client.post("/api/auth/sign-out")
    assert response.status_code == 204
    assert_error(await owner_client.get("/api/me"), 401, "unauthenticated")
    # Replaying the old cookie does not bring the session back.
    async with ApiClient(api_url(listeners)) as replay:
        replay.http.cookies.set("mailmark_session", token)
        assert_error(await replay.get("/api/me"), 401, "unauthenticated")


async def test_members_see_their_role(member_client: ApiClient, admin_client: ApiClient) -> None:
    member = (await member_client.get("/api/me")).json()
    assert (member["email"], member["role"]) == (MEMBER_EMAIL, "member")
    assert (await admin_client.get("/api/me")).json()["role"] == "admin"


async def test_first_run_setup_creates_the_owner_once(
    listeners: Listeners, services: Services
) -> None:
    async with ApiClient(api_url(listeners)) as client:
        assert (await client.session())["setupRequired"] is True
        token = await services.identity.issue_setup_link()
        body = {
            "token": token,
            "accountName": "Example Co",
            "name": "Ada Owner",
            "email": "Ada@Example.test",
            "password": "a-long-owner-password",
        }
        created = await client.post("/api/setup", json=body)
        assert created.status_code == 201, created.text
        me = created.json()
        assert (me["email"], me["role"], me["accountName"], me["name"]) == (
            "ada@example.test",
            "owner",
            "Example Co",
            "Ada Owner",
        )
        assert (await client.get("/api/me")).json()["id"] == me["id"]
        state = await client.session()
        assert state["setupRequired"] is False and state["signedIn"] is True

    # The link works once; and once an owner exists no new link is issued.
    async with ApiClient(api_url(listeners)) as other:
        again = await other.post("/api/setup", json={**body, "email": "eve@example.test"})
        assert_error(again, 400, "invalid_input", "token")
        assert_error(await other.get("/api/me"), 401, "unauthenticated")


async def test_a_newer_setup_link_replaces_the_older(
    listeners: Listeners, services: Services
) -> None:
    older = await services.identity.issue_setup_link()
    newer = await services.identity.issue_setup_link()
    body = {
        "accountName": "Example",
        "name": "Ada",
        "email": "ada@example.test",
        "password": "a-long-owner-password",
    }
    async with ApiClient(api_url(listeners)) as client:
        stale = await client.post("/api/setup", json={**body, "token": older})
        assert_error(stale, 400, "invalid_input", "token")
        fresh = await client.post("/api/setup", json={**body, "token": newer})
        assert fresh.status_code == 201, fresh.text


async def test_unknown_fields_and_oversized_values_are_refused(
    listeners: Listeners, world: World
) -> None:
    async with ApiClient(api_url(listeners)) as client:
        await client.session()
        extra = await client.post(
            "/api/auth/sign-in",
            json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD, "remember": True},
        )
        assert_error(extra, 422, "unknown_field")
        huge = await client.post(
            "/api/auth/sign-in", json={"email": OWNER_EMAIL, "password": "p" * 100_000}
        )
        assert huge.status_code == 400, huge.text


async def test_plain_http_cookies_are_httponly_and_lax(listeners: Listeners, world: World) -> None:
    async with httpx.AsyncClient(base_url=api_url(listeners), trust_env=False) as http:
        state = await http.get("/api/session")
        token = state.json()["csrfToken"]
        response = await http.post(
            "/api/auth/sign-in",
            json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD},
            headers={"X-CSRF-Token": token},
        )
        assert response.status_code == 200, response.text
        cookies = {
            value.split("=", 1)[0]: value.lower()
            for value in response.headers.get_list("set-cookie")
        }
        session = cookies["mailmark_session"]
        assert "httponly" in session and "samesite=lax" in session and "path=/" in session
        assert "secure" not in session
        csrf = cookies["mailmark_csrf"]
        assert "httponly" not in csrf and "samesite=strict" in csrf

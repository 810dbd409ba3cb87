"""Signing in to the web app over a real listener: first-run setup, sign-in and sign-out,
wrong passwords, the session's id changing at sign-in, and /api/me."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qs, urlsplit

import httpx

from mailmark.bootstrap import Listeners, Services
from tests.support.web import (
    MEMBER_EMAIL,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    ApiClient,
    api_url,
)
from tests.support.world import World, queued_emails
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


# --- throttling: the IMAP/SMTP throttle, per client IP and per account -------------------------


def from_ip(ip: str) -> dict[str, str]:
    """The client address as a reverse proxy on this host reports it (uvicorn trusts
    X-Forwarded-For from 127.0.0.1): how the tests stand for several clients."""
    return {"X-Forwarded-For": ip}


async def wrong_sign_in(client: ApiClient, ip: str, email: str = OWNER_EMAIL) -> httpx.Response:
    return await client.post(
        "/api/auth/sign-in",
        json={"email": email, "password": "a-wrong-guess"},
        headers=from_ip(ip),
    )


async def test_repeated_failures_from_one_ip_are_refused_with_retry_after(
    listeners: Listeners, world: World
) -> None:
    async with ApiClient(api_url(listeners)) as client:
        await client.session()
        for _ in range(10):
            assert (await wrong_sign_in(client, "198.51.100.1")).status_code == 401
        refused = await wrong_sign_in(client, "198.51.100.1")
        message = assert_error(refused, 429, "too_many_attempts")
        assert message.startswith("Too many failed sign-ins; try again in ")
        assert 1 <= int(refused.headers["retry-after"]) <= 300
        # Even the right password is refused from there: no oracle for the guesser.
        right = await client.post(
            "/api/auth/sign-in",
            json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD},
            headers=from_ip("198.51.100.1"),
        )
        assert_error(right, 429, "too_many_attempts")
        # Another client signs in to the same account.
        other = await client.post(
            "/api/auth/sign-in",
            json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD},
            headers=from_ip("198.51.100.2"),
        )
        assert other.status_code == 200, other.text


async def test_failures_against_one_account_from_many_ips_lock_that_account(
    listeners: Listeners, world: World
) -> None:
    async with ApiClient(api_url(listeners)) as client:
        await client.session()
        for n in range(30):
            assert (await wrong_sign_in(client, f"203.0.113.{n}")).status_code == 401
        refused = await wrong_sign_in(client, "203.0.113.200")
        assert_error(refused, 429, "too_many_attempts")
        assert "retry-after" in refused.headers
        # Other accounts are not locked by it.
        assert (await wrong_sign_in(client, "203.0.113.200", "nobody@acme.test")).status_code == 401


async def test_the_throttle_is_the_one_imap_and_smtp_use(
    listeners: Listeners, world: World
) -> None:
    """Failures over IMAP/SMTP (the mailbox logins) count against the web sign-in of that IP."""
    for _ in range(10):
        try:
            await world.services.logins.authenticate("sales@acme.test", "guess", "192.0.2.77")
        except Exception as error:  # noqa: BLE001 - each is a failure or a refusal
            assert type(error).__name__ in {"AuthenticationFailed", "TooManyAttempts"}
    async with ApiClient(api_url(listeners)) as client:
        await client.session()
        right = await client.post(
            "/api/auth/sign-in",
            json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD},
            headers=from_ip("192.0.2.77"),
        )
        assert_error(right, 429, "too_many_attempts")


async def test_parallel_guesses_cannot_pass_the_limit(listeners: Listeners, world: World) -> None:
    async with ApiClient(api_url(listeners)) as client:
        await client.session()
        answers = await asyncio.gather(*(wrong_sign_in(client, "198.51.100.50") for _ in range(30)))
        statuses = [answer.status_code for answer in answers]
        assert statuses.count(401) <= 10, statuses
        assert statuses.count(429) >= 20, statuses


# --- sessions and password ----------------------------------------------------------------------


async def test_sessions_are_listed_and_one_can_be_revoked(
    listeners: Listeners, owner_client: ApiClient
) -> None:
    async with ApiClient(api_url(listeners), headers={"User-Agent": "Laptop/1.0"}) as laptop:
        await laptop.signed_in(OWNER_EMAIL, OWNER_PASSWORD)
        listed = (await owner_client.get("/api/me/sessions")).json()
        assert len(listed) == 2
        current = [s for s in listed if s["current"]]
        assert len(current) == 1
        other = next(s for s in listed if not s["current"])
        assert other["userAgent"] == "Laptop/1.0" and other["ip"] == "127.0.0.1"
        assert set(other) == {"id", "current", "createdAt", "lastSeenAt", "ip", "userAgent"}

        revoked = await owner_client.delete(f"/api/me/sessions/{other['id']}")
        assert revoked.status_code == 204
        assert_error(await laptop.get("/api/me"), 401, "unauthenticated")
        assert len((await owner_client.get("/api/me/sessions")).json()) == 1
        # Someone else's session (or none) is not found.
        assert_error(await owner_client.delete("/api/me/sessions/999999"), 404, "not_found")


async def test_another_users_session_cannot_be_revoked(
    owner_client: ApiClient, member_client: ApiClient
) -> None:
    owners = (await owner_client.get("/api/me/sessions")).json()
    response = await member_client.delete(f"/api/me/sessions/{owners[0]['id']}")
    assert_error(response, 404, "not_found")
    assert (await owner_client.get("/api/me")).status_code == 200


async def test_changing_the_password_ends_the_other_sessions(
    listeners: Listeners, owner_client: ApiClient
) -> None:
    async with ApiClient(api_url(listeners)) as other:
        await other.signed_in(OWNER_EMAIL, OWNER_PASSWORD)
        wrong = await owner_client.post(
            "/api/me/password",
            json={"currentPassword": "not-it", "newPassword": "a-new-password-1"},
        )
        assert_error(wrong, 401, "invalid_credentials", "currentPassword")
        short = await owner_client.post(
            "/api/me/password",
            json={"currentPassword": OWNER_PASSWORD, "newPassword": "short"},
        )
        assert_error(short, 400, "invalid_input", "password")
        changed = await owner_client.post(
            "/api/me/password",
            json={"currentPassword": OWNER_PASSWORD, "newPassword": "a-new-password-1"},
        )
        assert changed.status_code == 204, changed.text
        assert (await owner_client.get("/api/me")).status_code == 200
        assert_error(await other.get("/api/me"), 401, "unauthenticated")
        assert_error(await other.sign_in(OWNER_EMAIL, OWNER_PASSWORD), 401, "invalid_credentials")
        await other.signed_in(OWNER_EMAIL, "a-new-password-1")


async def test_password_reset_by_email_end_to_end(listeners: Listeners, world: World) -> None:
    services = world.services
    async with ApiClient(api_url(listeners)) as stolen, ApiClient(api_url(listeners)) as client:
        await stolen.signed_in(OWNER_EMAIL, OWNER_PASSWORD)
        await client.session()
        # Unknown emails get the same answer, and nothing is sent.
        unknown = await client.post("/api/auth/password-reset", json={"email": "x@acme.test"})
        assert unknown.status_code == 202
        assert await queued_emails(services) == []

        asked = await client.post("/api/auth/password-reset", json={"email": "Owner@Acme.test"})
        assert asked.status_code == 202
        [mail] = await queued_emails(services)
        assert mail.recipient == OWNER_EMAIL
        assert mail.from_addr == f"no-reply@{services.settings.hostname}"
        assert mail.message["Subject"] == "Reset your Mailmark password"
        assert mail.message["Auto-Submitted"] == "auto-generated"
        # The host name got DKIM keys like any domain, so the worker signs system mail.
        _, records = await services.domains.records(services.settings.hostname)
        assert any("._domainkey." in record.name for record in records)
        [link] = re.findall(r"https?://\S+", mail.text)
        assert link.startswith(f"{services.settings.public_url}/reset-password?token=")
        token = parse_qs(urlsplit(link).query)["token"][0]

        reset = await client.post(
            "/api/auth/password-reset/confirm",
            json={"token": token, "password": "a-brand-new-password"},
        )
        assert reset.status_code == 204, reset.text
        # The link works once; every session of the user ended; the new password signs in.
        again = await client.post(
            "/api/auth/password-reset/confirm",
            json={"token": token, "password": "another-new-password"},
        )
        assert_error(again, 400, "invalid_input", "token")
        assert_error(await stolen.get("/api/me"), 401, "unauthenticated")
        assert_error(await client.sign_in(OWNER_EMAIL, OWNER_PASSWORD), 401, "invalid_credentials")
        await client.signed_in(OWNER_EMAIL, "a-brand-new-password")


async def test_a_newer_reset_link_replaces_the_older(listeners: Listeners, world: World) -> None:
    async with ApiClient(api_url(listeners)) as client:
        await client.session()
        for _ in range(2):
            asked = await client.post("/api/auth/password-reset", json={"email": OWNER_EMAIL})
            assert asked.status_code == 202
        links = [re.findall(r"token=(\S+)", m.text)[0] for m in await queued_emails(world.services)]
        assert len(links) == 2
        old = await client.post(
            "/api/auth/password-reset/confirm",
            json={"token": links[0], "password": "a-brand-new-password"},
        )
        assert_error(old, 400, "invalid_input", "token")
        new = await client.post(
            "/api/auth/password-reset/confirm",
            json={"token": links[1], "password": "a-brand-new-password"},
        )
        assert new.status_code == 204


async def test_sign_up_is_closed_by_default(listeners: Listeners, world: World) -> None:
    async with ApiClient(api_url(listeners)) as client:
        await client.session()
        response = await client.post(
            "/api/auth/sign-up",
            json={
                "accountName": "Newco",
                "name": "New",
                "email": "new@newco.test",
                "password": "a-long-password",
            },
        )
        assert_error(response, 403, "signup_closed")


async def test_control_characters_in_an_email_are_no_user_not_an_error(
    listeners: Listeners, owner_client: ApiClient
) -> None:
    """PostgreSQL cannot even compare text holding NUL: such input must never reach a query."""
    async with ApiClient(api_url(listeners)) as client:
        for email in ["owner\x00@acme.test", "owner@acme.te\nst", "\x7f@acme.test"]:
            assert_error(await client.sign_in(email, OWNER_PASSWORD), 401, "invalid_credentials")
            reset = await client.post("/api/auth/password-reset", json={"email": email})
            assert reset.status_code == 202
            invited = await owner_client.post(
                "/api/team/invitations", json={"email": email, "role": "member"}
            )
            assert_error(invited, 400, "invalid_input", "email")

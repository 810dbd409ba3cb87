"""Two-factor sign-in (TOTP, RFC 6238) over a real listener, with codes computed by pyotp the way
an authenticator app computes them, and single-use recovery codes."""

from __future__ import annotations

import time

import pyotp

from mailmark.bootstrap import Listeners
from tests.support.web import OWNER_EMAIL, OWNER_PASSWORD, ApiClient, api_url
from tests.web.api.conftest import assert_error


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the next 30-second step (accepted for clock drift, RFC 6238 §5.2): the
    current one was spent turning two-factor on, and each code is accepted once."""
    return totp.at(time.time() + totp.interval)


async def enable_two_factor(client: ApiClient) -> tuple[pyotp.TOTP, list[str]]:
    setup = await client.post("/api/me/totp/setup")
    assert setup.status_code == 200, setup.text
    body = setup.json()
    assert body["qrSvg"].lstrip().startswith("<svg") and "</svg>" in body["qrSvg"]
    assert body["otpauthUri"].startswith("otpauth://totp/Mailmark:")
    totp = pyotp.TOTP(body["secret"])
    # Not on until a code made with the secret is entered.
    assert (await client.get("/api/me")).json()["totpEnabled"] is False
    wrong = await client.post("/api/me/totp/enable", json={"code": "000000"})
    if totp.now() != "000000":
        assert_error(wrong, 400, "invalid_code", "code")
    enabled = await client.post("/api/me/totp/enable", json={"code": totp.now()})
    assert enabled.status_code == 200, enabled.text
    codes: list[str] = enabled.json()["recoveryCodes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert (await client.get("/api/me")).json()["totpEnabled"] is True
    return totp, codes


async def test_sign_in_with_two_factor_needs_the_current_code(
    listeners: Listeners, owner_client: ApiClient
) -> None:
    totp, _ = await enable_two_factor(owner_client)
    async with ApiClient(api_url(listeners)) as client:
        first = await client.sign_in(OWNER_EMAIL, OWNER_PASSWORD)
        assert first.status_code == 200 and first.json() == {"totpRequired": True}
        pending = first.cookies["mailmark_session"]
        # Half signed in grants nothing.
        assert_error(await client.get("/api/me"), 401, "unauthenticated")
        assert_error(
            await client.post("/api/auth/totp", json={"code": "12345x"}), 400, "invalid_code"
        )
        done = await client.post("/api/auth/totp", json={"code": next_code(totp)})
        assert done.status_code == 200, done.text
        me = done.json()
        assert me["email"] == OWNER_EMAIL and me["totpEnabled"] is True
        # The signed-in session is a new one, not the pending one.
        assert done.cookies["mailmark_session"] != pending
        assert (await client.get("/api/me")).status_code == 200
        async with ApiClient(api_url(listeners)) as replay:
            replay.http.cookies.set("mailmark_session", pending)
            assert_error(await replay.get("/api/me"), 401, "unauthenticated")


async def test_a_code_signs_in_once(listeners: Listeners, owner_client: ApiClient) -> None:
    totp, _ = await enable_two_factor(owner_client)
    async with ApiClient(api_url(listeners)) as client:
        await client.sign_in(OWNER_EMAIL, OWNER_PASSWORD)
        code = next_code(totp)
        assert (await client.post("/api/auth/totp", json={"code": code})).status_code == 200
        # Someone who saw it (over a shoulder, in a phishing proxy) cannot use it again.
        async with ApiClient(api_url(listeners)) as thief:
            await thief.sign_in(OWNER_EMAIL, OWNER_PASSWORD)
            replayed = await thief.post("/api/auth/totp", json={"code": code})
            assert_error(replayed, 400, "invalid_code")
            # Nor the code it replaced.
            earlier = await thief.post("/api/auth/totp", json={"code": totp.now()})
            assert_error(earlier, 400, "invalid_code")


async def test_a_recovery_code_signs_in_once(listeners: Listeners, owner_client: ApiClient) -> None:
    _, codes = await enable_two_factor(owner_client)
    async with ApiClient(api_url(listeners)) as client:
        await client.sign_in(OWNER_EMAIL, OWNER_PASSWORD)
        used = await client.post("/api/auth/totp", json={"code": codes[3].upper()})
        assert used.status_code == 200, used.text
        await client.post("/api/auth/sign-out")
        await client.sign_in(OWNER_EMAIL, OWNER_PASSWORD)
        again = await client.post("/api/auth/totp", json={"code": codes[3]})
        assert_error(again, 400, "invalid_code")
        other = await client.post("/api/auth/totp", json={"code": codes[4]})
        assert other.status_code == 200, other.text


async def test_the_code_step_without_a_password_first_is_refused(
    listeners: Listeners, owner_client: ApiClient
) -> None:
    totp, _ = await enable_two_factor(owner_client)
    async with ApiClient(api_url(listeners)) as client:
        await client.session()
        response = await client.post("/api/auth/totp", json={"code": next_code(totp)})
        assert_error(response, 401, "unauthenticated")


async def test_code_guessing_is_throttled(listeners: Listeners, owner_client: ApiClient) -> None:
    totp, _ = await enable_two_factor(owner_client)
    async with ApiClient(api_url(listeners)) as client:
        await client.sign_in(OWNER_EMAIL, OWNER_PASSWORD)
        statuses = []
        for guess in range(12):
            code = f"{guess:06d}"
            if code == totp.now():
                continue
            response = await client.post(
                "/api/auth/totp", json={"code": code}, headers={"X-Forwarded-For": "192.0.2.9"}
            )
            statuses.append(response.status_code)
        assert 429 in statuses and statuses.count(400) <= 10


async def test_two_factor_can_be_turned_off_with_the_password(
    listeners: Listeners, owner_client: ApiClient
) -> None:
    await enable_two_factor(owner_client)
    wrong = await owner_client.post("/api/me/totp/disable", json={"password": "not-it"})
    assert_error(wrong, 401, "invalid_credentials", "password")
    off = await owner_client.post("/api/me/totp/disable", json={"password": OWNER_PASSWORD})
    assert off.status_code == 204
    async with ApiClient(api_url(listeners)) as client:
        await client.signed_in(OWNER_EMAIL, OWNER_PASSWORD)

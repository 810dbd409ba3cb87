"""Sign-in through an OpenID Connect provider, against a real one (oidc-provider on loopback):
the browser goes Mailmark → the provider's sign-in and consent pages → Mailmark, with httpx
keeping one cookie jar per host, as a browser does."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pyotp
import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Listeners, Services
from mailmark.config import Settings
from mailmark.config.settings import OidcProviderSettings
from mailmark.storage.tables import accounts, oidc_identities, oidc_logins, users
from tests.support.clock import OffsetClock
from tests.support.oidc_provider import (
    Browser,
    OidcProviderProcess,
    ProviderAccount,
    ProviderClient,
    StartProvider,
    sign_in_at_provider,
)
from tests.support.serve import free_port
from tests.support.web import OWNER_EMAIL, OWNER_PASSWORD, ApiClient
from tests.support.world import World

SECRET = "client-secret-of-mailmark"
# The acme world's owner at the provider, with the address the provider verified.
OWNER = ProviderAccount("owner", "owner-sso-1", "sub-owner", OWNER_EMAIL, name="Olive Owner")
# Another account at the provider that (later) has the same verified address.
OWNER_AGAIN = ProviderAccount("owner-again", "owner-again-1", "sub-owner-again", OWNER_EMAIL)
STRANGER = ProviderAccount(
    "stranger", "stranger-sso-1", "sub-stranger", "stranger@example.test", name="Sam Stranger"
)
# An address no user can have (PostgreSQL cannot even compare text holding NUL).
CONTROL = ProviderAccount("control", "control-sso-1", "sub-control", "owner\x00@acme.test")
# Claims the owner's address without the provider having verified it.
IMPOSTOR = ProviderAccount(
    "impostor", "impostor-sso-1", "sub-impostor", OWNER_EMAIL, email_verified=False
)


@pytest.fixture
def http_port() -> int:
    return free_port()


@pytest.fixture
def public_url(http_port: int) -> str:
    return f"http://127.0.0.1:{http_port}"


@pytest.fixture
async def provider(oidc_provider_factory: StartProvider, public_url: str) -> OidcProviderProcess:
    def callback(provider_id: str) -> str:
        return f"{public_url}/api/auth/oidc/{provider_id}/callback"

    return await oidc_provider_factory(
        [
            ProviderClient("mailmark", SECRET, [callback("sso"), callback("trusted")]),
            # Its ID tokens live one minute.
            ProviderClient("short-lived", SECRET, [callback("short")], id_token_ttl=60),
        ],
        [OWNER, OWNER_AGAIN, STRANGER, IMPOSTOR, CONTROL],
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def signup() -> str:
    return "closed"


@pytest.fixture
def settings(
    settings: Settings,
    http_port: int,
    public_url: str,
    provider: OidcProviderProcess,
    silent_port: int,
    signup: str,
) -> Settings:
    def entry(id_: str, name: str, issuer: str, **more: Any) -> OidcProviderSettings:
        return OidcProviderSettings.model_validate(
            {"id": id_, "name": name, "issuer": issuer, "client_secret": SECRET}
            | {"client_id": "mailmark"}
            | more
        )

    return settings.model_copy(
        update={
            "http_port": http_port,
            "public_url": public_url,
            "signup": signup,
            "oidc_providers": [
                entry("sso", "Test SSO", provider.issuer),
                entry("trusted", "Trusted SSO", provider.issuer, trust_mfa=True),
                entry("short", "Short SSO", provider.issuer, client_id="short-lived"),
                entry("down", "Down SSO", f"http://127.0.0.1:{free_port()}"),
                entry("silent", "Silent SSO", f"http://127.0.0.1:{silent_port}", timeout="1s"),
            ],
        }
    )


@pytest.fixture
async def browser(public_url: str) -> AsyncIterator[Browser]:
    """A browser whose jar for Mailmark's origin is an ApiClient's (`app` below)."""
    browser = Browser()
    try:
        yield browser
    finally:
        await browser.aclose()


@pytest.fixture
def app(browser: Browser, public_url: str, listeners: Listeners, world: World) -> ApiClient:
    """The browser's side of Mailmark: what the page's script would call."""
    client = ApiClient(public_url)
    browser.clients[public_url] = client.http
    return client


def start_url(public_url: str, provider_id: str = "sso") -> str:
    return f"{public_url}/api/auth/oidc/{provider_id}/start"


async def at_provider(
    browser: Browser, public_url: str, provider_id: str = "sso"
) -> httpx.Response:
    """Press "Sign in with …": the provider's sign-in page the browser lands on."""
    page = await browser.go(start_url(public_url, provider_id))
    assert page.status_code == 200 and "Sign in to" in page.text, (browser.visited, page.text)
    return page


async def sign_in(
    browser: Browser, public_url: str, account: ProviderAccount, provider_id: str = "sso"
) -> httpx.URL:
    """The whole round trip; the Mailmark page the browser ends on."""
    page = await at_provider(browser, public_url, provider_id)
    # Mailmark's pages are the single-page app's (not part of this test): stop at them.
    answer = await sign_in_at_provider(
        browser, page, account, stop_before=f"{public_url}/dashboard"
    )
    if answer.status_code == 302 and answer.headers["location"] == "/dashboard":
        return httpx.URL(public_url).join("/dashboard")
    return httpx.URL(str(answer.url))


def refusal(landed: httpx.URL) -> str:
    """The error code of the sign-in page Mailmark sent the browser back to."""
    assert landed.path == "/sign-in", str(landed)
    return str(landed.params["error"])


async def refusal_message(app: ApiClient) -> str:
    """What the sign-in page shows: the sentence kept for this browser, readable once."""
    answer = await app.get("/api/auth/oidc/error")
    assert answer.status_code == 200, answer.text
    again = await app.get("/api/auth/oidc/error")
    assert again.status_code == 404, again.text
    message: str = answer.json()["message"]
    return message


async def identities(services: Services) -> list[tuple[str, str, str]]:
    query = (
        sa.select(oidc_identities.c.provider, oidc_identities.c.subject, users.c.email)
        .select_from(oidc_identities.join(users))
        .order_by(oidc_identities.c.id)
    )
    async with services.engine.connect() as conn:
        return [(row[0], row[1], row[2]) for row in await conn.execute(query)]


async def user_count(services: Services) -> int:
    async with services.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one())


async def test_session_lists_the_configured_providers(app: ApiClient) -> None:
    state = await app.session()
    assert state["oidcProviders"][:2] == [
        {"id": "sso", "name": "Test SSO"},
        {"id": "trusted", "name": "Trusted SSO"},
    ]
    assert len(state["oidcProviders"]) == 5


async def test_round_trip_signs_in_the_user_with_that_verified_email(
    app: ApiClient, browser: Browser, public_url: str, services: Services
) -> None:
    start = await browser.client(public_url).get(start_url(public_url))
    assert start.status_code == 302
    sent = httpx.URL(start.headers["location"]).params
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["redirect_uri"] == f"{public_url}/api/auth/oidc/sso/callback"
    binding = start.headers["set-cookie"]
    # Lax: the provider's redirect back is a navigation another site starts.
    assert binding.startswith("mailmark_oidc=")
    assert {"httponly", "path=/", "samesite=lax", "max-age=600"} <= {
        part.strip().lower() for part in binding.split(";")
    }

    landed = await sign_in(browser, public_url, OWNER)
    assert landed.path == "/dashboard", str(landed)
    me = (await app.get("/api/me")).json()
    assert me["email"] == OWNER_EMAIL and me["role"] == "owner" and me["accountName"] == "acme"
    state = await app.session()
    assert state["signedIn"] is True and state["csrfToken"] == me["csrfToken"]
    assert await identities(services) == [("sso", "sub-owner", OWNER_EMAIL)]
    # The completed sign-in's row is spent (a state answers once); the first start above, never
    # answered, waits until it expires.
    async with services.engine.connect() as conn:
        pending = (await conn.execute(sa.select(sa.func.count()).select_from(oidc_logins))).scalar()
    assert pending == 1


async def test_a_linked_subject_signs_in_its_user_even_after_the_email_changes(
    app: ApiClient, browser: Browser, public_url: str, services: Services
) -> None:
    assert (await sign_in(browser, public_url, OWNER)).path == "/dashboard"
    async with services.engine.begin() as conn:
        await conn.execute(
            users.update().where(users.c.email == OWNER_EMAIL).values(email="olive@acme.test")
        )
    second = Browser()
    try:
        assert (await sign_in(second, public_url, OWNER)).path == "/dashboard"
        me = (await second.client(public_url).get("/api/me")).json()
        assert me["email"] == "olive@acme.test"
    finally:
        await second.aclose()


async def test_another_provider_account_with_the_email_does_not_take_a_linked_user(
    app: ApiClient, browser: Browser, public_url: str, services: Services
) -> None:
    assert (await sign_in(browser, public_url, OWNER)).path == "/dashboard"
    other = Browser()
    other_app = ApiClient(public_url)
    other.clients[public_url] = other_app.http
    try:
        landed = await sign_in(other, public_url, OWNER_AGAIN)
        assert refusal(landed) == "sign_in_refused"
        assert await refusal_message(other_app) == (
            f"The Mailmark user {OWNER_EMAIL} signs in with another Test SSO account."
        )
        assert (await other_app.get("/api/me")).status_code == 401
    finally:
        await other.aclose()
    assert await identities(services) == [("sso", "sub-owner", OWNER_EMAIL)]


async def test_unknown_email_is_refused_while_signup_is_closed(
    app: ApiClient, browser: Browser, public_url: str, services: Services
) -> None:
    users_before = await user_count(services)
    landed = await sign_in(browser, public_url, STRANGER)
    assert refusal(landed) == "signup_closed"
    assert await refusal_message(app) == (
        "No Mailmark user has the email stranger@example.test; ask your administrator for an "
        "invitation."
    )
    assert (await app.get("/api/me")).status_code == 401
    assert await user_count(services) == users_before
    assert await identities(services) == []


@pytest.mark.parametrize("signup", ["open"])
async def test_unknown_email_gets_a_new_trial_account_while_signup_is_open(
    app: ApiClient, browser: Browser, public_url: str, services: Services
) -> None:
    landed = await sign_in(browser, public_url, STRANGER)
    assert landed.path == "/dashboard", str(landed)
    me = (await app.get("/api/me")).json()
    assert me["email"] == "stranger@example.test" and me["role"] == "owner"
    assert me["name"] == "Sam Stranger" and me["accountName"] == "Sam Stranger"
    async with services.engine.connect() as conn:
        account = (
            await conn.execute(sa.select(accounts).where(accounts.c.id == me["accountId"]))
        ).one()
    assert account.status == "trial" and account.trial_ends_at is not None
    # Password sign-in stays closed to a user who has none.
    refused = await ApiClient(public_url).sign_in("stranger@example.test", "!oidc")
    assert refused.status_code == 401
    # The next sign-in finds the same user through the provider's subject.
    again = Browser()
    try:
        assert (await sign_in(again, public_url, STRANGER)).path == "/dashboard"
        assert (await again.client(public_url).get("/api/me")).json()["id"] == me["id"]
    finally:
        await again.aclose()


async def test_an_unverified_email_is_refused_and_never_linked(
    app: ApiClient, browser: Browser, public_url: str, services: Services
) -> None:
    landed = await sign_in(browser, public_url, IMPOSTOR)
    assert refusal(landed) == "email_not_verified"
    assert await refusal_message(app) == (
        f"Test SSO has not verified the email {OWNER_EMAIL}; verify it there first."
    )
    assert (await app.get("/api/me")).status_code == 401
    assert await identities(services) == []


async def test_an_email_with_control_characters_is_refused(
    app: ApiClient, browser: Browser, public_url: str, services: Services
) -> None:
    landed = await sign_in(browser, public_url, CONTROL)
    assert refusal(landed) == "sign_in_refused"
    assert await refusal_message(app) == (
        "Test SSO shared an email Mailmark cannot use: 'owner\\x00@acme.test'."
    )
    assert await identities(services) == []


async def test_a_tampered_or_foreign_state_is_refused_and_the_true_answer_still_works(
    app: ApiClient, browser: Browser, public_url: str
) -> None:
    page = await at_provider(browser, public_url)
    callback = f"{public_url}/api/auth/oidc/sso/callback"
    redirect = await sign_in_at_provider(browser, page, OWNER, stop_before=callback)
    answer = httpx.URL(redirect.headers["location"])
    assert str(answer).startswith(callback) and answer.params["state"]

    tampered = answer.copy_set_param("state", answer.params["state"][:-2] + "xx")
    landed = await browser.go(str(tampered), stop_before=f"{public_url}/sign-in")
    assert redirect_target(landed) == "/sign-in?error=invalid_sign_in_state"
    assert "was not started in this browser or has expired" in await refusal_message(app)
    # The genuine answer, in another browser (without this one's cookie): refused as well.
    async with httpx.AsyncClient(trust_env=False) as stranger:
        foreign = await stranger.get(str(answer))
    assert redirect_target(foreign) == "/sign-in?error=invalid_sign_in_state"
    assert "mailmark_session" not in foreign.cookies

    # Neither attempt spent it: the browser that started the sign-in completes it, once.
    done = await browser.go(str(answer), stop_before=f"{public_url}/dashboard")
    assert redirect_target(done) == "/dashboard"
    assert (await app.get("/api/me")).json()["email"] == OWNER_EMAIL
    replayed = await browser.go(str(answer), stop_before=f"{public_url}/sign-in")
    assert redirect_target(replayed) == "/sign-in?error=invalid_sign_in_state"


def redirect_target(response: httpx.Response) -> str:
    assert response.status_code == 302, (response.status_code, response.text)
    return response.headers["location"]


async def test_an_id_token_with_another_nonce_is_refused(
    app: ApiClient, browser: Browser, public_url: str, services: Services
) -> None:
    start = await browser.client(public_url).get(start_url(public_url))
    # The provider is asked for another nonce than the one this sign-in holds (a token minted
    # for some other sign-in), with the rest of the request intact so PKCE still matches.
    at_provider_url = httpx.URL(start.headers["location"]).copy_set_param("nonce", "forged-nonce")
    page = await browser.go(str(at_provider_url))
    answer = await sign_in_at_provider(browser, page, OWNER, stop_before=f"{public_url}/sign-in")
    assert redirect_target(answer) == "/sign-in?error=invalid_id_token"
    assert "nonce differs" in await refusal_message(app)
    assert (await app.get("/api/me")).status_code == 401
    assert await identities(services) == []


async def test_an_expired_id_token_is_refused(
    app: ApiClient, browser: Browser, public_url: str, clock: OffsetClock
) -> None:
    page = await at_provider(browser, public_url, "short")
    callback = f"{public_url}/api/auth/oidc/short/callback"
    redirect = await sign_in_at_provider(browser, page, OWNER, stop_before=callback)
    # Its one minute of life and the minute of tolerated clock skew are over; the sign-in
    # itself (10 minutes) is not.
    clock.offset = timedelta(minutes=3)
    landed = await browser.go(redirect.headers["location"], stop_before=f"{public_url}/sign-in")
    assert redirect_target(landed) == "/sign-in?error=invalid_id_token"
    assert await refusal_message(app) == "Short SSO's ID token has expired; start again."
    assert (await app.get("/api/me")).status_code == 401


async def test_a_person_who_denies_consent_is_back_at_sign_in(
    app: ApiClient, browser: Browser, public_url: str
) -> None:
    page = await at_provider(browser, public_url)
    answer = await sign_in_at_provider(
        browser, page, OWNER, consent=False, stop_before=f"{public_url}/sign-in"
    )
    assert redirect_target(answer) == "/sign-in?error=provider_refused"
    assert await refusal_message(app) == "Test SSO did not sign you in (access_denied)."


async def test_an_unreachable_or_silent_provider_is_a_clear_error_not_a_hang(
    app: ApiClient, browser: Browser, public_url: str
) -> None:
    client = browser.client(public_url)
    down = await client.get(start_url(public_url, "down"))
    assert redirect_target(down) == "/sign-in?error=provider_unavailable"
    message = await refusal_message(app)
    assert message.startswith("Down SSO could not be reached") and "Try again later." in message
    # The provider's timeout (1 s here) ends the wait; the outer bound only guards the suite.
    async with asyncio.timeout(30):
        silent = await client.get(start_url(public_url, "silent"))
    assert redirect_target(silent) == "/sign-in?error=provider_unavailable"
    assert await refusal_message(app) == (
        "Silent SSO could not be reached: no answer within 1 seconds. Try again later."
    )
    unknown = await client.get(start_url(public_url, "nowhere"))
    assert redirect_target(unknown) == "/sign-in?error=not_found"
    assert await refusal_message(app) == "No sign-in provider 'nowhere' is configured here."


async def enable_totp(public_url: str) -> list[str]:
    """Turn two-factor sign-in on for the owner (by password); the recovery codes."""
    async with ApiClient(public_url) as owner:
        await owner.signed_in(OWNER_EMAIL, OWNER_PASSWORD)
        setup = (await owner.post("/api/me/totp/setup")).json()
        enabled = await owner.post(
            "/api/me/totp/enable", json={"code": pyotp.TOTP(setup["secret"]).now()}
        )
        assert enabled.status_code == 200, enabled.text
        codes: list[str] = enabled.json()["recoveryCodes"]
        return codes


async def test_two_factor_is_still_due_after_the_provider(
    app: ApiClient, browser: Browser, public_url: str
) -> None:
    recovery_codes = await enable_totp(public_url)
    landed = await sign_in(browser, public_url, OWNER)
    assert str(landed).endswith("/sign-in?step=totp"), str(landed)
    # Signed in to nothing yet: only the code step is open.
    assert (await app.get("/api/me")).status_code == 401
    await app.session()
    done = await app.post("/api/auth/totp", json={"code": recovery_codes[0]})
    assert done.status_code == 200, done.text
    assert done.json()["email"] == OWNER_EMAIL
    assert (await app.get("/api/me")).status_code == 200


async def test_a_provider_trusted_for_its_own_second_factor_skips_ours(
    app: ApiClient, browser: Browser, public_url: str
) -> None:
    await enable_totp(public_url)
    landed = await sign_in(browser, public_url, OWNER, provider_id="trusted")
    assert landed.path == "/dashboard", str(landed)
    assert (await app.get("/api/me")).json()["totpEnabled"] is True

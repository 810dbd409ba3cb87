"""The OpenID Connect protocol client against a real provider (oidc-provider on loopback):
discovery, the code exchange with PKCE, ID token checks, and providers that fail."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest

from mailmark.core.errors import InvalidIdToken, ProviderRefused, ProviderUnavailable
from mailmark.core.oidc import OidcProvider, code_challenge
from mailmark.oidc.client import MAX_RESPONSE_BYTES, HttpOidcClient
from tests.support.clock import OffsetClock
from tests.support.oidc_provider import (
    Browser,
    OidcProviderProcess,
    ProviderAccount,
    ProviderClient,
    StartProvider,
    redirect_query,
    sign_in_at_provider,
)

REDIRECT_URI = "http://127.0.0.1:9/api/auth/oidc/test/callback"
SECRET = "client-secret-of-mailmark"
ADA = ProviderAccount("ada", "ada-pass-1", "sub-ada", "ada@example.test", name="Ada Lovelace")
# Its ID tokens live one minute: our clock moved past that makes them expired.
SHORT_LIVED = ProviderClient("short-lived", SECRET, [REDIRECT_URI], id_token_ttl=60)


@pytest.fixture
async def provider(oidc_provider_factory: StartProvider) -> OidcProviderProcess:
    return await oidc_provider_factory(
        [ProviderClient("mailmark", SECRET, [REDIRECT_URI]), SHORT_LIVED], [ADA]
    )


@pytest.fixture
def config(provider: OidcProviderProcess) -> OidcProvider:
    return OidcProvider("test", "Test SSO", provider.issuer, "mailmark", SECRET, timeout=10)


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def client(clock: OffsetClock) -> HttpOidcClient:
    return HttpOidcClient(clock)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    browser = Browser()
    try:
        yield browser
    finally:
        await browser.aclose()


async def authorize(
    client: HttpOidcClient,
    browser: Browser,
    config: OidcProvider,
    *,
    nonce: str = "nonce-1",
    verifier: str = "v" * 64,
) -> dict[str, str]:
    """Send the browser to the provider, sign in there; the callback's query parameters."""
    url = await client.authorization_url(
        config,
        redirect_uri=REDIRECT_URI,
        state="state-1",
        nonce=nonce,
        code_challenge=code_challenge(verifier),
    )
    page = await browser.go(url)
    answer = await sign_in_at_provider(browser, page, ADA, stop_before=REDIRECT_URI)
    return redirect_query(answer)


async def test_code_flow_names_the_person(
    client: HttpOidcClient, browser: Browser, config: OidcProvider
) -> None:
    url = await client.authorization_url(
        config,
        redirect_uri=REDIRECT_URI,
        state="state-1",
        nonce="nonce-1",
        code_challenge=code_challenge("v" * 64),
    )
    sent = httpx.URL(url).params
    assert sent["code_challenge_method"] == "S256"
    assert sent["scope"] == "openid email profile" and sent["response_type"] == "code"
    callback = await authorize(client, browser, config)
    assert callback["state"] == "state-1"
    assert callback["iss"] == config.issuer  # RFC 9207
    identity = await client.identify(
        config,
        redirect_uri=REDIRECT_URI,
        code=callback["code"],
        code_verifier="v" * 64,
        nonce="nonce-1",
        issuer=callback["iss"],
    )
    # oidc-provider puts the email claims in userinfo, not in the ID token of a code flow.
    assert identity.subject == "sub-ada"
    assert identity.email == "ada@example.test" and identity.email_verified
    assert identity.name == "Ada Lovelace"


async def test_another_nonce_in_the_id_token_is_refused(
    client: HttpOidcClient, browser: Browser, config: OidcProvider
) -> None:
    callback = await authorize(client, browser, config, nonce="the-nonce-sent")
    with pytest.raises(InvalidIdToken, match="nonce differs"):
        await client.identify(
            config,
            redirect_uri=REDIRECT_URI,
            code=callback["code"],
            code_verifier="v" * 64,
            nonce="the-nonce-expected",
            issuer=callback["iss"],
        )


async def test_expired_id_token_is_refused(
    client: HttpOidcClient, browser: Browser, config: OidcProvider, clock: OffsetClock
) -> None:
    short = dataclasses.replace(config, client_id=SHORT_LIVED.client_id)
    callback = await authorize(client, browser, short)
    # One minute of lifetime and one of tolerated clock skew are over.
    clock.offset = timedelta(minutes=3)
    with pytest.raises(InvalidIdToken, match="has expired"):
        await client.identify(
            short,
            redirect_uri=REDIRECT_URI,
            code=callback["code"],
            code_verifier="v" * 64,
            nonce="nonce-1",
            issuer=callback["iss"],
        )


async def test_wrong_pkce_verifier_and_a_reused_code_are_refused_by_the_provider(
    client: HttpOidcClient, browser: Browser, config: OidcProvider
) -> None:
    callback = await authorize(client, browser, config)
    arguments = {
        "redirect_uri": REDIRECT_URI,
        "code": callback["code"],
        "nonce": "nonce-1",
        "issuer": callback["iss"],
    }
    with pytest.raises(ProviderRefused, match="invalid_grant"):
        await client.identify(config, code_verifier="w" * 64, **arguments)
    identity = await client.identify(config, code_verifier="v" * 64, **arguments)
    assert identity.subject == "sub-ada"
    # RFC 6749 §4.1.2: a code is good for one exchange.
    with pytest.raises(ProviderRefused, match="invalid_grant"):
        await client.identify(config, code_verifier="v" * 64, **arguments)


async def test_wrong_client_secret_is_refused(
    client: HttpOidcClient, browser: Browser, config: OidcProvider
) -> None:
    callback = await authorize(client, browser, config)
    with pytest.raises(ProviderRefused, match="invalid_client"):
        await client.identify(
            dataclasses.replace(config, client_secret="not-the-secret"),
            redirect_uri=REDIRECT_URI,
            code=callback["code"],
            code_verifier="v" * 64,
            nonce="nonce-1",
            issuer=callback["iss"],
        )


async def test_answer_naming_another_issuer_is_refused(
    client: HttpOidcClient, browser: Browser, config: OidcProvider
) -> None:
    callback = await authorize(client, browser, config)
    for issuer, complaint in (
        ("https://evil.example", "did not come from Test SSO"),
        (None, "does not name its issuer"),
    ):
        with pytest.raises(InvalidIdToken, match=complaint):
            await client.identify(
                config,
                redirect_uri=REDIRECT_URI,
                code=callback["code"],
                code_verifier="v" * 64,
                nonce="nonce-1",
                issuer=issuer,
            )


async def test_issuer_other_than_configured_is_refused_at_discovery(
    client: HttpOidcClient, config: OidcProvider
) -> None:
    # The same server under another name: its document names 127.0.0.1, not localhost.
    other = dataclasses.replace(config, issuer=config.issuer.replace("127.0.0.1", "localhost"))
    with pytest.raises(ProviderUnavailable, match="check the issuer setting"):
        await client.authorization_url(
            other, redirect_uri=REDIRECT_URI, state="s", nonce="n", code_challenge="c"
        )


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


async def test_unreachable_or_silent_provider_is_a_clear_error_not_a_hang(
    client: HttpOidcClient, config: OidcProvider, closed_port: int, silent_port: int
) -> None:
    down = dataclasses.replace(config, issuer=f"http://127.0.0.1:{closed_port}")
    with pytest.raises(ProviderUnavailable, match="could not be reached"):
        await client.authorization_url(
            down, redirect_uri=REDIRECT_URI, state="s", nonce="n", code_challenge="c"
        )
    silent = dataclasses.replace(config, issuer=f"http://127.0.0.1:{silent_port}", timeout=0.5)
    # The outer bound only keeps a broken client from hanging the suite.
    async with asyncio.timeout(30):
        with pytest.raises(ProviderUnavailable, match=r"no answer within 0\.5 seconds"):
            await client.authorization_url(
                silent, redirect_uri=REDIRECT_URI, state="s", nonce="n", code_challenge="c"
            )


@pytest.fixture
async def endless_provider() -> AsyncIterator[str]:
    """An HTTP server whose discovery document never ends: 4 MiB of JSON whitespace and more."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{")
        try:
            for _ in range(64):
                writer.write(b" " * 65536)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_oversized_answer_is_cut_off(
    client: HttpOidcClient, config: OidcProvider, endless_provider: str
) -> None:
    huge = dataclasses.replace(config, issuer=endless_provider)
    with pytest.raises(ProviderUnavailable, match=f"more than {MAX_RESPONSE_BYTES // 1024} KiB"):
        await client.authorization_url(
            huge, redirect_uri=REDIRECT_URI, state="s", nonce="n", code_challenge="c"
        )

"""The web app over HTTPS (MAILMARK_HTTPS_PORT) with the certificate every TLS listener presents,
and the plain-HTTP redirect listener in front of it (MAILMARK_HTTP_REDIRECT_PORT): real TLS and
HTTP clients on loopback."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailmark.bootstrap import Listeners, acme_challenges
from mailmark.certificates.acme_issuer import ChallengeResponses
from mailmark.config import Settings
from mailmark.web.redirect import HttpsRedirect
from tests.support.tls import client_tls, tls_connection, trusting
from tests.support.web import OWNER_EMAIL, OWNER_PASSWORD, ApiClient
from tests.support.world import HOSTNAME, World

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
KEY_AUTHORIZATION = f"{TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"https_port": 0, "http_redirect_port": 0, "public_url": f"https://{HOSTNAME}"}
    )


def https_url(listeners: Listeners) -> str:
    return f"https://127.0.0.1:{listeners.https_port}"


def verify(listeners: Listeners) -> ssl.SSLContext:
    """Trust the certificate the listeners present (the self-signed one made on start)."""
    return trusting(listeners.certificates.loaded.cert_path)


@pytest.fixture
async def redirect(listeners: Listeners) -> AsyncIterator[httpx.AsyncClient]:
    """A plain-HTTP client of the redirect listener that does not follow redirects."""
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{listeners.http_redirect_port}", trust_env=False, timeout=10
    ) as client:
        yield client


async def test_https_serves_the_api_and_the_web_app(listeners: Listeners, world: World) -> None:
    key = await world.services.api_keys.create(world.domain, "t")
    async with httpx.AsyncClient(
        base_url=https_url(listeners), trust_env=False, verify=verify(listeners), timeout=10
    ) as v1:
        listed = await v1.get("/v1/mailboxes", headers={"Authorization": f"Bearer {key.secret}"})
    assert listed.status_code == 200, listed.text
    assert f"sales@{world.domain}" in listed.text
    assert listed.headers["strict-transport-security"].startswith("max-age=")
    assert listed.extensions["http_version"] == b"HTTP/1.1"

    # The web app's sign-in: over TLS the cookies are __Host- and Secure.
    async with ApiClient(https_url(listeners), verify=verify(listeners)) as app:
        signed_in = await app.sign_in(OWNER_EMAIL, OWNER_PASSWORD)
        assert signed_in.status_code == 200, signed_in.text
        session = next(
            c for c in signed_in.headers.get_list("set-cookie") if "mailmark_session" in c
        )
        assert session.startswith("__Host-mailmark_session=")
        assert "secure" in session.lower()
        me = await app.get("/api/me")
        assert me.status_code == 200 and me.json()["email"] == OWNER_EMAIL


async def test_over_https_no_header_makes_a_request_plain_http(listeners: Listeners) -> None:
    """Forwarded headers are a proxy's word, and nothing stands between HTTPS and its clients:
    even from loopback (a proxy's address on the plain port) they change nothing."""
    async with httpx.AsyncClient(
        base_url=https_url(listeners), trust_env=False, verify=verify(listeners), timeout=10
    ) as client:
        answer = await client.get(
            "/api/session", headers={"X-Forwarded-Proto": "http", "X-Forwarded-For": "192.0.2.7"}
        )
    assert answer.status_code == 200
    assert answer.headers["strict-transport-security"].startswith("max-age=")
    assert answer.headers["set-cookie"].startswith("__Host-mailmark_csrf=")


async def test_https_agrees_to_http_1_1_and_the_mail_ports_to_no_alpn(
    listeners: Listeners,
) -> None:
    """RFC 7301 ALPN: the HTTPS port picks http/1.1 (it speaks no h2); a mail port presents the
    same certificate but selects no protocol, never confirming HTTP to a browser sent there (the
    ALPACA cross-protocol attack)."""
    offered = client_tls()
    offered.set_alpn_protocols(["h2", "http/1.1"])
    for port, expected in ((listeners.https_port, "http/1.1"), (listeners.imaps_port, None)):
        assert port is not None
        _, writer = await tls_connection(port, offered)
        try:
            assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == expected
        finally:
            writer.close()


async def test_the_plain_http_port_stays_plain(listeners: Listeners) -> None:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{listeners.http_port}", trust_env=False, timeout=10
    ) as client:
        answer = await client.get("/api/session")
    assert answer.status_code == 200
    assert "strict-transport-security" not in answer.headers


async def test_the_redirect_port_answers_acme_challenges_itself(
    listeners: Listeners, settings: Settings, redirect: httpx.AsyncClient
) -> None:
    path = f"/.well-known/acme-challenge/{TOKEN}"
    assert (await redirect.get(path)).status_code == 404
    acme_challenges(settings).put(TOKEN, KEY_AUTHORIZATION)
    answer = await redirect.get(path, headers={"Host": HOSTNAME})
    assert answer.status_code == 200
    assert answer.text == KEY_AUTHORIZATION
    assert answer.headers["content-type"].startswith("text/plain")
    assert (await redirect.head(path)).status_code == 200
    # Not a token: never looked up as a file, whatever it names.
    for other in ("..%2F..%2Fsecrets.key", "short", f"{TOKEN}/x"):
        assert (await redirect.get(f"/.well-known/acme-challenge/{other}")).status_code == 404
    health = await redirect.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_the_redirect_port_sends_everything_else_to_https_with_308(
    listeners: Listeners, redirect: httpx.AsyncClient, method: str
) -> None:
    answer = await redirect.request(
        method, "/dashboard/domains/acme.test?tab=dns&next=%2Fx", headers={"Host": HOSTNAME}
    )
    # 308 keeps the method and body (RFC 9110 §15.4.9): a POST arrives as a POST.
    assert answer.status_code == 308
    assert answer.headers["location"] == (
        f"https://{HOSTNAME}:{listeners.https_port}/dashboard/domains/acme.test?tab=dns&next=%2Fx"
    )
    assert "strict-transport-security" not in answer.headers  # meaningless over plain HTTP


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        f"evil.example:{HOSTNAME}",
        f"{HOSTNAME}.evil.example",
        "192.0.2.7",
        "[::1]:80",
        "evil.example/path",
        "",
    ],
)
async def test_a_host_the_certificate_does_not_name_is_never_redirected_to(
    listeners: Listeners, redirect: httpx.AsyncClient, host: str
) -> None:
    answer = await redirect.get("/sign-in", headers={"Host": host})
    assert answer.status_code == 308
    assert answer.headers["location"] == f"https://{HOSTNAME}:{listeners.https_port}/sign-in"


async def test_a_host_the_certificate_names_is_kept(
    listeners: Listeners, redirect: httpx.AsyncClient
) -> None:
    """The name the request asked for, when the certificate covers it (port and case aside)."""
    answer = await redirect.get("/", headers={"Host": f"{HOSTNAME.upper()}.:80"})
    assert answer.headers["location"] == f"https://{HOSTNAME}:{listeners.https_port}/"


async def test_odd_request_targets_stay_on_our_host(listeners: Listeners) -> None:
    """An absolute-form target (RFC 9112 §3.2.2) names another host: only our host is used; a
    path of two slashes stays a path on it."""
    location = f"https://{HOSTNAME}:{listeners.https_port}"
    cases = {
        b"GET http://evil.example/x HTTP/1.1": (location + "/x", location + "/"),
        b"GET //evil.example/x HTTP/1.1": (location + "//evil.example/x",),
    }
    for request_line, allowed in cases.items():
        assert listeners.http_redirect_port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", listeners.http_redirect_port)
        try:
            writer.write(request_line + f"\r\nHost: {HOSTNAME}\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        finally:
            writer.close()
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 308"), lines
        found = [
            line.partition(":")[2].strip() for line in lines if line.lower().startswith("location:")
        ]
        assert len(found) == 1 and found[0] in allowed, (request_line, found)


@pytest.mark.parametrize(
    ("raw_path", "query", "host", "location"),
    [
        (b"/", b"", HOSTNAME, f"https://{HOSTNAME}/"),
        (b"/a/b", b"x=1&y=%2F", HOSTNAME, f"https://{HOSTNAME}/a/b?x=1&y=%2F"),
        # What the h11 parser hands on as the path of an absolute-form target.
        (b"http://evil.example/x", b"", HOSTNAME, f"https://{HOSTNAME}/"),
        (b"*", b"", HOSTNAME, f"https://{HOSTNAME}/"),
        # Bytes a Location must not carry as they are: escaped, never copied.
        (
            b'/a b"<>\xc3\xa9',
            b"q=a b",
            HOSTNAME,
            f"https://{HOSTNAME}/a%20b%22%3C%3E%C3%A9?q=a%20b",
        ),
        (b"/x", b"", "evil.example", "https://mail.example.com/x"),
        (b"/x", b"", "mail.example.com", "https://mail.example.com/x"),
    ],
)
def test_location(raw_path: bytes, query: bytes, host: str, location: str) -> None:
    """On 443 the port is left out; only names the certificate covers are kept."""
    redirect = HttpsRedirect(
        challenges=ChallengeResponses(Path("/nonexistent")),
        public_host="mail.example.com",
        https_port=443,
        served={HOSTNAME, "mail.example.com"}.__contains__,
    )
    scope: Any = {
        "type": "http",
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": query,
        "headers": [(b"host", host.encode())],
    }
    assert redirect.location(scope) == location

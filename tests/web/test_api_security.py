"""The web app's defences over a real listener: CSRF on every state change, the security
headers on every response (the app, /v1, /schema, errors), and cookies over https."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from litestar.routes import HTTPRoute

from mailmark.bootstrap import Listeners
from mailmark.web.app import CONTENT_SECURITY_POLICY
from mailmark.web.spa import SCHEMA_PAGES, schema_page_csp
from tests.support.web import OWNER_EMAIL, OWNER_PASSWORD, ApiClient, api_url
from tests.support.world import World
from tests.web.api.conftest import assert_error

CSRF_MESSAGE = "This page is out of date; reload it and try again."


def assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    [policy] = response.headers.get_list("content-security-policy")
    if response.url.path in SCHEMA_PAGES:
        # The API explorer's page alone allows inline styles (tests/web/test_spa.py).
        assert policy == schema_page_csp(CONTENT_SECURITY_POLICY)
    else:
        assert policy == CONTENT_SECURITY_POLICY
        assert "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self';" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    # Plain http: no HSTS (it would be ignored, and means nothing without TLS).
    assert "strict-transport-security" not in response.headers


async def test_every_response_carries_the_security_headers(
    world: World, owner_client: ApiClient
) -> None:
    key = (await world.services.api_keys.create(world.domain, name="headers")).secret
    responses = [
        await owner_client.get("/api/me"),
        await owner_client.get("/api/session"),
        await owner_client.get("/api/no-such-route"),
        await owner_client.post("/api/me/password", json={}),
        await owner_client.http.get("/v1/mailboxes"),
        await owner_client.http.get("/v1/mailboxes", headers={"Authorization": f"Bearer {key}"}),
        await owner_client.http.get("/schema/openapi.json"),
        await owner_client.http.get("/schema"),
        await owner_client.http.get("/nothing-here"),
        await owner_client.http.put("/api/session"),
        await owner_client.http.get("/.well-known/mta-sts.txt"),
    ]
    statuses = {response.status_code for response in responses}
    assert {200, 401, 404, 405} <= statuses
    for response in responses:
        assert_security_headers(response)


async def test_state_changes_without_the_csrf_token_are_refused(
    owner_client: ApiClient,
) -> None:
    for headers in [{}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": "not-the-token"}]:
        response = await owner_client.patch(
            "/api/me", json={"name": "Mallory"}, headers=headers, csrf=False
        )
        assert assert_error(response, 403, "csrf_failed") == CSRF_MESSAGE
    assert (await owner_client.get("/api/me")).json()["name"] == ""
    # With it, the same request works.
    done = await owner_client.patch("/api/me", json={"name": "Olive"})
    assert done.status_code == 200 and done.json()["name"] == "Olive"


async def test_a_token_not_bound_to_the_session_is_refused(
    listeners: Listeners, owner_client: ApiClient
) -> None:
    """Double submit alone is not enough once signed in: a cookie the attacker planted (with a
    header to match) is not the session's token."""
    forged = "f" * 43
    owner_client.http.cookies.set("mailmark_csrf", forged)
    response = await owner_client.patch(
        "/api/me", json={"name": "Mallory"}, headers={"X-CSRF-Token": forged}, csrf=False
    )
    assert_error(response, 403, "csrf_failed")


async def test_a_cross_site_origin_is_refused_even_with_the_token(
    listeners: Listeners, world: World, owner_client: ApiClient
) -> None:
    for headers in [
        {"Origin": "https://evil.test"},
        {"Origin": "null"},
        {"Origin": f"http://127.0.0.1:{listeners.http_port + 1}"},
        {"Sec-Fetch-Site": "cross-site"},
    ]:
        response = await owner_client.patch("/api/me", json={"name": "Mallory"}, headers=headers)
        assert_error(response, 403, "csrf_failed")
    same = await owner_client.patch(
        "/api/me",
        json={"name": "Olive"},
        headers={"Origin": api_url(listeners), "Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 200, same.text
    # Behind a proxy that passes another Host on, the browser's origin is the public URL's.
    public = urlsplit(world.services.settings.public_url)
    proxied = await owner_client.patch(
        "/api/me", json={"name": "Olive"}, headers={"Origin": f"{public.scheme}://{public.netloc}"}
    )
    assert proxied.status_code == 200, proxied.text


async def test_sign_in_itself_needs_the_csrf_token(listeners: Listeners, world: World) -> None:
    """Login CSRF: another site must not sign a browser in to the attacker's account."""
    async with ApiClient(api_url(listeners)) as client:
        await client.session()
        response = await client.post(
            "/api/auth/sign-in",
            json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD},
            csrf=False,
        )
        assert_error(response, 403, "csrf_failed")
        assert "mailmark_session" not in response.cookies


@pytest.mark.parametrize("path", ["/api/session", "/api/auth/sign-in"])
async def test_over_https_cookies_are_host_prefixed_and_secure(
    listeners: Listeners, world: World, path: str
) -> None:
    """Behind a TLS-terminating proxy on the same host (uvicorn trusts X-Forwarded-Proto from
    127.0.0.1, as such a proxy sends it), the cookies are `__Host-` and Secure, and HSTS is on."""
    https = {"X-Forwarded-Proto": "https"}
    async with httpx.AsyncClient(
        base_url=api_url(listeners), trust_env=False, headers=https
    ) as http:
        state = await http.get("/api/session")
        assert state.headers["strict-transport-security"].startswith("max-age=")
        csrf_cookie = state.headers["set-cookie"]
        assert csrf_cookie.startswith("__Host-mailmark_csrf=")
        assert "secure" in csrf_cookie.lower() and "path=/" in csrf_cookie.lower()
        if path == "/api/session":
            return
        token = state.json()["csrfToken"]
        response = await http.post(
            path,
            json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD},
            headers={"X-CSRF-Token": token, "Cookie": f"__Host-mailmark_csrf={token}"},
        )
        assert response.status_code == 200, response.text
        session = next(
            c for c in response.headers.get_list("set-cookie") if "mailmark_session" in c
        )
        lowered = session.lower()
        assert session.startswith("__Host-mailmark_session=")
        assert "secure" in lowered and "httponly" in lowered and "samesite=lax" in lowered
        assert "path=/" in lowered and "domain=" not in lowered


def api_routes(listeners: Listeners) -> list[tuple[str, str, bool]]:
    """(method, path with sample parameters, public) of every /api route in the running app's
    route table: a route added later is covered without touching this test."""
    app = listeners.http.server.config.app
    samples = {int: "1", str: "sample"}
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api"):
            continue
        path = route.path_format
        for parameter in route.path_parameters.values():
            path = path.replace(f"{{{parameter.name}}}", samples.get(parameter.type, "1"))
        for method, (handler, _) in route.route_handler_map.items():
            if method in ("HEAD", "OPTIONS"):
                continue
            found.append((method, path, bool(handler.opt.get("public"))))
    return found


async def test_every_private_api_route_needs_a_session(listeners: Listeners, world: World) -> None:
    routes = api_routes(listeners)
    assert ("GET", "/api/me", False) in routes and ("GET", "/api/session", True) in routes
    async with ApiClient(api_url(listeners)) as client:
        await client.session()
        for method, path, public in routes:
            if public:
                continue
            response = await client.request(method, path, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert_error(response, 401, "unauthenticated")


async def test_every_api_route_is_in_the_openapi_document_with_a_tag(
    listeners: Listeners, world: World
) -> None:
    async with ApiClient(api_url(listeners)) as client:
        document = (await client.http.get("/schema/openapi.json")).json()
    for method, path, _ in api_routes(listeners):
        template = next(
            p
            for p in document["paths"]
            if p.count("/") == path.count("/")
            and all(
                a == b or a.startswith("{")
                for a, b in zip(p.split("/"), path.split("/"), strict=True)
            )
        )
        operation = document["paths"][template][method.lower()]
        assert operation["tags"] and operation["operationId"], (method, path)

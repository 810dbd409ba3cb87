"""The /api session guard, the `viewer` dependency, CSRF checks and the session cookies.

One guard sits on the whole /api router, so no route can forget it. It looks the session up
afresh on every request (a removed member or an ended session is refused at once), answers 401
on a private route without one, and on every POST/PUT/PATCH/DELETE refuses a request from
another site: the `X-CSRF-Token` header must equal the CSRF cookie (double submit), which for a
signed-in browser must be the token bound to its session, and a cross-site `Origin` is refused.
Routes that work signed out are marked `opt={"public": True}`.
"""

from __future__ import annotations

import hmac
import re
from typing import Any
from urllib.parse import urlsplit

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.handlers.base import BaseRouteHandler

from mailmark.core.access import Viewer
from mailmark.core.errors import CsrfFailed, Unauthenticated
from mailmark.core.identity import (
    SESSION_LIFETIME,
    IdentityService,
    SignedIn,
    csrf_token_for,
    new_token,
)
from mailmark.web.api.v1.auth import Guard

SESSION_COOKIE = "mailmark_session"
# The affiliate link a browser arrived by (core/affiliates.py), read when it signs up.
REFERRAL_COOKIE = "mailmark_ref"
CSRF_COOKIE = "mailmark_csrf"
CSRF_HEADER = "x-csrf-token"
# RFC 6265bis §4.1.3.2: a `__Host-` cookie is Secure, has Path=/ and no Domain: no subdomain or
# plain-http page can set or shadow it.
HOST_PREFIX = "__Host-"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC = {"public": True}
CSRF_FAILED = "This page is out of date; reload it and try again."
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


def is_https(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether the browser reached us over TLS (directly, or through a trusted proxy that said
    so in X-Forwarded-Proto: uvicorn applies that header from the proxies it trusts)."""
    return connection.scope.get("scheme") == "https"


def cookie_name(connection: ASGIConnection[Any, Any, Any, Any], base: str) -> str:
    return HOST_PREFIX + base if is_https(connection) else base


def session_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    return connection.cookies.get(cookie_name(connection, SESSION_COOKIE)) or None


def client_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return connection.client.host if connection.client else ""


def user_agent(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return connection.headers.get("user-agent", "")


def api_guard(identity: IdentityService, public_url: str = "") -> Guard:
    """The guard of every /api route. `public_url`'s origin is accepted as well as the request's
    own: a reverse proxy may pass on another Host than the one the browser used."""
    public = urlsplit(public_url)
    public_origin = (
        f"{public.scheme}://{public.netloc}" if public.scheme and public.netloc else None
    )

    async def require_session(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        token = session_token(connection)
        viewer = await identity.authenticate(token)
        connection.state.viewer = viewer
        if viewer is None and not handler.opt.get("public"):
            raise Unauthenticated("Sign in to continue.")
        if connection.scope.get("method") not in SAFE_METHODS:
            check_csrf(connection, token if viewer is not None else None, public_origin)

    return require_session


def check_csrf(
    connection: ASGIConnection[Any, Any, Any, Any],
    signed_in_token: str | None,
    public_origin: str | None = None,
) -> None:
    """CsrfFailed unless the request carries this page's CSRF token and comes from this site."""
    origin = connection.headers.get("origin")
    if origin is not None and origin not in (own_origin(connection), public_origin):
        raise CsrfFailed(CSRF_FAILED)
    if connection.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfFailed(CSRF_FAILED)
    sent = connection.headers.get(CSRF_HEADER, "")
    cookie = connection.cookies.get(cookie_name(connection, CSRF_COOKIE), "")
    expected = csrf_token_for(signed_in_token) if signed_in_token is not None else cookie
    if not sent or not _same(sent, cookie) or not _same(sent, expected):
        raise CsrfFailed(CSRF_FAILED)


def own_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """scheme://host[:port] of this request, as a browser's Origin header would say it."""
    return f"{'https' if is_https(connection) else 'http'}://{connection.headers.get('host', '')}"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def current_viewer(request: Request[Any, Any, Any]) -> Viewer:
    """The `viewer` dependency of signed-in routes."""
    viewer: Viewer | None = request.state.viewer
    if viewer is None:  # a public route asked for it: it needs a session after all
        raise Unauthenticated("Sign in to continue.")
    return viewer


# --- cookies -------------------------------------------------------------------------------------


def _session_cookie(
    connection: ASGIConnection[Any, Any, Any, Any], value: str, max_age: int
) -> Cookie:
    return Cookie(
        key=cookie_name(connection, SESSION_COOKIE),
        value=value,
        path="/",
        max_age=max_age,
        secure=is_https(connection),
        httponly=True,
        samesite="lax",
    )


def _csrf_cookie(
    connection: ASGIConnection[Any, Any, Any, Any], value: str, max_age: int
) -> Cookie:
    # Readable by the page's script on purpose (it echoes it in X-CSRF-Token); Strict: never sent
    # with a request another site starts.
    return Cookie(
        key=cookie_name(connection, CSRF_COOKIE),
        value=value,
        path="/",
        max_age=max_age,
        secure=is_https(connection),
        httponly=False,
        samesite="strict",
    )


LIFETIME_SECONDS = int(SESSION_LIFETIME.total_seconds())


def signed_in_cookies(
    connection: ASGIConnection[Any, Any, Any, Any], signed_in: SignedIn
) -> list[Cookie]:
    """The new session's cookie and the CSRF token bound to it."""
    return [
        _session_cookie(connection, signed_in.token, LIFETIME_SECONDS),
        _csrf_cookie(connection, signed_in.csrf_token, LIFETIME_SECONDS),
    ]


def pending_cookie(connection: ASGIConnection[Any, Any, Any, Any], token: str) -> Cookie:
    """The cookie holding a sign-in that waits for its second factor."""
    return _session_cookie(connection, token, LIFETIME_SECONDS)


def signed_out_cookies(connection: ASGIConnection[Any, Any, Any, Any]) -> list[Cookie]:
    return [_session_cookie(connection, "", 0), _csrf_cookie(connection, "", 0)]


def anonymous_csrf_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The signed-out page's CSRF token: the browser's current one when well formed, else new."""
    current = connection.cookies.get(cookie_name(connection, CSRF_COOKIE), "")
    return current if _TOKEN_SHAPE.match(current) else new_token()


def referral_cookie(
    connection: ASGIConnection[Any, Any, Any, Any], value: str, max_age: int
) -> Cookie:
    """HttpOnly (no script reads it) and Lax: set on the top-level visit of a referral link,
    sent with the sign-up of the same site."""
    return Cookie(
        key=REFERRAL_COOKIE,
        value=value,
        path="/",
        max_age=max_age,
        secure=is_https(connection),
        httponly=True,
        samesite="lax",
    )


def csrf_cookie(connection: ASGIConnection[Any, Any, Any, Any], token: str) -> Cookie:
    return _csrf_cookie(connection, token, LIFETIME_SECONDS)

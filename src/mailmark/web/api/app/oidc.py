"""/api/auth/oidc/*: sign-in through an OpenID Connect provider.

Both routes are browser navigations, not calls of the page's script, so they answer with
redirects, never with JSON: `start` sends the browser to the provider; `callback` (where the
provider sends it back) signs the person in and goes on to /dashboard, or to /sign-in?step=totp
when their two-factor code is still due, or to /sign-in?error=<code> when the sign-in is
refused. The sentence that explains a refusal is kept for that browser in a short-lived cookie,
and the sign-in page reads it once at /api/auth/oidc/error: a link cannot put words of its own
on our page.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import Cookie
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect

from mailmark.core.errors import MailmarkError, NotFound
from mailmark.core.identity import IdentityService
from mailmark.core.oidc import LOGIN_LIFETIME, OidcSignIn, new_browser_binding
from mailmark.web.api.app.session import (
    PUBLIC,
    client_ip,
    cookie_name,
    is_https,
    pending_cookie,
    session_token,
    signed_in_cookies,
    user_agent,
)
from mailmark.web.api.v1.auth import Injected
from mailmark.web.errors import error_code

log = logging.getLogger(__name__)

# Ties the sign-ins a browser starts to that browser (the value is stored as its sha256).
BROWSER_COOKIE = "mailmark_oidc"
ERROR_COOKIE = "mailmark_oidc_error"
ERROR_LIFETIME_SECONDS = 300
SIGNED_IN_PAGE = "/dashboard"
TOTP_PAGE = "/sign-in?step=totp"
SIGN_IN_PAGE = "/sign-in"
_BINDING_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# What a provider sends back is short; anything longer is refused before it is looked at.
Param = Annotated[str | None, QueryParameter(max_length=2048)]


class OidcErrorOut(msgspec.Struct, rename="camel"):
    code: str
    message: str


def _cookie(request: Request[Any, Any, Any], base: str, value: str, max_age: int) -> Cookie:
    # SameSite=Lax, not Strict: the provider's redirect back is a navigation another site
    # started, and the browser must send this cookie with it.
    return Cookie(
        key=cookie_name(request, base),
        value=value,
        path="/",
        max_age=max_age,
        secure=is_https(request),
        httponly=True,
        samesite="lax",
    )


def _refused(request: Request[Any, Any, Any], provider: str, error: MailmarkError) -> Redirect:
    code = error_code(error)
    log.info("OIDC sign-in with %r refused: %s (%s)", provider[:32], code, error.message)
    note = json.dumps({"code": code, "message": error.message}).encode()
    return Redirect(
        f"{SIGN_IN_PAGE}?error={code}",
        status_code=302,
        cookies=[
            _cookie(
                request,
                ERROR_COOKIE,
                base64.urlsafe_b64encode(note).decode(),
                ERROR_LIFETIME_SECONDS,
            )
        ],
    )


class OidcController(Controller):
    path = "/auth/oidc"
    tags = ("Sign-in",)

    @get(
        "/{provider:str}/start",
        operation_id="oidcStart",
        summary="Sign in through a provider",
        status_code=302,
        opt=PUBLIC,
    )
    async def start(
        self,
        request: Request[Any, Any, Any],
        oidc: Injected[OidcSignIn],
        provider: FromPath[str],
    ) -> Redirect:
        """Redirects to the provider's sign-in page (or back to /sign-in?error=… when the
        provider cannot be reached). `provider` is an id from /api/session's `oidcProviders`."""
        browser = request.cookies.get(cookie_name(request, BROWSER_COOKIE), "")
        if not _BINDING_SHAPE.match(browser):
            browser = new_browser_binding()
        try:
            url = await oidc.start(provider, browser)
        except MailmarkError as error:
            return _refused(request, provider, error)
        lifetime = int(LOGIN_LIFETIME.total_seconds())
        return Redirect(
            url, status_code=302, cookies=[_cookie(request, BROWSER_COOKIE, browser, lifetime)]
        )

    @get(
        "/{provider:str}/callback",
        operation_id="oidcCallback",
        summary="Where the provider sends the browser back",
        status_code=302,
        opt=PUBLIC,
    )
    async def callback(
        self,
        request: Request[Any, Any, Any],
        oidc: Injected[OidcSignIn],
        identity: Injected[IdentityService],
        provider: FromPath[str],
        oauth_state: Annotated[str | None, QueryParameter(name="state", max_length=2048)] = None,
        code: Param = None,
        error: Param = None,
        iss: Param = None,
    ) -> Redirect:
        """Signs the person in (a new session: the id changes) and redirects to /dashboard, or
        to /sign-in?step=totp when their two-factor code is due, or /sign-in?error=<code>."""
        browser = request.cookies.get(cookie_name(request, BROWSER_COOKIE))
        try:
            result = await oidc.finish(
                provider,
                browser,
                state=oauth_state,
                code=code,
                error=error,
                issuer=iss,
            )
            ip, agent, previous = client_ip(request), user_agent(request), session_token(request)
            if result.totp_required:
                pending = await identity.start_pending_totp(
                    result.user, ip=ip, user_agent=agent, previous_token=previous
                )
                return Redirect(
                    TOTP_PAGE, status_code=302, cookies=[pending_cookie(request, pending.token)]
                )
            signed_in = await identity.start_session(
                result.user, ip=ip, user_agent=agent, previous_token=previous
            )
        except MailmarkError as failure:
            return _refused(request, provider, failure)
        return Redirect(
            SIGNED_IN_PAGE, status_code=302, cookies=signed_in_cookies(request, signed_in)
        )

    @get(
        "/error",
        operation_id="oidcError",
        summary="Why the last provider sign-in was refused",
        opt=PUBLIC,
    )
    async def last_error(self, request: Request[Any, Any, Any]) -> Response[OidcErrorOut]:
        """The sentence for the page at /sign-in?error=…, once (404 when there is none)."""
        stored = request.cookies.get(cookie_name(request, ERROR_COOKIE), "")
        try:
            note = json.loads(base64.urlsafe_b64decode(stored[:4096].encode()))
            found = OidcErrorOut(str(note["code"]), str(note["message"]))
        except (ValueError, TypeError, KeyError):
            raise NotFound("No sign-in through a provider was refused in this browser.") from None
        return Response(found, cookies=[_cookie(request, ERROR_COOKIE, "", 0)])

"""/api/session, /api/setup, /api/auth/* and /api/me: signing in and the signed-in person's own
settings (password, sessions, two-factor)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
import segno
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from mailmark.core.access import Viewer
from mailmark.core.affiliates import AffiliateService
from mailmark.core.identity import IdentityService, SignedIn, TotpPending, csrf_token_for
from mailmark.core.oidc import OidcProvider
from mailmark.web.api.app.session import (
    PUBLIC,
    REFERRAL_COOKIE,
    anonymous_csrf_token,
    client_ip,
    csrf_cookie,
    pending_cookie,
    referral_cookie,
    session_token,
    signed_in_cookies,
    signed_out_cookies,
    user_agent,
)
from mailmark.web.api.v1.auth import Injected

# Bounds on what a body may carry (anything longer is refused before core sees it).
Short = Annotated[str, msgspec.Meta(max_length=320)]
Password = Annotated[str, msgspec.Meta(max_length=1024)]
Code = Annotated[str, msgspec.Meta(max_length=64)]
Token = Annotated[str, msgspec.Meta(max_length=100)]
Name = Annotated[str, msgspec.Meta(max_length=200)]


class MeOut(msgspec.Struct, rename="camel"):
    id: int
    email: str
    name: str
    role: str
    account_name: str
    account_id: int
    totp_enabled: bool
    csrf_token: str


class OidcProviderOut(msgspec.Struct):
    id: str
    name: str


class SessionStateOut(msgspec.Struct, rename="camel"):
    signed_in: bool
    setup_required: bool
    signup_open: bool
    oidc_providers: list[OidcProviderOut]
    csrf_token: str
    user: MeOut | None


class TotpRequiredOut(msgspec.Struct, rename="camel"):
    totp_required: bool = True


class SetupIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    token: Token
    account_name: Short
    name: Name
    email: Short
    password: Password


class SignUpIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    account_name: Short
    name: Name
    email: Short
    password: Password


class PasswordResetIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    email: Short


class PasswordResetConfirmIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    token: Token
    password: Password


class SignInIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    email: Short
    password: Password


class TotpCodeIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    code: Code


class MePatchIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: Name


class PasswordChangeIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    current_password: Password
    new_password: Password


class PasswordIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    password: Password


class SessionOut(msgspec.Struct, rename="camel"):
    id: int
    current: bool
    created_at: datetime
    last_seen_at: datetime
    ip: str
    user_agent: str


class TotpSetupOut(msgspec.Struct, rename="camel"):
    secret: str
    otpauth_uri: str
    qr_svg: str


class RecoveryCodesOut(msgspec.Struct, rename="camel"):
    recovery_codes: list[str]


def me_out(viewer: Viewer, csrf_token: str) -> MeOut:
    return MeOut(
        id=viewer.user_id,
        email=viewer.email,
        name=viewer.name,
        role=str(viewer.role),
        account_name=viewer.account_name,
        account_id=viewer.account_id,
        totp_enabled=viewer.totp_enabled,
        csrf_token=csrf_token,
    )


def signed_in_response(
    request: Request[Any, Any, Any], signed_in: SignedIn, status_code: int = 200
) -> Response[MeOut]:
    """Me, with the new session's cookies (the id changed: no session fixation)."""
    return Response(
        me_out(signed_in.viewer, signed_in.csrf_token),
        status_code=status_code,
        cookies=signed_in_cookies(request, signed_in),
    )


def current_csrf(request: Request[Any, Any, Any]) -> str:
    token = session_token(request)
    return csrf_token_for(token) if token else ""


class SessionController(Controller):
    path = "/"
    tags = ("Sign-in",)

    @get("/session", operation_id="appSession", summary="What the page needs to start", opt=PUBLIC)
    async def session_state(
        self,
        request: Request[Any, Any, Any],
        identity: Injected[IdentityService],
        oidc_providers: Injected[list[OidcProvider]],
    ) -> Response[SessionStateOut]:
        """Whether someone is signed in (and who), whether first-run setup is due, whether
        sign-up is open, and the CSRF token every state-changing call must send back."""
        viewer: Viewer | None = request.state.viewer
        csrf = current_csrf(request) if viewer is not None else anonymous_csrf_token(request)
        state = SessionStateOut(
            signed_in=viewer is not None,
            setup_required=await identity.setup_required(),
            signup_open=identity.signup_open,
            oidc_providers=[OidcProviderOut(p.id, p.name) for p in oidc_providers],
            csrf_token=csrf,
            user=me_out(viewer, csrf) if viewer is not None else None,
        )
        return Response(state, cookies=[csrf_cookie(request, csrf)])

    @post("/setup", operation_id="completeSetup", summary="Create the first owner", opt=PUBLIC)
    async def setup(
        self,
        request: Request[Any, Any, Any],
        identity: Injected[IdentityService],
        data: JSONBody[SetupIn],
    ) -> Response[MeOut]:
        """With the one-time link `mailmark serve` printed: creates the account and its owner,
        and signs the owner in. The link works once."""
        signed_in = await identity.complete_setup(
            data.token,
            account_name=data.account_name,
            name=data.name,
            email=data.email,
            password=data.password,
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
        return signed_in_response(request, signed_in, 201)


class AuthController(Controller):
    path = "/auth"
    tags = ("Sign-in",)

    @post("/sign-in", operation_id="signIn", summary="Sign in", status_code=200, opt=PUBLIC)
    async def sign_in(
        self,
        request: Request[Any, Any, Any],
        identity: Injected[IdentityService],
        data: JSONBody[SignInIn],
    ) -> Response[MeOut | TotpRequiredOut]:
        """Email and password; with two-factor on, `{"totpRequired": true}` and the code is
        then due at /api/auth/totp within 5 minutes."""
        outcome = await identity.sign_in(
            data.email,
            data.password,
            ip=client_ip(request),
            user_agent=user_agent(request),
            previous_token=session_token(request),
        )
        if isinstance(outcome, TotpPending):
            return Response(TotpRequiredOut(), cookies=[pending_cookie(request, outcome.token)])
        response: Response[MeOut | TotpRequiredOut] = Response(
            me_out(outcome.viewer, outcome.csrf_token),
            cookies=signed_in_cookies(request, outcome),
        )
        return response

    @post("/sign-up", operation_id="signUp", summary="Create an account", opt=PUBLIC)
    async def sign_up(
        self,
        request: Request[Any, Any, Any],
        identity: Injected[IdentityService],
        affiliates: Injected[AffiliateService | None],
        data: JSONBody[SignUpIn],
    ) -> Response[MeOut]:
        """Where sign-up is open: a new account on the 7-day trial, you its owner, signed in.
        Closed (the default): 403 `signup_closed`. A browser that came by an affiliate's link
        (its referral cookie) has the new account attributed to that affiliate."""
        already: Viewer | None = request.state.viewer
        signed_in = await identity.sign_up(
            account_name=data.account_name,
            name=data.name,
            email=data.email,
            password=data.password,
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
        response = signed_in_response(request, signed_in, 201)
        referral = request.cookies.get(REFERRAL_COOKIE)
        if affiliates is not None and referral:
            await affiliates.attribute_signup(
                signed_in.viewer.account_id,
                referral,
                signed_in_account=already.account_id if already is not None else None,
            )
            response.cookies.append(referral_cookie(request, "", 0))
        return response

    @post(
        "/password-reset",
        operation_id="requestPasswordReset",
        summary="Email a password reset link",
        status_code=202,
        opt=PUBLIC,
    )
    async def password_reset(
        self,
        request: Request[Any, Any, Any],
        identity: Injected[IdentityService],
        data: JSONBody[PasswordResetIn],
    ) -> None:
        """Always 202: whether the email has a user is not told. The link works once, for an
        hour."""
        await identity.request_password_reset(data.email, ip=client_ip(request))

    @post(
        "/password-reset/confirm",
        operation_id="confirmPasswordReset",
        summary="Choose a new password",
        status_code=204,
        opt=PUBLIC,
    )
    async def password_reset_confirm(
        self, identity: Injected[IdentityService], data: JSONBody[PasswordResetConfirmIn]
    ) -> None:
        """Every session of the user ends; sign in with the new password."""
        await identity.reset_password(data.token, data.password)

    @post("/totp", operation_id="signInTotp", summary="Second factor", status_code=200, opt=PUBLIC)
    async def totp(
        self,
        request: Request[Any, Any, Any],
        identity: Injected[IdentityService],
        data: JSONBody[TotpCodeIn],
    ) -> Response[MeOut]:
        """The 6-digit code of the authenticator app, or one of the recovery codes."""
        signed_in = await identity.complete_totp(
            session_token(request) or "",
            data.code,
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
        return signed_in_response(request, signed_in)

    @post("/sign-out", operation_id="signOut", summary="Sign out", status_code=204, opt=PUBLIC)
    async def sign_out(
        self, request: Request[Any, Any, Any], identity: Injected[IdentityService]
    ) -> Response[None]:
        await identity.sign_out(session_token(request))
        return Response(None, status_code=204, cookies=signed_out_cookies(request))


class MeController(Controller):
    path = "/me"
    tags = ("Me",)

    @get(operation_id="getMe", summary="The signed-in user")
    async def me(self, request: Request[Any, Any, Any], viewer: Injected[Viewer]) -> MeOut:
        return me_out(viewer, current_csrf(request))

    @patch(operation_id="updateMe", summary="Change your name")
    async def update(
        self,
        request: Request[Any, Any, Any],
        viewer: Injected[Viewer],
        identity: Injected[IdentityService],
        data: JSONBody[MePatchIn],
    ) -> MeOut:
        return me_out(await identity.rename(viewer, data.name), current_csrf(request))

    @post(
        "/password", operation_id="changePassword", summary="Change your password", status_code=204
    )
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        viewer: Injected[Viewer],
        identity: Injected[IdentityService],
        data: JSONBody[PasswordChangeIn],
    ) -> None:
        """Every other session of yours ends; this one stays."""
        await identity.change_password(
            viewer, data.current_password, data.new_password, ip=client_ip(request)
        )

    @get("/sessions", operation_id="listSessions", summary="Your signed-in browsers")
    async def sessions(
        self, viewer: Injected[Viewer], identity: Injected[IdentityService]
    ) -> list[SessionOut]:
        return [
            SessionOut(s.id, s.current, s.created_at, s.last_seen_at, s.ip, s.user_agent)
            for s in await identity.sessions(viewer)
        ]

    @delete(
        "/sessions/{session_id:int}", operation_id="revokeSession", summary="Sign a browser out"
    )
    async def revoke_session(
        self,
        viewer: Injected[Viewer],
        identity: Injected[IdentityService],
        session_id: FromPath[int],
    ) -> None:
        await identity.revoke_session(viewer, session_id)

    @post(
        "/totp/setup", operation_id="beginTotp", summary="Start two-factor setup", status_code=200
    )
    async def totp_setup(
        self, viewer: Injected[Viewer], identity: Injected[IdentityService]
    ) -> TotpSetupOut:
        """A new secret, its otpauth:// URI and a QR code (SVG) of it for the authenticator app;
        two-factor is on only once /api/me/totp/enable sees a code made with it."""
        setup = await identity.begin_totp(viewer)
        return TotpSetupOut(setup.secret, setup.otpauth_uri, qr_svg(setup.otpauth_uri))

    @post("/totp/enable", operation_id="enableTotp", summary="Turn two-factor on", status_code=200)
    async def totp_enable(
        self,
        request: Request[Any, Any, Any],
        viewer: Injected[Viewer],
        identity: Injected[IdentityService],
        data: JSONBody[TotpCodeIn],
    ) -> RecoveryCodesOut:
        """Ten recovery codes, shown this once: each signs in once in place of a code."""
        codes = await identity.enable_totp(viewer, data.code, ip=client_ip(request))
        return RecoveryCodesOut(codes)

    @post(
        "/totp/disable", operation_id="disableTotp", summary="Turn two-factor off", status_code=204
    )
    async def totp_disable(
        self,
        request: Request[Any, Any, Any],
        viewer: Injected[Viewer],
        identity: Injected[IdentityService],
        data: JSONBody[PasswordIn],
    ) -> None:
        await identity.disable_totp(viewer, data.password, ip=client_ip(request))


def qr_svg(text: str) -> str:
    """A QR code of `text` as an SVG document (the page shows it as a data: image)."""
    svg: str = segno.make(text, error="m").svg_inline(scale=4, dark="#000", light="#fff")
    return svg

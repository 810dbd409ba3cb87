"""Sign-in through OpenID Connect providers: the authorization-code flow and who it signs in.

`start` sends the browser to the provider with a fresh state, nonce and PKCE challenge, kept in
a server-side row bound to the browser (a random cookie value, stored as its sha256); `finish`
takes that row back (once), lets the `OidcClient` exchange the code and validate the ID token,
and decides who the person is:

1. a known (provider, subject) is that user;
2. else a user with the same email, which the provider says it verified, is linked to it;
3. else, when sign-up is open, a new trial account is created with the person as its owner;
   when closed, the sign-in is refused with a sentence that says what to do.

The protocol itself (discovery, token endpoint, keys, ID token checks) is behind the
`OidcClient` port, implemented with httpx and PyJWT in `mailmark.oidc`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from mailmark.core.access import Role
from mailmark.core.accounts import add_account_with_owner, check_email, new_account
from mailmark.core.errors import (
    EmailNotVerified,
    InvalidInput,
    InvalidSignInState,
    NotFound,
    ProviderRefused,
    SignInRefused,
    SignupClosed,
)
from mailmark.core.identity import token_hash
from mailmark.core.model import OidcLogin, User
from mailmark.core.ports import Clock, UnitOfWork, UnitOfWorkFactory

# How long a person may take at the provider (sign-in, consent, a second factor there).
LOGIN_LIFETIME = timedelta(minutes=10)
# The longest subject identifier kept (OpenID Connect Core §2: at most 255 ASCII characters).
MAX_SUBJECT_LENGTH = 255
# What a provider's error parameter may add to the sentence shown (RFC 6749 §4.1.2.1 codes are
# short ASCII words).
MAX_ERROR_LENGTH = 64
# The password hash of a user who signs in through a provider only: no password verifies against
# it (argon2 refuses it as a hash), so password sign-in stays closed until they set one.
NO_PASSWORD = "!oidc"
MAX_NAME_LENGTH = 200
_NOT_IN_ACCOUNT_NAME = re.compile(r"[^A-Za-z0-9 ._-]+")


@dataclass(frozen=True)
class OidcProvider:
    """One configured provider (from the `oidc_providers` setting)."""

    id: str
    name: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    # The provider requires a second factor of every user itself: Mailmark's TOTP step is skipped.
    trust_mfa: bool = False
    timeout: float = 10.0


@dataclass(frozen=True)
class ProviderIdentity:
    """What a provider asserts about the person, from a validated ID token (and userinfo)."""

    subject: str
    email: str | None
    email_verified: bool
    name: str | None


class OidcClient(Protocol):
    """The OpenID Connect protocol toward providers."""

    async def authorization_url(
        self,
        provider: OidcProvider,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_challenge: str,
    ) -> str:
        """Where to send the browser (discovering the provider's endpoints if need be)."""
        ...

    async def identify(
        self,
        provider: OidcProvider,
        *,
        redirect_uri: str,
        code: str,
        code_verifier: str,
        nonce: str,
        issuer: str | None,
    ) -> ProviderIdentity:
        """Exchange the code and validate the ID token; `issuer` is the callback's `iss`
        parameter (RFC 9207), when it had one. Raises InvalidIdToken, ProviderRefused or
        ProviderUnavailable."""
        ...


@dataclass(frozen=True)
class OidcSignInResult:
    user: User
    provider: OidcProvider
    # Whether the person must still pass Mailmark's own second factor.
    totp_required: bool


def code_challenge(verifier: str) -> str:
    """RFC 7636 §4.2: S256 = BASE64URL(SHA256(ASCII(code_verifier))), without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_browser_binding() -> str:
    """A value for the cookie that ties sign-ins to the browser that started them."""
    return secrets.token_urlsafe(32)


class OidcSignIn:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        client: OidcClient,
        providers: Sequence[OidcProvider],
        *,
        signup_open: bool,
        public_url: str,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._client = client
        self._providers = {provider.id: provider for provider in providers}
        self._signup_open = signup_open
        self._public_url = public_url.rstrip("/")

    @property
    def providers(self) -> list[OidcProvider]:
        return list(self._providers.values())

    def provider(self, provider_id: str) -> OidcProvider:
        provider = self._providers.get(provider_id)
        if provider is None:
            raise NotFound(f"No sign-in provider {provider_id[:32]!r} is configured here.")
        return provider

    def redirect_uri(self, provider: OidcProvider) -> str:
        """The callback URL registered with the provider (built from MAILMARK_PUBLIC_URL)."""
        return f"{self._public_url}/api/auth/oidc/{provider.id}/callback"

    async def start(self, provider_id: str, browser: str) -> str:
        """Record a new sign-in for this browser; the provider URL to send it to."""
        provider = self.provider(provider_id)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        # RFC 7636 §4.1: 43 to 128 characters of [A-Za-z0-9-._~]; 64 here.
        verifier = secrets.token_urlsafe(48)
        url = await self._client.authorization_url(
            provider,
            redirect_uri=self.redirect_uri(provider),
            state=state,
            nonce=nonce,
            code_challenge=code_challenge(verifier),
        )
        now = self._clock.now()
        async with self._uow() as uow:
            await uow.oidc_logins.delete_expired(now)
            await uow.oidc_logins.add(
                OidcLogin(
                    state_hash=token_hash(state),
                    browser_hash=token_hash(browser),
                    provider=provider.id,
                    nonce=nonce,
                    code_verifier=verifier,
                    created_at=now,
                    expires_at=now + LOGIN_LIFETIME,
                )
            )
            await uow.commit()
        return url

    async def finish(
        self,
        provider_id: str,
        browser: str | None,
        *,
        state: str | None,
        code: str | None,
        error: str | None,
        issuer: str | None,
    ) -> OidcSignInResult:
        """The person the provider's answer names, by the rules above."""
        provider = self.provider(provider_id)
        login = await self._take_login(provider, browser, state)
        if error is not None or not code:
            # RFC 6749 §4.1.2.1: the provider says why (access_denied when consent was refused).
            reason = (error or "no code")[:MAX_ERROR_LENGTH]
            raise ProviderRefused(f"{provider.name} did not sign you in ({reason}).")
        identity = await self._client.identify(
            provider,
            redirect_uri=self.redirect_uri(provider),
            code=code,
            code_verifier=login.code_verifier,
            nonce=login.nonce,
            issuer=issuer,
        )
        user = await self._user_for(provider, identity)
        # The provider proved who the person is, not that they hold the second factor they set
        # up here; only a provider trusted to require its own skips it.
        totp_required = user.totp_enabled_at is not None and not provider.trust_mfa
        return OidcSignInResult(user, provider, totp_required)

    async def _take_login(
        self, provider: OidcProvider, browser: str | None, state: str | None
    ) -> OidcLogin:
        stale = InvalidSignInState(
            f"This sign-in with {provider.name} was not started in this browser or has expired; "
            "start it again."
        )
        if not state or not browser or len(state) > 512 or len(browser) > 512:
            raise stale
        async with self._uow() as uow:
            # Only this browser's row is taken: someone else replaying the state removes nothing.
            login = await uow.oidc_logins.take(token_hash(state), token_hash(browser))
            await uow.commit()
        if (
            login is None
            or not hmac.compare_digest(login.provider, provider.id)
            or login.expires_at <= self._clock.now()
        ):
            raise stale
        return login

    async def _user_for(self, provider: OidcProvider, identity: ProviderIdentity) -> User:
        now = self._clock.now()
        subject = identity.subject
        async with self._uow() as uow:
            user_id = await uow.oidc_identities.user_id_for(provider.id, subject)
            if user_id is not None:
                user = await uow.users.get(user_id)
                if user is not None:
                    await uow.oidc_identities.touch(provider.id, subject, now)
                    await uow.commit()
                    return user
            email = _email_of(provider, identity)
            user = await uow.users.get_by_email(email)
            if user is not None:
                assert user.id is not None
                if await uow.oidc_identities.subject_of(provider.id, user.id) is not None:
                    # Another account at the provider had this email before (providers recycle
                    # addresses): the newcomer does not inherit the user.
                    raise SignInRefused(
                        f"The Mailmark user {email} signs in with another {provider.name} account."
                    )
                await uow.oidc_identities.link(provider.id, subject, user.id, now)
                await uow.commit()
                return user
            if not self._signup_open:
                raise SignupClosed(
                    f"No Mailmark user has the email {email}; ask your administrator for an "
                    "invitation."
                )
            user = await self._add_trial_owner(uow, email, identity.name, now)
            assert user.id is not None
            await uow.oidc_identities.link(provider.id, subject, user.id, now)
            await uow.commit()
        return user

    async def _add_trial_owner(
        self, uow: UnitOfWork, email: str, name: str | None, now: datetime
    ) -> User:
        """A new account on the 7-day trial, named after the person, with them as its owner.
        They have no password here (until they set one by a password reset)."""
        base = account_name_for(email, name)
        account_name = base
        for number in range(2, 10):
            if await uow.accounts.get_by_name(account_name) is None:
                break
            account_name = f"{base[:60]} {number}"
        else:
            account_name = f"{base[:54]} {secrets.token_hex(4)}"
        person = "".join(c for c in name or "" if c.isprintable()).strip()[:MAX_NAME_LENGTH]
        _, user = await add_account_with_owner(
            uow,
            new_account(account_name, None, now),
            User(0, email, NO_PASSWORD, Role.OWNER, now, name=person),
        )
        return user


def account_name_for(email: str, name: str | None) -> str:
    """An account name (1-63 letters, digits, spaces, . _ -) from the person's name, else from
    their email's local part."""
    for source in (name or "", email.partition("@")[0]):
        cleaned = " ".join(_NOT_IN_ACCOUNT_NAME.sub(" ", source).split())[:63].strip(" ._-")
        if cleaned:
            return cleaned
    return "Account"


def _email_of(provider: OidcProvider, identity: ProviderIdentity) -> str:
    """The identity's email, lowercased, only when the provider vouches for it: an address the
    provider has not verified could be anyone's, and would hand them that person's account."""
    if not identity.email:
        raise EmailNotVerified(
            f"{provider.name} did not share your email address; allow Mailmark to see it and try "
            "again."
        )
    if not identity.email_verified:
        raise EmailNotVerified(
            f"{provider.name} has not verified the email {identity.email}; verify it there first."
        )
    try:
        return check_email(identity.email)
    except InvalidInput:
        raise SignInRefused(
            f"{provider.name} shared an email Mailmark cannot use: {identity.email[:320]!r}."
        ) from None

"""People signing in to the web app: passwords, sessions, first-run setup, two-factor codes.

A session is a random 256-bit token in the browser's cookie; only its SHA-256 is stored, so a
copy of the database signs nobody in. Every request looks its session up afresh (no cached
viewer): a removed member, a demoted admin or an ended session is seen at the very next request.
Sign-in goes through the `LoginThrottle` that IMAP and SMTP use, per client IP and per email.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mailmark.core.access import Role, Viewer
from mailmark.core.accounts import (
    MAX_PASSWORD_LENGTH,
    AccountService,
    add_account_with_owner,
    check_email,
    check_password,
    lookup_email,
    new_account,
)
from mailmark.core.errors import (
    Conflict,
    InvalidCode,
    InvalidCredentials,
    InvalidInput,
    NotFound,
    SignupClosed,
    TooManyAttempts,
    Unauthenticated,
)
from mailmark.core.logins import LoginThrottle, retry_seconds
from mailmark.core.model import OneTimeToken, User, UserSession
from mailmark.core.passwords import Passwords, user_principal
from mailmark.core.ports import Clock, Totp, UnitOfWork, UnitOfWorkFactory
from mailmark.core.system_mail import SystemMail

log = logging.getLogger(__name__)

SESSION_IDLE_LIFETIME = timedelta(days=14)
SESSION_LIFETIME = timedelta(days=30)
PENDING_TOTP_LIFETIME = timedelta(minutes=5)
# last_seen_at is written at most this often per session, not on every request.
SESSION_TOUCH_INTERVAL = timedelta(minutes=1)
SETUP_LINK_LIFETIME = timedelta(hours=24)
PASSWORD_RESET_LIFETIME = timedelta(hours=1)
# Reset emails one client may ask for within the hour, and three times as many to one address
# from all clients together: the reset form cannot be used to flood someone's inbox.
MAX_RESET_EMAILS = 5
MAX_TOKEN_LENGTH = 100
MAX_NAME_LENGTH = 200
MAX_USER_AGENT_LENGTH = 500
RECOVERY_CODE_COUNT = 10
TOTP_ISSUER = "Mailmark"
# Hashed when the email is unknown, so an unknown email costs the same time as a wrong password.
_DUMMY_PASSWORD = "mailmark-dummy-password"
_TOO_MANY = "Too many failed sign-ins; try again in {seconds} seconds."
_INVALID_CREDENTIALS = "Invalid email or password."


def new_token() -> str:
    """A random 256-bit secret, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored of a secret token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token_for(session_token: str) -> str:
    """The CSRF token bound to a session: derived from its secret, so it needs no storage, is
    new with every session, and cannot be guessed without the session cookie itself."""
    digest = hmac.new(session_token.encode(), b"mailmark csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def check_name(name: str) -> str:
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInput(
            f"A name is at most {MAX_NAME_LENGTH} characters, without control characters.",
            field="name",
        )
    return name


@dataclass(frozen=True)
class SignedIn:
    """A new session: `token` goes into the cookie, `csrf_token` to the page."""

    token: str
    viewer: Viewer

    @property
    def csrf_token(self) -> str:
        return csrf_token_for(self.token)


@dataclass(frozen=True)
class TotpPending:
    """The password was right; the second factor is due within minutes, on this token."""

    token: str


@dataclass(frozen=True)
class SessionInfo:
    id: int
    current: bool
    created_at: datetime
    last_seen_at: datetime
    ip: str
    user_agent: str


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    otpauth_uri: str


def viewer_of(user: User, account_name: str, session_id: int) -> Viewer:
    assert user.id is not None
    return Viewer(
        user_id=user.id,
        account_id=user.account_id,
        account_name=account_name,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        session_id=session_id,
        totp_enabled=user.totp_enabled_at is not None,
    )


def _client(ip: str, user_agent: str) -> tuple[str, str]:
    return ip[:45], user_agent[:MAX_USER_AGENT_LENGTH]


async def add_session(
    uow: UnitOfWork, user: User, account_name: str, ip: str, user_agent: str, now: datetime
) -> SignedIn:
    """A new signed-in session for the user, in the caller's transaction."""
    assert user.id is not None
    token = new_token()
    ip, user_agent = _client(ip, user_agent)
    session = await uow.sessions.add(
        UserSession(user.id, token_hash(token), now, now, now + SESSION_LIFETIME, ip, user_agent)
    )
    assert session.id is not None
    return SignedIn(token, viewer_of(user, account_name, session.id))


async def add_pending_totp_session(
    uow: UnitOfWork, user: User, ip: str, user_agent: str, now: datetime
) -> TotpPending:
    """A sign-in whose second factor is still due (within minutes), in the caller's transaction."""
    assert user.id is not None
    token = new_token()
    ip, user_agent = _client(ip, user_agent)
    await uow.sessions.add(
        UserSession(
            user.id,
            token_hash(token),
            now,
            now,
            now + PENDING_TOTP_LIFETIME,
            ip,
            user_agent,
            pending_totp=True,
        )
    )
    return TotpPending(token)


class IdentityService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        passwords: Passwords,
        throttle: LoginThrottle,
        totp: Totp,
        *,
        accounts: AccountService,
        mail: SystemMail,
        public_url: str,
        signup_open: bool = False,
    ) -> None:
        self._uow = uow
        self._accounts = accounts
        self.signup_open = signup_open
        self._clock = clock
        self._passwords = passwords
        self._throttle = throttle
        self._totp = totp
        self._mail = mail
        self._public_url = public_url.rstrip("/")
        self._reset_requests = LoginThrottle(
            clock, max_failures=MAX_RESET_EMAILS, window_seconds=3600
        )
        self._dummy_hash: str | None = None

    # --- first run -----------------------------------------------------------------------------

    async def setup_required(self) -> bool:
        """Whether the installation still has no owner (first-run setup is due)."""
        async with self._uow(read_only=True) as uow:
            return not await uow.users.any_owner()

    async def issue_setup_link(self) -> str:
        """A fresh single-use setup token (valid 24 hours); earlier ones stop working."""
        now = self._clock.now()
        token = new_token()
        async with self._uow() as uow:
            if await uow.users.any_owner():
                raise Conflict("This installation has an owner already; sign in instead.")
            await uow.one_time_tokens.spend_unused("setup", now)
            await uow.one_time_tokens.add(
                OneTimeToken("setup", token_hash(token), now, now + SETUP_LINK_LIFETIME)
            )
            await uow.commit()
        return token

    async def complete_setup(
        self,
        token: str,
        *,
        account_name: str,
        name: str,
        email: str,
        password: str,
        ip: str,
        user_agent: str,
    ) -> SignedIn:
        """Create the first account (active, unlimited: the installation is its owner's) and its
        owner, spend the setup token and sign the owner in, in one transaction."""
        now = self._clock.now()
        account = new_account(account_name, "unlimited", now)
        owner_email = check_email(email)
        owner_name = check_name(name)
        check_password(password)
        password_hash = await self._passwords.hash(password)
        async with self._uow() as uow:
            found = await self._live_token(uow, "setup", token, now)
            if found is None or await uow.users.any_owner():
                raise InvalidInput(
                    "This setup link is invalid, expired or used already; run "
                    "`mailmark setup-link` for a new one.",
                    field="token",
                )
            assert found.id is not None
            account, owner = await add_account_with_owner(
                uow, account, User(0, owner_email, password_hash, Role.OWNER, now, name=owner_name)
            )
            if not await uow.one_time_tokens.use(found.id, now):
                raise InvalidInput("This setup link was used already.", field="token")
            signed_in = await add_session(uow, owner, account.name, ip, user_agent, now)
            await uow.commit()
        return signed_in

    async def _live_token(
        self, uow: UnitOfWork, purpose: str, token: str, now: datetime
    ) -> OneTimeToken | None:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        found = await uow.one_time_tokens.find(purpose, token_hash(token))
        if found is None or found.used_at is not None or found.expires_at <= now:
            return None
        return found

    async def sign_up(
        self,
        *,
        account_name: str,
        name: str,
        email: str,
        password: str,
        ip: str,
        user_agent: str,
    ) -> SignedIn:
        """A new account on the 7-day trial with this person as its owner, signed in; only
        where sign-up is open (SignupClosed otherwise: invitations only)."""
        if not self.signup_open:
            raise SignupClosed(
                "Sign-up is closed on this server; ask an account's owner for an invitation."
            )
        _, owner = await self._accounts.create_with_owner(
            account_name, owner_email=email, password=password, owner_name=check_name(name)
        )
        return await self.start_session(owner, ip=ip, user_agent=user_agent)

    # --- signing in ----------------------------------------------------------------------------

    async def sign_in(
        self,
        email: str,
        password: str,
        *,
        ip: str,
        user_agent: str,
        previous_token: str | None = None,
    ) -> SignedIn | TotpPending:
        """A new session for the right email and password (the previous one, if any, ends:
        the session id always changes at sign-in), or a pending one when a TOTP code is due.

        InvalidCredentials for a wrong email or password, without saying which;
        TooManyAttempts (with `retry_after`) past the throttle's limits."""
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidCredentials(_INVALID_CREDENTIALS)
        user = await self._check_password(email.strip().lower()[:320], password, ip)
        now = self._clock.now()
        async with self._uow() as uow:
            account = await uow.accounts.get(user.account_id)
            assert account is not None
            if previous_token:
                await self._end(uow, previous_token)
            await uow.sessions.delete_expired(now, now - SESSION_IDLE_LIFETIME)
            if user.totp_enabled_at is not None:
                pending = await add_pending_totp_session(uow, user, ip, user_agent, now)
                await uow.commit()
                return pending
            signed_in = await add_session(uow, user, account.name, ip, user_agent, now)
            await uow.commit()
        return signed_in

    async def _check_password(self, email: str, password: str, ip: str) -> User:
        """The user whose password this is, through the throttle (per IP and per email)."""
        await self._reserve(ip, email)
        failed = True
        try:
            user = await self.find_user_by_email(email)
            if user is None or user.id is None:
                await self._passwords.verify(await self._dummy(), password)
                raise InvalidCredentials(_INVALID_CREDENTIALS)
            check = await self._passwords.check(
                user_principal(user.id), user.password_hash, password
            )
            if not check.valid:
                raise InvalidCredentials(_INVALID_CREDENTIALS)
            failed = False
            if check.new_hash is not None:
                async with self._uow() as uow:
                    await uow.users.replace_password_hash(
                        user.id, user.password_hash, check.new_hash
                    )
                    await uow.commit()
            return user
        finally:
            await self._throttle.settle(ip, email, failed=failed)

    async def _reserve(self, ip: str, target: str) -> None:
        wait = await self._throttle.reserve_counted(ip, target)
        if wait is not None:
            raise TooManyAttempts(_TOO_MANY.format(seconds=retry_seconds(wait)), retry_after=wait)

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._passwords.hash(_DUMMY_PASSWORD)
        return self._dummy_hash

    async def complete_totp(
        self, pending_token: str, code: str, *, ip: str, user_agent: str
    ) -> SignedIn:
        """Finish a sign-in that waits for its second factor: a 6-digit TOTP code, or one of the
        user's recovery codes (spent by this). The pending session is replaced by a new one."""
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            found = await self._find(uow, pending_token)
        if found is None or not found[0].pending_totp or found[0].expires_at <= now:
            raise Unauthenticated("Your sign-in expired; sign in again.")
        session, user, account_name = found
        assert user.id is not None and session.id is not None
        await self._reserve(ip, user.email)
        failed = True
        try:
            async with self._uow() as uow:
                if not await self._second_factor(uow, user, code, now):
                    raise InvalidCode("That code is not right; try the current one.", field="code")
                failed = False
                await uow.sessions.delete(session.id)
                signed_in = await add_session(uow, user, account_name, ip, user_agent, now)
                await uow.commit()
            return signed_in
        finally:
            await self._throttle.settle(ip, user.email, failed=failed)

    async def _second_factor(self, uow: UnitOfWork, user: User, code: str, now: datetime) -> bool:
        assert user.id is not None
        code = code.strip().replace(" ", "")
        if user.totp_secret is None or not code or len(code) > 64:
            return False
        if code.isdigit() and len(code) == 6:
            step = self._totp.matching_step(user.totp_secret, code, now)
            # RFC 6238 §5.2: a code is accepted once, even within its time window.
            return step is not None and await uow.users.use_totp_step(user.id, step)
        return await uow.recovery_codes.use(user.id, token_hash(_normal_recovery(code)), now)

    async def start_session(
        self, user: User, *, ip: str, user_agent: str, previous_token: str | None = None
    ) -> SignedIn:
        """Sign in a user whose identity was proven elsewhere (an OpenID Connect provider, an
        accepted invitation): a new session, the previous one (if any) ended."""
        now = self._clock.now()
        async with self._uow() as uow:
            account = await uow.accounts.get(user.account_id)
            if account is None:
                raise NotFound("No such account.")
            if previous_token:
                await self._end(uow, previous_token)
            signed_in = await add_session(uow, user, account.name, ip, user_agent, now)
            await uow.commit()
        return signed_in

    async def start_pending_totp(
        self, user: User, *, ip: str, user_agent: str, previous_token: str | None = None
    ) -> TotpPending:
        """For a user with two-factor on whose identity was proven elsewhere (an OpenID Connect
        provider): the code is then due at /api/auth/totp, as after a right password."""
        now = self._clock.now()
        async with self._uow() as uow:
            if previous_token:
                await self._end(uow, previous_token)
            pending = await add_pending_totp_session(uow, user, ip, user_agent, now)
            await uow.commit()
        return pending

    async def find_user_by_email(self, email: str) -> User | None:
        """The user with this email (any case), or None."""
        found = lookup_email(email)
        if found is None:
            return None
        async with self._uow(read_only=True) as uow:
            return await uow.users.get_by_email(found)

    # --- sessions ------------------------------------------------------------------------------

    async def authenticate(self, token: str | None) -> Viewer | None:
        """The viewer of a live session token, as the database says now; None when the token is
        unknown, ended, expired or still waiting for its second factor."""
        if not token:
            return None
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            found = await self._find(uow, token)
        if found is None:
            return None
        session, user, account_name = found
        assert session.id is not None
        if session.pending_totp:
            return None
        if session.expires_at <= now or session.last_seen_at + SESSION_IDLE_LIFETIME <= now:
            async with self._uow() as uow:
                await uow.sessions.delete(session.id)
                await uow.commit()
            return None
        if now - session.last_seen_at >= SESSION_TOUCH_INTERVAL:
            async with self._uow() as uow:
                await uow.sessions.touch(session.id, now)
                await uow.commit()
        return viewer_of(user, account_name, session.id)

    async def _find(self, uow: UnitOfWork, token: str) -> tuple[UserSession, User, str] | None:
        if len(token) > MAX_TOKEN_LENGTH:
            return None
        return await uow.sessions.find(token_hash(token))

    async def sign_out(self, token: str | None) -> None:
        if not token:
            return
        async with self._uow() as uow:
            await self._end(uow, token)
            await uow.commit()

    async def _end(self, uow: UnitOfWork, token: str) -> None:
        found = await self._find(uow, token)
        if found is not None and found[0].id is not None:
            await uow.sessions.delete(found[0].id)

    async def sessions(self, viewer: Viewer) -> list[SessionInfo]:
        """The viewer's signed-in browsers, most recently used first."""
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            found = await uow.sessions.list_for_user(viewer.user_id)
        return [
            SessionInfo(
                s.id, s.id == viewer.session_id, s.created_at, s.last_seen_at, s.ip, s.user_agent
            )
            for s in found
            if s.id is not None
            and not s.pending_totp
            and s.expires_at > now
            and s.last_seen_at + SESSION_IDLE_LIFETIME > now
        ]

    async def revoke_session(self, viewer: Viewer, session_id: int) -> None:
        """End one of the viewer's own sessions (another person's is NotFound)."""
        async with self._uow() as uow:
            session = await uow.sessions.get(session_id)
            if session is None or session.user_id != viewer.user_id:
                raise NotFound("No such session.")
            await uow.sessions.delete(session_id)
            await uow.commit()

    # --- password reset -----------------------------------------------------------------------

    async def request_password_reset(self, email: str, *, ip: str) -> None:
        """Email a single-use reset link (valid an hour) when a user has this email; say nothing
        either way (no way to learn who has an account). Earlier links stop working."""
        found = lookup_email(email)
        if found is None:
            return
        email = found
        if self._reset_requests.reserve(ip, email) is not None:
            return  # enough emails to that address from this client for now
        self._reset_requests.finish(ip, email, failed=True)
        now = self._clock.now()
        token = new_token()
        async with self._uow() as uow:
            user = await uow.users.get_by_email(email)
            if user is None or user.id is None:
                return
            await uow.one_time_tokens.spend_unused("password_reset", now, user_id=user.id)
            await uow.one_time_tokens.add(
                OneTimeToken(
                    "password_reset",
                    token_hash(token),
                    now,
                    now + PASSWORD_RESET_LIFETIME,
                    user_id=user.id,
                )
            )
            await uow.commit()
        link = f"{self._public_url}/reset-password?token={token}"
        try:
            await self._mail.send(
                user.email,
                "Reset your Mailmark password",
                "Someone, hopefully you, asked to reset the password of your Mailmark user "
                f"{user.email}.\n\nTo choose a new password, open this link within an hour:\n\n"
                f"{link}\n\nIf you did not ask for this, ignore this email: your password stays "
                "as it is.\n",
            )
        except Exception:
            # Answered like any other request all the same: the answer must not tell who exists.
            log.exception("could not queue the password reset email to %s", user.email)

    async def reset_password(self, token: str, password: str) -> None:
        """Set a new password with a reset link's token (which is spent); every session of
        the user ends."""
        check_password(password)
        password_hash = await self._passwords.hash(password)
        now = self._clock.now()
        async with self._uow() as uow:
            found = await self._live_token(uow, "password_reset", token, now)
            if found is None or found.id is None or found.user_id is None:
                raise InvalidInput(
                    "This reset link is invalid, expired or used already; ask for a new one.",
                    field="token",
                )
            if not await uow.one_time_tokens.use(found.id, now):
                raise InvalidInput("This reset link was used already.", field="token")
            await uow.users.set_password(found.user_id, password_hash, now)
            await uow.sessions.delete_for_user(found.user_id)
            await uow.commit()
        self._passwords.forget(user_principal(found.user_id))

    # --- the signed-in user's own settings -----------------------------------------------------

    async def rename(self, viewer: Viewer, name: str) -> Viewer:
        name = check_name(name)
        async with self._uow() as uow:
            await uow.users.set_name(viewer.user_id, name)
            await uow.commit()
        return replace(viewer, name=name)

    async def change_password(
        self, viewer: Viewer, current_password: str, new_password: str, *, ip: str
    ) -> None:
        """Replace the viewer's password after checking the current one (throttled as sign-in
        is); every other session of theirs ends."""
        check_password(new_password)
        if len(current_password) > MAX_PASSWORD_LENGTH:
            raise InvalidCredentials("The current password is not right.", field="currentPassword")
        await self._verify_own_password(viewer, current_password, ip, field="currentPassword")
        password_hash = await self._passwords.hash(new_password)
        async with self._uow() as uow:
            await uow.users.set_password(viewer.user_id, password_hash, self._clock.now())
            await uow.sessions.delete_for_user(viewer.user_id, keep=viewer.session_id)
            await uow.commit()
        self._passwords.forget(user_principal(viewer.user_id))

    async def _verify_own_password(
        self, viewer: Viewer, password: str, ip: str, *, field: str
    ) -> None:
        await self._reserve(ip, viewer.email)
        failed = True
        try:
            async with self._uow(read_only=True) as uow:
                user = await uow.users.get(viewer.user_id)
            if user is None:
                raise Unauthenticated("Sign in to continue.")
            if not await self._passwords.verify(user.password_hash, password):
                raise InvalidCredentials("The password is not right.", field=field)
            failed = False
        finally:
            await self._throttle.settle(ip, viewer.email, failed=failed)

    # --- two-factor ----------------------------------------------------------------------------

    async def begin_totp(self, viewer: Viewer) -> TotpSetup:
        """A new secret to scan; it takes effect only once `enable_totp` sees a code made with
        it (until then sign-in is unchanged)."""
        if viewer.totp_enabled:
            raise Conflict("Two-factor sign-in is on already; turn it off first to change it.")
        secret = self._totp.new_secret()
        async with self._uow() as uow:
            await uow.users.set_totp(viewer.user_id, secret, None)
            await uow.commit()
        return TotpSetup(secret, self._totp.provisioning_uri(secret, viewer.email, TOTP_ISSUER))

    async def enable_totp(self, viewer: Viewer, code: str, *, ip: str) -> list[str]:
        """Turn two-factor sign-in on with a code from the app; the 10 recovery codes, shown
        once (only their hashes are kept)."""
        now = self._clock.now()
        await self._reserve(ip, viewer.email)
        failed = True
        try:
            async with self._uow() as uow:
                user = await uow.users.get(viewer.user_id)
                if user is None or user.totp_secret is None:
                    raise InvalidInput("Start the two-factor setup first.", field="code")
                if user.totp_enabled_at is not None:
                    raise Conflict("Two-factor sign-in is on already.")
                code = code.strip().replace(" ", "")
                step = (
                    self._totp.matching_step(user.totp_secret, code, now)
                    if code.isdigit() and len(code) == 6
                    else None
                )
                if step is None:
                    raise InvalidCode(
                        "That code is not right; enter the one your app shows now.", field="code"
                    )
                failed = False
                codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
                await uow.users.set_totp(viewer.user_id, user.totp_secret, now)
                await uow.users.use_totp_step(viewer.user_id, step)
                await uow.recovery_codes.replace(viewer.user_id, [token_hash(c) for c in codes])
                await uow.commit()
            return codes
        finally:
            await self._throttle.settle(ip, viewer.email, failed=failed)

    async def disable_totp(self, viewer: Viewer, password: str, *, ip: str) -> None:
        """Turn two-factor sign-in off, after the password; the recovery codes go too."""
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidCredentials("The password is not right.", field="password")
        await self._verify_own_password(viewer, password, ip, field="password")
        async with self._uow() as uow:
            await uow.users.set_totp(viewer.user_id, None, None)
            await uow.recovery_codes.replace(viewer.user_id, [])
            await uow.commit()


_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def _new_recovery_code() -> str:
    """`xxxxx-xxxxx`: 10 characters of a 31-letter alphabet without look-alikes (~49 bits)."""
    letters = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{letters[:5]}-{letters[5:]}"


def _normal_recovery(code: str) -> str:
    """A recovery code as stored: lower case, with its dash, whatever way it was typed."""
    letters = code.strip().lower().replace("-", "").replace(" ", "")
    return f"{letters[:5]}-{letters[5:]}"

"""Typed domain errors. Each carries a message a person understands; adapters map them to codes once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class MailmarkError(Exception):
    """Base of every error `core` raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The request field at fault, when an adapter knows it (the API names it in its error).
        self.field = field


class InvalidInput(MailmarkError):
    """The caller sent something malformed (an address, a name, a header)."""


class HeaderInjection(InvalidInput):
    """A value bound for a header field holds CR, LF or NUL (it could add header fields)."""


class NotFound(MailmarkError):
    """The thing does not exist, or is not visible to this caller."""


class Conflict(MailmarkError):
    """The thing already exists."""


class Forbidden(MailmarkError):
    """The caller may not do this (e.g. send as a mailbox it does not own)."""


class QuotaExceeded(MailmarkError):
    """A plan limit is reached; the message is the product's exact text."""


class AccountPaused(MailmarkError):
    """The account's trial ended and no plan is active."""


class RelayDenied(MailmarkError):
    """A recipient is not a domain hosted here, or uses a source-routing trick."""


class UnknownMailbox(NotFound):
    """A recipient is in a hosted domain but no such mailbox exists."""


class MessageRejected(MailmarkError):
    """The message content is unacceptable (bare CR/LF, header bombs, too large)."""


class MessageTooLarge(MessageRejected):
    """The message or its header section is over a size limit."""


class MailLoop(MessageRejected):
    """The message has passed through too many hops (RFC 5321 §6.3)."""


class PolicyRejected(MessageRejected):
    """The sender's own published policy (DMARC p=reject) asks us to refuse the message."""


class ReportRefused(MessageRejected):
    """A message sent to a DMARC or TLS report address holds no report we can read (missing,
    malformed, or over a bound); the message says why."""


class SpamRefused(MessageRejected):
    """The spam filter's verdict refuses the message; the message gives the score."""


class ClientBlocklisted(MessageRejected):
    """The sending client's address is on a DNS blocklist; the message names the list."""


class SpamDeferred(MailmarkError):
    """The spam filter asks the sender to try again later (greylisting)."""


class SpamFilterUnavailable(MailmarkError):
    """The spam filter could not be asked, and the settings say to defer rather than accept."""


class AuthenticationFailed(MailmarkError):
    """A login's address or password is wrong (never says which)."""


class TooManyAttempts(MailmarkError):
    """Too many failed logins from one client or against one account; the message says when to
    retry, and `retry_after` in how many seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidCredentials(AuthenticationFailed):
    """A web sign-in's email or password is wrong (never says which)."""


class Unauthenticated(MailmarkError):
    """The request needs a signed-in session and has none (or it ended)."""


class InvalidCode(InvalidInput):
    """A two-factor code (TOTP or recovery code) is wrong or expired."""


class CsrfFailed(Forbidden):
    """A state-changing request lacks the page's CSRF token, or comes from another site."""


class SignupClosed(Forbidden):
    """This installation takes new accounts by invitation only."""


class Suppressed(MailmarkError):
    """A recipient is on the sending domain's suppression list (earlier hard bounce or complaint)."""


class RateLimited(MailmarkError):
    """Too many requests for now; `retry_after` says how many seconds until the next is accepted."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageUnavailable(MailmarkError):
    """The database is locked by someone else, read-only, or refusing connections: nothing was
    stored, and the same request may succeed in `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageFull(StorageUnavailable):
    """The disk holding the database or the blobs is full: nothing was stored."""


class TargetRefused(InvalidInput):
    """A webhook URL points (or now resolves) at an address webhooks may not reach: loopback,
    private, link-local or otherwise internal."""


class IdempotencyKeyReused(MailmarkError):
    """An Idempotency-Key already answered a different request."""


class ProviderUnavailable(MailmarkError):
    """An OpenID Connect provider could not be reached, or answered something unusable."""


class PaymentProviderUnavailable(MailmarkError):
    """The payment provider could not be reached, or refused or garbled a call."""


class SignInRefused(Forbidden):
    """A sign-in through an OpenID Connect provider is refused; subclasses say why."""


class InvalidSignInState(SignInRefused):
    """The provider's answer belongs to no sign-in this browser started (or one too old)."""


class ProviderRefused(SignInRefused):
    """The provider itself did not sign the person in (denied consent, refused the code)."""


class InvalidIdToken(SignInRefused):
    """The provider's ID token fails a check: signature, issuer, audience, expiry or nonce."""


class EmailNotVerified(SignInRefused):
    """The provider does not vouch for the email address, so it cannot name a user here."""


@contextmanager
def naming(field: str) -> Iterator[None]:
    """Attribute a core error raised inside to the request field `field` (unless it names one)."""
    try:
        yield
    except MailmarkError as error:
        if error.field is None:
            error.field = field
        raise

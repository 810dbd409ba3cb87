"""Typed errors: every non-2xx answer of the API becomes the subclass matching its status.

The API answers errors as ``{"error": {"code": "...", "message": "...", "field": "..."}}``.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any


class MailmarkError(Exception):
    """An error answered by the API (or, for `APIConnectionError`, no answer at all)."""

    def __init__(
        self, message: str, *, status: int, code: str, field: str | None = None, body: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        #: The HTTP status; 0 when no response arrived.
        self.status = status
        #: A stable machine-readable code, e.g. ``invalid_input``, ``not_found``.
        self.code = code
        #: The request field the error is about, when the server named one.
        self.field = field
        #: The decoded response body, as the server sent it.
        self.body = body

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, message={self.message!r})"


class AuthenticationError(MailmarkError):
    """401: the API key is missing, malformed, unknown or revoked."""


class PermissionDeniedError(MailmarkError):
    """403: the account may not do this now (paused account, plan quota reached)."""


class NotFoundError(MailmarkError):
    """404: nothing with that id or address exists on the API key's domain."""


class ConflictError(MailmarkError):
    """409: it exists already, or an idempotency key was reused with another body."""


class ValidationError(MailmarkError):
    """400, 413 and 422: the request was refused as invalid; `field` names the culprit."""


class RateLimitError(MailmarkError):
    """429: too many requests; wait `retry_after` seconds before the next one."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        field: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, field=field, body=body)
        self.retry_after = retry_after


class ServerError(MailmarkError):
    """5xx: the server failed; the request may be retried later."""


class APIConnectionError(MailmarkError):
    """No HTTP response: the connection failed or timed out (`status` is 0)."""


_BY_STATUS: dict[int, type[MailmarkError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}

_DEFAULT_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    429: "rate_limited",
}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After value: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_from_response(status: int, body: Any, headers: Mapping[str, str]) -> MailmarkError:
    """The typed error for a non-2xx response."""
    default_code = _DEFAULT_CODES.get(status, "server_error" if status >= 500 else "invalid_input")
    code, message, field = default_code, f"HTTP {status}", None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        message = error
    elif isinstance(error, dict):
        code = error["code"] if isinstance(error.get("code"), str) else default_code
        message = error["message"] if isinstance(error.get("message"), str) else message
        field = error["field"] if isinstance(error.get("field"), str) else None
    if status == 429:
        return RateLimitError(
            message,
            status=status,
            code=code,
            field=field,
            body=body,
            retry_after=parse_retry_after(headers.get("retry-after")),
        )
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ValidationError)
    return cls(message, status=status, code=code, field=field, body=body)

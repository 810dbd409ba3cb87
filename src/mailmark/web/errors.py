"""The one error shape of every HTTP answer, and the one mapping of core errors to statuses.

Every error is `{"error": {"code": "...", "message": "...", "field": "..."}}`: `code` is stable
and meant for programs, `message` for people, `field` names the request field at fault (or is
null). Core errors, Litestar's own (validation, unknown route, wrong method) and anything
unexpected all leave through `error_response`; an unexpected one is logged, never shown.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from mailmark.core.errors import (
    AccountPaused,
    AuthenticationFailed,
    Conflict,
    Forbidden,
    HeaderInjection,
    IdempotencyKeyReused,
    InvalidInput,
    MailmarkError,
    MessageRejected,
    MessageTooLarge,
    NotFound,
    PaymentProviderUnavailable,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
    StorageUnavailable,
    Suppressed,
    TargetRefused,
    TooManyAttempts,
    Unauthenticated,
)
from mailmark.core.logins import retry_seconds

log = logging.getLogger(__name__)

# The one place a core error becomes an HTTP status; the most specific class in the MRO wins.
HTTP_STATUS_BY_ERROR: dict[type[MailmarkError], int] = {
    InvalidInput: 400,
    HeaderInjection: 422,
    IdempotencyKeyReused: 422,
    AuthenticationFailed: 401,
    Unauthenticated: 401,
    Forbidden: 403,
    QuotaExceeded: 403,
    AccountPaused: 403,
    NotFound: 404,
    Conflict: 409,
    MessageTooLarge: 413,
    MessageRejected: 422,
    Suppressed: 422,
    TargetRefused: 422,
    RateLimited: 429,
    TooManyAttempts: 429,
    ProviderUnavailable: 502,
    PaymentProviderUnavailable: 502,
    StorageUnavailable: 503,  # and StorageFull: the server's condition, nothing was stored
}
# Codes of Litestar's own errors (routing, body decoding, size limits), by status.
CODE_BY_STATUS = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    429: "rate_limited",
}
_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")
_BODY_FIELD = re.compile(r"at `\$\.([A-Za-z0-9_]+)|required field `([A-Za-z0-9_]+)`")
# msgspec on a body struct that forbids unknown fields; Litestar gives where it is (the object
# holding it, such as `attachments[0]`) as the error's key.
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def error_code(error: MailmarkError) -> str:
    """`invalid_input`, `not_found`, `quota_exceeded`, …: the error class's name in snake case."""
    return _WORD_START.sub("_", type(error).__name__).lower()


def status_of(error: MailmarkError) -> int:
    return next(
        (HTTP_STATUS_BY_ERROR[cls] for cls in type(error).__mro__ if cls in HTTP_STATUS_BY_ERROR),
        400,
    )


def error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Every error in the one shape, with the status its class maps to."""
    if isinstance(exc, MailmarkError):
        headers = {}
        if isinstance(exc, RateLimited | StorageUnavailable):
            headers["Retry-After"] = str(max(1, int(exc.retry_after)))
        elif isinstance(exc, TooManyAttempts) and exc.retry_after is not None:
            headers["Retry-After"] = str(retry_seconds(exc.retry_after))
        return Response(
            error_body(error_code(exc), exc.message, exc.field),
            status_code=status_of(exc),
            headers=headers,
        )
    if isinstance(exc, HTTPException) and exc.status_code < HTTP_500_INTERNAL_SERVER_ERROR:
        message, field = _http_exception_detail(exc)
        unknown = _UNKNOWN_FIELD.search(message) if isinstance(exc, ValidationException) else None
        if unknown is not None:
            # A misspelt field (`scheduled_at` for `scheduledAt`) would otherwise change what
            # the request does without a word: refused like any other unprocessable value.
            name = f"{field}.{unknown[1]}" if field else unknown[1]
            return Response(
                error_body("unknown_field", f"Unknown field {name!r}.", name), status_code=422
            )
        code = CODE_BY_STATUS.get(exc.status_code, f"http_{exc.status_code}")
        return Response(
            error_body(code, message, field), status_code=exc.status_code, headers=exc.headers
        )
    if isinstance(exc, RecursionError):
        # msgspec refuses JSON nested deeper than the interpreter's recursion limit this way,
        # while decoding the body and before any handler runs.
        log.info("refused %s %s: JSON nested too deeply", request.method, request.url.path)
        return Response(
            error_body("invalid_request", "The JSON body is nested too deeply."), status_code=400
        )
    # Litestar only logs exceptions itself in debug mode (and we disable its logging config).
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return Response(
        error_body("internal_error", "Internal server error."),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _http_exception_detail(exc: HTTPException) -> tuple[str, str | None]:
    # Litestar's validation errors put the useful part ("Missing required query parameter
    # 'emailaddress'", the body field at fault) in `extra`, not in `detail`.
    items = [
        item
        for item in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(item, dict) and item.get("message")
    ]
    message = "; ".join(str(item["message"]) for item in items) or exc.detail
    field = next((str(item["key"]) for item in items if item.get("key")), None)
    if isinstance(exc, ValidationException) and field in (None, "data"):
        # The body as a whole is `data`; msgspec names the field inside in its message:
        # "Expected `str`, got `int` - at `$.subject`", "Object missing required field `to`".
        found = _BODY_FIELD.search(message)
        field = (found[1] or found[2]) if found else None
    return message, field

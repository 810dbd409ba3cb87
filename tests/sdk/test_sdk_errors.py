"""The Python SDK's reading of error answers, as a table: what any server or proxy may send."""

from __future__ import annotations

from typing import Any

import pytest
from mailmark_sdk import (
    AuthenticationError,
    ConflictError,
    MailmarkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from mailmark_sdk.errors import error_from_response, parse_retry_after

SHAPED = {"error": {"code": "invalid_input", "message": "Give html or text.", "field": "html"}}


@pytest.mark.parametrize(
    ("status", "body", "cls", "code", "message", "field"),
    [
        (422, SHAPED, ValidationError, "invalid_input", "Give html or text.", "html"),
        (400, {"error": {"code": "bad", "message": "m"}}, ValidationError, "bad", "m", None),
        (413, None, ValidationError, "invalid_input", "HTTP 413", None),
        (
            401,
            {"error": {"message": "Missing key"}},
            AuthenticationError,
            "unauthorized",
            "Missing key",
            None,
        ),
        (
            403,
            {"error": "Monthly email limit reached."},
            PermissionDeniedError,
            "forbidden",
            "Monthly email limit reached.",
            None,
        ),
        (
            404,
            {"error": {"code": "not_found", "message": "No such", "field": 7}},
            NotFoundError,
            "not_found",
            "No such",
            None,
        ),
        (
            409,
            {"error": {"code": "conflict", "message": "Exists"}},
            ConflictError,
            "conflict",
            "Exists",
            None,
        ),
        # A proxy's HTML page in front of the API:
        (502, "<html>Bad Gateway</html>", ServerError, "server_error", "HTTP 502", None),
        (500, [], ServerError, "server_error", "HTTP 500", None),
    ],
)
def test_error_from_response(
    status: int, body: Any, cls: type[MailmarkError], code: str, message: str, field: str | None
) -> None:
    error = error_from_response(status, body, {})
    assert type(error) is cls
    assert (error.status, error.code, error.message, error.field) == (status, code, message, field)
    assert error.body == body
    assert str(error) == message


def test_rate_limit_error_reads_retry_after() -> None:
    error = error_from_response(
        429, {"error": {"code": "rate_limited", "message": "Slow"}}, {"retry-after": "3"}
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 3.0
    assert error_from_response(429, None, {}).retry_after is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 12 ", 12.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-1", None),
        ("Thu, 03 Dec 2026 12:00:30 GMT", 30.0),  # RFC 9110 §10.2.3: an HTTP-date
        ("Thu, 03 Dec 2026 11:59:00 GMT", 0.0),  # already past
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = 1796299200.0  # Thu, 03 Dec 2026 12:00:00 GMT
    assert parse_retry_after(value, now=now) == expected

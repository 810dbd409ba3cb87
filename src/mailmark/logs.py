"""How the process logs: readable lines (the default) or one JSON object per line.

A JSON line holds `timestamp` (UTC, ISO 8601), `level`, `logger`, `message`, the fields the
call passed in `extra` (an HTTP request's route and status, an SMTP transaction's queue id, ...)
and `exception` when there is one.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What every LogRecord has; anything else on a record came from the call's `extra`.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a field of another type (an address, a path) is written as its text.
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: int | str, log_format: Literal["text", "json"] = "text") -> None:
    """A handler on stderr in the chosen format, as `logging.basicConfig` installs it: not when
    the root logger has handlers already (an embedding program's, or a test runner's)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, format=TEXT_FORMAT, handlers=[handler])

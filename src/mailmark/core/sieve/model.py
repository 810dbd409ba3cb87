"""A mailbox's Sieve scripts as stored: several by name, at most one active (RFC 5804 §1.2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SieveScript:
    id: int
    mailbox_id: int
    name: str
    content: str
    active: bool
    revision: int  # grows with every change, so a node's compiled copy knows it is stale
    updated_at: datetime
    last_error: str | None = None  # the last run-time error, shown to the owner
    last_error_at: datetime | None = None


@dataclass(frozen=True)
class ActiveScriptVersion:
    id: int
    revision: int

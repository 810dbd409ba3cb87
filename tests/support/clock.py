"""A clock the test moves by hand, so schedules and expiry are tested without waiting."""

from __future__ import annotations

import datetime


class SettableClock:
    """Stands still until the test sets `current` or calls `advance`."""

    def __init__(self, now: datetime.datetime | None = None) -> None:
        self.current = now or datetime.datetime(2030, 1, 7, 9, 0, tzinfo=datetime.UTC)

    def now(self) -> datetime.datetime:
        return self.current

    def advance(self, delta: datetime.timedelta) -> None:
        self.current += delta


class OffsetClock:
    """The real time moved by `offset`, which the test changes: for expiry checked against
    timestamps another process writes (a token's `exp`)."""

    def __init__(self) -> None:
        self.offset = datetime.timedelta()

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC) + self.offset

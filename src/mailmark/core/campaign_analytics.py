"""What the web app shows of a campaign beyond its counts: activity over time for the charts, one
recipient's timeline, and the recipients' CSV export. Pure functions over what storage read."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from mailmark.core.campaign_records import (
    ActivityHit,
    RecipientEvent,
    RecipientMessage,
    RecipientView,
)
from mailmark.core.contact_csv import csv_line
from mailmark.core.states import EventType

# Activity kinds, in the order the charts draw them.
ACTIVITY_KINDS = ("sent", "opened", "clicked", "replied")
# A chart of more buckets than this is unreadable: longer campaigns are drawn per day.
MAX_HOURLY_BUCKETS = 72
MAX_BUCKETS = 400


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"


@dataclass(frozen=True)
class ActivityPoint:
    start: datetime  # the bucket's first moment, in UTC
    sent: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0


@dataclass(frozen=True)
class Activity:
    bucket: Bucket
    points: list[ActivityPoint]


def _floor(moment: datetime, bucket: Bucket, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    local = local.replace(minute=0, second=0, microsecond=0)
    if bucket is Bucket.DAY:
        local = local.replace(hour=0)
    return local.astimezone(UTC)


def _next(start: datetime, bucket: Bucket, zone: ZoneInfo) -> datetime:
    if bucket is Bucket.HOUR:
        return start + timedelta(hours=1)
    # A day in the campaign's zone: 23 or 25 hours across a DST change.
    local = start.astimezone(zone)
    following = (local.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
    return _floor(following, bucket, zone)


def off_the_hour(zone: ZoneInfo, now: datetime) -> bool:
    """Whether the zone's hours start off UTC's (India's +05:30, Nepal's +05:45, Adelaide's…),
    this year in winter or summer: its hourly buckets then need counts per quarter of an hour."""
    return any(
        (zone.utcoffset(datetime(now.year, month, 1)) or timedelta()) % timedelta(hours=1)
        for month in (1, 7)
    )


def bucket_activity(
    hits: Iterable[ActivityHit], zone: ZoneInfo, bucket: Bucket | None = None
) -> Activity:
    """Counts per hour or per day (in `zone`), every bucket from the first hit's to the last's
    (empty ones included, so a chart's x axis is time), at most the last MAX_BUCKETS. Without `bucket`: hourly while the
    campaign's activity spans at most three days, else daily."""
    moments: dict[str, list[tuple[datetime, int]]] = {kind: [] for kind in ACTIVITY_KINDS}
    for hit in hits:
        if hit.kind in moments:
            moments[hit.kind].append((hit.at, hit.count))
    every = [moment for kind in ACTIVITY_KINDS for moment, _ in moments[kind]]
    if not every:
        return Activity(bucket or Bucket.HOUR, [])
    first, last = min(every), max(every)
    if bucket is None:
        hours = (last - first) / timedelta(hours=1)
        bucket = Bucket.HOUR if hours < MAX_HOURLY_BUCKETS else Bucket.DAY
    end = _floor(last, bucket, zone)
    # At most MAX_BUCKETS, the latest: a long campaign's chart ends with what happened last.
    # Walked from a little before the earliest of them (a day's length varies across DST).
    step = timedelta(hours=1) if bucket is Bucket.HOUR else timedelta(days=1)
    starts = [max(_floor(first, bucket, zone), _floor(end - step * MAX_BUCKETS, bucket, zone))]
    while starts[-1] < end:
        starts.append(_next(starts[-1], bucket, zone))
    starts = starts[-MAX_BUCKETS:]
    index = {start: position for position, start in enumerate(starts)}
    counts = [dict.fromkeys(ACTIVITY_KINDS, 0) for _ in starts]
    for kind in ACTIVITY_KINDS:
        for moment, count in moments[kind]:
            position = index.get(_floor(moment, bucket, zone))
            if position is not None:
                counts[position][kind] += count
    return Activity(
        bucket, [ActivityPoint(start, **count) for start, count in zip(starts, counts, strict=True)]
    )


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    # "sent", "replied", or an event type without its "email." prefix ("delivered", "opened"…)
    kind: str
    stage: int | None
    detail: str = ""
    machine: bool = False


@dataclass(frozen=True)
class RecipientTimeline:
    recipient: RecipientView
    entries: list[TimelineEntry]


def _detail(event: RecipientEvent) -> str:
    payload = event.payload
    if event.type == EventType.CLICKED.value:
        return str(payload.get("url") or "")
    if event.type == EventType.OPENED.value and payload.get("machine"):
        return str(payload.get("machineReason") or "")
    for key in ("reason", "diagnostic", "response", "error"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value[:300]
    return ""


def timeline(
    recipient: RecipientView,
    messages: Sequence[RecipientMessage],
    events: Sequence[RecipientEvent],
) -> RecipientTimeline:
    """Each stage sent and every event of its message, oldest first."""
    stage_of = {m.outbound_id: m.stage for m in messages if m.outbound_id is not None}
    entries = [TimelineEntry(m.sent_at, "sent", m.stage) for m in messages]
    replied_events = False
    for event in events:
        if event.type == EventType.SENT.value:
            continue  # the stage's own "sent" entry says it
        kind = event.type.removeprefix("email.").removeprefix("campaign.")
        replied_events = replied_events or kind == "replied"
        entries.append(
            TimelineEntry(
                event.at,
                kind,
                stage_of.get(event.outbound_id),
                _detail(event),
                bool(event.payload.get("machine")),
            )
        )
    if not replied_events:
        entries += [
            TimelineEntry(m.replied_at, "replied", m.stage)
            for m in messages
            if m.replied_at is not None
        ]
    entries.sort(key=lambda entry: entry.at)
    return RecipientTimeline(recipient, entries)


EXPORT_HEADER = [
    "email",
    "state",
    "stages_sent",
    "next_stage",
    "stop_reason",
    "auto_replies",
    "delivered",
    "opened",
    "clicked",
    "replied",
    "bounced",
    "complained",
    "unsubscribed",
    "updated_at",
]
_EXPORT_EVENTS = (
    EventType.DELIVERED,
    EventType.OPENED,
    EventType.CLICKED,
    EventType.CAMPAIGN_REPLIED,
    EventType.BOUNCED,
    EventType.COMPLAINED,
    EventType.UNSUBSCRIBED,
)


def export_lines(recipients: Sequence[RecipientView], counts: dict[int, dict[str, int]]) -> str:
    """CSV records of recipients, their state and how many of each event their mail drew."""
    lines = []
    for recipient in recipients:
        mine = counts.get(recipient.id, {})
        lines.append(
            csv_line(
                [
                    recipient.email,
                    recipient.state.value,
                    str(recipient.stages_sent),
                    str(recipient.next_stage),
                    recipient.stop_reason,
                    str(recipient.auto_replies),
                    *(str(mine.get(kind.value, 0)) for kind in _EXPORT_EVENTS),
                    recipient.updated_at.isoformat(),
                ]
            )
        )
    return "".join(lines)

"""The campaign charts' time series and a recipient's timeline, as tables of inputs: buckets in
the campaign's zone (across a DST change), empty buckets kept, hourly or daily by the span."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailmark.core.campaign_analytics import MAX_BUCKETS, Bucket, bucket_activity, timeline
from mailmark.core.campaign_records import (
    ActivityHit,
    RecipientEvent,
    RecipientMessage,
    RecipientView,
)
from mailmark.core.sequences import RecipientState

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 12, 7, 9, 15, tzinfo=UTC)


def hits(*pairs: tuple[str, timedelta]) -> list[ActivityHit]:
    return [ActivityHit(kind, T0 + offset) for kind, offset in pairs]


def test_nothing_yet_is_no_points() -> None:
    assert bucket_activity([], PARIS).points == []


def test_hourly_buckets_keep_the_empty_hours_between() -> None:
    activity = bucket_activity(
        hits(
            ("sent", timedelta(0)),
            ("sent", timedelta(minutes=50)),
            ("opened", timedelta(hours=3, minutes=1)),
            ("replied", timedelta(hours=3, minutes=5)),
            ("unknown", timedelta(hours=9)),
        ),
        PARIS,
    )
    assert activity.bucket is Bucket.HOUR
    assert [p.start for p in activity.points] == [
        datetime(2026, 12, 7, 9, tzinfo=UTC),
        datetime(2026, 12, 7, 10, tzinfo=UTC),
        datetime(2026, 12, 7, 11, tzinfo=UTC),
        datetime(2026, 12, 7, 12, tzinfo=UTC),
    ]
    assert [(p.sent, p.opened, p.replied) for p in activity.points] == [
        (1, 0, 0),
        (1, 0, 0),
        (0, 0, 0),
        (0, 1, 1),
    ]


@pytest.mark.parametrize(
    ("span", "bucket"),
    [(timedelta(hours=71), Bucket.HOUR), (timedelta(hours=72), Bucket.DAY)],
)
def test_three_days_or_more_are_drawn_per_day(span: timedelta, bucket: Bucket) -> None:
    activity = bucket_activity(hits(("sent", timedelta(0)), ("clicked", span)), PARIS)
    assert activity.bucket is bucket
    assert sum(p.sent for p in activity.points) == 1
    assert sum(p.clicked for p in activity.points) == 1


def test_days_start_at_local_midnight_across_a_dst_change() -> None:
    # Paris leaves summer time on 25 October 2026: that day has 25 hours.
    first = datetime(2026, 10, 24, 21, 30, tzinfo=UTC)  # 23:30 on the 24th in Paris
    activity = bucket_activity(
        [ActivityHit("sent", first), ActivityHit("sent", first + timedelta(hours=26))],
        PARIS,
        Bucket.DAY,
    )
    starts = [p.start.astimezone(PARIS) for p in activity.points]
    assert [(s.day, s.hour) for s in starts] == [(24, 0), (25, 0), (26, 0)]
    assert activity.points[2].start - activity.points[1].start == timedelta(hours=25)
    assert [p.sent for p in activity.points] == [1, 0, 1]


def test_a_timeline_merges_stages_and_events_in_order() -> None:
    recipient = RecipientView(
        id=1,
        contact_id=None,
        email="ann@remote.test",
        state=RecipientState.REPLIED,
        stages_sent=1,
        next_stage=2,
        next_send_at=T0,
        stop_reason="Replied to stage 1.",
        auto_replies=0,
        updated_at=T0,
    )
    messages = [RecipientMessage(1, 0, 7, "<a@x>", T0, T0 + timedelta(hours=2))]
    events = [
        RecipientEvent("email.sent", T0, 7, {}),
        RecipientEvent("email.delivered", T0 + timedelta(minutes=1), 7, {}),
        RecipientEvent(
            "email.opened",
            T0 + timedelta(minutes=2),
            7,
            {"machine": True, "machineReason": "Apple Mail Privacy Protection"},
        ),
        RecipientEvent(
            "email.clicked", T0 + timedelta(hours=1), 7, {"url": "https://shop.example/"}
        ),
    ]
    entries = timeline(recipient, messages, events).entries
    assert [(e.kind, e.stage, e.machine, e.detail) for e in entries] == [
        ("sent", 1, False, ""),
        ("delivered", 1, False, ""),
        ("opened", 1, True, "Apple Mail Privacy Protection"),
        ("clicked", 1, False, "https://shop.example/"),
        # No campaign.replied event (replies before events were written): the row's time.
        ("replied", 1, False, ""),
    ]


def test_hours_counted_by_storage_are_summed_into_days() -> None:
    hour = datetime(2026, 12, 7, 22, tzinfo=UTC)  # 23:00 in Paris
    activity = bucket_activity(
        [
            ActivityHit("sent", hour, 40),
            ActivityHit("sent", hour + timedelta(hours=1), 60),  # midnight: the next day
            ActivityHit("opened", hour, 7),
        ],
        PARIS,
        Bucket.DAY,
    )
    assert [(p.start.astimezone(PARIS).day, p.sent, p.opened) for p in activity.points] == [
        (7, 40, 7),
        (8, 60, 0),
    ]


@pytest.mark.parametrize("bucket", [Bucket.HOUR, Bucket.DAY])
def test_a_long_campaign_keeps_its_latest_buckets(bucket: Bucket) -> None:
    step = timedelta(hours=1) if bucket is Bucket.HOUR else timedelta(days=1)
    span = step * (MAX_BUCKETS * 3)
    activity = bucket_activity(
        hits(("sent", timedelta(0)), ("sent", span / 2), ("replied", span)), PARIS, bucket
    )
    assert len(activity.points) == MAX_BUCKETS
    # The chart ends with the latest hit's bucket; what fell before the window is left out.
    assert activity.points[-1].replied == 1
    assert activity.points[-1].start <= T0 + span < activity.points[-1].start + step * 2
    assert sum(p.sent for p in activity.points) == 0
    starts = [p.start for p in activity.points]
    assert starts == sorted(set(starts))

"""The pure rules of campaigns, as tables: merge tags with fallbacks and their escaping, the
subject's refusal of line breaks from merge values, follow-ups threaded as replies, the reading of
stages and schedules, the sending window, auto-reply detection and mailbox rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailmark.core.campaign_engine import assign_senders, guardrail_reason
from mailmark.core.campaign_records import DueRecipient, MailboxUsage, StageCounts
from mailmark.core.campaign_replies import automatic_reply, referenced_ids
from mailmark.core.errors import HeaderInjection, InvalidInput
from mailmark.core.merge_tags import render, render_header
from mailmark.core.model import Mailbox
from mailmark.core.sequences import (
    MAX_REFERENCES,
    MergeValues,
    Schedule,
    Stage,
    ThreadState,
    clean_schedule,
    clean_stages,
    render_stage,
    with_reference,
)

MONDAY_NINE = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("template", "values", "html", "expected"),
    [
        ("Hi {{firstName}}", {"firstName": "Ann"}, False, "Hi Ann"),
        ("Hi {{firstName|there}}", {}, False, "Hi there"),
        ("Hi {{ firstName | there }}", {"firstName": ""}, False, "Hi there"),
        ("Hi {{firstName|there}}", {"firstName": "Ann"}, False, "Hi Ann"),
        ("Hi {{firstName}}", {}, False, "Hi "),
        ("{{company|your team}} & co", {}, True, "your team & co"),
        (
            "<b>{{firstName}}</b>",
            {"firstName": "<script>x</script>"},
            True,
            "<b>&lt;script&gt;x&lt;/script&gt;</b>",
        ),
        ("<b>{{firstName|<i>}}</b>", {}, True, "<b>&lt;i&gt;</b>"),
        ("{{not a tag}}", {}, False, "{{not a tag}}"),
    ],
)
def test_merge_tags_fill_fall_back_and_escape(
    template: str, values: dict[str, str], html: bool, expected: str
) -> None:
    assert render(template, values, html=html) == expected


@pytest.mark.parametrize("value", ["a\r\nBcc: x@example.com", "a\nb", "a\rb", "a\0b"])
def test_a_merge_value_cannot_break_a_subject(value: str) -> None:
    with pytest.raises(HeaderInjection):
        render_header("Hello {{title}}", {"title": value})


@given(st.text(max_size=60), st.dictionaries(st.sampled_from(["a", "b"]), st.text(max_size=20)))
def test_a_rendered_subject_never_holds_a_line_break(template: str, values: dict[str, str]) -> None:
    try:
        rendered = render_header(template.replace("\r", "").replace("\n", ""), values)
    except HeaderInjection:
        return
    assert not any(ch in rendered for ch in "\r\n\0")


def test_follow_ups_reply_in_the_thread_unless_they_start_a_new_one() -> None:
    values = MergeValues("ann@example.com", "Ann")
    first = render_stage(Stage("Hello {{firstName}}", "<p>1</p>"), 1, 0, values, ThreadState())
    assert first.subject == "Hello Ann" and first.headers == {}
    assert first.text.strip() == "1"
    thread = ThreadState(first.thread.subject, with_reference(first.thread, "m1@acme.test"))
    second = render_stage(Stage("", "<p>2</p>", 2), 2, 0, values, thread)
    assert second.subject == "Re: Hello Ann"
    assert second.headers == {"In-Reply-To": "<m1@acme.test>", "References": "<m1@acme.test>"}
    fresh = render_stage(Stage("New {{firstName}}", "<p>3</p>", 2, True), 3, 0, values, thread)
    assert fresh.subject == "New Ann" and fresh.headers == {}


def test_references_keep_the_first_and_the_latest_ids() -> None:
    thread = ThreadState("s", ())
    for n in range(MAX_REFERENCES + 5):
        thread = ThreadState("s", with_reference(thread, f"m{n}@x"))
    assert len(thread.references) == MAX_REFERENCES
    assert thread.references[0] == "m0@x" and thread.references[-1] == f"m{MAX_REFERENCES + 4}@x"


def test_subject_variants_take_turns() -> None:
    stage = Stage("A {{firstName}}", "<p>x</p>", subject_variants=("B {{firstName}}",))
    values = MergeValues("x@example.com", "Ann")
    subjects = [render_stage(stage, 1, v, values, ThreadState()).subject for v in range(3)]
    assert subjects == ["A Ann", "B Ann", "A Ann"]


@pytest.mark.parametrize(
    ("stages", "field"),
    [
        ([], "stages"),
        ([{"html": "<p>x</p>"}], "stages[0].subject"),
        ([{"subject": "s\r\nBcc: x@y", "html": "x"}], "stages[0].subject"),
        ([{"subject": "s"}], "stages[0].html"),
        ([{"subject": "s", "html": "x", "delayDays": 2}], "stages[0].delayDays"),
        ([{"subject": "s", "html": "x"}, {"html": "y"}], "stages[1].delayDays"),
        ([{"subject": "s", "html": "x"}, {"html": "y", "delayDays": 0}], "stages[1].delayDays"),
        ([{"subject": "s", "html": "x"}, {"html": "y", "delayDays": True}], "stages[1].delayDays"),
        (
            [
                {"subject": "s", "html": "x"},
                {"html": "y", "delayDays": 1, "subjectVariants": ["v"]},
            ],
            "stages[1].subjectVariants",
        ),
        ([{"subject": "s", "html": "x", "script": 1}], "stages[0]"),
    ],
)
def test_bad_stages_name_the_field(stages: list[dict[str, Any]], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        clean_stages(stages)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "schedule.timezone"),
        ({"startAt": "tomorrow"}, "schedule.startAt"),
        ({"days": [0]}, "schedule.days"),
        ({"hours": [17, 9]}, "schedule.hours"),
        ({"dailyCap": 0}, "schedule.dailyCap"),
        ({"spacingSeconds": -1}, "schedule.spacingSeconds"),
    ],
)
def test_bad_schedules_name_the_field(schedule: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        clean_schedule(schedule)
    assert refused.value.field == field


def test_the_start_time_is_read_in_the_schedule_time_zone() -> None:
    schedule = clean_schedule({"timezone": "Europe/Paris", "startAt": "2030-07-01T09:00"})
    assert schedule.start_at == datetime(2030, 7, 1, 7, 0, tzinfo=UTC)
    assert clean_schedule(schedule.as_json()) == schedule


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (MONDAY_NINE, True),  # 10:00 in Paris
        (MONDAY_NINE - timedelta(hours=2), False),  # 08:00
        (MONDAY_NINE + timedelta(hours=6, minutes=59), True),  # 16:59
        (MONDAY_NINE + timedelta(hours=7), False),  # 17:00
        (MONDAY_NINE + timedelta(days=5), False),  # Saturday
    ],
)
def test_the_window_is_days_and_hours_in_the_time_zone(moment: datetime, open_: bool) -> None:
    schedule = Schedule(timezone="Europe/Paris", days=(1, 2, 3, 4, 5), start_hour=9, end_hour=17)
    assert schedule.open_at(moment) is open_


@pytest.mark.parametrize(
    ("fields", "automatic"),
    [
        ({"Auto-Submitted": "auto-replied"}, True),
        ({"Auto-Submitted": "auto-generated; reason=vacation"}, True),
        ({"Auto-Submitted": "no"}, False),
        ({"X-Autoreply": "yes"}, True),
        ({"X-Autorespond": "1"}, True),
        ({"Precedence": "auto_reply"}, True),
        ({"Subject": "Out of Office: Hello"}, True),
        ({"Subject": "Automatic reply: Hello"}, True),
        ({"Subject": "Re: Hello"}, False),
        ({}, False),
    ],
)
def test_automatic_replies_are_told_apart(fields: dict[str, str], automatic: bool) -> None:
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    raw = f"From: a@example.com\r\n{head}In-Reply-To: <m1@acme.test>\r\n\r\nbody\r\n".encode()
    assert (automatic_reply(raw) is not None) is automatic


def test_referenced_ids_come_latest_first_and_bounded() -> None:
    references = " ".join(f"<m{n}@x>" for n in range(80))
    raw = f"In-Reply-To: <m79@x>\r\nReferences: {references}\r\n\r\n".encode()
    found = referenced_ids(raw)
    assert found[0] == "m79@x" and len(found) == 50


def mailbox(mailbox_id: int) -> Mailbox:
    return Mailbox(1, "acme.test", 1, f"m{mailbox_id}", MONDAY_NINE, id=mailbox_id)


def due(recipient_id: int, stage: int = 1, mailbox_id: int | None = None) -> DueRecipient:
    return DueRecipient(
        recipient_id, None, f"r{recipient_id}@x", stage, mailbox_id, ThreadState(), MergeValues("")
    )


def test_rotation_spreads_first_messages_and_keeps_follow_ups_on_their_thread() -> None:
    senders = [mailbox(1), mailbox(2), mailbox(3)]
    usage = {1: MailboxUsage(1, None)}
    schedule = Schedule(daily_cap=2)
    picked = assign_senders(
        [due(n) for n in range(1, 6)] + [due(9, stage=2, mailbox_id=1)],
        senders,
        usage,
        schedule,
        MONDAY_NINE,
        None,
    )
    chosen = [(r.id, m.id) for r, m in picked]
    assert chosen == [(1, 2), (2, 3), (3, 1), (4, 2), (5, 3)]  # mailbox 1 had one already


def test_the_quota_left_bounds_a_pass() -> None:
    picked = assign_senders(
        [due(n) for n in range(1, 6)], [mailbox(1)], {}, Schedule(), MONDAY_NINE, 2
    )
    assert [r.id for r, _ in picked] == [1, 2]


@pytest.mark.parametrize(
    ("sent", "bounced", "complained", "reason"),
    [
        (99, 50, 0, None),  # too few sends to judge
        (100, 5, 0, None),  # 5% is the line, not over it
        (100, 6, 0, "Paused automatically: 6 of 100 emails bounced (6.0%), over the 5% limit."),
        (1000, 0, 3, None),  # 0.3%
        (
            1000,
            0,
            4,
            "Paused automatically: 4 of 1000 emails drew a spam complaint (0.40%), "
            "over the 0.3% limit.",
        ),
    ],
)
def test_guardrails_pause_past_the_bounce_and_complaint_lines(
    sent: int, bounced: int, complained: int, reason: str | None
) -> None:
    counts = [
        StageCounts(1, 0, sent=sent - 10, bounced=bounced, complained=complained),
        StageCounts(2, 0, sent=10),
    ]
    assert guardrail_reason(counts) == reason

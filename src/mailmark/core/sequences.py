"""The campaign model (PRODUCT.md "Email Campaigns", "Follow-up Sequences"): a campaign's stages,
audience and schedule, read and checked from what the API gives, and the pure rules the engine
applies to them: the sending window, the stage a recipient gets and its rendered message.

Stage 1 is the first email; each later stage goes "N days after the previous stage if no reply",
as a reply in the same thread (`Re:` the thread's subject, In-Reply-To and References naming the
earlier messages, RFC 5322 §3.6.4) unless it says `newThread`. A stage may carry A/B subject
variants: a recipient gets one, chosen by its row id, and the stats count each variant apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailmark.core.addresses import check_header_value
from mailmark.core.contacts import FieldValue
from mailmark.core.errors import InvalidInput
from mailmark.core.merge_tags import render, render_header
from mailmark.core.message_meta import html_to_text

MAX_NAME = 200
MAX_STAGES = 10
MAX_VARIANTS = 5
MAX_HTML = 512 * 1024
MAX_SUBJECT = 500
MAX_DELAY_DAYS = 365
MAX_LISTS = 20
MAX_DAILY_CAP = 100_000
MAX_SPACING_SECONDS = 24 * 3600
# The References field keeps the thread's first message and the latest ones (RFC 5322 §3.6.4
# allows trimming the middle); a long sequence never grows the header past this many ids.
MAX_REFERENCES = 10
ALL_DAYS = (1, 2, 3, 4, 5, 6, 7)


class CampaignStatus(StrEnum):
    DRAFT = "draft"  # editable, nothing sent
    RUNNING = "running"  # launched: sends as its schedule allows (a future start waits)
    PAUSED = "paused"  # by its owner or by a guardrail or quota (`pause_reason` says which)
    COMPLETED = "completed"  # every recipient finished or left the sequence
    CANCELED = "canceled"


# The states in which a campaign's settings may change.
EDITABLE = (CampaignStatus.DRAFT, CampaignStatus.PAUSED)


class RecipientState(StrEnum):
    ACTIVE = "active"  # waiting for its next stage
    COMPLETED = "completed"  # got every stage
    REPLIED = "replied"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    SUPPRESSED = "suppressed"  # on the sending domain's suppression list (added by hand)
    FAILED = "failed"  # its message could not be built (a merge value the subject refuses)
    CANCELED = "canceled"


# States a recipient leaves the sequence in; replies still count after the last stage.
STOPPED = tuple(state for state in RecipientState if state is not RecipientState.ACTIVE)


@dataclass(frozen=True)
class Stage:
    subject: str  # stage 1 and new threads; a follow-up in the thread takes "Re: <thread's>"
    html: str
    delay_days: int = 0  # after the previous stage (0 for stage 1)
    new_thread: bool = False
    subject_variants: tuple[str, ...] = ()  # A/B: alternatives to `subject`
    # The open pixel and signed click redirects (core/tracking.py); every stage's mail carries
    # the RFC 8058 unsubscribe link whatever these say.
    track_opens: bool = True
    track_clicks: bool = True

    @property
    def subjects(self) -> tuple[str, ...]:
        return (self.subject, *self.subject_variants)

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "html": self.html,
            "delayDays": self.delay_days,
            "newThread": self.new_thread,
            "subjectVariants": list(self.subject_variants),
            "trackOpens": self.track_opens,
            "trackClicks": self.track_clicks,
        }


@dataclass(frozen=True)
class Audience:
    list_ids: tuple[int, ...] = ()  # lists and segments of the account's contacts
    sender_group_recipients: bool = False  # the sender group's own recipient emails

    def as_json(self) -> dict[str, Any]:
        return {
            "listIds": [str(i) for i in self.list_ids],
            "senderGroupRecipients": self.sender_group_recipients,
        }


@dataclass(frozen=True)
class Schedule:
    """When sending may happen: from `start_at` (None: at launch), on `days` (ISO weekdays,
    1 = Monday) between `start_hour` and `end_hour` in `timezone`, at most `daily_cap` messages
    per mailbox per day (None: no cap) and `spacing_seconds` apart from one mailbox."""

    timezone: str = "UTC"
    start_at: datetime | None = None
    days: tuple[int, ...] = ALL_DAYS
    start_hour: int = 0
    end_hour: int = 24
    daily_cap: int | None = None
    spacing_seconds: int = 0

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def as_json(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "startAt": self.start_at.astimezone(self.zone).replace(tzinfo=None).isoformat()
            if self.start_at is not None
            else None,
            "days": list(self.days),
            "hours": [self.start_hour, self.end_hour],
            "dailyCap": self.daily_cap,
            "spacingSeconds": self.spacing_seconds,
        }

    def open_at(self, now: datetime) -> bool:
        """Whether `now` is inside the sending window."""
        local = now.astimezone(self.zone)
        return local.isoweekday() in self.days and self.start_hour <= local.hour < self.end_hour

    def day_start(self, now: datetime) -> datetime:
        """The start of `now`'s day in the campaign's time zone, in UTC (daily caps count from it)."""
        local = now.astimezone(self.zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


@dataclass(frozen=True)
class Campaign:
    account_id: int
    domain_id: int
    name: str
    status: CampaignStatus
    stages: tuple[Stage, ...]
    audience: Audience
    schedule: Schedule
    created_at: datetime
    updated_at: datetime
    mailbox_id: int | None = None
    sender_group_id: int | None = None
    pause_reason: str = ""
    launched_at: datetime | None = None
    finished_at: datetime | None = None
    id: int | None = None
    from_address: str | None = None  # read, never written: the sending mailbox's address

    @property
    def batch_id(self) -> str:
        """The `batchId` its emails carry, so /v1/emails?batchId= lists them."""
        return f"campaign_{self.id}"


@dataclass(frozen=True)
class MergeValues:
    """What a recipient's merge tags are filled with."""

    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    fields: Mapping[str, FieldValue] = field(default_factory=dict)

    def as_variables(self) -> dict[str, str]:
        variables = {key: _text(value) for key, value in self.fields.items()}
        variables.update(
            email=self.email,
            firstName=self.first_name,
            lastName=self.last_name,
            company=self.company,
        )
        return variables


@dataclass(frozen=True)
class ThreadState:
    """What a recipient's earlier stages left for the next: the thread's subject and the
    Message-IDs (without <>) to reply to, oldest first."""

    subject: str | None = None
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class RenderedStage:
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    variant: int
    thread: ThreadState  # as it stands once this message is sent (without its own id yet)


def render_stage(
    stage: Stage, number: int, variant: int, values: MergeValues, thread: ThreadState
) -> RenderedStage:
    """The message of one stage for one recipient. HeaderInjection when a merge value would
    break the subject; HTML values are escaped."""
    variables = values.as_variables()
    html = render(stage.html, variables, html=True)
    headers: dict[str, str] = {}
    in_thread = number > 1 and not stage.new_thread and thread.subject is not None
    if in_thread:
        assert thread.subject is not None
        subject = thread.subject
        if not subject.lower().startswith("re:"):
            subject = f"Re: {subject}"
        if thread.references:
            # RFC 5322 §3.6.4: In-Reply-To names the parent, References the thread up to it.
            headers["In-Reply-To"] = f"<{thread.references[-1]}>"
            headers["References"] = " ".join(f"<{ref}>" for ref in thread.references)
        next_thread = thread
    else:
        subject = render_header(stage.subjects[variant % len(stage.subjects)], variables)
        next_thread = ThreadState(subject, ())
    return RenderedStage(subject, html, html_to_text(html), headers, variant, next_thread)


def with_reference(thread: ThreadState, message_id: str) -> tuple[str, ...]:
    """The thread's references once `message_id` is sent: the first and the latest ones."""
    references = (*thread.references, message_id)
    if len(references) > MAX_REFERENCES:
        references = (references[0], *references[-(MAX_REFERENCES - 1) :])
    return references


def variant_for(recipient_id: int, stage: Stage) -> int:
    return recipient_id % len(stage.subjects)


def _text(value: FieldValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- reading what the API gives ----------------------------------------------------------------


def clean_name(name: str | None) -> str:
    if name is None or not name.strip():
        raise InvalidInput("Give the campaign a name.", field="name")
    if len(name) > MAX_NAME or any(ch in name for ch in "\r\n\0"):
        raise InvalidInput(
            f"A campaign name is one line of at most {MAX_NAME} characters.", field="name"
        )
    return name.strip()


def clean_stages(given: Any) -> tuple[Stage, ...]:
    if not isinstance(given, Sequence) or isinstance(given, str) or not given:
        raise InvalidInput("stages is a list of at least one stage.", field="stages")
    if len(given) > MAX_STAGES:
        raise InvalidInput(f"A campaign has at most {MAX_STAGES} stages.", field="stages")
    return tuple(_stage(index, entry) for index, entry in enumerate(given))


def _stage(index: int, entry: Any) -> Stage:
    where = f"stages[{index}]"
    if not isinstance(entry, Mapping):
        raise InvalidInput("A stage is an object.", field=where)
    unknown = set(entry) - {
        "subject",
        "html",
        "delayDays",
        "newThread",
        "subjectVariants",
        "trackOpens",
        "trackClicks",
    }
    if unknown:
        raise InvalidInput(f"A stage has no field {min(unknown)}.", field=where)
    switches = {}
    for name, default in (("newThread", False), ("trackOpens", True), ("trackClicks", True)):
        switches[name] = entry.get(name, default)
        if not isinstance(switches[name], bool):
            raise InvalidInput(f"{name} is true or false.", field=f"{where}.{name}")
    new_thread = switches["newThread"]
    subject = entry.get("subject") or ""
    if not isinstance(subject, str):
        raise InvalidInput("subject is a string.", field=f"{where}.subject")
    needs_subject = index == 0 or new_thread
    if needs_subject and not subject.strip():
        raise InvalidInput(
            "The first stage, and a stage in a new thread, needs a subject.",
            field=f"{where}.subject",
        )
    variants = entry.get("subjectVariants") or []
    if not isinstance(variants, list) or not all(isinstance(v, str) and v for v in variants):
        raise InvalidInput(
            "subjectVariants is a list of subjects.", field=f"{where}.subjectVariants"
        )
    if len(variants) >= MAX_VARIANTS:
        raise InvalidInput(
            f"A stage has at most {MAX_VARIANTS} subjects in all.",
            field=f"{where}.subjectVariants",
        )
    if variants and not needs_subject:
        raise InvalidInput(
            "A follow-up in the thread takes the thread's subject: give variants only to the "
            "first stage or a stage in a new thread.",
            field=f"{where}.subjectVariants",
        )
    for name, value in (("subject", subject), *(("subjectVariants", v) for v in variants)):
        try:
            check_header_value("The subject", value, MAX_SUBJECT)
        except InvalidInput as error:
            error.field = f"{where}.{name}"
            raise
    html = entry.get("html")
    if not isinstance(html, str) or not html.strip():
        raise InvalidInput("Give the stage's HTML body.", field=f"{where}.html")
    if len(html) > MAX_HTML:
        raise InvalidInput(
            f"A stage's HTML is at most {MAX_HTML} characters.", field=f"{where}.html"
        )
    delay = entry.get("delayDays", 0)
    if index == 0:
        if delay not in (0, None):
            raise InvalidInput("The first stage has no delay.", field=f"{where}.delayDays")
        delay = 0
    elif not isinstance(delay, int) or isinstance(delay, bool) or not 1 <= delay <= MAX_DELAY_DAYS:
        raise InvalidInput(
            f"delayDays is a whole number of days from 1 to {MAX_DELAY_DAYS}.",
            field=f"{where}.delayDays",
        )
    return Stage(
        subject.strip(),
        html,
        delay,
        new_thread,
        tuple(variants),
        track_opens=switches["trackOpens"],
        track_clicks=switches["trackClicks"],
    )


def clean_audience(given: Any) -> Audience:
    if given is None:
        return Audience()
    if not isinstance(given, Mapping):
        raise InvalidInput("audience is an object.", field="audience")
    unknown = set(given) - {"listIds", "senderGroupRecipients"}
    if unknown:
        raise InvalidInput(f"audience has no field {min(unknown)}.", field="audience")
    ids = given.get("listIds") or []
    if not isinstance(ids, list) or len(ids) > MAX_LISTS:
        raise InvalidInput(
            f"audience.listIds is a list of at most {MAX_LISTS} list ids.",
            field="audience.listIds",
        )
    list_ids = []
    for value in ids:
        text = str(value)
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            raise InvalidInput(f"No list {text[:30]} here.", field="audience.listIds")
        list_ids.append(int(text))
    group = given.get("senderGroupRecipients", False)
    if not isinstance(group, bool):
        raise InvalidInput(
            "senderGroupRecipients is true or false.", field="audience.senderGroupRecipients"
        )
    return Audience(tuple(dict.fromkeys(list_ids)), group)


def clean_schedule(given: Any) -> Schedule:
    if given is None:
        return Schedule()
    if not isinstance(given, Mapping):
        raise InvalidInput("schedule is an object.", field="schedule")
    unknown = set(given) - {"timezone", "startAt", "days", "hours", "dailyCap", "spacingSeconds"}
    if unknown:
        raise InvalidInput(f"schedule has no field {min(unknown)}.", field="schedule")
    timezone = given.get("timezone") or "UTC"
    try:
        if not isinstance(timezone, str) or len(timezone) > 64:
            raise ValueError
        zone = ZoneInfo(timezone)
    except (ValueError, ZoneInfoNotFoundError):
        raise InvalidInput(
            "timezone is an IANA time zone name, such as Europe/Paris.", field="schedule.timezone"
        ) from None
    start_at = None
    if given.get("startAt") is not None:
        start_at = _local_time(given["startAt"], zone)
    days = given.get("days") or list(ALL_DAYS)
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 7 for d in days)
    ):
        raise InvalidInput(
            "days is a list of ISO weekdays, 1 (Monday) to 7 (Sunday).", field="schedule.days"
        )
    hours = given.get("hours") or [0, 24]
    if (
        not isinstance(hours, list)
        or len(hours) != 2
        or not all(isinstance(h, int) and not isinstance(h, bool) for h in hours)
        or not 0 <= hours[0] < hours[1] <= 24
    ):
        raise InvalidInput(
            "hours is [from, to], whole hours with 0 <= from < to <= 24.", field="schedule.hours"
        )
    cap = given.get("dailyCap")
    if cap is not None and (
        not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= MAX_DAILY_CAP
    ):
        raise InvalidInput(
            f"dailyCap is a number of emails per mailbox per day, 1 to {MAX_DAILY_CAP}.",
            field="schedule.dailyCap",
        )
    spacing = given.get("spacingSeconds", 0) or 0
    if (
        not isinstance(spacing, int)
        or isinstance(spacing, bool)
        or not 0 <= spacing <= MAX_SPACING_SECONDS
    ):
        raise InvalidInput(
            f"spacingSeconds is 0 to {MAX_SPACING_SECONDS}.", field="schedule.spacingSeconds"
        )
    return Schedule(timezone, start_at, tuple(sorted(set(days))), hours[0], hours[1], cap, spacing)


def _local_time(value: Any, zone: ZoneInfo) -> datetime:
    """`startAt`: a local date and time in the schedule's zone (an offset, if given, wins)."""
    try:
        if not isinstance(value, str) or len(value) > 40:
            raise ValueError
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            "startAt is a date and time such as 2030-01-07T09:00.", field="schedule.startAt"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def stage_delay(stage: Stage) -> timedelta:
    return timedelta(days=stage.delay_days)

"""The vacation responder's rules without the network: what is never answered (a table of
messages), the dates in the owner's zone, the reply's subject and threading, the settings rule
as a delivery rule, and the reply the responder queues (HTML sanitised, a text alternative)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailmark.bootstrap import Services
from mailmark.core.dispositions import AutoReply, Disposition, InboundMessage
from mailmark.core.errors import InvalidInput
from mailmark.core.model import Mailbox
from mailmark.core.vacation import (
    VacationChange,
    html_to_text,
    memory_key,
    parse_moment,
    refusal,
    reply_subject,
    thread_fields,
)
from tests.support.clock import SettableClock
from tests.support.world import World, queued_emails

SALES = Mailbox(
    domain_id=1,
    domain_name="acme.test",
    account_id=1,
    local_part="sales",
    created_at=datetime(2030, 1, 1, tzinfo=UTC),
    id=1,
)
AWAY = AutoReply(body="Away.")


def inbound(
    headers: str = "",
    *,
    mail_from: str = "bob@remote.test",
    to: str = "sales@acme.test",
    dmarc: str = "pass",
) -> InboundMessage:
    raw = (
        f"From: bob@remote.test\r\nTo: {to}\r\nSubject: Hello\r\n"
        f"Message-ID: <m1@remote.test>\r\n{headers}\r\nBody\r\n"
    ).encode()
    return InboundMessage(raw, b"", mail_from, ["sales@acme.test"], "t1", dmarc)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (inbound(mail_from=""), "null"),
        (inbound("Auto-Submitted: auto-generated\r\n"), "Auto-Submitted: auto-generated"),
        (inbound("Auto-Submitted: Auto-Replied (vacation)\r\n"), "auto-replied"),
        (inbound("List-Id: <chairs.remote.test>\r\n"), "mailing list"),
        (inbound("List-Post: <mailto:chairs@remote.test>\r\n"), "mailing list"),
        (inbound("Precedence: junk\r\n"), "Precedence: junk"),
        (inbound("Precedence: BULK\r\n"), "Precedence: bulk"),
        (inbound("X-Auto-Response-Suppress: OOF, DR\r\n"), "asked for no automatic"),
        (inbound(mail_from="MAILER-DAEMON@remote.test"), "software"),
        (inbound(mail_from="majordomo@remote.test"), "software"),
        (inbound(mail_from="owner-chairs@remote.test"), "software"),
        (inbound(mail_from="chairs-request@remote.test"), "software"),
        (inbound(mail_from="no-reply@remote.test"), "software"),
        (inbound(mail_from="bounce+abc@remote.test"), "software"),
        (inbound(mail_from="Sales+x@ACME.test"), "mailbox itself"),
        (inbound(to="all@remote.test"), "RFC 5230 §4.5"),
        (inbound(dmarc="fail"), "DMARC"),
    ],
)
def test_never_answered(message: InboundMessage, reason: str) -> None:
    found = refusal(message, SALES, AWAY)
    assert found is not None and reason in found


@pytest.mark.parametrize(
    "message",
    [
        inbound(),
        inbound("Auto-Submitted: no\r\n"),
        inbound("Precedence: first-class\r\n"),
        inbound(to="Sales Team <SALES+quotes@acme.test>"),
        inbound("Cc: sales@acme.test\r\n", to="carol@remote.test"),
        inbound("Resent-To: sales@acme.test\r\n", to="carol@remote.test"),
    ],
)
def test_answered(message: InboundMessage) -> None:
    assert refusal(message, SALES, AWAY) is None


def test_the_reply_s_own_addresses_count_as_the_mailbox_s() -> None:
    message = inbound(to="info@acme.test")
    assert refusal(message, SALES, AWAY) is not None
    assert refusal(message, SALES, AutoReply(body="x", addresses=("info@acme.test",))) is None


def test_dates_are_read_in_the_owner_s_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert parse_moment("2030-07-01", paris, end=False, field="s") == datetime(
        2030, 6, 30, 22, 0, tzinfo=UTC
    )
    # As the end, a date is that whole day: off from the next midnight.
    assert parse_moment("2030-07-14", paris, end=True, field="e") == datetime(
        2030, 7, 14, 22, 0, tzinfo=UTC
    )
    assert parse_moment("2030-01-02T09:30", paris, end=False, field="s") == datetime(
        2030, 1, 2, 8, 30, tzinfo=UTC
    )
    assert parse_moment("2030-01-02T09:30+00:00", paris, end=False, field="s") == datetime(
        2030, 1, 2, 9, 30, tzinfo=UTC
    )
    with pytest.raises(InvalidInput) as error:
        parse_moment("tomorrow", paris, end=False, field="startsAt")
    assert error.value.field == "startsAt"


def test_subject_and_threading() -> None:
    assert reply_subject(AWAY, "Quote\r\n request") == "Auto: Quote request"
    assert reply_subject(AWAY, None) == "Auto:"
    assert reply_subject(AutoReply(body="x", subject="Away"), "Quote") == "Away"
    assert len(reply_subject(AWAY, "x" * 5000)) == 500
    message = inbound("References: <a@x> <b@x>\r\n").message
    assert thread_fields(message) == {
        "In-Reply-To": "<m1@remote.test>",
        "References": "<a@x> <b@x> <m1@remote.test>",
    }
    broken = inbound().message
    broken.replace_header("Message-ID", "not an id")
    assert thread_fields(broken) == {}


@given(st.text(max_size=200))
def test_a_subject_is_always_one_bounded_line(original: str) -> None:
    subject = reply_subject(AWAY, original)
    assert "\r" not in subject and "\n" not in subject and "\0" not in subject
    assert len(subject) <= 500


def test_memory_keys_hide_the_sender_and_follow_the_content() -> None:
    key = memory_key(AWAY, "Bob@remote.test")
    assert key == memory_key(AWAY, "bob@remote.test") and "bob" not in key
    assert key != memory_key(AutoReply(body="Back on Monday."), "bob@remote.test")
    assert memory_key(AutoReply(body="a", handle="h"), "b@x") == memory_key(
        AutoReply(body="b", handle="h"), "b@x"
    )


def test_html_to_text() -> None:
    html = "<p>Away until <b>Monday</b>.</p><p>Urgent: write to&nbsp;ops@acme.test<br>Thanks</p>"
    assert html_to_text(html) == "Away until Monday.\nUrgent: write to ops@acme.test\nThanks\n"


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


async def test_the_settings_rule_adds_a_reply_only_while_on(
    services: Services, world: World, clock: SettableClock
) -> None:
    rule = services.vacation_rule
    start = Disposition(world.sales, ("INBOX",))
    assert await rule.apply(inbound(), start) == start
    await services.vacation.set(
        world.sales.address,
        VacationChange(
            enabled=True, body="Away.", subject="Out", days=2, ends="2030-01-08T00:00+00:00"
        ),
    )
    decided = await rule.apply(inbound(), start)
    assert decided.replies == (AutoReply(body="Away.", subject="Out", days=2),)
    assert decided.folders == ("INBOX",)
    # Spam is not answered.
    junk = Disposition(world.sales, ("Junk",))
    assert await rule.apply(inbound(), junk) == junk
    clock.advance(timedelta(days=1))
    assert await rule.apply(inbound(), start) == start


async def test_an_html_reply_is_sanitised_with_a_text_alternative(
    services: Services, world: World
) -> None:
    reply = AutoReply(
        body='<p onclick="x()">Away <b>now</b></p><script>steal()</script>', html=True
    )
    await services.auto_replies.respond(inbound(), world.sales, reply)
    # Answered once: the second time within the days is silent.
    await services.auto_replies.respond(inbound(), world.sales, reply)
    [queued] = await queued_emails(services)
    assert (queued.from_addr, queued.recipient) == ("sales@acme.test", "bob@remote.test")
    assert queued.message["From"] == "Sales <sales@acme.test>"
    assert queued.message["Auto-Submitted"] == "auto-replied"
    html = queued.message.get_body(("html",))
    assert html is not None
    content = html.get_content()  # type: ignore[attr-defined]
    assert "<b>now</b>" in content and "script" not in content and "onclick" not in content
    assert queued.text.strip() == "Away now"


async def test_a_suppressed_sender_is_not_answered(services: Services, world: World) -> None:
    from mailmark.core.model import Suppression
    from mailmark.core.states import SuppressionReason

    async with services.uow() as uow:
        await uow.suppressions.add(
            Suppression(
                world.sales.domain_id,
                "bob@remote.test",
                SuppressionReason.BOUNCE,
                "550 5.1.1",
                datetime(2030, 1, 1, tzinfo=UTC),
            )
        )
        await uow.commit()
    await services.auto_replies.respond(inbound(), world.sales, AWAY)
    assert await queued_emails(services) == []


async def test_two_deliveries_at_once_answer_a_sender_once(
    services: Services, world: World
) -> None:
    await asyncio.gather(
        *(services.auto_replies.respond(inbound(), world.sales, AWAY) for _ in range(4))
    )
    assert len(await queued_emails(services)) == 1

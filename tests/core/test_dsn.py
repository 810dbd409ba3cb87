"""RFC 3464 DSNs built by core/dsn.py, parsed back with the stdlib and checked field by field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmark.core.dsn import MAX_RETURNED_HEADERS, build_dsn, failure_status, header_section

NOW = datetime(2024, 5, 2, 10, 30, tzinfo=UTC)
ARRIVAL = NOW - timedelta(days=5)
ORIGINAL = (
    b"From: Sales <sales@acme.test>\r\n"
    b"To: Bob <bob@remote.test>, carol@remote.test\r\n"
    b"Subject: =?utf-8?q?Quarterly_r=C3=A9sum=C3=A9?=\r\n"
    b"Message-ID: <original.1@acme.test>\r\n"
    b"Date: Mon, 27 Apr 2024 10:30:00 +0000\r\n"
    b"\r\n"
    b"The secret body that must never come back.\r\n"
)


@dataclass(frozen=True)
class Reply:
    code: int
    enhanced: str | None
    text: str
    mx_host: str | None = None


def build(
    failures: list[tuple[str, Reply]], headers: bytes = ORIGINAL, message_id: str | None = "dsn.1"
) -> bytes:
    return build_dsn(
        reporting_mta="mx.mailmark.test",
        original_envelope_from="bounce+abcdefghijklmnopqrstuvwx@mail.acme.test",
        original_headers=headers,
        failures=failures,
        arrival=ARRIVAL,
        now=NOW,
        message_id_domain="acme.test",
        message_id=message_id,
    )


def parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def status_blocks(report: EmailMessage) -> list[Message]:
    parts = list(report.iter_parts())
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    assert isinstance(blocks, list)
    return [block for block in blocks if isinstance(block, Message)]


def test_every_required_field_of_a_permanent_failure() -> None:
    raw = build([("bob@remote.test", Reply(550, "5.1.1", "User unknown", "mx1.remote.test"))])
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    report = parse(raw)

    assert report["From"] == "Mail Delivery System <MAILER-DAEMON@mx.mailmark.test>"
    assert report["To"] == "sales@acme.test"  # the sender's mailbox, not the VERP address
    assert report["Subject"] == "Undelivered Mail Returned to Sender"
    assert report["Message-ID"] == "<dsn.1>"
    assert report["Auto-Submitted"] == "auto-replied"
    assert report["In-Reply-To"] == "<original.1@acme.test>"
    assert parsedate_to_datetime(report["Date"]) == NOW
    # RFC 6522: multipart/report naming its report type; RFC 3464: three parts in this order.
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    parts = list(report.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]

    human = parts[0].get_content()
    assert "bob@remote.test" in human and "550 5.1.1 User unknown" in human
    assert "mx1.remote.test" in human and "Quarterly résumé" in human

    per_message, per_recipient = status_blocks(report)
    assert per_message["Reporting-MTA"] == "dns; mx.mailmark.test"
    assert parsedate_to_datetime(per_message["Arrival-Date"]) == ARRIVAL
    assert per_recipient["Final-Recipient"] == "rfc822; bob@remote.test"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.1.1"
    assert per_recipient["Remote-MTA"] == "dns; mx1.remote.test"
    assert per_recipient["Diagnostic-Code"] == "smtp; 550 5.1.1 User unknown"
    assert parsedate_to_datetime(per_recipient["Last-Attempt-Date"]) == NOW

    returned = parts[2].get_content()
    assert "Message-ID: <original.1@acme.test>" in returned
    assert "Subject: =?utf-8?q?Quarterly_r=C3=A9sum=C3=A9?=" in returned
    assert b"secret body" not in raw  # headers only, never the content


def test_several_recipients_with_expiry_and_network_errors() -> None:
    raw = build(
        [
            ("bob@remote.test", Reply(550, "5.1.1", "No such user", "mx1.remote.test")),
            (
                "carol@remote.test",
                Reply(451, "4.3.0", "Greylisted,\ntry again later", "mx2.remote.test"),
            ),
            ("dave@gone.test", Reply(0, None, "connection timed out")),
            ("erin@remote.test", Reply(554, None, "Transaction failed")),
        ]
    )
    blocks = status_blocks(parse(raw))
    assert len(blocks) == 5
    by_recipient = {str(b["Final-Recipient"]): b for b in blocks[1:]}
    assert all(b["Action"] == "failed" for b in blocks[1:])
    # Failed always carries class 5 (RFC 3464 §2.3.4); an expired temporary failure is 5.4.7.
    carol = by_recipient["rfc822; carol@remote.test"]
    assert carol["Status"] == "5.4.7"
    # A multi-line reply becomes one line: no header injection from a remote server's text.
    assert carol["Diagnostic-Code"] == "smtp; 451 4.3.0 Greylisted, try again later"
    dave = by_recipient["rfc822; dave@gone.test"]
    assert dave["Status"] == "5.4.7"
    assert dave["Diagnostic-Code"] is None and dave["Remote-MTA"] is None
    assert "connection timed out" in next(parse(raw).iter_parts()).get_content()
    erin = by_recipient["rfc822; erin@remote.test"]
    assert erin["Status"] == "5.0.0" and erin["Diagnostic-Code"] == "smtp; 554 Transaction failed"


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (Reply(550, "5.1.1", "x"), "5.1.1"),
        (Reply(552, "5.2.2", "mailbox full"), "5.2.2"),
        (Reply(550, None, "x"), "5.0.0"),
        (Reply(550, "4.2.2", "class disagrees with the code"), "5.0.0"),
        (Reply(550, "garbage", "x"), "5.0.0"),
        (Reply(421, "4.7.0", "x"), "5.4.7"),
        (Reply(0, None, "refused"), "5.4.7"),
    ],
)
def test_failure_status(reply: Reply, status: str) -> None:
    assert failure_status(reply) == status


def test_a_random_message_id_in_the_given_domain() -> None:
    first = parse(build([("b@remote.test", Reply(550, "5.1.1", "x"))], message_id=None))
    second = parse(build([("b@remote.test", Reply(550, "5.1.1", "x"))], message_id=None))
    assert re.fullmatch(r"<[0-9a-f]{32}@acme\.test>", str(first["Message-ID"]))
    assert first["Message-ID"] != second["Message-ID"]


def test_hostile_values_stay_inside_their_fields() -> None:
    raw = build(
        [("bob@remote.test\r\nBcc: victim@x.test", Reply(550, "5.1.1", "x\r\nX-Evil: 1", "m\nx"))],
        headers=b'From: "Eve\r\n" <eve@acme.test>\r\nSubject: \x00hi\r\n\r\n',
    )
    assert b"\r\nBcc:" not in raw and b"\r\nX-Evil" not in raw
    per_recipient = status_blocks(parse(raw))[1]
    assert per_recipient["Final-Recipient"] == "rfc822; bob@remote.test Bcc: victim@x.test"


def test_no_failures_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        build([])


def test_the_whole_message_given_returns_only_its_header_section() -> None:
    assert header_section(ORIGINAL) == ORIGINAL.split(b"\r\n\r\n")[0] + b"\r\n"
    assert header_section(b"A: 1\nB: 2\n\nbody") == b"A: 1\r\nB: 2\r\n"
    assert header_section(b"A: 1\r\n folded\r\n\r\n") == b"A: 1\r\n folded\r\n"


def test_a_huge_header_section_is_cut_between_fields() -> None:
    field = b"X-Filler: " + b"a" * 70 + b"\r\n"
    huge = field * 2000 + b"X-Long: " + b"b" * 100_000 + b"\r\n\r\nbody"
    section = header_section(huge)
    assert len(section) <= MAX_RETURNED_HEADERS
    assert section.endswith(b"\r\n") and section.split(b"\r\n")[-2] == field.rstrip(b"\r\n")
    raw = build([("b@remote.test", Reply(550, "5.1.1", "x"))], headers=huge)
    assert len(raw) < MAX_RETURNED_HEADERS + 4096


@settings(max_examples=200, deadline=None)
@given(headers=st.binary(max_size=2000), text=st.text(max_size=300), code=st.integers(0, 599))
def test_any_original_and_reply_give_a_parseable_report(
    headers: bytes, text: str, code: int
) -> None:
    raw = build([("bob@remote.test", Reply(code, None, text))], headers=headers)
    report = parse(raw)
    assert report.get_content_type() == "multipart/report"
    blocks = status_blocks(report)
    assert blocks[1]["Action"] == "failed"
    assert str(blocks[1]["Status"]).startswith("5.")

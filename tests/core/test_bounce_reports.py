"""core/bounce_reports.py: a table of real-world-shaped DSNs and ARF reports, hostile input, fuzzing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailmark.core.bounce_reports import (
    MAX_RECIPIENTS,
    BounceReport,
    ReportedRecipient,
    parse_report,
)
from mailmark.core.dsn import build_dsn
from tests.core.report_samples import (
    arf_complaint,
    crlf,
    exchange_bounce,
    exim_bounce,
    gmail_bounce,
    postfix_bounce,
    postfix_delay,
)

VERP = "bounce+abcdefghijklmnopqrstuvwx@mail.acme.test"
MID = "orig.1@acme.test"


@dataclass(frozen=True)
class Reply:
    code: int
    enhanced: str | None
    text: str
    mx_host: str | None = None


def own_dsn() -> bytes:
    """What core/dsn.py builds must read back: our own reports come back to us too."""
    now = datetime(2024, 5, 2, tzinfo=UTC)
    return build_dsn(
        reporting_mta="mx.mailmark.test",
        original_envelope_from=VERP,
        original_headers=f"From: sales@acme.test\r\nMessage-ID: <{MID}>\r\n\r\n".encode(),
        failures=[
            ("bob@remote.test", Reply(550, "5.1.1", "No such user", "mx.remote.test")),
            ("carol@remote.test", Reply(0, None, "timed out")),
        ],
        arrival=now,
        now=now,
        message_id_domain="acme.test",
    )


CASES: list[tuple[str, bytes, BounceReport]] = [
    (
        "postfix 550 at RCPT",
        postfix_bounce(VERP, "bob@remote.test", MID),
        BounceReport(
            "bounce",
            (
                ReportedRecipient(
                    "bob@remote.test",
                    "5.1.1",
                    "550 5.1.1 <bob@remote.test>: Recipient address rejected: "
                    "User unknown in local recipient table",
                ),
            ),
            MID,
        ),
    ),
    (
        "postfix delay warning",
        postfix_delay(VERP, "bob@remote.test", MID),
        BounceReport(
            "delay",
            (
                ReportedRecipient(
                    "bob@remote.test",
                    "4.4.1",
                    "connect to mail.remote.test[192.0.2.25]:25: Connection timed out",
                ),
            ),
            MID,
        ),
    ),
    (
        "exim, two recipients, whole message returned",
        exim_bounce(VERP, ("carol@exim.test", "Dave@Exim.Test"), "orig.2@acme.test"),
        BounceReport(
            "bounce",
            (
                ReportedRecipient("carol@exim.test", "5.0.0", "550 No such user here"),
                ReportedRecipient("Dave@exim.test", "5.2.2", "552 5.2.2 Mailbox full"),
            ),
            "orig.2@acme.test",
        ),
    ),
    (
        "gmail, original named by X-Original-Message-ID",
        gmail_bounce(VERP, "nobody@gmail.test", "orig.3@acme.test"),
        BounceReport(
            "bounce",
            (
                ReportedRecipient(
                    "nobody@gmail.test",
                    "5.1.1",
                    "550-5.1.1 The email account that you tried to reach does not exist. Please try "
                    "550-5.1.1 double-checking the recipient's email address for typos or "
                    "550 5.1.1 unnecessary spaces. https://support.google.test/mail/?p=NoSuchUser",
                ),
            ),
            "orig.3@acme.test",
        ),
    ),
    (
        "exchange, xtext Original-Recipient and a three-digit subject code",
        exchange_bounce(VERP, "first+news@outlook-like.test", "orig.5@acme.test"),
        BounceReport(
            "bounce",
            (
                ReportedRecipient(
                    "first+news@outlook-like.test",
                    "5.1.10",
                    "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP "
                    "address lookup",
                ),
            ),
            "orig.5@acme.test",
        ),
    ),
    (
        "ARF abuse report from a mailbox provider",
        arf_complaint(VERP, "user@mailbox.test", "orig.4@acme.test"),
        BounceReport(
            "complaint",
            (ReportedRecipient("user@mailbox.test", None, "abuse"),),
            "orig.4@acme.test",
            "abuse",
        ),
    ),
    (
        "ARF with the recipient redacted: the original's single To",
        arf_complaint(VERP, None, "orig.6@acme.test", original_to="User <user@mailbox.test>"),
        BounceReport(
            "complaint",
            (ReportedRecipient("user@mailbox.test", None, "abuse"),),
            "orig.6@acme.test",
            "abuse",
        ),
    ),
    (
        "ARF fully redacted",
        arf_complaint(VERP, None, "orig.7@acme.test", original_to="redacted"),
        BounceReport("complaint", (), "orig.7@acme.test", "abuse"),
    ),
    (
        "our own DSN",
        own_dsn(),
        BounceReport(
            "bounce",
            (
                ReportedRecipient("bob@remote.test", "5.1.1", "550 5.1.1 No such user"),
                ReportedRecipient("carol@remote.test", "5.4.7", None),
            ),
            MID,
        ),
    ),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_real_world_reports(raw: bytes, expected: BounceReport) -> None:
    assert parse_report(raw) == expected


def test_the_recipients_unpack_as_address_status_diagnostic() -> None:
    report = parse_report(postfix_bounce(VERP, "bob@remote.test", MID))
    assert report is not None
    [(address, status, diagnostic)] = report.recipients
    assert (address, status) == ("bob@remote.test", "5.1.1")
    assert diagnostic is not None and diagnostic.startswith("550 5.1.1")


def status_report(blocks: str, report_type: str = "delivery-status") -> bytes:
    return crlf(f"""From: MAILER-DAEMON@mx.remote.test
Content-Type: multipart/report; report-type={report_type}; boundary="b"

--b
Content-Type: text/plain

People text.
--b
Content-Type: message/delivery-status

{blocks}
--b--
""")


def test_only_failed_recipients_count_when_some_were_delivered() -> None:
    raw = status_report("""Reporting-MTA: dns; mx.remote.test

Final-Recipient: rfc822; ok@remote.test
Action: delivered (to mailbox)
Status: 2.0.0

Final-Recipient: rfc822; slow@remote.test
Action: delayed
Status: 4.2.2

Final-Recipient: rfc822; <gone@remote.test>
Action: FAILED
Status: 5.1.1 (user unknown)
""")
    report = parse_report(raw)
    assert report is not None and report.kind == "bounce"
    assert report.recipients == (ReportedRecipient("gone@remote.test", "5.1.1", None),)
    assert report.original_message_id is None


def test_a_success_notification_needs_no_action() -> None:
    raw = status_report("""Reporting-MTA: dns; mx.remote.test

Final-Recipient: rfc822; ok@remote.test
Action: delivered
Status: 2.0.0
""")
    assert parse_report(raw) is None


def test_a_report_missing_its_per_message_block_is_still_read() -> None:
    raw = status_report("""Final-Recipient: rfc822; gone@remote.test
Action: failed
Status: 5.1.1
""")
    report = parse_report(raw)
    assert report is not None
    assert [r.address for r in report.recipients] == ["gone@remote.test"]


def test_a_report_wrapped_in_a_forward_is_found() -> None:
    inner = postfix_bounce(VERP, "bob@remote.test", MID)
    header_end = inner.index(b"\r\n\r\n")
    content_type_start = inner.index(b"Content-Type: multipart/report")
    content_type = inner[content_type_start:header_end].split(b"\r\nContent-Transfer")[0]
    body = inner[header_end + 4 :]
    wrapped = (
        b'From: someone@forwarder.test\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n'
        b"--outer\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n"
        b"--outer\r\n" + content_type + b"\r\n\r\n" + body + b"\r\n--outer--\r\n"
    )
    report = parse_report(wrapped)
    assert report is not None and report.recipients[0].address == "bob@remote.test"


def test_a_bounce_of_a_bounce_inside_an_attached_message_is_not_ours() -> None:
    inner = postfix_bounce("someone@else.test", "bob@remote.test", MID)
    raw = (
        b'From: MAILER-DAEMON@x.test\r\nContent-Type: multipart/mixed; boundary="o"\r\n\r\n'
        b"--o\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--o--\r\n"
    )
    assert parse_report(raw) is None


@pytest.mark.parametrize("feedback_type", ["not-spam", "auth-failure", ""])
def test_feedback_that_is_not_a_complaint(feedback_type: str) -> None:
    assert parse_report(arf_complaint(VERP, "user@mailbox.test", MID, feedback_type)) is None


def test_complaint_feedback_types_are_lower_case() -> None:
    report = parse_report(arf_complaint(VERP, "user@mailbox.test", MID, "Fraud (phishing)"))
    assert report is not None and report.kind == "complaint" and report.feedback_type == "fraud"


def test_multiple_original_recipients_in_a_complaint() -> None:
    raw = arf_complaint(VERP, "a@mailbox.test", MID).replace(
        b"Original-Rcpt-To: <a@mailbox.test>\r\n",
        b"Original-Rcpt-To: <a@mailbox.test>\r\nOriginal-Rcpt-To: b@mailbox.test\r\n"
        b"Original-Rcpt-To: a@mailbox.test\r\nOriginal-Rcpt-To: not an address\r\n",
    )
    report = parse_report(raw)
    assert report is not None
    assert [r.address for r in report.recipients] == ["a@mailbox.test", "b@mailbox.test"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 100,
        b"not a message at all",
        crlf("From: a@b.test\nSubject: hello\n\nJust a reply to your newsletter.\n"),
        crlf("Content-Type: multipart/report; report-type=delivery-status\n\nno boundary\n"),
        crlf(
            'Content-Type: multipart/report; boundary="b"\n\n--b\n'
            "Content-Type: message/delivery-status\n\n--b--\n"
        ),
        crlf(
            'Content-Type: multipart/report; boundary="b"\n\n--b\n'
            "Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
            "!!!not base64!!!\n--b--\n"
        ),
        crlf(
            'Content-Type: multipart/report; boundary="b"\n\n--b\n'
            "Content-Type: message/feedback-report\n\nUser-Agent: x\n--b--\n"
        ),
        crlf(
            'Content-Type: multipart/report; boundary="b"\n\n--b\n'
            "Content-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n"
            "Final-Recipient: x400; c=us\nAction: failed\n--b--\n"
        ),
        status_report("Final-Recipient: rfc822; no-at-sign\nAction: failed\nStatus: 5.1.1\n"),
    ],
)
def test_garbage_gives_none(raw: bytes) -> None:
    assert parse_report(raw) is None


def test_deeply_nested_multiparts_are_bounded() -> None:
    depth = 5000
    head = b"".join(
        f'--b{i}\r\nContent-Type: multipart/mixed; boundary="b{i + 1}"\r\n\r\n'.encode()
        for i in range(depth)
    )
    raw = b'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n' + head + b"text\r\n"
    # CPU time, not elapsed time: the bound holds however busy the machine is.
    started = time.process_time()
    assert parse_report(raw) is None
    assert time.process_time() - started < 10


def test_a_report_deeper_than_the_bound_is_not_searched_for() -> None:
    raw = postfix_bounce(VERP, "bob@remote.test", MID)
    for level in range(10):
        raw = (
            f'Content-Type: multipart/mixed; boundary="n{level}"\r\n\r\n--n{level}\r\n'.encode()
            + raw
            + f"\r\n--n{level}--\r\n".encode()
        )
    assert parse_report(raw) is None


def test_recipients_per_report_are_bounded() -> None:
    blocks = "Reporting-MTA: dns; x\n\n" + "\n".join(
        f"Final-Recipient: rfc822; r{i}@remote.test\nAction: failed\nStatus: 5.1.1\n"
        for i in range(MAX_RECIPIENTS * 4)
    )
    report = parse_report(status_report(blocks))
    assert report is not None and len(report.recipients) == MAX_RECIPIENTS


def test_a_huge_report_is_read_quickly_and_fields_are_bounded() -> None:
    long_diagnostic = "x" * 100_000
    attachment = b"A" * 20_000_000
    raw = (
        status_report(
            f"Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; r@remote.test\nAction: failed\n"
            f"Status: 5.1.1\nDiagnostic-Code: smtp; 550 {long_diagnostic}\n"
        )
        + attachment
    )
    started = time.process_time()
    report = parse_report(raw)
    assert time.process_time() - started < 5
    assert report is not None
    diagnostic = report.recipients[0].diagnostic
    assert diagnostic is not None and len(diagnostic) <= 2000


SAMPLES = [c[1] for c in CASES]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=4000))
def test_fuzz_random_bytes_never_raise(data: bytes) -> None:
    result = parse_report(data)
    assert result is None or isinstance(result, BounceReport)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.sampled_from(SAMPLES),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 40), st.binary(max_size=40)), max_size=6
    ),
)
def test_fuzz_mutated_reports_never_raise(
    sample: bytes, edits: list[tuple[float, int, bytes]]
) -> None:
    mutated = sample
    for where, cut, insert in edits:
        at = int(where * len(mutated))
        mutated = mutated[:at] + insert + mutated[at + cut :]
    result = parse_report(mutated)
    if result is not None:
        assert result.kind in ("bounce", "delay", "complaint")
        assert len(result.recipients) <= MAX_RECIPIENTS
        for address, _status, diagnostic in result.recipients:
            assert "@" in address and "\r" not in address and "\n" not in address
            assert diagnostic is None or len(diagnostic) <= 2000

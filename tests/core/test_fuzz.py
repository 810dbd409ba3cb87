"""Hypothesis over the pure parsers that read what strangers send: MIME structure extraction (the
IMAP views of a message), message metadata, DSN/ARF reports, DMARC records and the SMTP address
checks. Each either returns a value or raises its own typed error: never anything else, and
never unbounded work. A bounded number of examples keeps the run short in CI."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailmark.core import imap_structure
from mailmark.core.addresses import is_malformed_path, parse_recipient, parse_verp
from mailmark.core.bounce_reports import parse_report
from mailmark.core.errors import MailmarkError
from mailmark.core.message_meta import read_index, read_metadata
from mailmark.dns_tools.records import InvalidRecord, parse_dmarc

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_HEADER_NAMES = st.sampled_from(
    [
        b"Content-Type",
        b"Content-Transfer-Encoding",
        b"Content-Disposition",
        b"From",
        b"To",
        b"Subject",
        b"Message-ID",
        b"Date",
        b"MIME-Version",
        b"X-Junk",
    ]
)
_HEADER_VALUES = st.sampled_from(
    [
        b"multipart/mixed; boundary=b",
        b'multipart/alternative; boundary="b"',
        b"multipart/report; report-type=delivery-status; boundary=b",
        b"message/rfc822",
        b"message/delivery-status",
        b"message/feedback-report",
        b"text/plain; charset=utf-8",
        b"base64",
        b"quoted-printable",
        b'attachment; filename="a.txt"',
        b"=?utf-8?b?w6k=?=",
        b"<a@b>",
        b'a@b, "c" <d@e>',
        b"(comment",
        b"",
    ]
)
_LINES = st.one_of(
    st.tuples(_HEADER_NAMES, _HEADER_VALUES).map(lambda nv: nv[0] + b": " + nv[1]),
    st.sampled_from(
        [
            b"",
            b"--b",
            b"--b--",
            b" folded",
            b"Status: 5.1.1",
            b"Action: failed",
            b"Final-Recipient: rfc822; x@y",
            b"Feedback-Type: abuse",
            b"=",
        ]
    ),
    st.binary(max_size=40),
)
# Messages built from MIME-looking lines (so that the parsers go deep), and raw bytes.
MESSAGES = st.one_of(
    st.lists(_LINES, max_size=60).map(b"\r\n".join),
    st.binary(max_size=2000),
)


@FUZZ
@given(MESSAGES)
def test_mime_structure_of_any_bytes(raw: bytes) -> None:
    envelope, structure, body = imap_structure.describe(raw)
    assert envelope.startswith(b"(") and structure.startswith(b"(") and body.startswith(b"(")
    sections = imap_structure.MessageSections(raw)
    for part in ((), (1,), (2,), (1, 1), (2, 1, 3)):
        for kind in ("", "HEADER", "TEXT", "MIME"):
            assert isinstance(sections.section(part, kind), bytes)
        with contextlib.suppress(imap_structure.UnknownTransferEncoding):
            assert isinstance(sections.binary(part), bytes)
    # Each part is decoded at most once however often it is asked for.
    decoded = sections.bytes_decoded
    for part in ((1,), (2,)):
        with contextlib.suppress(imap_structure.UnknownTransferEncoding):
            sections.binary(part)
    assert sections.bytes_decoded == decoded


@FUZZ
@given(MESSAGES)
def test_metadata_and_index_of_any_bytes(raw: bytes) -> None:
    meta = read_metadata(raw)
    assert meta.subject is None or isinstance(meta.subject, str)
    read_index(raw)


@FUZZ
@given(MESSAGES)
def test_dsn_and_arf_reports_of_any_bytes(raw: bytes) -> None:
    report = parse_report(raw)
    assert report is None or report.kind in ("bounce", "delay", "complaint")


_DMARC_TAGS = st.lists(
    st.tuples(
        st.sampled_from(["v", "p", "sp", "pct", "adkim", "aspf", "rua", "ruf", "fo", "x", "P"]),
        st.sampled_from(
            [
                "DMARC1",
                "none",
                "reject",
                "quarantine",
                "50",
                "200",
                "-1",
                "r",
                "s",
                "mailto:a@b",
                "",
                "=",
                ";",
            ]
        ),
    ),
    max_size=10,
).map(lambda tags: "; ".join(f"{k}={v}" for k, v in tags))


@FUZZ
@given(st.one_of(_DMARC_TAGS, _DMARC_TAGS.map(lambda t: "v=DMARC1; " + t), st.text(max_size=200)))
def test_dmarc_records_parse_or_are_invalid(text: str) -> None:
    with contextlib.suppress(InvalidRecord):
        record = parse_dmarc(text)
        assert record.p in ("none", "quarantine", "reject")
        assert record.sp in ("none", "quarantine", "reject")
        assert 0 <= record.pct <= 100


_PATHS = st.one_of(
    st.text(max_size=80),
    st.lists(
        st.sampled_from(
            [
                "a",
                "@",
                ".",
                "%",
                "!",
                ":",
                "[",
                "]",
                '"',
                "+",
                "bounce",
                "mx.mailmark.test",
                "\x00",
                "\udcff",
                " ",
            ]
        ),
        max_size=20,
    ).map("".join),
)


@FUZZ
@given(_PATHS)
def test_smtp_paths_parse_or_are_refused(address: str) -> None:
    if is_malformed_path(address):
        return
    with contextlib.suppress(MailmarkError):
        recipient = parse_recipient(address)
        assert "@" not in recipient.local_part
    parse_verp(address, "mx.mailmark.test")

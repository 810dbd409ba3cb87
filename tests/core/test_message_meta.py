"""Message metadata from raw bytes: a table of header sections, RFC 5256 base subjects, and fuzzing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmark.core.errors import MailLoop, MessageTooLarge
from mailmark.core.message_meta import (
    MAX_HEADER_LINES,
    MAX_RECEIVED_HEADERS,
    MAX_TEXT_FROM_HTML,
    base_subject,
    check_header_limits,
    html_to_text,
    read_metadata,
)
from mailmark.core.model import Attachment, MessageMetadata


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            crlf(
                "From: Alice Example <Alice@Example.ORG>\n"
                "To: sales@acme.test, Bob <BOB@acme.test>\n"
                "Cc: carol@acme.test\n"
                "Subject: Quarterly numbers\n"
                "Message-ID: <q1@example.org>\n"
                "Date: Tue, 1 Jul 2025 10:00:00 +0200\n"
                "\n"
                "Here are the numbers.\n"
            ),
            {
                "message_id": "<q1@example.org>",
                "subject": "Quarterly numbers",
                "subject_key": "quarterly numbers",
                "is_reply": False,
                "from_addr": "alice@example.org",
                "to_addrs": ("sales@acme.test", "bob@acme.test"),
                "cc_addrs": ("carol@acme.test",),
                "date": datetime(2025, 7, 1, 8, 0, tzinfo=UTC),
                "snippet": "Here are the numbers.",
                "defects": (),
            },
            id="plain message",
        ),
        pytest.param(
            crlf(
                "Subject: Re: [acme] Quarterly numbers\n"
                "In-Reply-To: <q1@example.org> (sent by Alice)\n"
                "References: <q0@example.org>\n <q1@example.org>\n"
                "\n"
            ),
            {
                "subject_key": "quarterly numbers",
                "is_reply": True,
                "in_reply_to": "<q1@example.org>",
                "references": ("<q0@example.org>", "<q1@example.org>"),
            },
            id="reply with folded References",
        ),
        pytest.param(
            crlf("Subject: Quarterly numbers\nIn-Reply-To: <q1@example.org>\n\n"),
            {"is_reply": True, "in_reply_to": "<q1@example.org>", "references": ()},
            id="In-Reply-To alone makes a reply",
        ),
        pytest.param(
            crlf("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus =?iso-8859-1?q?K=F6ln?=\n\n"),
            {"subject": "Grüße aus Köln", "subject_key": "grüße aus köln"},
            id="RFC 2047 encoded words",
        ),
        pytest.param(
            crlf("Date: Tue, 1 Jul 2025 10:00:00 -0000\nMessage-ID: not-in-brackets\n\n"),
            {"date": datetime(2025, 7, 1, 10, 0, tzinfo=UTC), "message_id": None},
            id="-0000 date is UTC; a Message-ID without brackets is ignored",
        ),
        pytest.param(
            crlf("From: a@example.org\nFrom: b@example.org\nDate: yesterday-ish\n\n"),
            {
                "from_addr": "a@example.org",
                "date": None,
                "defects": ("more than one From header", "unparseable Date"),
            },
            id="defects are recorded, not raised",
        ),
        pytest.param(
            b"\r\nA body and no header at all.\r\n",
            {"subject": None, "message_id": None, "snippet": "A body and no header at all."},
            id="no header section",
        ),
        pytest.param(
            b"Subject: headers only, no line break at the end",
            {"subject": "headers only, no line break at the end", "snippet": ""},
            id="no body",
        ),
        pytest.param(
            crlf(
                "Content-Type: multipart/mixed; boundary=b\n\n"
                "--b\nContent-Type: text/html\n\n"
                "<p>Hi <b>there</b> &amp; welcome</p><script>alert(1)</script>\n"
                '--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="q.pdf"\n'
                "Content-Transfer-Encoding: base64\n\nAAAA\n"
                "--b--\n"
            ),
            {
                "snippet": "Hi there & welcome",
                "attachments": (Attachment("q.pdf", "application/pdf", 3),),
            },
            id="HTML snippet without tags or scripts; attachments listed",
        ),
    ],
)
def test_read_metadata(raw: bytes, expected: dict[str, Any]) -> None:
    meta = read_metadata(raw)
    assert {key: getattr(meta, key) for key in expected} == expected


@pytest.mark.parametrize(
    ("subject", "key", "is_reply"),
    [
        ("Hello", "hello", False),
        ("  Hello \t  World  ", "hello world", False),  # RFC 5256 §2.1 (1): fold white space
        ("Re: Hello", "hello", True),  # (3) subj-refwd
        ("RE:Hello", "hello", True),
        ("Re : Hello", "hello", True),
        ("Re: Re: RE: Hello", "hello", True),  # (5) repeat
        ("Re[2]: Hello", "hello", True),  # subj-refwd with a blob
        ("Fwd: Hello", "hello", True),
        ("Fw: Hello", "hello", True),
        ("FWD: Re: Hello", "hello", True),
        ("Hello (fwd)", "hello", True),  # (2) subj-trailer
        ("Re: Hello (fwd) (FWD)", "hello", True),
        ("[acme] Re: Hello", "hello", True),  # (4) leading subj-blob
        ("Re: [acme] Hello", "hello", True),
        ("[a][b] Re: Hello", "hello", True),
        ("[PATCH] fix the build", "fix the build", False),
        ("AW: Hello", "hello", True),  # the German and Scandinavian prefixes clients send
        ("SV: Hello", "hello", True),
        (
            "Regarding: Hello",
            "regarding: hello",
            False,
        ),  # a word that starts with "re" is no prefix
        ("Report: Q3", "report: q3", False),
        ("", "", False),
        ("Re:", "", True),
    ],
)
def test_base_subject(subject: str, key: str, is_reply: bool) -> None:
    assert base_subject(subject) == (key, is_reply)


@pytest.mark.parametrize(
    ("subject", "key"),
    [
        ("[Fwd: Hello]", "hello"),  # RFC 5256 §2.1 step 6
        ("[PATCH]", "[patch]"),  # step 4: the blob stays when nothing else would
        ("Re: [Fwd: Re: Hello] (fwd)", "hello"),
        ("[list] [PATCH] fix", "fix"),
    ],
)
def test_base_subject_rfc5256_blob_rules(subject: str, key: str) -> None:
    assert base_subject(subject)[0] == key


def test_header_limits_refuse_header_bombs_and_loops() -> None:
    check_header_limits(crlf("Received: from a\n" * MAX_RECEIVED_HEADERS + "\nbody\n"))
    with pytest.raises(MailLoop):
        check_header_limits(crlf("Received: from a\n" * (MAX_RECEIVED_HEADERS + 1) + "\nbody\n"))
    with pytest.raises(MessageTooLarge):
        check_header_limits(crlf("X-Filler: y\n" * (MAX_HEADER_LINES + 1) + "\nbody\n"))
    # Received lines in the body are the body's business.
    check_header_limits(crlf("Subject: x\n\n" + "Received: from a\n" * 500))


def test_deeply_nested_mime_degrades_to_a_defect() -> None:
    depth = 60
    opening = "".join(
        f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n" for i in range(depth)
    )
    raw = (opening + "Content-Type: text/plain\r\n\r\ndeep\r\n").encode()
    meta = read_metadata(raw)
    assert any("MIME nesting deeper" in defect for defect in meta.defects)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.lists(
            st.sampled_from(
                [
                    b"Subject: ",
                    b"=?utf-8?b?",
                    b"=?x?q?=FF",
                    b"From: ",
                    b"<a@b>",
                    b"Date: ",
                    b"\r\n",
                    b"\r\n\r\n",
                    b"Content-Type: multipart/mixed; boundary=z\r\n",
                    b"--z\r\n",
                    b"\xff",
                    b"References: ",
                    b"(",
                    b'"',
                    b"Re: ",
                    b"[",
                    b"]",
                    b"\t",
                    b"@",
                    b",",
                ]
            ),
            max_size=60,
        ).map(b"".join),
    )
)
def test_read_metadata_never_raises(raw: bytes) -> None:
    meta = read_metadata(raw)
    assert isinstance(meta, MessageMetadata)
    assert len(meta.snippet) <= 200
    assert meta.subject_key == meta.subject_key.strip()


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Hello <b>Bob</b>,</p><p>Thanks</p>", "Hello Bob,\n\nThanks\n"),
        ("one<br>two<br/>three", "one\ntwo\nthree\n"),
        ('<a href="https://acme.test/x">the page</a>', "the page <https://acme.test/x>\n"),
        ('<a href="https://acme.test/x">https://acme.test/x</a>', "https://acme.test/x\n"),
        ('<a href="mailto:bob@acme.test">Bob</a>', "Bob <bob@acme.test>\n"),
        ('<a href="javascript:alert(1)">click</a>', "click\n"),
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two\n"),
        ("<blockquote><p>quoted</p></blockquote><p>reply</p>", "> quoted\n\nreply\n"),
        ("<pre>a\n  b</pre>", "a\n  b\n"),
        ("<style>p{color:red}</style><script>x()</script><p>kept</p>", "kept\n"),
        ("<p>Fish &amp; chips &lt;3</p>", "Fish & chips <3\n"),
        ("<div>a</div><div>b</div>", "a\nb\n"),
        ("", "\n"),
    ],
)
def test_html_becomes_the_text_a_reader_sees(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


@settings(deadline=None)  # a loaded machine makes any per-example deadline flaky
@given(st.text(max_size=2000))
def test_html_to_text_takes_anything_and_stays_bounded(markup: str) -> None:
    text = html_to_text(markup)
    assert text.endswith("\n") and len(text) <= MAX_TEXT_FROM_HTML + 1

"""ENVELOPE, BODYSTRUCTURE and sections of raw messages (RFC 3501 §6.4.5, §7.4.2)."""

from __future__ import annotations

import base64
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmark.core import imap_structure as structure
from mailmark.core.message_meta import read_index

MIXED = (
    b'From: "Joe Q. Public" <john.q.public@example.com>\r\n'
    b"To: Mary Smith <mary@x.test>, jdoe@one.test\r\n"
    b"Cc: A Group:Ed Jones <c@a.test>,joe@where.test;\r\n"
    b"Subject: =?utf-8?q?Hi?=\r\n  there\r\n"
    b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
    b"Message-ID: <1234@local.machine.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--b1\r\n"
    b"Content-Type: multipart/alternative; boundary=b2\r\n"
    b"\r\n"
    b"--b2\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"hello\r\nworld\r\n"
    b"--b2\r\n"
    b"Content-Type: text/html\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"<p>h=C3=A9</p>\r\n"
    b"--b2--\r\n"
    b"--b1\r\n"
    b"Content-Type: application/pdf; name=a.pdf\r\n"
    b'Content-Disposition: attachment; filename="a.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Language: en, fr\r\n"
    b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--b1\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: x@y.test\r\n"
    b"Subject: inner\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--b1--\r\n"
    b"epilogue\r\n"
)


def balanced(data: bytes) -> bool:
    """Whether parentheses balance outside quoted strings and literals."""
    depth = 0
    pos = 0
    while pos < len(data):
        ch = data[pos : pos + 1]
        if ch == b'"':
            pos += 1
            while data[pos : pos + 1] != b'"':
                pos += 2 if data[pos : pos + 1] == b"\\" else 1
                if pos >= len(data):
                    return False
        elif ch == b"{":
            close = data.index(b"}\r\n", pos)
            pos = close + 3 + int(data[pos + 1 : close]) - 1
        elif ch == b"(":
            depth += 1
        elif ch == b")":
            depth -= 1
            if depth < 0:
                return False
        pos += 1
    return depth == 0


def test_envelope_of_a_multipart_message() -> None:
    assert structure.envelope(MIXED) == (
        b'("Tue, 1 Jul 2003 10:52:37 +0200" "=?utf-8?q?Hi?=  there" '
        b'(("Joe Q. Public" NIL "john.q.public" "example.com")) '
        b'(("Joe Q. Public" NIL "john.q.public" "example.com")) '
        b'(("Joe Q. Public" NIL "john.q.public" "example.com")) '
        b'(("Mary Smith" NIL "mary" "x.test")(NIL NIL "jdoe" "one.test")) '
        b'((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")'
        b"(NIL NIL NIL NIL)) "
        b'NIL NIL "<1234@local.machine.example>")'
    )


def test_bodystructure_of_alternative_attachment_and_nested_message() -> None:
    assert structure.bodystructure(MIXED) == (
        b'((("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 12 2 NIL NIL NIL NIL)'
        b'("text" "html" NIL NIL NIL "quoted-printable" 14 1 NIL NIL NIL NIL) "alternative" '
        b'("boundary" "b2") NIL NIL NIL)'
        b'("application" "pdf" ("name" "a.pdf") NIL NIL "base64" 12 "Q2hlY2sgSW50ZWdyaXR5IQ==" '
        b'("attachment" ("filename" "a.pdf")) ("en" "fr") NIL)'
        b'("message" "rfc822" NIL NIL NIL "7BIT" 44 '
        b'(NIL "inner" ((NIL NIL "x" "y.test")) ((NIL NIL "x" "y.test")) ((NIL NIL "x" "y.test")) '
        b"NIL NIL NIL NIL NIL) "
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 10 1 NIL NIL NIL NIL) 4 '
        b'NIL NIL NIL NIL) "mixed" ("boundary" "b1") NIL NIL NIL)'
    )


def test_body_is_bodystructure_without_extension_data() -> None:
    assert structure.bodystructure(MIXED, extensible=False) == (
        b'((("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 12 2)'
        b'("text" "html" NIL NIL NIL "quoted-printable" 14 1) "alternative")'
        b'("application" "pdf" ("name" "a.pdf") NIL NIL "base64" 12)'
        b'("message" "rfc822" NIL NIL NIL "7BIT" 44 '
        b'(NIL "inner" ((NIL NIL "x" "y.test")) ((NIL NIL "x" "y.test")) ((NIL NIL "x" "y.test")) '
        b'NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 10 1) 4) "mixed")'
    )


def test_describe_matches_the_single_renderers() -> None:
    assert structure.describe(MIXED) == (
        structure.envelope(MIXED),
        structure.bodystructure(MIXED),
        structure.bodystructure(MIXED, extensible=False),
    )


@pytest.mark.parametrize(
    ("part", "kind", "expected"),
    [
        ((), "", MIXED),
        ((), "TEXT", MIXED[MIXED.index(b"\r\n\r\n") + 4 :]),
        ((), "HEADER", MIXED[: MIXED.index(b"\r\n\r\n") + 4]),
        ((1, 1), "", b"hello\r\nworld"),
        ((1, 1), "MIME", b"Content-Type: text/plain; charset=utf-8\r\n\r\n"),
        ((1, 2), "", b"<p>h=C3=A9</p>"),
        ((2,), "", b"JVBERi0xLjQK"),
        ((3,), "", b"From: x@y.test\r\nSubject: inner\r\n\r\ninner body"),
        ((3,), "HEADER", b"From: x@y.test\r\nSubject: inner\r\n\r\n"),
        ((3,), "TEXT", b"inner body"),
        ((3,), "MIME", b"Content-Type: message/rfc822\r\n\r\n"),
        ((3, 1), "", b"inner body"),
        ((1,), "HEADER", b""),  # HEADER of a part that is not message/rfc822
        ((4,), "", b""),
        ((1, 1, 1), "", b""),
        ((0,), "", b""),
    ],
)
def test_sections_are_exact_bytes(part: tuple[int, ...], kind: str, expected: bytes) -> None:
    assert structure.section(MIXED, part, kind) == expected


def test_header_fields_keep_folding_and_end_with_an_empty_line() -> None:
    assert structure.section(MIXED, (), "HEADER.FIELDS", ["SUBJECT", "to"]) == (
        b"To: Mary Smith <mary@x.test>, jdoe@one.test\r\nSubject: =?utf-8?q?Hi?=\r\n  there\r\n\r\n"
    )
    assert structure.section(MIXED, (), "HEADER.FIELDS", ["X-None"]) == b"\r\n"
    not_fields = structure.section(MIXED, (), "header.fields.not", ["from", "to", "cc", "subject"])
    assert not_fields.startswith(b"Date: ") and b"Subject" not in not_fields


def test_single_part_message_has_part_one() -> None:
    raw = b"Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
    assert structure.section(raw, (1,), "") == b"aGVsbG8=\r\n"
    assert structure.section(raw, (2,), "") == b""
    assert structure.binary(raw, (1,)) == b"hello"


def test_binary_decodes_transfer_encodings() -> None:
    assert structure.binary(MIXED, (2,)) == b"%PDF-1.4\n"
    assert structure.binary(MIXED, (1, 2)) == "<p>hé</p>".encode()
    assert structure.binary(MIXED, (1, 1)) == b"hello\r\nworld"
    odd = b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644\r\n"
    with pytest.raises(structure.UnknownTransferEncoding):
        structure.binary(odd, (1,))


def test_a_worker_returns_binary_partials_and_sizes_not_the_decoded_part() -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    raw = (
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--b--\r\n"
    )
    Request = structure.SectionRequest
    offsets = range(0, len(payload), len(payload) // 99)[:99]
    requests = [Request("BINARY", (2,), partial=(offset, 1)) for offset in offsets]
    requests.append(Request("BINARY.SIZE", (2,)))
    found = structure.extract(raw, requests)
    # What crosses back from the worker is what the items name: 99 octets and a length.
    assert len(pickle.dumps(found)) < 10_000
    assert found.decoded == {}
    # Decoded once; the CRLF before the boundary belongs to the boundary (RFC 2046 §5.1.1).
    decoded_once = len(encoded) - 2
    assert found.bytes_decoded == decoded_once
    sections = structure.MessageSections.extracted(raw, found)
    assert sections.binary_size((2,)) == len(payload)
    for offset in offsets:
        assert sections.binary_slice((2,), offset, 1) == payload[offset : offset + 1]
    assert sections.bytes_decoded == decoded_once  # nothing decoded again here
    # Asked for whole, the part comes back whole; its slices are cut from it.
    whole = structure.extract(
        raw, [Request("BINARY", (2,)), Request("BINARY", (1,), partial=(1, 3))]
    )
    assert whole.decoded == {(2,): payload}
    assert structure.MessageSections.extracted(raw, whole).binary_slice((1,), 1, 3) == b"ell"


def test_defaults_for_a_message_without_mime_headers() -> None:
    assert structure.bodystructure(b"Subject: hi\r\n\r\nline one\r\nline two\r\n") == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 20 2 NIL NIL NIL NIL)'
    )
    assert structure.envelope(b"") == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_eight_bit_and_quotes_become_literals_or_escapes() -> None:
    raw = 'Subject: café "x" \\ y\r\nFrom: "Ünï" <u@x.test>\r\n\r\n'.encode()
    env = structure.envelope(raw)
    subject = 'café "x" \\ y'.encode()
    assert b"{%d}\r\n" % len(subject) + subject in env
    assert structure.nstring(b'a"b\\c') == b'"a\\"b\\\\c"'
    assert balanced(env)


def test_multipart_without_boundary_is_text_and_digest_defaults_to_messages() -> None:
    assert structure.bodystructure(b"Content-Type: multipart/mixed\r\n\r\nbody").startswith(
        b'("text" "plain"'
    )
    digest = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nbody\r\n--d--\r\n"
    assert structure.bodystructure(digest).startswith(b'(("message" "rfc822"')


def test_nesting_and_part_count_are_bounded() -> None:
    deep = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(2_000)
    )
    out = structure.bodystructure(deep)
    assert balanced(out) and out.count(b"(") < 200
    many = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        + b"--x\r\n\r\nx\r\n" * 5_000
        + b"--x--\r\n"
    )
    assert structure.bodystructure(many).count(b'"text" "plain"') < structure.MAX_PARTS


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2_000))
def test_garbage_never_raises_and_stays_balanced(raw: bytes) -> None:
    envelope, body, plain = structure.describe(raw)
    assert balanced(envelope) and balanced(body) and balanced(plain)
    structure.section(raw, (1, 2), "MIME")
    structure.section(raw, (1,), "HEADER.FIELDS", ["subject"])


mime_piece = st.sampled_from(
    [
        b"Content-Type: multipart/mixed; boundary=a\r\n",
        b"Content-Type: message/rfc822\r\n",
        b'Content-Type: text/plain; charset="x\r\n',
        b"\r\n",
        b"--a\r\n",
        b"--a--\r\n",
        b"From: <a@b\r\n",
        b'To: g: a@b, (c) "d\\" e" <f>;\r\n',
        b"Subject: \xff\x00\r\n",
        b"body\n",
        b" folded\r\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(mime_piece, max_size=40))
def test_mime_shaped_garbage_never_raises(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    envelope, body, plain = structure.describe(raw)
    assert balanced(envelope) and balanced(body) and balanced(plain)
    for part in [(1,), (1, 1), (2, 1, 1)]:
        for kind in sorted(structure.SECTION_KINDS):
            assert isinstance(structure.section(raw, part, kind, ["to"]), bytes)


def test_full_text_source_is_decoded_text() -> None:
    raw = (
        b"Subject: =?utf-8?q?Caf=C3=A9?=\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n"
        b"--z\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"aMOpbGxvIHdvcmxk\r\n--z\r\nContent-Type: text/html\r\n\r\n<p>Big <b>News</b></p>\r\n"
        b"--z\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--z--\r\n"
    )
    index = read_index(raw)
    assert "subject: Café" in index.header_text
    assert "héllo world" in index.body_text and "Big  News" in index.body_text
    assert "iVBOR" not in index.body_text
    assert index.envelope == structure.envelope(raw)


@settings(max_examples=200, deadline=None)
@given(st.lists(mime_piece, max_size=40))
def test_full_text_source_never_raises(pieces: list[bytes]) -> None:
    index = read_index(b"".join(pieces))
    assert "\x00" not in index.header_text and "\x00" not in index.body_text

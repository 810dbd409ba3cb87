"""The header fields and MIME parts of messages Mailmark writes: what a standard parser reads back
is exactly what was given, lines end in CRLF and stay within RFC 5322's limits."""

from __future__ import annotations

import email
import email.header
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from mailmark.core import compose

NAMES = [
    "Sales",
    "Jane Doe, CEO",
    'Quote "me" \\ back',
    "J. R. R. Tolkien",
    "Zoë Ångström",
    "山田太郎",
    "=?utf-8?q?not_a_word?=",
]
SUBJECTS = [
    "",
    "Hi",
    "Quarterly numbers: é",
    "two  spaces and a trailing one ",
    "word " * 60,
    "x" * 990,
    "Привет, мир! " * 20,
    "🎉 party 🎉" * 10,
    "looks like =?utf-8?b?SGk=?= an encoded word",
    "tab\tinside",
]


def parse(head: str, body: bytes = b"") -> EmailMessage:
    message = email.message_from_bytes(
        head.encode("ascii") + b"\r\n" + body, policy=email.policy.default
    )
    assert isinstance(message, EmailMessage)
    return message


def check_lines(head: str) -> None:
    assert head.endswith("\r\n")
    lines = head[:-2].split("\r\n")
    assert all("\n" not in line and "\r" not in line for line in lines)
    assert all(len(line) <= compose.MAX_LINE for line in lines)
    assert all(line.strip() for line in lines), "no line of white space only"
    for line in lines[1:]:
        assert line[0] == " ", "a continuation line starts with white space"


@pytest.mark.parametrize("subject", SUBJECTS)
def test_a_subject_reads_back_exactly(subject: str) -> None:
    field = compose.unstructured("Subject", subject)
    check_lines(field)
    assert field.isascii()
    assert str(parse(field)["Subject"]) == subject


def test_long_ascii_text_folds_at_spaces_within_78_characters() -> None:
    field = compose.unstructured("Subject", "word " * 60 + "end")
    assert "=?" not in field
    assert max(len(line) for line in field.split("\r\n")) <= compose.LINE_LENGTH
    assert field.count("\r\n") > 3


def test_non_ascii_text_becomes_encoded_words_of_at_most_75_characters() -> None:
    field = compose.unstructured("Subject", "Привет, мир! " * 20)
    words = field.replace("\r\n", "").split(" ")[1:]
    assert words and all(w.startswith("=?utf-8?b?") and w.endswith("?=") for w in words)
    assert all(len(w) <= 75 for w in words)
    assert max(len(line) for line in field.split("\r\n")) <= compose.LINE_LENGTH


def test_encoded_words_never_split_a_character() -> None:
    for word in compose.encoded_words("🎉é" * 40):
        assert email.header.decode_header(word)[0][0].decode("utf-8")


@pytest.mark.parametrize("name", NAMES)
def test_a_display_name_reads_back_exactly(name: str) -> None:
    field = compose.address_list("From", [compose.mailbox(name, "sales@acme.test")])
    check_lines(field)
    [address] = parse(field)["From"].addresses
    assert address.display_name == name
    assert address.addr_spec == "sales@acme.test"


def test_a_long_non_ascii_name_is_split_into_encoded_words_that_decode_to_it() -> None:
    name = "Émile " * 30
    field = compose.address_list("From", [compose.mailbox(name, "sales@acme.test")])
    check_lines(field)
    assert max(len(line) for line in field.split("\r\n")) <= compose.LINE_LENGTH
    phrase = field.removeprefix("From: ").rsplit(" <", 1)[0]
    # RFC 2047 §6.2: white space between adjacent encoded-words is ignored.
    assert str(email.header.make_header(email.header.decode_header(phrase))) == name


def test_names_with_specials_are_quoted_and_plain_names_are_not() -> None:
    assert compose.mailbox("Sales", "s@acme.test") == "Sales <s@acme.test>"
    assert compose.mailbox("Jane Doe, CEO", "c@acme.test") == '"Jane Doe, CEO" <c@acme.test>'
    assert compose.mailbox("", "c@acme.test") == "c@acme.test"


def test_a_long_address_list_folds_after_commas_and_reads_back() -> None:
    addresses = [f"recipient{n}@example{n}.test" for n in range(40)]
    field = compose.address_list("To", addresses)
    check_lines(field)
    assert max(len(line) for line in field.split("\r\n")) <= compose.LINE_LENGTH
    assert [a.addr_spec for a in parse(field)["To"].addresses] == addresses


@pytest.mark.parametrize(
    ("text", "cte"),
    [
        ("Hello\nworld", "7bit"),
        ("Grüße\r\nnach Hause", "8bit"),
        ("a" * 200 + "\nshort", "quoted-printable"),
        ("ж" * 200, "base64"),
        ("", "7bit"),
    ],
)
def test_a_text_part_picks_its_transfer_encoding_and_reads_back(text: str, cte: str) -> None:
    head, body = compose.text_part("plain", text)
    assert b"\n" not in body.replace(b"\r\n", b"") and b"\r" not in body.replace(b"\r\n", b"")
    assert all(len(line) <= compose.LINE_LENGTH for line in body.split(b"\r\n"))
    message = parse(head, body)
    assert message["Content-Transfer-Encoding"] == cte
    assert message.get_content_charset() == "utf-8"
    expected = "".join(line + "\n" for line in text.splitlines())
    assert message.get_content().replace("\r\n", "\n") == expected


def test_trailing_white_space_survives_quoted_printable() -> None:
    text = "x" * 100 + "  \nnext"
    head, body = compose.text_part("plain", text)
    assert parse(head, body).get_content().replace("\r\n", "\n") == "x" * 100 + "  \nnext\n"


def test_alternative_parts_read_back_in_order_with_a_fresh_boundary() -> None:
    plain = compose.text_part("plain", "Hello")
    html = compose.text_part("html", "<p>Hello</p>")
    head, body = compose.alternative([plain, html])
    message = parse(head, body)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert [p.get_content() for p in message.iter_parts()] == ["Hello\r\n", "<p>Hello</p>\r\n"]
    assert compose.alternative([plain, html])[0] != head


PNG = bytes(range(256)) * 40
PDF = b"%PDF-1.4\n" + bytes(reversed(range(256))) * 7
FILENAMES = [
    "invoice.pdf",
    "my report (final).pdf",
    'quote "me".txt',
    "Übersicht März.xlsx",
    "報告書" * 30 + ".docx",
    "x" * 200 + ".bin",
]


def build(attachments: list[compose.Attachment], html: str | None = "<p>Hi</p>") -> bytes:
    return compose.build_message(
        sender="sales@acme.test",
        to=["bob@remote.test"],
        cc=[],
        reply_to=None,
        subject="Files",
        date=datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
        message_id="1@acme.test",
        extra_headers={},
        text="Hi",
        html=html,
        signature="",
        attachments=attachments,
    )


def lines_within_limits(raw: bytes) -> None:
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= compose.LINE_LENGTH for line in raw.split(b"\r\n"))


@pytest.mark.parametrize("filename", FILENAMES)
def test_an_attachment_filename_reads_back_exactly(filename: str) -> None:
    raw = build([compose.Attachment(filename, PDF, "application/pdf")])

    message = email.message_from_bytes(raw, policy=email.policy.default)
    [part] = list(message.iter_attachments())
    assert part.get_filename() == filename
    assert part.get_param("name") == filename
    assert part.get_content_disposition() == "attachment"
    assert part.get_content() == PDF
    lines_within_limits(raw)


def test_inline_parts_are_related_to_the_body_and_files_are_mixed_after_it() -> None:
    raw = build(
        [
            compose.Attachment("logo.png", PNG, "image/png", "logo@acme.test"),
            compose.Attachment("invoice.pdf", PDF, "application/pdf"),
        ],
        html='<p>Hi</p><img src="cid:logo@acme.test">',
    )

    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/mixed"
    related, attached = message.get_payload()
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == "multipart/alternative"
    body, image = related.get_payload()
    assert [p.get_content_type() for p in body.get_payload()] == ["text/plain", "text/html"]
    assert image["Content-ID"] == "<logo@acme.test>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == PNG
    assert attached.get_content_type() == "application/pdf" and attached.get_content() == PDF
    assert message.defects == [] and all(not p.defects for p in message.walk())
    lines_within_limits(raw)


def test_inline_parts_alone_make_a_related_message_and_files_alone_a_mixed_one() -> None:
    inline = email.message_from_bytes(
        build([compose.Attachment("a.png", PNG, "image/png", "a")], html="<img src='cid:a'>"),
        policy=email.policy.default,
    )
    assert inline.get_content_type() == "multipart/related"
    files = email.message_from_bytes(
        build([compose.Attachment("a.bin", b"", "application/octet-stream")], html=None),
        policy=email.policy.default,
    )
    assert files.get_content_type() == "multipart/mixed"
    text, empty = files.get_payload()
    assert text.get_content_type() == "text/plain" and empty.get_content() == b""


def test_without_attachments_the_message_is_as_before() -> None:
    raw = build([])

    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/alternative"


@pytest.mark.parametrize(
    ("value", "pieces"),
    [
        ("report.pdf", ["filename=report.pdf"]),
        ("my report.pdf", ['filename="my report.pdf"']),
        ('a "b" \\ c', ['filename="a \\"b\\" \\\\ c"']),
        ("März.pdf", ["filename*=utf-8''M%C3%A4rz.pdf"]),
    ],
)
def test_a_parameter_is_a_token_a_quoted_string_or_an_extended_value(
    value: str, pieces: list[str]
) -> None:
    assert compose.parameter("filename", value) == pieces


def test_a_long_extended_value_is_split_without_breaking_an_escape() -> None:
    pieces = compose.parameter("filename", "é" * 40)

    assert pieces[0].startswith("filename*0*=utf-8''")
    assert all(piece.startswith(f"filename*{i}*=") for i, piece in enumerate(pieces))
    values = [piece.split("=", 1)[1] for piece in pieces]
    assert all("%" not in value[-2:] for value in values)
    assert "".join(values) == "utf-8''" + "%C3%A9" * 40

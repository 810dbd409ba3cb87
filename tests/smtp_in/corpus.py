"""Awkward real-world message shapes, built in code, and the byte-exact SMTP client that sends them.

Every shape is (name, bytes): the message exactly as it should be stored, CRLF line endings,
ending in CRLF unless empty, so that `dot_stuff(message) + b".\\r\\n"` is its DATA transmission.
aiosmtplib rewrites line endings, so tests that need exact bytes use `RawSmtp` instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
from dataclasses import dataclass

REPLY_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: its code and every line's text (without the code and separator)."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


class RawSmtp:
    """An SMTP client over a plain asyncio stream: sends the bytes it is given, nothing else."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> tuple[RawSmtp, Reply]:
        """Connect and return the client with the server's greeting."""
        reader, writer = await asyncio.open_connection(host, port, limit=1024 * 1024)
        client = cls(reader, writer)
        return client, await client.reply()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self) -> Reply:
        """Read one (possibly multi-line) reply, RFC 5321 §4.2.1."""
        lines: list[bytes] = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), REPLY_TIMEOUT_SECONDS)
            if not line.endswith(b"\n"):
                raise ConnectionError(f"connection closed mid-reply after {lines!r} + {line!r}")
            lines.append(line.rstrip(b"\r\n"))
            if line[3:4] != b"-":
                break
        return Reply(int(lines[0][:3]), tuple(ln[4:].decode("utf-8", "replace") for ln in lines))

    async def command(self, line: bytes | str) -> Reply:
        """Send one command line (CRLF added) and return its reply."""
        data = line.encode() if isinstance(line, str) else line
        await self.send(data + b"\r\n")
        return await self.reply()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def dot_stuff(message: bytes) -> bytes:
    """RFC 5321 §4.5.2: a line starting with "." gets one more "." in front."""
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def data_transmission(message: bytes) -> bytes:
    """What follows the 354 reply for `message`: the stuffed text and the end-of-data line."""
    assert message == b"" or message.endswith(b"\r\n"), "corpus messages end in CRLF"
    return dot_stuff(message) + b".\r\n"


def _crlf(*lines: str | bytes) -> bytes:
    return b"".join((ln.encode() if isinstance(ln, str) else ln) + b"\r\n" for ln in lines)


_HEAD = _crlf(
    "From: Alice <alice@example.org>",
    "To: sales@acme.test",
    "Date: Mon, 1 Jul 2024 10:00:00 +0000",
)


def _nesting_bomb(levels: int) -> bytes:
    """`levels` multipart/mixed parts, each the only child of the one before it."""
    opening = [_HEAD, b"Subject: nesting bomb\r\nMIME-Version: 1.0\r\n"]
    for level in range(levels):
        opening.append(
            b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        )
    opening.append(b"Content-Type: text/plain\r\n\r\nthe bottom\r\n")
    closing = [b"--b%d--\r\n" % level for level in reversed(range(levels))]
    return b"".join(opening + closing)


def _deep_multipart(levels: int) -> bytes:
    """Nested multiparts with a text part beside each level, deeper than the parser's bound."""
    parts = [b"Content-Type: text/plain; charset=utf-8\r\n\r\ninnermost text\r\n"]
    inner = parts[0]
    for level in range(levels):
        inner = (
            b'Content-Type: multipart/mixed; boundary="deep%d"\r\n\r\n'
            b"preamble %d\r\n--deep%d\r\nContent-Type: text/plain\r\n\r\nlevel %d\r\n"
            b"--deep%d\r\n%s--deep%d--\r\n" % (level, level, level, level, level, inner, level)
        )
    return _HEAD + b"Subject: deep multipart\r\nMIME-Version: 1.0\r\n" + inner


def _binary_garbage(size: int, seed: int) -> bytes:
    """Random octets (NULs and 0x80-0xFF included) in CRLF-terminated lines, no CR or LF inside."""
    rng = random.Random(seed)
    alphabet = bytes(b for b in range(256) if b not in (10, 13))
    octets = bytes(rng.choice(alphabet) for _ in range(size))
    return b"".join(octets[i : i + 76] + b"\r\n" for i in range(0, len(octets), 76))


def _many_parts(count: int) -> bytes:
    body = b"".join(
        b"--many\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % number for number in range(count)
    )
    return (
        _HEAD
        + b"Subject: many parts\r\nMIME-Version: 1.0\r\n"
        + b"Content-Type: multipart/mixed; boundary=many\r\n\r\n"
        + body
        + b"--many--\r\n"
    )


def build_corpus() -> list[tuple[str, bytes]]:
    latin1 = "Grüße aus Köln, ça va? ½ € not in latin-1".encode("latin-1", "replace")
    shapes: list[tuple[str, bytes]] = [
        (
            "latin1_8bit_body_and_raw_8bit_subject",
            _HEAD
            + b"Subject: Gr\xfc\xdfe aus K\xf6ln\r\n"
            + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
            + b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            + latin1
            + b"\r\n",
        ),
        (
            "shift_jis_body",
            _HEAD
            + b"Subject: =?shift_jis?b?"
            + base64.b64encode("会議の件".encode("shift_jis"))
            + b"?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=shift_jis\r\n\r\n"
            + "明日の会議は十時からです。".encode("shift_jis")
            + b"\r\n",
        ),
        (
            "unknown_charset",
            _HEAD
            + b"Subject: unknown charset\r\nContent-Type: text/plain; charset=x-klingon-1\r\n\r\n"
            + bytes(range(0x80, 0x100))
            + b"\r\n",
        ),
        (
            "raw_utf8_headers",
            _crlf(
                "From: Jörg Müller <jörg@bücher.example>",
                "To: Ünïcödé <sales@acme.test>",
                "Subject: Grüße 日本語 🎉",
                "Content-Type: text/plain; charset=utf-8",
                "",
                "Body with emoji 🎉 and ümlauts.",
            ),
        ),
        ("deep_multipart_50_levels", _deep_multipart(50)),
        ("nesting_bomb_10000_levels", _nesting_bomb(10_000)),
        ("many_parts_2000", _many_parts(2000)),
        (
            "header_flood_500k_lines",
            _HEAD + b"Subject: header flood\r\n" + b"X-A: 1\r\n" * 500_000 + b"\r\nbody\r\n",
        ),
        ("missing_all_headers", b"\r\nA body with no header section at all.\r\n"),
        (
            "duplicate_headers",
            _crlf(
                "From: one@example.org",
                "From: two@example.org",
                "To: sales@acme.test",
                "Subject: first subject",
                "Subject: second subject",
                "Message-ID: <a@example.org>",
                "Message-ID: <b@example.org>",
                "Date: Mon, 1 Jul 2024 10:00:00 +0000",
                "Date: Tue, 2 Jul 2024 10:00:00 +0000",
                "",
                "Which one wins?",
            ),
        ),
        ("no_body", _HEAD + b"Subject: no body\r\n\r\n"),
        ("only_headers_without_blank_line", _HEAD + b"Subject: only headers\r\n"),
        ("empty_message", b""),
        (
            "long_line_20000",
            _HEAD + b"Subject: long line\r\n\r\n" + b"x" * 20_000 + b"\r\nshort line\r\n",
        ),
        (
            "line_over_64k",
            _HEAD + b"Subject: very long line\r\n\r\n" + b"y" * 200_000 + b"\r\n",
        ),
        ("binary_garbage", _binary_garbage(64 * 1024, seed=2034)),
        (
            "binary_body_after_headers",
            _HEAD + b"Subject: binary body\r\n\r\n" + _binary_garbage(32 * 1024, seed=5321),
        ),
        (
            "nul_bytes",
            _HEAD
            + b"Subject: nul\x00in\x00subject\r\nX-Nul: \x00\x00\r\n\r\n"
            + b"body\x00with\x00nuls\r\n",
        ),
        (
            "broken_base64",
            _HEAD
            + b"Subject: broken base64\r\nMIME-Version: 1.0\r\n"
            + b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
            + b"Content-Type: text/plain; charset=utf-8\r\n"
            + b"Content-Transfer-Encoding: base64\r\n\r\n"
            + b"SGVsbG8g!!!d29y*bGQ=\r\n=====\r\nA\r\n--zz\r\n"
            + b'Content-Type: application/pdf; name="x.pdf"\r\n'
            + b"Content-Transfer-Encoding: base64\r\n"
            + b'Content-Disposition: attachment; filename="x.pdf"\r\n\r\n'
            + b"JVBERi0xLjQK\xff\xfe%%%\r\nnot base64 at all\r\n--zz--\r\n",
        ),
        (
            "broken_boundaries",
            _HEAD
            + b"Subject: broken boundaries\r\nMIME-Version: 1.0\r\n"
            + b'Content-Type: multipart/alternative; boundary="declared"\r\n\r\n'
            + b"--other\r\nContent-Type: text/plain\r\n\r\nwrong boundary\r\n"
            + b'--declared\r\nContent-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n'
            + b"--declared\r\nContent-Type: text/html\r\n\r\n<p>never closed\r\n",
        ),
        (
            "rfc2047_garbage",
            _crlf(
                "From: =?utf-8?b?!!!notbase64?= <alice@example.org>",
                "To: =?x-unknown?q?who?= <sales@acme.test>",
                "Subject: =?utf-8?q?=ZZ=E2=82?= =?utf-8?b?8J+?= =?iso-8859-1?x?bad?= "
                "=?utf-8*en?q?lang?= =?==?=",
                "Content-Type: text/plain; name*=utf-8''%ZZ%E2; charset=\"utf-8",
                "",
                "body",
            ),
        ),
        (
            "huge_single_folded_header_512k",
            _HEAD
            + b"Subject: huge header\r\nX-Huge: "
            + b"\r\n ".join([b"v" * 900] * 580)
            + b"\r\n\r\nbody\r\n",
        ),
        (
            "header_section_over_1mib",
            _HEAD
            + b"Subject: too big\r\nX-Huge: "
            + b"\r\n ".join([b"w" * 1000] * 1200)
            + b"\r\n\r\nbody\r\n",
        ),
        (
            "from_comment_recursion_bomb",
            b"From: "
            + b"(" * 5000
            + b"alice@example.org"
            + b")" * 5000
            + b"\r\n"
            + b"To: sales@acme.test\r\nSubject: comment bomb\r\n\r\nbody\r\n",
        ),
        (
            "garbage_date_and_non_header_lines",
            _crlf(
                "From: alice@example.org",
                "Date: yesterday at noon, probably",
                "this line is not a header field",
                "Subject : space before the colon",
                ": empty field name",
                "",
                "body",
            ),
        ),
        (
            "lines_needing_dot_stuffing",
            _HEAD + b"Subject: dots\r\n\r\n.\r\n..\r\n. leading dot\r\n.\r\n\r\n.\r\n",
        ),
        (
            "rfc2231_and_parameter_garbage",
            _HEAD
            + b"Subject: parameter garbage\r\nMIME-Version: 1.0\r\n"
            + b"Content-Type: multipart/mixed;;;; boundary=p; boundary=q\r\n\r\n--p\r\n"
            + b"Content-Type: ;;;\r\nContent-Disposition: attachment; filename*0*=utf-8''%E2%82;"
            + b" filename*1=\"unterminated; filename*=bogus''%%\r\n\r\ncontent\r\n--p--\r\n",
        ),
        (
            "mail_loop_101_received",
            b"Received: from a by b; Mon, 1 Jul 2024 10:00:00 +0000\r\n" * 101
            + _HEAD
            + b"Subject: looping\r\n\r\nbody\r\n",
        ),
        (
            "garbage_dkim_signature",
            b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=sel; h="
            + b":".join([b"from"] * 500)
            + b"; bh=!!!; b=\xff\xfe\r\nDKIM-Signature: \x00garbage without tags\r\n"
            + _HEAD
            + b"Subject: garbage dkim\r\n\r\nbody\r\n",
        ),
        (
            "nested_message_rfc822_with_broken_headers",
            _HEAD
            + b"Subject: forwarded\r\nMIME-Version: 1.0\r\n"
            + b"Content-Type: multipart/mixed; boundary=fw\r\n\r\n--fw\r\n"
            + b"Content-Type: message/rfc822\r\n\r\n"
            + b"From \x00\xff\r\nSubject: =?broken\r\nContent-Type: multipart/mixed\r\n\r\n"
            + b"inner body without boundary\r\n--fw--\r\n",
        ),
    ]
    names = [name for name, _ in shapes]
    assert len(set(names)) == len(names), "corpus names are unique"
    return shapes


CORPUS: list[tuple[str, bytes]] = build_corpus()

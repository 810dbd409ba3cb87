"""IMAP response encoding (RFC 9051 §7, formal syntax §9): tagged and untagged lines, strings as
quoted or literal, flag lists, FETCH data. Bytes out; pre-rendered ENVELOPE/BODYSTRUCTURE bytes
from the store are written as they are."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

CRLF = b"\r\n"
# RFC 9051 §4.3: a quoted string holds no CR, LF, NUL, and here nothing outside printable ASCII
# (rev1 clients do not expect 8-bit quoted strings); longer strings go as literals too.
_QUOTED_MAX = 1024
_MONTHS = (
    b"Jan",
    b"Feb",
    b"Mar",
    b"Apr",
    b"May",
    b"Jun",
    b"Jul",
    b"Aug",
    b"Sep",
    b"Oct",
    b"Nov",
    b"Dec",
)


def string(value: str | bytes, *, utf8: bool = False) -> bytes:
    """A quoted string when that can hold it, else a literal. With `utf8` (IMAP4rev2 or
    UTF8=ACCEPT enabled) a quoted string may carry UTF-8 (RFC 9051 §9 QUOTED-CHAR, RFC 6855 §3)."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if (
        len(data) <= _QUOTED_MAX
        and (data.isascii() or utf8)
        and b"\r" not in data
        and b"\n" not in data
        and b"\x00" not in data
    ):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(data)


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def literal8(data: bytes) -> bytes:
    """RFC 3516 §4.2: BINARY[] content may hold NUL and so goes as a literal8."""
    return b"~{%d}\r\n" % len(data) + data


def flag_list(flags: Iterable[str]) -> bytes:
    return b"(" + " ".join(flags).encode("utf-8") + b")"


def date_time(moment: datetime) -> bytes:
    """RFC 9051 `date-time`: "dd-Mon-yyyy hh:mm:ss +zzzz" (day space-padded)."""
    if moment.tzinfo is UTC:
        # Internal dates are stored in UTC: the common case, one per message of a FETCH.
        zone = b"+0000"
    else:
        offset = moment.utcoffset()
        minutes = int(offset.total_seconds()) // 60 if offset else 0
        sign = b"-" if minutes < 0 else b"+"
        zone = b"%s%02d%02d" % (sign, abs(minutes) // 60, abs(minutes) % 60)
    return b'"%2d-%s-%04d %02d:%02d:%02d %s"' % (
        moment.day,
        _MONTHS[moment.month - 1],
        moment.year,
        moment.hour,
        moment.minute,
        moment.second,
        zone,
    )


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """`<tag> OK|NO|BAD [code] text` (RFC 9051 §7.1)."""
    return _status_line(tag, status, text, code)


def untagged(text: str | bytes) -> bytes:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return b"* " + data + CRLF


def untagged_status(status: str, text: str, code: str | None = None) -> bytes:
    return _status_line("*", status, text, code)


def _status_line(tag: str, status: str, text: str, code: str | None) -> bytes:
    # Text comes from our own messages and error texts; never let a line break through.
    clean = " ".join(text.split()) or status.lower()
    head = f"{tag} {status} "
    if code:
        head += f"[{code}] "
    return (head + clean).encode("utf-8") + CRLF


def fetch(seq: int, items: Sequence[bytes]) -> bytes:
    """`* <seq> FETCH (<item> <item> ...)` where each item is already `NAME value`."""
    return b"* %d FETCH (" % seq + b" ".join(items) + b")" + CRLF


def continuation(text: str = "") -> bytes:
    return b"+ " + text.encode("ascii") + CRLF


def sequence_set(numbers: Iterable[int]) -> str:
    """Ascending numbers as a compact sequence set ("1:3,7"), for COPYUID, ESEARCH and VANISHED."""
    parts: list[str] = []
    start = previous = None
    for number in numbers:
        if previous is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}:{previous}")
        start = previous = number
    if start is not None:
        parts.append(str(start) if start == previous else f"{start}:{previous}")
    return ",".join(parts)

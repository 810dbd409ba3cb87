"""Composing the messages Mailmark writes itself (API, dashboard and campaign sends).

The stdlib `email` package parses every header it is given back into a tree and folds it again,
which costs more than the rest of a send. The fields here are built from values the caller has
already checked (no CR, LF or NUL; addresses normalised to dot-atom@domain), so they are written
directly: unstructured text folded at white space (RFC 5322 §2.2.3) or, when it is not plain
ASCII, as RFC 2047 encoded-words; display names as atoms, a quoted-string or encoded-words
(RFC 5322 §3.4, RFC 2047 §5(3)). Every line ends in CRLF (RFC 5322 §2.1).

Attachments make the message multipart (RFC 2046 §5.1): parts with a Content-ID (inline images an
HTML body names as `cid:`, RFC 2392) go into a multipart/related with the body (RFC 2387), the
others into a multipart/mixed around it; each is base64 with a Content-Disposition (RFC 2183)
whose filename, when not plain ASCII, is an RFC 2231 extended parameter.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from html import escape

CRLF = "\r\n"
# RFC 5322 §2.1.1: lines SHOULD be at most 78 characters and MUST be at most 998.
LINE_LENGTH = 78
MAX_LINE = 998
# RFC 2047 §2: an encoded-word is at most 75 characters; "=?utf-8?b?" + 52 base64 + "?=" is 64,
# which fits on the first line after "Reply-To: ".
_WORD_OCTETS = 39
# RFC 5322 §3.2.3 atext: a display name of atoms separated by spaces needs no quoting.
_PHRASE_ATOMS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+( [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_PRINTABLE = re.compile(r"^[ -~]*$")
_HTML_TAG = re.compile(r"<[A-Za-z/!][^>]*>")
# RFC 2045 §5.1 token characters, which a parameter value may use without quoting.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# RFC 2231 §7 attribute-char: what an extended value leaves unescaped.
_ATTRIBUTE_CHARS = frozenset(
    b"!#$&+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_PARAMETER_CHUNK = 60


@dataclass(frozen=True)
class Attachment:
    """A file to attach, checked by the caller: `content_type` is `type/subtype`; a
    `content_id` (without <>) makes it an inline part the HTML refers to as `cid:<content_id>`."""

    filename: str
    content: bytes
    content_type: str
    content_id: str | None = None


def encoded_words(text: str) -> list[str]:
    """`text` as UTF-8 "B" encoded-words (RFC 2047 §4.1), each whole characters and at most 75
    characters long. White space between adjacent encoded-words is dropped when they are decoded
    (RFC 2047 §6.2), so they may be folded apart."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        octets = len(char.encode("utf-8", "surrogatepass"))
        if size + octets > _WORD_OCTETS and chunk:
            words.append(_b_word("".join(chunk)))
            chunk, size = [], 0
        chunk.append(char)
        size += octets
    if chunk or not words:
        words.append(_b_word("".join(chunk)))
    return words


def _b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def _fold(name: str, pieces: Sequence[str]) -> str:
    """`name:` and the pieces, each after one space; a line break goes before a piece that would
    cross 78 characters (RFC 5322 §2.2.3: folding puts CRLF before white space, so unfolding
    gives the text back exactly)."""
    lines: list[str] = []
    line = f"{name}:"
    for index, piece in enumerate(pieces):
        candidate = f"{line} {piece}"
        if index and len(candidate) > LINE_LENGTH:
            lines.append(line)
            line = f" {piece}"
        else:
            line = candidate
    lines.append(line)
    return CRLF.join(lines) + CRLF


def unstructured(name: str, value: str) -> str:
    """An unstructured field (Subject, extra headers; RFC 5322 §3.2.5), folded. Printable ASCII
    whose words fit in 998-character lines is written as it is; anything else as encoded-words,
    as is text that would read as an encoded-word itself (RFC 2047 §5(1))."""
    if _PRINTABLE.match(value) and "=?" not in value:
        words = value.split(" ")
        if all(len(name) + len(word) + 2 <= MAX_LINE for word in words):
            return _fold(name, words)
    return _fold(name, encoded_words(value))


def mailbox(display_name: str, address: str) -> str:
    """`Name <address>` (RFC 5322 §3.4), or the bare address without a name."""
    if not display_name:
        return address
    if "=?" in display_name or not _PRINTABLE.match(display_name):
        # Some parsers decode encoded-words even inside a quoted-string (against RFC 2047 §5(3)).
        phrase = " ".join(encoded_words(display_name))
    elif _PHRASE_ATOMS.match(display_name):
        phrase = display_name
    else:
        escaped = display_name.replace("\\", "\\\\").replace('"', '\\"')
        phrase = f'"{escaped}"'
    return f"{phrase} <{address}>"


def address_list(name: str, entries: Sequence[str]) -> str:
    """An address field (From, To, Cc, Reply-To; RFC 5322 §3.6.2-3) of `mailbox()` entries,
    folded after a comma or between the encoded-words of a display name."""
    pieces: list[str] = []
    for index, entry in enumerate(entries):
        words = entry.split(" ") if entry.startswith("=?") else [entry]
        if index + 1 < len(entries):
            words[-1] += ","
        pieces += words
    return _fold(name, pieces)


def text_part(subtype: str, text: str) -> tuple[str, bytes]:
    """The header fields and body of a `text/<subtype>; charset="utf-8"` part.

    The transfer encoding follows the stdlib's rules for such a part: 7bit for ASCII and 8bit
    otherwise while every line fits in 78 characters; else whichever of quoted-printable and
    base64 is shorter (RFC 2045 §6). Line breaks become CRLF."""
    lines = text.encode("utf-8", "surrogateescape").splitlines()
    if max((len(line) for line in lines), default=0) <= LINE_LENGTH:
        body = b"".join(line + b"\r\n" for line in lines)
        cte = "7bit" if body.isascii() else "8bit"
    else:
        plain = b"\n".join(lines) + b"\n"
        quoted = binascii.b2a_qp(plain, istext=True).replace(b"\n", b"\r\n")
        encoded = base64.encodebytes(b"\r\n".join(lines) + b"\r\n").replace(b"\n", b"\r\n")
        if len(quoted) > len(encoded):
            cte, body = "base64", encoded
        else:
            cte, body = "quoted-printable", quoted
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}Content-Transfer-Encoding: {cte}{CRLF}'
    )
    return head, body


def alternative(parts: Sequence[tuple[str, bytes]]) -> tuple[str, bytes]:
    """A multipart/alternative of the parts (RFC 2046 §5.1.4)."""
    return multipart("alternative", parts)


def multipart(
    subtype: str, parts: Sequence[tuple[str, bytes]], params: Sequence[str] = ()
) -> tuple[str, bytes]:
    """A multipart/<subtype> of the parts (header fields, body), with a boundary that occurs in
    none of them (RFC 2046 §5.1.1); `params` are more `name=value` parameters."""
    while True:
        boundary = f"=_{secrets.randbits(96):029d}"
        marker = boundary.encode("ascii")
        if not any(marker in body or marker.decode() in head for head, body in parts):
            break
    # The CRLF before each delimiter belongs to the delimiter, not to the part before it.
    body = b"".join(
        b"--" + marker + b"\r\n" + head.encode("ascii") + b"\r\n" + part + b"\r\n"
        for head, part in parts
    )
    body += b"--" + marker + b"--\r\n"
    params = [*params, f'boundary="{boundary}"']
    return _field_with_parameters("Content-Type", f"multipart/{subtype}", params), body


def parameter(name: str, value: str) -> list[str]:
    """A MIME parameter (RFC 2045 §5.1) as one or more `name=value` pieces: a token, a
    quoted-string, or for anything but plain ASCII an RFC 2231 extended value (`name*=utf-8''…`,
    §4), split into continuations (`name*0*=`, §3) so that no line grows long."""
    if _TOKEN.match(value) and len(value) <= _PARAMETER_CHUNK:
        return [f"{name}={value}"]
    if _PRINTABLE.match(value) and len(value) <= _PARAMETER_CHUNK:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return [f'{name}="{escaped}"']
    encoded = "utf-8''" + "".join(
        chr(octet) if octet in _ATTRIBUTE_CHARS else f"%{octet:02X}"
        for octet in value.encode("utf-8")
    )
    if len(encoded) <= _PARAMETER_CHUNK:
        return [f"{name}*={encoded}"]
    pieces: list[str] = []
    start = 0
    while start < len(encoded):
        end = min(start + _PARAMETER_CHUNK, len(encoded))
        # Never split a %XX escape between two continuations.
        percent = encoded.rfind("%", max(start, end - 2), end)
        if percent != -1 and end < len(encoded):
            end = percent
        pieces.append(f"{name}*{len(pieces)}*={encoded[start:end]}")
        start = end
    return pieces


def _field_with_parameters(name: str, value: str, params: Sequence[str]) -> str:
    """`name: value;` with each parameter on a folded line of its own (RFC 5322 §2.2.3)."""
    return f"{name}: {value}" + "".join(f";{CRLF} {param}" for param in params) + CRLF


def attachment_part(attachment: Attachment) -> tuple[str, bytes]:
    """The header fields and base64 body (RFC 2045 §6.8, 76-character lines) of an attachment;
    inline with a Content-ID when it has one."""
    disposition = "inline" if attachment.content_id else "attachment"
    head = _field_with_parameters(
        "Content-Type", attachment.content_type, parameter("name", attachment.filename)
    )
    head += _field_with_parameters(
        "Content-Disposition", disposition, parameter("filename", attachment.filename)
    )
    if attachment.content_id:
        head += f"Content-ID: <{attachment.content_id}>{CRLF}"
    head += f"Content-Transfer-Encoding: base64{CRLF}"
    body = base64.encodebytes(attachment.content).replace(b"\n", b"\r\n")
    return head, body


def with_attachments(
    body: tuple[str, bytes], attachments: Sequence[Attachment]
) -> tuple[str, bytes]:
    """The body with its attachments: inline ones beside it in a multipart/related (its root
    first, RFC 2387 §3.1), the others after it in a multipart/mixed (RFC 2046 §5.1.3)."""
    inline = [attachment_part(a) for a in attachments if a.content_id]
    files = [attachment_part(a) for a in attachments if not a.content_id]
    if inline:
        root_type = body[0].split(";", 1)[0].removeprefix("Content-Type: ").strip()
        body = multipart("related", [body, *inline], [f'type="{root_type}"'])
    if files:
        body = multipart("mixed", [body, *files])
    return body


def content(text: str | None, html: str | None, signature: str) -> tuple[str, bytes]:
    """The content fields and body: the text and/or HTML, each with the mailbox's signature
    (RFC 3676 §4.3 separator); both as multipart/alternative, plain text first (RFC 2046
    §5.1.4)."""
    signature = signature.strip()
    signature_is_html = bool(_HTML_TAG.search(signature))
    parts = []
    if html is None or text is not None:
        plain = text or ""
        if signature:
            shown = _HTML_TAG.sub("", signature) if signature_is_html else signature
            plain = f"{plain.rstrip()}\n\n-- \n{shown}\n"
        parts.append(text_part("plain", plain))
    if html is not None:
        rich = html
        if signature:
            shown = signature if signature_is_html else escape(signature).replace("\n", "<br>\n")
            rich = f"{html}\n<br><br>\n-- <br>\n{shown}\n"
        parts.append(text_part("html", rich))
    return parts[0] if len(parts) == 1 else alternative(parts)


def build_message(
    *,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str],
    reply_to: str | None,
    subject: str,
    date: datetime,
    message_id: str,
    extra_headers: Mapping[str, str],
    text: str | None,
    html: str | None,
    signature: str,
    attachments: Sequence[Attachment] = (),
    bcc: Sequence[str] = (),
) -> bytes:
    """A whole message from checked values: `sender` is a `mailbox()` entry, `message_id` has no
    angle brackets. Empty To and Cc are left out. `bcc` is only for a draft, the author's own copy
    (RFC 5322 §3.6.3): a message to send never names its Bcc recipients."""
    fields = [address_list("From", [sender])]
    if to:
        fields.append(address_list("To", to))
    if cc:
        fields.append(address_list("Cc", cc))
    if bcc:
        fields.append(address_list("Bcc", bcc))
    if reply_to:
        fields.append(address_list("Reply-To", [reply_to]))
    fields.append(unstructured("Subject", subject))
    fields.append(f"Date: {format_datetime(date)}{CRLF}")
    fields.append(f"Message-ID: <{message_id}>{CRLF}")
    fields += [unstructured(name, value) for name, value in extra_headers.items()]
    content_head, body = with_attachments(content(text, html, signature), attachments)
    head = "".join(fields) + f"MIME-Version: 1.0{CRLF}" + content_head + CRLF
    return head.encode("ascii") + body

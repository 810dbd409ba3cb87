"""ENVELOPE, BODYSTRUCTURE and body sections of a raw message, for IMAP FETCH (pure, bytes in).

The MIME tree is found by byte offsets in the raw message, never by re-serialising it, so
`section` returns exactly the stored bytes (RFC 3501 §6.4.5). Rendering follows the formal syntax
of RFC 3501 §9 / RFC 9051 §9: strings are quoted when they can be, literals otherwise, NIL for
absent fields; header values are given as written (encoded-words left as they are, §7.4.2).
Garbage never raises: a malformed part degrades to the defaults of RFC 2045 §5.2. Nesting depth
and the number of parts are bounded.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

MAX_DEPTH = 20
MAX_PARTS = 500
MAX_HEADER_FIELDS = 2_000
MAX_ADDRESSES = 1_000

SectionKind = str  # "" | "HEADER" | "HEADER.FIELDS" | "HEADER.FIELDS.NOT" | "TEXT" | "MIME"
SECTION_KINDS = frozenset({"", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"})


class UnknownTransferEncoding(ValueError):
    """BINARY asked for a part whose Content-Transfer-Encoding we cannot decode (RFC 3516 §4.3:
    the adapter answers NO [UNKNOWN-CTE])."""


@dataclass
class MimePart:
    start: int  # first byte of the part's header
    body_start: int  # first byte after the empty line ending the header
    end: int  # one past the last byte of the body
    fields: list[tuple[bytes, bytes]]  # (lower-case name, raw value with its folding)
    type: str = "text"
    subtype: str = "plain"
    params: list[tuple[str, str]] = field(default_factory=list)
    children: list[MimePart] = field(default_factory=list)
    message: MimePart | None = None  # the encapsulated message of message/rfc822

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None

    @property
    def multipart(self) -> bool:
        return self.type == "multipart" and bool(self.children)


class _Budget:
    def __init__(self) -> None:
        self.parts = 0


def _header_end(raw: bytes, start: int, end: int) -> int:
    """Where the body begins: after the first empty line, or `end` when there is none."""
    if raw.startswith(b"\r\n", start) and start + 2 <= end:
        return start + 2
    if raw.startswith(b"\n", start) and start + 1 <= end:
        return start + 1
    crlf = raw.find(b"\n\r\n", start, end)
    # A bare-LF empty line counts only before the first CRLF one: searching the whole part for
    # one that a CRLF message never has would read a large body once more per part.
    lf = raw.find(b"\n\n", start, end if crlf < 0 else crlf + 1)
    if lf >= 0:
        return lf + 2
    return end if crlf < 0 else crlf + 3


_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")


def _fields(raw: bytes, start: int, end: int) -> list[tuple[bytes, bytes]]:
    fields: list[tuple[bytes, bytes]] = []
    for line_start, line_end in _lines(raw, start, end):
        line = raw[line_start:line_end]
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + line)
            continue
        match = _FIELD_NAME.match(line)
        if match is None:
            continue
        if len(fields) >= MAX_HEADER_FIELDS:
            break
        fields.append((match.group(1).lower(), line[match.end() :]))
    return fields


def _lines(raw: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each line in raw[start:end], the end including its line break."""
    pos = start
    while pos < end:
        nl = raw.find(b"\n", pos, end)
        stop = end if nl < 0 else nl + 1
        yield pos, stop
        pos = stop


def unfold(value: bytes) -> bytes:
    """RFC 5322 §2.2.3: remove the CRLF of folding, keep the white space; trim the ends."""
    return re.sub(rb"\r?\n(?=[ \t])", b"", value).strip(b" \t\r\n")


_TOKEN = re.compile(r'\s*([^\s()<>@,;:\\"/\[\]?=]+)')


def _skip_comments(text: str, pos: int) -> int:
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos < len(text) and text[pos] == "(":
            depth = 0
            while pos < len(text):
                ch = text[pos]
                if ch == "\\":
                    pos += 1
                elif ch == "(":
                    depth += 1
                elif ch == ")":
                    depth -= 1
                    if depth == 0:
                        pos += 1
                        break
                pos += 1
            continue
        return pos


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """The content of the quoted string opening at text[pos] and the position after it."""
    out: list[str] = []
    pos += 1
    while pos < len(text):
        ch = text[pos]
        if ch == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
            continue
        if ch == '"':
            return "".join(out), pos + 1
        out.append(ch)
        pos += 1
    return "".join(out), pos


def _params(text: str, pos: int) -> list[tuple[str, str]]:
    """`; name=value` pairs (RFC 2045 §5.1), as written; malformed ones are skipped."""
    params: list[tuple[str, str]] = []
    while pos < len(text) and len(params) < 100:
        semi = text.find(";", pos)
        if semi < 0:
            break
        pos = _skip_comments(text, semi + 1)
        name = _TOKEN.match(text, pos)
        if name is None:
            continue
        pos = _skip_comments(text, name.end())
        if pos >= len(text) or text[pos] != "=":
            continue
        pos = _skip_comments(text, pos + 1)
        if pos < len(text) and text[pos] == '"':
            value, pos = _quoted(text, pos)
        else:
            token = re.compile(r'[^\s;"]*').match(text, pos)
            assert token is not None
            value, pos = token.group(0), token.end()
        params.append((name.group(1), value))
    return params


def _content_type(part: MimePart, default: tuple[str, str]) -> None:
    value = part.header(b"content-type")
    part.type, part.subtype = default
    part.params = [("charset", "us-ascii")] if default == ("text", "plain") else []
    if value is None:
        return
    text = unfold(value).decode("latin-1")
    pos = _skip_comments(text, 0)
    kind = _TOKEN.match(text, pos)
    if kind is None:
        return
    pos = _skip_comments(text, kind.end())
    if pos >= len(text) or text[pos] != "/":
        return
    sub = _TOKEN.match(text, _skip_comments(text, pos + 1))
    if sub is None:
        return
    # RFC 2045 §5.2: a syntactically invalid Content-Type falls back to text/plain; a valid one
    # replaces the default parameters too.
    part.type, part.subtype = kind.group(1).lower(), sub.group(1).lower()
    part.params = _params(text, sub.end())


def _param(part: MimePart, name: str) -> str | None:
    for key, value in part.params:
        if key.lower() == name:
            return value
    return None


def _parse(
    raw: bytes, start: int, end: int, depth: int, budget: _Budget, default: tuple[str, str]
) -> MimePart:
    budget.parts += 1
    body_start = _header_end(raw, start, end)
    part = MimePart(start, body_start, end, _fields(raw, start, body_start))
    _content_type(part, default)
    if depth >= MAX_DEPTH or budget.parts >= MAX_PARTS:
        return part
    if part.type == "multipart":
        boundary = _param(part, "boundary")
        if not boundary:
            part.type, part.subtype, part.params = "text", "plain", [("charset", "us-ascii")]
            return part
        child_default = ("message", "rfc822") if part.subtype == "digest" else ("text", "plain")
        for child_start, child_end in _split(raw, body_start, end, boundary.encode("latin-1")):
            if budget.parts >= MAX_PARTS:
                break
            part.children.append(
                _parse(raw, child_start, child_end, depth + 1, budget, child_default)
            )
        if not part.children:
            part.children.append(MimePart(end, end, end, []))
    elif part.type == "message" and part.subtype in ("rfc822", "global"):
        part.message = _parse(raw, body_start, end, depth + 1, budget, ("text", "plain"))
    return part


def _split(raw: bytes, start: int, end: int, boundary: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each body part between the delimiter lines (RFC 2046 §5.1.1): the line
    break before a delimiter belongs to it; preamble and epilogue are left out."""
    delimiter = b"--" + boundary
    part_start: int | None = None
    pos = start
    while pos < end:
        if pos == start and raw.startswith(delimiter, start):
            at = start
        else:
            found = raw.find(b"\n" + delimiter, pos, end)
            if found < 0:
                break
            at = found + 1
        after = at + len(delimiter)
        closing = raw.startswith(b"--", after) and after + 2 <= end
        tail = after + 2 if closing else after
        nl = raw.find(b"\n", tail, end)
        line_end = end if nl < 0 else nl + 1
        if raw[tail:line_end].strip(b" \t\r\n"):
            pos = at + 1  # a longer boundary that merely starts with ours
            continue
        if part_start is not None:
            stop = at - 1 if at > start else at
            if stop > part_start and raw[stop - 1 : stop] == b"\r":
                stop -= 1
            yield part_start, max(part_start, stop)
        if closing:
            return
        part_start = line_end
        pos = line_end
    if part_start is not None and part_start < end:
        yield part_start, end  # no closing delimiter: the last part runs to the end


def parse(raw: bytes) -> MimePart:
    return _parse(raw, 0, len(raw), 0, _Budget(), ("text", "plain"))


# Rendering


def nstring(value: bytes | None) -> bytes:
    """NIL, a quoted string, or a literal when the bytes cannot be quoted (RFC 3501 §4.3)."""
    if value is None:
        return b"NIL"
    if value.isascii() and b"\r" not in value and b"\n" not in value and b"\x00" not in value:
        return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(value) + value


def _text_string(value: str | None) -> bytes:
    return nstring(None if value is None else value.encode("latin-1", "replace"))


def _header_nstring(part: MimePart, name: bytes) -> bytes:
    value = part.header(name)
    return nstring(None if value is None else unfold(value))


def _plist(params: Sequence[tuple[str, str]]) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(_text_string(k) + b" " + _text_string(v) for k, v in params) + b")"


def _disposition(part: MimePart) -> bytes:
    value = part.header(b"content-disposition")
    if value is None:
        return b"NIL"
    text = unfold(value).decode("latin-1")
    kind = _TOKEN.match(text, _skip_comments(text, 0))
    if kind is None:
        return b"NIL"
    return b"(" + _text_string(kind.group(1)) + b" " + _plist(_params(text, kind.end())) + b")"


def _language(part: MimePart) -> bytes:
    value = part.header(b"content-language")
    if value is None:
        return b"NIL"
    tags = [t for t in re.split(r"[\s,]+", unfold(value).decode("latin-1")) if t][:50]
    if not tags:
        return b"NIL"
    if len(tags) == 1:
        return _text_string(tags[0])
    return b"(" + b" ".join(_text_string(t) for t in tags) + b")"


def _line_count(raw: bytes, start: int, end: int) -> int:
    count = raw.count(b"\n", start, end)
    if end > start and raw[end - 1 : end] != b"\n":
        count += 1
    return count


def _structure(raw: bytes, part: MimePart, extensible: bool) -> bytes:
    if part.multipart:
        out = b"(" + b"".join(_structure(raw, child, extensible) for child in part.children)
        out += b" " + _text_string(part.subtype)
        if extensible:
            out += b" " + _plist(part.params) + b" " + _disposition(part) + b" " + _language(part)
            out += b" " + _header_nstring(part, b"content-location")
        return out + b")"
    encoding = part.header(b"content-transfer-encoding")
    enc = unfold(encoding) if encoding is not None and unfold(encoding) else b"7BIT"
    size = part.end - part.body_start
    fields = [
        _text_string(part.type),
        _text_string(part.subtype),
        _plist(part.params),
        _header_nstring(part, b"content-id"),
        _header_nstring(part, b"content-description"),
        nstring(enc),
        b"%d" % size,
    ]
    if part.message is not None:
        fields.append(_envelope(part.message))
        fields.append(_structure(raw, part.message, extensible))
        fields.append(b"%d" % _line_count(raw, part.body_start, part.end))
    elif part.type == "text":
        fields.append(b"%d" % _line_count(raw, part.body_start, part.end))
    if extensible:
        fields.append(_header_nstring(part, b"content-md5"))
        fields.append(_disposition(part))
        fields.append(_language(part))
        fields.append(_header_nstring(part, b"content-location"))
    return b"(" + b" ".join(fields) + b")"


def bodystructure(raw: bytes, extensible: bool = True) -> bytes:
    """FETCH BODYSTRUCTURE (or, with `extensible=False`, BODY) in IMAP syntax."""
    return _structure(raw, parse(raw), extensible)


# Addresses (RFC 5322 §3.4), kept as written: display names are not decoded.

_ADDR_TOKEN = re.compile(
    r'\s+|"(?:[^"\\]|\\.)*"?|\((?:[^()\\]|\\.)*\)?|\[[^\]]*\]?|[<>,:;@]|[^\s"()<>,:;@\[]+'
)


def _address_tokens(text: str) -> list[str]:
    tokens: list[str] = []
    for match in _ADDR_TOKEN.finditer(text):
        token = match.group(0)
        if token.isspace():
            continue
        tokens.append(token)
        if len(tokens) > 20 * MAX_ADDRESSES:
            break
    return tokens


def _word(token: str) -> str:
    if token.startswith('"'):
        return _quoted(token, 0)[0]
    return token


def _comment_text(token: str) -> str:
    """The text of a comment token, without its parentheses and quoting backslashes."""
    return re.sub(r"\\(.)", r"\1", token[1:].removesuffix(")")).strip()


Address = tuple[str | None, str | None, str | None, str | None]  # (name, adl, mailbox, host)


def _addresses(text: str) -> list[Address]:
    # Comments say nothing in IMAP address fields, except the name of a bare address written
    # the old way, `user@host (Real Name)`, which is kept as the name (as Dovecot does).
    tokens = _address_tokens(text)
    out: list[Address] = []
    pos = 0
    in_group = False

    def add(address: Address) -> None:
        if len(out) < MAX_ADDRESSES:
            out.append(address)

    while pos < len(tokens):
        phrase: list[str] = []
        while pos < len(tokens) and tokens[pos] not in ("<", ":", ",", ";", "@"):
            if not tokens[pos].startswith("("):
                phrase.append(_word(tokens[pos]))
            pos += 1
        token = tokens[pos] if pos < len(tokens) else ""
        if token == ":" and not in_group:
            add((None, None, " ".join(phrase), None))
            in_group = True
            pos += 1
        elif token == "<":
            pos += 1
            inner: list[str] = []
            while pos < len(tokens) and tokens[pos] != ">":
                if not tokens[pos].startswith("("):
                    inner.append(tokens[pos])
                pos += 1
            pos += 1
            route = ""
            if ":" in inner:  # obs-route: <@a,@b:local@host>
                cut = inner.index(":")
                route, inner = "".join(inner[:cut]), inner[cut + 1 :]
            local, host = _split_addr_spec(inner)
            add((" ".join(phrase) or None, route or None, local, host))
        elif token == "@":
            pos += 1
            domain: list[str] = []
            comments: list[str] = []
            while pos < len(tokens) and tokens[pos] not in (",", ";"):
                if tokens[pos].startswith("("):
                    comments.append(_comment_text(tokens[pos]))
                else:
                    domain.append(tokens[pos])
                pos += 1
            name = " ".join(c for c in comments if c) or None
            add((name, None, "".join(phrase), "".join(domain)))
        elif phrase:
            # A bare local part with no domain: Dovecot's convention for the missing host.
            add((None, None, "".join(phrase), "MISSING_DOMAIN"))
        if pos < len(tokens) and tokens[pos] == ";":
            if in_group:
                add((None, None, None, None))
                in_group = False
            pos += 1
        elif pos < len(tokens) and tokens[pos] in (",", ":", ">"):
            pos += 1
    if in_group:
        add((None, None, None, None))
    return out


def address_parts(text: str) -> list[Address]:
    """The (name, route, mailbox, host) of each address in an address header's value, as
    ENVELOPE gives them (RFC 9051 §7.5.2)."""
    return _addresses(text)


def _split_addr_spec(tokens: list[str]) -> tuple[str, str]:
    if "@" in tokens:
        at = len(tokens) - 1 - tokens[::-1].index("@")
        return "".join(_word(t) for t in tokens[:at]), "".join(tokens[at + 1 :])
    return "".join(_word(t) for t in tokens), "MISSING_DOMAIN"


def _address_list(part: MimePart, name: bytes) -> bytes:
    value = part.header(name)
    if value is None:
        return b"NIL"
    addresses = _addresses(unfold(value).decode("latin-1"))
    if not addresses:
        return b"NIL"
    return (
        b"("
        + b"".join(
            b"(" + b" ".join(_text_string(item) for item in address) + b")" for address in addresses
        )
        + b")"
    )


def _envelope(part: MimePart) -> bytes:
    senders = _address_list(part, b"from")
    # RFC 9051 §7.5.2: a Sender or Reply-To that is missing, or holds no address, is the From.
    sender = _address_list(part, b"sender")
    reply_to = _address_list(part, b"reply-to")
    fields = [
        _header_nstring(part, b"date"),
        _header_nstring(part, b"subject"),
        senders,
        senders if sender == b"NIL" else sender,
        senders if reply_to == b"NIL" else reply_to,
        _address_list(part, b"to"),
        _address_list(part, b"cc"),
        _address_list(part, b"bcc"),
        _header_nstring(part, b"in-reply-to"),
        _header_nstring(part, b"message-id"),
    ]
    return b"(" + b" ".join(fields) + b")"


def envelope(raw: bytes) -> bytes:
    """FETCH ENVELOPE in IMAP syntax."""
    return _envelope(parse(raw))


def describe(raw: bytes, root: MimePart | None = None) -> tuple[bytes, bytes, bytes]:
    """(ENVELOPE, BODYSTRUCTURE, BODY) from one parse: what delivery stores with the message."""
    root = root or parse(raw)
    return _envelope(root), _structure(raw, root, True), _structure(raw, root, False)


def text_parts(raw: bytes, root: MimePart) -> Iterator[tuple[str, str | None, bytes]]:
    """(subtype, charset, decoded bytes) of each text/* leaf, depth first, encapsulated messages
    included; a part whose transfer encoding cannot be undone is given as it is."""
    stack = [root]
    while stack:
        part = stack.pop()
        if part.message is not None:
            stack.append(part.message)
        elif part.multipart:
            stack.extend(reversed(part.children))
        elif part.type == "text":
            try:
                content = _decode(raw, part)
            except UnknownTransferEncoding:
                content = raw[part.body_start : part.end]
            yield part.subtype, _param(part, "charset"), content


# Sections (RFC 3501 §6.4.5)


def _walk(root: MimePart, path: Sequence[int]) -> tuple[MimePart | None, MimePart | None]:
    """The part a section number names (None if absent) and the message its HEADER/TEXT refer
    to: the root for an empty path, the encapsulated message of a message/rfc822 part. A message
    (the root, or a message/rfc822 body) that is not multipart has one part, 1: its own body."""
    node = root
    message_level = True
    for index, number in enumerate(path):
        if index:
            if node.message is not None:
                node, message_level = node.message, True
            elif not node.multipart:
                return None, None
        if node.multipart:
            if not 1 <= number <= len(node.children):
                return None, None
            node = node.children[number - 1]
        elif not (message_level and number == 1):
            return None, None
        message_level = False
    if not path:
        return root, root
    return node, node.message


def section(
    raw: bytes, part: Sequence[int] = (), kind: SectionKind = "", fields: Sequence[str] = ()
) -> bytes:
    """The exact bytes of BODY[<part>.<kind> (<fields>)]; empty when the section does not exist."""
    return MessageSections(raw).section(part, kind, fields)


class MessageSections:
    """The sections of one raw message for one FETCH command: the MIME tree is parsed once and
    each part's transfer encoding undone at most once, however many items name it (a client may
    ask for a hundred `BINARY.PEEK[2]<n.1>` partials of the same large part in one command).

    `bytes_decoded` counts the encoded bytes run through a base64 or quoted-printable decoder."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._root: MimePart | None = None
        self._decoded: dict[tuple[int, ...], bytes] = {}
        self._sections: dict[SectionKey, bytes] = {}
        self._undecodable: frozenset[tuple[int, ...]] = frozenset()
        self._binary_slices: dict[BinarySliceKey, bytes] = {}
        self._binary_sizes: dict[tuple[int, ...], int] = {}
        self.bytes_decoded = 0

    @classmethod
    def extracted(cls, raw: bytes, extracted: Extracted) -> MessageSections:
        """The sections of `raw` as `extract` computed them elsewhere (in a worker process):
        asking for them again does not parse or decode the message."""
        sections = cls(raw)
        sections._sections = extracted.sections
        sections._decoded = extracted.decoded
        sections._undecodable = extracted.undecodable
        sections._binary_slices = extracted.binary_slices
        sections._binary_sizes = extracted.binary_sizes
        sections.bytes_decoded = extracted.bytes_decoded
        return sections

    @property
    def root(self) -> MimePart:
        if self._root is None:
            self._root = parse(self.raw)
        return self._root

    def section(
        self, part: Sequence[int] = (), kind: SectionKind = "", fields: Sequence[str] = ()
    ) -> bytes:
        """BODY[<part>.<kind> (<fields>)], as the module's `section`."""
        raw = self.raw
        kind = kind.upper()
        if kind not in SECTION_KINDS:
            raise ValueError(f"unknown section kind {kind!r}")
        known = self._sections.get((tuple(part), kind, tuple(fields)))
        if known is not None:
            return known
        if not part and kind == "":
            return raw
        node, message = _walk(self.root, part)
        if node is None:
            return b""
        if kind == "":
            return raw[node.body_start : node.end]
        if kind == "MIME":
            return raw[node.start : node.body_start] if part else b""
        if message is None:
            return b""
        if kind == "TEXT":
            return raw[message.body_start : message.end]
        header = raw[message.start : message.body_start]
        if kind == "HEADER":
            return header
        return _header_fields(
            raw,
            message,
            {f.lower().encode("latin-1", "replace") for f in fields},
            kind == "HEADER.FIELDS.NOT",
        )

    def binary(self, part: Sequence[int] = ()) -> bytes:
        """BINARY[<part>] (RFC 3516), as the module's `binary`."""
        if not part:
            return self.raw
        key = tuple(part)
        if key in self._undecodable:
            raise UnknownTransferEncoding(f"part {key} cannot be decoded")
        decoded = self._decoded.get(key)
        if decoded is None:
            node, _ = _walk(self.root, part)
            if node is None:
                decoded = b""
            else:
                decoded = _decode(self.raw, node)
                if (
                    not node.multipart
                    and node.message is None
                    and _transfer_encoding(node) in _DECODED_ENCODINGS
                ):
                    self.bytes_decoded += node.end - node.body_start
            self._decoded[key] = decoded
        return decoded

    def binary_size(self, part: Sequence[int]) -> int:
        """BINARY.SIZE[<part>] (RFC 3516 §4.2)."""
        size = self._binary_sizes.get(tuple(part))
        return size if size is not None else len(self.binary(part))

    def binary_slice(self, part: Sequence[int], origin: int, length: int) -> bytes:
        """BINARY[<part>]<origin.length>: `length` octets of the decoded part from `origin`."""
        known = self._binary_slices.get((tuple(part), origin, length))
        return known if known is not None else self.binary(part)[origin : origin + length]


SectionKey = tuple[tuple[int, ...], str, tuple[str, ...]]  # (part, kind, fields) of `section`
BinarySliceKey = tuple[tuple[int, ...], int, int]  # (part, origin, length) of `binary_slice`


class SectionRequest(NamedTuple):
    """What one FETCH item needs from a parse of the message:

    - ("BODY", part, kind, fields): `section(part, kind, fields)`;
    - ("BINARY", part): `binary(part)`, the whole decoded part;
    - ("BINARY", part, partial=(origin, length)): only those octets of it;
    - ("BINARY.SIZE", part): only its length.

    A worker computing sections returns what is asked and no more: a hundred one-octet partials of
    an 8 MiB part come back as a hundred octets, not as the part."""

    item: str
    part: tuple[int, ...]
    kind: str = ""
    fields: tuple[str, ...] = ()
    partial: tuple[int, int] | None = None


@dataclass(frozen=True)
class Extracted:
    """The sections of one message that a FETCH asks for, as plain (picklable) data."""

    sections: dict[SectionKey, bytes]
    decoded: dict[tuple[int, ...], bytes]
    undecodable: frozenset[tuple[int, ...]]
    bytes_decoded: int
    binary_slices: dict[BinarySliceKey, bytes]
    binary_sizes: dict[tuple[int, ...], int]


def extract(raw: bytes, requests: Sequence[SectionRequest]) -> Extracted:
    """Parse `raw` once and compute every requested section: the CPU-heavy part of a FETCH,
    run away from the event loop for large messages (core/cpu_pool.py)."""
    message = MessageSections(raw)
    sections: dict[SectionKey, bytes] = {}
    undecodable: set[tuple[int, ...]] = set()
    whole: set[tuple[int, ...]] = set()
    slices: dict[BinarySliceKey, bytes] = {}
    sizes: dict[tuple[int, ...], int] = {}
    for request in requests:
        part = request.part
        if request.item == "BODY":
            if part or request.kind:
                key = (part, request.kind.upper(), request.fields)
                sections[key] = message.section(part, request.kind, request.fields)
            continue
        try:
            data = message.binary(part)
        except UnknownTransferEncoding:
            undecodable.add(part)
            continue
        if request.item == "BINARY.SIZE":
            sizes[part] = len(data)
        elif request.partial is not None:
            origin, length = request.partial
            slices[part, origin, length] = data[origin : origin + length]
        else:
            whole.add(part)
    decoded = {part: message._decoded[part] for part in whole if part in message._decoded}
    return Extracted(
        sections, decoded, frozenset(undecodable), message.bytes_decoded, slices, sizes
    )


def extract_many(raws: Sequence[bytes], requests: Sequence[SectionRequest]) -> list[Extracted]:
    """`extract` for each of several messages (one chunk of a FETCH), in one job."""
    return [extract(raw, requests) for raw in raws]


def _header_fields(raw: bytes, message: MimePart, names: set[bytes], exclude: bool) -> bytes:
    out: list[bytes] = []
    keep = False
    for line_start, line_end in _lines(raw, message.start, message.body_start):
        line = raw[line_start:line_end]
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        match = _FIELD_NAME.match(line)
        if match is None:
            keep = False
            continue
        keep = (match.group(1).lower() in names) != exclude
        if keep:
            out.append(line)
    text = b"".join(out)
    if text and not text.endswith(b"\n"):
        text += b"\r\n"
    return text + b"\r\n"


def binary(raw: bytes, part: Sequence[int] = ()) -> bytes:
    """BINARY[<part>] (RFC 3516): the part's body with its transfer encoding undone."""
    return MessageSections(raw).binary(part)


_DECODED_ENCODINGS = frozenset({"base64", "quoted-printable"})
# RFC 2045 §6.8: characters outside the base64 alphabet are ignored.
_NOT_BASE64 = bytes(
    set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
)


def _transfer_encoding(node: MimePart) -> str:
    value = node.header(b"content-transfer-encoding")
    return unfold(value).decode("latin-1").lower() if value is not None else "7bit"


def _decode(raw: bytes, node: MimePart) -> bytes:
    body = raw[node.body_start : node.end]
    if node.multipart or node.message is not None:
        return body
    encoding = _transfer_encoding(node)
    if encoding in ("", "7bit", "8bit", "binary"):
        return body
    if encoding == "base64":
        try:
            return base64.b64decode(body.translate(None, _NOT_BASE64) + b"==", validate=False)
        except (binascii.Error, ValueError) as exc:
            raise UnknownTransferEncoding(f"invalid base64 body: {exc}") from exc
    if encoding == "quoted-printable":
        return decode_quoted_printable(body)
    raise UnknownTransferEncoding(f"unknown Content-Transfer-Encoding {encoding!r}")


def decode_quoted_printable(body: bytes) -> bytes:
    """RFC 2045 §6.7: whitespace at the end of an encoded line is transport padding and removed
    (rule 3); a line ending in "=", even with whitespace after it, is a soft line break (rule
    5); every other line break is a CRLF. `quopri` keeps the padding and misses those breaks."""
    lines = body.split(b"\n")
    last = len(lines) - 1
    out: list[bytes] = []
    for number, line in enumerate(lines):
        line = line.removesuffix(b"\r").rstrip(b" \t")
        if line.endswith(b"="):
            out.append(line[:-1])
            continue
        out.append(line)
        if number < last:
            out.append(b"\r\n")
    return binascii.a2b_qp(b"".join(out))

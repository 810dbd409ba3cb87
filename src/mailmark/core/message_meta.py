"""Read a message's metadata from raw bytes without ever failing delivery.

Internet mail is hostile and often broken. Everything here is bounded (header size, MIME depth, part
count) and every failure degrades to "less metadata", recorded in `defects`, never to an exception.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import html
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime, parsedate_tz
from html.parser import HTMLParser

from mailmark.core import imap_structure
from mailmark.core.errors import MailLoop, MessageTooLarge
from mailmark.core.model import Attachment, MessageIndex, MessageMetadata

MAX_HEADER_BYTES = 1024 * 1024
MAX_HEADER_LINES = 10_000
# RFC 5321 §6.3: a message with more than ~100 Received fields is looping.
MAX_RECEIVED_HEADERS = 100
MAX_MIME_DEPTH = 30
MAX_MIME_PARTS = 500
MAX_ATTACHMENTS = 100
MAX_REFERENCES = 50
SNIPPET_LENGTH = 200
# The full-text index holds at most this much decoded text of a message's header and body.
MAX_INDEX_HEADER_CHARS = 64 * 1024
MAX_INDEX_BODY_CHARS = 256 * 1024
# Body parsing of very large messages is skipped for the snippet: headers still give the metadata.
MAX_BODY_PARSE_BYTES = 8 * 1024 * 1024

_MSGID = re.compile(r"<[^<>\s]{1,500}>")
_REPLY_PREFIX = re.compile(
    r"^\s*((re|fwd?|aw|sv|wg|antw|vs|tr|rif|r)\s*(\[\d+\])?\s*:\s*)", re.IGNORECASE
)
_LIST_TAG = re.compile(r"^\s*\[[^\]]{0,60}\]\s*")
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")
_RECEIVED = re.compile(rb"(?im)^received[ \t]*:")
_BCC_FIELD = re.compile(rb"^bcc[ \t]*:", re.IGNORECASE)
# RFC 8601 §2.2: "Authentication-Results:" [CFWS] authserv-id, where the id is a value (a token
# or a quoted string); comments may come before it.
_AUTHENTICATION_RESULTS = re.compile(
    rb'^authentication-results[ \t]*:(?:\s|\([^()]*\))*"?([^\s;()"]+)', re.IGNORECASE
)
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_BETWEEN_ENCODED_WORDS = re.compile(r"(?<=\?=)[ \t\r\n]+(?==\?)")


def header_section(raw: bytes) -> bytes:
    """The header block: everything before the first empty line (RFC 5322 §2.1)."""
    if raw.startswith(b"\r\n"):
        return b""
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[: end + 2]


def header_fields(raw: bytes) -> list[bytes]:
    """The header section's fields, each with its folded continuation lines."""
    fields: list[bytes] = []
    for line in header_section(raw).splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def header_values(raw: bytes, name: bytes) -> list[str]:
    """The values of every `name` field, folding kept, decoded leniently."""
    prefix = re.compile(rb"^" + re.escape(name) + rb"[ \t]*:", re.IGNORECASE)
    return [
        prefix.sub(b"", field, count=1).decode("utf-8", errors="replace").strip()
        for field in header_fields(raw)
        if prefix.match(field)
    ]


def without_bcc(raw: bytes, added: bytes) -> bytes:
    """The message without Bcc fields (RFC 5322 §3.6.3), with `added` fields appended to the
    header section."""
    return _without_fields(raw, lambda field: bool(_BCC_FIELD.match(field)), added)


def without_our_authentication_results(raw: bytes, authserv_id: str) -> bytes:
    """The message without Authentication-Results fields naming `authserv_id`: RFC 8601 §5 has
    the border MTA delete those claiming to come from inside its own trust boundary, which only
    a forger outside it could have written. Fields of other hosts are kept."""
    ours = authserv_id.lower().encode("ascii", "replace")

    def forged(field: bytes) -> bool:
        match = _AUTHENTICATION_RESULTS.match(field)
        return match is not None and match.group(1).lower() == ours

    if not any(forged(field) for field in header_fields(raw)):
        return raw
    return _without_fields(raw, forged, b"")


def _without_fields(raw: bytes, drop: Callable[[bytes], bool], added: bytes) -> bytes:
    head = header_section(raw)
    kept = b"".join(field for field in header_fields(raw) if not drop(field))
    if added and kept and not kept.endswith(b"\r\n"):
        kept += b"\r\n"
    return kept + added + raw[len(head) :]


def check_header_limits(raw: bytes) -> None:
    """Refuse header bombs and mail loops before anything is stored."""
    head = header_section(raw[: MAX_HEADER_BYTES + 4])
    if len(head) > MAX_HEADER_BYTES or head.count(b"\n") > MAX_HEADER_LINES:
        raise MessageTooLarge(
            f"Message header is too large (limit {MAX_HEADER_LINES} lines, "
            f"{MAX_HEADER_BYTES // 1024} KiB)"
        )
    if len(_RECEIVED.findall(head)) > MAX_RECEIVED_HEADERS:
        raise MailLoop("Too many Received headers: the message is looping")


def read_metadata(raw: bytes, root: imap_structure.MimePart | None = None) -> MessageMetadata:
    """What is stored beside the message and shown in lists; `root`, if given, is
    `imap_structure.parse(raw)`, so that a caller that also wants the index parses once."""
    defects: list[str] = []
    try:
        head = header_section(raw)
        headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    except Exception as exc:  # the stdlib parser is lenient; this is a last resort
        return MessageMetadata(defects=(f"headers unreadable: {exc.__class__.__name__}",))

    fields = _wanted_fields(headers)
    subject = _text(fields, "subject", defects)
    subject_key, is_reply = base_subject(subject or "")
    references = tuple(_MSGID.findall(_raw_header(fields, "references")))[-MAX_REFERENCES:]
    in_reply_to_ids = _MSGID.findall(_raw_header(fields, "in-reply-to"))
    message_ids = _MSGID.findall(_raw_header(fields, "message-id"))
    if len(fields.get("from", [])) > 1:
        defects.append("more than one From header")
    # The body follows the header section and its empty line (RFC 5322 §2.1).
    snippet, attachments = _body_summary(raw, raw[len(head) + 2 :], headers, defects, root)
    return MessageMetadata(
        message_id=message_ids[0] if message_ids else None,
        subject=subject,
        subject_key=_storable(subject_key),
        is_reply=is_reply or bool(in_reply_to_ids or references),
        from_addr=next(iter(_addresses(fields, "from", defects)), None),
        to_addrs=_addresses(fields, "to", defects),
        cc_addrs=_addresses(fields, "cc", defects),
        date=_date(fields, defects),
        in_reply_to=in_reply_to_ids[0] if in_reply_to_ids else None,
        references=references,
        snippet=_storable(snippet),
        attachments=tuple(
            Attachment(
                _storable(a.filename) if a.filename is not None else None,
                _storable(a.content_type),
                a.size,
            )
            for a in attachments
        ),
        defects=tuple(_storable(defect) for defect in defects),
    )


def read_index(raw: bytes, root: imap_structure.MimePart | None = None) -> MessageIndex:
    """ENVELOPE/BODYSTRUCTURE/BODY and the searchable text of a message; never raises. `root`,
    if given, is `imap_structure.parse(raw)`."""
    root = root or imap_structure.parse(raw)
    envelope, structure, body = imap_structure.describe(raw, root)
    return MessageIndex(
        envelope, structure, body, _header_text(root), _body_text(raw, root), _sent_day(root)
    )


def read_body_text(raw: bytes) -> str:
    """The searchable body text `read_index` gives, alone; never raises."""
    return _body_text(raw, imap_structure.parse(raw))


def _sent_day(root: imap_structure.MimePart) -> date | None:
    """The calendar day the Date header gives, in the zone it is written in."""
    value = root.header(b"date")
    if value is None:
        return None
    parsed = parsedate_tz(imap_structure.unfold(value).decode("latin-1"))
    if parsed is None:
        return None
    try:
        return date(parsed[0], parsed[1], parsed[2])
    except (ValueError, OverflowError):
        return None


def _header_text(root: imap_structure.MimePart) -> str:
    """Decoded header fields, one "name: value" line each (names in lower case): what SEARCH
    HEADER/FROM/SUBJECT/... and TEXT look in."""
    lines = []
    size = 0
    for name, value in root.fields:
        octets = imap_structure.unfold(value)
        try:
            text = octets.decode("utf-8")
        except UnicodeDecodeError:
            text = octets.decode("latin-1")
        if _ENCODED_WORD.search(text):
            text = _decode_words(text)
        lines.append(f"{name.decode('latin-1')}: {_SPACE.sub(' ', text).strip()}")
        size += len(lines[-1])
        if name.lower() in _ADDRESS_FIELDS:
            # The addresses again, as "name <mailbox@host>": SEARCH FROM/TO/... then match
            # their name and address parts however they were written (quoted, escaped, or a
            # `user@host (Real Name)` comment).
            written = [_address_text(*a) for a in imap_structure.address_parts(text)]
            if any(written):
                lines.append(f"{name.decode('latin-1')}: " + ", ".join(w for w in written if w))
                size += len(lines[-1])
        if size >= MAX_INDEX_HEADER_CHARS:
            break
    return _storable("\n".join(lines)[:MAX_INDEX_HEADER_CHARS])


_ADDRESS_FIELDS = frozenset({b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc"})


def _address_text(
    name: str | None, route: str | None, mailbox: str | None, host: str | None
) -> str:
    if mailbox is None or host is None:
        return name or mailbox or ""  # a group's start or end
    address = f"{mailbox}@{host}"
    return f"{_SPACE.sub(' ', name).strip()} <{address}>" if name else address


def _body_text(raw: bytes, root: imap_structure.MimePart) -> str:
    """The decoded text parts, HTML without its markup: what SEARCH BODY and TEXT look in."""
    pieces: list[str] = []
    size = 0
    for subtype, charset, content in imap_structure.text_parts(raw, root):
        try:
            text = content[:MAX_INDEX_BODY_CHARS].decode(charset or "utf-8", errors="replace")
        except LookupError:
            text = content[:MAX_INDEX_BODY_CHARS].decode("latin-1")
        if subtype == "html":
            text = _strip_html(text)
        pieces.append(text)
        size += len(text)
        if size >= MAX_INDEX_BODY_CHARS:
            break
    return _storable("\n".join(pieces)[:MAX_INDEX_BODY_CHARS])


def _decode_words(text: str) -> str:
    """RFC 2047 encoded-words decoded; the text as written when they are broken."""
    try:
        return str(make_header(decode_header(_BETWEEN_ENCODED_WORDS.sub("", text))))
    except Exception:
        return text


def base_subject(subject: str) -> tuple[str, bool]:
    """RFC 5256 §2.1 "base subject": strip Re:/Fwd:/list tags, fold case and white space.

    Returns (base subject, whether any reply/forward prefix was removed)."""
    text = _SPACE.sub(" ", subject).strip()
    stripped_prefix = False
    for _ in range(20):  # bounded: each round removes at least one piece or stops
        before = text
        if text.lower().endswith("(fwd)"):  # step 2: subj-trailer
            text = text[: -len("(fwd)")].rstrip()
            stripped_prefix = True
        match = _REPLY_PREFIX.match(text)  # step 3: subj-leader
        if match:
            text = text[match.end() :]
            stripped_prefix = True
        blob = _LIST_TAG.match(text)
        if blob and text[blob.end() :].strip():  # step 4: a subj-blob goes only if text remains
            text = text[blob.end() :]
        lowered = text.lower()
        if lowered.startswith("[fwd:") and lowered.endswith("]"):  # step 6: subj-fwd wrapper
            text = text[len("[fwd:") : -1].strip()
            stripped_prefix = True
        if text == before:
            break
    return text.lower().strip(), stripped_prefix


Fields = dict[str, list[str]]
# The header fields the metadata is read from.
_WANTED = frozenset(
    {"subject", "references", "in-reply-to", "message-id", "from", "to", "cc", "date"}
)


def _wanted_fields(headers: email.message.Message) -> Fields:
    """The values of the wanted fields, by lower-case name, as text, in order.

    RFC 6532 §3.2 allows UTF-8 in field values (we advertise SMTPUTF8); other 8-bit octets are an
    unlabelled legacy charset, read as Latin-1 so that no octet is lost. The compat32 parser keeps
    such octets as surrogate escapes, which `Message.get` would turn into U+FFFD."""
    found: Fields = {}
    for field_name, value in headers.raw_items():
        name = field_name.lower()
        if name not in _WANTED:
            continue
        octets = str(value).encode("ascii", "surrogateescape")
        try:
            text = octets.decode("utf-8")
        except UnicodeDecodeError:
            text = octets.decode("latin-1")
        found.setdefault(name, []).append(text)
    return found


def _raw_header(fields: Fields, name: str) -> str:
    values = fields.get(name, [])
    return _storable(values[0]) if values else ""


def _text(fields: Fields, name: str, defects: list[str]) -> str | None:
    values = fields.get(name, [])
    if not values:
        return None
    value = values[0]
    try:
        if value.isascii():
            decoded = str(make_header(decode_header(value)))
        else:
            # decode_header mangles raw non-ASCII text around encoded words: decode the words
            # (RFC 2047 §6.2: white space between two adjacent ones is dropped) and keep the rest.
            joined = _BETWEEN_ENCODED_WORDS.sub("", value)
            decoded = _ENCODED_WORD.sub(lambda m: str(make_header(decode_header(m[0]))), joined)
    except Exception:
        defects.append(f"undecodable {name}")
        decoded = value
    return _storable(_SPACE.sub(" ", decoded).strip()[:998])


def _addresses(fields: Fields, name: str, defects: list[str]) -> tuple[str, ...]:
    values = fields.get(name, [])
    if not values:
        return ()
    try:
        pairs = getaddresses(values)
    except Exception:
        defects.append(f"unparseable {name}")
        return ()
    return tuple(_storable(addr.lower()) for _, addr in pairs if "@" in addr)[:100]


def _storable(text: str) -> str:
    """Text every database can store: PostgreSQL refuses NUL in text and JSON, and nothing can
    encode a lone surrogate (left by undecodable octets) as UTF-8."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _date(fields: Fields, defects: list[str]) -> datetime | None:
    values = fields.get("date", [])
    if not values:
        return None
    try:
        parsed = parsedate_to_datetime(values[0])
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append("unparseable Date")
        return None
    if parsed.tzinfo is None:
        # RFC 5322 §3.3: "-0000" means UTC with no information about the local zone.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _body_summary(
    raw: bytes,
    body: bytes,
    headers: email.message.Message,
    defects: list[str],
    root: imap_structure.MimePart | None,
) -> tuple[str, tuple[Attachment, ...]]:
    """Snippet and attachments. Only multipart messages need the (slow) full MIME parse: a
    single-part body is the bytes after the header section."""
    if len(raw) > MAX_BODY_PARSE_BYTES:
        defects.append("body not summarised: message too large")
        return "", ()
    if headers.get_content_maintype() != "multipart":
        headers.set_payload(body.decode("ascii", "surrogateescape"))
        leaves = [headers]
    else:
        leaves = _leaf_parts(raw, defects, root or imap_structure.parse(raw))
    plain: str | None = None
    html_text: str | None = None
    attachments: list[Attachment] = []
    for part in leaves:
        content_type = part.get_content_type()
        filename = _filename(part)
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        if filename or disposition == "attachment":
            if len(attachments) < MAX_ATTACHMENTS:
                payload = part.get_payload(decode=True)
                size = len(payload) if isinstance(payload, bytes) else 0
                attachments.append(Attachment(filename, content_type, size))
        elif content_type == "text/plain" and plain is None:
            plain = _decoded_text(part)
        elif content_type == "text/html" and html_text is None:
            html_text = _decoded_text(part)
    # A snippet needs only the start of the text; HTML gets more room for its markup.
    source = plain[: SNIPPET_LENGTH * 8] if plain else _strip_html((html_text or "")[:16384])
    return _SPACE.sub(" ", source).strip()[:SNIPPET_LENGTH], tuple(attachments)


def _leaf_parts(
    raw: bytes, defects: list[str], root: imap_structure.MimePart
) -> list[email.message.Message]:
    """The leaf parts of a multipart message, depth first, encapsulated messages included, each
    with its own header parsed and its body as written. The parts are found by byte offsets
    (imap_structure, bytes.find for the boundaries), not by the standard library's parser,
    which reads the whole message line by line in Python (~170 ms for 7 MiB)."""
    leaves: list[email.message.Message] = []
    stack = [(root, 0)]
    seen = 0
    while stack and seen < MAX_MIME_PARTS:
        node, depth = stack.pop()
        seen += 1
        if node.multipart or node.message is not None:
            if depth >= MAX_MIME_DEPTH:
                defects.append(f"MIME nesting deeper than {MAX_MIME_DEPTH}")
                continue
            inner = [node.message] if node.message is not None else node.children
            stack.extend((child, depth + 1) for child in reversed(inner) if child is not None)
            continue
        if node.type == "multipart":
            # imap_structure stops parsing at its own bounds: the rest is left unread.
            defects.append(
                f"MIME nesting deeper than {imap_structure.MAX_DEPTH} "
                f"or more than {imap_structure.MAX_PARTS} parts"
            )
            continue
        part = BytesHeaderParser(policy=email.policy.compat32).parsebytes(
            raw[node.start : node.body_start]
        )
        if not part.get("Content-Type") and (node.type, node.subtype) != ("text", "plain"):
            part.set_type(f"{node.type}/{node.subtype}")  # the default a digest gives its parts
        part.set_payload(raw[node.body_start : node.end].decode("ascii", "surrogateescape"))
        leaves.append(part)
    if stack:
        defects.append(f"more than {MAX_MIME_PARTS} MIME parts")
    return leaves


def _filename(part: email.message.Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    if name is None:
        return None
    try:
        return str(make_header(decode_header(name)))[:255]
    except Exception:
        return str(name)[:255]


def _decoded_text(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload[:65536].decode(charset, errors="replace")
    except LookupError:
        return payload[:65536].decode("latin-1")


def _strip_html(text: str) -> str:
    return html.unescape(_TAGS.sub(" ", text))


# Elements that start a new line in the text (block-level); "li" gets a bullet.
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tr",
        "ul",
    ]
)
_SKIPPED = frozenset({"script", "style", "head", "title", "template"})
# The plain text made of an HTML body stays bounded whatever the HTML holds.
MAX_TEXT_FROM_HTML = 1024 * 1024


class _TextOfHtml(HTMLParser):
    """The readable text of an HTML body: block elements on lines of their own, <br> breaks,
    list items as "- ", links followed by their address, quotes prefixed with "> " (as
    RFC 3676 §4.5 quoting reads), scripts and styles left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._skipping = 0
        self._quote = 0
        self._pre = 0
        self._href: list[str | None] = []
        self._size = 0

    def _break(self, blank: bool = False) -> None:
        text = "".join(self._line)
        if not self._pre:
            text = _SPACE.sub(" ", text).strip()
        self._line = []
        if text or (blank and self.lines and self.lines[-1] != ""):
            prefix = "> " * self._quote
            self.lines.append(prefix + text if text else prefix.rstrip())
        if blank and self.lines and self.lines[-1] != "":
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        elif tag == "br":
            self._break()
        elif tag in _BLOCKS:
            self._break(blank=tag in ("p", "blockquote", "h1", "h2", "h3", "table", "ul", "ol"))
            if tag == "blockquote":
                self._quote += 1
            elif tag == "pre":
                self._pre += 1
            elif tag == "li":
                self._line.append("- ")
            elif tag == "hr":
                self.lines.append("----")
        elif tag == "a":
            self._href.append(dict(attrs).get("href"))
        elif tag in ("td", "th"):
            self._line.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCKS:
            self._break(blank=tag in ("p", "blockquote", "h1", "h2", "h3", "table", "ul", "ol"))
            if tag == "blockquote":
                self._quote = max(0, self._quote - 1)
            elif tag == "pre":
                self._pre = max(0, self._pre - 1)
        elif tag == "a" and self._href:
            href = self._href.pop()
            shown = "".join(self._line)
            if href and href.startswith(("http:", "https:", "mailto:")) and href not in shown:
                self._line.append(f" <{href.removeprefix('mailto:')}>")

    def handle_data(self, data: str) -> None:
        if self._skipping or self._size > MAX_TEXT_FROM_HTML:
            return
        self._size += len(data)
        if self._pre:
            lines = data.split("\n")
            for index, line in enumerate(lines):
                if index:
                    self._break()
                self._line.append(line)
        else:
            self._line.append(data)

    def text(self) -> str:
        self._break()
        while self.lines and self.lines[-1] == "":
            self.lines.pop()
        return "\n".join(self.lines)[:MAX_TEXT_FROM_HTML] + "\n"


def html_to_text(markup: str) -> str:
    """The plain-text alternative of an HTML body (RFC 2046 §5.1.4): what a reader of the HTML
    sees, as lines of text. Bounded by MAX_TEXT_FROM_HTML."""
    parser = _TextOfHtml()
    parser.feed(markup[: MAX_TEXT_FROM_HTML * 4])
    parser.close()
    return parser.text()

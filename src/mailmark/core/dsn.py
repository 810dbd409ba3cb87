"""Delivery Status Notifications (RFC 3464) for mail this server could not deliver.

A DSN is a `multipart/report; report-type=delivery-status` (RFC 6522) of three parts: a text for
people, the machine-readable `message/delivery-status`, and the original message's header section
as `text/rfc822-headers` (RFC 3464 §2: returning the headers, not the content, is enough to match
the report and never re-sends the content to anyone).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import format_datetime, getaddresses
from typing import Protocol

# A returned header section is bounded: a report about a message with a huge header section must
# not be huge itself.
MAX_RETURNED_HEADERS = 32 * 1024
MAX_DIAGNOSTIC = 900
MAILER_DAEMON_NAME = "Mail Delivery System"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


class DeliveryReply(Protocol):
    """What the receiving server answered (core.smtp_reply.SmtpReply has this shape)."""

    @property
    def code(self) -> int: ...

    @property
    def enhanced(self) -> str | None: ...

    @property
    def text(self) -> str: ...

    @property
    def mx_host(self) -> str | None: ...


def failure_status(reply: DeliveryReply) -> str:
    """The RFC 3463 status of a recipient given up on (RFC 3464 §2.3.4: `failed` takes class 5).

    A permanent reply keeps its enhanced code (or the generic one for its basic code); a temporary
    reply or a network error only fails because the queue lifetime ran out: 5.4.7, "delivery time
    expired" (RFC 3463 §3.5)."""
    if 500 <= reply.code <= 599:
        if reply.enhanced and _ENHANCED.match(reply.enhanced) and reply.enhanced.startswith("5."):
            return reply.enhanced
        return "5.0.0"
    return "5.4.7"


def build_dsn(
    *,
    reporting_mta: str,
    original_envelope_from: str,
    original_headers: bytes,
    failures: Sequence[tuple[str, DeliveryReply]],
    arrival: datetime,
    now: datetime,
    message_id_domain: str,
    message_id: str | None = None,
) -> bytes:
    """One DSN reporting every failed recipient of one message, as CRLF bytes ready to store.

    `original_headers` may be the whole original message: only its header section is returned.
    `message_id` (without <>) is random unless given."""
    if not failures:
        raise ValueError("a DSN reports at least one failed recipient")
    headers = header_section(original_headers)
    headers_text = headers.decode("utf-8", errors="replace")
    # compat32 keeps values as the text they are: no structured parsing of user-supplied fields.
    parsed = HeaderParser(policy=policy.compat32).parsestr(headers_text)
    recipient_of_report = _first_address(parsed.get_all("From", [])) or original_envelope_from
    original_subject = _clean(_decoded(str(parsed.get("Subject", ""))), 200)
    original_message_id = _clean(str(parsed.get("Message-ID", "")), 250)

    report = EmailMessage(policy=policy.SMTP)
    report["From"] = f"{MAILER_DAEMON_NAME} <MAILER-DAEMON@{_clean(reporting_mta, 253)}>"
    report["To"] = _clean(recipient_of_report, 320)
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = format_datetime(now)
    unique = message_id or f"{secrets.token_hex(16)}@{_clean(message_id_domain, 253)}"
    report["Message-ID"] = f"<{unique}>"
    # RFC 3834 §5: a DSN is an automatic response; mail agents must not answer it automatically.
    report["Auto-Submitted"] = "auto-replied"
    if original_message_id.startswith("<") and original_message_id.endswith(">"):
        # Threads the report under the message it is about.
        report["In-Reply-To"] = original_message_id
        report["References"] = original_message_id
    report.set_content(
        _human_text(reporting_mta, original_subject, failures), subtype="plain", charset="utf-8"
    )
    report.make_mixed()
    report.set_type("multipart/report")
    # RFC 6522 §3: the report type names the second part's content type.
    report.set_param("report-type", "delivery-status")

    report.attach(_delivery_status(reporting_mta, arrival, now, failures))

    returned = EmailMessage(policy=policy.SMTP)
    returned.set_content(headers_text, subtype="rfc822-headers", charset="utf-8")
    del returned["MIME-Version"]
    report.attach(returned)
    return report.as_bytes(policy=policy.SMTP)


def header_section(raw: bytes) -> bytes:
    """The header section of a message (up to the empty line), bounded, each line ending in CRLF.

    Past the bound whole fields are dropped: a field cut in half could be misread."""
    window = raw[: MAX_RETURNED_HEADERS + 4]
    end = window.find(b"\r\n\r\n")
    if end < 0:
        end = window.find(b"\n\n")
    truncated = end < 0 and len(raw) > len(window)
    section = window if end < 0 else window[:end]
    lines = section.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    fields: list[bytes] = []
    for line in lines:
        if not line:
            continue
        if fields and line[:1] in (b" ", b"\t"):  # RFC 5322 §2.2.3: a folded continuation
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    if truncated and fields:
        fields.pop()
    kept: list[bytes] = []
    size = 0
    for field in fields:
        size += len(field)
        if size > MAX_RETURNED_HEADERS:
            break
        kept.append(field)
    return b"".join(kept)


def _delivery_status(
    reporting_mta: str,
    arrival: datetime,
    now: datetime,
    failures: Sequence[tuple[str, DeliveryReply]],
) -> EmailMessage:
    """The message/delivery-status part: one per-message block, then one block per recipient."""
    per_message = Message(policy=policy.SMTP)
    per_message["Reporting-MTA"] = f"dns; {_clean(reporting_mta, 253)}"  # RFC 3464 §2.2.2
    per_message["Arrival-Date"] = format_datetime(arrival)  # RFC 3464 §2.2.5
    blocks: list[Message | str] = [per_message]
    for recipient, reply in failures:
        block = Message(policy=policy.SMTP)
        # RFC 3464 §2.3.2: the address the delivery was attempted to, with its address type.
        block["Final-Recipient"] = f"rfc822; {_clean(recipient, 320)}"
        block["Action"] = "failed"  # RFC 3464 §2.3.3
        block["Status"] = failure_status(reply)  # RFC 3464 §2.3.4
        if reply.mx_host:
            block["Remote-MTA"] = f"dns; {_clean(reply.mx_host, 253)}"  # RFC 3464 §2.3.5
        if reply.code:
            # RFC 3464 §2.3.6: the receiving server's reply, verbatim apart from line breaks.
            block["Diagnostic-Code"] = f"smtp; {_diagnostic(reply)}"
        block["Last-Attempt-Date"] = format_datetime(now)  # RFC 3464 §2.3.7
        blocks.append(block)
    part = EmailMessage(policy=policy.SMTP)
    part["Content-Type"] = "message/delivery-status"
    part.set_payload(blocks)
    return part


def _human_text(
    reporting_mta: str, subject: str, failures: Sequence[tuple[str, DeliveryReply]]
) -> str:
    about = f' "{subject}"' if subject else ""
    lines = [
        f"This is the mail system at {_clean(reporting_mta, 253)}.",
        "",
        (
            f"Your message{about} could not be delivered to the following recipient(s). "
            "The delivery was given up; it will not be retried."
        ),
        "",
    ]
    for recipient, reply in failures:
        if reply.code:
            where = f"the server {reply.mx_host}" if reply.mx_host else "the receiving server"
            explanation = f"{where} answered: {_diagnostic(reply)}"
        else:
            explanation = _clean(reply.text, MAX_DIAGNOSTIC) or "it could not be reached"
        lines.append(f"<{_clean(recipient, 320)}>: {explanation}")
    lines.append("")
    lines.append("The header of your message is attached.")
    return "\n".join(lines) + "\n"


def _diagnostic(reply: DeliveryReply) -> str:
    text = " ".join(reply.text.split())
    if reply.enhanced and not text.startswith(reply.enhanced):
        text = f"{reply.enhanced} {text}"
    return _clean(f"{reply.code} {text}".strip(), MAX_DIAGNOSTIC)


def _clean(value: str, limit: int) -> str:
    """Control characters (CR, LF included) never reach a header field of ours."""
    return _CONTROL.sub(" ", value).strip()[:limit]


def _decoded(value: str) -> str:
    """A field's text with RFC 2047 encoded-words decoded, or as it is when they are broken."""
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return value


def _first_address(values: Sequence[str]) -> str | None:
    for _name, address in getaddresses([str(value) for value in values]):
        if "@" in address:
            return address
    return None

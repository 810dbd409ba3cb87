"""Reading the reports other servers send back about mail we sent.

Two kinds arrive at a message's VERP address: delivery status notifications (RFC 3464, a
`message/delivery-status` part) and complaint feedback reports (RFC 5965 ARF, a
`message/feedback-report` part). `parse_report` is pure: bytes in, a `BounceReport` or None out.
Everything it reads comes from strangers, so every size, count and depth is bounded, and input that
is not a report it understands gives None rather than an error.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email import policy
from email.errors import MessageError
from email.message import Message
from email.parser import BytesParser, HeaderParser
from typing import Literal, NamedTuple

log = logging.getLogger(__name__)

# A report is a few kilobytes; the original message attached to it may be large, but the parts we
# read come before it (RFC 3464 §2 and RFC 5965 §2 fix the order), so a prefix is enough.
MAX_REPORT_BYTES = 1024 * 1024
MAX_DEPTH = 6  # multipart nesting searched for the report part
MAX_PARTS = 200  # MIME parts looked at in all
MAX_RECIPIENTS = 500  # per-recipient blocks read from one report
MAX_FIELD = 2000  # characters kept of any one field value

ReportKind = Literal["bounce", "delay", "complaint"]

# RFC 5965 §7.3, RFC 6430 (not-spam), RFC 6591 (auth-failure). Not-spam and authentication
# failure reports are not complaints about the recipient receiving our mail.
NOT_COMPLAINTS = frozenset({"not-spam", "auth-failure"})

_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")
_WHITESPACE = re.compile(r"[\s\x00-\x1f\x7f]+")


class ReportedRecipient(NamedTuple):
    address: str
    status: str | None  # RFC 3463 code, e.g. "5.1.1"; None for a complaint
    diagnostic: str | None  # the remote server's reply, or the feedback type of a complaint


@dataclass(frozen=True)
class BounceReport:
    kind: ReportKind
    recipients: tuple[ReportedRecipient, ...]
    original_message_id: str | None  # without <>
    feedback_type: str | None = None  # ARF only, lower-case


def parse_report(raw: bytes) -> BounceReport | None:
    """The DSN or ARF report in `raw`, or None when it holds none we can act on."""
    message = _parse_message(raw[:MAX_REPORT_BYTES])
    if message is None:
        return None
    found = _find_report_part(message)
    if found is None:
        return None
    container, part = found
    original_message_id = _original_message_id(container)
    if part.get_content_type() == "message/feedback-report":
        return _complaint(part, container, original_message_id)
    return _delivery_status(part, original_message_id)


def _parse_message(raw: bytes) -> Message | None:
    try:
        # compat32 keeps header values as the text they are: the structured header classes of
        # the newer policies parse lazily and have raised on hostile input.
        return BytesParser(policy=policy.compat32).parsebytes(raw)
    except (MessageError, RecursionError, ValueError, LookupError) as error:
        log.info("unparseable report: %s", error)
        return None


def _find_report_part(message: Message) -> tuple[Message, Message] | None:
    """The first delivery-status or feedback-report part and the multipart holding it.

    Only multipart containers are searched: a report part inside an attached message/rfc822 is
    about some other message (a bounce of a bounce)."""
    stack: list[tuple[Message, Message, int]] = [(message, message, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, parent, depth = stack.pop()
        seen += 1
        content_type = part.get_content_type()
        if content_type in (
            "message/delivery-status",
            "message/global-delivery-status",  # RFC 6533 §6
            "message/feedback-report",
        ):
            return parent, part
        if part.is_multipart() and content_type.startswith("multipart/") and depth < MAX_DEPTH:
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(
                    (child, part, depth + 1)
                    for child in reversed(children[:MAX_PARTS])
                    if isinstance(child, Message)
                )
    return None


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a report part: the stdlib parses message/delivery-status as a list of
    blocks and other message/* types as one nested message; anything else is parsed here."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload[: MAX_RECIPIENTS + 1] if isinstance(block, Message)]
    text = _payload_text(part)
    if text is None:
        return []
    # RFC 3464 §2.1: blocks are separated by empty lines.
    chunks = re.split(r"\r?\n[ \t]*\r?\n", text.strip(), maxsplit=MAX_RECIPIENTS + 1)
    parser = HeaderParser(policy=policy.compat32)
    return [parser.parsestr(chunk) for chunk in chunks[: MAX_RECIPIENTS + 1]]


def _payload_text(part: Message) -> str | None:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return None
    return data[:MAX_REPORT_BYTES].decode("utf-8", errors="replace")


def _delivery_status(part: Message, original_message_id: str | None) -> BounceReport | None:
    blocks = _field_blocks(part)
    if not blocks:
        return None
    per_message, per_recipient = blocks[0], blocks[1:]
    if _value(per_message, "Final-Recipient") is not None:
        # No per-message block (not RFC 3464, but seen): the first block is a recipient's.
        per_message, per_recipient = Message(), blocks
    failed: list[ReportedRecipient] = []
    delayed: list[ReportedRecipient] = []
    for block in per_recipient[:MAX_RECIPIENTS]:
        address = _recipient_address(block)
        action = (_value(block, "Action") or "").split("(")[0].strip().lower()
        if address is None or action not in ("failed", "delayed"):
            continue  # delivered, relayed, expanded (RFC 3464 §2.3.3): nothing to do
        status_match = _STATUS.search(_value(block, "Status") or "")
        recipient = ReportedRecipient(
            address, status_match[1] if status_match else None, _diagnostic(block)
        )
        (failed if action == "failed" else delayed).append(recipient)
    if original_message_id is None:
        # Gmail names the original in the per-message block.
        original_message_id = _message_id(_value(per_message, "X-Original-Message-ID"))
    if failed:
        return BounceReport("bounce", tuple(failed), original_message_id)
    if delayed:
        return BounceReport("delay", tuple(delayed), original_message_id)
    return None


def _complaint(
    part: Message, container: Message, original_message_id: str | None
) -> BounceReport | None:
    blocks = _field_blocks(part)
    if not blocks:
        return None
    fields = blocks[0]
    # RFC 5965 §3.1: Feedback-Type is required; without it this is not a feedback report.
    feedback_type = (_value(fields, "Feedback-Type") or "").split("(")[0].strip().lower()
    if not feedback_type or feedback_type in NOT_COMPLAINTS:
        return None
    addresses: list[str] = []
    for value in fields.get_all("Original-Rcpt-To", [])[:MAX_RECIPIENTS]:  # RFC 5965 §3.2
        address = _bare_address(_clean(str(value)))
        if address is not None and address not in addresses:
            addresses.append(address)
    if not addresses:
        # Many providers redact the recipient; the attached original's To names it when it names
        # exactly one address.
        addresses = _single_original_recipient(container)
    recipients = tuple(ReportedRecipient(a, None, feedback_type) for a in addresses)
    return BounceReport("complaint", recipients, original_message_id, feedback_type)


def _original_headers(container: Message) -> Message | None:
    """The header section of the reported message: the third part of a report (RFC 3464 §2,
    RFC 5965 §2), either message/rfc822 (possibly headers only) or text/rfc822-headers."""
    children = container.get_payload()
    if not isinstance(children, list):
        return None
    for child in children[:MAX_PARTS]:
        if not isinstance(child, Message):
            continue
        content_type = child.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            inner = child.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
            text = _payload_text(child)
            return None if text is None else HeaderParser(policy=policy.compat32).parsestr(text)
        if content_type in ("text/rfc822-headers", "message/global-headers"):
            text = _payload_text(child)
            return None if text is None else HeaderParser(policy=policy.compat32).parsestr(text)
    return None


def _original_message_id(container: Message) -> str | None:
    headers = _original_headers(container)
    return None if headers is None else _message_id(_value(headers, "Message-ID"))


def _single_original_recipient(container: Message) -> list[str]:
    headers = _original_headers(container)
    if headers is None:
        return []
    to = _value(headers, "To") or ""
    candidates = [a for a in (_bare_address(p) for p in to.split(",")) if a is not None]
    return candidates if len(candidates) == 1 else []


def _recipient_address(block: Message) -> str | None:
    # RFC 3464 §2.3.1: Original-Recipient is the address as we gave it (xtext, RFC 3461 §4);
    # Final-Recipient (§2.3.2, required) may be the receiving side's rewrite of it.
    original = _value(block, "Original-Recipient")
    if original is not None:
        address = _typed_address(original, xtext=True)
        if address is not None:
            return address
    final = _value(block, "Final-Recipient")
    return None if final is None else _typed_address(final, xtext=False)


def _typed_address(value: str, *, xtext: bool) -> str | None:
    """`rfc822; user@example.org` (RFC 3464 §2.1.2: address-type ";" generic-address)."""
    address_type, separator, address = value.partition(";")
    if not separator:
        address = address_type
    elif address_type.strip().lower() not in ("rfc822", "utf-8"):
        return None
    if xtext:
        address = _XTEXT.sub(lambda m: chr(int(m[1], 16)), address)
    return _bare_address(address)


def _bare_address(text: str) -> str | None:
    candidate = text.strip()
    if "<" in candidate and ">" in candidate:
        candidate = candidate[candidate.rfind("<") + 1 : candidate.rfind(">")]
    candidate = candidate.strip().strip("<>").strip()
    local, at, domain = candidate.rpartition("@")
    if not at or not local or not domain or len(candidate) > 320 or " " in candidate:
        return None
    return f"{local}@{domain.lower()}"


def _diagnostic(block: Message) -> str | None:
    value = _value(block, "Diagnostic-Code")
    if value is None:
        return None
    _diagnostic_type, separator, text = value.partition(";")
    return text.strip() if separator else value


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    match = re.search(r"<([^<>\s]{1,250})>", value)
    if match:
        return match[1]
    bare = value.strip()
    return bare if bare and " " not in bare and len(bare) <= 250 else None


def _value(block: Message, name: str) -> str | None:
    value = block.get(name)
    if value is None:
        return None
    cleaned = _clean(str(value))
    return cleaned or None


def _clean(value: str) -> str:
    """A field value unfolded (RFC 5322 §2.2.3), without control characters, bounded."""
    return _WHITESPACE.sub(" ", value[: MAX_FIELD * 2]).strip()[:MAX_FIELD]

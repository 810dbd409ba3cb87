"""Sending: the one entry point for every sender (SMTP submission, the API, the dashboard,
campaigns).

A submission is checked (sender, quota, suppressions, header injection), stored as one blob, and
recorded in one transaction: the Sent copy, the outbound message and one queue row per recipient.
The queue's workers are woken once it has committed.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from html import escape

from mailmark.core.addresses import normalize_domain, verp_address
from mailmark.core.delivery import InboundDelivery
from mailmark.core.errors import Forbidden, HeaderInjection, InvalidInput, NotFound, Suppressed
from mailmark.core.message_meta import check_header_limits, header_section, read_metadata
from mailmark.core.model import Mailbox, NewDelivery, OutboundMessage
from mailmark.core.outbound import OutboundQueue
from mailmark.core.plans import effective_plan, ensure_email_quota
from mailmark.core.ports import BlobStore, Clock, NewEvent, UnitOfWork, UnitOfWorkFactory

SENT = "Sent"
SEEN = "\\Seen"
TOKEN_LENGTH = 24
# Lower-case only: some systems change the case of a return path's local part.
TOKEN_ALPHABET = string.ascii_lowercase + string.digits
MAX_ADDRESS = 320
MAX_LOCAL_PART = 64
MAX_SUBJECT = 998  # RFC 5322 §2.1.1: no line longer than 998 characters
MAX_HEADER_VALUE = 998
MAX_EXTRA_HEADERS = 50
MAX_BATCH_ID = 64
# Fields the message is built with; callers cannot replace them through `headers`.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "reply-to",
        "return-path",
        "received",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "dkim-signature",
    }
)
# RFC 5322 §3.2.3 atext, as dot-atoms: the local parts we send to. Quoted local parts are refused.
_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
# RFC 5322 §2.2: a field name is printable ASCII except the colon.
_FIELD_NAME = re.compile(r"^[!-9;-~]{1,76}$")
_HTML_TAG = re.compile(r"<[A-Za-z/!][^>]*>")
_BCC_FIELD = re.compile(rb"^bcc[ \t]*:", re.IGNORECASE)
_REASONS = {
    "bounce": "an earlier message to it bounced",
    "complaint": "its owner marked an earlier message as spam",
    "manual": "it was added to the list by hand",
}


@dataclass(frozen=True)
class Submission:
    outbound_id: int
    message_id: str  # the Message-ID without <>
    recipients: tuple[str, ...]


def check_header_value(label: str, value: str, limit: int = MAX_HEADER_VALUE) -> None:
    """Refuse header injection: CR, LF or NUL in a value bound for a header field."""
    if any(ch in value for ch in "\r\n\0"):
        raise HeaderInjection(f"{label} must not contain line breaks or NUL characters.")
    if len(value) > limit:
        raise InvalidInput(f"{label} is longer than {limit} characters.")


def normalize_address(address: str, label: str = "The address") -> str:
    """A plain `local@domain` address, its domain lower-cased and IDNA-encoded."""
    check_header_value(label, address, MAX_ADDRESS)
    candidate = address.strip()
    local, at, domain = candidate.rpartition("@")
    if not at or len(local.encode()) > MAX_LOCAL_PART or not _DOT_ATOM.match(local):
        raise InvalidInput(f"{label} {address!r} is not a valid email address.")
    try:
        return f"{local}@{normalize_domain(domain)}"
    except InvalidInput:
        raise InvalidInput(f"{label} {address!r} is not a valid email address.") from None


def new_token() -> str:
    """The per-message VERP token: 24 characters from `secrets`, lower-case letters and digits."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def month_start(now: datetime) -> datetime:
    """The email quota resets at the start of each calendar month (UTC)."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class SendingService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        blobs: BlobStore,
        clock: Clock,
        queue: OutboundQueue,
        delivery: InboundDelivery,
        max_recipients: int = 100,
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._clock = clock
        self._queue = queue
        self._delivery = delivery
        self._max_recipients = max_recipients

    def check_sender(self, mailbox: Mailbox, address: str) -> None:
        """Raise Forbidden unless `address` is the mailbox's own. (`submit_raw` also accepts the
        address of another mailbox of the same user, which needs a lookup.)"""
        if normalize_address(address, "The sender").lower() != mailbox.address.lower():
            raise Forbidden(f"{mailbox.address} may not send as {address}.")

    async def check_recipient(self, mailbox: Mailbox, address: str) -> None:
        """Raise InvalidInput for a malformed address, Suppressed for one the mailbox's domain
        no longer mails."""
        recipient = normalize_address(address, "The recipient")
        async with self._uow(read_only=True) as uow:
            await self._check_suppressions(uow, mailbox, [recipient])

    async def submit(
        self,
        *,
        mailbox: Mailbox,
        to: Sequence[str],
        cc: Sequence[str] = (),
        bcc: Sequence[str] = (),
        subject: str,
        text: str | None = None,
        html: str | None = None,
        reply_to: str | None = None,
        headers: Mapping[str, str] | None = None,
        source: str = "api",
        scheduled_at: datetime | None = None,
        batch_id: str | None = None,
    ) -> Submission:
        """Build a message from the mailbox (display name, signature) and queue it.

        Bcc recipients get the message but are never named in it."""
        to_addrs = _addresses("To", to)
        cc_addrs = _addresses("Cc", cc)
        bcc_addrs = _addresses("Bcc", bcc)
        check_header_value("The subject", subject, MAX_SUBJECT)
        extra = dict(headers or {})
        if len(extra) > MAX_EXTRA_HEADERS:
            raise InvalidInput(f"At most {MAX_EXTRA_HEADERS} extra headers may be given.")
        for name, value in extra.items():
            if not _FIELD_NAME.match(name) or name.lower() in RESERVED_HEADERS:
                raise InvalidInput(f"{name!r} cannot be set as an extra header.")
            check_header_value(f"The {name} header", value)
        reply = normalize_address(reply_to, "The Reply-To address") if reply_to else None
        if batch_id is not None:
            check_header_value("The batch id", batch_id, MAX_BATCH_ID)
        recipients = self._recipients([*to_addrs, *cc_addrs, *bcc_addrs])
        now = self._clock.now()
        message_id = f"{secrets.token_hex(16)}@{mailbox.domain_name}"

        message = EmailMessage(policy=policy.SMTP)
        message["From"] = Address(display_name=mailbox.display_name, addr_spec=mailbox.address)
        if to_addrs:
            message["To"] = ", ".join(to_addrs)
        if cc_addrs:
            message["Cc"] = ", ".join(cc_addrs)
        if reply:
            message["Reply-To"] = reply
        message["Subject"] = subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = f"<{message_id}>"
        for name, value in extra.items():
            message[name] = value
        _set_body(message, text, html, mailbox.signature)
        # policy.SMTP: every line ends in CRLF (RFC 5322 §2.1), long lines are encoded.
        raw = message.as_bytes(policy=policy.SMTP)
        return await self._enqueue(
            mailbox,
            mailbox.address,
            raw,
            recipients,
            subject,
            message_id,
            source,
            scheduled_at,
            batch_id,
        )

    async def submit_raw(
        self, *, mailbox: Mailbox, recipients: Sequence[str], raw: bytes, source: str = "submission"
    ) -> Submission:
        """Queue a message a client composed (SMTP submission, RFC 6409).

        Its From must be the mailbox or another mailbox of the same user (else Forbidden); a
        missing Message-ID or Date is added (RFC 6409 §8.2, §8.3) and Bcc fields are removed."""
        check_header_limits(raw)
        unique = self._recipients([normalize_address(r, "The recipient") for r in recipients])
        meta = read_metadata(raw)
        senders = [addr for _, addr in getaddresses(_header_values(raw, b"from")) if addr]
        if len(senders) != 1:
            raise Forbidden("The message needs exactly one From address, the sending mailbox.")
        sender = normalize_address(senders[0], "The From address")
        now = self._clock.now()
        message_id = meta.message_id.strip("<>") if meta.message_id else None
        added = b""
        if meta.message_id is None:
            message_id = f"{secrets.token_hex(16)}@{mailbox.domain_name}"
            added += f"Message-ID: <{message_id}>\r\n".encode()
        if not _header_values(raw, b"date"):
            added += f"Date: {format_datetime(now)}\r\n".encode()
        prepared = _without_bcc(raw, added)
        assert message_id is not None
        return await self._enqueue(
            mailbox, sender, prepared, unique, meta.subject, message_id, source, None, None
        )

    def _recipients(self, addresses: Sequence[str]) -> tuple[str, ...]:
        unique = tuple({address.lower(): address for address in addresses}.values())
        if not unique:
            raise InvalidInput("Give at least one recipient.")
        if len(unique) > self._max_recipients:
            raise InvalidInput(f"Too many recipients: at most {self._max_recipients} per message.")
        return unique

    async def _enqueue(
        self,
        mailbox: Mailbox,
        sender_address: str,
        raw: bytes,
        recipients: tuple[str, ...],
        subject: str | None,
        message_id: str,
        source: str,
        scheduled_at: datetime | None,
        batch_id: str | None,
    ) -> Submission:
        now = self._clock.now()
        if scheduled_at is not None and scheduled_at.tzinfo is None:
            raise InvalidInput("The scheduled time needs a time zone.")
        first_attempt = max(now, scheduled_at) if scheduled_at is not None else now
        # The blob is durable before the transaction that references it; removed if that fails.
        blob_key, created = await self._blobs.put(raw)
        try:
            async with self._uow() as uow:
                current = await uow.mailboxes.get(mailbox.id) if mailbox.id is not None else None
                if current is None:
                    raise NotFound(f"No mailbox {mailbox.address} here.")
                sender = await self._sending_mailbox(uow, current, sender_address)
                assert sender.id is not None
                account = await uow.accounts.get(sender.account_id)
                assert account is not None and account.id is not None
                plan = effective_plan(account, now)
                await uow.accounts.lock(account.id)
                sent = await uow.outbound.count_recipients_since(account.id, month_start(now))
                ensure_email_quota(plan, sent, len(recipients))
                await self._check_suppressions(uow, sender, recipients)
                token = new_token()
                envelope_from = verp_address(token, sender.domain_name)
                sent_copy = await self._delivery.place_in(
                    uow,
                    raw,
                    blob_key=blob_key,
                    created_blob=created,
                    mailbox=current,
                    folder=SENT,
                    mail_from=envelope_from,
                    flags=(SEEN,),
                )
                outbound = await uow.outbound.add(
                    OutboundMessage(
                        account_id=account.id,
                        domain_id=sender.domain_id,
                        mailbox_id=sender.id,
                        blob_key=blob_key,
                        size=len(raw),
                        envelope_from=envelope_from,
                        token=token,
                        from_addr=sender.address,
                        subject=subject,
                        message_id_header=message_id,
                        source=source,
                        created_at=now,
                        batch_id=batch_id,
                        sent_message_id=sent_copy.message_id,
                    )
                )
                assert outbound.id is not None
                expires_at = first_attempt + self._queue.queue_lifetime
                await uow.deliveries.add_many(
                    [
                        NewDelivery(
                            outbound.id,
                            address,
                            address.rpartition("@")[2].lower(),
                            first_attempt,
                            expires_at,
                            now,
                        )
                        for address in recipients
                    ]
                )
                payload: dict[str, object] = {
                    "from": sender.address,
                    "to": list(recipients),
                    "subject": subject,
                    "messageId": message_id,
                    "source": source,
                    "batchId": batch_id,
                    "scheduledAt": scheduled_at.isoformat() if scheduled_at else None,
                }
                await uow.events.add_many(
                    [NewEvent(account.id, "email.sent", payload, now, outbound_id=outbound.id)]
                )
                await uow.commit()
        except BaseException:
            if created:
                await self._blobs.delete(blob_key)
            raise
        self._queue.wakeup.set()
        return Submission(outbound.id, message_id, recipients)

    @staticmethod
    async def _sending_mailbox(uow: UnitOfWork, current: Mailbox, address: str) -> Mailbox:
        """The mailbox named in From: the caller's own, or another mailbox of the same user."""
        if address.lower() == current.address.lower():
            return current
        local, _, domain = address.rpartition("@")
        other = await uow.mailboxes.find(domain.lower(), local.lower())
        if other is None or current.user_id is None or other.user_id != current.user_id:
            raise Forbidden(f"{current.address} may not send as {address}.")
        return other

    @staticmethod
    async def _check_suppressions(
        uow: UnitOfWork, mailbox: Mailbox, recipients: Sequence[str]
    ) -> None:
        found = await uow.suppressions.find(mailbox.domain_id, [r.lower() for r in recipients])
        if found:
            first = min(found, key=lambda s: s.address)
            reason = _REASONS.get(first.reason, first.reason)
            raise Suppressed(
                f"{first.address} is on the suppression list of {mailbox.domain_name}: {reason}. "
                "Mail to it is not sent."
            )


def _addresses(label: str, addresses: Sequence[str]) -> list[str]:
    if isinstance(addresses, str):
        addresses = [addresses]
    return [normalize_address(address, f"The {label} address") for address in addresses]


def _set_body(message: EmailMessage, text: str | None, html: str | None, signature: str) -> None:
    """The text and/or HTML body, each with the mailbox's signature (RFC 3676 §4.3 separator)."""
    signature = signature.strip()
    signature_is_html = bool(_HTML_TAG.search(signature))
    if html is None or text is not None:
        plain = text or ""
        if signature:
            shown = _HTML_TAG.sub("", signature) if signature_is_html else signature
            plain = f"{plain.rstrip()}\n\n-- \n{shown}\n"
        message.set_content(plain, subtype="plain", charset="utf-8")
    if html is not None:
        rich = html
        if signature:
            shown = signature if signature_is_html else escape(signature).replace("\n", "<br>\n")
            rich = f"{html}\n<br><br>\n-- <br>\n{shown}\n"
        if text is None:
            message.set_content(rich, subtype="html", charset="utf-8")
        else:
            message.add_alternative(rich, subtype="html", charset="utf-8")


def _header_fields(raw: bytes) -> list[bytes]:
    """The header section's fields, each with its folded continuation lines."""
    fields: list[bytes] = []
    for line in header_section(raw).splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def _header_values(raw: bytes, name: bytes) -> list[str]:
    prefix = re.compile(rb"^" + re.escape(name) + rb"[ \t]*:", re.IGNORECASE)
    return [
        prefix.sub(b"", field, count=1).decode("utf-8", errors="replace").strip()
        for field in _header_fields(raw)
        if prefix.match(field)
    ]


def _without_bcc(raw: bytes, added: bytes) -> bytes:
    """The message without Bcc fields (RFC 5322 §3.6.3), with `added` fields appended to the
    header section."""
    head = header_section(raw)
    kept = b"".join(field for field in _header_fields(raw) if not _BCC_FIELD.match(field))
    if added and kept and not kept.endswith(b"\r\n"):
        kept += b"\r\n"
    return kept + added + raw[len(head) :]

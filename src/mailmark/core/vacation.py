"""Vacation responders and automatic replies (RFC 3834, RFC 5230).

A mailbox's vacation settings (on or off, a window of dates in the owner's time zone, a subject
and a message, how often one sender is answered) become an `AutoReply` through `VacationRule`,
one of the delivery rules; Sieve's `vacation` action makes the same kind of reply. `Responder`
carries replies out: it decides whether the message may be answered at all (never lists, bulk
or automatic mail, null senders, or mail that does not name the mailbox), answers each sender at
most once in the reply's days, and queues the answer like any outbound message, DKIM-signed,
with a null return path so nothing ever answers it back.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import getaddresses
from html import unescape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailmark.core import compose
from mailmark.core.access import Viewer
from mailmark.core.addresses import (
    MAX_HEADER_VALUE,
    SUBADDRESS_SEPARATOR,
    check_header_value,
)
from mailmark.core.dispositions import AutoReply, Disposition, InboundMessage, MailboxSettings
from mailmark.core.errors import InvalidInput
from mailmark.core.mailboxes import MailboxService
from mailmark.core.model import Mailbox, VacationSettings
from mailmark.core.ports import Clock, HtmlSanitizer, UnitOfWork, UnitOfWorkFactory
from mailmark.core.sending import new_token
from mailmark.core.states import SpecialFolder
from mailmark.core.system_mail import SystemMail

log = logging.getLogger(__name__)

DEFAULT_DAYS = 7
MIN_DAYS = 1  # RFC 5230 §4.1: the minimum a site may allow is one day
MAX_DAYS = 365
MAX_SUBJECT = 500
MAX_BODY = 20_000
BODY_FORMATS = ("text", "html")
MAX_TIME_ZONE = 64
AUTO_SUBJECT_PREFIX = "Auto: "  # RFC 3834 §3.1.5
# References kept from the original (RFC 5322 §3.6.4): enough for threading, bounded in size.
MAX_REFERENCES = 20

# RFC 5230 §4.6 and RFC 3834 §2: addresses that belong to software, not to a person who reads.
_MACHINE_LOCAL_PARTS = frozenset(
    {
        "mailer-daemon",
        "listserv",
        "majordomo",
        "noreply",
        "no-reply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "do_not_reply",
        "bounce",
        "bounces",
    }
)
_MACHINE_PREFIXES = ("owner-", "bounce+", "bounces+")
_MACHINE_SUFFIXES = ("-request", "-owner", "-bounces", "-bounce")
# RFC 3834 §2 and RFC 5230 §4.6: what bulk mail, lists and other responders say of themselves.
_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
_RECIPIENT_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
_MESSAGE_ID = re.compile(r"<[^<>\s\"]{1,250}>")
_TAG = re.compile(r"<[^>]*>")
_LINE_BREAK_TAGS = re.compile(r"<\s*(br|/p|/div|/li|/h[1-6]|/tr)\b[^>]*>", re.IGNORECASE)
_INVISIBLE = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class VacationChange:
    """What the owner sets. Dates are ISO 8601 wall-clock times in `time_zone` (a date alone
    starts at midnight; as the end it means the whole of that day), or with their own offset."""

    enabled: bool
    body: str = ""
    subject: str = ""
    body_format: str = "text"
    days: int = DEFAULT_DAYS
    time_zone: str = "UTC"
    starts: str | None = None
    ends: str | None = None


@dataclass(frozen=True)
class VacationView:
    settings: VacationSettings
    active: bool  # answering mail right now

    def local(self, moment: datetime | None) -> str | None:
        """A stored moment as wall-clock time in the owner's zone, `YYYY-MM-DDTHH:MM`."""
        if moment is None:
            return None
        return moment.astimezone(_zone(self.settings.time_zone)).strftime("%Y-%m-%dT%H:%M")


def is_active(settings: VacationSettings | None, now: datetime) -> bool:
    """On, and within its dates: from `starts_at` (inclusive) to `ends_at` (exclusive)."""
    if settings is None or not settings.enabled:
        return False
    if settings.starts_at is not None and now < settings.starts_at:
        return False
    return settings.ends_at is None or now < settings.ends_at


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"{name!r} is not a time zone; give one like Europe/Paris or UTC.", field="timeZone"
        ) from None


def parse_moment(text: str, zone: ZoneInfo, *, end: bool, field: str) -> datetime:
    """A date or date and time in the owner's zone (or with its own offset) as a UTC moment."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            # The last day is a whole day: the responder stops at the next midnight.
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(), zone)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not a date like 2027-07-01 or a time like 2027-07-01T09:00.",
            field=field,
        ) from None
    return moment.astimezone(UTC)


def _checked(
    mailbox_id: int, change: VacationChange, sanitizer: HtmlSanitizer, now: datetime
) -> VacationSettings:
    check_header_value("The subject", change.subject, MAX_SUBJECT)
    if change.body_format not in BODY_FORMATS:
        raise InvalidInput("The message format is text or html.", field="bodyFormat")
    if len(change.body) > MAX_BODY:
        raise InvalidInput(f"The message is longer than {MAX_BODY} characters.", field="body")
    if change.enabled and not change.body.strip():
        raise InvalidInput("Write the message the responder sends.", field="body")
    if not MIN_DAYS <= change.days <= MAX_DAYS:
        raise InvalidInput(
            f"Reply to the same sender once every {MIN_DAYS} to {MAX_DAYS} days.", field="days"
        )
    if len(change.time_zone) > MAX_TIME_ZONE:
        raise InvalidInput("That time zone name is too long.", field="timeZone")
    zone = _zone(change.time_zone)
    starts = (
        parse_moment(change.starts, zone, end=False, field="startsAt") if change.starts else None
    )
    ends = parse_moment(change.ends, zone, end=True, field="endsAt") if change.ends else None
    if starts is not None and ends is not None and ends <= starts:
        raise InvalidInput("The last day comes before the first.", field="endsAt")
    body = sanitizer.clean(change.body) if change.body_format == "html" else change.body
    return VacationSettings(
        mailbox_id=mailbox_id,
        enabled=change.enabled,
        subject=change.subject.strip(),
        body=body,
        body_format=change.body_format,
        days=change.days,
        time_zone=change.time_zone,
        starts_at=starts,
        ends_at=ends,
        updated_at=now,
    )


def _off(mailbox_id: int, now: datetime) -> VacationSettings:
    return VacationSettings(mailbox_id, False, "", "", "text", DEFAULT_DAYS, "UTC", None, None, now)


class VacationService:
    """The settings, read and changed by the dashboard (for a viewer who may see the mailbox)
    and the command line."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        mailboxes: MailboxService,
        sanitizer: HtmlSanitizer,
        on_change: Callable[[int], None] = lambda mailbox_id: None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._mailboxes = mailboxes
        self._sanitizer = sanitizer
        self._on_change = on_change  # told the mailbox id once a change is committed

    async def get_for(self, viewer: Viewer, address: str) -> VacationView:
        view = await self._mailboxes.get_for(viewer, address)
        return await self._view(view.mailbox)

    async def set_for(self, viewer: Viewer, address: str, change: VacationChange) -> VacationView:
        """A member may set their own mailboxes' responders, as they edit their signatures."""
        view = await self._mailboxes.get_for(viewer, address)
        return await self._put(view.mailbox, change)

    async def get(self, address: str) -> VacationView:
        return await self._view(await self._mailboxes.get(address))

    async def set(self, address: str, change: VacationChange) -> VacationView:
        return await self._put(await self._mailboxes.get(address), change)

    async def _view(self, mailbox: Mailbox) -> VacationView:
        assert mailbox.id is not None
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            found = await uow.vacations.get(mailbox.id)
        return VacationView(found or _off(mailbox.id, now), is_active(found, now))

    async def _put(self, mailbox: Mailbox, change: VacationChange) -> VacationView:
        assert mailbox.id is not None
        now = self._clock.now()
        settings = _checked(mailbox.id, change, self._sanitizer, now)
        async with self._uow() as uow:
            await uow.vacations.put(settings)
            await uow.commit()
        self._on_change(mailbox.id)
        return VacationView(settings, is_active(settings, now))


class VacationRule:
    """The delivery rule of the vacation settings: an `AutoReply` while the responder is on."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock
        self._settings = MailboxSettings(self._read)

    def forget(self, mailbox_id: int) -> None:
        self._settings.forget(mailbox_id)

    async def _read(self, mailbox_id: int) -> VacationSettings | None:
        async with self._uow(read_only=True) as uow:
            return await uow.vacations.get(mailbox_id)

    async def apply(self, message: InboundMessage, disposition: Disposition) -> Disposition:
        # Mail filed as spam is not answered: its sender is most likely forged.
        if SpecialFolder.JUNK in disposition.folders:
            return disposition
        mailbox_id = disposition.mailbox.id
        assert mailbox_id is not None
        settings = await self._settings.get(mailbox_id)
        if settings is None or not is_active(settings, self._clock.now()):
            return disposition
        reply = AutoReply(
            body=settings.body,
            subject=settings.subject or None,
            days=settings.days,
            html=settings.body_format == "html",
        )
        return replace(disposition, replies=(*disposition.replies, reply))


def refusal(message: InboundMessage, mailbox: Mailbox, reply: AutoReply) -> str | None:
    """Why the message must not be answered automatically, or None when it may be."""
    sender = message.mail_from.strip()
    if not sender or "@" not in sender:
        return "its return path is null (RFC 3834 §2)"
    parsed = message.message
    auto_submitted = _field(parsed, "auto-submitted")
    if auto_submitted is not None and _keyword(auto_submitted) != "no":
        return f"it is Auto-Submitted: {_keyword(auto_submitted)} (RFC 3834 §2)"
    if any(name.lower().startswith("list-") for name in parsed):
        return "it came through a mailing list (RFC 2369, RFC 2919)"
    precedence = _field(parsed, "precedence")
    if precedence is not None and _keyword(precedence) in _BULK_PRECEDENCE:
        return f"it is Precedence: {_keyword(precedence)} mail (RFC 3834 §3.1.8)"
    suppress = _field(parsed, "x-auto-response-suppress")
    if suppress is not None and {"all", "oof"} & set(_keyword(suppress).replace(",", " ").split()):
        return "its sender asked for no automatic replies"
    if message.dmarc == "fail":
        return "its sender failed DMARC: the reply would go to someone who did not write"
    if _is_machine(sender):
        return f"{sender} is an address of software, not of a person (RFC 5230 §4.6)"
    ours = _our_addresses(mailbox, reply)
    if _plain(sender) in ours:
        return "it came from the mailbox itself"
    named = {
        _plain(address)
        for name in _RECIPIENT_FIELDS
        for _, address in getaddresses([str(value) for value in parsed.get_all(name) or ()])
        if address
    }
    # RFC 5230 §4.5: only mail that names the user among its recipients is answered, so mail
    # that reached the mailbox as a Bcc of a list or a blind forward stays unanswered.
    if not named & ours:
        return "none of its recipient fields names the mailbox (RFC 5230 §4.5)"
    return None


def _field(message: EmailMessage, name: str) -> str | None:
    value = message.get(name)
    return None if value is None else str(value)


def _keyword(value: str) -> str:
    """A field's first word, lower-case, without parameters or comments (`auto-replied; x=y`)."""
    return re.sub(r"\([^)]*\)", " ", value).split(";", 1)[0].strip().lower()


def _plain(address: str) -> str:
    """An address without its subaddress tag, lower-case, to compare with ours."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.partition(SUBADDRESS_SEPARATOR)[0]}@{domain}"


def _is_machine(sender: str) -> bool:
    local = sender.rpartition("@")[0].lower()
    return (
        local in _MACHINE_LOCAL_PARTS
        or local.startswith(_MACHINE_PREFIXES)
        or local.endswith(_MACHINE_SUFFIXES)
    )


def _our_addresses(mailbox: Mailbox, reply: AutoReply) -> set[str]:
    found = {_plain(mailbox.address)}
    found.update(_plain(address) for address in reply.addresses if "@" in address)
    if reply.from_address and "@" in reply.from_address:
        found.add(_plain(reply.from_address))
    return found


def _handle(reply: AutoReply) -> str:
    """RFC 5230 §4.2: without a handle, replies with the same content share their memory, so
    a changed message is sent again to those who had the old one."""
    if reply.handle is not None:
        return f"handle:{reply.handle}"
    content = "\0".join(
        (reply.subject or "", reply.body, reply.from_address or "", str(reply.html))
    )
    return "content:" + hashlib.sha256(content.encode()).hexdigest()


def memory_key(reply: AutoReply, sender: str) -> str:
    """What the once-per-sender memory keeps: a hash, not the address."""
    return hashlib.sha256(f"{_handle(reply)}\0{sender.strip().lower()}".encode()).hexdigest()


def html_to_text(html: str) -> str:
    """The plain-text alternative of a sanitised HTML message."""
    text = _INVISIBLE.sub("", html)
    text = _LINE_BREAK_TAGS.sub("\n", text)
    text = unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def reply_subject(reply: AutoReply, original: str | None) -> str:
    if reply.subject:
        return reply.subject
    # RFC 3834 §3.1.5: "Auto:" and the original subject, flattened to one bounded line.
    flat = " ".join(
        "".join(ch for ch in original or "" if ch.isprintable() or ch.isspace()).split()
    )
    return (AUTO_SUBJECT_PREFIX + flat)[:MAX_SUBJECT].rstrip()


def thread_fields(message: EmailMessage) -> dict[str, str]:
    """In-Reply-To and References of the answer (RFC 5322 §3.6.4), from well-formed ids only."""
    found = _MESSAGE_ID.findall(_field(message, "message-id") or "")
    if not found:
        return {}
    message_id = found[0]
    earlier = _MESSAGE_ID.findall(_field(message, "references") or "")
    references = [*earlier[-(MAX_REFERENCES - 1) :], message_id]
    return {"In-Reply-To": message_id, "References": " ".join(references)}


class Responder:
    """Sends automatic replies (the `AutoResponder` of the delivery rules)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        mail: SystemMail,
        sanitizer: HtmlSanitizer,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._mail = mail
        self._sanitizer = sanitizer

    async def respond(self, message: InboundMessage, mailbox: Mailbox, reply: AutoReply) -> None:
        mailbox_id = mailbox.id
        assert mailbox_id is not None
        reason = refusal(message, mailbox, reply)
        if reason is not None:
            log.info(
                "no auto-reply from %s to message %s: %s",
                mailbox.address,
                message.transaction_id,
                reason,
            )
            return
        sender = message.mail_from.strip()
        key = memory_key(reply, sender)
        now = self._clock.now()
        # Most messages on a busy responder come from senders already answered: a read decides
        # that without a write transaction (the claim below settles any race).
        async with self._uow(read_only=True) as uow:
            until = await uow.vacations.silent_until(mailbox_id, key)
            suppressed = await uow.suppressions.find(mailbox.domain_id, [sender.lower()])
        if suppressed:
            log.info("no auto-reply from %s: %s is suppressed", mailbox.address, sender)
            return
        if until is not None and until > now:
            log.info(
                "no auto-reply from %s to message %s: answered lately",
                mailbox.address,
                message.transaction_id,
            )
            return
        raw, subject, message_id, from_address = self._build(message, mailbox, reply, sender)
        days = min(max(reply.days, MIN_DAYS), MAX_DAYS)

        async def claim(uow: UnitOfWork) -> bool:
            """The once-per-sender memory, in the transaction that queues the reply."""
            await uow.vacations.prune_replies(now)
            return await uow.vacations.claim_reply(mailbox_id, key, now, now + timedelta(days=days))

        queued = await self._mail.queue(
            raw,
            account_id=mailbox.account_id,
            domain_id=mailbox.domain_id,
            envelope_from="",  # RFC 3834 §3.3: a null return path, so nothing answers the answer
            token=new_token(),
            from_addr=from_address,
            subject=subject,
            message_id=message_id,
            recipients=[sender],
            source="auto-reply",
            condition=claim,
        )
        if not queued:
            log.info(
                "no auto-reply from %s to message %s: answered meanwhile",
                mailbox.address,
                message.transaction_id,
            )

    def _build(
        self, message: InboundMessage, mailbox: Mailbox, reply: AutoReply, sender: str
    ) -> tuple[bytes, str, str, str]:
        """The answer, from the mailbox (its display name) to the return path (RFC 3834 §4)."""
        from_address = mailbox.address
        # Only an address of the mailbox's own domain: the answer is signed for that domain,
        # and another would fail DMARC at the receiver.
        if reply.from_address and _plain(reply.from_address).endswith("@" + mailbox.domain_name):
            from_address = reply.from_address.strip()
        check_header_value("The reply's From address", from_address)
        check_header_value("The reply's recipient", sender)
        subject = reply_subject(reply, _field(message.message, "subject"))
        check_header_value("The reply's subject", subject, MAX_HEADER_VALUE)
        if reply.html:
            html: str | None = self._sanitizer.clean(reply.body)
            text = html_to_text(html or "")
        else:
            html, text = None, reply.body
        message_id = f"{secrets.token_hex(16)}@{mailbox.domain_name}"
        extra = {
            **thread_fields(message.message),
            "Auto-Submitted": "auto-replied",  # RFC 3834 §5
        }
        raw = compose.build_message(
            sender=compose.mailbox(mailbox.display_name, from_address),
            to=[sender],
            cc=[],
            reply_to=None,
            subject=subject,
            date=self._clock.now(),
            message_id=message_id,
            extra_headers=extra,
            text=text,
            html=html,
            signature="",
        )
        return raw, subject, message_id, from_address


def describe(view: VacationView) -> Sequence[tuple[str, str]]:
    """The settings as label and value lines, for the command line."""
    settings = view.settings
    state = "on" if settings.enabled else "off"
    if settings.enabled and not view.active:
        state = "on (outside its dates)"
    return [
        ("Vacation responder", state),
        ("First day", view.local(settings.starts_at) or "-"),
        ("Ends", view.local(settings.ends_at) or "-"),
        ("Time zone", settings.time_zone),
        ("Subject", settings.subject or "Auto: <the original subject>"),
        ("Reply once every", f"{settings.days} day(s)"),
        ("Message", settings.body),
    ]

"""What happens to an inbound message for each mailbox it reaches, decided before it is stored.

Each recipient mailbox starts with a `Disposition` that keeps the message in the folder the
sender's authentication (and the spam verdict) chose. The mailbox's delivery rules — its filters,
forwarding and auto-reply — then change it one after another: file it elsewhere, flag it, discard
the local copy, send it on to other addresses, answer it. `InboundMail` carries out the result:
the kept copies in one durable delivery, then the redirects and replies.

A rule that fails leaves the disposition as it found it, so mail is never lost to a broken rule
(issue: "a broken script never loses mail").
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from functools import cached_property
from typing import Generic, Protocol, TypeVar

from mailmark.core.model import Mailbox

log = logging.getLogger(__name__)

T = TypeVar("T")
# A mailbox's settings read by a delivery rule are used again for this long without asking the
# database, as the Sieve filter's scripts are: a change made on this node applies at once (the
# service that makes it calls `forget`), one made on another node within this time.
SETTINGS_RECHECK_SECONDS = 5.0
SETTINGS_KEPT = 10_000


@dataclass
class InboundMessage:
    """One inbound message as the delivery rules see it."""

    raw: bytes  # the message as received (without Authentication-Results claiming to be ours)
    trace_prefix: bytes  # the fields we add in front: Return-Path, Received, verdicts
    mail_from: str  # the envelope reverse-path; "" for the null one
    rcpt_tos: Sequence[str]  # every envelope recipient of the transaction, as given
    transaction_id: str
    dmarc: str = "none"  # the RFC 8601 DMARC result word

    @cached_property
    def message(self) -> EmailMessage:
        """The parsed message with our trace fields, parsed once for all rules that ask."""
        parsed = BytesParser(policy=default_policy).parsebytes(self.trace_prefix + self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(frozen=True)
class AutoReply:
    """An automatic answer to the message's sender (RFC 3834; Sieve "vacation", RFC 5230)."""

    body: str
    subject: str | None = None  # None: "Auto: " and the original subject (RFC 3834 §3.1.5)
    days: int = 7  # answer each sender at most once in this many days (RFC 5230 §4.1)
    handle: str | None = None  # replies with the same handle share the once-per-sender limit
    from_address: str | None = None  # None: the mailbox's own address
    addresses: tuple[str, ...] = ()  # more addresses of this mailbox (RFC 5230 §4.5)
    html: bool = False  # the body is HTML


@dataclass(frozen=True)
class Disposition:
    """What one mailbox does with the message. Empty `folders` means no local copy is kept."""

    mailbox: Mailbox
    folders: tuple[str, ...]
    flags: tuple[str, ...] = ()
    redirects: tuple[str, ...] = ()  # addresses elsewhere to send the message on to
    replies: tuple[AutoReply, ...] = ()
    problems: tuple[str, ...] = field(default=(), compare=False)  # shown to the mailbox's owner

    def filed_in(self, *folders: str) -> Disposition:
        return replace(self, folders=tuple(dict.fromkeys(folders)))


class MailboxSettings(Generic[T]):
    """Settings of mailboxes a delivery rule read lately, most recently read last. Delivering
    to a mailbox read its vacation and forwarding settings from the database for every
    recipient of every message: a fifth of the MX's CPU under load."""

    def __init__(self, read: Callable[[int], Awaitable[T]]) -> None:
        self._read = read
        self._kept: OrderedDict[int, tuple[float, T]] = OrderedDict()

    async def get(self, mailbox_id: int) -> T:
        now = time.monotonic()
        kept = self._kept.get(mailbox_id)
        if kept is not None and now - kept[0] < SETTINGS_RECHECK_SECONDS:
            return kept[1]
        value = await self._read(mailbox_id)
        self._kept[mailbox_id] = (now, value)
        self._kept.move_to_end(mailbox_id)
        while len(self._kept) > SETTINGS_KEPT:
            self._kept.popitem(last=False)
        return value

    def forget(self, mailbox_id: int) -> None:
        """The mailbox's settings changed on this node."""
        self._kept.pop(mailbox_id, None)


class DeliveryRule(Protocol):
    """A mailbox's rule, applied at delivery (filters, forwarding, vacation)."""

    async def apply(self, message: InboundMessage, disposition: Disposition) -> Disposition: ...


class Redirector(Protocol):
    async def redirect(
        self, message: InboundMessage, mailbox: Mailbox, recipients: Sequence[str]
    ) -> None:
        """Queue the message for `recipients` on behalf of `mailbox`; durable when it returns."""
        ...


class AutoResponder(Protocol):
    async def respond(self, message: InboundMessage, mailbox: Mailbox, reply: AutoReply) -> None:
        """Send `reply` to the message's sender if RFC 3834 allows it; never raises for that."""
        ...


async def decide(
    rules: Sequence[DeliveryRule], message: InboundMessage, disposition: Disposition
) -> Disposition:
    """Apply every rule in order; one that raises is skipped and its effect dropped."""
    for rule in rules:
        try:
            disposition = await rule.apply(message, disposition)
        except Exception as error:
            log.exception(
                "delivery rule %s failed for %s in transaction %s",
                type(rule).__name__,
                disposition.mailbox.address,
                message.transaction_id,
            )
            disposition = replace(
                disposition, problems=(*disposition.problems, f"{type(rule).__name__}: {error}")
            )
    return disposition

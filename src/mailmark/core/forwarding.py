"""Forwarding: a mailbox sends its inbound mail on to external addresses, keeping a copy here or
not, and the `Redirector` that queues mail sent on by any delivery rule (forwarding, a Sieve
"redirect").

Forwarded mail leaves with its envelope sender rewritten by SRS (core/srs.py) into an address of
the forwarding mailbox's domain, whose SPF record names this server, so the destination's SPF
check passes; the worker signs it with that domain's DKIM key as any mail of the domain. A bounce
to the SRS address comes back to our MX and is sent on to the original sender with a null
reverse-path (`return_to_sender`).

Loops (RFC 5321 §6.3): every forwarded copy carries `Delivered-To: <mailbox>` (as Postfix writes
it); a message that already names the mailbox so, or that has passed many hops, is not forwarded
again: it stays here and the owner is told why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from mailmark.core.access import Viewer, require_mailbox_visible
from mailmark.core.addresses import normalize_address, normalize_domain
from mailmark.core.dispositions import Disposition, InboundMessage, MailboxSettings
from mailmark.core.errors import InvalidInput, MailmarkError, NotFound, RelayDenied
from mailmark.core.mailboxes import split_address
from mailmark.core.message_meta import header_fields, header_values, read_metadata
from mailmark.core.model import Mailbox, MailboxForwarding
from mailmark.core.plans import effective_plan, ensure_email_quota, usage_month
from mailmark.core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from mailmark.core.sending import new_token
from mailmark.core.srs import Srs
from mailmark.core.states import SpecialFolder
from mailmark.core.system_mail import SystemMail

log = logging.getLogger(__name__)

MAX_FORWARDING_ADDRESSES = 5
# Fewer than the 100 Received fields after which the MX refuses a message outright
# (message_meta.MAX_RECEIVED_HEADERS): past this many hops the message is kept, not sent on.
MAX_FORWARD_HOPS = 30
LOOP_MARKER = b"delivered-to"


class ForwardingService:
    """The forwarding settings of mailboxes: the dashboard's (for a viewer) and the CLI's."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        on_change: Callable[[int], None] = lambda mailbox_id: None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._on_change = on_change  # told the mailbox id once a change is committed

    async def get(self, address: str) -> MailboxForwarding:
        async with self._uow(read_only=True) as uow:
            mailbox = await _mailbox(uow, address)
            assert mailbox.id is not None
            return await uow.forwarding.get(mailbox.id) or MailboxForwarding(mailbox.id, ())

    async def set(
        self, address: str, addresses: Sequence[str], *, keep_copy: bool = True
    ) -> MailboxForwarding:
        """Forward the mailbox's mail to `addresses` (none: stop forwarding)."""
        async with self._uow() as uow:
            mailbox = await _mailbox(uow, address)
            return await self._store(uow, mailbox, addresses, keep_copy)

    async def get_for(self, viewer: Viewer, address: str) -> MailboxForwarding:
        async with self._uow(read_only=True) as uow:
            mailbox = await _visible(uow, viewer, address)
            assert mailbox.id is not None
            return await uow.forwarding.get(mailbox.id) or MailboxForwarding(mailbox.id, ())

    async def set_for(
        self, viewer: Viewer, address: str, addresses: Sequence[str], *, keep_copy: bool = True
    ) -> MailboxForwarding:
        """As `set`, for a viewer who can see the mailbox (a member: their own)."""
        async with self._uow() as uow:
            mailbox = await _visible(uow, viewer, address)
            return await self._store(uow, mailbox, addresses, keep_copy)

    async def _store(
        self, uow: UnitOfWork, mailbox: Mailbox, addresses: Sequence[str], keep_copy: bool
    ) -> MailboxForwarding:
        assert mailbox.id is not None
        targets = self._checked(mailbox, addresses)
        if targets:
            account = await uow.accounts.get(mailbox.account_id)
            assert account is not None
            effective_plan(account, self._clock.now())  # AccountPaused, with the product's text
        forwarding = MailboxForwarding(mailbox.id, targets, keep_copy)
        if targets:
            await uow.forwarding.put(forwarding, self._clock.now())
        else:
            await uow.forwarding.remove(mailbox.id)
            forwarding = MailboxForwarding(mailbox.id, (), True)
        await uow.commit()
        self._on_change(mailbox.id)
        return forwarding

    @staticmethod
    def _checked(mailbox: Mailbox, addresses: Sequence[str]) -> tuple[str, ...]:
        targets: dict[str, str] = {}
        for index, given in enumerate(addresses):
            if not given.strip():
                continue
            target = normalize_address(given, "The forwarding address")
            if target.lower() == mailbox.address.lower():
                raise InvalidInput(
                    f"{mailbox.address} cannot forward to itself.", field=f"addresses[{index}]"
                )
            targets.setdefault(target.lower(), target)
        if len(targets) > MAX_FORWARDING_ADDRESSES:
            raise InvalidInput(
                f"A mailbox forwards to at most {MAX_FORWARDING_ADDRESSES} addresses.",
                field="addresses",
            )
        return tuple(targets.values())


class ForwardingRule:
    """The forwarding delivery rule, last in the list: it adds the mailbox's forwarding
    addresses, then checks every redirect the disposition holds (a Sieve "redirect" too)
    against loops and the account's standing. A refused redirect keeps the message here."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock
        self._settings = MailboxSettings(self._read)

    def forget(self, mailbox_id: int) -> None:
        self._settings.forget(mailbox_id)

    async def _read(self, mailbox_id: int) -> MailboxForwarding | None:
        async with self._uow(read_only=True) as uow:
            return await uow.forwarding.get(mailbox_id)

    async def apply(self, message: InboundMessage, disposition: Disposition) -> Disposition:
        mailbox = disposition.mailbox
        assert mailbox.id is not None
        forwarding = await self._settings.get(mailbox.id)
        # Mail filed as spam is not forwarded: it would spread the spam, and the destination's
        # opinion of this server with it. It stays in Junk.
        if forwarding is not None and SpecialFolder.JUNK not in disposition.folders:
            disposition = replace(
                disposition,
                redirects=tuple(dict.fromkeys((*disposition.redirects, *forwarding.addresses))),
                folders=disposition.folders if forwarding.keep_copy else (),
            )
        if not disposition.redirects:
            return disposition
        own = mailbox.address.lower()
        redirects = tuple(r for r in disposition.redirects if r.lower() != own)
        if not redirects:
            # Sent on to itself only: that is delivery here.
            return replace(
                disposition, redirects=(), folders=disposition.folders or (SpecialFolder.INBOX,)
            )
        refusal = loop_refusal(message, mailbox) or await self._standing_refusal(
            mailbox, len(redirects)
        )
        if refusal is None:
            return replace(disposition, redirects=redirects)
        log.warning(
            "not forwarding message %s of %s: %s", message.transaction_id, mailbox.address, refusal
        )
        return replace(
            disposition,
            redirects=(),
            folders=disposition.folders or (SpecialFolder.INBOX,),
            problems=(*disposition.problems, f"Not forwarded: {refusal}"),
        )

    async def _standing_refusal(self, mailbox: Mailbox, count: int) -> str | None:
        """Forwarded mail is mail this server sends for the account: a paused account forwards
        nothing, and each forwarded copy counts against the monthly email quota."""
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            account = await uow.accounts.get(mailbox.account_id)
            if account is None:
                return "the account no longer exists"
            try:
                plan = effective_plan(account, now)
                if plan.emails_per_month is not None:
                    sent = await uow.usage.sent_in(account.id or 0, usage_month(now))
                    ensure_email_quota(plan, sent, count)
            except MailmarkError as error:
                return error.message
        return None


def loop_refusal(message: InboundMessage, mailbox: Mailbox) -> str | None:
    """Why sending this message on for `mailbox` would loop (RFC 5321 §6.3), or None."""
    head = message.trace_prefix + message.raw
    own = mailbox.address.lower()
    if any(value.strip("<> ").lower() == own for value in header_values(head, LOOP_MARKER)):
        return f"it was forwarded by {mailbox.address} before and came back (a forwarding loop)"
    hops = sum(1 for field in header_fields(head) if field[:9].lower() == b"received:")
    if hops > MAX_FORWARD_HOPS:
        return f"it has passed {hops} mail servers already (a forwarding loop)"
    return None


class Forwarder:
    """Queues mail sent on from a mailbox (the `Redirector` of delivery rules), and the bounces
    that come back to SRS addresses."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, mail: SystemMail, srs: Srs) -> None:
        self._uow = uow
        self._clock = clock
        self._mail = mail
        self.srs = srs

    async def redirect(
        self, message: InboundMessage, mailbox: Mailbox, recipients: Sequence[str]
    ) -> None:
        """Queue the message as received for `recipients`, from the SRS-rewritten sender, with
        our Received field and `Delivered-To: <mailbox>` added; durable when this returns."""
        own = mailbox.address.lower()
        targets = tuple(dict.fromkeys(r for r in recipients if r.lower() != own))
        if not targets:
            return
        now = self._clock.now()
        sender = self.srs.forward(message.mail_from, mailbox.domain_name, now)
        raw = (
            f"Delivered-To: {mailbox.address}\r\n".encode()
            + _received_fields(message.trace_prefix)
            + message.raw
        )
        await self._queue_message(
            raw,
            targets,
            account_id=mailbox.account_id,
            domain_id=mailbox.domain_id,
            mailbox_id=mailbox.id,
            envelope_from=sender,
            from_addr=mailbox.address,
        )

    async def srs_recipient(self, address: str) -> str | None:
        """The address a bounce to `address` goes back to, when it is an SRS address of a
        domain hosted here; None when it is not one. SrsError (550 5.1.1) for a forged,
        damaged or expired one."""
        if not Srs.is_srs(address):
            return None
        try:
            domain_name = normalize_domain(address.rpartition("@")[2])
        except InvalidInput:
            return None
        async with self._uow(read_only=True) as uow:
            if await uow.domains.get_by_name(domain_name) is None:
                return None
        return self.srs.reverse(address, self._clock.now()).original

    async def return_to_sender(
        self, raw: bytes, addresses: Sequence[str], trace_prefix: bytes
    ) -> None:
        """Send what came back to SRS addresses on to the senders they decode to, with the null
        reverse-path (RFC 5321 §4.5.5: nothing may answer it, so nothing can loop); durable
        when this returns."""
        by_domain: dict[str, list[str]] = {}
        for address in addresses:
            srs_domain = address.rpartition("@")[2].lower()
            original = await self.srs_recipient(address)
            if original is not None:
                by_domain.setdefault(srs_domain, []).append(original)
        for srs_domain, originals in by_domain.items():
            async with self._uow(read_only=True) as uow:
                domain = await uow.domains.get_by_name(srs_domain)
            if domain is None or domain.id is None:
                raise RelayDenied(f"{srs_domain} is no longer hosted here")
            await self._queue_message(
                _received_fields(trace_prefix) + raw,
                tuple(dict.fromkeys(originals)),
                account_id=domain.account_id,
                domain_id=domain.id,
                mailbox_id=None,
                envelope_from="",
                from_addr=f"postmaster@{domain.name}",
            )

    async def _queue_message(
        self,
        raw: bytes,
        recipients: Sequence[str],
        *,
        account_id: int,
        domain_id: int,
        mailbox_id: int | None,
        envelope_from: str,
        from_addr: str,
    ) -> None:
        meta = read_metadata(raw)
        await self._mail.queue(
            raw,
            account_id=account_id,
            domain_id=domain_id,
            mailbox_id=mailbox_id,
            envelope_from=envelope_from,
            token=new_token(),
            from_addr=from_addr,
            subject=meta.subject,
            message_id=meta.message_id.strip("<>") if meta.message_id else None,
            recipients=recipients,
            source="forward",
        )


def _received_fields(trace_prefix: bytes) -> bytes:
    """The Received fields of our trace prefix: not Return-Path (added only at final delivery,
    RFC 5321 §4.4) nor our Authentication-Results (the destination judges for itself)."""
    return b"".join(
        field
        for field in header_fields(trace_prefix + b"\r\n")
        if field[:9].lower() == b"received:"
    )


async def _mailbox(uow: UnitOfWork, address: str) -> Mailbox:
    local_part, domain_name = split_address(address)
    found = await uow.mailboxes.find(domain_name, local_part)
    if found is None:
        raise NotFound(f"No mailbox {address} here.")
    return found


async def _visible(uow: UnitOfWork, viewer: Viewer, address: str) -> Mailbox:
    local_part, domain_name = split_address(address)
    found = await uow.mailboxes.find(domain_name, local_part)
    mine = [] if viewer.can_manage else await uow.mailbox_assignments.mailbox_ids(viewer.user_id)
    return require_mailbox_visible(viewer, found, mine)

"""Mailboxes: creation with default folders, deletion, and recipient resolution."""

from __future__ import annotations

import asyncio
import builtins
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from mailmark.core.access import Viewer, require_mailbox_visible, require_manager
from mailmark.core.accounts import check_password
from mailmark.core.addresses import (
    Recipient,
    normalize_domain,
    normalize_local_part,
    parse_recipient,
    relay_denied,
)
from mailmark.core.errors import (
    Conflict,
    Forbidden,
    HeaderInjection,
    InvalidInput,
    NotFound,
    UnknownMailbox,
)
from mailmark.core.model import Folder, Mailbox
from mailmark.core.passwords import Passwords, mailbox_principal
from mailmark.core.plans import effective_plan, ensure_mailbox_quota
from mailmark.core.ports import (
    BlobStore,
    Clock,
    HtmlSanitizer,
    UnitOfWork,
    UnitOfWorkFactory,
)
from mailmark.core.states import SpecialFolder

# (name, RFC 6154 special-use attribute). Outbox holds queued and scheduled mail for the web UI.
DEFAULT_FOLDERS: Sequence[tuple[str, str | None]] = (
    (SpecialFolder.INBOX, None),
    (SpecialFolder.SENT, "\\Sent"),
    (SpecialFolder.DRAFTS, "\\Drafts"),
    (SpecialFolder.TRASH, "\\Trash"),
    (SpecialFolder.JUNK, "\\Junk"),
    (SpecialFolder.ARCHIVE, "\\Archive"),
    (SpecialFolder.OUTBOX, None),
)
RECIPIENT_CACHE_SECONDS = 5.0
RECIPIENT_CACHE_SIZE = 10_000
# RFC 5321 §4.5.1 and RFC 2142: these must reach a person even when no such mailbox was created.
ROLE_ADDRESSES = frozenset({"postmaster", "abuse"})
MAX_DISPLAY_NAME = 200
MAX_SIGNATURE = 10_000
SIGNATURE_FORMATS = ("text", "html")
MAX_PASSWORD = 256
# 18 random bytes: 24 URL-safe characters, 144 bits.
GENERATED_PASSWORD_BYTES = 18


@dataclass(frozen=True)
class MailboxView:
    """A mailbox as the dashboard shows it: with the team members it is assigned to."""

    mailbox: Mailbox
    assigned_user_ids: tuple[int, ...]


def split_address(address: str) -> tuple[str, str]:
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        raise InvalidInput(f"{address!r} is not a full address like support@example.com.")
    return normalize_local_part(local), normalize_domain(domain)


def _check_header_safe(label: str, value: str, limit: int) -> None:
    if any(ch in value for ch in "\r\n\0"):
        raise HeaderInjection(f"{label} must not contain line breaks or NUL characters.")
    if len(value) > limit:
        raise InvalidInput(f"{label} is longer than {limit} characters.")


def _display_name(display_name: str) -> str:
    _check_header_safe("The display name", display_name, MAX_DISPLAY_NAME)
    return display_name.strip()


def _check_mailbox_password(password: str) -> None:
    check_password(password)
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"Passwords are at most {MAX_PASSWORD} characters long.")


class MailboxService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        passwords: Passwords,
        blobs: BlobStore,
        sanitizer: HtmlSanitizer,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._passwords = passwords
        self._blobs = blobs
        self._sanitizer = sanitizer
        # Every RCPT asks this; most ask the same few addresses. Found mailboxes are kept a few
        # seconds: changes made on this node clear them at once, other nodes' show within that
        # time (a deleted mailbox then fails delivery with a temporary 451, never a loss).
        self._recipients: dict[
            tuple[str, str, bool],
            tuple[float, asyncio.Future[tuple[tuple[Mailbox, ...], bool]]],
        ] = {}
        # Mailboxes by address for `get_recent`; cleared with `_recipients` on changes here.
        self._found: dict[tuple[str, str], tuple[float, Mailbox]] = {}

    async def create(
        self,
        address: str,
        *,
        display_name: str = "",
        signature: str = "",
        signature_format: str = "text",
        password: str | None = None,
        account_id: int | None = None,
    ) -> Mailbox:
        """A new mailbox with its default folders. With `account_id`, a domain of another
        account is answered as not existing."""
        local_part, domain_name = split_address(address)
        _check_header_safe("The display name", display_name, MAX_DISPLAY_NAME)
        signature = self._signature(signature, signature_format)
        password_hash = None
        if password is not None:
            _check_mailbox_password(password)
            password_hash = await self._passwords.hash(password)
        now = self._clock.now()
        async with self._uow() as uow:
            domain = await uow.domains.get_by_name(domain_name)
            if (
                domain is None
                or domain.id is None
                or (account_id is not None and domain.account_id != account_id)
            ):
                raise NotFound(f"No domain {domain_name} here. Add it first.")
            target = await uow.aliases.alias_domain_target(domain.id)
            if target is not None:
                raise InvalidInput(
                    f"{domain_name} is an alias of {target.name}: every address @{domain_name} "
                    f"delivers as the same one @{target.name}. Create the mailbox on {target.name}."
                )
            if domain.verified_at is None:
                raise Forbidden(
                    f"Domain {domain_name} is not verified yet: publish its DNS records and verify "
                    "it before creating mailboxes."
                )
            if await uow.mailboxes.find(domain_name, local_part) is not None:
                raise Conflict(f"Mailbox {local_part}@{domain_name} already exists.")
            if await uow.aliases.find(domain.id, local_part) is not None:
                raise Conflict(
                    f"{local_part}@{domain_name} is an alias: remove the alias before creating a "
                    "mailbox with its address."
                )
            account = await uow.accounts.get(domain.account_id)
            assert account is not None
            plan = effective_plan(account, now)
            await uow.accounts.lock(domain.account_id)
            ensure_mailbox_quota(plan, await uow.mailboxes.count_for_account(domain.account_id))
            mailbox = await uow.mailboxes.add(
                Mailbox(
                    domain.id,
                    domain_name,
                    domain.account_id,
                    local_part,
                    now,
                    display_name=display_name.strip(),
                    signature=signature,
                    password_hash=password_hash,
                    signature_format=signature_format,
                )
            )
            assert mailbox.id is not None
            uid_validity = int(now.timestamp())
            await uow.folders.add_many(
                [
                    Folder(mailbox.id, name, special, uid_validity)
                    for name, special in DEFAULT_FOLDERS
                ]
            )
            await uow.commit()
        self._recipients.clear()
        self._found.clear()
        return mailbox

    async def list(self, domain: str) -> list[Mailbox]:
        domain_name = normalize_domain(domain)
        async with self._uow(read_only=True) as uow:
            found = await uow.domains.get_by_name(domain_name)
            if found is None or found.id is None:
                raise NotFound(f"No domain {domain_name} here.")
            return await uow.mailboxes.list_for_domain(found.id)

    async def get(self, address: str) -> Mailbox:
        local_part, domain_name = split_address(address)
        async with self._uow(read_only=True) as uow:
            mailbox = await uow.mailboxes.find(domain_name, local_part)
        if mailbox is None:
            raise NotFound(f"No mailbox {local_part}@{domain_name} here.")
        return mailbox

    async def get_recent(self, address: str) -> Mailbox:
        """`get`, answered from a few seconds' cache: for callers that re-check the mailbox in
        their own transaction anyway (sending does), so a stale answer costs nothing."""
        local_part, domain_name = split_address(address)
        key = (domain_name, local_part)
        now = self._clock.now().timestamp()
        cached = self._found.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        mailbox = await self.get(address)
        if len(self._found) >= RECIPIENT_CACHE_SIZE:
            self._found.clear()
        self._found[key] = (now + RECIPIENT_CACHE_SECONDS, mailbox)
        return mailbox

    async def delete(self, address: str) -> None:
        """Delete a mailbox, its placements, and the messages and blobs nothing else uses."""
        local_part, domain_name = split_address(address)
        async with self._uow() as uow:
            mailbox = await uow.mailboxes.find(domain_name, local_part)
            if mailbox is None or mailbox.id is None:
                raise NotFound(f"No mailbox {local_part}@{domain_name} here.")
            orphaned_blobs = await uow.messages.delete_mailbox_contents(mailbox.id)
            # Its alias targets and catch-all go by ON DELETE CASCADE; an alias left with no
            # mailbox would accept mail it cannot deliver, so it goes too.
            await uow.mailboxes.delete(mailbox.id)
            await uow.aliases.delete_empty_for_account(mailbox.account_id)
            await uow.commit()
        self._recipients.clear()
        self._found.clear()
        self._passwords.forget(mailbox_principal(mailbox.id))
        # Only after the commit: a failed transaction must never leave rows without their blob.
        # Each removal re-checks under the blob's lock, because a delivery of identical content
        # may have reused the blob since (InboundDelivery takes the same lock).
        for key in orphaned_blobs:
            async with self._uow() as uow:
                await uow.messages.lock_blob(key)
                if not await uow.messages.blob_referenced(key):
                    await self._blobs.delete(key)
                await uow.commit()

    def _signature(self, signature: str, signature_format: str) -> str:
        if signature_format not in SIGNATURE_FORMATS:
            raise InvalidInput("The signature format is html or text.", field="signatureFormat")
        if len(signature) > MAX_SIGNATURE:
            raise InvalidInput(
                f"The signature is longer than {MAX_SIGNATURE} characters.", field="signature"
            )
        return self._sanitizer.clean(signature) if signature_format == "html" else signature

    # --- the dashboard: every call acts for a viewer of one account -----------------------------

    async def list_for(
        self, viewer: Viewer, domain: str | None = None
    ) -> builtins.list[MailboxView]:
        """The account's mailboxes (of one domain when given); a member's: those assigned."""
        async with self._uow(read_only=True) as uow:
            domain_id = None
            if domain is not None:
                found = await uow.domains.get_by_name(normalize_domain(domain))
                if found is None or found.account_id != viewer.account_id:
                    raise NotFound(f"No domain {normalize_domain(domain)} here.")
                domain_id = found.id
            mailboxes = await uow.mailboxes.list_for_account(
                viewer.account_id,
                domain_id=domain_id,
                user_id=None if viewer.can_manage else viewer.user_id,
            )
            assigned = await uow.mailboxes.assignments_for_account(
                viewer.account_id, domain_id=domain_id
            )
        return [MailboxView(m, tuple(assigned.get(m.id or 0, ()))) for m in mailboxes]

    async def get_for(self, viewer: Viewer, address: str) -> MailboxView:
        async with self._uow(read_only=True) as uow:
            return await self._visible(uow, viewer, address)

    async def usable_by(self, viewer: Viewer, mailbox_id: int) -> Mailbox:
        """The mailbox with this id when the viewer may read and send from it (the webmail's
        check); NotFound otherwise, as for one that does not exist."""
        async with self._uow(read_only=True) as uow:
            found = await uow.mailboxes.get(mailbox_id)
            mine = (
                []
                if viewer.can_manage
                else await uow.mailbox_assignments.mailbox_ids(viewer.user_id)
            )
        return require_mailbox_visible(viewer, found, mine)

    async def create_for(
        self,
        viewer: Viewer,
        domain: str,
        local_part: str,
        *,
        display_name: str = "",
        signature: str = "",
        signature_format: str = "text",
        password: str | None = None,
    ) -> MailboxView:
        require_manager(viewer, "create a mailbox")
        if "@" in local_part:
            raise InvalidInput(
                "Give only the part before the @, like hello; the domain is added.",
                field="localPart",
            )
        mailbox = await self.create(
            f"{local_part}@{normalize_domain(domain)}",
            display_name=display_name,
            signature=signature,
            signature_format=signature_format,
            password=password,
            account_id=viewer.account_id,
        )
        return MailboxView(mailbox, ())

    async def update_for(
        self,
        viewer: Viewer,
        address: str,
        *,
        display_name: str | None = None,
        signature: str | None = None,
        signature_format: str | None = None,
        track_opens: bool | None = None,
        save_sent_copy: bool | None = None,
    ) -> MailboxView:
        """Change the display name, the signature, open tracking, or whether SMTP submission
        files a Sent copy; a member only of their own mailboxes."""
        changes: dict[str, str | bool | None] = {}
        if track_opens is not None:
            changes["track_opens"] = track_opens
        if save_sent_copy is not None:
            changes["save_sent_copy"] = save_sent_copy
        if display_name is not None:
            changes["display_name"] = _display_name(display_name)
        async with self._uow() as uow:
            view = await self._visible(uow, viewer, address)
            await self._apply(uow, view.mailbox, changes, signature, signature_format)
        self.forget()
        return await self.get_for(viewer, address)

    async def update(
        self,
        address: str,
        *,
        display_name: str | None = None,
        signature: str | None = None,
        signature_format: str | None = None,
        password: str | None = None,
        domain_id: int | None = None,
    ) -> Mailbox:
        """Change the display name, the signature or the IMAP/SMTP password of a mailbox by its
        address (the operator; an API key, limited to its domain with `domain_id`)."""
        changes: dict[str, str | bool | None] = {}
        if display_name is not None:
            changes["display_name"] = _display_name(display_name)
        if password is not None:
            _check_mailbox_password(password)
            changes["password_hash"] = await self._passwords.hash(password)
        local_part, domain_name = split_address(address)
        async with self._uow() as uow:
            mailbox = await uow.mailboxes.find(domain_name, local_part)
            if mailbox is None or (domain_id is not None and mailbox.domain_id != domain_id):
                raise NotFound(f"No mailbox {local_part}@{domain_name} here.")
            await self._apply(uow, mailbox, changes, signature, signature_format)
        self.forget()
        if password is not None:
            assert mailbox.id is not None
            self._passwords.forget(mailbox_principal(mailbox.id))
        return await self.get(mailbox.address)

    async def _apply(
        self,
        uow: UnitOfWork,
        mailbox: Mailbox,
        changes: dict[str, str | bool | None],
        signature: str | None,
        signature_format: str | None,
    ) -> None:
        """Save the changes, with the signature checked (and HTML sanitised) in its format, and
        commit; nothing to save commits nothing."""
        if signature is not None or signature_format is not None:
            new_format = signature_format or mailbox.signature_format
            changes["signature"] = self._signature(
                mailbox.signature if signature is None else signature, new_format
            )
            changes["signature_format"] = new_format
        if changes:
            assert mailbox.id is not None
            await uow.mailboxes.update(mailbox.id, **changes)
            await uow.commit()

    async def set_password(self, viewer: Viewer, address: str, password: str) -> None:
        """Set the password IMAP and SMTP submission log in with (a member: their own)."""
        _check_mailbox_password(password)
        password_hash = await self._passwords.hash(password)
        async with self._uow() as uow:
            view = await self._visible(uow, viewer, address)
            assert view.mailbox.id is not None
            await uow.mailboxes.update(view.mailbox.id, password_hash=password_hash)
            await uow.commit()
        self.forget()
        self._passwords.forget(mailbox_principal(view.mailbox.id))

    async def generate_password(self, viewer: Viewer, address: str) -> str:
        """Set a new random password and return it: it is not stored and cannot be shown again."""
        password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        await self.set_password(viewer, address, password)
        return password

    async def delete_for(self, viewer: Viewer, address: str, *, confirm: str) -> None:
        """Delete the mailbox and its mail; `confirm` must repeat its address."""
        require_manager(viewer, "delete a mailbox")
        async with self._uow(read_only=True) as uow:
            view = await self._visible(uow, viewer, address)
        if confirm.strip().lower() != view.mailbox.address:
            raise InvalidInput(
                f"Type the mailbox's address, {view.mailbox.address}, to confirm its deletion.",
                field="confirm",
            )
        await self.delete(view.mailbox.address)

    async def _visible(self, uow: UnitOfWork, viewer: Viewer, address: str) -> MailboxView:
        local_part, domain_name = split_address(address)
        found = await uow.mailboxes.find(domain_name, local_part)
        mine = (
            [] if viewer.can_manage else await uow.mailbox_assignments.mailbox_ids(viewer.user_id)
        )
        mailbox = require_mailbox_visible(viewer, found, mine)
        assert mailbox.id is not None
        assigned = await uow.mailbox_assignments.for_mailboxes([mailbox.id])
        return MailboxView(mailbox, tuple(assigned.get(mailbox.id, ())))

    def forget(self) -> None:
        """Drop cached mailboxes and recipients: a changed password, name or address (an alias, a
        catch-all) must apply at once on this node."""
        self._recipients.clear()
        self._found.clear()

    async def resolve_recipients(
        self, address: str, *, catch_all: bool = True
    ) -> tuple[Mailbox, ...]:
        """The mailboxes an envelope recipient delivers to: one, or an alias's several.

        In order: the mailbox of that address, an alias, a role address (postmaster, abuse),
        then the domain's catch-all unless `catch_all` is False; an alias domain's addresses
        resolve as the same local parts of the domain it aliases. Raises RelayDenied for anything
        that is not a plain address in a domain hosted here, and UnknownMailbox for a hosted
        domain without such an address."""
        if address.lower() == "postmaster":
            # RFC 5321 §4.5.1: the domain-less <Postmaster> MUST be accepted; it reaches the
            # server's first mailbox.
            async with self._uow(read_only=True) as uow:
                first = await uow.mailboxes.first()
            if first is None:
                raise UnknownMailbox("<Postmaster>: no mailbox exists on this server yet")
            return (first,)
        recipient = parse_recipient(address)
        key = (recipient.domain, recipient.local_part, catch_all)
        now = self._clock.now().timestamp()
        cached = self._recipients.get(key)
        if cached is None or cached[0] <= now:
            if len(self._recipients) >= RECIPIENT_CACHE_SIZE:
                self._recipients.clear()
            # Sessions asking for the same address at once share one lookup.
            lookup = asyncio.ensure_future(self._look_up(recipient, catch_all))
            cached = self._recipients[key] = (now + RECIPIENT_CACHE_SECONDS, lookup)
        try:
            mailboxes, hosted = await asyncio.shield(cached[1])
        except BaseException:
            if self._recipients.get(key) is cached and cached[1].done():
                del self._recipients[key]  # a failed lookup is not an answer worth keeping
            raise
        if mailboxes:
            return mailboxes
        # Refusals are permanent (550/554): never answer one from the cache, which may predate a
        # mailbox or domain just created by another process (the CLI, another node).
        if self._recipients.get(key) is cached:
            del self._recipients[key]
        if not hosted:
            raise relay_denied(address)
        raise UnknownMailbox(f"<{address}>: Recipient address rejected: no such mailbox here")

    async def _look_up(
        self, recipient: Recipient, catch_all: bool
    ) -> tuple[tuple[Mailbox, ...], bool]:
        """(the mailboxes, whether the domain is hosted here)."""
        async with self._uow(read_only=True) as uow:
            mailbox = await uow.mailboxes.find(recipient.domain, recipient.local_part)
            if mailbox is not None:
                return (mailbox,), True
            domain = await uow.domains.get_by_name(recipient.domain)
            if domain is None or domain.id is None:
                return (), False
            domain_id, domain_name = domain.id, domain.name
            aliased = await uow.aliases.alias_domain_target(domain_id)
            if aliased is not None and aliased.id is not None:
                domain_id, domain_name = aliased.id, aliased.name
                mailbox = await uow.mailboxes.find(domain_name, recipient.local_part)
                if mailbox is not None:
                    return (mailbox,), True
            alias = await uow.aliases.find(domain_id, recipient.local_part)
            if alias is not None and alias.targets:
                return alias.targets, True
            if recipient.local_part in ROLE_ADDRESSES:
                mailboxes = await uow.mailboxes.list_for_domain(domain_id)
                if mailboxes:
                    return (mailboxes[0],), True
            if catch_all:
                found = await uow.aliases.catch_all(domain_id)
                if found is not None:
                    return (found,), True
        return (), True

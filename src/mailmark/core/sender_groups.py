"""Sender groups: mailboxes of one domain that take turns sending a campaign, and the recipient
list assigned to the group (PRODUCT.md "Sender Groups")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from mailmark.core.addresses import check_header_value, normalize_address
from mailmark.core.errors import InvalidInput, NotFound
from mailmark.core.model import Mailbox, SenderGroup
from mailmark.core.ports import Clock, UnitOfWork, UnitOfWorkFactory

MAX_NAME = 200
MAX_EMAILS = 10_000
ALL = "all"
# What `mailboxes` may be: "all", "a, b" (local parts or full addresses), or a list of them.
MailboxSpec = str | Sequence[str]


@dataclass(frozen=True)
class SenderGroupView:
    group: SenderGroup
    mailboxes: list[Mailbox]  # the senders, resolved ("all": every mailbox of the domain now)


def group_id(text: str) -> int:
    """A group id from a path; anything that is not one is a group that does not exist."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise NotFound(f"No sender group {text} here.")
    return int(text)


def _name(name: str) -> str:
    try:
        check_header_value("The name", name, MAX_NAME)
    except InvalidInput as error:
        error.field = "name"
        raise
    name = name.strip()
    if not name:
        raise InvalidInput("Give the group a name.", field="name")
    return name


def _emails(addresses: Sequence[str], field: str) -> list[str]:
    if isinstance(addresses, str):
        raise InvalidInput(f"{field} is a list of email addresses.", field=field)
    if len(addresses) > MAX_EMAILS:
        raise InvalidInput(f"A group holds at most {MAX_EMAILS} emails.", field=field)
    unique: dict[str, str] = {}
    for address in addresses:
        try:
            normalized = normalize_address(address, "The recipient")
        except InvalidInput as error:
            error.field = field
            raise
        unique.setdefault(normalized.lower(), normalized)
    return list(unique.values())


def _selected(
    spec: MailboxSpec, domain: list[Mailbox], domain_name: str
) -> tuple[bool, list[Mailbox]]:
    """(all mailboxes?, the mailboxes named) from "all", "a,b" or ["a", "b@domain"]."""
    if isinstance(spec, str):
        if spec.strip().lower() == ALL:
            return True, domain
        names = [part for part in (p.strip() for p in spec.split(",")) if part]
    else:
        names = [str(part).strip() for part in spec]
    by_local = {mailbox.local_part: mailbox for mailbox in domain}
    chosen: dict[int, Mailbox] = {}
    for name in names:
        local, at, domain_part = name.lower().rpartition("@")
        if not at:
            local = domain_part
        elif domain_part.rstrip(".") != domain_name:
            local = ""
        mailbox = by_local.get(local)
        if mailbox is None or mailbox.id is None:
            # Another domain's mailbox is as absent as a missing one: nothing shows it exists.
            raise NotFound(f"No mailbox {name} on {domain_name}.", field="mailboxes")
        chosen[mailbox.id] = mailbox
    return False, list(chosen.values())


class SenderGroupService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def list(self, domain_id: int) -> list[SenderGroupView]:
        async with self._uow(read_only=True) as uow:
            groups = await uow.sender_groups.list_for_domain(domain_id)
            mailboxes = await uow.mailboxes.list_for_domain(domain_id)
        return [_view(group, mailboxes) for group in groups]

    async def get(self, domain_id: int, group: str) -> SenderGroupView:
        async with self._uow(read_only=True) as uow:
            found = await self._get(uow, domain_id, group)
            return _view(found, await uow.mailboxes.list_for_domain(domain_id))

    async def create(
        self,
        domain_id: int,
        domain_name: str,
        *,
        name: str,
        mailboxes: MailboxSpec = ALL,
        emails: Sequence[str] = (),
    ) -> SenderGroupView:
        clean_name = _name(name)
        recipients = _emails(emails, "emails")
        now = self._clock.now()
        async with self._uow() as uow:
            domain_mailboxes = await uow.mailboxes.list_for_domain(domain_id)
            every, chosen = _selected(mailboxes, domain_mailboxes, domain_name)
            group = await uow.sender_groups.add(
                SenderGroup(
                    domain_id,
                    clean_name,
                    every,
                    tuple(recipients),
                    now,
                    now,
                    mailbox_ids=() if every else tuple(m.id for m in chosen if m.id is not None),
                )
            )
            await uow.commit()
        return _view(group, domain_mailboxes)

    async def update(
        self,
        domain_id: int,
        domain_name: str,
        group: str,
        *,
        name: str | None = None,
        mailboxes: MailboxSpec | None = None,
        emails: Sequence[str] | None = None,
        add_emails: Sequence[str] | None = None,
        remove_emails: Sequence[str] | None = None,
    ) -> SenderGroupView:
        """Change what is given: rename, replace the senders, replace the recipient list, or add
        and remove recipients (after a replacement, when both are given)."""
        async with self._uow() as uow:
            found = await self._get(uow, domain_id, group)
            domain_mailboxes = await uow.mailboxes.list_for_domain(domain_id)
            changed = found
            if name is not None:
                changed = replace(changed, name=_name(name))
            if mailboxes is not None:
                every, chosen = _selected(mailboxes, domain_mailboxes, domain_name)
                ids = () if every else tuple(m.id for m in chosen if m.id is not None)
                changed = replace(changed, all_mailboxes=every, mailbox_ids=ids)
            recipients = list(changed.emails)
            if emails is not None:
                recipients = _emails(emails, "emails")
            if add_emails is not None:
                held = {r.lower() for r in recipients}
                recipients += [a for a in _emails(add_emails, "addEmails") if a.lower() not in held]
            if remove_emails is not None:
                gone = {a.lower() for a in _emails(remove_emails, "removeEmails")}
                recipients = [r for r in recipients if r.lower() not in gone]
            if len(recipients) > MAX_EMAILS:
                raise InvalidInput(f"A group holds at most {MAX_EMAILS} emails.", field="addEmails")
            changed = replace(changed, emails=tuple(recipients), updated_at=self._clock.now())
            await uow.sender_groups.update(changed)
            await uow.commit()
        return _view(changed, domain_mailboxes)

    async def delete(self, domain_id: int, group: str) -> None:
        """Delete the group; its mailboxes are not affected."""
        async with self._uow() as uow:
            if not await uow.sender_groups.delete(domain_id, group_id(group)):
                raise NotFound(f"No sender group {group} here.")
            await uow.commit()

    @staticmethod
    async def _get(uow: UnitOfWork, domain_id: int, group: str) -> SenderGroup:
        found = await uow.sender_groups.get(domain_id, group_id(group))
        if found is None:
            raise NotFound(f"No sender group {group} here.")
        return found


def _view(group: SenderGroup, domain_mailboxes: list[Mailbox]) -> SenderGroupView:
    if group.all_mailboxes:
        return SenderGroupView(group, domain_mailboxes)
    members = set(group.mailbox_ids)
    return SenderGroupView(group, [m for m in domain_mailboxes if m.id in members])

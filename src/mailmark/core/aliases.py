"""Addresses that are not mailboxes: aliases, a domain's catch-all mailbox, alias domains.

An alias delivers to one or more mailboxes of its domain's account; a catch-all mailbox gets a
domain's mail for local parts nothing else takes (off unless set); an alias domain delivers every
address as the same local part of the domain it aliases. Recipient resolution, with its order, is
`MailboxService.resolve_recipients`. Plan quotas count mailboxes: aliases cost nothing.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from mailmark.core.access import Viewer, require_manager
from mailmark.core.addresses import normalize_domain, normalize_local_part
from mailmark.core.domains import owned_domain
from mailmark.core.errors import Conflict, InvalidInput, NotFound
from mailmark.core.mailboxes import MailboxService, split_address
from mailmark.core.model import Alias, Domain, Mailbox
from mailmark.core.ports import Clock, UnitOfWork, UnitOfWorkFactory

# Bounds an alias's fan-out: one RCPT never turns into an unbounded number of deliveries.
MAX_ALIAS_TARGETS = 100


async def own_domain(uow: UnitOfWork, name: str, account_id: int | None) -> Domain:
    """The domain (of the account when given; another account's is answered as missing)."""
    domain_name = normalize_domain(name)
    domain = await uow.domains.get_by_name(domain_name)
    if (
        domain is None
        or domain.id is None
        or (account_id is not None and domain.account_id != account_id)
    ):
        raise NotFound(f"No domain {domain_name} here.")
    return domain


async def refuse_alias_domain(uow: UnitOfWork, domain: Domain, what: str) -> None:
    """Addresses live on the aliased domain: an alias domain holds none of its own."""
    assert domain.id is not None
    target = await uow.aliases.alias_domain_target(domain.id)
    if target is not None:
        raise InvalidInput(
            f"{domain.name} is an alias of {target.name}: every address @{domain.name} delivers "
            f"as the same one @{target.name}. Create the {what} on {target.name}."
        )


class AliasService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, mailboxes: MailboxService) -> None:
        self._uow = uow
        self._clock = clock
        self._mailboxes = mailboxes

    async def add(
        self, address: str, targets: Sequence[str], *, account_id: int | None = None
    ) -> Alias:
        """A new alias delivering to `targets`: mailboxes of the alias domain's account, by
        address or by local part of the alias's domain."""
        local_part, domain_name = split_address(address)
        local_part = normalize_local_part(local_part)
        wanted = list(dict.fromkeys(target.strip().lower() for target in targets if target.strip()))
        if not wanted:
            raise InvalidInput("Choose at least one mailbox for the alias.", field="targets")
        if len(wanted) > MAX_ALIAS_TARGETS:
            raise InvalidInput(
                f"An alias delivers to at most {MAX_ALIAS_TARGETS} mailboxes.", field="targets"
            )
        async with self._uow() as uow:
            domain = await own_domain(uow, domain_name, account_id)
            assert domain.id is not None
            await refuse_alias_domain(uow, domain, "alias")
            address = f"{local_part}@{domain.name}"
            if await uow.mailboxes.find(domain.name, local_part) is not None:
                raise Conflict(
                    f"{address} is a mailbox already: an alias cannot share its address."
                )
            if await uow.aliases.find(domain.id, local_part) is not None:
                raise Conflict(f"Alias {address} already exists.")
            mailboxes = [
                await self._target(
                    uow, domain, target if "@" in target else f"{target}@{domain.name}"
                )
                for target in wanted
            ]
            await uow.aliases.add(
                domain.id,
                local_part,
                self._clock.now(),
                [mailbox.id for mailbox in mailboxes if mailbox.id is not None],
            )
            alias = await uow.aliases.find(domain.id, local_part)
            await uow.commit()
        assert alias is not None
        self._mailboxes.forget()
        return alias

    async def list(self, domain: str, *, account_id: int | None = None) -> list[Alias]:
        async with self._uow(read_only=True) as uow:
            found = await own_domain(uow, domain, account_id)
            assert found.id is not None
            return await uow.aliases.list_for_domain(found.id)

    async def remove(self, address: str, *, account_id: int | None = None) -> None:
        local_part, domain_name = split_address(address)
        async with self._uow() as uow:
            domain = await own_domain(uow, domain_name, account_id)
            assert domain.id is not None
            alias = await uow.aliases.find(domain.id, local_part)
            if alias is None or alias.id is None:
                raise NotFound(f"No alias {local_part}@{domain.name} here.")
            await uow.aliases.delete(alias.id)
            await uow.commit()
        self._mailboxes.forget()

    async def catch_all(self, domain: str, *, account_id: int | None = None) -> Mailbox | None:
        async with self._uow(read_only=True) as uow:
            found = await own_domain(uow, domain, account_id)
            assert found.id is not None
            return await uow.aliases.catch_all(found.id)

    async def set_catch_all(
        self, domain: str, mailbox: str | None, *, account_id: int | None = None
    ) -> Mailbox | None:
        """Send the domain's mail for unknown local parts to `mailbox` (an address, or a local
        part of the domain); None turns the catch-all off."""
        async with self._uow() as uow:
            found = await own_domain(uow, domain, account_id)
            assert found.id is not None
            await refuse_alias_domain(uow, found, "catch-all")
            target = None
            if mailbox is not None:
                wanted = mailbox.strip().lower()
                target = await self._target(
                    uow, found, wanted if "@" in wanted else f"{wanted}@{found.name}"
                )
            await uow.aliases.set_catch_all(found.id, target.id if target else None)
            await uow.commit()
        self._mailboxes.forget()
        return target

    # --- the dashboard and /v1: every call acts for a viewer of one account ---------------------

    async def list_for(self, viewer: Viewer, domain: str) -> builtins.list[Alias]:
        require_manager(viewer, "see a domain's aliases")
        return await self.list(domain, account_id=viewer.account_id)

    async def add_for(
        self, viewer: Viewer, domain: str, local_part: str, targets: Sequence[str]
    ) -> Alias:
        require_manager(viewer, "add an alias")
        if "@" in local_part:
            raise InvalidInput(
                "Give only the part before the @, like sales; the domain is added.",
                field="localPart",
            )
        return await self.add(
            f"{local_part}@{normalize_domain(domain)}", targets, account_id=viewer.account_id
        )

    async def remove_for(self, viewer: Viewer, address: str) -> None:
        require_manager(viewer, "remove an alias")
        await self.remove(address, account_id=viewer.account_id)

    async def catch_all_for(self, viewer: Viewer, domain: str) -> Mailbox | None:
        require_manager(viewer, "see a domain's catch-all")
        async with self._uow(read_only=True) as uow:
            await owned_domain(uow, viewer, domain)
        return await self.catch_all(domain, account_id=viewer.account_id)

    async def set_catch_all_for(
        self, viewer: Viewer, domain: str, mailbox: str | None
    ) -> Mailbox | None:
        require_manager(viewer, "change a domain's catch-all")
        return await self.set_catch_all(domain, mailbox, account_id=viewer.account_id)

    async def _target(self, uow: UnitOfWork, domain: Domain, address: str) -> Mailbox:
        """A mailbox of the domain's account; another account's is answered as missing."""
        local_part, domain_name = split_address(address)
        mailbox = await uow.mailboxes.find(domain_name, local_part)
        if mailbox is None or mailbox.account_id != domain.account_id:
            raise NotFound(
                f"No mailbox {local_part}@{domain_name} in this account: an alias or catch-all "
                "delivers only to the account's own mailboxes.",
                field="targets",
            )
        return mailbox

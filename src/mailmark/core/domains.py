"""Domains: adding one (with its DKIM key), marking it verified, looking it up."""

from __future__ import annotations

from mailmark.core.addresses import normalize_domain
from mailmark.core.errors import Conflict, NotFound
from mailmark.core.model import DkimKey, Domain
from mailmark.core.plans import effective_plan, ensure_domain_quota
from mailmark.core.ports import Clock, DkimKeyGenerator, UnitOfWorkFactory

DKIM_RSA_BITS = 2048


class DomainService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, keys: DkimKeyGenerator) -> None:
        self._uow = uow
        self._clock = clock
        self._keys = keys

    async def add(self, name: str, *, account_name: str, trust: bool = False) -> Domain:
        """Add a domain to an account and generate its DKIM key.

        `trust` marks it verified without DNS checks, for local and test setups."""
        domain_name = normalize_domain(name)
        # Key generation takes a noticeable fraction of a second: do it before the transaction.
        private_pem, public_key = self._keys.generate_rsa(DKIM_RSA_BITS)
        now = self._clock.now()
        async with self._uow() as uow:
            account = await uow.accounts.get_by_name(account_name)
            if account is None or account.id is None:
                raise NotFound(f"No account named {account_name!r}.")
            if await uow.domains.get_by_name(domain_name) is not None:
                raise Conflict(f"Domain {domain_name} is already added.")
            plan = effective_plan(account, now)
            ensure_domain_quota(plan, await uow.domains.count_for_account(account.id))
            domain = await uow.domains.add(
                Domain(account.id, domain_name, now, verified_at=now if trust else None, trusted=trust)
            )
            assert domain.id is not None
            selector = f"mm{now:%Y%m}"
            await uow.domains.add_dkim_key(
                DkimKey(domain.id, selector, "rsa-sha256", private_pem, public_key, True, now)
            )
            await uow.commit()
        return domain

    async def get(self, name: str) -> Domain:
        domain_name = normalize_domain(name)
        async with self._uow() as uow:
            domain = await uow.domains.get_by_name(domain_name)
        if domain is None:
            raise NotFound(f"No domain {domain_name} here.")
        return domain

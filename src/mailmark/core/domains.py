"""Domains: adding one with its DKIM keys, its DNS record set, verification and key rotation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from mailmark.core.addresses import (
    custom_return_path_domain,
    normalize_domain,
    parse_verp,
    return_path_domain,
)
from mailmark.core.errors import Conflict, NotFound
from mailmark.core.model import DkimKey, DnsRecord, Domain, RecordCheck
from mailmark.core.plans import effective_plan, ensure_domain_quota
from mailmark.core.ports import (
    Clock,
    DkimKeyGenerator,
    DomainDnsChecker,
    UnitOfWork,
    UnitOfWorkFactory,
)
from mailmark.core.states import DkimKeyState

DKIM_RSA_BITS = 2048
# Keys that belong in DNS: the signing ones and the ones waiting to take over.
PUBLISHED_KEY_STATES = (DkimKeyState.ACTIVE, DkimKeyState.PENDING)
ALL_KEY_STATES = tuple(DkimKeyState)


@dataclass(frozen=True)
class ReturnPath:
    """The domain of the envelope sender (bounce+<token>@<domain>) a domain's mail uses, and why."""

    domain: str
    custom: bool  # mail.<domain>, rather than the server's own name
    reason: str


@dataclass(frozen=True)
class Verification:
    domain: Domain
    checks: tuple[RecordCheck, ...]
    return_path: ReturnPath
    promoted_keys: tuple[DkimKey, ...] = ()

    @property
    def required_ok(self) -> bool:
        return all(check.status == "ok" for check in self.checks if check.record.required)


def return_path_checks(domain: str, checks: Sequence[RecordCheck]) -> list[RecordCheck]:
    """The checks of the records the custom return path depends on: mail.<domain>'s MX and SPF."""
    name = custom_return_path_domain(domain)
    return [c for c in checks if c.record.name == name and c.record.type in ("MX", "TXT")]


def return_path_published(domain: str, checks: Sequence[RecordCheck]) -> bool | None:
    """Whether the checks found the custom return path's records; None when a lookup failed, as
    that tells nothing either way."""
    statuses = {check.status for check in return_path_checks(domain, checks)}
    if not statuses or "error" in statuses:
        return None
    return statuses == {"ok"}


def explain_return_path(domain: Domain, checks: Sequence[RecordCheck], hostname: str) -> ReturnPath:
    """The return path the domain's mail uses after this verification, in words."""
    custom = custom_return_path_domain(domain.name)
    chosen = return_path_domain(
        domain.name, published=domain.return_path_published, server_hostname=hostname
    )
    failing = [c for c in return_path_checks(domain.name, checks) if c.status != "ok"]
    problems = "; ".join(_problem(check) for check in failing)
    if domain.return_path_published and not failing:
        reason = (
            f"{custom} publishes its MX and SPF records: bounces come back to this server, and "
            f"SPF passes for a domain aligned with {domain.name} (DMARC relaxed alignment)."
        )
    elif domain.return_path_published:
        reason = (
            f"{custom} could not be checked ({problems}): it stays in use, as the last "
            "verification found its records."
        )
    elif failing and all(check.status == "error" for check in failing):
        reason = (
            f"{custom} could not be checked ({problems}) and no verification has found its "
            f"records yet, so mail uses the server's own name, {hostname}, which resolves."
        )
    else:
        reason = (
            f"{custom} is not usable yet ({problems or 'not verified'}): receivers that check "
            "the sender's domain would refuse it and bounces to it would be lost, so mail uses "
            f"the server's own name, {hostname}, until its MX and SPF records verify."
        )
    return ReturnPath(chosen, domain.return_path_published, reason)


def _problem(check: RecordCheck) -> str:
    kind = "SPF record" if check.record.type == "TXT" else f"{check.record.type} record"
    if check.status == "missing":
        return f"no {kind}"
    if check.status == "error":
        return f"the {kind} lookup failed: {check.detail}"
    return f"the {kind} is wrong: {check.detail}" if check.detail else f"the {kind} is wrong"


class DomainService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, keys: DkimKeyGenerator, dns: DomainDnsChecker
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._keys = keys
        self._dns = dns

    async def add(self, name: str, *, account_name: str, trust: bool = False) -> Domain:
        """Add a domain to an account and generate its DKIM keys (RSA and Ed25519).

        `trust` marks it verified without DNS checks, for local and test setups."""
        domain_name = normalize_domain(name)
        now = self._clock.now()
        # Key generation takes a noticeable fraction of a second: do it before the transaction.
        new_keys = self._new_keys(now, taken=set())
        async with self._uow() as uow:
            account = await uow.accounts.get_by_name(account_name)
            if account is None or account.id is None:
                raise NotFound(f"No account named {account_name!r}.")
            if await uow.domains.get_by_name(domain_name) is not None:
                raise Conflict(f"Domain {domain_name} is already added.")
            plan = effective_plan(account, now)
            await uow.accounts.lock(account.id)
            ensure_domain_quota(plan, await uow.domains.count_for_account(account.id))
            domain = await uow.domains.add(
                Domain(
                    account.id, domain_name, now, verified_at=now if trust else None, trusted=trust
                )
            )
            assert domain.id is not None
            for selector, algorithm, private, public in new_keys:
                key = DkimKey(
                    domain.id, selector, algorithm, private, public, DkimKeyState.ACTIVE, now
                )
                await uow.domains.add_dkim_key(key)
            await uow.commit()
        return domain

    async def get(self, name: str) -> Domain:
        domain_name = normalize_domain(name)
        async with self._uow(read_only=True) as uow:
            domain = await uow.domains.get_by_name(domain_name)
        if domain is None:
            raise NotFound(f"No domain {domain_name} here.")
        return domain

    async def records(self, name: str) -> tuple[Domain, list[DnsRecord]]:
        """The records the domain should publish on this server."""
        async with self._uow(read_only=True) as uow:
            domain, keys = await self._domain_and_keys(uow, name)
        return domain, self._dns.record_set(domain.name, keys)

    async def verify(self, name: str) -> Verification:
        """Check every record. All required ones ok → the domain is verified. A pending DKIM key
        whose record verifies becomes the signing key, and the one it replaces is retired."""
        async with self._uow(read_only=True) as uow:
            domain, keys = await self._domain_and_keys(uow, name)
        checks = await self._dns.verify(self._dns.record_set(domain.name, keys))
        published = return_path_published(domain.name, checks)
        moved = published is not None and published != domain.return_path_published
        ok_names = {check.record.name for check in checks if check.status == "ok"}
        ready = [
            key
            for key in keys
            if key.state == DkimKeyState.PENDING
            and f"{key.selector}._domainkey.{domain.name}" in ok_names
        ]
        hostname = self._dns.hostname
        result = Verification(domain, tuple(checks), explain_return_path(domain, checks, hostname))
        if not ready and not moved and (domain.verified_at is not None or not result.required_ok):
            return result
        now = self._clock.now()
        domain_id = domain.id
        assert domain_id is not None
        async with self._uow() as uow:
            for key in ready:
                for old in keys:
                    replaced = old.state == DkimKeyState.ACTIVE and old.algorithm == key.algorithm
                    if replaced and old.id is not None:
                        await uow.domains.set_dkim_state(old.id, DkimKeyState.RETIRED)
                assert key.id is not None
                await uow.domains.set_dkim_state(key.id, DkimKeyState.ACTIVE)
            if domain.verified_at is None and result.required_ok:
                await uow.domains.set_verified(domain_id, now)
                domain = replace(domain, verified_at=now)
            if published is not None and moved:
                await uow.domains.set_return_path_published(domain_id, published)
                domain = replace(domain, return_path_published=published)
            await uow.commit()
        return Verification(
            domain, tuple(checks), explain_return_path(domain, checks, hostname), tuple(ready)
        )

    async def report_token(self, address: str) -> str | None:
        """The token of `address` when it is a return path of mail sent from here: on the
        server's own name, or on mail.<domain> of a hosted domain; else None."""
        verp = parse_verp(address, self._dns.hostname)
        if verp is None:
            return None
        if verp.domain is not None:
            async with self._uow(read_only=True) as uow:
                if await uow.domains.get_by_name(verp.domain) is None:
                    return None
        return verp.token

    async def rotate_dkim(self, name: str) -> list[DkimKey]:
        """Create new keys in state "pending": published alongside the current ones, used for
        signing once `verify` sees their records in DNS."""
        async with self._uow(read_only=True) as uow:
            domain, keys = await self._domain_and_keys(uow, name, ALL_KEY_STATES)
        if any(key.state == DkimKeyState.PENDING for key in keys):
            raise Conflict(
                f"A DKIM key rotation for {domain.name} is already waiting: publish its record and "
                "verify the domain first."
            )
        assert domain.id is not None
        new_keys = self._new_keys(self._clock.now(), taken={key.selector for key in keys})
        created = []
        now = self._clock.now()
        async with self._uow() as uow:
            for selector, algorithm, private, public in new_keys:
                key = DkimKey(
                    domain.id, selector, algorithm, private, public, DkimKeyState.PENDING, now
                )
                created.append(await uow.domains.add_dkim_key(key))
            await uow.commit()
        return created

    async def _domain_and_keys(
        self, uow: UnitOfWork, name: str, states: tuple[DkimKeyState, ...] = PUBLISHED_KEY_STATES
    ) -> tuple[Domain, list[DkimKey]]:
        domain_name = normalize_domain(name)
        domain = await uow.domains.get_by_name(domain_name)
        if domain is None or domain.id is None:
            raise NotFound(f"No domain {domain_name} here.")
        return domain, await uow.domains.dkim_keys(domain.id, states)

    def _new_keys(self, now: datetime, taken: set[str]) -> list[tuple[str, str, str, str]]:
        """(selector, algorithm, private, public) for one RSA and one Ed25519 key."""
        base = f"mm{now:%Y%m%d}"
        serial = 1
        while any(s in taken for s in (_selector(base, serial, "r"), _selector(base, serial, "e"))):
            serial += 1
        rsa_private, rsa_public = self._keys.generate_rsa(DKIM_RSA_BITS)
        ed_private, ed_public = self._keys.generate_ed25519()
        return [
            (_selector(base, serial, "r"), "rsa-sha256", rsa_private, rsa_public),
            (_selector(base, serial, "e"), "ed25519-sha256", ed_private, ed_public),
        ]


def _selector(base: str, serial: int, kind: str) -> str:
    """mm20261125r, mm20261125e; a second rotation the same day: mm20261125r2, …"""
    return f"{base}{kind}" if serial == 1 else f"{base}{kind}{serial}"

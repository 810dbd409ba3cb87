"""Domains: adding one with its DKIM keys, its DNS record set, verification and key rotation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mailmark.core.access import Viewer, require_manager
from mailmark.core.addresses import (
    custom_return_path_domain,
    normalize_domain,
    parse_verp,
    return_path_domain,
)
from mailmark.core.errors import Conflict, InvalidInput, NotFound, naming
from mailmark.core.model import Account, DkimKey, DnsRecord, Domain, RecordCheck
from mailmark.core.plans import effective_plan, ensure_domain_quota
from mailmark.core.ports import (
    BlobStore,
    Clock,
    DkimKeyGenerator,
    DomainContents,
    DomainDnsChecker,
    UnitOfWork,
    UnitOfWorkFactory,
)
from mailmark.core.states import DkimKeyState

DKIM_RSA_BITS = 2048
# Keys that belong in DNS: the signing ones and the ones waiting to take over.
PUBLISHED_KEY_STATES = (DkimKeyState.ACTIVE, DkimKeyState.PENDING)
ALL_KEY_STATES = tuple(DkimKeyState)
# Background checks of an unverified domain: the first soon after it is added, then spaced out
# (doubling from RECHECK_FIRST up to RECHECK_LONGEST) while its records stay wrong.
RECHECK_FIRST = timedelta(minutes=1)
RECHECK_LONGEST = timedelta(hours=6)


def relative_host(name: str, domain: str) -> str:
    """The host as most DNS panels want it: "@" for the domain itself, "mail" for mail.<domain>;
    a name outside the domain's zone (a reverse-DNS name) stays whole."""
    if name == domain:
        return "@"
    if name.endswith("." + domain):
        return name[: -len(domain) - 1]
    return name


def fix_for(check: RecordCheck, domain: str) -> str | None:
    """What to change at the DNS provider so the record checks ok, in one sentence."""
    record = check.record
    if check.status not in ("missing", "mismatch", "error"):
        return None
    if record.type == "PTR":
        return (
            "Ask your hosting provider to set the reverse DNS (PTR) of the server's address to "
            f"{record.value}."
        )
    host = relative_host(record.name, domain)
    where = "the domain itself (@)" if host == "@" else f"the host {host}"
    want = record.value if record.priority is None else f"{record.priority} {record.value}"
    if check.status == "missing":
        return f"Add a {record.type} record at {where} with the value {want}."
    if check.status == "mismatch":
        reason = f" ({check.detail})" if check.detail else ""
        return f"Change the {record.type} record at {where} to {want}{reason}."
    return (
        f"The DNS lookup of {record.name} failed ({check.detail or 'no answer'}): make sure your "
        "DNS provider answers for the domain, then check again."
    )


def recheck_delay(failed_checks: int, first: timedelta, longest: timedelta) -> timedelta:
    """How long to wait after `failed_checks` checks in a row found the domain unverified."""
    doubling: int = 2 ** max(0, min(failed_checks - 1, 30))
    return min(first * doubling, longest)


@dataclass(frozen=True)
class RecordStatus:
    """One record the domain should publish, with what its last check found."""

    record: DnsRecord
    relative_host: str
    status: str  # "ok" | "missing" | "mismatch" | "error" | "unchecked"
    found: tuple[str, ...]
    fix: str | None
    checked_at: datetime | None


@dataclass(frozen=True)
class DomainSummary:
    domain: Domain
    mailbox_count: int
    # The domain this one is an alias of (its addresses deliver there), or None.
    alias_of: str | None = None
    account_name: str = ""  # filled where domains of several accounts are listed


@dataclass(frozen=True)
class DomainDetail:
    domain: Domain
    contains: DomainContents
    records: tuple[RecordStatus, ...]
    alias_of: str | None = None
    alias_domains: tuple[str, ...] = ()


def record_statuses(
    domain: str,
    records: Sequence[DnsRecord],
    checks: dict[tuple[str, str, str], RecordCheck],
) -> tuple[RecordStatus, ...]:
    """The records, each with its stored check ("unchecked" when it has none yet: a new domain,
    a rotated DKIM key)."""
    statuses = []
    for record in records:
        check = checks.get((record.type, record.name, record.value))
        if check is None:
            statuses.append(
                RecordStatus(
                    record, relative_host(record.name, domain), "unchecked", (), None, None
                )
            )
            continue
        check = replace(check, record=record)
        statuses.append(
            RecordStatus(
                record,
                relative_host(record.name, domain),
                check.status,
                check.found,
                fix_for(check, domain),
                check.checked_at,
            )
        )
    return tuple(statuses)


async def owned_domain(uow: UnitOfWork, viewer: Viewer, name: str) -> Domain:
    """The viewer's account's domain of that name; another account's is NotFound, like none."""
    domain_name = normalize_domain(name)
    domain = await uow.domains.get_by_name(domain_name)
    if domain is None or domain.id is None or domain.account_id != viewer.account_id:
        raise NotFound(f"No domain {domain_name} here.")
    return domain


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
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        keys: DkimKeyGenerator,
        dns: DomainDnsChecker,
        blobs: BlobStore,
        *,
        recheck_first: timedelta = RECHECK_FIRST,
        recheck_longest: timedelta = RECHECK_LONGEST,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._keys = keys
        self._dns = dns
        self._blobs = blobs
        self._recheck_first = recheck_first
        self._recheck_longest = recheck_longest

    async def add(
        self,
        name: str,
        *,
        account_name: str | None = None,
        account_id: int | None = None,
        trust: bool = False,
        alias_of: str | None = None,
    ) -> Domain:
        """Add a domain to an account (by name or id) and generate its DKIM keys (RSA and
        Ed25519). Unless trusted, the background check looks at its records soon.

        `trust` marks it verified without DNS checks, for local and test setups. With
        `alias_of`, another domain of the same account, every address of the new domain delivers
        as the same local part of that one; it publishes records of its own (MX, SPF, DKIM,
        DMARC) and, holding no mailboxes, does not count against the plan's domains."""
        domain_name = normalize_domain(name)
        now = self._clock.now()
        # Key generation takes a noticeable fraction of a second: do it before the transaction.
        new_keys = self._new_keys(now, taken=set())
        async with self._uow() as uow:
            account: Account | None = None
            if account_id is not None:
                account = await uow.accounts.get(account_id)
            elif account_name is not None:
                account = await uow.accounts.get_by_name(account_name)
            if account is None or account.id is None:
                raise NotFound(f"No account named {account_name!r}.")
            if await uow.domains.get_by_name(domain_name) is not None:
                raise Conflict(f"Domain {domain_name} is already added.")
            target = None
            if alias_of is not None:
                target = await self._alias_target(uow, account.id, domain_name, alias_of)
            else:
                plan = effective_plan(account, now)
                await uow.accounts.lock(account.id)
                ensure_domain_quota(plan, await uow.domains.count_for_account(account.id))
            domain = await uow.domains.add(
                Domain(
                    account.id,
                    domain_name,
                    now,
                    verified_at=now if trust else None,
                    trusted=trust,
                    next_check_at=None if trust else now + self._recheck_first,
                )
            )
            assert domain.id is not None
            for selector, algorithm, private, public in new_keys:
                key = DkimKey(
                    domain.id, selector, algorithm, private, public, DkimKeyState.ACTIVE, now
                )
                await uow.domains.add_dkim_key(key)
            if target is not None:
                assert target.id is not None
                await uow.aliases.add_alias_domain(domain.id, target.id)
            await uow.commit()
        return domain

    @staticmethod
    async def _alias_target(
        uow: UnitOfWork, account_id: int, domain_name: str, alias_of: str
    ) -> Domain:
        target_name = normalize_domain(alias_of)
        target = await uow.domains.get_by_name(target_name)
        if target is None or target.id is None or target.account_id != account_id:
            raise NotFound(f"No domain {target_name} here to make {domain_name} an alias of.")
        aliased = await uow.aliases.alias_domain_target(target.id)
        if aliased is not None:
            raise InvalidInput(
                f"{target_name} is itself an alias of {aliased.name}: make {domain_name} an "
                f"alias of {aliased.name}."
            )
        return target

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

    async def verify(self, name: str, *, background: bool = False) -> Verification:
        """Check every record and store what was found. All required ones ok → the domain is
        verified. A pending DKIM key whose record verifies becomes the signing key, and the one it
        replaces is retired. While unverified, each `background` check plans the next one further
        out; a check someone asks for (the domain page re-checks every few seconds while open)
        leaves that schedule as it was."""
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
        required_ok = all(check.status == "ok" for check in checks if check.record.required)
        now = self._clock.now()
        checks = [replace(check, checked_at=now) for check in checks]
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
            if domain.verified_at is None and required_ok:
                await uow.domains.set_verified(domain_id, now)
                domain = replace(domain, verified_at=now)
            if published is not None and moved:
                await uow.domains.set_return_path_published(domain_id, published)
                domain = replace(domain, return_path_published=published)
            if domain.verified_at is not None:
                failed, next_check = 0, None
            elif background:
                failed = domain.failed_checks + 1
                next_check = now + recheck_delay(failed, self._recheck_first, self._recheck_longest)
            else:
                failed, next_check = domain.failed_checks, domain.next_check_at
            await uow.domains.save_checks(
                domain_id, checks, checked_at=now, next_check_at=next_check, failed_checks=failed
            )
            domain = replace(
                domain, last_checked_at=now, next_check_at=next_check, failed_checks=failed
            )
            await uow.commit()
        return Verification(
            domain, tuple(checks), explain_return_path(domain, checks, hostname), tuple(ready)
        )

    async def recheck_due(self, limit: int) -> list[Verification]:
        """Check the unverified domains whose background check is due, at most `limit` of them."""
        async with self._uow(read_only=True) as uow:
            names = await uow.domains.due_for_check(self._clock.now(), limit)
        done = []
        for name in names:
            try:
                done.append(await self.verify(name, background=True))
            except NotFound:
                continue  # removed since it was listed
        return done

    # --- the dashboard: every call acts for a viewer of one account -----------------------------

    async def list_for(self, viewer: Viewer) -> list[DomainSummary]:
        require_manager(viewer, "see the account's domains")
        async with self._uow(read_only=True) as uow:
            found = await uow.domains.list_for_account(viewer.account_id)
            aliases = await uow.aliases.alias_domain_targets(viewer.account_id)
        return [
            DomainSummary(domain, count, aliases.get(domain.id or 0)) for domain, count in found
        ]

    async def add_for(
        self, viewer: Viewer, name: str, *, alias_of: str | None = None
    ) -> DomainDetail:
        require_manager(viewer, "add a domain")
        domain = await self.add(name, account_id=viewer.account_id, alias_of=alias_of)
        return await self.detail(viewer, domain.name)

    async def detail(self, viewer: Viewer, name: str) -> DomainDetail:
        """The domain, what it holds, and its records with their last checks."""
        require_manager(viewer, "see a domain's settings")
        async with self._uow(read_only=True) as uow:
            domain = await owned_domain(uow, viewer, name)
            assert domain.id is not None
            keys = await uow.domains.dkim_keys(domain.id, PUBLISHED_KEY_STATES)
            contents = await uow.domains.contents(domain.id)
            checks = await uow.domains.checks(domain.id)
            alias_of = await uow.aliases.alias_domain_target(domain.id)
            alias_domains = await uow.aliases.alias_domain_names(domain.id)
        records = self._dns.record_set(domain.name, keys)
        return DomainDetail(
            domain,
            contents,
            record_statuses(domain.name, records, checks),
            alias_of.name if alias_of else None,
            tuple(alias_domains),
        )

    async def verify_for(self, viewer: Viewer, name: str) -> DomainDetail:
        require_manager(viewer, "check a domain's records")
        async with self._uow(read_only=True) as uow:
            domain = await owned_domain(uow, viewer, name)
        await self.verify(domain.name)
        return await self.detail(viewer, domain.name)

    async def records_for(self, viewer: Viewer, name: str) -> tuple[Domain, list[DnsRecord]]:
        require_manager(viewer, "see a domain's records")
        async with self._uow(read_only=True) as uow:
            domain = await owned_domain(uow, viewer, name)
        return await self.records(domain.name)

    async def rotate_dkim_for(self, viewer: Viewer, name: str) -> DomainDetail:
        require_manager(viewer, "rotate a domain's DKIM keys")
        async with self._uow(read_only=True) as uow:
            domain = await owned_domain(uow, viewer, name)
        await self.rotate_dkim(domain.name)
        return await self.detail(viewer, domain.name)

    async def set_tracking_host_for(
        self, viewer: Viewer, name: str, host: str | None
    ) -> DomainDetail:
        """Set (or with None, clear) the domain's tracking host: the name its mail's tracking and
        unsubscribe links use, so that they align with its From domain. It must be the domain
        or a name under it, published as a CNAME to this server's public host."""
        require_manager(viewer, "change a domain's tracking host")
        async with self._uow() as uow:
            domain = await owned_domain(uow, viewer, name)
            assert domain.id is not None
            await uow.domains.set_tracking_host(domain.id, tracking_host(domain.name, host))
            await uow.commit()
        return await self.detail(viewer, domain.name)

    async def remove(self, viewer: Viewer, name: str, *, confirm: str) -> DomainContents:
        """Delete the domain with its mailboxes and their mail, API keys, webhooks and queue.

        `confirm` must repeat the domain's name: a mistyped click must not remove mail."""
        require_manager(viewer, "remove a domain")
        async with self._uow() as uow:
            domain = await owned_domain(uow, viewer, name)
            if confirm.strip().lower().rstrip(".") != domain.name:
                raise InvalidInput(
                    f"Type the domain's name, {domain.name}, to confirm its removal.",
                    field="confirm",
                )
            contents, blobs = await self._delete(uow, domain)
            await uow.commit()
        await self._drop_blobs(blobs)
        return contents

    async def delete(self, name: str) -> DomainContents:
        """`remove` for the server's operator (any account's domain, no confirmation here: the
        command line asks for its own)."""
        domain_name = normalize_domain(name)
        async with self._uow() as uow:
            domain = await uow.domains.get_by_name(domain_name)
            if domain is None:
                raise NotFound(f"No domain {domain_name} here.")
            contents, blobs = await self._delete(uow, domain)
            await uow.commit()
        await self._drop_blobs(blobs)
        return contents

    async def contents(self, name: str) -> tuple[Domain, DomainContents]:
        """The domain and what removing it would delete."""
        domain_name = normalize_domain(name)
        async with self._uow(read_only=True) as uow:
            domain = await uow.domains.get_by_name(domain_name)
            if domain is None or domain.id is None:
                raise NotFound(f"No domain {domain_name} here.")
            return domain, await uow.domains.contents(domain.id)

    async def list_all(self, account_name: str | None = None) -> list[DomainSummary]:
        """Every domain of the installation (of one account when named), by name."""
        async with self._uow(read_only=True) as uow:
            account_id = None
            if account_name is not None:
                account = await uow.accounts.get_by_name(account_name)
                if account is None or account.id is None:
                    raise NotFound(f"No account named {account_name!r}.")
                account_id = account.id
            found = await uow.domains.list_all(account_id)
        return [
            DomainSummary(domain, count, account_name=account) for domain, account, count in found
        ]

    @staticmethod
    async def _delete(uow: UnitOfWork, domain: Domain) -> tuple[DomainContents, set[str]]:
        """Delete the domain, its mailboxes' mail, its queue, keys and hooks in the caller's
        transaction; what it held, and the blobs that may now be unused."""
        assert domain.id is not None
        contents = await uow.domains.contents(domain.id)
        blobs = await uow.domains.outbound_blob_keys(domain.id)
        for mailbox_id in await uow.domains.mailbox_ids(domain.id):
            blobs.update(await uow.messages.delete_mailbox_contents(mailbox_id))
        await uow.domains.delete(domain.id)
        # Aliases elsewhere in the account may have delivered only to its mailboxes.
        await uow.aliases.delete_empty_for_account(domain.account_id)
        return contents, blobs

    async def _drop_blobs(self, blobs: set[str]) -> None:
        """As MailboxService.delete: only after the commit, each re-checked under its lock."""
        for key in sorted(blobs):
            async with self._uow() as uow:
                await uow.messages.lock_blob(key)
                if not await uow.messages.blob_referenced(key):
                    await self._blobs.delete(key)
                await uow.commit()

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


def tracking_host(domain_name: str, host: str | None) -> str | None:
    """The tracking host as stored: a name at or under the domain (so that the links align with
    it, as DMARC-minded filters like), or None to use the public URL."""
    if host is None or not host.strip():
        return None
    with naming("host"):
        name = normalize_domain(host)
        if name != domain_name and not name.endswith(f".{domain_name}"):
            raise InvalidInput(
                f"The tracking host must be {domain_name} or a name under it, such as "
                f"track.{domain_name}."
            )
    return name

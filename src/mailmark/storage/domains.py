"""Domains and their DKIM keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailmark.core.model import DkimKey, DnsRecord, Domain, RecordCheck
from mailmark.core.ports import DomainContents
from mailmark.core.states import WAITING_STATUSES, DkimKeyState
from mailmark.storage.sql import Repository, chunks, row_values
from mailmark.storage.tables import (
    accounts,
    alias_domains,
    api_keys,
    deliveries,
    dkim_keys,
    domain_record_checks,
    domains,
    mailboxes,
    outbound_messages,
    placements,
    webhooks,
)


class SqlDomains(Repository):
    async def add(self, domain: Domain) -> Domain:
        new_id = await self._insert(domains, row_values(domain))
        return Domain(**{**asdict(domain), "id": new_id})

    async def get_by_name(self, name: str) -> Domain | None:
        row = (await self._conn.execute(domains.select().where(domains.c.name == name))).first()
        return Domain(**row._mapping) if row else None

    async def count_for_account(self, account_id: int) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(domains)
            .where(
                domains.c.account_id == account_id,
                # Alias domains hold no mailboxes of their own: plans count the others.
                domains.c.id.not_in(sa.select(alias_domains.c.domain_id)),
            )
        )
        return int((await self._conn.execute(query)).scalar_one())

    async def set_verified(self, domain_id: int, verified_at: datetime | None) -> None:
        await self._conn.execute(
            domains.update().where(domains.c.id == domain_id).values(verified_at=verified_at)
        )

    async def set_return_path_published(self, domain_id: int, published: bool) -> None:
        await self._conn.execute(
            domains.update()
            .where(domains.c.id == domain_id)
            .values(return_path_published=published)
        )

    async def set_tracking_host(self, domain_id: int, host: str | None) -> None:
        await self._conn.execute(
            domains.update().where(domains.c.id == domain_id).values(tracking_host=host)
        )

    async def tracking_hosts(self, domain_ids: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for chunk in chunks(sorted(set(domain_ids))):
            query = sa.select(domains.c.id, domains.c.tracking_host).where(
                domains.c.id.in_(chunk), domains.c.tracking_host.is_not(None)
            )
            found.update((row.id, row.tracking_host) for row in await self._conn.execute(query))
        return found

    async def add_dkim_key(self, key: DkimKey) -> DkimKey:
        new_id = await self._insert(dkim_keys, row_values(key))
        return DkimKey(**{**asdict(key), "id": new_id})

    async def dkim_keys(self, domain_id: int, states: Sequence[str]) -> list[DkimKey]:
        query = (
            dkim_keys.select()
            .where(dkim_keys.c.domain_id == domain_id, dkim_keys.c.state.in_(states))
            .order_by(dkim_keys.c.id)
        )
        return [DkimKey(**row._mapping) for row in await self._conn.execute(query)]

    async def set_dkim_state(self, key_id: int, state: DkimKeyState) -> None:
        await self._conn.execute(
            dkim_keys.update().where(dkim_keys.c.id == key_id).values(state=state)
        )

    async def get(self, domain_id: int) -> Domain | None:
        row = (await self._conn.execute(domains.select().where(domains.c.id == domain_id))).first()
        return Domain(**row._mapping) if row else None

    async def list_for_account(self, account_id: int) -> list[tuple[Domain, int]]:
        """The account's domains by name, each with its number of mailboxes."""
        # Counted per domain through the (domain_id, local_part) index, not over every mailbox.
        mailbox_count = (
            sa.select(sa.func.count())
            .where(mailboxes.c.domain_id == domains.c.id)
            .correlate(domains)
            .scalar_subquery()
        )
        query = (
            sa.select(*domains.c, mailbox_count.label("n"))
            .where(domains.c.account_id == account_id)
            .order_by(domains.c.name)
        )
        found = []
        for row in await self._conn.execute(query):
            values = dict(row._mapping)
            count = int(values.pop("n"))
            found.append((Domain(**values), count))
        return found

    async def list_all(self, account_id: int | None) -> list[tuple[Domain, str, int]]:
        """Every domain (of one account when given) by name, with its account's name and its
        number of mailboxes."""
        mailbox_count = (
            sa.select(sa.func.count())
            .where(mailboxes.c.domain_id == domains.c.id)
            .correlate(domains)
            .scalar_subquery()
        )
        query = (
            sa.select(*domains.c, accounts.c.name.label("account_name"), mailbox_count.label("n"))
            .select_from(domains.join(accounts))
            .order_by(domains.c.name)
        )
        if account_id is not None:
            query = query.where(domains.c.account_id == account_id)
        found = []
        for row in await self._conn.execute(query):
            values = dict(row._mapping)
            account_name = values.pop("account_name")
            count = int(values.pop("n"))
            found.append((Domain(**values), account_name, count))
        return found

    async def contents(self, domain_id: int) -> DomainContents:
        mailbox_ids = sa.select(mailboxes.c.id).where(mailboxes.c.domain_id == domain_id)

        async def count(query: sa.Select[Any]) -> int:
            return int((await self._conn.execute(query)).scalar_one())

        return DomainContents(
            mailboxes=await count(
                sa.select(sa.func.count()).where(mailboxes.c.domain_id == domain_id)
            ),
            messages=await count(
                sa.select(sa.func.count(sa.distinct(placements.c.message_id))).where(
                    placements.c.mailbox_id.in_(mailbox_ids)
                )
            ),
            api_keys=await count(
                sa.select(sa.func.count()).where(
                    api_keys.c.domain_id == domain_id, api_keys.c.revoked_at.is_(None)
                )
            ),
            webhooks=await count(
                sa.select(sa.func.count()).where(webhooks.c.domain_id == domain_id)
            ),
            queued=await count(
                sa.select(sa.func.count())
                .select_from(deliveries.join(outbound_messages))
                .where(
                    outbound_messages.c.domain_id == domain_id,
                    deliveries.c.status.in_(WAITING_STATUSES),
                )
            ),
        )

    async def mailbox_ids(self, domain_id: int) -> list[int]:
        query = sa.select(mailboxes.c.id).where(mailboxes.c.domain_id == domain_id)
        return list((await self._conn.execute(query)).scalars())

    async def outbound_blob_keys(self, domain_id: int) -> set[str]:
        query = (
            sa.select(outbound_messages.c.blob_key)
            .where(outbound_messages.c.domain_id == domain_id)
            .distinct()
        )
        return set((await self._conn.execute(query)).scalars())

    async def delete(self, domain_id: int) -> None:
        """The domain and, by ON DELETE CASCADE, its keys, mailboxes, queue, hooks and checks."""
        await self._conn.execute(domains.delete().where(domains.c.id == domain_id))

    async def save_checks(
        self,
        domain_id: int,
        checks: Sequence[RecordCheck],
        *,
        checked_at: datetime,
        next_check_at: datetime | None,
        failed_checks: int,
    ) -> None:
        """Replace the stored checks with these and plan the next background check."""
        await self._conn.execute(
            domain_record_checks.delete().where(domain_record_checks.c.domain_id == domain_id)
        )
        rows = [
            {
                "domain_id": domain_id,
                "type": check.record.type,
                "name": check.record.name,
                "value": check.record.value,
                "status": check.status,
                "found": list(check.found),
                "detail": check.detail,
                "checked_at": checked_at,
            }
            for check in checks
        ]
        for chunk in chunks(rows):
            await self._conn.execute(domain_record_checks.insert(), list(chunk))
        await self._conn.execute(
            domains.update()
            .where(domains.c.id == domain_id)
            .values(
                last_checked_at=checked_at,
                next_check_at=next_check_at,
                failed_checks=failed_checks,
            )
        )

    async def checks(self, domain_id: int) -> dict[tuple[str, str, str], RecordCheck]:
        """The stored checks by (type, name, value) of the record checked."""
        query = domain_record_checks.select().where(domain_record_checks.c.domain_id == domain_id)
        found = {}
        for row in await self._conn.execute(query):
            record = DnsRecord(row.type, row.name, row.value, purpose="")
            found[(row.type, row.name, row.value)] = RecordCheck(
                record, row.status, tuple(row.found), row.detail, row.checked_at
            )
        return found

    async def due_for_check(self, now: datetime, limit: int) -> list[str]:
        """Names of unverified domains whose background check is due, most overdue first."""
        query = (
            sa.select(domains.c.name)
            .where(
                domains.c.verified_at.is_(None),
                domains.c.next_check_at.is_not(None),
                domains.c.next_check_at <= now,
            )
            .order_by(domains.c.next_check_at)
            .limit(limit)
        )
        return list((await self._conn.execute(query)).scalars())

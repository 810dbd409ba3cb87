"""Aliases, catch-all mailboxes and alias domains: the addresses that are not mailboxes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailmark.core.model import Alias, Domain, Mailbox
from mailmark.storage.mailboxes import MAILBOX_COLUMNS, SqlMailboxes
from mailmark.storage.sql import Repository, chunks
from mailmark.storage.tables import (
    alias_domains,
    alias_targets,
    aliases,
    catch_alls,
    domains,
    mailboxes,
)


class SqlAliases(Repository):
    async def add(
        self, domain_id: int, local_part: str, created_at: datetime, mailbox_ids: Sequence[int]
    ) -> int:
        alias_id = await self._insert(
            aliases, {"domain_id": domain_id, "local_part": local_part, "created_at": created_at}
        )
        await self.set_targets(alias_id, mailbox_ids)
        return alias_id

    async def set_targets(self, alias_id: int, mailbox_ids: Sequence[int]) -> None:
        await self._conn.execute(alias_targets.delete().where(alias_targets.c.alias_id == alias_id))
        await self._conn.execute(
            alias_targets.insert(),
            [{"alias_id": alias_id, "mailbox_id": mailbox_id} for mailbox_id in mailbox_ids],
        )

    async def find(self, domain_id: int, local_part: str) -> Alias | None:
        query = aliases.select().where(
            aliases.c.domain_id == domain_id, aliases.c.local_part == local_part
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        return (await self._with_targets([row]))[0]

    async def list_for_domain(self, domain_id: int) -> list[Alias]:
        query = (
            aliases.select().where(aliases.c.domain_id == domain_id).order_by(aliases.c.local_part)
        )
        return await self._with_targets(list(await self._conn.execute(query)))

    async def delete(self, alias_id: int) -> None:
        await self._conn.execute(aliases.delete().where(aliases.c.id == alias_id))

    async def delete_empty_for_account(self, account_id: int) -> None:
        """Remove the account's aliases left without a mailbox to deliver to."""
        targeted = sa.select(alias_targets.c.alias_id).where(
            alias_targets.c.alias_id == aliases.c.id
        )
        account_domains = sa.select(domains.c.id).where(domains.c.account_id == account_id)
        await self._conn.execute(
            aliases.delete().where(aliases.c.domain_id.in_(account_domains), ~sa.exists(targeted))
        )

    async def catch_all(self, domain_id: int) -> Mailbox | None:
        query = sa.select(catch_alls.c.mailbox_id).where(catch_alls.c.domain_id == domain_id)
        mailbox_id = (await self._conn.execute(query)).scalar_one_or_none()
        if mailbox_id is None:
            return None
        return await SqlMailboxes(self._conn, self._dialect).get(int(mailbox_id))

    async def set_catch_all(self, domain_id: int, mailbox_id: int | None) -> None:
        await self._conn.execute(catch_alls.delete().where(catch_alls.c.domain_id == domain_id))
        if mailbox_id is not None:
            await self._conn.execute(
                catch_alls.insert().values(domain_id=domain_id, mailbox_id=mailbox_id)
            )

    async def add_alias_domain(self, domain_id: int, target_domain_id: int) -> None:
        await self._conn.execute(
            alias_domains.insert().values(domain_id=domain_id, target_domain_id=target_domain_id)
        )

    async def alias_domain_target(self, domain_id: int) -> Domain | None:
        """The domain this one is an alias of; None for a domain of its own."""
        query = (
            sa.select(*domains.c)
            .select_from(
                alias_domains.join(domains, domains.c.id == alias_domains.c.target_domain_id)
            )
            .where(alias_domains.c.domain_id == domain_id)
        )
        row = (await self._conn.execute(query)).first()
        return Domain(**row._mapping) if row else None

    async def alias_domain_names(self, target_domain_id: int) -> list[str]:
        query = (
            sa.select(domains.c.name)
            .select_from(alias_domains.join(domains, domains.c.id == alias_domains.c.domain_id))
            .where(alias_domains.c.target_domain_id == target_domain_id)
            .order_by(domains.c.name)
        )
        return list((await self._conn.execute(query)).scalars())

    async def alias_domain_targets(self, account_id: int) -> dict[int, str]:
        """The account's alias domains by id, each with the name of the domain it aliases."""
        target = domains.alias("target")
        query = (
            sa.select(alias_domains.c.domain_id, target.c.name)
            .select_from(
                alias_domains.join(target, target.c.id == alias_domains.c.target_domain_id)
            )
            .where(target.c.account_id == account_id)
        )
        return {int(row[0]): str(row[1]) for row in await self._conn.execute(query)}

    async def _with_targets(self, rows: Sequence[sa.Row[Any]]) -> list[Alias]:
        by_alias: dict[int, list[Mailbox]] = {int(row.id): [] for row in rows}
        for chunk in chunks(list(by_alias)):
            query = (
                sa.select(alias_targets.c.alias_id, *MAILBOX_COLUMNS)
                .select_from(
                    mailboxes.join(domains).join(
                        alias_targets, alias_targets.c.mailbox_id == mailboxes.c.id
                    )
                )
                .where(alias_targets.c.alias_id.in_(chunk))
                .order_by(mailboxes.c.local_part)
            )
            for row in await self._conn.execute(query):
                values = dict(row._mapping)
                by_alias[int(values.pop("alias_id"))].append(Mailbox(**values))
        domain_ids = {int(row.domain_id) for row in rows}
        names = {
            int(domain_id): str(name)
            for domain_id, name in await self._conn.execute(
                sa.select(domains.c.id, domains.c.name).where(domains.c.id.in_(domain_ids))
            )
        }
        return [
            Alias(
                int(row.domain_id),
                names[int(row.domain_id)],
                row.local_part,
                row.created_at,
                tuple(by_alias[int(row.id)]),
                int(row.id),
            )
            for row in rows
        ]

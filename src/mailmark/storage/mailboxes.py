"""Mailboxes, each read with its domain's name and account."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailmark.core.model import Mailbox
from mailmark.storage.sql import Repository, row_values
from mailmark.storage.tables import domains, mailbox_assignments, mailboxes, trusted_senders

MAILBOX_COLUMNS = (
    *(column for column in mailboxes.c if column.name != "last_uid_validity"),
    domains.c.name.label("domain_name"),
    domains.c.account_id.label("account_id"),
    domains.c.return_path_published,
)


def _mailbox_query() -> sa.Select[Any]:
    return sa.select(*MAILBOX_COLUMNS).select_from(mailboxes.join(domains))


# The same columns in the order of Mailbox's fields: listings build each record from its row's
# values by position, without a mapping per row (hundreds of rows per page).
_BY_NAME = {column.name: column for column in MAILBOX_COLUMNS}
_POSITIONAL_COLUMNS = tuple(_BY_NAME[field.name] for field in fields(Mailbox))


class SqlMailboxes(Repository):
    async def add(self, mailbox: Mailbox) -> Mailbox:
        values = row_values(mailbox)
        del values["domain_name"], values["account_id"], values["return_path_published"]
        new_id = await self._insert(mailboxes, values)
        return Mailbox(**{**asdict(mailbox), "id": new_id})

    async def get(self, mailbox_id: int) -> Mailbox | None:
        row = (
            await self._conn.execute(_mailbox_query().where(mailboxes.c.id == mailbox_id))
        ).first()
        return Mailbox(**row._mapping) if row else None

    async def find(self, domain_name: str, local_part: str) -> Mailbox | None:
        query = _mailbox_query().where(
            domains.c.name == domain_name, mailboxes.c.local_part == local_part
        )
        row = (await self._conn.execute(query)).first()
        return Mailbox(**row._mapping) if row else None

    async def list_for_domain(self, domain_id: int) -> list[Mailbox]:
        query = _mailbox_query().where(mailboxes.c.domain_id == domain_id).order_by(mailboxes.c.id)
        return [Mailbox(**row._mapping) for row in await self._conn.execute(query)]

    async def first(self) -> Mailbox | None:
        row = (await self._conn.execute(_mailbox_query().order_by(mailboxes.c.id).limit(1))).first()
        return Mailbox(**row._mapping) if row else None

    async def count_for_account(self, account_id: int) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(mailboxes.join(domains))
            .where(domains.c.account_id == account_id)
        )
        return int((await self._conn.execute(query)).scalar_one())

    async def delete(self, mailbox_id: int) -> None:
        await self._conn.execute(mailboxes.delete().where(mailboxes.c.id == mailbox_id))

    async def list_for_account(
        self, account_id: int, *, domain_id: int | None = None, user_id: int | None = None
    ) -> list[Mailbox]:
        """The account's mailboxes by address; of one domain, or assigned to one user."""
        query = (
            sa.select(*_POSITIONAL_COLUMNS)
            .select_from(mailboxes.join(domains))
            .where(domains.c.account_id == account_id)
        )
        if domain_id is not None:
            query = query.where(mailboxes.c.domain_id == domain_id)
        if user_id is not None:
            assigned = sa.select(mailbox_assignments.c.mailbox_id).where(
                mailbox_assignments.c.user_id == user_id
            )
            query = query.where(mailboxes.c.id.in_(assigned))
        query = query.order_by(domains.c.name, mailboxes.c.local_part)
        return [Mailbox(*row) for row in await self._conn.execute(query)]

    async def assignments_for_account(
        self, account_id: int, *, domain_id: int | None = None
    ) -> dict[int, list[int]]:
        """The users each of the account's mailboxes (of one domain) is assigned to; mailboxes
        assigned to nobody are left out."""
        query = (
            sa.select(mailbox_assignments.c.mailbox_id, mailbox_assignments.c.user_id)
            .select_from(mailbox_assignments.join(mailboxes).join(domains))
            .where(domains.c.account_id == account_id)
            .order_by(mailbox_assignments.c.user_id)
        )
        if domain_id is not None:
            query = query.where(mailboxes.c.domain_id == domain_id)
        found: dict[int, list[int]] = {}
        for mailbox_id, user_id in await self._conn.execute(query):
            found.setdefault(int(mailbox_id), []).append(int(user_id))
        return found

    async def allocate_uid_validity(self, mailbox_id: int, floor: int) -> int:
        query = self._dialect.for_update(
            sa.select(mailboxes.c.last_uid_validity).where(mailboxes.c.id == mailbox_id)
        )
        last = int((await self._conn.execute(query)).scalar_one())
        value = max(floor, last + 1)
        await self._conn.execute(
            mailboxes.update().where(mailboxes.c.id == mailbox_id).values(last_uid_validity=value)
        )
        return value

    async def replace_password_hash(self, mailbox_id: int, old: str, new: str) -> bool:
        # Only while the hash is still `old`: a password changed meanwhile is never overwritten.
        result = await self._conn.execute(
            mailboxes.update()
            .where(mailboxes.c.id == mailbox_id, mailboxes.c.password_hash == old)
            .values(password_hash=new)
        )
        return bool(result.rowcount)

    async def update(self, mailbox_id: int, **values: str | bool | None) -> None:
        """Set some of display_name, signature, signature_format, password_hash,
        track_opens, save_sent_copy."""
        await self._conn.execute(
            mailboxes.update().where(mailboxes.c.id == mailbox_id).values(**values)
        )

    async def trusted_senders(self, mailbox_id: int, addresses: Sequence[str]) -> set[str]:
        if not addresses:
            return set()
        query = sa.select(trusted_senders.c.address).where(
            trusted_senders.c.mailbox_id == mailbox_id,
            trusted_senders.c.address.in_(list(addresses)),
        )
        return {str(a) for a in (await self._conn.execute(query)).scalars()}

    async def trust_sender(self, mailbox_id: int, address: str, at: datetime) -> None:
        await self._conn.execute(
            self._dialect.insert_or_ignore(trusted_senders).values(
                mailbox_id=mailbox_id, address=address, created_at=at
            )
        )

"""Accounts: who owns domains, and the row their quota checks lock."""

from __future__ import annotations

from dataclasses import asdict

from mailmark.core.model import Account
from mailmark.storage.sql import Repository, row_values
from mailmark.storage.tables import accounts


class SqlAccounts(Repository):
    async def add(self, account: Account) -> Account:
        new_id = await self._insert(accounts, row_values(account))
        return Account(**{**asdict(account), "id": new_id})

    async def get(self, account_id: int) -> Account | None:
        row = (
            await self._conn.execute(accounts.select().where(accounts.c.id == account_id))
        ).first()
        return Account(**row._mapping) if row else None

    async def get_by_name(self, name: str) -> Account | None:
        row = (await self._conn.execute(accounts.select().where(accounts.c.name == name))).first()
        return Account(**row._mapping) if row else None

    async def lock(self, account_id: int) -> None:
        await self._dialect.lock_row(self._conn, accounts, account_id)

    async def set_name(self, account_id: int, name: str) -> None:
        await self._conn.execute(
            accounts.update().where(accounts.c.id == account_id).values(name=name)
        )

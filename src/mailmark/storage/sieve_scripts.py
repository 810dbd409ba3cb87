"""A mailbox's Sieve scripts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailmark.core.sieve.model import ActiveScriptVersion, SieveScript
from mailmark.storage.sql import Repository
from mailmark.storage.tables import sieve_scripts

_columns = sieve_scripts.c


def _script(row: Any) -> SieveScript:
    return SieveScript(
        id=int(row.id),
        mailbox_id=int(row.mailbox_id),
        name=row.name,
        content=row.content,
        active=bool(row.active),
        revision=int(row.revision),
        updated_at=row.updated_at,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
    )


class SqlSieveScripts(Repository):
    async def list(self, mailbox_id: int) -> list[SieveScript]:
        query = (
            sa.select(sieve_scripts)
            .where(_columns.mailbox_id == mailbox_id)
            .order_by(_columns.name)
        )
        return [_script(row) for row in await self._conn.execute(query)]

    async def get(self, mailbox_id: int, name: str) -> SieveScript | None:
        query = sa.select(sieve_scripts).where(
            _columns.mailbox_id == mailbox_id, _columns.name == name
        )
        row = (await self._conn.execute(query)).first()
        return _script(row) if row is not None else None

    async def active(self, mailbox_id: int) -> SieveScript | None:
        query = sa.select(sieve_scripts).where(
            _columns.mailbox_id == mailbox_id, _columns.active.is_(True)
        )
        row = (await self._conn.execute(query)).first()
        return _script(row) if row is not None else None

    async def active_version(self, mailbox_id: int) -> ActiveScriptVersion | None:
        query = sa.select(_columns.id, _columns.revision).where(
            _columns.mailbox_id == mailbox_id, _columns.active.is_(True)
        )
        row = (await self._conn.execute(query)).first()
        return ActiveScriptVersion(int(row.id), int(row.revision)) if row is not None else None

    async def put(self, mailbox_id: int, name: str, content: str, at: datetime) -> SieveScript:
        changes = {
            "content": content,
            "updated_at": at,
            "last_error": None,
            "last_error_at": None,
            "revision": _columns.revision + 1,
        }
        updated = await self._conn.execute(
            sa.update(sieve_scripts)
            .where(_columns.mailbox_id == mailbox_id, _columns.name == name)
            .values(**changes)
        )
        if not updated.rowcount:
            await self._conn.execute(
                sa.insert(sieve_scripts).values(
                    mailbox_id=mailbox_id,
                    name=name,
                    content=content,
                    active=False,
                    revision=1,
                    updated_at=at,
                )
            )
        stored = await self.get(mailbox_id, name)
        assert stored is not None
        return stored

    async def activate(self, mailbox_id: int, name: str | None, at: datetime) -> None:
        await self._conn.execute(
            sa.update(sieve_scripts)
            .where(_columns.mailbox_id == mailbox_id, _columns.active.is_(True))
            .values(active=False, revision=_columns.revision + 1, updated_at=at)
        )
        if name is not None:
            await self._conn.execute(
                sa.update(sieve_scripts)
                .where(_columns.mailbox_id == mailbox_id, _columns.name == name)
                .values(active=True, revision=_columns.revision + 1, updated_at=at)
            )

    async def rename(self, mailbox_id: int, old: str, new: str, at: datetime) -> None:
        await self._conn.execute(
            sa.update(sieve_scripts)
            .where(_columns.mailbox_id == mailbox_id, _columns.name == old)
            .values(name=new, updated_at=at)
        )

    async def delete(self, mailbox_id: int, name: str) -> None:
        await self._conn.execute(
            sa.delete(sieve_scripts).where(_columns.mailbox_id == mailbox_id, _columns.name == name)
        )

    async def record_error(self, script_id: int, revision: int, error: str, at: datetime) -> None:
        await self._conn.execute(
            sa.update(sieve_scripts)
            .where(_columns.id == script_id, _columns.revision == revision)
            .values(last_error=error, last_error_at=at)
        )

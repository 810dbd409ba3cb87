"""Folders of a mailbox, and the allocation of their UIDs."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from mailmark.core.model import Folder
from mailmark.storage.sql import (
    FOLDER_BY_NAME,
    Repository,
    add_subscriptions,
    chunks,
    folder_from_row,
    folder_query,
    row_values,
)
from mailmark.storage.tables import folders


class SqlFolders(Repository):
    async def add_many(self, new_folders: Sequence[Folder]) -> None:
        """Insert the folders; the names of those marked `subscribed` join the subscriptions."""
        rows = [row_values(folder) for folder in new_folders]
        for row in rows:
            row.pop("subscribed")
        await self._conn.execute(folders.insert(), rows)
        subscribed: dict[int, list[str]] = {}
        for folder in new_folders:
            if folder.subscribed:
                subscribed.setdefault(folder.mailbox_id, []).append(folder.name)
        for mailbox_id, names in subscribed.items():
            await add_subscriptions(self._conn, mailbox_id, names)

    async def list_for_mailbox(self, mailbox_id: int) -> list[Folder]:
        query = folder_query().where(folders.c.mailbox_id == mailbox_id).order_by(folders.c.id)
        return [Folder(**row._mapping) for row in await self._conn.execute(query)]

    async def get_by_name(self, mailbox_id: int, name: str) -> Folder | None:
        rows = await self._dialect.all_rows(
            self._conn, FOLDER_BY_NAME, {"mailbox_id": mailbox_id, "name": name}
        )
        return folder_from_row(rows[0]) if rows else None

    async def find_many(self, wanted: Sequence[tuple[int, str]]) -> dict[tuple[int, str], Folder]:
        pairs = sorted(set(wanted))
        found: dict[tuple[int, str], Folder] = {}
        for chunk in chunks(pairs):
            query = folder_query().where(
                sa.tuple_(folders.c.mailbox_id, folders.c.name).in_(list(chunk))
            )
            for row in await self._conn.execute(query):
                folder = Folder(**row._mapping)
                found[(folder.mailbox_id, folder.name)] = folder
        return found

    async def allocate_uids(self, folder_id: int, count: int) -> tuple[int, int]:
        # One atomic UPDATE ... RETURNING: it row-locks the folder on PostgreSQL, so concurrent
        # nodes can never hand out the same UID.
        query = (
            folders.update()
            .where(folders.c.id == folder_id)
            .values(
                uid_next=folders.c.uid_next + count,
                highest_modseq=folders.c.highest_modseq + count,
            )
            .returning(folders.c.uid_next, folders.c.highest_modseq)
        )
        uid_next, highest_modseq = (await self._conn.execute(query)).one()
        return int(uid_next) - count, int(highest_modseq) - count + 1

"""Contacts, contact lists (and segments), list memberships and CSV import progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from mailmark.core.contacts import (
    Contact,
    ContactFilter,
    ContactImport,
    ContactList,
    ContactStatus,
    ImportStatus,
    OnDuplicate,
    RowError,
    segment_filter,
)
from mailmark.storage.dialect import Dialect
from mailmark.storage.sql import Repository, chunks
from mailmark.storage.tables import (
    contact_imports,
    contact_list_members,
    contact_lists,
    contacts,
    domains,
    suppressions,
)


def _suppressed() -> sa.ColumnElement[bool]:
    """Whether the contact's address is on the suppression list of any of its account's
    domains (suppressed addresses are stored lower-cased)."""
    return (
        sa.exists()
        .where(
            suppressions.c.address == contacts.c.email_key,
            suppressions.c.domain_id == domains.c.id,
            domains.c.account_id == contacts.c.account_id,
        )
        .label("suppressed")
    )


def _tags_text(tags: Sequence[str]) -> str:
    return "," + ",".join(tags) + "," if tags else ""


def _row(contact: Contact) -> dict[str, Any]:
    return {
        "account_id": contact.account_id,
        "email": contact.email,
        "email_key": contact.email_key,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "company": contact.company,
        "fields": contact.fields,
        "tags": _tags_text(contact.tags),
        "status": contact.status.value,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    }


def _contact(row: Any, list_ids: Sequence[int] = ()) -> Contact:
    return Contact(
        account_id=row.account_id,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        company=row.company,
        fields=dict(row.fields),
        tags=tuple(tag for tag in row.tags.split(",") if tag),
        status=ContactStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        id=row.id,
        suppressed=bool(getattr(row, "suppressed", False)),
        list_ids=tuple(list_ids),
    )


def contact_conditions(
    dialect: Dialect, account_id: int, where: ContactFilter
) -> list[sa.ColumnElement[bool]]:
    """The SQL conditions of a contact filter over `contacts` (a campaign audience uses them too)."""
    clauses: list[sa.ColumnElement[bool]] = [contacts.c.account_id == account_id]
    if where.status is not None:
        clauses.append(contacts.c.status == where.status.value)
    if where.tag is not None:
        clauses.append(contacts.c.tags.contains(f",{where.tag},", autoescape=True))
    if where.field is not None:
        clauses.append(contacts.c.fields[where.field.name].as_string() == where.field.value)
    if where.suppressed is not None:
        found = _suppressed()
        clauses.append(found if where.suppressed else sa.not_(found))
    if where.list_id is not None:
        clauses.append(
            sa.exists().where(
                contact_list_members.c.list_id == where.list_id,
                contact_list_members.c.contact_id == contacts.c.id,
            )
        )
    if where.search is not None:
        # The search is lower-cased already.
        clauses.append(
            sa.or_(
                *(
                    dialect.contains_lowered(column, where.search)
                    for column in (
                        contacts.c.email_key,
                        contacts.c.first_name,
                        contacts.c.last_name,
                        contacts.c.company,
                    )
                )
            )
        )
    return clauses


class SqlContacts(Repository):
    async def add(self, contact: Contact) -> Contact:
        new_id = await self._insert(contacts, _row(contact))
        return Contact(**{**contact.__dict__, "id": new_id})

    async def get(self, account_id: int, contact_id: int) -> Contact | None:
        query = sa.select(*contacts.c, _suppressed()).where(
            contacts.c.account_id == account_id, contacts.c.id == contact_id
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        memberships = await self._memberships([row.id])
        return _contact(row, memberships.get(row.id, ()))

    async def _memberships(self, contact_ids: Sequence[int]) -> dict[int, list[int]]:
        """The static lists each of these contacts is on, by contact id."""
        found: dict[int, list[int]] = {}
        for chunk in chunks(sorted(set(contact_ids))):
            query = (
                sa.select(contact_list_members.c.contact_id, contact_list_members.c.list_id)
                .where(contact_list_members.c.contact_id.in_(chunk))
                .order_by(contact_list_members.c.list_id)
            )
            for contact_id, list_id in await self._conn.execute(query):
                found.setdefault(contact_id, []).append(list_id)
        return found

    async def find_by_keys(self, account_id: int, keys: Sequence[str]) -> dict[str, Contact]:
        found: dict[str, Contact] = {}
        for chunk in chunks(sorted(set(keys))):
            query = contacts.select().where(
                contacts.c.account_id == account_id, contacts.c.email_key.in_(chunk)
            )
            for row in await self._conn.execute(query):
                found[row.email_key] = _contact(row)
        return found

    async def ids_for_keys(self, account_id: int, keys: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for chunk in chunks(sorted(set(keys))):
            query = sa.select(contacts.c.id).where(
                contacts.c.account_id == account_id, contacts.c.email_key.in_(chunk)
            )
            ids.extend((await self._conn.execute(query)).scalars())
        return ids

    async def insert_many(self, new: Sequence[Contact]) -> None:
        # Another import of the same account may have added an address since it was looked up:
        # that row stays as the other import left it.
        if new:
            await self._conn.execute(
                self._dialect.insert_or_ignore(contacts), [_row(c) for c in new]
            )

    async def update(self, contact: Contact) -> None:
        await self.update_many([contact])

    async def update_many(self, changed: Sequence[Contact]) -> None:
        if not changed:
            return
        statement = (
            contacts.update()
            .where(contacts.c.id == sa.bindparam("contact_id"))
            .values(
                {
                    name: sa.bindparam(f"new_{name}")
                    for name in _row(changed[0])
                    if name not in ("account_id", "created_at")
                }
            )
        )
        rows = []
        for contact in changed:
            values = {
                f"new_{k}": v
                for k, v in _row(contact).items()
                if k not in ("account_id", "created_at")
            }
            rows.append({"contact_id": contact.id, **values})
        await self._conn.execute(statement, rows)

    async def delete(self, account_id: int, contact_id: int) -> bool:
        result = await self._conn.execute(
            contacts.delete().where(
                contacts.c.account_id == account_id, contacts.c.id == contact_id
            )
        )
        return bool(result.rowcount)

    async def page(
        self, account_id: int, where: ContactFilter, after_id: int | None, limit: int
    ) -> list[Contact]:
        query = (
            sa.select(*contacts.c, _suppressed())
            .where(*contact_conditions(self._dialect, account_id, where))
            .order_by(contacts.c.id)
            .limit(limit)
        )
        if after_id is not None:
            query = query.where(contacts.c.id > after_id)
        rows = (await self._conn.execute(query)).all()
        memberships = await self._memberships([row.id for row in rows])
        return [_contact(row, memberships.get(row.id, ())) for row in rows]

    async def field_names(self, account_id: int, where: ContactFilter, limit: int) -> list[str]:
        """The custom field names the matching contacts use, sorted, at most `limit`."""
        names: set[str] = set()
        after = 0
        while len(names) < limit:
            query = (
                sa.select(contacts.c.id, contacts.c.fields)
                .where(*contact_conditions(self._dialect, account_id, where), contacts.c.id > after)
                .order_by(contacts.c.id)
                .limit(5000)
            )
            rows = (await self._conn.execute(query)).all()
            if not rows:
                break
            for row in rows:
                names.update(row.fields)
            after = rows[-1].id
        return sorted(names)[:limit]

    async def add_lists(self, account_id: int, contact_list: ContactList) -> ContactList:
        new_id = await self._insert(
            contact_lists,
            {
                "account_id": account_id,
                "name": contact_list.name,
                "filter": _saved(contact_list),
                "created_at": contact_list.created_at,
                "updated_at": contact_list.updated_at,
            },
        )
        found = await self.get_list(account_id, new_id)
        assert found is not None
        return found

    async def get_list(self, account_id: int, list_id: int) -> ContactList | None:
        found = await self._lists(
            sa.and_(contact_lists.c.account_id == account_id, contact_lists.c.id == list_id)
        )
        return found[0] if found else None

    async def list_exists(self, account_id: int, list_id: int) -> bool:
        query = sa.select(contact_lists.c.id).where(
            contact_lists.c.account_id == account_id, contact_lists.c.id == list_id
        )
        return (await self._conn.execute(query)).first() is not None

    async def find_list(self, account_id: int, name: str) -> ContactList | None:
        found = await self._lists(
            sa.and_(contact_lists.c.account_id == account_id, contact_lists.c.name == name)
        )
        return found[0] if found else None

    async def all_lists(self, account_id: int) -> list[ContactList]:
        return await self._lists(contact_lists.c.account_id == account_id)

    async def update_list(self, contact_list: ContactList) -> None:
        await self._conn.execute(
            contact_lists.update()
            .where(
                contact_lists.c.id == contact_list.id,
                contact_lists.c.account_id == contact_list.account_id,
            )
            .values(
                name=contact_list.name,
                filter=_saved(contact_list),
                updated_at=contact_list.updated_at,
            )
        )

    async def delete_list(self, account_id: int, list_id: int) -> bool:
        result = await self._conn.execute(
            contact_lists.delete().where(
                contact_lists.c.account_id == account_id, contact_lists.c.id == list_id
            )
        )
        return bool(result.rowcount)

    async def add_members(self, list_id: int, contact_ids: Sequence[int]) -> int:
        if not contact_ids:
            return 0
        result = await self._conn.execute(
            self._dialect.insert_or_ignore(contact_list_members),
            [{"list_id": list_id, "contact_id": c} for c in contact_ids],
        )
        return int(result.rowcount or 0)

    async def remove_member(self, list_id: int, contact_id: int) -> bool:
        result = await self._conn.execute(
            contact_list_members.delete().where(
                contact_list_members.c.list_id == list_id,
                contact_list_members.c.contact_id == contact_id,
            )
        )
        return bool(result.rowcount)

    async def _lists(self, where: sa.ColumnElement[bool]) -> list[ContactList]:
        size = (
            sa.select(sa.func.count())
            .where(contact_list_members.c.list_id == contact_lists.c.id)
            .scalar_subquery()
        )
        query = sa.select(*contact_lists.c, size.label("size")).where(where)
        rows = (await self._conn.execute(query.order_by(contact_lists.c.id))).all()
        found = []
        for row in rows:
            segment = segment_filter(row.filter)
            total = row.size
            if segment is not None:
                count = sa.select(sa.func.count()).select_from(contacts)
                total = await self._conn.scalar(
                    count.where(*contact_conditions(self._dialect, row.account_id, segment))
                )
            found.append(
                ContactList(
                    row.account_id,
                    row.name,
                    row.created_at,
                    row.updated_at,
                    segment,
                    row.id,
                    int(total or 0),
                )
            )
        return found

    async def add_import(self, job: ContactImport) -> ContactImport:
        new_id = await self._insert(contact_imports, _import_row(job))
        return ContactImport(**{**job.__dict__, "id": new_id})

    async def get_import(self, account_id: int, import_id: int) -> ContactImport | None:
        query = contact_imports.select().where(
            contact_imports.c.account_id == account_id, contact_imports.c.id == import_id
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        return ContactImport(
            account_id=row.account_id,
            on_duplicate=OnDuplicate(row.on_duplicate),
            mapping=dict(row.mapping),
            total_bytes=row.total_bytes,
            created_at=row.created_at,
            updated_at=row.updated_at,
            list_id=row.list_id,
            status=ImportStatus(row.status),
            bytes_read=row.bytes_read,
            rows_done=row.rows_done,
            created=row.created,
            updated=row.updated,
            skipped=row.skipped,
            failed=row.failed,
            peak_rows_held=row.peak_rows_held,
            errors=tuple(RowError(e["row"], e["reason"]) for e in row.errors),
            failure=row.failure,
            id=row.id,
        )

    async def update_import(self, job: ContactImport) -> None:
        await self._conn.execute(
            contact_imports.update()
            .where(contact_imports.c.id == job.id)
            .values(**_import_row(job))
        )


def _saved(contact_list: ContactList) -> dict[str, Any] | None:
    return contact_list.segment.as_json() if contact_list.segment is not None else None


def _import_row(job: ContactImport) -> dict[str, Any]:
    return {
        "account_id": job.account_id,
        "status": job.status.value,
        "on_duplicate": job.on_duplicate.value,
        "mapping": job.mapping,
        "list_id": job.list_id,
        "total_bytes": job.total_bytes,
        "bytes_read": job.bytes_read,
        "rows_done": job.rows_done,
        "created": job.created,
        "updated": job.updated,
        "skipped": job.skipped,
        "failed": job.failed,
        "peak_rows_held": job.peak_rows_held,
        "errors": [{"row": e.row, "reason": e.reason} for e in job.errors],
        "failure": job.failure,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }

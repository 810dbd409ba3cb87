"""Repositories over one SQL connection, and the unit of work that gives them one transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mailmark.core.model import (
    Account,
    DeliveryOutcome,
    DkimKey,
    Domain,
    Folder,
    LeasedDelivery,
    Mailbox,
    NewDelivery,
    NewMessage,
    NewPlacement,
    OutboundMessage,
    QueueEntry,
    Suppression,
    User,
)
from mailmark.core.ports import NewEvent
from mailmark.storage.api_repositories import (
    SqlApiKeys,
    SqlIdempotencyKeys,
    SqlSenderGroups,
    SqlSentEmails,
)
from mailmark.storage.db import READ_ONLY_OPTION
from mailmark.storage.mailstore_repo import SqlMailStore, add_fulltext
from mailmark.storage.tables import (
    accounts,
    deliveries,
    dkim_keys,
    domains,
    events,
    folders,
    mailboxes,
    messages,
    outbound_messages,
    placements,
    suppressions,
    users,
)
from mailmark.storage.webhook_repository import SqlWebhooks, queue_webhook_deliveries

T = TypeVar("T")
# Stay well under SQLite's limit on bound parameters per statement.
CHUNK = 500


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _fields(record: Any) -> dict[str, Any]:
    """A dataclass's fields, shallow: `dataclasses.asdict` deep-copies every value, which costs
    more than the insert on the delivery path."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _message_row(message: NewMessage) -> dict[str, Any]:
    meta = message.meta
    return {
        "blob_key": message.blob_key,
        "size": message.size,
        "trace_prefix": message.trace_prefix,
        "received_at": message.received_at,
        "mail_from": message.mail_from[:320],
        "message_id": meta.message_id,
        "subject": meta.subject,
        "subject_key": meta.subject_key[:255],
        "from_addr": meta.from_addr[:320] if meta.from_addr else None,
        "to_addrs": list(meta.to_addrs),
        "cc_addrs": list(meta.cc_addrs),
        "date": meta.date,
        "in_reply_to": meta.in_reply_to,
        "references": list(meta.references),
        "snippet": meta.snippet[:255],
        "attachments": [_fields(a) for a in meta.attachments],
        "defects": list(meta.defects),
        "envelope": message.index.envelope if message.index else None,
        "bodystructure": message.index.bodystructure if message.index else None,
        "body": message.index.body if message.index else None,
        "sent_day": message.index.sent_day if message.index else None,
    }


async def _insert_many(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert the rows; their ids, in the same order, with one statement for the batch."""
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        # SQLite runs INSERT … RETURNING in parameter order one row at a time. Its write
        # transactions here are BEGIN IMMEDIATE (nobody else inserts meanwhile), so the next ids
        # are known: max(id) + 1 onwards, as SQLite itself would choose them.
        last = (await conn.execute(sa.select(sa.func.max(table.c.id)))).scalar_one_or_none() or 0
        ids = list(range(int(last) + 1, int(last) + 1 + len(rows)))
        await conn.execute(table.insert(), [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
        return ids
    # PostgreSQL: insertmanyvalues, one statement per batch, ids returned in parameter order.
    query = table.insert().returning(table.c.id, sort_by_parameter_order=True)
    return [int(i) for i in (await conn.execute(query, rows)).scalars()]


def _blob_lock_id(blob_key: str) -> int:
    """A signed 64-bit advisory-lock id from the blob's SHA-256 hex key."""
    return int(blob_key[:16], 16) - (1 << 63)


def _row_values(record: Any) -> dict[str, Any]:
    values = asdict(record)
    values.pop("id")
    return values


class _Repository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _insert(self, table: sa.Table, values: dict[str, Any]) -> int:
        result = await self._conn.execute(table.insert().values(**values).returning(table.c.id))
        return int(result.scalar_one())


class SqlAccounts(_Repository):
    async def add(self, account: Account) -> Account:
        new_id = await self._insert(accounts, _row_values(account))
        return Account(**{**asdict(account), "id": new_id})

    async def get(self, account_id: int) -> Account | None:
        row = (await self._conn.execute(accounts.select().where(accounts.c.id == account_id))).first()
        return Account(**row._mapping) if row else None

    async def get_by_name(self, name: str) -> Account | None:
        row = (await self._conn.execute(accounts.select().where(accounts.c.name == name))).first()
        return Account(**row._mapping) if row else None

    async def lock(self, account_id: int) -> None:
        # SQLite write transactions begin IMMEDIATE and already exclude each other.
        if self._conn.dialect.name == "postgresql":
            await self._conn.execute(
                sa.select(accounts.c.id).where(accounts.c.id == account_id).with_for_update()
            )


class SqlUsers(_Repository):
    async def add(self, user: User) -> User:
        new_id = await self._insert(users, _row_values(user))
        return User(**{**asdict(user), "id": new_id})

    async def get_by_email(self, email: str) -> User | None:
        row = (await self._conn.execute(users.select().where(users.c.email == email))).first()
        return User(**row._mapping) if row else None


class SqlDomains(_Repository):
    async def add(self, domain: Domain) -> Domain:
        new_id = await self._insert(domains, _row_values(domain))
        return Domain(**{**asdict(domain), "id": new_id})

    async def get_by_name(self, name: str) -> Domain | None:
        row = (await self._conn.execute(domains.select().where(domains.c.name == name))).first()
        return Domain(**row._mapping) if row else None

    async def count_for_account(self, account_id: int) -> int:
        query = sa.select(sa.func.count()).select_from(domains).where(domains.c.account_id == account_id)
        return int((await self._conn.execute(query)).scalar_one())

    async def set_verified(self, domain_id: int, verified_at: datetime | None) -> None:
        await self._conn.execute(
            domains.update().where(domains.c.id == domain_id).values(verified_at=verified_at)
        )

    async def add_dkim_key(self, key: DkimKey) -> DkimKey:
        new_id = await self._insert(dkim_keys, _row_values(key))
        return DkimKey(**{**asdict(key), "id": new_id})

    async def dkim_keys(self, domain_id: int, states: Sequence[str]) -> list[DkimKey]:
        query = (
            dkim_keys.select()
            .where(dkim_keys.c.domain_id == domain_id, dkim_keys.c.state.in_(states))
            .order_by(dkim_keys.c.id)
        )
        return [DkimKey(**row._mapping) for row in await self._conn.execute(query)]

    async def set_dkim_state(self, key_id: int, state: str) -> None:
        await self._conn.execute(dkim_keys.update().where(dkim_keys.c.id == key_id).values(state=state))


_MAILBOX_COLUMNS = (
    *mailboxes.c,
    domains.c.name.label("domain_name"),
    domains.c.account_id.label("account_id"),
)


def _mailbox_query() -> sa.Select[Any]:
    return sa.select(*_MAILBOX_COLUMNS).select_from(mailboxes.join(domains))


class SqlMailboxes(_Repository):
    async def add(self, mailbox: Mailbox) -> Mailbox:
        values = _row_values(mailbox)
        del values["domain_name"], values["account_id"]
        new_id = await self._insert(mailboxes, values)
        return Mailbox(**{**asdict(mailbox), "id": new_id})

    async def get(self, mailbox_id: int) -> Mailbox | None:
        row = (await self._conn.execute(_mailbox_query().where(mailboxes.c.id == mailbox_id))).first()
        return Mailbox(**row._mapping) if row else None

    async def find(self, domain_name: str, local_part: str) -> Mailbox | None:
        query = _mailbox_query().where(domains.c.name == domain_name, mailboxes.c.local_part == local_part)
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


class SqlFolders(_Repository):
    async def add_many(self, new_folders: Sequence[Folder]) -> None:
        await self._conn.execute(folders.insert(), [_row_values(folder) for folder in new_folders])

    async def list_for_mailbox(self, mailbox_id: int) -> list[Folder]:
        query = folders.select().where(folders.c.mailbox_id == mailbox_id).order_by(folders.c.id)
        return [Folder(**row._mapping) for row in await self._conn.execute(query)]

    async def get_by_name(self, mailbox_id: int, name: str) -> Folder | None:
        query = folders.select().where(folders.c.mailbox_id == mailbox_id, folders.c.name == name)
        row = (await self._conn.execute(query)).first()
        return Folder(**row._mapping) if row else None

    async def find_many(self, wanted: Sequence[tuple[int, str]]) -> dict[tuple[int, str], Folder]:
        pairs = sorted(set(wanted))
        found: dict[tuple[int, str], Folder] = {}
        for chunk in _chunks(pairs):
            query = folders.select().where(
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


class SqlMessages(_Repository):
    async def add_many(self, new_messages: Sequence[NewMessage]) -> list[int]:
        ids = await _insert_many(self._conn, messages, [_message_row(m) for m in new_messages])
        await add_fulltext(
            self._conn,
            [
                (message_id, message.index.header_text, message.index.body_text)
                for message_id, message in zip(ids, new_messages, strict=True)
                if message.index is not None
            ],
        )
        return ids

    async def add_placements(self, new_placements: Sequence[NewPlacement]) -> None:
        rows = []
        for placement in new_placements:
            values = _fields(placement)
            values["flags"] = list(placement.flags)
            rows.append(values)
        await self._conn.execute(placements.insert(), rows)

    async def thread_of_references(self, mailbox_id: int, message_ids: Sequence[str]) -> str | None:
        query = (
            sa.select(placements.c.thread_id)
            .select_from(placements.join(messages))
            .where(placements.c.mailbox_id == mailbox_id, messages.c.message_id.in_(message_ids))
            .order_by(placements.c.id.desc())
            .limit(1)
        )
        return (await self._conn.execute(query)).scalar_one_or_none()

    async def thread_of_subject(self, mailbox_id: int, subject_key: str, since: datetime) -> str | None:
        query = (
            sa.select(placements.c.thread_id)
            .select_from(placements.join(messages))
            .where(
                placements.c.mailbox_id == mailbox_id,
                messages.c.subject_key == subject_key,
                placements.c.internal_date >= since,
            )
            .order_by(placements.c.id.desc())
            .limit(1)
        )
        return (await self._conn.execute(query)).scalar_one_or_none()

    async def delete_mailbox_contents(self, mailbox_id: int) -> list[str]:
        in_mailbox = sa.select(placements.c.message_id).where(placements.c.mailbox_id == mailbox_id)
        candidates = (
            await self._conn.execute(
                sa.select(messages.c.id, messages.c.blob_key).where(messages.c.id.in_(in_mailbox))
            )
        ).all()
        await self._conn.execute(placements.delete().where(placements.c.mailbox_id == mailbox_id))
        still_placed = sa.exists().where(placements.c.message_id == messages.c.id)
        for chunk in _chunks([row.id for row in candidates]):
            await self._conn.execute(messages.delete().where(messages.c.id.in_(chunk), ~still_placed))
        keys = sorted({row.blob_key for row in candidates})
        referenced: set[str] = set()
        for chunk in _chunks(keys):
            # A Sent copy shares its blob with the outbound message the queue still delivers.
            for table in (messages, outbound_messages):
                query = sa.select(table.c.blob_key).where(table.c.blob_key.in_(chunk)).distinct()
                referenced.update((await self._conn.execute(query)).scalars())
        return [key for key in keys if key not in referenced]

    async def lock_blob(self, blob_key: str) -> None:
        # SQLite transactions here all begin IMMEDIATE and so already exclude each other; on
        # PostgreSQL, an advisory lock on the key, held until commit, does the same per blob.
        if self._conn.dialect.name == "postgresql":
            await self._conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _blob_lock_id(blob_key)}
            )

    async def blob_referenced(self, blob_key: str) -> bool:
        for table in (messages, outbound_messages):
            query = sa.select(table.c.id).where(table.c.blob_key == blob_key).limit(1)
            if (await self._conn.execute(query)).first() is not None:
                return True
        return False


_EVENT_COLUMNS = ("account_id", "type", "payload", "created_at", "outbound_id")


class SqlEvents(_Repository):
    async def add_many(self, new_events: Sequence[NewEvent]) -> None:
        if not new_events:
            return
        rows = [{name: getattr(event, name) for name in _EVENT_COLUMNS} for event in new_events]
        ids = await _insert_many(self._conn, events, rows)
        # The webhook outbox is written with the events, in their transaction.
        await queue_webhook_deliveries(self._conn, new_events, ids)


class SqlOutbound(_Repository):
    async def add(self, message: OutboundMessage) -> OutboundMessage:
        new_id = await self._insert(outbound_messages, _row_values(message))
        return OutboundMessage(**{**asdict(message), "id": new_id})

    async def add_many(self, new_messages: Sequence[OutboundMessage]) -> list[int]:
        rows = [_row_values(message) for message in new_messages]
        return await _insert_many(self._conn, outbound_messages, rows)

    async def get(self, outbound_id: int) -> OutboundMessage | None:
        query = outbound_messages.select().where(outbound_messages.c.id == outbound_id)
        row = (await self._conn.execute(query)).first()
        return OutboundMessage(**row._mapping) if row else None

    async def get_by_token(self, token: str) -> OutboundMessage | None:
        query = outbound_messages.select().where(outbound_messages.c.token == token.lower())
        row = (await self._conn.execute(query)).first()
        return OutboundMessage(**row._mapping) if row else None

    async def count_recipients_since(self, account_id: int, since: datetime) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(deliveries.join(outbound_messages))
            .where(outbound_messages.c.account_id == account_id, outbound_messages.c.created_at >= since)
        )
        return int((await self._conn.execute(query)).scalar_one())


# Rows a worker may take: waiting for an attempt, and not held by a live lease.
_WAITING = ("queued", "deferred")
_RECORD_OUTCOME = (
    deliveries.update()
    .where(deliveries.c.id == sa.bindparam("outcome_id"))
    .values(
        status=sa.bindparam("outcome_status"),
        next_attempt_at=sa.bindparam("outcome_next"),
        last_code=sa.bindparam("outcome_code"),
        last_status=sa.bindparam("outcome_enhanced"),
        last_reply=sa.bindparam("outcome_reply"),
        mx_host=sa.bindparam("outcome_mx"),
        updated_at=sa.bindparam("outcome_at"),
        lease_owner=None,
        lease_until=None,
    )
)

_sender_domain = domains.alias("sender_domain")

_LEASED_COLUMNS = (
    deliveries.c.id,
    deliveries.c.outbound_id,
    deliveries.c.recipient,
    deliveries.c.recipient_domain,
    deliveries.c.attempts,
    outbound_messages.c.envelope_from,
    outbound_messages.c.blob_key,
    _sender_domain.c.name.label("from_domain"),
    deliveries.c.created_at,
    deliveries.c.expires_at,
    outbound_messages.c.account_id,
    outbound_messages.c.domain_id,
    outbound_messages.c.mailbox_id,
    outbound_messages.c.message_id_header,
)

_QUEUE_ENTRY_COLUMNS = (
    deliveries.c.id,
    deliveries.c.outbound_id,
    deliveries.c.recipient,
    deliveries.c.status,
    deliveries.c.attempts,
    deliveries.c.next_attempt_at,
    deliveries.c.expires_at,
    deliveries.c.created_at,
    deliveries.c.updated_at,
    outbound_messages.c.from_addr,
    outbound_messages.c.subject,
    outbound_messages.c.message_id_header,
    deliveries.c.last_code,
    deliveries.c.last_status,
    deliveries.c.last_reply,
    deliveries.c.mx_host,
    deliveries.c.lease_owner,
    deliveries.c.lease_until,
)


def _queue_entries() -> sa.Select[Any]:
    return sa.select(*_QUEUE_ENTRY_COLUMNS).select_from(deliveries.join(outbound_messages))


class SqlDeliveries(_Repository):
    async def add_many(self, new_deliveries: Sequence[NewDelivery]) -> None:
        rows = [
            {**_fields(d), "status": "queued", "attempts": 0, "updated_at": d.created_at}
            for d in new_deliveries
        ]
        await self._conn.execute(deliveries.insert(), rows)

    async def lease_due(
        self, owner: str, now: datetime, limit: int, lease_until: datetime
    ) -> list[LeasedDelivery]:
        hosted = sa.exists().where(domains.c.name == deliveries.c.recipient_domain)
        query = (
            sa.select(*_LEASED_COLUMNS, hosted.label("local"))
            .select_from(
                deliveries.join(outbound_messages).join(
                    _sender_domain, _sender_domain.c.id == outbound_messages.c.domain_id
                )
            )
            .where(
                deliveries.c.status.in_(_WAITING),
                deliveries.c.next_attempt_at <= now,
                sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
            )
            # Fresh rows first, so a deferred backlog never starves new mail; then oldest first.
            .order_by(
                sa.case((deliveries.c.attempts == 0, 0), else_=1),
                deliveries.c.next_attempt_at,
                deliveries.c.id,
            )
            .limit(limit)
            # PostgreSQL: rows another node is leasing right now are skipped, not waited for.
            # SQLite ignores this; its write transactions (BEGIN IMMEDIATE) exclude each other.
            .with_for_update(of=deliveries, skip_locked=True)
        )
        rows = (await self._conn.execute(query)).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        for chunk in _chunks(ids):
            await self._conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(chunk))
                .values(
                    lease_owner=owner,
                    lease_until=lease_until,
                    attempts=deliveries.c.attempts + 1,
                    updated_at=now,
                )
            )
        return [
            LeasedDelivery(
                **{**row._mapping, "attempts": row.attempts + 1, "local": bool(row.local)},
                lease_owner=owner,
            )
            for row in rows
        ]

    async def next_due_at(self) -> datetime | None:
        # A leased row is not due before its lease runs out, even when its attempt time has passed.
        due = sa.case(
            (
                sa.and_(
                    deliveries.c.lease_until.is_not(None),
                    deliveries.c.lease_until > deliveries.c.next_attempt_at,
                ),
                deliveries.c.lease_until,
            ),
            else_=deliveries.c.next_attempt_at,
        )
        query = sa.select(sa.func.min(due)).where(deliveries.c.status.in_(_WAITING))
        due_at: datetime | None = (await self._conn.execute(query)).scalar_one_or_none()
        return due_at

    async def record_outcomes(self, outcomes: Sequence[DeliveryOutcome]) -> list[int]:
        # One SELECT finds the rows still leased by the recording worker and still waiting (and
        # locks them on PostgreSQL), then one executemany UPDATE writes them: a statement built
        # per row cost more CPU than the SMTP transaction it records.
        owners = {outcome.delivery_id: outcome.lease_owner for outcome in outcomes}
        held: set[int] = set()
        for chunk in _chunks(list(owners)):
            rows = await self._conn.execute(
                sa.select(deliveries.c.id, deliveries.c.lease_owner)
                .where(deliveries.c.id.in_(chunk), deliveries.c.status.in_(_WAITING))
                .with_for_update(of=deliveries)
            )
            held.update(row.id for row in rows if row.lease_owner == owners[row.id])
        applied = [outcome for outcome in outcomes if outcome.delivery_id in held]
        if applied:
            await self._conn.execute(
                _RECORD_OUTCOME,
                [
                    {
                        "outcome_id": o.delivery_id, "outcome_status": o.status,
                        "outcome_next": o.next_attempt_at, "outcome_code": o.last_code,
                        "outcome_enhanced": o.last_status, "outcome_reply": o.last_reply,
                        "outcome_mx": o.mx_host, "outcome_at": o.updated_at,
                    }
                    for o in applied
                ],
            )
        return [outcome.delivery_id for outcome in applied]

    async def get(self, delivery_id: int) -> QueueEntry | None:
        row = (await self._conn.execute(_queue_entries().where(deliveries.c.id == delivery_id))).first()
        return QueueEntry(**row._mapping) if row else None

    async def entries(self, status: str | None, limit: int) -> list[QueueEntry]:
        query = _queue_entries().order_by(deliveries.c.id).limit(limit)
        if status is not None:
            query = query.where(deliveries.c.status == status)
        return [QueueEntry(**row._mapping) for row in await self._conn.execute(query)]

    async def for_outbound(self, outbound_id: int) -> list[QueueEntry]:
        query = _queue_entries().where(deliveries.c.outbound_id == outbound_id).order_by(deliveries.c.id)
        return [QueueEntry(**row._mapping) for row in await self._conn.execute(query)]

    async def set_status(
        self, delivery_id: int, status: str, last_status: str | None, last_reply: str, now: datetime
    ) -> None:
        await self._conn.execute(
            deliveries.update()
            .where(deliveries.c.id == delivery_id)
            .values(status=status, last_status=last_status, last_reply=last_reply, updated_at=now)
        )

    async def retry(self, delivery_id: int | None, now: datetime) -> int:
        query = (
            deliveries.update()
            .where(deliveries.c.status == "deferred")
            .values(next_attempt_at=now, updated_at=now)
        )
        if delivery_id is not None:
            query = query.where(deliveries.c.id == delivery_id)
        return int((await self._conn.execute(query)).rowcount)

    async def delete(self, delivery_id: int) -> bool:
        result = await self._conn.execute(deliveries.delete().where(deliveries.c.id == delivery_id))
        return bool(result.rowcount)


class SqlSuppressions(_Repository):
    async def add(self, suppression: Suppression) -> None:
        insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        await self._conn.execute(
            insert(suppressions).values(**_row_values(suppression)).on_conflict_do_nothing()
        )

    async def find(self, domain_id: int, addresses: Sequence[str]) -> list[Suppression]:
        found: list[Suppression] = []
        for chunk in _chunks(sorted(set(addresses))):
            query = suppressions.select().where(
                suppressions.c.domain_id == domain_id, suppressions.c.address.in_(chunk)
            )
            found.extend(Suppression(**row._mapping) for row in await self._conn.execute(query))
        return found

    async def list_for_domain(
        self, domain_id: int, after_id: int | None, limit: int
    ) -> list[Suppression]:
        query = (
            suppressions.select()
            .where(suppressions.c.domain_id == domain_id)
            .order_by(suppressions.c.id)
            .limit(limit)
        )
        if after_id is not None:
            query = query.where(suppressions.c.id > after_id)
        return [Suppression(**row._mapping) for row in await self._conn.execute(query)]

    async def delete(self, domain_id: int, address: str) -> bool:
        result = await self._conn.execute(
            suppressions.delete().where(
                suppressions.c.domain_id == domain_id, suppressions.c.address == address
            )
        )
        return bool(result.rowcount)


class SqlUnitOfWork:
    """One connection and one transaction; rolled back on exit unless committed."""

    accounts: SqlAccounts
    users: SqlUsers
    domains: SqlDomains
    mailboxes: SqlMailboxes
    folders: SqlFolders
    messages: SqlMessages
    events: SqlEvents
    outbound: SqlOutbound
    deliveries: SqlDeliveries
    suppressions: SqlSuppressions
    mailstore: SqlMailStore
    webhooks: SqlWebhooks
    api_keys: SqlApiKeys
    sender_groups: SqlSenderGroups
    idempotency: SqlIdempotencyKeys
    sent_emails: SqlSentEmails

    def __init__(self, engine: AsyncEngine, read_only: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        self._conn = await self._engine.connect()
        try:
            if self._read_only:
                await self._conn.execution_options(**{READ_ONLY_OPTION: True})
            await self._conn.begin()
        except BaseException:
            await self._conn.close()
            raise
        conn = self._conn
        self.accounts = SqlAccounts(conn)
        self.users = SqlUsers(conn)
        self.domains = SqlDomains(conn)
        self.mailboxes = SqlMailboxes(conn)
        self.folders = SqlFolders(conn)
        self.messages = SqlMessages(conn)
        self.events = SqlEvents(conn)
        self.outbound = SqlOutbound(conn)
        self.deliveries = SqlDeliveries(conn)
        self.suppressions = SqlSuppressions(conn)
        self.mailstore = SqlMailStore(conn)
        self.webhooks = SqlWebhooks(conn)
        self.api_keys = SqlApiKeys(conn)
        self.sender_groups = SqlSenderGroups(conn)
        self.idempotency = SqlIdempotencyKeys(conn)
        self.sent_emails = SqlSentEmails(conn)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None

    async def commit(self) -> None:
        assert self._conn is not None
        await self._conn.commit()

    async def rollback(self) -> None:
        assert self._conn is not None
        await self._conn.rollback()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, read_only)

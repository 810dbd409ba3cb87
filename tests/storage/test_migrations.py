"""Alembic migrations: a fresh database reaches head, re-running is harmless, head matches tables.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from mailmark.bootstrap import build_services
from mailmark.config import Settings
from mailmark.core.states import DeliveryStatus
from mailmark.storage.db import create_engine
from mailmark.storage.migrate import alembic_config, migrate
from mailmark.storage.tables import (
    FULLTEXT_TABLE,
    accounts,
    deliveries,
    metadata,
    outbound_messages,
)


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """What is migrated here is an empty database, not the suite's migrated template."""
    return empty_database_url


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    created = create_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        yield created
    finally:
        await created.dispose()


def package_head() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"the migrations have several heads: {heads}"
    return heads[0]


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))


async def test_fresh_database_migrates_to_head(engine: AsyncEngine) -> None:
    assert await current_revision(engine) is None
    assert await table_names(engine) == set()

    await migrate(engine)

    assert await current_revision(engine) == package_head()
    tables = {name for name in await table_names(engine) if not name.startswith(FULLTEXT_TABLE)}
    assert tables == set(metadata.tables) | {"alembic_version"}
    assert FULLTEXT_TABLE in await table_names(engine)


async def test_migrating_twice_is_harmless(engine: AsyncEngine) -> None:
    await migrate(engine)
    async with engine.begin() as conn:
        await conn.execute(
            accounts.insert().values(
                name="acme",
                plan="unlimited",
                status="active",
                created_at=datetime.now(UTC),
            )
        )

    await migrate(engine)

    assert await current_revision(engine) == package_head()
    async with engine.connect() as conn:
        names = (await conn.execute(sa.select(accounts.c.name))).scalars().all()
    assert names == ["acme"]


async def test_nodes_starting_together_both_migrate(
    settings: Settings, engine: AsyncEngine
) -> None:
    """Every node migrates on start; two at once must not trip over each other."""
    other = create_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        await asyncio.gather(migrate(engine), migrate(other))
    finally:
        await other.dispose()
    assert await current_revision(engine) == package_head()


async def test_head_matches_the_tables_metadata(engine: AsyncEngine) -> None:
    await migrate(engine)

    def differences(sync: sa.Connection) -> list[object]:
        context = MigrationContext.configure(
            sync,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                # The full-text index differs per backend (FTS5 and its shadow tables on SQLite).
                "include_name": lambda name, kind, _parents: (
                    not (kind == "table" and (name or "").startswith(FULLTEXT_TABLE))
                ),
            },
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        diff = await conn.run_sync(differences)
    assert diff == [], (
        "tables.py and the migrations disagree; write a migration for:\n"
        + "\n".join(map(str, diff))
    )


async def test_serve_start_migrates_a_fresh_database(settings: Settings) -> None:
    services = await build_services(settings)
    try:
        assert await current_revision(services.engine) == package_head()
    finally:
        await services.close()


async def test_sqlite_runs_in_wal_mode_with_the_configured_sync(settings: Settings) -> None:
    if not settings.is_sqlite:
        pytest.skip("SQLite pragmas; this run uses PostgreSQL")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for synchronous, level in (("FULL", 2), ("NORMAL", 1)):
        engine = create_engine(settings.database_url, sqlite_synchronous=synchronous)
        try:
            async with engine.connect() as conn:
                pragmas = [
                    (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                    for name in ("journal_mode", "synchronous", "foreign_keys")
                ]
        finally:
            await engine.dispose()
        assert pragmas == ["wal", level, 1]


async def test_signing_in_to_the_web_app_keeps_existing_users_and_their_mailboxes(
    engine: AsyncEngine,
) -> None:
    """0009 adds columns to users without rebuilding it: on SQLite a rebuild drops the old
    table, which runs ON DELETE SET NULL on mailboxes.user_id."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0008"))
    now = "2026-12-01 10:00:00"
    async with engine.begin() as conn:
        for statement in [
            "INSERT INTO accounts (id, name, plan, status, created_at) "
            f"VALUES (1, 'acme', 'unlimited', 'active', '{now}')",
            "INSERT INTO users (id, account_id, email, password_hash, role, created_at) "
            f"VALUES (1, 1, 'owner@acme.test', 'hash', 'owner', '{now}')",
            "INSERT INTO domains (id, account_id, name, created_at, trusted, "
            f"return_path_published) VALUES (1, 1, 'acme.test', '{now}', true, false)",
            "INSERT INTO mailboxes (id, domain_id, local_part, display_name, signature, user_id, "
            f"created_at) VALUES (1, 1, 'sales', '', '', 1, '{now}')",
        ]:
            await conn.execute(sa.text(statement))
    await migrate(engine)
    async with engine.connect() as conn:
        owner = (await conn.execute(sa.text("SELECT email, name FROM users"))).one()
        linked = (await conn.execute(sa.text("SELECT user_id FROM mailboxes"))).scalar_one()
    assert tuple(owner) == ("owner@acme.test", "")
    assert linked == 1


async def test_the_dashboard_columns_come_and_go_without_touching_the_mail(
    engine: AsyncEngine,
) -> None:
    """0010 adds to domains and mailboxes without rebuilding them, both ways: on SQLite a
    rebuild drops the old table, which cascades to mailboxes, folders and placements."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0009"))
    now = "2026-12-01 10:00:00"
    async with engine.begin() as conn:
        for statement in [
            "INSERT INTO accounts (id, name, plan, status, created_at) "
            f"VALUES (1, 'acme', 'unlimited', 'active', '{now}')",
            "INSERT INTO domains (id, account_id, name, created_at, trusted, "
            f"return_path_published) VALUES (1, 1, 'acme.test', '{now}', true, false)",
            "INSERT INTO mailboxes (id, domain_id, local_part, display_name, signature, "
            f"created_at) VALUES (1, 1, 'sales', '', 'Best, Sales', '{now}')",
            "INSERT INTO folders (id, mailbox_id, name, uid_validity, uid_next, highest_modseq, "
            "subscribed) VALUES (1, 1, 'INBOX', 1, 1, 1, true)",
        ]:
            await conn.execute(sa.text(statement))

    async def held() -> tuple[object, ...]:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.text(
                        "SELECT m.signature, f.name FROM mailboxes m JOIN folders f "
                        "ON f.mailbox_id = m.id WHERE f.name = 'INBOX'"
                    )
                )
            ).one()
        return tuple(row)

    await migrate(engine)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT d.failed_checks, m.signature_format FROM domains d "
                    "JOIN mailboxes m ON m.domain_id = d.id"
                )
            )
        ).one()
    assert tuple(row) == (0, "text")
    assert await held() == ("Best, Sales", "INBOX")
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0009"))
    assert await held() == ("Best, Sales", "INBOX")


async def test_upgrading_keeps_the_mail_when_a_migration_rebuilds_a_table(
    engine: AsyncEngine,
) -> None:
    """0008 rebuilds `domains` on SQLite (a batch migration); with foreign keys on, dropping the
    old table would cascade to every mailbox and folder. `migrate` turns them off around the
    upgrade and checks the references before it commits."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0007"))
    now = "2026-12-01 10:00:00"
    async with engine.begin() as conn:
        for statement in [
            "INSERT INTO accounts (id, name, plan, status, created_at) "
            f"VALUES (1, 'acme', 'unlimited', 'active', '{now}')",
            "INSERT INTO domains (id, account_id, name, created_at, trusted) "
            f"VALUES (1, 1, 'acme.test', '{now}', true)",
            "INSERT INTO mailboxes (id, domain_id, local_part, display_name, signature, "
            f"created_at) VALUES (1, 1, 'sales', '', '', '{now}')",
            "INSERT INTO folders (id, mailbox_id, name, uid_validity, uid_next, highest_modseq, "
            "subscribed) VALUES (1, 1, 'INBOX', 1, 1, 1, true)",
        ]:
            await conn.execute(sa.text(statement))
    await migrate(engine)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT d.return_path_published, m.local_part, f.name FROM domains d "
                    "JOIN mailboxes m ON m.domain_id = d.id JOIN folders f ON f.mailbox_id = m.id "
                    "WHERE f.name = 'INBOX'"
                )
            )
        ).one()
        foreign_keys = (
            (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
            if engine.dialect.name == "sqlite"
            else 1
        )
    assert (bool(row[0]), row[1], row[2]) == (False, "sales", "INBOX")
    assert foreign_keys == 1


async def test_existing_mailboxes_get_an_archive_folder(engine: AsyncEngine) -> None:
    """0013 gives every mailbox an Archive (\\Archive) folder; a folder someone already called
    Archive becomes it, mail kept."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0012"))
    now = "2026-12-01 10:00:00"
    async with engine.begin() as conn:
        for statement in [
            "INSERT INTO accounts (id, name, plan, status, created_at) "
            f"VALUES (1, 'acme', 'unlimited', 'active', '{now}')",
            "INSERT INTO domains (id, account_id, name, created_at, trusted, "
            f"return_path_published) VALUES (1, 1, 'acme.test', '{now}', true, false)",
            "INSERT INTO mailboxes (id, domain_id, local_part, display_name, signature, "
            f"created_at) VALUES (1, 1, 'sales', '', '', '{now}')",
            "INSERT INTO mailboxes (id, domain_id, local_part, display_name, signature, "
            f"created_at) VALUES (2, 1, 'support', '', '', '{now}')",
            "INSERT INTO folders (id, mailbox_id, name, uid_validity, uid_next, highest_modseq, "
            "subscribed) VALUES (1, 1, 'INBOX', 1, 1, 1, true)",
            "INSERT INTO folders (id, mailbox_id, name, uid_validity, uid_next, highest_modseq, "
            "subscribed) VALUES (2, 2, 'Archive', 7, 5, 9, true)",
        ]:
            await conn.execute(sa.text(statement))
    await migrate(engine)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT mailbox_id, special_use, uid_validity > 0, uid_next FROM folders "
                    "WHERE name = 'Archive' ORDER BY mailbox_id"
                )
            )
        ).all()
    assert [tuple(row) for row in rows] == [(1, "\\Archive", True, 1), (2, "\\Archive", True, 5)]


async def test_subscribed_folders_become_subscriptions_and_back(engine: AsyncEngine) -> None:
    """0019 moves each folder's subscribed flag into `subscriptions`; downgrading restores the
    flags (a name whose folder is gone is lost then: the flag lives on a folder)."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0018"))
    now = "2026-12-01 10:00:00"
    async with engine.begin() as conn:
        for statement in [
            "INSERT INTO accounts (id, name, plan, status, created_at) "
            f"VALUES (1, 'acme', 'unlimited', 'active', '{now}')",
            "INSERT INTO domains (id, account_id, name, created_at, trusted, "
            f"return_path_published) VALUES (1, 1, 'acme.test', '{now}', true, false)",
            "INSERT INTO mailboxes (id, domain_id, local_part, display_name, signature, "
            f"created_at) VALUES (1, 1, 'sales', '', '', '{now}')",
            "INSERT INTO folders (id, mailbox_id, name, uid_validity, uid_next, highest_modseq, "
            "subscribed) VALUES (1, 1, 'INBOX', 1, 1, 1, true)",
            "INSERT INTO folders (id, mailbox_id, name, uid_validity, uid_next, highest_modseq, "
            "subscribed) VALUES (2, 1, 'Junk', 2, 1, 1, false)",
        ]:
            await conn.execute(sa.text(statement))
    await migrate(engine)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT mailbox_id, name FROM subscriptions"))).all()
    assert [tuple(row) for row in rows] == [(1, "INBOX")]
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0018"))
    async with engine.connect() as conn:
        rows = (
            await conn.execute(sa.text("SELECT name, subscribed FROM folders ORDER BY id"))
        ).all()
    assert [(name, bool(flag)) for name, flag in rows] == [("INBOX", True), ("Junk", False)]


async def test_usage_rows_are_filled_from_the_queue_rows_already_there(
    engine: AsyncEngine,
) -> None:
    """0028 counts each account's queue rows into one usage row per calendar month (UTC)."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0027"))
    november, december = (
        datetime(2026, 11, 30, 23, 59, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO accounts (id, name, plan, status, created_at) "
                "VALUES (1, 'acme', 'starter', 'active', '2026-11-01 10:00:00')"
            )
        )
        await conn.execute(
            sa.text(
                "INSERT INTO domains (id, account_id, name, created_at, trusted, "
                "return_path_published) VALUES (1, 1, 'acme.test', '2026-11-01 10:00:00', true, false)"
            )
        )
        for number, (created, recipients) in enumerate(((november, 2), (december, 3)), start=1):
            await conn.execute(
                outbound_messages.insert().values(
                    id=number,
                    account_id=1,
                    domain_id=1,
                    blob_key="0" * 64,
                    size=10,
                    envelope_from="bounce@acme.test",
                    token=f"{number:024d}",
                    from_addr="sales@acme.test",
                    source="api",
                    created_at=created,
                )
            )
            await conn.execute(
                deliveries.insert(),
                [
                    {
                        "outbound_id": number,
                        "recipient": f"r{n}@remote.test",
                        "recipient_domain": "remote.test",
                        "status": DeliveryStatus.DELIVERED,
                        "attempts": 1,
                        "next_attempt_at": created,
                        "expires_at": created,
                        "created_at": created,
                        "updated_at": created,
                    }
                    for n in range(recipients)
                ],
            )
    await migrate(engine)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text("SELECT account_id, month, emails_sent FROM account_usage ORDER BY month")
            )
        ).all()
    assert [tuple(row) for row in rows] == [(1, "2026-11", 2), (1, "2026-12", 3)]

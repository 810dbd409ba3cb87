"""Shared fixtures: a fresh data dir and database per test, real services, real listeners.

Every test runs against SQLite; when MAILMARK_TEST_DATABASE_URL names a PostgreSQL server
(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test) each test instead gets its own freshly
created database there, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from mailmark.bootstrap import Listeners, Services, build_services, start_listeners
from mailmark.config import Settings
from mailmark.core.model import Mailbox
from mailmark.security import Argon2PasswordHasher
from tests.conftest_dns import fake_dns  # noqa: F401
from tests.fakedns import FakeDns

TEST_DATABASE_URL = os.environ.get("MAILMARK_TEST_DATABASE_URL", "")
HOSTNAME = "mx.mailmark.test"
DOMAIN = "acme.test"


def pytest_report_header() -> str:
    backend = make_url(TEST_DATABASE_URL).get_backend_name() if TEST_DATABASE_URL else "sqlite"
    return f"mailmark test database: {backend}"


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    if not TEST_DATABASE_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'mailmark.db'}"
        return
    admin_url = make_url(TEST_DATABASE_URL)
    name = f"mailmark_test_{secrets.token_hex(6)}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield admin_url.set(database=name).render_as_string(hide_password=False)
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_dns: FakeDns) -> Settings:  # noqa: F811
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        hostname=HOSTNAME,
        bind="127.0.0.1",
        mx_port=0,
        submission_port=0,
        submissions_port=0,
        imap_port=0,
        imaps_port=0,
        http_port=0,
        dns_nameservers=[fake_dns.address],
        # Tests never need power-loss durability; kill -9 safety is the same with NORMAL.
        sqlite_synchronous="NORMAL",
    )


# Real argon2id with low cost: the recommended parameters take ~0.2 s a hash, which adds up.
FAST_PASSWORDS = Argon2PasswordHasher(time_cost=1, memory_cost_kib=1024)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    built = await build_services(settings, passwords=FAST_PASSWORDS)
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def listeners(services: Services) -> AsyncIterator[Listeners]:
    started = await start_listeners(services)
    try:
        yield started
    finally:
        await started.close()


@dataclass
class World:
    """One account with the domain acme.test and two mailboxes, sales@ and support@."""

    services: Services
    sales: Mailbox
    support: Mailbox
    domain: str = DOMAIN


@pytest.fixture
async def world(services: Services) -> World:
    await services.accounts.create("acme", owner_email="owner@acme.test", password="owner-pass-1", plan="unlimited")
    await services.domains.add(DOMAIN, account_name="acme", trust=True)
    sales = await services.mailboxes.create(f"sales@{DOMAIN}", display_name="Sales", password="sales-pass-1")
    support = await services.mailboxes.create(f"support@{DOMAIN}", password="support-pass-1")
    return World(services, sales, support)


@pytest.fixture
def mx_port(listeners: Listeners, world: World) -> Iterator[int]:
    """The MX port of running listeners, with the acme.test world already created."""
    yield listeners.mx_port


@dataclass
class StoredCopy:
    """One placement of a stored message, with the bytes IMAP would serve (prefix + blob)."""

    folder: str
    uid: int
    thread_id: str
    subject: str | None
    snippet: str
    data: bytes


async def stored_copies(services: Services, mailbox: Mailbox) -> list[StoredCopy]:
    """Read back what is stored for a mailbox, straight from SQL and the blob store."""
    from mailmark.storage.tables import folders, messages, placements

    query = (
        sa.select(
            folders.c.name, placements.c.uid, placements.c.thread_id, messages.c.subject,
            messages.c.snippet, messages.c.trace_prefix, messages.c.blob_key,
        )
        .select_from(placements.join(messages).join(folders))
        .where(placements.c.mailbox_id == mailbox.id)
        .order_by(placements.c.id)
    )
    async with services.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        StoredCopy(row.name, row.uid, row.thread_id, row.subject, row.snippet,
                   row.trace_prefix + await services.blobs.get(row.blob_key))
        for row in rows
    ]

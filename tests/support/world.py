"""The services `mailmark serve` builds, on a fresh data dir and database per test, and the
acme.test world most tests start from.

A module or directory that needs time to move by hand overrides the `clock` fixture with a
`SettableClock`; the services are then built with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Listeners, Services, build_services, start_listeners
from mailmark.config import Settings
from mailmark.core.model import Mailbox
from mailmark.core.ports import Clock, SystemClock
from tests.fakedns import FakeDns

HOSTNAME = "mx.mailmark.test"
DOMAIN = "acme.test"


@pytest.fixture
def fake_dns() -> Iterator[FakeDns]:
    """The rest of the Internet's DNS: a started FakeDns on loopback, stopped after the test."""
    with FakeDns() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_dns: FakeDns) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        hostname=HOSTNAME,
        bind="127.0.0.1",
        cpu_workers=2,
        mx_port=0,
        submission_port=0,
        submissions_port=0,
        imap_port=0,
        imaps_port=0,
        managesieve_port=0,
        http_port=0,
        dns_nameservers=[fake_dns.address],
        # Tests never need power-loss durability; kill -9 safety is the same with NORMAL.
        sqlite_synchronous="NORMAL",
        # The recommended argon2id parameters take ~0.1 s of CPU a hash, which adds up.
        password_hash_cost="test",
    )


@pytest.fixture
def clock() -> Clock:
    return SystemClock()


@pytest.fixture
async def services(settings: Settings, clock: Clock) -> AsyncIterator[Services]:
    built = await build_services(settings, clock=clock)
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
    await services.accounts.create(
        "acme", owner_email="owner@acme.test", password="owner-pass-1", plan="unlimited"
    )
    await services.domains.add(DOMAIN, account_name="acme", trust=True)
    sales = await services.mailboxes.create(
        f"sales@{DOMAIN}", display_name="Sales", password="sales-pass-1"
    )
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
            folders.c.name,
            placements.c.uid,
            placements.c.thread_id,
            messages.c.subject,
            messages.c.snippet,
            messages.c.trace_prefix,
            messages.c.blob_key,
        )
        .select_from(placements.join(messages).join(folders))
        .where(placements.c.mailbox_id == mailbox.id)
        .order_by(placements.c.id)
    )
    async with services.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        StoredCopy(
            row.name,
            row.uid,
            row.thread_id,
            row.subject,
            row.snippet,
            row.trace_prefix + await services.blobs.get(row.blob_key),
        )
        for row in rows
    ]


async def queued_rows(world: World) -> list[tuple[str, str, str | None]]:
    """What the outbound queue holds, oldest row first: (From address, recipient, batch id)."""
    from mailmark.storage.tables import deliveries, outbound_messages

    query = (
        sa.select(
            outbound_messages.c.from_addr, deliveries.c.recipient, outbound_messages.c.batch_id
        )
        .select_from(deliveries.join(outbound_messages))
        .order_by(deliveries.c.id)
    )
    async with world.services.engine.connect() as conn:
        return [(row[0], row[1], row[2]) for row in await conn.execute(query)]


@dataclass
class QueuedEmail:
    """One recipient's row of the outbound queue, with the message as queued (parsed)."""

    from_addr: str
    recipient: str
    status: str
    message: EmailMessage

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None, self.message
        content: str = body.get_content()  # type: ignore[attr-defined]
        return content


async def queued_emails(services: Services) -> list[QueuedEmail]:
    """Every row of the outbound queue, oldest first, with its message read from the blob store."""
    from mailmark.storage.tables import deliveries, outbound_messages

    query = (
        sa.select(
            outbound_messages.c.from_addr,
            deliveries.c.recipient,
            deliveries.c.status,
            outbound_messages.c.blob_key,
        )
        .select_from(deliveries.join(outbound_messages))
        .order_by(deliveries.c.id)
    )
    async with services.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    parser = BytesParser(policy=default)
    return [
        QueuedEmail(
            row.from_addr,
            row.recipient,
            str(row.status),
            parser.parsebytes(await services.blobs.get(row.blob_key)),  # type: ignore[arg-type]
        )
        for row in rows
    ]

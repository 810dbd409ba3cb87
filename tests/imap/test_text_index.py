"""Mail the MX accepts has its body text added to the full-text index after the 250
(core/text_index.py): a text SEARCH indexes whatever still waits in its folder first, the
background indexer catches up once deliveries pause, and a body whose text is not in memory
(another process delivered it, or the server restarted) is read from its blob again."""

from __future__ import annotations

import asyncio
import smtplib

import sqlalchemy as sa

from mailmark.bootstrap import Listeners
from mailmark.core.cpu_pool import CpuPool
from mailmark.core.message_meta import read_body_text
from mailmark.core.text_index import TextIndexer
from mailmark.storage.dialect import dialect_named
from mailmark.storage.tables import pending_body_texts
from tests.imap.raw import session
from tests.support.world import World


def message(number: int, word: str) -> bytes:
    return (
        f"From: Bob <bob@remote.test>\r\n"
        f"To: Sales <sales@acme.test>\r\n"
        f"Subject: Order {number}\r\n"
        f"Message-ID: <order-{number}@remote.test>\r\n"
        f"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
        f"\r\n"
        f"Please ship the {word} by Friday.\r\n"
    ).encode()


def deliver(port: int, *raws: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        for raw in raws:
            client.sendmail("bob@remote.test", ["sales@acme.test"], raw)


async def waiting(world: World) -> list[int]:
    async with world.services.engine.connect() as conn:
        query = sa.select(pending_body_texts.c.message_id).order_by(pending_body_texts.c.message_id)
        return list((await conn.execute(query)).scalars())


async def test_a_text_search_indexes_the_bodies_still_waiting_in_its_folder(
    listeners: Listeners, world: World
) -> None:
    await listeners.text_index.stop()
    await asyncio.to_thread(deliver, listeners.mx_port, message(1, "walrus"), message(2, "narwhal"))
    assert len(await waiting(world)) == 2

    async with session(listeners.imaps_port, select="INBOX") as reader:
        # The header text is indexed at delivery: a header search needs no catching up.
        assert (await reader.ok(b"h1", b"UID SEARCH SUBJECT order"))[0] == b"* SEARCH 1 2\r\n"
        assert len(await waiting(world)) == 2
        assert (await reader.ok(b"b1", b"UID SEARCH BODY narwhal"))[0] == b"* SEARCH 2\r\n"
        assert await waiting(world) == []
        assert (await reader.ok(b"t1", b"UID SEARCH TEXT WALRUS"))[0] == b"* SEARCH 1\r\n"


async def test_the_indexer_catches_up_on_its_own_once_deliveries_pause(
    listeners: Listeners, world: World
) -> None:
    await asyncio.to_thread(deliver, listeners.mx_port, message(3, "kayak"))
    for _ in range(600):
        if not await waiting(world):
            break
        await asyncio.sleep(0.05)
    assert await waiting(world) == []
    async with session(listeners.imaps_port, select="INBOX") as reader:
        assert (await reader.ok(b"b1", b"UID SEARCH BODY kayak"))[0] == b"* SEARCH 1\r\n"


async def test_a_body_not_in_memory_is_read_from_its_blob_and_parsed_again(
    listeners: Listeners, world: World
) -> None:
    await listeners.text_index.stop()
    raw = message(4, "zeppelin")
    await asyncio.to_thread(deliver, listeners.mx_port, raw)
    [message_id] = await waiting(world)
    services = world.services
    # A second process's indexer: it was not told of the delivery.
    assert await TextIndexer(services.uow, services.blobs, services.cpu).catch_up() == 1
    assert await waiting(world) == []
    dialect = dialect_named(services.engine.dialect.name)
    async with services.engine.connect() as conn:
        query = sa.select(dialect.fulltext.c.body).where(dialect.fulltext_key == message_id)
        body = (await conn.execute(query)).scalar_one()
    assert body == read_body_text(raw) != ""
    async with session(listeners.imaps_port, select="INBOX") as reader:
        assert (await reader.ok(b"b1", b"UID SEARCH BODY zeppelin"))[0] == b"* SEARCH 1\r\n"


async def test_a_stopping_indexer_gives_up_parsing_and_leaves_the_bodies_waiting(
    listeners: Listeners, world: World
) -> None:
    await listeners.text_index.stop()
    await asyncio.to_thread(deliver, listeners.mx_port, message(5, "gondola"))
    [message_id] = await waiting(world)
    services = world.services
    # After a restart the parse waits for worker processes to start; a stopping server does not.
    pool = CpuPool(workers=1, threshold=0)
    pool.start()
    indexer = TextIndexer(services.uow, services.blobs, pool)
    try:
        catching_up = asyncio.create_task(indexer.catch_up())
        await indexer.stop()
        assert await catching_up == 0
        assert await waiting(world) == [message_id]  # for the next start to index
    finally:
        await pool.stop()
    assert await TextIndexer(services.uow, services.blobs, services.cpu).catch_up() == 1

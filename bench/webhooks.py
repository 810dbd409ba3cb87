"""Webhook delivery: what the outbox costs the inbound path, and how fast the worker posts.

    cd /work/wt-api && .venv/bin/python bench/webhooks.py [--events N]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Each setup runs three times, alternating, and the best rate of each is printed.

1. Inbound delivery of N small messages (the core InboundDelivery, 50 at a time, group commit) on
   a fresh data dir, once with no webhook and once with one webhook subscribed to email.received:
   the second run also writes N outbox rows in the same transactions. Prints both rates and the
   ratio (the outbox's overhead on the MX path).
2. The webhook worker posting those N events, signed, to an HTTP receiver on loopback (a small
   asyncio server answering 200), until every row is recorded delivered; beside it, bare httpx
   posting the same N bodies with the same concurrency (16) to the same receiver, recording
   nothing. Prints both rates and the ratio.

SQLite runs with MAILMARK_SQLITE_SYNCHRONOUS=FULL. This is a benchmark, not a test: the figures
depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from mailmark.bootstrap import Services, build_services, webhook_worker
from mailmark.config import Settings
from mailmark.core.model import Mailbox
from mailmark.security import Argon2PasswordHasher
from mailmark.storage.tables import webhook_deliveries

CONCURRENCY = 16  # the worker's LEASE_BATCH, posted at once
INBOUND_CONCURRENCY = 50
ROUNDS = 3


class Receiver:
    """HTTP/1.1 with keep-alive: reads each request and answers 200."""

    def __init__(self) -> None:
        self.count = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        await asyncio.sleep(0.2)  # let the closed clients' EOFs end their connections
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.count += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def fresh_database(admin_url: str | None, workdir: Path) -> str:
    if admin_url is None:
        return f"sqlite+aiosqlite:///{workdir / 'data' / 'mailmark.db'}"
    name = f"mailmark_bench_{secrets.token_hex(4)}"
    admin = create_async_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def world(services: Services) -> Mailbox:
    await services.accounts.create(
        "bench", owner_email="o@bench.test", password="pw-123456", plan="unlimited"
    )
    await services.domains.add("bench.test", account_name="bench", trust=True)
    return await services.mailboxes.create("in@bench.test", password="pw-123456")


async def deliver_inbound(services: Services, mailbox: Mailbox, events: int) -> float:
    raw = (
        b"From: a@example.net\r\nTo: in@bench.test\r\nSubject: Hello\r\n\r\n"
        + b"x" * 2000
        + b"\r\n"
    )
    slots = asyncio.Semaphore(INBOUND_CONCURRENCY)

    async def one() -> None:
        async with slots:
            await services.delivery.deliver(raw, recipients=[mailbox], mail_from="a@example.net")

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(events)))
    return events / (time.perf_counter() - started)


async def measure(
    args: argparse.Namespace, receiver: Receiver, with_webhook: bool
) -> tuple[float, float | None]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        settings = Settings(
            data_dir=workdir / "data",
            database_url=await fresh_database(args.database_url, workdir),
            hostname="mx.bench.test",
            webhook_allow_private_networks=["127.0.0.1/32"],
        )
        services = await build_services(
            settings, passwords=Argon2PasswordHasher(time_cost=1, memory_cost_kib=1024)
        )
        try:
            mailbox = await world(services)
            if with_webhook:
                domain = await services.domains.get("bench.test")
                assert domain.id is not None
                await services.webhooks.create(
                    domain.account_id,
                    domain.id,
                    f"http://127.0.0.1:{receiver.port}/hook",
                    ["email.received"],
                )
            inbound_rate = await deliver_inbound(services, mailbox, args.events)
            if not with_webhook:
                return inbound_rate, None
            worker = webhook_worker(services)
            started = time.perf_counter()
            try:
                while await worker.run_once():
                    pass
            finally:
                await worker.close()
            post_rate = args.events / (time.perf_counter() - started)
            async with services.engine.connect() as conn:
                delivered = (
                    await conn.execute(
                        sa.select(sa.func.count()).where(webhook_deliveries.c.status == "delivered")
                    )
                ).scalar_one()
            assert delivered == args.events, f"only {delivered} of {args.events} delivered"
            return inbound_rate, post_rate
        finally:
            await services.close()


async def bare_httpx(receiver: Receiver, events: int) -> float:
    body = b'{"id":"evt_1","type":"email.received","data":{"subject":"Hello"}}'
    slots = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(
        trust_env=False, limits=httpx.Limits(max_connections=CONCURRENCY)
    ) as client:

        async def one() -> None:
            async with slots:
                response = await client.post(f"http://127.0.0.1:{receiver.port}/hook", content=body)
                assert response.status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(events)))
        return events / (time.perf_counter() - started)


async def run(args: argparse.Namespace) -> int:
    receiver = Receiver()
    await receiver.start()
    try:
        # Warm up (imports, first connections), then alternate the two setups and keep the best
        # of each: the first runs on a busy machine are the slowest whatever they measure.
        await measure(argparse.Namespace(**{**vars(args), "events": 200}), receiver, False)
        plain = hooked = posted = 0.0
        for _ in range(ROUNDS):
            plain = max(plain, (await measure(args, receiver, with_webhook=False))[0])
            inbound, post_rate = await measure(args, receiver, with_webhook=True)
            hooked, posted = max(hooked, inbound), max(posted, post_rate or 0.0)
        bare = await bare_httpx(receiver, args.events)
    finally:
        await receiver.close()
    backend = "postgresql" if args.database_url else "sqlite (synchronous=FULL)"
    print(f"{args.events} events, {backend}")
    print(f"inbound delivery, no webhook:        {plain:8.0f} msg/s")
    print(f"inbound delivery, with the outbox:   {hooked:8.0f} msg/s  ({hooked / plain:.2f}x)")
    print(f"webhook worker (signed, recorded):   {posted:8.0f} req/s")
    print(f"bare httpx, same receiver:           {bare:8.0f} req/s  (worker {posted / bare:.2f}x)")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

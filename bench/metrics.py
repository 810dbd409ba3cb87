"""What observability costs: HTTP requests timed and logged, and a /metrics scrape over a full queue.

    cd <checkout> && .venv/bin/python bench/metrics.py [--requests 2000] [--concurrency 8]
        [--queue 10000] [--history 50000] [--scrapes 50]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Builds the services `mailmark serve` builds on a fresh data dir (SQLite, or a fresh PostgreSQL
database with --database-url) and serves the web app on a loopback port with uvicorn, in this
process; the client (httpx, keep-alive connections) runs on the same event loop, so absolute
figures include the client's own work and only the comparison within a run means much.

1. GET /healthz (no database, no body to speak of): requests per second with --concurrency
   connections (the best of --rounds), CPU time per request (the least), and p50/p99 latency one
   request at a time, with the request observer (latency histogram + access log line at DEBUG, as
   probes are) and, as the baseline of the same run, with the app's router called directly; the
   cases run by turns. Then the same for an unknown path (404), logged at INFO
   into a handler that discards the lines, as a production access log would be written.
2. GET /metrics with --queue waiting rows (a third each queued, deferred and held) beside
   --history delivered rows: p50/p99 of the scrape, and of the queue query alone.

A benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import httpx
from litestar import Litestar
from smtp_in import fresh_database  # the inbound bench's fresh PostgreSQL database

from mailmark.bootstrap import Services, build_services, connection_limits, mail_server
from mailmark.bootstrap import observability as observability_of
from mailmark.config import Settings
from mailmark.core.states import DeliveryStatus
from mailmark.storage.tables import deliveries, outbound_messages
from mailmark.web.app import create_app
from mailmark.web.observability import RequestObserver
from mailmark.web.server import start_http_listener

WAITING = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED, DeliveryStatus.HELD)
ROWS_PER_INSERT = 5000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def seed_queue(services: Services, waiting: int, history: int) -> None:
    """`waiting` rows spread over the waiting statuses and `history` delivered ones, written
    straight into the tables (one outbound message per 50 rows)."""
    account = await services.accounts.create(
        "acme", owner_email="owner@acme.test", password="owner-pass-1", plan="unlimited"
    )
    domain = await services.domains.add("acme.test", account_name="acme", trust=True)
    now = datetime.now(UTC)
    total = waiting + history
    messages = total // 50 + 1
    async with services.engine.begin() as conn:
        for start in range(0, messages, ROWS_PER_INSERT):
            await conn.execute(
                outbound_messages.insert(),
                [
                    {
                        "account_id": account.id,
                        "domain_id": domain.id,
                        "blob_key": "0" * 64,
                        "size": 1000,
                        "envelope_from": "bounce@acme.test",
                        "token": f"{n:024d}",
                        "from_addr": "sales@acme.test",
                        "source": "api",
                        "created_at": now,
                    }
                    for n in range(start, min(start + ROWS_PER_INSERT, messages))
                ],
            )
        ids = list(
            (
                await conn.execute(
                    outbound_messages.select().with_only_columns(outbound_messages.c.id)
                )
            ).scalars()
        )
        for start in range(0, total, ROWS_PER_INSERT):
            rows = []
            for n in range(start, min(start + ROWS_PER_INSERT, total)):
                status = WAITING[n % 3] if n < waiting else DeliveryStatus.DELIVERED
                rows.append(
                    {
                        "outbound_id": ids[n // 50],
                        "recipient": f"r{n}@remote.test",
                        "recipient_domain": "remote.test",
                        "status": status,
                        "attempts": 1,
                        "next_attempt_at": now + timedelta(minutes=n % 60),
                        "expires_at": now + timedelta(days=5),
                        "created_at": now - timedelta(seconds=n),
                        "updated_at": now,
                    }
                )
            await conn.execute(deliveries.insert(), rows)


async def serial(client: httpx.AsyncClient, path: str, count: int) -> list[float]:
    """Milliseconds of each of `count` requests, one at a time."""
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        answer = await client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        answer.read()
    return timings


async def throughput(base_url: str, path: str, count: int, concurrency: int) -> float:
    """Requests per second for `count` requests over `concurrency` keep-alive connections."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, limits=limits) as client:
        per_worker = count // concurrency

        async def worker() -> None:
            for _ in range(per_worker):
                (await client.get(path)).read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return per_worker * concurrency / (time.perf_counter() - started)


@dataclass
class HttpFigures:
    rates: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


async def http_round(
    app: Litestar, services: Services, path: str, args: argparse.Namespace, into: HttpFigures
) -> None:
    """One round on a fresh listener: latency one request at a time, then throughput, and the
    process's CPU time per request (server and client: they share this process)."""
    listener = await start_http_listener(
        app,
        host="127.0.0.1",
        port=0,
        limits=connection_limits(services.settings)(),
        header_timeout=30,
    )
    base_url = f"http://127.0.0.1:{listener.port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, trust_env=False) as client:
            await serial(client, path, 50)  # warm-up
            into.latencies += await serial(client, path, args.requests // 4)
        cpu = time.process_time()
        into.rates.append(await throughput(base_url, path, args.requests, args.concurrency))
        into.cpu_ms.append((time.process_time() - cpu) * 1000 / args.requests)
    finally:
        await listener.close()


def print_http(label: str, figures: HttpFigures) -> None:
    print(
        f"  {label:<44} {max(figures.rates):6.0f} req/s (best)"
        f"  {min(figures.cpu_ms):5.2f} ms CPU/req (least)"
        f"  p50 {percentile(figures.latencies, 0.5):5.2f} ms"
        f"  p99 {percentile(figures.latencies, 0.99):6.2f} ms"
    )


async def bench(args: argparse.Namespace, data_dir: Path, database_url: str) -> None:
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        hostname="mx.bench.test",
        http_port=0,
        password_hash_cost="test",
    )
    services = await build_services(settings)
    try:
        observed = create_app(
            mail_server=mail_server(settings),
            domains=services.domains,
            mailboxes=services.mailboxes,
            observability=observability_of(services, []),
        )
        # The baseline: the same app with its router called directly, nothing timed or logged.
        bare = create_app(
            mail_server=mail_server(settings),
            domains=services.domains,
            mailboxes=services.mailboxes,
            observability=observability_of(services, []),
        )
        assert isinstance(bare.asgi_handler, RequestObserver)
        bare.asgi_handler = bare.asgi_handler.wrapped
        # Access lines are formatted and written, to a sink, as INFO lines would be in production.
        logging.basicConfig(level=logging.INFO, handlers=[logging.FileHandler(os.devnull)])

        print(
            f"HTTP on loopback, {args.rounds} interleaved rounds of {args.requests} requests over "
            f"{args.concurrency} connections:"
        )
        cases = [
            ("GET /healthz, router alone (baseline)", bare, "/healthz"),
            ("GET /healthz, timed + DEBUG access line", observed, "/healthz"),
            ("GET /nothing (404), router alone (baseline)", bare, "/nothing"),
            ("GET /nothing (404), timed + INFO access line", observed, "/nothing"),
        ]
        figures = {label: HttpFigures() for label, _, _ in cases}
        # By turns, so that the machine's other load weighs on every case alike.
        for _ in range(args.rounds):
            for label, app, path in cases:
                await http_round(app, services, path, args, figures[label])
        for label, _, _ in cases:
            print_http(label, figures[label])

        started = time.perf_counter()
        await seed_queue(services, args.queue, args.history)
        print(
            f"\n/metrics with {args.queue} waiting rows and {args.history} delivered "
            f"(seeded in {time.perf_counter() - started:.1f} s):"
        )
        depth = await services.queue_admin.depth()
        print("  " + ", ".join(f"{d.status}: {d.count}" for d in depth))
        query = []
        for _ in range(args.scrapes):
            started = time.perf_counter()
            await services.queue_admin.depth()
            query.append((time.perf_counter() - started) * 1000)
        listener = await start_http_listener(
            observed,
            host="127.0.0.1",
            port=0,
            limits=connection_limits(settings)(),
            header_timeout=30,
        )
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{listener.port}", trust_env=False
            ) as client:
                size = len((await client.get("/metrics")).content)
                scrapes = await serial(client, "/metrics", args.scrapes)
                health = await serial(client, "/healthz", args.scrapes)
        finally:
            await listener.close()
        for label, values in (
            ("queue query alone", query),
            (f"GET /metrics ({size} bytes)", scrapes),
            ("GET /healthz (baseline)", health),
        ):
            print(
                f"  {label:<44} p50 {statistics.median(values):7.2f} ms"
                f"   p99 {percentile(values, 0.99):7.2f} ms"
            )
    finally:
        await services.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--queue", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=50_000)
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--database-url", default="")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.database_url) as url:
        print(f"database: {'PostgreSQL' if url else 'SQLite'}")
        asyncio.run(bench(args, Path(tmp) / "data", url))
    return 0


if __name__ == "__main__":
    sys.exit(main())

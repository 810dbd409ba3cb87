"""What billing costs: Polar webhooks processed per second, and the monthly usage row a send
adds to against the count of queue rows it replaces.

    cd /work/main && .venv/bin/python bench/billing.py [--events 2000] [--sent 100000]
        [--runs 200] [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Webhooks: `--events` subscription.updated events for one account, each signed with the Standard
Webhooks library, then verified, parsed, stored and applied (one transaction each) through the
same functions the endpoint calls; every event is newer than the last, so each is applied. The
signature check alone is timed too.

Usage: an account with `--sent` queue rows this month (written straight into a fresh database).
Timed by turns, `--runs` times each: the old quota read (counting this month's queue rows), the
new one (reading the account's usage row), and the write each send now adds (adding to that row,
in its own transaction with its commit; a send pays it inside the transaction it commits anyway).
Prints medians. A benchmark, not a test: the figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import sqlalchemy as sa
import standardwebhooks
from pydantic import SecretStr
from queue_holds import seed  # an account with this month's queue rows, written in bulk
from smtp_in import fresh_database  # the inbound bench's fresh PostgreSQL database

from mailmark.billing.polar import parse_event, verify_webhook
from mailmark.bootstrap import Services, build_services, polar_products
from mailmark.config import Settings
from mailmark.core.plans import month_start, usage_month
from mailmark.storage.tables import account_usage, deliveries, outbound_messages

SECRET = "polar_whs_bench_secret_0123456789"


def signed_events(
    account_id: int, count: int, products: dict[str, str]
) -> list[tuple[bytes, dict[str, str]]]:
    signer = standardwebhooks.Webhook(SECRET.encode())
    start = datetime.now(UTC)
    events = []
    for n in range(count):
        modified = (start + timedelta(seconds=n)).isoformat()
        body = json.dumps(
            {
                "type": "subscription.updated",
                "timestamp": modified,
                "data": {
                    "id": "sub_bench",
                    "created_at": start.isoformat(),
                    "modified_at": modified,
                    "status": "active",
                    "current_period_end": (start + timedelta(days=31)).isoformat(),
                    "cancel_at_period_end": n % 2 == 1,
                    "customer_id": "cus_bench",
                    "product_id": products["pro" if n % 3 else "business"],
                    "metadata": {},
                    "customer": {"id": "cus_bench", "external_id": str(account_id)},
                },
            }
        ).encode()
        event_id = f"evt_{n}"
        signed_at = datetime.now(UTC)
        events.append(
            (
                body,
                {
                    "webhook-id": event_id,
                    "webhook-timestamp": str(int(signed_at.timestamp())),
                    "webhook-signature": signer.sign(event_id, signed_at, body),
                },
            )
        )
    return events


async def webhooks(services: Services, account_id: int, count: int) -> tuple[float, float]:
    """Events per second: verified only, and verified + parsed + stored + applied."""
    products = polar_products(services.settings)
    events = signed_events(account_id, count, products)
    started = time.perf_counter()
    for body, headers in events:
        verify_webhook(SECRET, body, headers)
    verified = count / (time.perf_counter() - started)
    started = time.perf_counter()
    for body, headers in events:
        event_id = verify_webhook(SECRET, body, headers)
        outcome = await services.billing.handle_event(parse_event(event_id, body, products))
        if not outcome.startswith("applied"):
            raise SystemExit(f"{event_id}: {outcome}")
    applied = count / (time.perf_counter() - started)
    return verified, applied


async def usage(services: Services, account_id: int, runs: int) -> dict[str, list[float]]:
    now = services.clock.now()
    month, since = usage_month(now), month_start(now)
    old_count = (
        sa.select(sa.func.count())
        .select_from(deliveries.join(outbound_messages))
        .where(
            outbound_messages.c.account_id == account_id, outbound_messages.c.created_at >= since
        )
    )
    timings: dict[str, list[float]] = {
        "count this month's queue rows (before)": [],
        "read the usage row (now)": [],
        "add to the usage row (+ commit)": [],
    }
    new_read = sa.select(account_usage.c.emails_sent).where(
        account_usage.c.account_id == account_id, account_usage.c.month == month
    )
    for _ in range(runs):
        # Both reads on one open connection, so that only the statements differ.
        async with services.engine.connect() as conn:
            started = time.perf_counter()
            counted = (await conn.execute(old_count)).scalar_one()
            timings["count this month's queue rows (before)"].append(
                (time.perf_counter() - started) * 1000
            )
            started = time.perf_counter()
            (await conn.execute(new_read)).scalar()
            timings["read the usage row (now)"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        async with services.uow() as uow:
            await uow.usage.add(account_id, month, 1)
            await uow.commit()
        timings["add to the usage row (+ commit)"].append((time.perf_counter() - started) * 1000)
    print(f"  (the old count found {counted} rows)")
    return timings


async def run(args: argparse.Namespace, database_url: str) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        settings = Settings(
            data_dir=Path(workdir) / "data",
            database_url=database_url,
            hostname="mx.bench.test",
            password_hash_cost="test",
            polar_access_token=SecretStr("polar_oat_bench"),
            polar_webhook_secret=SecretStr(SECRET),
            polar_base_url="http://127.0.0.1:9",  # never called: webhooks only
            polar_product_starter="prod_starter",
            polar_product_pro="prod_pro",
            polar_product_business="prod_business",
            billing="polar",
        )
        services = await build_services(settings)
        try:
            started = time.perf_counter()
            account_id = await seed(services, args.sent, 0)
            print(
                f"seeded {args.sent} queue rows this month in "
                f"{time.perf_counter() - started:.1f} s ({services.engine.dialect.name})"
            )
            verified, applied = await webhooks(services, account_id, args.events)
            timings = await usage(services, account_id, args.runs)
        finally:
            await services.close()
    print(f"\nPolar webhooks, {args.events} events, one at a time:")
    print(f"  signature check alone               {verified:10.0f} events/s")
    print(f"  check + parse + store + apply       {applied:10.0f} events/s")
    print(f"\nthe monthly quota per send, median of {args.runs} (interleaved):")
    for name, values in timings.items():
        print(f"  {name:40} {statistics.median(values):8.3f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--sent", type=int, default=100_000, help="queue rows this month")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--database-url", default="", help="a PostgreSQL server to use instead")
    args = parser.parse_args(argv)
    with fresh_database(args.database_url) as database_url:
        asyncio.run(run(args, database_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())

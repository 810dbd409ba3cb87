"""What the account check at lease time costs the outbound worker.

    cd /work/main && .venv/bin/python bench/queue_holds.py [--sent 88000] [--batches 50]
        [--batch 100] [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Before the worker sends a leased batch, OutboundQueue.lease_due reads the batch's accounts (is one
paused? over its plan's monthly limit?) in one statement, which counts this month's mail only for
accounts whose plan has a limit. This measures `lease_due` of `--batch` due rows, `--batches`
times, for an account that has already sent `--sent` emails this month, without the check (the storage lease alone, as before it)
and with it, by turns so the machine's load weighs on both alike: on the Unlimited plan (nothing to
count) and on Business (its month counted, that count reused for a minute). Then the check's
statement alone, with and without the count of the month.

The month's mail and the due rows are written straight into a fresh database (SQLite under a temp
dir with the default synchronous=FULL, or a fresh PostgreSQL database with --database-url), so the
setup takes seconds. Prints milliseconds per batch for each, and the check's cost per batch and per
row beside the baseline. A benchmark, not a test: the figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
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
from smtp_in import fresh_database  # the inbound bench's fresh PostgreSQL database

from mailmark.bootstrap import Services, build_services
from mailmark.config import Settings
from mailmark.core.plans import UNCOUNTED_PLANS, usage_month
from mailmark.core.states import AccountStatus, DeliveryStatus
from mailmark.storage.tables import accounts, deliveries, outbound_messages

LEASE = timedelta(minutes=15)
RECIPIENTS_PER_MESSAGE = 2


async def seed(services: Services, sent: int, due: int) -> int:
    """acme with acme.test, `sent` delivered emails this month and `due` due rows; its id."""
    account = await services.accounts.create(
        "acme", owner_email="owner@acme.test", password="owner-pass-1", plan="business"
    )
    domain = await services.domains.add("acme.test", account_name="acme", trust=True)
    now = datetime.now(UTC)
    messages = (sent + due) // RECIPIENTS_PER_MESSAGE + 1
    async with services.engine.begin() as conn:
        for start in range(0, messages, 5000):
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
                    for n in range(start, min(start + 5000, messages))
                ],
            )
        ids = list((await conn.execute(sa.select(outbound_messages.c.id).order_by("id"))).scalars())
        rows = []
        for n in range(sent + due):
            status = DeliveryStatus.DELIVERED if n < sent else DeliveryStatus.QUEUED
            rows.append(
                {
                    "outbound_id": ids[n // RECIPIENTS_PER_MESSAGE],
                    "recipient": f"r{n}@remote.test",
                    "recipient_domain": "remote.test",
                    "status": status,
                    "attempts": 0,
                    "next_attempt_at": now - timedelta(minutes=1),
                    "expires_at": now + timedelta(days=5),
                    "created_at": now,
                    "updated_at": now,
                }
            )
        for start in range(0, len(rows), 5000):
            await conn.execute(deliveries.insert(), rows[start : start + 5000])
    assert account.id is not None
    return account.id


async def reset(services: Services) -> None:
    """Every due row waiting again, unleased."""
    async with services.engine.begin() as conn:
        await conn.execute(
            deliveries.update()
            .where(deliveries.c.status == DeliveryStatus.QUEUED)
            .values(lease_owner=None, lease_until=None, attempts=0)
        )


async def set_plan(services: Services, account_id: int, plan: str) -> None:
    async with services.engine.begin() as conn:
        await conn.execute(
            accounts.update()
            .where(accounts.c.id == account_id)
            .values(plan=plan, status=AccountStatus.ACTIVE)
        )


async def baseline_lease(services: Services, batch: int) -> int:
    """The lease as it was before the check, for these rows (none has a copy in an Outbox to
    file in Sent): the storage lease in its own transaction."""
    now = services.clock.now()
    async with services.uow() as uow:
        leased = await uow.deliveries.lease_due("bench", now, batch, now + LEASE)
        await uow.commit()
    return len(leased)


async def checked_lease(services: Services, batch: int) -> int:
    return len(await services.queue.lease_due("bench", batch, LEASE))


async def measure_check(services: Services, account_id: int, runs: int) -> dict[str, list[float]]:
    """The check's statement alone, interleaved so that the machine's load weighs on both alike:
    reading the account without counting (a recent count reused, or an unlimited plan), and with
    the count of its month (once a minute per account)."""
    since = usage_month(services.clock.now())
    timings: dict[str, list[float]] = {"read only": [], "read and count the month": []}
    for _ in range(runs):
        for name, count_ids in (("read only", []), ("read and count the month", [account_id])):
            async with services.uow(read_only=True) as uow:
                started = time.perf_counter()
                await uow.accounts.sending_states([account_id], since, count_ids, UNCOUNTED_PLANS)
                timings[name].append((time.perf_counter() - started) * 1000)
    return timings


async def measure_leases(services: Services, batches: int, batch: int) -> dict[str, list[float]]:
    """Leases of `batch` rows, without and with the check by turns, so that the machine's load
    weighs on both alike."""
    await reset(services)
    timings: dict[str, list[float]] = {"baseline (no check)": [], "with the check": []}
    for _ in range(batches):
        for name, lease in (
            ("baseline (no check)", baseline_lease),
            ("with the check", checked_lease),
        ):
            started = time.perf_counter()
            leased = await lease(services, batch)
            timings[name].append((time.perf_counter() - started) * 1000)
            if leased != batch:
                raise SystemExit(f"{name}: leased {leased} rows, expected {batch}")
    return timings


async def run(args: argparse.Namespace, database_url: str) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        settings = Settings(
            data_dir=Path(workdir) / "data",
            database_url=database_url,
            hostname="mx.bench.test",
            password_hash_cost="test",
        )
        services = await build_services(settings)
        try:
            started = time.perf_counter()
            account_id = await seed(services, args.sent, (args.batches + 5) * args.batch * 2)
            print(
                f"seeded {args.sent} emails this month and {(args.batches + 5) * args.batch * 2} "
                "due rows "
                f"in {time.perf_counter() - started:.1f} s ({services.engine.dialect.name})"
            )
            results = {}
            for plan in ("unlimited", "business"):
                await set_plan(services, account_id, plan)
                await measure_leases(services, 5, args.batch)  # warm up
                for name, timings in (
                    await measure_leases(services, args.batches, args.batch)
                ).items():
                    results[f"{plan} plan, {name}"] = timings
            check = await measure_check(services, account_id, args.batches)
        finally:
            await services.close()
    print(f"\nlease_due of {args.batch} rows, median of {args.batches} batches:")
    for plan in ("unlimited", "business"):
        base = statistics.median(results[f"{plan} plan, baseline (no check)"])
        checked = statistics.median(results[f"{plan} plan, with the check"])
        print(
            f"  {plan:9} plan: {base:7.2f} ms without the check, {checked:7.2f} ms with it "
            f"({checked - base:+.2f} ms, {(checked - base) / args.batch * 1000:+.1f} µs/row)"
        )
    print(f"\nthe check's statement alone, median of {args.batches} (interleaved):")
    for name, timings in check.items():
        print(f"  {name:32} {statistics.median(timings):8.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sent",
        type=int,
        default=88_000,
        help="emails sent this month; with the due rows at most Business's 100,000, or they are held",
    )
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch", type=int, default=100, help="rows per lease (the worker's)")
    parser.add_argument("--database-url", default="", help="a PostgreSQL server to use instead")
    args = parser.parse_args(argv)
    # Made and dropped outside the benchmark's event loop (it runs its own).
    with fresh_database(args.database_url) as database_url:
        asyncio.run(run(args, database_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())

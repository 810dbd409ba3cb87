"""What the affiliate program's statements cost: closing a year of monthly statements over a
ledger of `--rows` commission rows, and an affiliate's dashboard totals.

    cd /work/main && .venv/bin/python bench/affiliates.py [--rows 10000] [--affiliates 100]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

`--affiliates` approved affiliates, approved in January, each with a referred account, and
`--rows` commission rows spread evenly over them and over the twelve months of that year
(written straight into a fresh database in bulk). Timed: `close_statements()` on the 15th of the
next January (one statement per affiliate and month, each with its opening balance, the month's
earnings and a payout row from $50), beside the baseline of reading every ledger row into Python
and summing it per affiliate and month (what the statements must at least look at); then the
dashboard totals of one affiliate, median of `--runs`. A benchmark, not a test: the figures
depend on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import sqlalchemy as sa
from smtp_in import fresh_database  # the inbound bench's fresh PostgreSQL database

from mailmark.bootstrap import Services, build_services
from mailmark.config import Settings
from mailmark.core.affiliates import Affiliate, AffiliateStatus
from mailmark.core.model import Account
from mailmark.core.states import AccountStatus
from mailmark.storage.tables import affiliate_ledger, referrals

YEAR = 2030


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


async def seed(services: Services, affiliates: int, rows: int) -> list[int]:
    """Affiliates approved in January with a referred account each, and `rows` commissions."""
    approved = datetime(YEAR, 1, 2, tzinfo=UTC)
    ids: list[int] = []
    async with services.uow() as uow:
        for n in range(affiliates):
            partner = await uow.accounts.add(
                Account(f"partner{n}", "starter", AccountStatus.ACTIVE, approved)
            )
            customer = await uow.accounts.add(
                Account(f"customer{n}", "pro", AccountStatus.ACTIVE, approved)
            )
            assert partner.id is not None and customer.id is not None
            affiliate = await uow.affiliates.add(
                Affiliate(
                    partner.id,
                    f"code{n:04d}",
                    AffiliateStatus.APPROVED,
                    "https://bench.test",
                    "bench",
                    approved,
                    reviewed_at=approved,
                )
            )
            assert affiliate.id is not None
            ids.append(affiliate.id)
            await uow.affiliates.add_referral(customer.id, affiliate.id, approved, approved)
        await uow.commit()
    async with services.engine.begin() as conn:
        customers = dict(
            (await conn.execute(sa.select(referrals.c.affiliate_id, referrals.c.account_id))).all()
        )
        batch = []
        for n in range(rows):
            affiliate_id = ids[n % affiliates]
            month = (n // affiliates) % 12 + 1
            paid_at = datetime(YEAR, month, 7, tzinfo=UTC)
            batch.append(
                {
                    "affiliate_id": affiliate_id,
                    "entry_key": f"commission:ord_{n}",
                    "kind": "commission",
                    "amount_cents": 1500,
                    "month": f"{YEAR}-{month:02d}",
                    "order_id": f"ord_{n}",
                    "referred_account_id": customers[affiliate_id],
                    "occurred_at": paid_at,
                    "recorded_at": paid_at,
                }
            )
        await conn.execute(affiliate_ledger.insert(), batch)
    return ids


async def run(args: argparse.Namespace, database_url: str) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        settings = Settings(
            data_dir=Path(workdir) / "data",
            database_url=database_url,
            hostname="mx.bench.test",
            password_hash_cost="test",
        )
        clock = FixedClock(datetime(YEAR + 1, 1, 15, tzinfo=UTC))
        services = await build_services(settings, clock=clock)
        try:
            ids = await seed(services, args.affiliates, args.rows)
            started = time.perf_counter()
            async with services.engine.connect() as conn:
                sums: dict[tuple[int, str], int] = defaultdict(int)
                for row in await conn.execute(
                    sa.select(
                        affiliate_ledger.c.affiliate_id,
                        affiliate_ledger.c.month,
                        affiliate_ledger.c.amount_cents,
                    )
                ):
                    sums[(row[0], row[1])] += row[2]
            baseline = time.perf_counter() - started

            started = time.perf_counter()
            written = await services.affiliates.close_statements()
            closing = time.perf_counter() - started

            totals = []
            for _ in range(args.runs):
                started = time.perf_counter()
                async with services.uow(read_only=True) as uow:
                    await uow.affiliates.totals(ids[0])
                    await uow.affiliates.statements(ids[0])
                totals.append(time.perf_counter() - started)
            async with services.engine.connect() as conn:
                payouts = await conn.scalar(
                    sa.select(sa.func.count()).where(affiliate_ledger.c.kind == "payout")
                )
            dialect = services.engine.dialect.name
        finally:
            await services.close()
    print(f"{args.rows} ledger rows, {args.affiliates} affiliates, 12 months ({dialect})")
    print(f"  baseline: read and sum every row        {baseline * 1000:10.1f} ms")
    print(
        f"  close_statements: {written} statements, {payouts} payouts"
        f"  {closing * 1000:10.1f} ms ({closing / max(written, 1) * 1000:.2f} ms each)"
    )
    print(
        f"  dashboard totals + statements, median of {args.runs}"
        f"  {statistics.median(totals) * 1000:8.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--affiliates", type=int, default=100)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--database-url", default="", help="a PostgreSQL server to use instead")
    args = parser.parse_args(argv)
    with fresh_database(args.database_url) as database_url:
        asyncio.run(run(args, database_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())

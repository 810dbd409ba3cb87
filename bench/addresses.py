"""Recipient resolution with aliases, alias domains and a catch-all: what each costs at RCPT.

    cd /work/wt/<name> && PYTHONPATH=$PWD/src /work/main/.venv/bin/python bench/addresses.py \\
        [--lookups N] [--database-url URL]

A fresh installation (SQLite in a temporary data directory unless a database URL is given) with
one domain, 50 mailboxes, 50 aliases of two mailboxes each, an alias domain and a catch-all. Each
kind of recipient is resolved N times through `MailboxService.resolve_recipients`, the call the MX
makes at RCPT, once with the few seconds' recipient cache cleared before every lookup (the cost of
a first RCPT for that address: the database queries) and once warm (the cache answering).

Prints microseconds per lookup for each kind, and its cold cost relative to a plain mailbox. This
is a benchmark, not a test: the figures depend on what else the machine does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mailmark.bootstrap import Services, build_services
from mailmark.config import Settings
from mailmark.core.errors import UnknownMailbox

DOMAIN = "acme.test"
ALIAS_DOMAIN = "acme.example"
MAILBOXES = 50

KINDS: list[tuple[str, str]] = [
    ("mailbox", f"user7@{DOMAIN}"),
    ("mailbox +tag", f"user7+news@{DOMAIN}"),
    ("alias (2 mailboxes)", f"team7@{DOMAIN}"),
    ("alias domain → mailbox", f"user7@{ALIAS_DOMAIN}"),
    ("alias domain → alias", f"team7@{ALIAS_DOMAIN}"),
    ("catch-all", f"nobody@{DOMAIN}"),
    ("unknown (catch-all off)", f"nobody@{DOMAIN}"),
]


async def populate(services: Services) -> None:
    await services.accounts.create(
        "acme", owner_email="o@acme.test", password="owner-pass-1", plan="unlimited"
    )
    await services.domains.add(DOMAIN, account_name="acme", trust=True)
    await services.domains.add(ALIAS_DOMAIN, account_name="acme", alias_of=DOMAIN)
    for n in range(MAILBOXES):
        await services.mailboxes.create(f"user{n}@{DOMAIN}")
    for n in range(MAILBOXES):
        pair = [f"user{n}@{DOMAIN}", f"user{(n + 1) % MAILBOXES}@{DOMAIN}"]
        await services.aliases.add(f"team{n}@{DOMAIN}", pair)


async def per_lookup(services: Services, address: str, lookups: int, *, cold: bool) -> float:
    """Microseconds per resolution, the best of three runs of `lookups`."""
    forget: Callable[[], None] = services.mailboxes.forget if cold else (lambda: None)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(lookups):
            forget()
            with contextlib.suppress(UnknownMailbox):
                await services.mailboxes.resolve_recipients(address)
        best = min(best, time.perf_counter() - start)
    return best / lookups * 1e6


async def main(lookups: int, database_url: str) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            database_url=database_url,
            hostname="mx.mailmark.test",
            password_hash_cost="test",
        )
        services = await build_services(settings)
        try:
            await populate(services)
            rows = []
            for kind, address in KINDS:
                catch_all = "user3" if kind == "catch-all" else None
                await services.aliases.set_catch_all(DOMAIN, catch_all)
                cold = await per_lookup(services, address, lookups, cold=True)
                warm = await per_lookup(services, address, lookups, cold=False)
                rows.append((kind, cold, warm))
        finally:
            await services.close()
    base = rows[0][1]
    print(f"{lookups} lookups per kind, best of 3; database: {database_url or 'SQLite'}")
    print(f"{'recipient':26} {'cold µs':>9} {'× mailbox':>10} {'warm µs':>9}")
    for kind, cold, warm in rows:
        print(f"{kind:26} {cold:9.0f} {cold / base:10.2f} {warm:9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lookups", type=int, default=500)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    asyncio.run(main(args.lookups, args.database_url))

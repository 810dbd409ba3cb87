"""How long `mailmark domain verify` takes: a domain's whole record set checked against a DNS server.

    cd /work/main && .venv/bin/python bench/dns_verify.py [--rounds N]

Publishes a correct zone for one domain in a loopback DNS server (tests/fakedns.py) and times
`DomainDns.verify` (every record checked at once, each lookup in its own thread) beside the same
checks made one after another, in the same run; then times one verification against a nameserver
that never answers, which is bounded by the lookup timeout rather than by the number of records.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for `tests.fakedns` when run as `python bench/dns_verify.py`

from mailmark.core.model import DkimKey, DnsRecord
from mailmark.dns_tools.record_set import MailServer
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.dns_tools.verification import DomainDns
from mailmark.security import DkimKeyFactory
from tests.fakedns import FakeDns

DOMAIN = "bench.test"
SERVER = MailServer(hostname="mx.bench.test", public_ips=("192.0.2.10",))
TIMEOUT = 2.0


def keys() -> list[DkimKey]:
    factory = DkimKeyFactory()
    now = datetime.now(UTC)
    rsa_private, rsa_public = factory.generate_rsa()
    ed_private, ed_public = factory.generate_ed25519()
    return [
        DkimKey(1, "mmr", "rsa-sha256", rsa_private, rsa_public, "active", now),
        DkimKey(1, "mme", "ed25519-sha256", ed_private, ed_public, "active", now),
    ]


def publish(fake_dns: FakeDns, records: list[DnsRecord]) -> None:
    for record in records:
        if record.type == "MX":
            fake_dns.add(record.name, "MX", f"{record.priority} {record.value}.")
        elif record.type == "TXT":
            fake_dns.add(record.name, "TXT", record.value)
        else:
            fake_dns.add(record.name, record.type, f"{record.value}.")


async def timed(label: str, rounds: int, run: Callable[[], Awaitable[object]]) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - started) * 1000)
    median = statistics.median(samples)
    print(
        f"{label:44} {median:8.1f} ms median  ({min(samples):.1f}–{max(samples):.1f}, n={rounds})"
    )
    return median


async def main(rounds: int) -> None:
    with FakeDns() as fake_dns:
        dns = DomainDns(DnsResolver([fake_dns.address], timeout=TIMEOUT, cache=False), SERVER)
        records = dns.record_set(DOMAIN, keys())
        publish(fake_dns, records)
        checks = await dns.verify(records)
        bad = [c for c in checks if c.status != "ok"]
        print(f"{len(records)} records, {len(records) - len(bad)} ok")

        async def one_by_one() -> None:
            for record in records:
                await asyncio.to_thread(dns.check, record)

        concurrent = await timed(
            "verify (all records at once)", rounds, lambda: dns.verify(records)
        )
        sequential = await timed("the same checks one after another", rounds, one_by_one)
        print(f"speed-up: {sequential / concurrent:.1f}x")

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        dead = DomainDns(DnsResolver([address], timeout=TIMEOUT, cache=False), SERVER)
        started = time.perf_counter()
        results = await dead.verify(records)
        elapsed = time.perf_counter() - started
        statuses = {c.status for c in results}
        print(
            f"silent nameserver: {elapsed:.2f} s for {len(records)} records "
            f"(lookup timeout {TIMEOUT:g} s), statuses {sorted(statuses)}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    asyncio.run(main(parser.parse_args().rounds))

"""What a vacation responder costs on the delivery path.

    cd /work/main && .venv/bin/python bench/vacation.py [--messages N]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

In one process, on a fresh data dir (SQLite with the default synchronous=FULL, or a new database
on the PostgreSQL server that --database-url names, dropped afterwards), with the MX listener
running:

1. the MX path: N messages sent one after another over one SMTP connection to a mailbox whose
   responder is off (the baseline), on and answering one sender again and again (after the first
   reply every message finds the sender already answered), and on with a new sender each time
   (every message queues a reply: the worst case);
2. the responder alone: the settings rule (`VacationRule.apply`) and `Responder.respond` per
   message, called directly, for the same three cases.

Prints ms per message and msg/s of each case beside the baseline. The outbound worker is not
running: a reply's cost on the delivery path is deciding and queueing it. This is a benchmark,
not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosmtplib

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for `tests.fakedns` when run as `python bench/vacation.py`

from bench.smtp_in import fresh_database
from mailmark.bootstrap import Services, build_services, start_listeners
from mailmark.config import Settings
from mailmark.core.dispositions import Disposition, InboundMessage
from mailmark.core.model import Mailbox
from mailmark.core.vacation import VacationChange, VacationRule
from tests.fakedns import FakeDns

DOMAIN = "bench.test"
MAILBOX = f"inbox@{DOMAIN}"
AWAY = "I am away until Monday and will answer then.\n"


def message(sender: str, index: int) -> bytes:
    return (
        f"From: {sender}\r\nTo: {MAILBOX}\r\nSubject: Message {index}\r\n"
        f"Message-ID: <{index}.{sender}>\r\nDate: Sun, 06 Dec 2026 04:00:00 +0000\r\n\r\n"
        + "A line of text to make the message a few hundred bytes long.\r\n"
        * 8
    ).encode()


async def mx_run(port: int, count: int, sender: Callable[[int], str]) -> float:
    """Seconds to deliver `count` messages one after another over one connection."""
    # Plain SMTP, as most senders on loopback would measure it: TLS is not what is compared.
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60, start_tls=False)
    await client.connect()
    try:
        started = time.perf_counter()
        for index in range(count):
            address = sender(index)
            await client.sendmail(address, [MAILBOX], message(address, index))
        return time.perf_counter() - started
    finally:
        await client.quit()


async def direct_run(
    services: Services, mailbox: Mailbox, count: int, sender: Callable[[int], str]
) -> float:
    """Seconds for the settings rule and the responder on `count` messages, called directly."""
    rule = VacationRule(services.uow, services.clock)
    started = time.perf_counter()
    for index in range(count):
        address = sender(index)
        inbound = InboundMessage(message(address, index), b"", address, [MAILBOX], f"b{index}")
        decided = await rule.apply(inbound, Disposition(mailbox, ("INBOX",)))
        for reply in decided.replies:
            await services.auto_replies.respond(inbound, mailbox, reply)
    return time.perf_counter() - started


async def set_vacation(services: Services, enabled: bool) -> None:
    await services.vacation.set(MAILBOX, VacationChange(enabled=enabled, body=AWAY, days=7))


async def bench(count: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as temp, FakeDns() as dns:
        dns.add("sender.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
        settings = Settings(
            data_dir=Path(temp) / "data",
            hostname="mx.bench.test",
            bind="127.0.0.1",
            mx_port=0,
            submission_port=0,
            submissions_port=0,
            imap_port=0,
            imaps_port=0,
            http_port=0,
            dns_nameservers=[dns.address],
            **({"database_url": database_url} if database_url else {}),
        )
        services = await build_services(settings)
        listeners = await start_listeners(services)
        try:
            await services.accounts.create(
                "bench", owner_email="o@bench.test", password="bench-pass-1", plan="unlimited"
            )
            await services.domains.add(DOMAIN, account_name="bench", trust=True)
            mailbox = await services.mailboxes.create(MAILBOX)
            await report(services, mailbox, listeners.mx_port, count, database_url)
        finally:
            await listeners.close()
            await services.close()


async def report(
    services: Services, mailbox: Mailbox, port: int, count: int, database_url: str | None
) -> None:
    def same(_: int) -> str:
        return "alice@sender.example"

    run = 0

    def fresh(index: int) -> str:
        return f"s{run}-{index}@sender.example"

    cases: list[tuple[str, bool, Callable[[int], str]]] = [
        ("responder off (baseline)", False, same),
        ("on, sender already answered", True, same),
        ("on, a new sender each time", True, fresh),
    ]
    backend = "PostgreSQL" if database_url else "SQLite (synchronous=FULL)"
    print(
        f"vacation bench: {count} messages per case, {backend}, Python {platform.python_version()}"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    await mx_run(port, 20, same)  # warm up: connections, caches, first reply
    measures: list[tuple[str, Callable[[Callable[[int], str]], Awaitable[float]]]] = [
        ("MX path (one connection, sequential)", lambda s: mx_run(port, count, s)),
        ("rule + responder alone", lambda s: direct_run(services, mailbox, count, s)),
    ]
    for title, measure in measures:
        print(f"\n{title}")
        baseline = None
        for label, enabled, sender in cases:
            run += 1
            await set_vacation(services, enabled)
            seconds = await measure(sender)
            per_message = seconds / count * 1000
            baseline = baseline if baseline is not None else per_message
            extra = per_message - baseline
            print(
                f"  {label:<30} {per_message:7.3f} ms/msg  {count / seconds:8.1f} msg/s"
                + ("" if not enabled else f"  (+{extra:.3f} ms/msg over off)")
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with fresh_database(args.database_url or "") as database_url:
        asyncio.run(bench(args.messages, database_url or None))
    return 0


if __name__ == "__main__":
    sys.exit(main())

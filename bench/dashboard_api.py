"""The dashboard's /api list routes at the size of a busy account: 5 domains, 500 mailboxes.

    cd <checkout> && .venv/bin/python bench/dashboard_api.py [--requests N]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

A real `mailmark serve` on a fresh data dir (SQLite, or a fresh PostgreSQL database), an account
on the unlimited plan with 5 trusted domains made through the CLI; the owner signs in over /api
as the web app does (session cookie, CSRF token) and creates 100 mailboxes on each domain
through POST /api/mailboxes. Then, one keep-alive connection, one request at a time (as one
person's browser), N timed requests of each of:

    GET /api/domains                   the domains page: 5 rows, each with its mailbox count
    GET /api/mailboxes                 the mailboxes page: all 500
    GET /api/mailboxes?domain=<one>    one domain's 100
    GET /v1/mailboxes                  baseline: the same 100 through the API-key route

and prints p50/p99 latency of each and the server's CPU per request (less sensitive than
latency to whatever else the machine runs), PASS/FAIL against the target p99 < 50 ms for the /api ones.
Exit status 0 on PASS, 1 on FAIL, 2 on error.

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from api import api_settings_env, start_serve, wait_http  # helpers of the /v1 bench
from smtp_in import (
    BenchError,
    MailmarkSetup,
    Processes,
    free_loopback_port,
    fresh_database,
    mailmark_cli,
    mailmark_command,
    mailmark_setup,
    process_cpu_seconds,
)

TARGET_P99_MS = 50.0
DOMAINS = [f"d{n}.bench.test" for n in range(1, 6)]
MAILBOXES_PER_DOMAIN = 100
OWNER, PASSWORD = "owner@d1.bench.test", "bench-owner-password"
WARMUP_REQUESTS = 20


def provision(setup: MailmarkSetup) -> str:
    """The account and its domains through the CLI; the API key of the first domain."""
    mailmark_cli(
        setup,
        "account",
        "create",
        "bench",
        "--owner",
        OWNER,
        f"--password={PASSWORD}",
        "--plan",
        "unlimited",
    )
    for domain in DOMAINS:
        mailmark_cli(setup, "domain", "add", domain, "--account", "bench", "--trust")
    result = subprocess.run(
        [*mailmark_command(), "apikey", "create", DOMAINS[0], "--name", "bench"],
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


def signed_in(port: int) -> tuple[httpx.Client, str]:
    """A client with the owner's session cookie, and the CSRF token of that session."""
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=30)
    token = client.get("/api/session").json()["csrfToken"]
    answer = client.post(
        "/api/auth/sign-in",
        json={"email": OWNER, "password": PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    if answer.status_code != 200:
        raise BenchError(f"sign-in answered {answer.status_code}: {answer.text}")
    return client, answer.json()["csrfToken"]


def create_mailboxes(client: httpx.Client, csrf: str) -> None:
    for domain in DOMAINS:
        for n in range(MAILBOXES_PER_DOMAIN):
            answer = client.post(
                "/api/mailboxes",
                json={"domain": domain, "localPart": f"user{n:03d}", "displayName": f"User {n}"},
                headers={"X-CSRF-Token": csrf},
            )
            if answer.status_code != 201:
                raise BenchError(
                    f"POST /api/mailboxes answered {answer.status_code}: {answer.text}"
                )


def timed(client: httpx.Client, path: str, requests: int, expect: int) -> list[float]:
    """Seconds per request, after a warm-up; each answer is checked for its size."""
    latencies = []
    for n in range(WARMUP_REQUESTS + requests):
        started = time.perf_counter()
        answer = client.get(path)
        elapsed = time.perf_counter() - started
        if answer.status_code != 200 or len(answer.json()) != expect:
            raise BenchError(f"GET {path} answered {answer.status_code}: {answer.text[:300]}")
        if n >= WARMUP_REQUESTS:
            latencies.append(elapsed)
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench(args: argparse.Namespace, procs: Processes) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="mailmark-bench-dashboard-", dir=args.workdir))
    try:
        with fresh_database(args.database_url) as database_url:
            setup = mailmark_setup(
                workdir, database_url, f"127.0.0.1:{free_loopback_port()}", "FULL"
            )
            http_port = free_loopback_port()
            setup.env.update(MAILMARK_HTTP_PORT=str(http_port), **api_settings_env())
            api_key = provision(setup)
            mailmark = start_serve(procs, setup, 1)
            wait_http(http_port, mailmark, setup.log)
            client, csrf = signed_in(http_port)
            started = time.perf_counter()
            create_mailboxes(client, csrf)
            made = time.perf_counter() - started
            total = len(DOMAINS) * MAILBOXES_PER_DOMAIN
            print(
                f"{len(DOMAINS)} domains, {total} mailboxes (created through POST /api/mailboxes "
                f"in {made:.1f} s); store: "
                + ("PostgreSQL" if database_url else "SQLite (synchronous=FULL)")
            )
            print(f"{args.requests} sequential requests each on one keep-alive connection")
            keyed = httpx.Client(
                base_url=f"http://127.0.0.1:{http_port}",
                trust_env=False,
                timeout=30,
                headers={"Authorization": f"Bearer {api_key}"},
            )
            rows = [
                ("GET /api/domains", client, "/api/domains", len(DOMAINS), True),
                ("GET /api/mailboxes", client, "/api/mailboxes", total, True),
                (
                    "GET /api/mailboxes?domain=",
                    client,
                    f"/api/mailboxes?domain={DOMAINS[0]}",
                    MAILBOXES_PER_DOMAIN,
                    True,
                ),
                (
                    "GET /v1/mailboxes (baseline)",
                    keyed,
                    "/v1/mailboxes",
                    MAILBOXES_PER_DOMAIN,
                    False,
                ),
            ]
            print(
                f"{'route':<30} {'rows':>5} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>10}"
                "  target p99 < 50 ms"
            )
            passed = True
            for label, http, path, expect, judged in rows:
                cpu_before = process_cpu_seconds(mailmark.pid)
                latencies = timed(http, path, args.requests, expect)
                cpu_after = process_cpu_seconds(mailmark.pid)
                cpu = "-"
                if cpu_before is not None and cpu_after is not None:
                    runs = WARMUP_REQUESTS + args.requests
                    cpu = f"{(cpu_after - cpu_before) * 1000 / runs:.2f}"
                p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
                verdict = ""
                if judged:
                    ok = p99 < TARGET_P99_MS
                    passed = passed and ok
                    verdict = "PASS" if ok else "FAIL"
                print(f"{label:<30} {expect:>5} {p50:>8.1f} {p99:>8.1f} {cpu:>10}  {verdict}")
            client.close()
            keyed.close()
            procs.stop(mailmark)
        return 0 if passed else 1
    finally:
        procs.stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="p50/p99 of the dashboard's /api list routes with 5 domains, 500 mailboxes."
    )
    add = parser.add_argument
    add("--requests", "-n", type=int, default=300, help="timed requests per route (300)")
    add(
        "--database-url",
        default="",
        metavar="URL",
        help="PostgreSQL server, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test: a "
        "fresh database is created there and dropped afterwards (default: SQLite)",
    )
    add("--workdir", type=Path, default=None, help="where to create the temporary data dir")
    add("--keep", action="store_true", help="keep the data dir and the server log")
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error("needs --requests >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    procs = Processes()
    try:
        return bench(args, procs)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())

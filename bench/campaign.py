"""Launching a large campaign through a real `mailmark serve`, beside `POST /v1/send` campaigns.

    cd /work/main && .venv/bin/python bench/campaign.py [--rows N] [--baseline-rows M]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--profile-mailmark F]

Mailmark: a fresh data dir (SQLite, or a fresh PostgreSQL database with --database-url), an
account, domain, mailbox and API key made through the CLI. N contacts (default 100,000) are
imported into a list with POST /v1/contacts/import; a one-stage campaign to that list is created
and launched (POST /v1/campaigns, …/launch); the clock runs from the launch request until the
queue holds one row per recipient (counted in the database every 0.2 s). The scheduler of `serve`
does the work, in batches, as it would in production.

Baseline of the same run: M emails (default 20,000) queued through POST /v1/send with
`type: "campaign"` in requests of 1,000 recipients each, one after the other, on the same server.

Prints emails queued per second for both, the launch's total time, and the server's peak RSS
(VmHWM) after start, after the import and after the launch. The DNS server given to Mailmark is a
dead loopback port, so the queue's delivery attempts fail fast and stay deferred: they still take
their share of the CPU, as real deliveries would.

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import httpx
from api import SENDER, api_settings_env, count_queue_rows, provision, wait_http
from contacts import csv_chunks, peak_rss_mb
from smtp_in import (
    BenchError,
    MailmarkSetup,
    Processes,
    free_loopback_port,
    fresh_database,
    mailmark_setup,
    start_mailmark,
)

SEND_REQUEST = 1000  # recipients per POST /v1/send campaign request (its limit)
TARGET_SECONDS = 60
TARGET_RSS_MB = 300


def import_list(client: httpx.Client, rows: int) -> str:
    made = client.post("/v1/lists", json={"name": "Bench audience"})
    if made.status_code != 201:
        raise BenchError(f"list refused: {made.status_code} {made.text}")
    list_id: str = made.json()["_id"]
    response = client.post(
        "/v1/contacts/import",
        content=csv_chunks(rows),
        params={"listId": list_id},
        headers={"content-type": "text/csv"},
    )
    if response.status_code != 202:
        raise BenchError(f"import refused: {response.status_code} {response.text}")
    job = response.json()
    while job["status"] == "running":
        time.sleep(0.1)
        job = client.get(f"/v1/contacts/import/{job['_id']}").json()
    if job["status"] != "done" or job["created"] != rows:
        raise BenchError(f"import failed: {job}")
    return list_id


def wait_queued(setup: MailmarkSetup, wanted: int, server: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while count_queue_rows(setup) < wanted:
        if time.monotonic() > deadline:
            raise BenchError(f"fewer than {wanted} queue rows after {timeout:.0f} s")
        time.sleep(0.2)


def launch(client: httpx.Client, list_id: str) -> None:
    created = client.post(
        "/v1/campaigns",
        json={
            "name": "Bench launch",
            "from": SENDER,
            "audience": {"listIds": [list_id]},
            "stages": [
                {
                    "subject": "Hello {{firstName|there}} at {{company|your company}}",
                    "html": "<p>Hi {{firstName|there}},</p><p>A short note for {{city}}.</p>",
                },
                {"delayDays": 3, "html": "<p>Following up.</p>"},
            ],
        },
    )
    if created.status_code != 201:
        raise BenchError(f"campaign refused: {created.status_code} {created.text}")
    launched = client.post(f"/v1/campaigns/{created.json()['_id']}/launch")
    if launched.status_code != 200:
        raise BenchError(f"launch refused: {launched.status_code} {launched.text}")


def send_baseline(client: httpx.Client, rows: int) -> None:
    for start in range(0, rows, SEND_REQUEST):
        recipients = [f"base{n}@example.com" for n in range(start, min(rows, start + SEND_REQUEST))]
        response = client.post(
            "/v1/send",
            json={
                "from": SENDER,
                "to": recipients,
                "type": "campaign",
                "subject": "Hello {{firstName}}",
                "html": "<p>Hi {{firstName}},</p><p>A short note.</p>",
                "variables": {r: {"firstName": r.split("@")[0]} for r in recipients},
            },
        )
        if response.status_code != 200:
            raise BenchError(f"send refused: {response.status_code} {response.text[:300]}")


def bench(args: argparse.Namespace, procs: Processes) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="mailmark-bench-campaign-"))
    try:
        return _run(args, procs, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(args: argparse.Namespace, procs: Processes, workdir: Path) -> int:
    with fresh_database(args.database_url) as database_url:
        setup = mailmark_setup(workdir, database_url, f"127.0.0.1:{free_loopback_port()}", "FULL")
        http_port = free_loopback_port()
        setup.env.update(MAILMARK_HTTP_PORT=str(http_port), **api_settings_env())
        api_key = provision(setup)
        server = start_mailmark(procs, setup, profile=args.profile_mailmark, serve_command=None)[0]
        wait_http(http_port, server, setup.log)
        try:
            rss_start = peak_rss_mb(server.pid)
            with httpx.Client(
                base_url=f"http://127.0.0.1:{http_port}",
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=600,
                trust_env=False,
            ) as client:
                started = time.perf_counter()
                list_id = import_list(client, args.rows)
                import_s = time.perf_counter() - started
                rss_import = peak_rss_mb(server.pid)
                load_before = os.getloadavg()[0]
                started = time.perf_counter()
                launch(client, list_id)
                launched_s = time.perf_counter() - started
                wait_queued(setup, args.rows, server, timeout=3600)
                launch_s = time.perf_counter() - started
                rss_launch = peak_rss_mb(server.pid)
                load_after = os.getloadavg()[0]
                started = time.perf_counter()
                send_baseline(client, args.baseline_rows)
                wait_queued(setup, args.rows + args.baseline_rows, server, timeout=3600)
                baseline_s = time.perf_counter() - started
        finally:
            procs.stop(server)

    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"campaign bench: {args.rows} recipients, {backend}, load {load_before:.1f} → {load_after:.1f}"
    )
    print(
        f"  baseline: POST /v1/send campaigns of {SEND_REQUEST}  "
        f"{args.baseline_rows / baseline_s:>8,.0f} emails/s ({args.baseline_rows} in {baseline_s:.1f} s)"
    )
    print(
        f"  campaign launch → all stage-1 queued    {args.rows / launch_s:>8,.0f} emails/s "
        f"({launch_s:.1f} s; target < {TARGET_SECONDS} s; launch request {launched_s:.1f} s)"
    )
    print(f"  contact import before it: {import_s:.1f} s")
    print(
        f"  server peak RSS: {rss_start:.0f} MB after start, {rss_import:.0f} MB after the import, "
        f"{rss_launch:.0f} MB after the launch (target < {TARGET_RSS_MB} MB)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=20_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--profile-mailmark",
        type=Path,
        metavar="FILE",
        help="run serve under cProfile (every thread, CPU time) and write its pstats to FILE",
    )
    args = parser.parse_args(argv)
    procs = Processes()
    try:
        return bench(args, procs)
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 2
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())

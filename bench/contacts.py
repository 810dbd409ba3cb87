"""Contact CSV import and export through a real `mailmark serve`, beside a bare csv-module parse.

    cd /work/main && .venv/bin/python bench/contacts.py [--rows N]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Mailmark: a fresh data dir (SQLite, or a fresh PostgreSQL database with --database-url), an
account, domain and API key made through the CLI. A CSV of N rows (default 100,000: email, first
and last name, company, tags and two custom fields) is generated and streamed to
POST /v1/contacts/import in 64 KiB chunks; the import's progress is polled until it is done.
Then the same file is imported again with onDuplicate=update (every row an existing contact),
and GET /v1/contacts/export is streamed.

Prints rows/s for each phase (from the upload's first byte to the import's status "done"), the
peak RSS of the server process (VmHWM) before and after, the import's largest batch in memory,
and, as the baseline of the same run, rows/s of Python's csv module alone reading the same bytes.

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import httpx
from api import api_settings_env, provision, wait_http
from smtp_in import (
    BenchError,
    Processes,
    free_loopback_port,
    fresh_database,
    mailmark_setup,
    start_mailmark,
)

CHUNK = 64 * 1024


def csv_chunks(rows: int) -> Iterator[bytes]:
    yield b"email,first_name,last_name,company,tags,plan,city\n"
    buffer = io.StringIO()
    for n in range(rows):
        buffer.write(
            f"person{n}@example.com,First{n},Last{n},Company {n % 977},"
            f'"lead,t{n % 13}",p{n % 5},City {n % 101}\n'
        )
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue().encode()
            buffer = io.StringIO()
    yield buffer.getvalue().encode()


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed_import(client: httpx.Client, rows: int, mode: str) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    response = client.post(
        "/v1/contacts/import",
        content=csv_chunks(rows),
        params={"onDuplicate": mode},
        headers={"content-type": "text/csv"},
    )
    if response.status_code != 202:
        raise BenchError(f"import refused: {response.status_code} {response.text}")
    job: dict[str, object] = response.json()
    while job["status"] == "running":
        time.sleep(0.05)
        job = client.get(f"/v1/contacts/import/{job['_id']}").json()
    elapsed = time.perf_counter() - started
    if job["status"] != "done":
        raise BenchError(f"import failed: {job}")
    return elapsed, job


def bench(args: argparse.Namespace, procs: Processes) -> int:
    data = b"".join(csv_chunks(args.rows))
    started = time.perf_counter()
    parsed = sum(1 for _ in csv.reader(io.StringIO(data.decode()))) - 1
    baseline = parsed / (time.perf_counter() - started)

    workdir = Path(tempfile.mkdtemp(prefix="mailmark-bench-contacts-"))
    try:
        return _run(args, procs, workdir, data, baseline)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(
    args: argparse.Namespace, procs: Processes, workdir: Path, data: bytes, baseline: float
) -> int:
    with fresh_database(args.database_url) as database_url:
        setup = mailmark_setup(workdir, database_url, f"127.0.0.1:{free_loopback_port()}", "FULL")
        http_port = free_loopback_port()
        setup.env.update(MAILMARK_HTTP_PORT=str(http_port), **api_settings_env())
        api_key = provision(setup)
        server = start_mailmark(procs, setup, profile=None, serve_command=None)[0]
        wait_http(http_port, server, setup.log)
        try:
            rss_idle = peak_rss_mb(server.pid)
            with httpx.Client(
                base_url=f"http://127.0.0.1:{http_port}",
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=600,
                trust_env=False,
            ) as client:
                fresh_s, fresh = timed_import(client, args.rows, "update")
                update_s, updated = timed_import(client, args.rows, "update")
                started = time.perf_counter()
                exported = 0
                with client.stream("GET", "/v1/contacts/export") as response:
                    for line in response.iter_lines():
                        exported += 1 if line else 0
                export_s = time.perf_counter() - started
            rss_peak = peak_rss_mb(server.pid)
        finally:
            procs.stop(server)

    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"contacts bench: {args.rows} rows, {len(data) / 1e6:.1f} MB CSV, {backend}")
    print(f"  baseline: csv module alone      {baseline:>10,.0f} rows/s")
    print(
        f"  import (new contacts)           {args.rows / fresh_s:>10,.0f} rows/s "
        f"({fresh_s:.1f} s; created {fresh['created']}, failed {fresh['failed']}, "
        f"largest batch held {fresh['peakRowsHeld']} rows)"
    )
    print(
        f"  import again (all updates)      {args.rows / update_s:>10,.0f} rows/s "
        f"({update_s:.1f} s; updated {updated['updated']})"
    )
    print(
        f"  export (streamed)               {(exported - 1) / export_s:>10,.0f} rows/s "
        f"({export_s:.1f} s; {exported - 1} rows)"
    )
    print(f"  server peak RSS: {rss_idle:.0f} MB after start, {rss_peak:.0f} MB after the run")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
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

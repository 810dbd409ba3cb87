"""Tracking endpoints' throughput: Mailmark's open pixel and click redirect against a bare Litestar
endpoint answering the same bytes, same run.

    cd <checkout> && .venv/bin/python bench/tracking.py [--seconds N] [--connections C]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Mailmark: a real `mailmark serve` on a fresh data dir (SQLite, or a fresh PostgreSQL database with
--database-url), provisioned through the CLI as bench/api.py does; one campaign email is queued over
POST /v1/send (scheduled 30 days ahead, so the outbound worker stays idle) and its pixel and first
link redirect are read from the queued message itself. Each request is a signed URL checked with
its HMAC, its message looked up, and the open or click queued for the batched event writer.

Bare: a Litestar app in its own process, on uvicorn with the settings `mailmark serve` uses, with
one GET route per endpoint: the same GIF, and a 302 to the same URL.

Load: an asyncio HTTP/1.1 keep-alive client in a separate process, C connections for N seconds
after a 2 s warm-up, per endpoint and server. Prints requests/s, p50/p99, the ratio Mailmark/bare
(target >= 0.5) and the opens and clicks written once the load stopped. Exit status 0 on PASS, 1
on FAIL, 2 on error.

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from api import (  # the REST API bench: same provisioning, same server start
    LISTENING_HTTP,
    api_settings_env,
    post_json,
    provision,
    start_serve,
    wait_http,
)
from smtp_in import (
    BenchError,
    Processes,
    _pg_execute,
    event_loop_runner,
    free_loopback_port,
    fresh_database,
    log_tail,
    mailmark_setup,
)

TARGET_RATIO = 0.5
WARMUP_SECONDS = 2
LINK = "https://shop.example/spring?utm_source=mail"
READER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari"
BARE_SERVER = "--bare-server"  # internal: this file as the bare Litestar server's process
LOAD_CLIENT = "--load-client"  # internal: this file as the load generator's process
PIXEL_PATH = re.compile(r'src="https?://[^/"]+(/t/o/[^"]+)"')
CLICK_PATH = re.compile(r'href="https?://[^/"]+(/t/c/[^"]+)"')


def bare_server_main(port: int) -> int:
    import uvicorn
    from litestar import Litestar, Response, get

    from mailmark.core.tracking import PIXEL_GIF

    headers = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}

    @get("/t/o/{token:str}/{signature:str}")
    async def pixel(token: str, signature: str) -> Response[bytes]:
        return Response(PIXEL_GIF, media_type="image/gif", headers=headers)

    @get("/t/c/{token:str}/{index:str}/{signature:str}")
    async def click(token: str, index: str, signature: str) -> Response[bytes]:
        return Response(b"", status_code=302, headers={**headers, "Location": LINK})

    app = Litestar([pixel, click], logging_config=None, signature_namespace={"Response": Response})
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


async def _connection(
    port: int, request: bytes, stop_at: float, latencies: list[float], counts: dict[str, int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            await reader.readexactly(int(match[1]) if match else 0)
            latencies.append(time.perf_counter() - start)
            counts["ok" if status in (200, 302) else "other"] += 1
    finally:
        writer.close()


def load_client_main(spec: dict[str, Any]) -> int:
    """`connections` keep-alive connections GETting one path for `seconds`; one JSON line."""
    request = (
        f"GET {spec['path']} HTTP/1.1\r\nHost: 127.0.0.1:{spec['port']}\r\n"
        f"User-Agent: {READER}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    counts = {"ok": 0, "other": 0}

    async def run(seconds: float) -> float:
        start = time.perf_counter()
        stop_at = start + seconds
        await asyncio.gather(
            *(
                _connection(spec["port"], request, stop_at, latencies, counts)
                for _ in range(spec["connections"])
            )
        )
        return time.perf_counter() - start

    runner, _ = event_loop_runner()
    runner(run(WARMUP_SECONDS))
    latencies.clear()
    counts.update(ok=0, other=0)
    seconds = runner(run(spec["seconds"]))
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[max(0, math.ceil(p / 100 * len(latencies)) - 1)] if latencies else 0.0

    print(json.dumps({**counts, "seconds": seconds, "p50": pct(50), "p99": pct(99)}))
    return 0


@dataclass
class Result:
    name: str
    ok: int
    other: int
    seconds: float
    p50: float
    p99: float

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def load(name: str, port: int, path: str, seconds: int, connections: int) -> Result:
    spec = {"port": port, "path": path, "seconds": seconds, "connections": connections}
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), LOAD_CLIENT, json.dumps(spec)],
        check=False,
        capture_output=True,
        text=True,
        timeout=seconds + WARMUP_SECONDS + 120,
    )
    if result.returncode != 0:
        raise BenchError(f"the load client failed ({result.returncode}): {result.stderr[-2000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    if data["other"]:
        raise BenchError(f"{name}: {data['other']} answers were neither 200 nor 302")
    return Result(name, data["ok"], data["other"], data["seconds"], data["p50"], data["p99"])


def query(database_url: str, data_dir: Path, statement: str) -> Any:
    if database_url:
        return asyncio.run(_pg_execute(database_url, statement))
    with contextlib.closing(sqlite3.connect(data_dir / "mailmark.db")) as db:
        row = db.execute(statement).fetchone()
        return row[0] if row else None


def tracked_paths(database_url: str, data_dir: Path) -> tuple[str, str]:
    """The pixel and first redirect of the one queued message, read from its stored bytes."""
    key = query(database_url, data_dir, "SELECT blob_key FROM outbound_messages")
    raw = (data_dir / "blobs" / key[:2] / key).read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(("html",))
    if part is None:
        raise BenchError("the queued campaign email has no HTML part")
    html = part.get_content()  # type: ignore[attr-defined]
    pixel, click = PIXEL_PATH.search(html), CLICK_PATH.search(html)
    if pixel is None or click is None:
        raise BenchError(f"no pixel or redirect in the queued email:\n{html}")
    return pixel[1], click[1]


def http_port(log: Path, serve: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """The port `mailmark serve` logs its HTTP listener on (after the MX's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = LISTENING_HTTP.search(log.read_text(errors="replace"))
        if match is not None:
            return int(match[2])
        if serve.poll() is not None:
            break
        time.sleep(0.05)
    raise BenchError(f"mailmark serve logged no HTTP port:\n{log_tail(log)}")


def bench(args: argparse.Namespace, procs: Processes) -> int:
    with (
        tempfile.TemporaryDirectory(prefix="mailmark-bench-tracking-") as tmp,
        fresh_database(args.database_url) as database_url,
    ):
        workdir = Path(tmp)
        setup = mailmark_setup(workdir, database_url, "127.0.0.1:9", "FULL")
        setup.env.update(api_settings_env())
        key = provision(setup)
        serve = start_serve(procs, setup, 1)
        port = http_port(setup.log, serve)
        wait_http(port, serve, setup.log)
        later = int((time.time() + 30 * 86400) * 1000)
        body = {
            "type": "campaign",
            "from": "hello@acme.bench.test",
            "to": ["reader@example.net"],
            "subject": "Spring",
            "html": f'<p>Hello, see <a href="{LINK}">the sale</a>.</p>',
            "scheduledAt": later,
        }
        status, answer = post_json(port, json.dumps(body), f"Bearer {key}")
        if status != 200:
            raise BenchError(f"the campaign send was refused ({status}): {answer}")
        pixel, click = tracked_paths(database_url, setup.data_dir)

        bare_port = free_loopback_port()
        bare_log = workdir / "bare.log"
        with bare_log.open("wb") as out:
            bare = procs.start(
                "bare Litestar",
                [sys.executable, str(Path(__file__).resolve()), BARE_SERVER, str(bare_port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_http(bare_port, bare, bare_log)

        results = []
        for label, path in (("pixel", pixel), ("click", click)):
            for name, target in (("bare Litestar", bare_port), ("Mailmark", port)):
                results.append(
                    load(f"{name} {label}", target, path, args.seconds, args.connections)
                )
        procs.stop(bare)
        # A clean stop writes what the batched writer still holds.
        procs.stop(serve)
        written = {
            kind: query(
                database_url,
                setup.data_dir,
                f"SELECT count(*) FROM events WHERE type = 'email.{kind}'",
            )
            for kind in ("opened", "clicked")
        }

    load_avg = os.getloadavg()
    print(
        f"\n{args.connections} connections, {args.seconds} s per run after {WARMUP_SECONDS} s "
        f"warm-up; {'PostgreSQL' if database_url else 'SQLite'}; "
        f"load average {load_avg[0]:.2f} {load_avg[1]:.2f} on {os.cpu_count()} CPUs"
    )
    print(f"{'server':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for result in results:
        print(
            f"{result.name:<22} {result.rate:>9.0f} {result.p50 * 1000:>8.2f} "
            f"{result.p99 * 1000:>8.2f}"
        )
    passed = True
    for index, label in ((0, "pixel"), (2, "click")):
        bare_rate, mailmark_rate = results[index].rate, results[index + 1].rate
        ratio = mailmark_rate / bare_rate if bare_rate else 0.0
        verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
        passed &= ratio >= TARGET_RATIO
        print(f"{label}: Mailmark/bare {ratio:.2f} (target >= {TARGET_RATIO}) {verdict}")
    print(
        f"events written: {written['opened']} opens (repeats within a minute are one open), "
        f"{written['clicked']} clicks for {results[3].ok} answered in the timed run (plus the "
        "warm-up's)"
    )
    return 0 if passed else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database-url", default="")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [BARE_SERVER]:
        return bare_server_main(int(argv[1]))
    if argv[:1] == [LOAD_CLIENT]:
        return load_client_main(json.loads(argv[1]))
    procs = Processes()
    try:
        return bench(parse_args(argv), procs)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())

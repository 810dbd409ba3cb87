"""TLS handshakes on IMAPS before and after a certificate reload, and what a reload costs.

    cd /work/main && .venv/bin/python bench/tls.py [--seconds 5] [--clients 2] [--reloads 50]

Starts Mailmark's listeners in this process (a fresh data dir, SQLite) with MAILMARK_TLS_CERT/_KEY
pointing at a self-signed RSA-2048 pair. Client processes (`--clients`, each on its own core
where there is one) open connections to the IMAPS port one after another for `--seconds`: full
TLS 1.3 handshake, read the `* OK` greeting, close. Then the pair on disk is replaced and the
holder reloaded `--reloads` times (alternating two pairs: each reload reads, checks and loads a
pair), and the same load runs again. Prints handshakes per second before and after the reload
(the baseline is the same listener before any reload: a reload must leave it as fast) and the
reload time (median and worst).

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from mailmark.bootstrap import build_services, start_listeners
from mailmark.config import Settings
from mailmark.security import ensure_self_signed_certificate

HOSTNAME = "mx.bench.test"


def handshakes(port: int, seconds: float) -> tuple[int, int]:
    """Full handshakes completed (greeting read) in `seconds`, and failures; in a client process."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    done = failed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                context.wrap_socket(raw) as tls,
            ):
                if not tls.recv(256).startswith(b"* OK"):
                    raise ConnectionError("no greeting")
            done += 1
        except (OSError, ssl.SSLError):
            failed += 1
    return done, failed


async def load(pool: ProcessPoolExecutor, port: int, clients: int, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    results = await asyncio.gather(
        *(loop.run_in_executor(pool, handshakes, port, seconds) for _ in range(clients))
    )
    failures = sum(failed for _, failed in results)
    if failures:
        raise SystemExit(f"{failures} handshakes failed")
    return sum(done for done, _ in results) / seconds


async def main(seconds: float, clients: int, reloads: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mailmark-bench-tls-") as scratch:
        base = Path(scratch)
        pairs = [ensure_self_signed_certificate(base / name, HOSTNAME) for name in ("a", "b")]
        live_cert, live_key = base / "fullchain.pem", base / "privkey.pem"
        shutil.copyfile(pairs[0][0], live_cert)
        shutil.copyfile(pairs[0][1], live_key)
        settings = Settings(
            data_dir=base / "data",
            hostname=HOSTNAME,
            mx_port=0,
            submission_port=0,
            submissions_port=0,
            imap_port=0,
            imaps_port=0,
            managesieve_port=0,
            http_port=0,
            tls_cert=live_cert,
            tls_key=live_key,
            tls_reload_interval="1h",  # type: ignore[arg-type]
            sqlite_synchronous="NORMAL",
        )
        services = await build_services(settings)
        listeners = await start_listeners(services)
        try:
            port = listeners.imaps_port
            with ProcessPoolExecutor(clients) as pool:
                await load(pool, port, clients, 1.0)  # warm-up: processes started, caches filled
                before = await load(pool, port, clients, seconds)
                timings = []
                for round_ in range(reloads):
                    cert, key = pairs[(round_ + 1) % 2]
                    shutil.copyfile(key, live_key)
                    shutil.copyfile(cert, live_cert)
                    started = time.perf_counter()
                    listeners.certificates.reload()
                    timings.append(time.perf_counter() - started)
                after = await load(pool, port, clients, seconds)
        finally:
            await listeners.close()
            await services.close()
    print(f"IMAPS TLS 1.3 handshakes, RSA-2048, {clients} client process(es), {seconds:g} s each:")
    print(f"  before reload (baseline)  {before:8.0f} handshakes/s")
    print(f"  after {reloads} reloads       {after:8.0f} handshakes/s  ({after / before:.2f}x)")
    print(
        f"reload (read, check, load): median {statistics.median(timings) * 1000:.2f} ms, "
        f"worst {max(timings) * 1000:.2f} ms over {reloads}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--reloads", type=int, default=50)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.clients, arguments.reloads))

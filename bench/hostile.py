"""Hostile clients against one `mailmark serve`: does an honest client still get served?

    .venv/bin/python bench/hostile.py [--seconds N] [--attackers N] [--imap-processes N]
                                      [--imap-cpu-share F]

A real `mailmark serve` on a fresh data dir (SQLite, default settings) is provisioned through the
CLI with an account, a trusted domain, a mailbox and an API key. An honest client then measures,
one after the other and again and again, three latencies: the MX greeting (connect to `220`),
an IMAP LOGIN (command to tagged OK) and `GET /v1/mailboxes` with the API key. It does so for N
seconds alone (the baseline), then for N seconds while attackers, in a separate process and from
another loopback address (127.0.0.2, so that per-IP limits apply to them as to a remote client),
run the attacks of issue 19:

- IMAP `LIST "" "*%*%…x"` with 5,000 pairs, over and over on several connections;
- IMAP `FETCH 1 (BINARY.PEEK[2]<n.1> …)`, 99 partials of an 8 MiB base64 part per command;
- HTTP requests whose headers never finish (a slowloris), as many connections as it can open;
- SMTP DATA of 24 MiB messages trickled at 1 MiB/s on many connections.

With `--imap-processes N` the server runs `serve --imap-processes N`: IMAP in processes of its
own, apart from MX and HTTP. `--imap-cpu-share F` sets `MAILMARK_IMAP_CPU_SHARE` (the processor
time each client address's IMAP commands may use, core/cpu_ration.py; 0 turns the ration off), to
compare with and without it in the same hour.

Prints p50/p99 of each latency with and without the attack and their ratio (target: p99 moves by
less than 2x), the main server process's peak RSS and its peak number of open descriptors, the
processor time of it and of its descendants (CPU pool workers, IMAP processes), and what the
attackers achieved (connections refused, commands answered). Exit status 0 when every p99 ratio
is under 2, 1 otherwise, 2 on error.

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import os
import re
import resource
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))

from smtp_in import children  # process handling shared by the benches

DOMAIN = "acme.bench.test"
MAILBOX = f"sales@{DOMAIN}"
PASSWORD = "bench-pass-1"
ATTACKER = "127.0.0.2"
TARGET_RATIO = 2.0
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    workdir: Path
    env: dict[str, str]
    ports: dict[str, int]
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def fresh(cls, workdir: Path, settings: dict[str, str]) -> Server:
        ports = {
            name: free_port()
            for name in ("MX", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "HTTP", "MANAGESIEVE")
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILMARK_")}
        env.update(
            MAILMARK_DATA_DIR=str(workdir / "data"),
            MAILMARK_HOSTNAME="mx.bench.test",
            MAILMARK_BIND="127.0.0.1",
            MAILMARK_DNS_NAMESERVERS="127.0.0.1:9",  # no DNS: SPF/DKIM lookups fail fast
            **{f"MAILMARK_{name}_PORT": str(port) for name, port in ports.items()},
            **settings,
        )
        return cls(workdir, env, ports)

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "mailmark", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def start(self, *arguments: str) -> None:
        log = (self.workdir / "serve.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mailmark", "serve", *arguments],
            env=self.env,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        waiting = ["HTTP", "IMAPS"]
        while waiting and time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.ports[waiting[0]]), 1),
            ):
                waiting.pop(0)
                continue
            time.sleep(0.2)
        if waiting:
            raise RuntimeError("mailmark serve did not start:\n" + self.log_tail())

    def log_tail(self) -> str:
        return "\n".join(
            (self.workdir / "serve.log").read_text(errors="replace").splitlines()[-30:]
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def usage(self) -> tuple[int, int]:
        """(peak RSS in KiB so far, open descriptors now) of the server process."""
        assert self.process is not None
        pid = self.process.pid
        status = Path(f"/proc/{pid}/status").read_text()
        peak = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")
        )
        return peak, len(os.listdir(f"/proc/{pid}/fd"))

    def cpu_seconds(self) -> tuple[float, float]:
        """(processor seconds the server used so far, those of its live descendants: the CPU
        pool's workers, and the IMAP processes with theirs)."""
        assert self.process is not None
        pid = self.process.pid
        return process_cpu(pid), sum(process_cpu(child) for child in descendants(pid))


def descendants(pid: int) -> list[int]:
    return [found for child in children(pid) for found in (child, *descendants(child))]


def process_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------
# The honest client
# ------------------------------------------------------------------------------------------------


@dataclass
class Latencies:
    samples: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, seconds: float | None) -> None:
        if seconds is None:
            self.failures[name] = self.failures.get(name, 0) + 1
        else:
            self.samples.setdefault(name, []).append(seconds)


async def timed(probe: Callable[[], Awaitable[None]], limit: float = 30.0) -> float | None:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), limit)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, AssertionError):
        return None
    return time.perf_counter() - start


async def mx_greeting(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert (await reader.readline()).startswith(b"220 ")
    finally:
        writer.close()


def client_tls() -> ssl.SSLContext:
    """The server's certificate is self-signed: encrypt, but do not verify."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def imap_login(port: int) -> float:
    """Seconds from LOGIN to its tagged OK over IMAPS (the connection, the TLS handshake and the
    greeting are not counted)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_tls())
    try:
        assert (await reader.readline()).startswith(b"* OK")
        start = time.perf_counter()
        writer.write(f'a1 LOGIN "{MAILBOX}" "{PASSWORD}"\r\n'.encode())
        while not (line := await reader.readline()).startswith(b"a1 "):
            assert line
        assert line.startswith(b"a1 OK"), line
        return time.perf_counter() - start
    finally:
        writer.close()


async def api_get(port: int, key: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET /v1/mailboxes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        await reader.read()
    finally:
        writer.close()


async def login_probe(port: int, out: list[float]) -> None:
    out.append(await imap_login(port))


async def honest_client(server: Server, key: str, seconds: float) -> Latencies:
    found = Latencies()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found.add("MX greeting", await timed(lambda: mx_greeting(server.ports["MX"])))
        login: list[float] = []
        answered = await timed(functools.partial(login_probe, server.ports["IMAPS"], login))
        found.add("IMAP LOGIN", login[0] if answered is not None else None)
        found.add("/v1 GET", await timed(lambda: api_get(server.ports["HTTP"], key)))
        await asyncio.sleep(0.02)
    return found


# ------------------------------------------------------------------------------------------------
# The attackers (run in their own process: `hostile.py --attack PORTS SECONDS N`)
# ------------------------------------------------------------------------------------------------


@dataclass
class AttackTally:
    answered: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)

    def count(self, table: dict[str, int], name: str) -> None:
        table[name] = table.get(name, 0) + 1


async def connect(
    port: int, tls: bool = False
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(
        "127.0.0.1",
        port,
        local_addr=(ATTACKER, 0),
        limit=64 * MiB,
        ssl=client_tls() if tls else None,
    )


async def imap_session(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await connect(port, tls=True)
    greeting = await reader.readline()
    assert greeting.startswith(b"* OK"), greeting
    writer.write(f'a LOGIN "{MAILBOX}" "{PASSWORD}"\r\nb SELECT INBOX\r\n'.encode())
    selected = await until_tagged(reader, b"b")
    assert selected.startswith(b"b OK"), selected
    return reader, writer


async def until_tagged(reader: asyncio.StreamReader, tag: bytes) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        # The status word too: a one-octet literal may be the tag's letter, then " BINARY…".
        if line.startswith((tag + b" OK", tag + b" NO", tag + b" BAD")):
            return line


async def list_attack(port: int, tally: AttackTally, stop: float) -> None:
    with contextlib.suppress(OSError, AssertionError, ConnectionError):
        reader, writer = await imap_session(port)
        pattern = b'"' + b"*%" * 5000 + b'x"'
        while time.monotonic() < stop:
            writer.write(b'l LIST "" ' + pattern + b"\r\n")
            answer = await until_tagged(reader, b"l")
            tally.count(tally.answered, "IMAP LIST *%x5000 " + answer.split()[1].decode())


async def binary_attack(port: int, tally: AttackTally, stop: float) -> None:
    items = b" ".join(b"BINARY.PEEK[2]<%d.1>" % (n * 60_000) for n in range(99))
    with contextlib.suppress(OSError, AssertionError, ConnectionError):
        reader, writer = await imap_session(port)
        while time.monotonic() < stop:
            writer.write(b"f FETCH 1 (" + items + b")\r\n")
            answer = await until_tagged(reader, b"f")
            tally.count(tally.answered, "IMAP 99 BINARY partials " + answer.split()[1].decode())


async def slowloris(
    port: int, tally: AttackTally, stop: float, held: list[asyncio.StreamWriter]
) -> None:
    while time.monotonic() < stop:
        try:
            reader, writer = await connect(port)
            writer.write(b"GET /v1/mailboxes HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            await writer.drain()
        except OSError:
            tally.count(tally.refused, "HTTP half-open (connect failed)")
            await asyncio.sleep(0.05)
            continue
        with contextlib.suppress(TimeoutError, OSError):
            first = await asyncio.wait_for(reader.read(12), 0.2)
            if first:
                tally.count(tally.refused, "HTTP half-open (503)")
                writer.close()
                continue
        tally.count(tally.answered, "HTTP half-open (held)")
        held.append(writer)


async def smtp_trickle(port: int, tally: AttackTally, stop: float) -> None:
    chunk = b"x" * 998 + b"\r\n"
    with contextlib.suppress(OSError, ConnectionError, AssertionError):
        reader, writer = await connect(port)
        greeting = await reader.readline()
        if not greeting.startswith(b"220"):
            tally.count(tally.refused, "SMTP 24 MiB DATA (refused)")
            return
        writer.write(
            f"EHLO a.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<{MAILBOX}>\r\nDATA\r\n".encode()
        )
        while not (await reader.readline()).startswith(b"354"):
            pass
        sent = 0
        while time.monotonic() < stop and sent < 24 * MiB:
            writer.write(chunk * 256)  # 256 KiB four times a second: 1 MiB/s per connection
            await writer.drain()
            sent += len(chunk) * 256
            await asyncio.sleep(0.25)
        tally.count(tally.answered, "SMTP 24 MiB DATA (trickling)")
        await asyncio.sleep(max(0.0, stop - time.monotonic()))
        writer.close()


ATTACKS = ("list", "binary", "http", "smtp")


async def attack(
    ports: dict[str, int], seconds: float, n: int, kinds: tuple[str, ...]
) -> AttackTally:
    tally = AttackTally()
    stop = time.monotonic() + seconds
    held: list[asyncio.StreamWriter] = []
    tasks = [
        *(list_attack(ports["IMAP"], tally, stop) for _ in range(n if "list" in kinds else 0)),
        *(binary_attack(ports["IMAP"], tally, stop) for _ in range(n if "binary" in kinds else 0)),
        *(slowloris(ports["HTTP"], tally, stop, held) for _ in range(n if "http" in kinds else 0)),
        *(smtp_trickle(ports["MX"], tally, stop) for _ in range(5 * n if "smtp" in kinds else 0)),
    ]
    await asyncio.gather(*tasks)
    for writer in held:
        writer.close()
    return tally


def attacker_main(argv: list[str]) -> int:
    ports = dict(zip(("MX", "IMAP", "HTTP"), map(int, argv[0].split(",")), strict=True))
    tally = asyncio.run(attack(ports, float(argv[1]), int(argv[2]), tuple(argv[3].split(","))))
    for kind, table in (("answered", tally.answered), ("refused", tally.refused)):
        for name, count in sorted(table.items()):
            print(f"  attacker {kind:8} {name}: {count}")
    used = resource.getrusage(resource.RUSAGE_SELF)
    # The attackers share the machine's processors with the server: their load is part of
    # what the honest client sees.
    print(f"  attacker processor time: {used.ru_utime + used.ru_stime:.1f} s")
    return 0


# ------------------------------------------------------------------------------------------------


def large_message() -> bytes:
    payload = base64.encodebytes(secrets.token_bytes(6 * MiB)).replace(b"\n", b"\r\n")
    return (
        (
            f"From: a@example.org\r\nTo: {MAILBOX}\r\nSubject: large\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
            "hello\r\n--b\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + payload
        + b"--b--\r\n"
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--attack":
        return attacker_main(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--attackers", type=int, default=4)
    parser.add_argument(
        "--attacks", default=",".join(ATTACKS), help=f"some of {', '.join(ATTACKS)}"
    )
    parser.add_argument(
        "--imap-processes",
        type=int,
        default=0,
        metavar="N",
        help="serve IMAP from N processes of its own (serve --imap-processes)",
    )
    parser.add_argument(
        "--imap-cpu-share",
        type=float,
        metavar="F",
        help="MAILMARK_IMAP_CPU_SHARE for the server (default: the server's own, 0: no ration)",
    )
    args = parser.parse_args()
    import smtplib

    with tempfile.TemporaryDirectory(prefix="mailmark-hostile-") as tmp:
        settings: dict[str, str] = {}
        if args.imap_cpu_share is not None:
            settings["MAILMARK_IMAP_CPU_SHARE"] = str(args.imap_cpu_share)
        server = Server.fresh(Path(tmp), settings)
        server.cli(
            "account",
            "create",
            "bench",
            "--owner",
            f"owner@{DOMAIN}",
            f"--password={PASSWORD}",
            "--plan",
            "unlimited",
        )
        server.cli("domain", "add", DOMAIN, "--account", "bench", "--trust")
        server.cli("mailbox", "add", MAILBOX, f"--password={PASSWORD}")
        key = server.cli("apikey", "create", DOMAIN).strip().splitlines()[-1].strip()
        server.start(
            *(["--imap-processes", str(args.imap_processes)] if args.imap_processes else [])
        )
        try:
            with smtplib.SMTP("127.0.0.1", server.ports["MX"], timeout=60) as smtp:
                smtp.sendmail("a@example.org", [MAILBOX], large_message())
            results: dict[str, Latencies] = {}
            peaks: dict[str, tuple[int, int]] = {}
            cpu: dict[str, tuple[float, float, float]] = {}
            for phase in ("baseline", "attacked"):
                attacker = None
                if phase == "attacked":
                    ports = f"{server.ports['MX']},{server.ports['IMAPS']},{server.ports['HTTP']}"
                    attacker = subprocess.Popen(
                        [
                            sys.executable,
                            __file__,
                            "--attack",
                            ports,
                            str(args.seconds + 5),
                            str(args.attackers),
                            args.attacks,
                        ],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    time.sleep(3)  # let the attacks ramp up
                peak_fds = 0
                started_at, (server_cpu, pool_cpu) = time.monotonic(), server.cpu_seconds()

                async def measure() -> Latencies:
                    nonlocal peak_fds
                    task = asyncio.create_task(honest_client(server, key, args.seconds))
                    while not task.done():
                        peak_fds = max(peak_fds, server.usage()[1])
                        await asyncio.sleep(0.25)
                    return await task

                results[phase] = asyncio.run(measure())
                peaks[phase] = (server.usage()[0], peak_fds)
                server_after, pool_after = server.cpu_seconds()
                cpu[phase] = (
                    time.monotonic() - started_at,
                    server_after - server_cpu,
                    pool_after - pool_cpu,
                )
                if attacker is not None:
                    out, _ = attacker.communicate(timeout=120)
                    print(out, end="")
            print(
                f"\n{'probe':14} {'baseline p50/p99 ms':>22} {'attacked p50/p99 ms':>22} "
                f"{'p99 ratio':>9}  failures"
            )
            ok = True
            for name in ("MX greeting", "IMAP LOGIN", "/v1 GET"):
                base = results["baseline"].samples.get(name, [float("nan")])
                hit = results["attacked"].samples.get(name, [float("nan")])
                ratio = percentile(hit, 0.99) / percentile(base, 0.99)
                ok = ok and ratio < TARGET_RATIO and not results["attacked"].failures.get(name)
                print(
                    f"{name:14} {percentile(base, 0.5) * 1e3:10.1f}/{percentile(base, 0.99) * 1e3:<10.1f} "
                    f"{percentile(hit, 0.5) * 1e3:10.1f}/{percentile(hit, 0.99) * 1e3:<10.1f} "
                    f"{ratio:9.2f}  {results['attacked'].failures.get(name, 0)}"
                    f" (n={len(base)}/{len(hit)})"
                )
            for phase, (rss, fds) in peaks.items():
                print(f"{phase}: peak RSS {rss / 1024:.0f} MiB, peak descriptors {fds}")
            for phase, (wall, server_cpu, pool_cpu) in cpu.items():
                print(
                    f"{phase}: server processor time {server_cpu:.1f} s, its descendants "
                    f"(CPU pool, IMAP processes) {pool_cpu:.1f} s, in {wall:.1f} s"
                )
            print(f"load average at the end: {' '.join(map(str, os.getloadavg()))}")
            warnings = [
                line
                for line in (server.workdir / "serve.log").read_text(errors="replace").splitlines()
                if "event loop held for" in line
            ]
            stalls = [float(line.split("held for ")[1].split(" s")[0]) for line in warnings]
            # The share of the stall the loop's thread spent computing: the rest it waited for a
            # processor (the attackers use the same ones) or for the interpreter lock.
            busy = [
                float(found[1])
                for line in warnings
                if (found := re.search(r"([\d.]+) s computing", line)) is not None
            ]
            print(
                f"loop-lag warnings in the server log: {len(stalls)}"
                + (f", worst {max(stalls):.3f} s" if stalls else "")
                + (f", most computing on the loop {max(busy):.3f} s" if busy else "")
            )
            print("PASS" if ok else f"FAIL (target: every p99 ratio < {TARGET_RATIO})")
            return 0 if ok else 1
        except Exception as error:
            print(f"error: {error}\n{server.log_tail()}", file=sys.stderr)
            return 2
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())

"""Inbound SMTP throughput: Mailmark's MX listener against a bare aiosmtpd server that discards.

    cd /work/main && .venv/bin/python bench/smtp_in.py [--messages N] [--concurrency C]
        [--size BYTES] [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Sends N messages of BYTES bytes over C persistent connections (each connection sends its share,
pipelining MAIL FROM/RCPT TO/DATA), first to a bare `aiosmtpd` server whose handle_DATA only
answers "250 OK", then to a real `mailmark serve` on a fresh data dir: SQLite with the default
MAILMARK_SQLITE_SYNCHRONOUS=FULL, or the PostgreSQL server named by --database-url, in a fresh
database dropped afterwards. Each server runs in its own process; this process is the load
generator, and also serves DNS to Mailmark (a FakeDns publishing SPF and DMARC for the sender).

Prints msg/s, the p50/p99 time from writing the final dot to reading the 250, the servers' CPU
per message, the ratio Mailmark/bare, and PASS/FAIL against the targets: ratio >= 0.50 and
p99 < 1000 ms, and every accepted message stored. Exit status 0 on PASS, 1 on FAIL, 2 on error.
Mailmark adds message bodies to its full-text index after the 250, once deliveries pause
(core/text_index.py): the bench waits for that after the load and prints its time and CPU per
message apart from the table, which holds what happens before the 250.

When Debian's postfix is installed (/usr/sbin/postfix) and this runs as root, the same load also
goes to a private Postfix instance (`postfix -c <temp dir>/config start`: its own main.cf and
master.cf, queue and data directories in a temp dir, smtpd on a free loopback port, local
delivery to discard:), stopped and removed afterwards, and the ratio Mailmark/Postfix is printed.
Postfix fsyncs each message to its queue before answering 250: a durable baseline. Anything
going wrong with Postfix is reported in one line and the bench goes on without it
(--no-postfix skips it, --postfix-port measures an already running smtpd instead).

With --rspamd (Debian's rspamd installed, Redis on 127.0.0.1:6379), a private rspamd is started
(scanner, controller and milter proxy on free loopback ports, as tests/spam runs it, one scanner
process per core) and the same load goes to a second Mailmark with MAILMARK_RSPAMD_URL set, so
that the run prints Mailmark with and without rspamd scoring each message at DATA time; and, when
the private Postfix runs, to a second Postfix handing every message to the same rspamd through
its milter (smtpd_milters = the proxy worker). The cost per message of scoring is printed for
both.

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for `tests.fakedns` when run as `python bench/smtp_in.py`

if TYPE_CHECKING:
    from tests.support.rspamd import Rspamd

T = TypeVar("T")

# The targets of the issue.
TARGET_RATIO = 0.50
TARGET_P99_MS = 1000.0

MAILMARK_HOSTNAME = "mx.bench.test"
RCPT_DOMAIN = "bench.test"
RCPT = f"inbox@{RCPT_DOMAIN}"
SENDER_DOMAIN = "sender.example"
SENDER = f"alice@{SENDER_DOMAIN}"
CLIENT_HELO = f"client.{SENDER_DOMAIN}"
SPF_RECORD = "v=spf1 ip4:127.0.0.1 -all"
DMARC_RECORD = "v=DMARC1; p=none"
POSTFIX = Path("/usr/sbin/postfix")
LISTENING = re.compile(r"MX listening on (\S+):(\d+)")
STOP_TIMEOUT = 30.0
BARE_SERVER = "--bare-server"  # internal: this file as the bare server's process
PROFILED_MAILMARK = "--run-mailmark-profiled"  # internal: this file as a profiled `mailmark`


class BenchError(Exception):
    """The run cannot produce figures: a server did not start, a reply was unexpected, ..."""


def event_loop_runner() -> tuple[Callable[[Coroutine[Any, Any, T]], T], str]:
    """uvloop when installed, as `mailmark serve` does."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run, "asyncio"
    return uvloop.run, f"uvloop {uvloop.__version__}"  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------
# The bare discard server, in its own process: `python bench/smtp_in.py --bare-server`
# ------------------------------------------------------------------------------------------------


def serve_smtp_until_signalled(handler: Any, hostname: str) -> int:
    """Serve `handler` with aiosmtpd on a free loopback port, print the port, and stop on SIGTERM
    or SIGINT: the receiving end of a bench, in its own process. `hostname` is fixed, as
    Mailmark's is: SMTP() would otherwise call socket.getfqdn() per connection."""
    from aiosmtpd.smtp import SMTP

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname=hostname), host="127.0.0.1", port=0
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        server.close()
        await server.wait_closed()

    run, _ = event_loop_runner()
    run(serve())
    return 0


def bare_server_main() -> int:
    class Discard:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    return serve_smtp_until_signalled(Discard(), "bare.bench.test")


# ------------------------------------------------------------------------------------------------
# `mailmark` under cProfile, every thread included (--profile-mailmark)
# ------------------------------------------------------------------------------------------------


def profiled_mailmark_main(out: str, argv: list[str]) -> int:
    """Run mailmark's CLI with one cProfile profiler per thread (`python -m cProfile` sees only
    the main thread, while SPF/DMARC, blob writes and aiosqlite run in worker threads). Times are
    each thread's CPU time (time.thread_time), not wall time: waiting for fsync or a lock is free.

    Writes OUT (all threads), OUT.main (the event loop thread) and OUT.threads (the others); read
    them with pstats.Stats(OUT).sort_stats("tottime").print_stats(30). Greenlet switches (the
    SQLAlchemy asyncio bridge) confuse cumulative times; self times (tottime) stay meaningful."""
    import cProfile
    import pstats
    import threading

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def profiled_bootstrap(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.enable()
        try:
            bootstrap(self)
        finally:
            profile.disable()

    threading.Thread._bootstrap_inner = profiled_bootstrap  # type: ignore[attr-defined]
    from mailmark.cli import main as mailmark_main

    main_profile = cProfile.Profile(time.thread_time)
    main_profile.enable()
    try:
        return mailmark_main(argv)
    finally:
        main_profile.disable()
        stats = pstats.Stats(main_profile)
        stats.dump_stats(f"{out}.main")
        thread_stats: pstats.Stats | None = None
        with lock:
            for profile in profiles:
                with contextlib.suppress(TypeError):  # a thread that profiled nothing
                    if thread_stats is None:
                        thread_stats = pstats.Stats(profile)
                    else:
                        thread_stats.add(profile)
        if thread_stats is not None:
            thread_stats.dump_stats(f"{out}.threads")
            stats.add(thread_stats)
        stats.dump_stats(out)


# ------------------------------------------------------------------------------------------------
# Messages
# ------------------------------------------------------------------------------------------------

_WORDS = [
    "the",
    "quarterly",
    "numbers",
    "are",
    "attached",
    "and",
    "the",
    "forecast",
    "looks",
    "better",
    "than",
    "we",
    "expected",
    "for",
    "next",
    "year",
    "although",
    "shipping",
    "costs",
    "went",
    "up",
    "again",
    "in",
    "the",
    "third",
    "quarter",
    "so",
    "please",
    "review",
    "the",
    "figures",
    "before",
    "the",
    "meeting",
    "on",
    "thursday",
    "and",
    "send",
    "me",
    "your",
    "comments",
    "by",
    "wednesday",
    "noon",
]


def _filler_lines(size: int) -> bytes:
    """Plain-text lines of at most 76 characters ending in CRLF, some starting with a dot (to
    exercise dot-stuffing), totalling at least `size` bytes."""
    lines: list[bytes] = []
    total = 0
    index = 0
    while total < size:
        words: list[str] = []
        length = 0
        while length < 60:
            word = _WORDS[(index * 7 + len(words) * 3) % len(_WORDS)]
            words.append(word)
            length += len(word) + 1
        text = " ".join(words)
        if index % 17 == 5:
            text = ". " + text
        elif index % 29 == 11:
            text = "."
        line = text.encode() + b"\r\n"
        lines.append(line)
        total += len(line)
        index += 1
    return b"".join(lines)


class MessageFactory:
    """Messages of exactly `size` bytes, each unique (its number is in the Subject, Message-ID
    and body) so that content-addressed deduplication never spares Mailmark a write."""

    def __init__(self, size: int, run_id: str) -> None:
        self.run_id = run_id
        self.size = size
        self._filler = _filler_lines(max(0, size - len(self._head(0))))

    def _head(self, number: int) -> bytes:
        return (
            f"From: Alice Sender <{SENDER}>\r\n"
            f"To: Bench Inbox <{RCPT}>\r\n"
            f"Subject: Benchmark message {number} of run {self.run_id}\r\n"
            f"Date: {formatdate(localtime=False)}\r\n"
            f"Message-ID: <{number}.{self.run_id}@{SENDER_DOMAIN}>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "\r\n"
            f"Message number {number} in benchmark run {self.run_id}.\r\n"
        ).encode()

    def raw(self, number: int) -> bytes:
        head = self._head(number)
        body = self._filler[: max(0, self.size - len(head) - 2)]
        if body.endswith(b"\r"):  # cut inside a CRLF: never leave a bare CR
            body = body[:-1] + b"x"
        return head + body + b"\r\n"

    def data(self, number: int) -> bytes:
        """The message as sent after DATA: dot-stuffed, without the final "." line."""
        return dot_stuff(self.raw(number))


def dot_stuff(raw: bytes) -> bytes:
    """RFC 5321 §4.5.2 transparency for `raw`, which ends with CRLF."""
    stuffed = raw.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


# ------------------------------------------------------------------------------------------------
# Load generator
# ------------------------------------------------------------------------------------------------


class SmtpClient:
    """A minimal SMTP client on one persistent connection: EHLO once, then pipelined messages."""

    def __init__(
        self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self.name = name
        self.reader = reader
        self.writer = writer
        self.timeout = timeout

    @classmethod
    async def connect(cls, name: str, port: int, timeout: float) -> SmtpClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        client = cls(name, reader, writer, timeout)
        await client.expect(220, "greeting")
        writer.write(f"EHLO {CLIENT_HELO}\r\n".encode())
        await client.expect(250, "EHLO")
        return client

    async def reply(self) -> tuple[int, bytes]:
        lines: list[bytes] = []
        async with asyncio.timeout(self.timeout):
            while True:
                line = await self.reader.readline()
                if not line:
                    raise BenchError(f"{self.name}: connection closed by the server")
                lines.append(line)
                if line[3:4] != b"-":
                    break
        text = b"".join(lines)
        try:
            return int(lines[-1][:3]), text
        except ValueError:
            raise BenchError(f"{self.name}: unreadable reply {text!r}") from None

    async def expect(self, code: int, what: str) -> None:
        got, text = await self.reply()
        if got != code:
            reply = text.decode(errors="replace").strip()
            raise BenchError(f"{self.name}: {what}: expected {code}, got {reply!r}")

    async def send(self, data: bytes, number: int) -> tuple[float, float]:
        """Deliver one message. Returns the seconds from writing MAIL FROM to reading the 354,
        and from writing the final dot to reading the 250."""
        envelope_start = time.perf_counter()
        self.writer.write(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode())
        await self.expect(250, f"message {number}: MAIL FROM")
        await self.expect(250, f"message {number}: RCPT TO")
        await self.expect(354, f"message {number}: DATA")
        envelope = time.perf_counter() - envelope_start
        self.writer.write(data)
        start = time.perf_counter()
        self.writer.write(b".\r\n")
        await self.writer.drain()
        await self.expect(250, f"message {number}: end of data")
        return envelope, time.perf_counter() - start

    async def quit(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.write(b"QUIT\r\n")
            async with asyncio.timeout(5):
                await self.reply()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


@dataclass
class LoadResult:
    server: str
    messages: int
    seconds: float
    latencies: list[float]  # final dot -> 250
    envelope_latencies: list[float]  # MAIL FROM -> 354 (pipelined MAIL, RCPT, DATA)
    cpu_seconds: float | None  # the server process's user+system CPU in the timed phase
    db_cpu_seconds: float | None = None  # the local PostgreSQL's, when it is the store

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, p: float, *, envelope: bool = False) -> float:
        ordered = sorted(self.envelope_latencies if envelope else self.latencies)
        if not ordered:
            return float("nan")
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000

    def per_message_ms(self, seconds: float | None) -> str:
        if seconds is None or not self.messages:
            return "-"
        return f"{seconds * 1000 / self.messages:.2f}"


def _proc_stat(pid: str) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()


def process_cpu_seconds(pid: int) -> float | None:
    """utime+stime of a process, all its threads (Linux /proc); None when unavailable."""
    try:
        fields = _proc_stat(str(pid))
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The live child processes of `pid`."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                found += map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    return found


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU of a process and of its live descendants: the extra processes of `serve
    --http-workers` and `--mx-workers`, the CPU pool's workers."""
    total = process_cpu_seconds(pid)
    if total is None:
        return None
    return total + sum(tree_cpu_seconds(child) or 0.0 for child in children(pid))


def postgres_cpu_seconds() -> float | None:
    """CPU of every `postgres` process on this machine, with that of the backends already
    exited (in their parent's cutime/cstime); None when there is none."""
    total = 0
    found = False
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() != "postgres":
                    continue
            fields = _proc_stat(pid)
        except OSError:
            continue
        found = True
        total += sum(int(value) for value in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK") if found else None


async def run_load(
    server: str,
    port: int,
    *,
    messages: int,
    concurrency: int,
    warmup: int,
    factory: MessageFactory,
    numbers: Iterator[int],
    reply_timeout: float,
    server_pid: int | None,
    measure_postgres: bool = False,
    server_cpu_seconds: Callable[[], float | None] | None = None,
) -> LoadResult:
    """The server's CPU is that of `server_pid`, or what `server_cpu_seconds` returns (for a
    server of several processes, such as Postfix)."""
    clients = await asyncio.gather(
        *(SmtpClient.connect(f"{server} #{i}", port, reply_timeout) for i in range(concurrency))
    )
    latencies: list[float] = []
    envelopes: list[float] = []

    async def send_share(client: SmtpClient, count: int, timed: bool) -> None:
        for _ in range(count):
            number = next(numbers)
            envelope, latency = await client.send(factory.data(number), number)
            if timed:
                latencies.append(latency)
                envelopes.append(envelope)

    def cpu() -> tuple[float | None, float | None]:
        if server_cpu_seconds is not None:
            server_cpu = server_cpu_seconds()
        else:
            server_cpu = tree_cpu_seconds(server_pid) if server_pid else None
        return server_cpu, postgres_cpu_seconds() if measure_postgres else None

    try:
        warmups = zip(clients, shares(warmup, concurrency), strict=True)
        await asyncio.gather(*(send_share(client, count, False) for client, count in warmups))
        cpu_before = cpu()
        start = time.perf_counter()
        timed = zip(clients, shares(messages, concurrency), strict=True)
        await asyncio.gather(*(send_share(client, count, True) for client, count in timed))
        seconds = time.perf_counter() - start
        cpu_after = cpu()
    finally:
        await asyncio.gather(*(c.quit() for c in clients), return_exceptions=True)
    server_cpu, db_cpu = (
        None if before is None or after is None else after - before
        for before, after in zip(cpu_before, cpu_after, strict=True)
    )
    return LoadResult(server, len(latencies), seconds, latencies, envelopes, server_cpu, db_cpu)


# ------------------------------------------------------------------------------------------------
# Server processes
# ------------------------------------------------------------------------------------------------


class Processes:
    """Every process the bench starts; `stop` terminates, then kills after a timeout."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, **kwargs)
        self._procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                name = next((n for n, p in self._procs if p is proc), "?")
                print(
                    f"{name} (pid {proc.pid}) ignored SIGTERM for {timeout:.0f} s: killing it",
                    file=sys.stderr,
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self._procs = [(n, p) for n, p in self._procs if p is not proc]
        return proc.returncode

    def stop_all(self) -> None:
        for _, proc in reversed(self._procs):
            self.stop(proc)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    return "\n".join(f"    | {line}" for line in text[-lines:])


def start_bare_server(procs: Processes, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    log = workdir / "bare-server.log"
    with log.open("wb") as stderr:
        proc = procs.start(
            "bare aiosmtpd",
            [sys.executable, str(Path(__file__).resolve()), BARE_SERVER],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()  # its port, then it prints nothing more
    if not line.isdigit():
        procs.stop(proc)
        raise BenchError(f"the bare server did not start (printed {line!r}):\n{log_tail(log)}")
    return proc, int(line)


def mailmark_command() -> list[str]:
    script = Path(sys.executable).parent / "mailmark"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mailmark"]


@dataclass
class MailmarkSetup:
    workdir: Path
    env: dict[str, str]
    database_url: str  # "" for the embedded SQLite

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log(self) -> Path:
        return self.workdir / "mailmark.log"


def mailmark_setup(
    workdir: Path, database_url: str, nameserver: str, synchronous: str
) -> MailmarkSetup:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MAILMARK_")}
    setup = MailmarkSetup(workdir, env, database_url)
    env.update(
        MAILMARK_DATA_DIR=str(setup.data_dir),
        MAILMARK_HOSTNAME=MAILMARK_HOSTNAME,
        MAILMARK_BIND="127.0.0.1",
        MAILMARK_DNS_NAMESERVERS=nameserver,
        MAILMARK_MAX_CONNECTIONS_PER_IP="100000",
        MAILMARK_LOG_LEVEL="INFO",
    )
    # Port 0 for every listener, present or future, so that none collides with anything.
    for name in ("MX", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "HTTP", "MANAGESIEVE"):
        env[f"MAILMARK_{name}_PORT"] = "0"
    if database_url:
        env["MAILMARK_DATABASE_URL"] = database_url
    if synchronous != "FULL":
        env["MAILMARK_SQLITE_SYNCHRONOUS"] = synchronous
    setup.data_dir.mkdir(mode=0o700, parents=True)
    return setup


def mailmark_cli(setup: MailmarkSetup, *args: str) -> None:
    result = subprocess.run(
        [*mailmark_command(), *args],
        env=setup.env,
        cwd=setup.workdir,  # no stray ./mailmark.toml
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    if result.returncode != 0:
        output = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
        command = " ".join(args[:2])
        raise BenchError(f"`mailmark {command} ...` failed ({result.returncode}):\n{output}")


def provision_mailmark(setup: MailmarkSetup) -> None:
    password = secrets.token_urlsafe(18)  # may start with "-": hence --password=...
    owner = f"owner@{RCPT_DOMAIN}"
    mailmark_cli(setup, "account", "create", "bench", "--owner", owner, f"--password={password}")
    mailmark_cli(setup, "domain", "add", RCPT_DOMAIN, "--account", "bench", "--trust")
    mailmark_cli(setup, "mailbox", "add", RCPT)


def start_mailmark(
    procs: Processes,
    setup: MailmarkSetup,
    *,
    profile: Path | None,
    serve_command: str | None,
    startup_timeout: float = 120,
) -> tuple[subprocess.Popen[bytes], int]:
    if serve_command:
        argv = [*shlex.split(serve_command), "serve"]
        if "/" in argv[0] and Path(argv[0]).exists():
            argv[0] = str(Path(argv[0]).absolute())  # it runs in the work dir
    elif profile is not None:
        this = str(Path(__file__).resolve())
        argv = [sys.executable, this, PROFILED_MAILMARK, str(profile.absolute()), "serve"]
    else:
        argv = [*mailmark_command(), "serve"]
    with setup.log.open("wb") as log:
        # A file, not a pipe: a full pipe would stall the server in the middle of the run.
        proc = procs.start(
            "mailmark serve",
            argv,
            env=setup.env,
            cwd=setup.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        match = LISTENING.search(setup.log.read_text(errors="replace"))
        if match:
            return proc, int(match[2])
        if proc.poll() is not None:
            raise BenchError(f"mailmark serve exited ({proc.returncode}):\n{log_tail(setup.log)}")
        time.sleep(0.05)
    procs.stop(proc)
    raise BenchError(
        f"mailmark serve did not log 'MX listening on' within {startup_timeout:.0f} s:\n"
        f"{log_tail(setup.log)}"
    )


# ------------------------------------------------------------------------------------------------
# A private Postfix instance: its own config, queue and data directories in a temp dir
# ------------------------------------------------------------------------------------------------


POSTFIX_HOSTNAME = "postfix.bench.test"


class PostfixError(Exception):
    """The private Postfix instance cannot be measured; the bench goes on without it."""


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_line(result: subprocess.CompletedProcess[str], log: Path) -> str:
    """Why a `postfix` command failed: from its output, else from the instance's log (where
    Postfix writes once maillog_file is set)."""
    text = result.stderr + result.stdout
    with contextlib.suppress(OSError):
        text += "\n" + log.read_text(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    fatal = [line for line in lines if re.search(r"\b(fatal|panic|error)\b", line, re.IGNORECASE)]
    return (fatal or lines or [f"exit status {result.returncode}, no output"])[-1][:300]


def postfix_master_cf(template: str, port: int) -> str:
    """Debian's master.cf with smtpd on 127.0.0.1:PORT only (at default_process_limit), no other
    inet listener, and no chroot anywhere (a chroot in the temp queue directory would lack
    /etc/services, the NSS libraries, ...)."""
    lines: list[str] = []
    dropping = listening = False
    for line in template.splitlines():
        if line[:1] in (" ", "\t") and line.strip():  # continues the entry above (-o ...)
            if not dropping:
                lines.append(line)
            continue
        fields = line.split(maxsplit=7)
        if line.startswith("#") or len(fields) < 8:
            lines.append(line)
            continue
        dropping = False
        service, kind, private, unpriv, _chroot, wakeup, maxproc, command = fields
        if kind == "inet":
            if listening or service != "smtp" or not command.startswith("smtpd"):
                dropping = True
                continue
            service, maxproc, listening = f"127.0.0.1:{port}", "-", True
        lines.append(f"{service} {kind} {private} {unpriv} n {wakeup} {maxproc} {command}")
    if not listening:
        raise PostfixError("no 'smtp inet ... smtpd' service in /etc/postfix/master.cf")
    return "\n".join(lines) + "\n"


def postfix_main_cf(
    root: Path, concurrency: int, in_flow_delay: str = "1s", milter_port: int | None = None
) -> str:
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": str(root / "queue"),
        "data_directory": str(root / "data"),
        "myhostname": POSTFIX_HOSTNAME,
        "mydomain": RCPT_DOMAIN,
        "myorigin": "$myhostname",
        "mydestination": f"{RCPT_DOMAIN}, $myhostname, localhost",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        "smtpd_recipient_restrictions": "permit_mynetworks, reject",
        # Every local recipient exists, and local delivery throws the message away.
        "local_recipient_maps": "",
        "local_transport": "discard:",
        "alias_maps": "",
        "alias_database": "",
        "default_process_limit": str(max(100, 2 * concurrency + 20)),
        "smtpd_client_connection_count_limit": "0",
        # Nothing that could wait for a DNS server.
        "smtp_host_lookup": "native",
        "lmtp_host_lookup": "native",
        "smtp_dns_support_level": "disabled",
        "smtpd_peername_lookup": "no",
        "maillog_file": str(root / "postfix.log"),
        "maillog_file_prefixes": str(root),
        "biff": "no",
        "append_dot_mydomain": "no",
        "readme_directory": "no",
        "smtpd_banner": "$myhostname ESMTP $mail_name (bench)",
        "smtpd_tls_security_level": "none",
        # Postfix's flow control: when messages arrive faster than the queue manager delivers
        # them, smtpd waits up to this long before accepting MAIL FROM (1s, the default).
        "in_flow_delay": in_flow_delay,
    }
    if milter_port is not None:
        # rspamd's proxy worker speaks the milter protocol; a milter that fails lets mail in.
        settings |= {
            "smtpd_milters": f"inet:127.0.0.1:{milter_port}",
            "milter_protocol": "6",
            "milter_default_action": "accept",
            "milter_mail_macros": "i {mail_addr} {client_addr} {client_name} {auth_authen}",
        }
    return "".join(f"{name} = {value}\n" for name, value in settings.items())


def _postfix(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`postfix -c CONFIG ARGS...`, its stderr on a pseudo-terminal: Postfix's commands write
    their messages (a fatal error in main.cf, say) to stderr only when it is a terminal."""
    import pty
    import threading

    env = {k: v for k, v in os.environ.items() if not k.startswith("MAIL_")}
    primary, secondary = pty.openpty()
    chunks: list[bytes] = []

    def read() -> None:
        with contextlib.suppress(OSError):  # EIO once every writer has closed it
            while chunk := os.read(primary, 4096):
                chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        with open(secondary, "wb", closefd=True) as stderr:
            result = subprocess.run(
                [str(POSTFIX), "-c", str(config), *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                timeout=timeout,
            )
        reader.join(1)  # a daemon that kept the terminal open must not hold us up
    finally:
        os.close(primary)
    output = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout, output)


def postfix_version() -> str:
    try:
        result = subprocess.run(
            [str(POSTFIX.parent / "postconf"), "-dh", "mail_version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return result.stdout.strip() or "?"


def _instance_pids(config: Path) -> list[int]:
    """The processes of the instance: MAIL_CONFIG=<its config dir> is in their environment
    (master passes it on to every daemon through import_environment)."""
    marker = f"MAIL_CONFIG={config}".encode()
    pids: list[int] = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                pids.append(int(pid))
    return pids


def postfix_cpu_seconds(master: int) -> float | None:
    """user+system CPU of the master, of its live children and of those it has reaped."""
    try:
        fields = _proc_stat(str(master))
    except OSError:
        return None
    total = sum(int(value) for value in fields[11:15])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, IndexError):
            child = _proc_stat(pid)
            if child[1] == str(master):
                total += sum(int(value) for value in child[11:15])
    return total / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def private_postfix(
    parent: Path | None, concurrency: int, in_flow_delay: str = "1s", milter_port: int | None = None
) -> Iterator[tuple[int, int, Path]]:
    """Start a private Postfix instance (`postfix -c <temp dir>/config start`) with smtpd on a
    free loopback port; yields (port, master pid, log file). Stops it and removes the temp dir on
    the way out, whatever happened (Ctrl-C included)."""
    if os.geteuid() != 0:
        raise PostfixError("needs root (postfix start runs the master as root)")
    root = Path(tempfile.mkdtemp(prefix="mailmark-bench-postfix-", dir=parent))
    config = root / "config"
    log = root / "postfix.log"
    started = False
    try:
        # Postfix's daemons drop to the postfix user: they must be able to reach their files.
        root.chmod(0o755)
        config.mkdir(mode=0o755)
        (root / "queue").mkdir(mode=0o755)  # postfix check creates what goes in it
        port = free_loopback_port()
        try:
            template = (Path("/etc/postfix") / "master.cf").read_text()
        except OSError as error:
            raise PostfixError(f"cannot read /etc/postfix/master.cf: {error}") from None
        (config / "master.cf").write_text(postfix_master_cf(template, port))
        (config / "main.cf").write_text(
            postfix_main_cf(root, concurrency, in_flow_delay, milter_port)
        )
        check = _postfix(config, "check")
        if check.returncode != 0:
            raise PostfixError(f"`postfix check` failed: {_one_line(check, log)}")
        started = True  # from here on, stop whatever may have started
        start = _postfix(config, "start")
        if start.returncode != 0:
            raise PostfixError(f"`postfix start` failed: {_one_line(start, log)}")
        try:
            master = int((root / "queue" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            raise PostfixError("started, but no pid/master.pid in its queue directory") from None
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise PostfixError(f"smtpd does not accept connections on 127.0.0.1:{port}")
            time.sleep(0.1)
        yield port, master, log
    finally:
        try:
            if started:
                _stop_postfix(config)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _stop_postfix(config: Path) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        _postfix(config, "stop", timeout=30)  # waits up to 5 s, then kill -9 the master's group
    deadline = time.monotonic() + 10
    while (pids := _instance_pids(config)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if pids:
        print(f"postfix: killed {len(pids)} processes left after `postfix stop`", file=sys.stderr)


def postfix_log_notes(log: Path) -> list[str]:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    bad = [line for line in text.splitlines() if re.search(r"\b(fatal|panic|error):", line)]
    notes = []
    if bad:
        notes.append(f"note: postfix logged {len(bad)} errors, the last: {bad[-1].strip()[:300]}")
    deferred = len(re.findall(r"status=(?:deferred|bounced)", text))
    if deferred:
        notes.append(f"note: postfix deferred or bounced {deferred} deliveries to discard:")
    return notes


# ------------------------------------------------------------------------------------------------
# The store: a fresh PostgreSQL database per run, and counting what was stored
# ------------------------------------------------------------------------------------------------


async def _pg_execute(url: str, statement: str, *, autocommit: bool = False) -> Any:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}))
    try:
        async with engine.connect() as conn:
            result = await conn.execute(sa.text(statement))
            return result.scalar() if result.returns_rows else None
    finally:
        await engine.dispose()


@contextlib.contextmanager
def fresh_database(database_url: str) -> Iterator[str]:
    """ "" for SQLite (in the data dir), or the URL of a new PostgreSQL database on the server
    `database_url` names, dropped on the way out."""
    if not database_url:
        yield ""
        return
    from sqlalchemy.engine import make_url

    admin = make_url(database_url)
    if admin.get_backend_name() != "postgresql":
        raise BenchError(f"--database-url: PostgreSQL (postgresql+asyncpg://) only, not {admin}")
    admin_url = admin.render_as_string(hide_password=False)
    name = f"mailmark_bench_{secrets.token_hex(5)}"
    try:
        asyncio.run(_pg_execute(admin_url, f'CREATE DATABASE "{name}"', autocommit=True))
    except Exception as error:
        raise BenchError(f"cannot create database {name} on {admin}: {error!r}") from None
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        asyncio.run(_pg_execute(admin_url, drop, autocommit=True))


def count_placements(setup: MailmarkSetup) -> int:
    query = "SELECT count(*) FROM placements"
    if setup.database_url:
        return int(asyncio.run(_pg_execute(setup.database_url, query)))
    with contextlib.closing(sqlite3.connect(setup.data_dir / "mailmark.db")) as db:
        return int(db.execute(query).fetchone()[0])


def count_waiting_bodies(setup: MailmarkSetup) -> int:
    """Messages whose body text the full-text indexer has yet to add (core/text_index.py); 0
    for a version that indexes it before the 250 (no such table), measured for comparison."""
    query = "SELECT count(*) FROM pending_body_texts"
    try:
        if setup.database_url:
            return int(asyncio.run(_pg_execute(setup.database_url, query)))
        with contextlib.closing(sqlite3.connect(setup.data_dir / "mailmark.db", timeout=30)) as db:
            return int(db.execute(query).fetchone()[0])
    except Exception as error:
        if "pending_body_texts" in str(error):
            return 0
        raise


@dataclass
class IndexingResult:
    """The full-text indexing Mailmark does after the 250s, measured once the load is over."""

    messages: int
    seconds: float
    cpu_seconds: float | None


def wait_for_indexing(setup: MailmarkSetup, pid: int, limit: float = 600.0) -> IndexingResult:
    """Until no body waits for the full-text index: how many did, how long they took, and the
    server's CPU meanwhile (the indexer starts once deliveries pause)."""
    waiting = count_waiting_bodies(setup)
    started, cpu_before = time.perf_counter(), tree_cpu_seconds(pid)
    while count_waiting_bodies(setup) and time.perf_counter() - started < limit:
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    cpu_after = tree_cpu_seconds(pid)
    if count_waiting_bodies(setup):
        raise BenchError(f"the full-text indexer had not caught up after {limit:.0f} s")
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return IndexingResult(waiting, seconds, cpu)


def is_local(database_url: str) -> bool:
    from sqlalchemy.engine import make_url

    return make_url(database_url).host in (None, "", "localhost", "127.0.0.1", "::1")


# ------------------------------------------------------------------------------------------------
# The run and the report
# ------------------------------------------------------------------------------------------------


def print_table(results: list[LoadResult]) -> None:
    width = max(24, *(len(r.server) for r in results))
    header = (
        f"{'server':<{width}} {'messages':>8} {'seconds':>8} {'msg/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'env p99':>8} {'cpu ms/msg':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.server:<{width}} {r.messages:>8} {r.seconds:>8.2f} {r.rate:>8.1f} "
            f"{r.percentile_ms(50):>7.1f} {r.percentile_ms(99):>7.1f} {r.percentile_ms(100):>7.1f} "
            f"{r.percentile_ms(99, envelope=True):>8.1f} {r.per_message_ms(r.cpu_seconds):>10}"
        )
    print(
        "p50/p99/max: writing the final dot -> reading the 250; env p99: writing MAIL FROM -> "
        "reading the 354\n(MAIL/RCPT/DATA pipelined); cpu: the server process, all its threads, "
        "during the timed messages"
    )
    for r in results:
        if r.db_cpu_seconds is not None:
            print(
                f"plus PostgreSQL's processes for {r.server}: {r.per_message_ms(r.db_cpu_seconds)} "
                "ms CPU per message (every postgres process on the machine)"
            )


def verdict(label: str, ok: bool) -> str:
    return f"{label}   {'PASS' if ok else 'FAIL'}"


def measure_private_postfix(
    args: argparse.Namespace, load: Callable[..., LoadResult], milter_port: int | None = None
) -> tuple[LoadResult | None, list[str]]:
    """The same load on a private Postfix instance; (None, [reason]) when that fails, for
    whatever reason but Ctrl-C: Postfix is a reference, never a reason for the bench to fail."""
    version = postfix_version()
    name = f"postfix {version} smtpd" + (" + rspamd milter" if milter_port else "")
    try:
        with private_postfix(
            args.workdir, args.concurrency, args.postfix_in_flow_delay, milter_port
        ) as (port, master, log):
            result = load(name, port, None, cpu=lambda: postfix_cpu_seconds(master))
            time.sleep(1)  # the last deliveries to discard, for the log check
            notes = postfix_log_notes(log)
    except PostfixError as error:
        return None, [f"{name}: not measured: {error}"]
    except BenchError as error:
        return None, [f"{name}: not measured: {str(error).splitlines()[0]}"]
    except Exception as error:
        return None, [f"{name}: not measured: {type(error).__name__}: {error}".splitlines()[0]]
    if milter_port is not None:
        return result, notes
    notes.insert(
        0,
        f"postfix: a private instance (postfix -c <temp dir>, smtpd on 127.0.0.1:{port}, local "
        "delivery to discard:); its cleanup writes and fsyncs the queue file before the 250, "
        "so it is\na durable baseline like mailmark with synchronous=FULL; its CPU is every "
        "Postfix process (master, smtpd, cleanup, qmgr, trivial-rewrite, discard, ...)",
    )
    notes.insert(
        1,
        f"postfix: in_flow_delay = {args.postfix_in_flow_delay}: when messages arrive faster than "
        "they are delivered, smtpd waits up to that long\nbefore accepting MAIL FROM (its env p99)"
        + (
            "; Postfix's default, --postfix-in-flow-delay 0 turns it off"
            if args.postfix_in_flow_delay == "1s"
            else ""
        ),
    )
    return result, notes


def start_rspamd(notes: list[str]) -> Rspamd | None:
    """A private rspamd, one scanner process per core; None (and a note) when it cannot run."""
    from tests.support.rspamd import RSPAMD, Rspamd, redis_available

    if not RSPAMD.exists():
        notes.append(f"rspamd: not measured: no {RSPAMD} (apt-get install rspamd)")
        return None
    if not redis_available():
        notes.append("rspamd: not measured: no Redis on 127.0.0.1:6379 for its statistics")
        return None
    print("  starting rspamd ...", flush=True)
    server = Rspamd(workers=os.cpu_count() or 1)
    try:
        server.start()
    except RuntimeError as error:
        notes.append(f"rspamd: not measured: {str(error).splitlines()[0]}")
        return None
    notes.append(
        f"rspamd: a private instance ({server.workers} scanner processes, Bayes in Redis db "
        f"{server.redis_db}, greylisting and HELO heuristics off); its CPU is not in the "
        "cpu ms/msg column"
    )
    return server


def bench(args: argparse.Namespace, procs: Processes) -> int:
    import aiosmtpd

    from tests.fakedns import FakeDns

    run, loop_name = event_loop_runner()
    run_id = secrets.token_hex(4)
    factory = MessageFactory(args.size, run_id)
    numbers = iter(range(10**12))  # message numbers, unique across the servers of the run
    store = "postgresql" if args.database_url else f"sqlite, synchronous={args.sqlite_synchronous}"
    print(
        f"inbound SMTP bench {run_id}: {args.messages} messages of {args.size} bytes "
        f"({len(factory.data(0))} dot-stuffed) over {args.concurrency} connections, after "
        f"{args.warmup} warm-up messages"
    )
    print(
        f"python {platform.python_version()}, {loop_name}, aiosmtpd {aiosmtpd.__version__}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start (anything "
        f"else running skews the figures); mailmark on {store}"
    )

    def load(
        name: str,
        port: int,
        pid: int | None,
        postgres: bool = False,
        cpu: Callable[[], float | None] | None = None,
    ) -> LoadResult:
        print(f"  {name} ...", flush=True)
        return run(
            run_load(
                name,
                port,
                messages=args.messages,
                concurrency=args.concurrency,
                warmup=args.warmup,
                factory=factory,
                numbers=numbers,
                reply_timeout=args.reply_timeout,
                server_pid=pid,
                measure_postgres=postgres,
                server_cpu_seconds=cpu,
            )
        )

    results: list[LoadResult] = []
    indexing: dict[str, IndexingResult] = {}
    notes: list[str] = []
    bare = postfix = milter = scored = None
    scored_stored = 0
    rspamd: Rspamd | None = None
    workdir = Path(tempfile.mkdtemp(prefix="mailmark-bench-", dir=args.workdir))
    try:
        if not args.skip_bare:
            proc, port = start_bare_server(procs, workdir)
            try:
                bare = load("bare aiosmtpd (discard)", port, proc.pid)
            finally:
                procs.stop(proc)
            results.append(bare)

        if args.rspamd:
            rspamd = start_rspamd(notes)
        with FakeDns() as dns:
            dns.add(SENDER_DOMAIN, "TXT", SPF_RECORD)
            dns.add(f"_dmarc.{SENDER_DOMAIN}", "TXT", DMARC_RECORD)

            def measure_mailmark(
                label: str, directory: Path, env: dict[str, str]
            ) -> tuple[LoadResult, int]:
                """The load on a fresh `mailmark serve`; its result and stored placements."""
                with fresh_database(args.database_url) as database_url:
                    setup = mailmark_setup(
                        directory, database_url, dns.address, args.sqlite_synchronous
                    )
                    setup.env.update(env)
                    provision_mailmark(setup)
                    proc, port = start_mailmark(
                        procs,
                        setup,
                        profile=args.profile_mailmark,
                        serve_command=args.serve_command,
                    )
                    name = f"mailmark ({'postgresql' if database_url else 'sqlite'}){label}"
                    try:
                        result = load(
                            name, port, proc.pid, bool(database_url) and is_local(database_url)
                        )
                        indexing[name] = wait_for_indexing(setup, proc.pid)
                    finally:
                        code = procs.stop(proc)
                    if code != 0:
                        notes.append(f"note: {name} serve exited with status {code}")
                    log = setup.log.read_text(errors="replace")
                    if "Traceback" in log or " ERROR " in log:
                        notes.append(f"note: {name} logged errors:\n{log_tail(setup.log, 15)}")
                    return result, count_placements(setup)

            mailmark, stored = measure_mailmark("", workdir, {})
            results.append(mailmark)
            if (SENDER_DOMAIN, "TXT") not in dns.queries:
                notes.append("note: Mailmark never asked for the sender's SPF record")
            if rspamd is not None:
                before = rspamd.scanned()
                scored, scored_stored = measure_mailmark(
                    " + rspamd", workdir / "rspamd", {"MAILMARK_RSPAMD_URL": rspamd.url}
                )
                results.append(scored)
                notes.append(f"rspamd: scanned {rspamd.scanned() - before} of mailmark's messages")
        expected = args.warmup + args.messages

        if args.postfix_port is not None:
            postfix = load("postfix smtpd (external)", args.postfix_port, None)
            results.append(postfix)
            notes.insert(
                0,
                f"postfix: the smtpd on 127.0.0.1:{args.postfix_port} (--postfix-port)"
                ", its CPU not measured",
            )
        elif args.no_postfix:
            notes.insert(0, "postfix: not measured (--no-postfix)")
        elif not POSTFIX.exists():
            notes.insert(0, f"postfix: not installed, no {POSTFIX} (apt-get install postfix)")
        else:
            postfix, postfix_notes = measure_private_postfix(args, load)
            if postfix is not None:
                results.append(postfix)
            notes[:0] = postfix_notes
            if postfix is not None and rspamd is not None:
                before = rspamd.scanned()
                milter, milter_notes = measure_private_postfix(args, load, rspamd.proxy_port)
                milter_notes.append(
                    f"rspamd: scanned {rspamd.scanned() - before} of postfix's messages (milter)"
                )
                if milter is not None:
                    results.append(milter)
                notes += milter_notes
    finally:
        if rspamd is not None:
            rspamd.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print_table(results)
    print()
    passed = True
    if bare is None:
        print("ratio mailmark/bare: not measured (--skip-bare)")
    else:
        ratio = mailmark.rate / bare.rate
        passed &= ratio >= TARGET_RATIO
        print(
            verdict(
                f"ratio mailmark/bare: {ratio:.2f} (target >= {TARGET_RATIO:.2f})",
                ratio >= TARGET_RATIO,
            )
        )
    if postfix is not None:
        print(f"ratio mailmark/postfix: {mailmark.rate / postfix.rate:.2f}")
    for name, done in indexing.items():
        per_message = (
            f", {done.cpu_seconds * 1000 / done.messages:.2f} ms CPU per message"
            if done.cpu_seconds is not None and done.messages
            else ""
        )
        print(
            f"{name}: full-text indexing after the load (not in the table): {done.messages} "
            f"bodies in {done.seconds:.1f} s{per_message}"
        )
    p99 = mailmark.percentile_ms(99)
    passed &= p99 < TARGET_P99_MS
    print(
        verdict(
            f"mailmark p99 final dot -> 250: {p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms)",
            p99 < TARGET_P99_MS,
        )
    )
    passed &= stored == expected
    print(
        verdict(
            f"mailmark stored placements: {stored} of {expected} messages accepted",
            stored == expected,
        )
    )
    if scored is not None:
        passed &= scored_stored == expected
        print(
            verdict(
                f"mailmark + rspamd stored placements: {scored_stored} of {expected} messages "
                "accepted",
                scored_stored == expected,
            )
        )
        print(
            f"rspamd scoring in mailmark: {scored.rate:.0f} msg/s against {mailmark.rate:.0f} "
            f"without ({scored.rate / mailmark.rate:.2f}); "
            f"{1000 / scored.rate - 1000 / mailmark.rate:+.2f} ms a message of wall time at "
            f"{args.concurrency} connections; p99 {scored.percentile_ms(99):.1f} ms"
        )
    if milter is not None and postfix is not None:
        print(
            f"rspamd milter in postfix: {milter.rate:.0f} msg/s against {postfix.rate:.0f} "
            f"without ({milter.rate / postfix.rate:.2f}); "
            f"{1000 / milter.rate - 1000 / postfix.rate:+.2f} ms a message of wall time"
        )
    if scored is not None and milter is not None:
        print(f"ratio mailmark+rspamd / postfix+rspamd milter: {scored.rate / milter.rate:.2f}")
    for note in notes:
        print(note)
    print(("PASS" if passed else "FAIL") + (" (without the ratio)" if bare is None else ""))
    return 0 if passed else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Inbound SMTP throughput of Mailmark's MX against a bare aiosmtpd server.",
    )
    add = parser.add_argument
    add("--messages", "-n", type=int, default=2000, help="timed messages per server (2000)")
    add("--concurrency", "-c", type=int, default=20, help="connections sending at once (20)")
    add("--size", type=int, default=10240, help="message size in bytes (10240)")
    add("--warmup", type=int, default=None, help="untimed messages first (2 a connection)")
    add(
        "--database-url",
        default="",
        metavar="URL",
        help="PostgreSQL server for Mailmark, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/"
        "test: a fresh database is created there and dropped afterwards (default: SQLite)",
    )
    add(
        "--sqlite-synchronous",
        choices=("FULL", "NORMAL"),
        default="FULL",
        help="MAILMARK_SQLITE_SYNCHRONOUS (FULL: the durable default, which the targets are about)",
    )
    add(
        "--postfix-port",
        type=int,
        default=None,
        metavar="PORT",
        help=f"a running Postfix smtpd on 127.0.0.1:PORT that accepts <{RCPT}> and discards it, "
        "instead of the private instance the bench starts when Postfix is installed",
    )
    add(
        "--postfix-in-flow-delay",
        default="1s",
        metavar="TIME",
        help="in_flow_delay of the private Postfix (1s, Postfix's default; 0: no flow control)",
    )
    add(
        "--no-postfix",
        action="store_true",
        help=f"do not measure a private Postfix instance even though {POSTFIX} is installed",
    )
    add("--skip-bare", action="store_true", help="measure Mailmark only (no ratio)")
    add(
        "--rspamd",
        action="store_true",
        help="also measure Mailmark with a private rspamd scoring every message (and Postfix "
        "with the same rspamd as its milter)",
    )
    add(
        "--profile-mailmark",
        type=Path,
        default=None,
        metavar="FILE",
        help="run `mailmark serve` under cProfile, every thread, CPU time; writes FILE, "
        "FILE.main and FILE.threads (profiling slows the server several times)",
    )
    add(
        "--serve-command",
        default=None,
        metavar="CMD",
        help="for experiments: the command that runs Mailmark's CLI instead of the `mailmark` "
        "console script (' serve' is appended)",
    )
    add(
        "--workdir",
        type=Path,
        default=None,
        help="where to create the temporary data dir (the system's temp dir)",
    )
    add("--keep", action="store_true", help="keep the data dir and the server logs")
    add("--reply-timeout", type=float, default=60.0, help="seconds to wait for any one reply (60)")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.concurrency < 1 or args.size < 1024:
        parser.error("needs --messages >= 1, --concurrency >= 1 and --size >= 1024")
    if args.warmup is None:
        args.warmup = 2 * args.concurrency
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [BARE_SERVER]:
        return bare_server_main()
    if argv[:1] == [PROFILED_MAILMARK] and len(argv) > 1:
        return profiled_mailmark_main(argv[1], argv[2:])
    args = parse_args(argv)

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)  # so that the `finally`s stop the servers
    procs = Processes()
    try:
        return bench(args, procs)
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())

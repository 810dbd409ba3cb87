"""A mixed soak: one `mailmark serve` under inbound, API sends, outbound and IMAP at once for minutes.

    cd /work/main && .venv/bin/python bench/soak.py [--minutes 10] [--interval 30]
        [--inbound-rate 10] [--api-rate 10] [--imap-clients 3] [--defer 0.10] [--sink-delay 0.05]
        [--retry-schedule 1m,5m] [--tracemalloc DIR]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

A real `mailmark serve` on a fresh data dir (SQLite with the durable default
MAILMARK_SQLITE_SYNCHRONOUS=FULL, or a fresh PostgreSQL database with --database-url, dropped
afterwards) on loopback ports, provisioned through the CLI as bench/api.py does (account on the
unlimited plan, trusted domain, sending mailbox, API key) plus the hosted mailbox inbox@bench.test
with a password. For --minutes (fractional for a quick check), all at once:

- inbound: --inbound-clients persistent SMTP connections to the MX port deliver 10 KiB messages
  (bench/smtp_in.py's MessageFactory and SmtpClient) to inbox@bench.test at --inbound-rate
  messages/s in all, each timed from the final dot to the 250; the sender's SPF and DMARC come
  from a loopback DNS server (tests/fakedns.py);
- API sends: --api-clients keep-alive HTTP connections POST /v1/send (transactional, one remote
  recipient spread over --domains domains) at --api-rate requests/s in all, each request timed;
- outbound: Mailmark's queue delivers those sends to the domains' MX, published by the same fake
  DNS, all on 127.0.0.1:<sink port>: a slow sink (aiosmtpd in its own process) that waits
  --sink-delay seconds on each message, then answers 451 to a --defer share of the attempts
  (at random) and 250 to the rest. Delivered and deferred are counted on the sink's side;
  deferred messages whose retry (MAILMARK_RETRY_SCHEDULE, --retry-schedule) falls due within the
  soak come back and are counted too;
- IMAP: --imap-clients threads, each in a loop over IMAPS (Mailmark refuses LOGIN in clear):
  LOGIN, SELECT INBOX, FETCH the 20 newest envelopes, STORE \\Seen on the newest, a short IDLE,
  LOGOUT, each command timed, then --imap-pause seconds.

Every --interval seconds it prints a row: elapsed time, the RSS of the serve process and of
its child processes (from /proc/<pid>/task/*/children: multiprocessing's resource tracker, and
the CPU pool's workers once a message over 256 KiB starts them), the server's CPU, and
for the interval just ended: inbound msg/s and p99, API req/s and p99, messages the sink accepted
per second and the deferrals it answered, IMAP commands/s and p99, errors so far, load average.

At the end: totals and overall p50/p99 per load; the RSS samples after the warm-up (the first 20%
of the run) fitted by least squares, printed as a slope in MiB/hour, and PASS when the fitted
growth over that window is under --rss-growth percent (5) of where the fit starts: a leak grows
with the traffic, so over a steady load it is a trend line, while allocator noise is a few MiB
either way and does not tilt 16+ samples much. Then the checks that nothing was lost: every
message answered 250 is in INBOX (its Message-ID fetched over IMAP), every API send answered 200
has its queue row, nothing bounced or left untried, the queue's delivered rows (read once the
server has stopped) and the messages the sink accepted are the same, none accepted twice. Any client error, lost message or ERROR/Traceback in the
server's log fails the run. Exit status 0 on PASS, 1 on FAIL, 2 when the run cannot be made.

--tracemalloc DIR is a debug run: from the end of the warm-up on, the server traces its Python
allocations (tracemalloc, 10 frames: slower, and its RSS then includes the traces); at the end it
writes a snapshot to DIR and the run prints what was allocated after the warm-up and still held,
by line and by traceback, then the objects of that time alive before and after a full garbage
collection, by type, and where the exceptions among them were raised (garbage in reference cycles
holds memory until a full collection; what C code allocated shows under the event loop's frame).

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import imaplib
import json
import math
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from api import (  # a real serve provisioned as the API bench does
    SENDER,
    api_settings_env,
    provision,
    wait_http,
)
from hostile import client_tls
from imap import _idle_briefly, wait_for_port
from smtp_in import (  # process, database and SMTP client helpers of the inbound bench
    DMARC_RECORD,
    RCPT,
    RCPT_DOMAIN,
    SENDER_DOMAIN,
    SPF_RECORD,
    BenchError,
    MailmarkSetup,
    MessageFactory,
    Processes,
    SmtpClient,
    children,
    event_loop_runner,
    free_loopback_port,
    fresh_database,
    log_tail,
    mailmark_cli,
    mailmark_setup,
    process_cpu_seconds,
    serve_smtp_until_signalled,
    start_mailmark,
)

SINK = "--sink"  # internal: this file as the slow sink's process
TRACED_MAILMARK = "--run-mailmark-traced"  # internal: this file as `mailmark` under tracemalloc
TRACED_FRAMES = 10
WARMUP_SHARE = 0.2
REPLY_TIMEOUT = 60.0
DRAIN_TIMEOUT = 120.0
FETCH_RECENT = 20
MiB = 1024 * 1024
_MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*<([^>\r\n]+)>")


# ------------------------------------------------------------------------------------------------
# The slow sink, in its own process: `python bench/soak.py --sink DEFER DELAY SEED`
# ------------------------------------------------------------------------------------------------


def sink_main(defer: float, delay: float, seed: int) -> int:
    """Prints its port, then `250 <message-id>` or `451 <message-id>` for every DATA it answers."""
    rng = random.Random(seed)

    class SlowSink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            await asyncio.sleep(delay)
            content = bytes(envelope.original_content or b"")
            found = _MESSAGE_ID.search(content.split(b"\r\n\r\n", 1)[0])
            message_id = found[1].decode(errors="replace") if found else "-"
            if rng.random() < defer:
                print(f"451 {message_id}", flush=True)
                return "451 4.7.1 Busy, try again later"
            print(f"250 {message_id}", flush=True)
            return "250 2.0.0 Queued"

    return serve_smtp_until_signalled(SlowSink(), "sink.remote.bench.test")


# ------------------------------------------------------------------------------------------------
# --tracemalloc: `mailmark` whose allocations are traced from the end of the warm-up on
# ------------------------------------------------------------------------------------------------


def survivors(top: int = 12) -> list[str]:
    """The objects the collector tracks that were allocated since tracing started, counted by
    type before and after a full collection (garbage in reference cycles waits for one), with
    what refers to one survivor of each type, and where the exceptions among the garbage were
    raised: what holds memory that C code allocated, which tracemalloc attributes to the event
    loop's frame (uvloop's 256 KiB TLS read buffers, say)."""
    import collections
    import gc
    import tracemalloc

    def census(
        keep: dict[str, object] | None = None,
    ) -> tuple[collections.Counter[str], collections.Counter[str]]:
        counts: collections.Counter[str] = collections.Counter()
        raised: collections.Counter[str] = collections.Counter()
        for obj in gc.get_objects():
            if tracemalloc.get_object_traceback(obj) is None:
                continue
            name = f"{type(obj).__module__}.{type(obj).__qualname__}"
            counts[name] += 1
            if keep is not None:
                keep.setdefault(name, obj)
            if isinstance(obj, BaseException) and obj.__traceback__ is not None:
                tb = obj.__traceback__
                while tb.tb_next is not None:
                    tb = tb.tb_next
                code = tb.tb_frame.f_code
                where = f"{Path(code.co_filename).name}:{tb.tb_lineno} in {code.co_name}"
                raised[f"{type(obj).__qualname__} raised at {where}"] += 1
        return counts, raised

    before, raised = census()
    collected = gc.collect()
    examples: dict[str, object] = {}
    after, _ = census(examples)
    lines = [f"a full collection freed {collected} objects; by type, before -> after it:"]
    # The most numerous, then the event loop's transports and protocols and the TLS objects.
    names = [name for name, _ in (before + after).most_common(top)]
    names += sorted(n for n in before if n.startswith(("uvloop.", "_ssl.")) and n not in names)
    for name in names:
        holders = ""
        if name in examples:
            found = gc.get_referrers(examples[name])
            kinds = {f"{type(o).__module__}.{type(o).__qualname__}" for o in found} - {
                "builtins.frame",
                "builtins.dict",
            }
            holders = f" (one held by: {', '.join(sorted(kinds)) or 'a dict'})"
        lines.append(f"{before[name]:>7} -> {after[name]:<7} {name}{holders}")
    lines.append("exceptions alive before the collection, by where they were raised:")
    lines += [f"{count:>7} {where}" for where, count in raised.most_common(6)]
    return lines


def traced_mailmark_main(out: str, argv: list[str]) -> int:
    """Run mailmark's CLI; the first SIGUSR2 starts tracemalloc (started before the imports, it
    slows them down by minutes), the second writes OUT/snapshot, then OUT/survivors.txt (`survivors`),
    renamed into place once complete: every block allocated since the first signal and still
    held."""
    import tracemalloc

    def on_signal(signum: int, frame: Any) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(TRACED_FRAMES)
            return
        tracemalloc.take_snapshot().dump(str(Path(out) / "snapshot"))
        partial = Path(out) / "survivors.partial"
        partial.write_text("".join(f"{line}\n" for line in survivors()))
        partial.rename(Path(out) / "survivors.txt")

    signal.signal(signal.SIGUSR2, on_signal)
    from mailmark.cli import main as mailmark_main

    return mailmark_main(argv)


def take_snapshot(pid: int, out: Path, timeout: float = 300) -> None:
    """Ask the traced server for its snapshot and wait until it is written."""
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + timeout
    while not (out / "survivors.txt").exists():
        if time.monotonic() > deadline:
            raise BenchError(f"the traced server wrote no snapshot in {timeout:.0f} s")
        time.sleep(0.2)


def print_growth(out: Path, top: int = 15) -> None:
    """What the server allocated after the warm-up and still held at the end: by line, then the
    three largest by traceback."""
    import tracemalloc

    held = tracemalloc.Snapshot.load(str(out / "snapshot")).filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )
    lines = held.statistics("lineno")
    print(
        f"\ntracemalloc: {sum(s.size for s in lines) / MiB:.1f} MiB in "
        f"{sum(s.count for s in lines)} blocks allocated after the warm-up were still held at the "
        f"end (in-flight work included); the {top} largest lines:"
    )
    for stat in lines[:top]:
        print(f"  {stat}")
    for stat in held.statistics("traceback")[:3]:
        print(f"  {stat.size / 1024:.1f} KiB in {stat.count} blocks, allocated at:")
        for line in stat.traceback.format(limit=12, most_recent_first=True):
            print(f"    {line}")
    print("  objects allocated after the warm-up and alive at the end:")
    for line in (out / "survivors.txt").read_text().splitlines():
        print(f"    {line}")


class Sink:
    """The slow sink's process and what it answered, read from its output by a thread."""

    def __init__(self, procs: Processes, workdir: Path, defer: float, delay: float) -> None:
        self.lock = threading.Lock()
        self.accepted: list[float] = []  # monotonic time of each 250
        self.deferred: list[float] = []  # and of each 451
        self.accepted_ids: dict[str, int] = {}
        self.deferred_ids: set[str] = set()
        log = workdir / "sink.log"
        with log.open("wb") as stderr:
            self.process = procs.start(
                "slow sink",
                [sys.executable, str(Path(__file__).resolve()), SINK, str(defer), str(delay), "1"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        if not line.isdigit():
            procs.stop(self.process)
            raise BenchError(f"the sink did not start (printed {line!r}):\n{log_tail(log)}")
        self.port = int(line)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            code, _, message_id = raw.decode(errors="replace").strip().partition(" ")
            now = time.monotonic()
            with self.lock:
                if code == "250":
                    self.accepted.append(now)
                    self.accepted_ids[message_id] = self.accepted_ids.get(message_id, 0) + 1
                else:
                    self.deferred.append(now)
                    self.deferred_ids.add(message_id)


# ------------------------------------------------------------------------------------------------
# What the clients measured
# ------------------------------------------------------------------------------------------------


@dataclass
class Samples:
    """Completion times and latencies of one load, appended from any thread (list.append holds
    the interpreter lock), read by the sampler up to where it last stopped."""

    done: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    by_name: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    late: int = 0  # starts that came after their slot (the server or this process fell behind)

    def add(self, latency: float, name: str = "") -> None:
        self.latencies.append(latency)
        self.done.append(time.monotonic())
        if name:
            self.by_name.setdefault(name, []).append(latency)

    def error(self, text: str) -> None:
        self.errors.append(text[:300])


def percentile_ms(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


async def paced(
    rate: float,
    deadline: float,
    phase: float,
    samples: Samples,
    step: Callable[[], Awaitable[None]],
) -> None:
    """`step` at `rate` per second until `deadline` (monotonic), starting `phase` of a period
    late; a start that comes after its slot goes at once, without bursting to catch up."""
    period = 1 / rate
    slot = time.monotonic() + phase * period
    while True:
        wait = slot - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -period:
            samples.late += 1
            slot = time.monotonic()
        if time.monotonic() >= deadline:
            return
        await step()
        slot += period


# ------------------------------------------------------------------------------------------------
# The clients
# ------------------------------------------------------------------------------------------------


class InboundClient:
    """One persistent MX connection (bench/smtp_in.py's pipelining client); reconnects after an
    error. Records the number of every message answered 250."""

    def __init__(self, name: str, port: int, factory: MessageFactory, numbers: Any) -> None:
        self.name = name
        self.port = port
        self.factory = factory
        self.numbers = numbers
        self.client: SmtpClient | None = None

    async def send(self, samples: Samples, accepted: list[int]) -> None:
        number = next(self.numbers)
        try:
            if self.client is None:
                self.client = await SmtpClient.connect(self.name, self.port, REPLY_TIMEOUT)
            _, latency = await self.client.send(self.factory.data(number), number)
        except (BenchError, OSError, TimeoutError) as error:
            samples.error(f"inbound: {type(error).__name__}: {error}")
            await self.close()
            return
        samples.add(latency)
        accepted.append(number)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.quit()
            self.client = None


class ApiClient:
    """One keep-alive HTTP/1.1 connection POSTing /v1/send; records each answered messageId."""

    def __init__(self, port: int, authorization: str, domains: int, numbers: Any) -> None:
        self.port = port
        self.authorization = authorization
        self.domains = domains
        self.numbers = numbers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def request(self, number: int) -> bytes:
        body = json.dumps(
            {
                "from": SENDER,
                "to": [f"user{number}@d{number % self.domains}.remote.bench.test"],
                "subject": f"Soak {number}",
                "text": f"Transactional message {number} of the soak.\n" * 40,
            }
        ).encode()
        return (
            f"POST /v1/send HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: {self.authorization}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def send(self, samples: Samples, accepted: list[str]) -> None:
        request = self.request(next(self.numbers))
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            assert self.reader is not None
            start = time.perf_counter()
            async with asyncio.timeout(REPLY_TIMEOUT):
                self.writer.write(request)
                head = await self.reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                body = await self.reader.readexactly(int(length[1]) if length else 0)
            latency = time.perf_counter() - start
            status = int(head.split(b" ", 2)[1])
            if re.search(rb"(?im)^connection:\s*close", head):
                await self.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            samples.error(f"api: {type(error).__name__}: {error}")
            await self.close()
            return
        if status != 200:
            samples.error(f"api: {status} {body[:200].decode(errors='replace')}")
            return
        samples.add(latency)
        accepted.append(str(json.loads(body)["messageId"]))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


IMAP_STEPS = ("LOGIN", "SELECT", "FETCH", "STORE", "IDLE", "LOGOUT")


class ImapSession:
    """One IMAPS connection whose commands are timed into `samples`; `step` names the last."""

    def __init__(self, port: int, samples: Samples) -> None:
        self.samples = samples
        self.step = "connect"
        self.conn = imaplib.IMAP4_SSL(
            "127.0.0.1", port, ssl_context=client_tls(), timeout=REPLY_TIMEOUT
        )

    def timed(self, name: str, command: Callable[..., tuple[str, Any]], *args: Any) -> Any:
        self.step = name
        start = time.perf_counter()
        typ, data = command(*args)
        took = time.perf_counter() - start
        if typ != ("BYE" if name == "LOGOUT" else "OK"):  # imaplib's logout() returns the BYE
            raise imaplib.IMAP4.error(f"{name}: {typ} {data!r}"[:200])
        self.samples.add(took, name)
        return data

    def idle(self) -> tuple[str, None]:
        _idle_briefly(self.conn)
        return "OK", None


def imap_client(port: int, password: str, deadline: float, pause: float, samples: Samples) -> None:
    """Sessions one after another until `deadline` (monotonic), each command timed: LOGIN,
    SELECT INBOX, FETCH the newest envelopes, STORE \\Seen on the newest, IDLE, LOGOUT."""
    while time.monotonic() < deadline:
        session: ImapSession | None = None
        try:
            session = ImapSession(port, samples)
            conn = session.conn
            session.timed("LOGIN", conn.login, RCPT, password)
            exists = int(session.timed("SELECT", conn.select, "INBOX")[0] or 0)
            if exists:
                low = max(1, exists - FETCH_RECENT + 1)
                session.timed("FETCH", conn.fetch, f"{low}:{exists}", "(UID FLAGS ENVELOPE)")
                session.timed("STORE", conn.store, str(exists), "+FLAGS", "(\\Seen)")
            session.timed("IDLE", session.idle)
            session.timed("LOGOUT", conn.logout)
            session = None
        except (imaplib.IMAP4.error, OSError, ValueError) as error:
            step = session.step if session is not None else "connect"
            samples.error(f"imap {step}: {type(error).__name__}: {error}")
        finally:
            if session is not None:
                with contextlib.suppress(Exception):
                    session.conn.shutdown()
        time.sleep(pause)


# ------------------------------------------------------------------------------------------------
# The server's memory and CPU
# ------------------------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found[1]) if found else 0


@dataclass
class Row:
    elapsed: float
    rss: int  # KiB, the serve process
    children: int  # KiB, its child processes together
    child_count: int


# ------------------------------------------------------------------------------------------------
# The checks at the end
# ------------------------------------------------------------------------------------------------


def _strip(message_id: str | None) -> str:
    return (message_id or "").strip().strip("<>")


async def queue_rows(setup: MailmarkSetup) -> list[tuple[str, str, int]]:
    """(Message-ID, status, attempts) of every queue row."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from mailmark.storage.tables import deliveries, outbound_messages

    url = setup.database_url or f"sqlite+aiosqlite:///{setup.data_dir / 'mailmark.db'}"
    engine = create_async_engine(url)
    query = sa.select(
        outbound_messages.c.message_id_header, deliveries.c.status, deliveries.c.attempts
    ).join(outbound_messages, outbound_messages.c.id == deliveries.c.outbound_id)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    finally:
        await engine.dispose()
    return [(_strip(row[0]), str(row[1]), int(row[2])) for row in rows]


def inbox_message_ids(port: int, password: str) -> list[str]:
    """The Message-ID of every message in the hosted INBOX, over IMAPS."""
    conn = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls(), timeout=300)
    try:
        conn.login(RCPT, password)
        typ, data = conn.select("INBOX", readonly=True)
        if typ != "OK":
            raise BenchError(f"the final SELECT answered {typ} {data!r}")
        if int(data[0] or 0) == 0:
            return []
        typ, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        if typ != "OK":
            raise BenchError(f"the final FETCH answered {typ} {data!r}")
        found = []
        for item in data:
            if isinstance(item, tuple):
                match = _MESSAGE_ID.search(item[1])
                found.append(match[1].decode() if match else "")
        conn.logout()
        return found
    finally:
        with contextlib.suppress(Exception):
            conn.shutdown()


def rss_trend(rows: list[Row], start: float) -> tuple[list[Row], float, float]:
    """The rows from `start` on, the least-squares slope of their RSS (serve + children) in
    MiB/hour, and the fitted value at the first of them in MiB."""
    kept = [row for row in rows if row.elapsed >= start]
    xs = [row.elapsed / 3600 for row in kept]
    ys = [(row.rss + row.children) / 1024 for row in kept]
    slope, intercept = statistics.linear_regression(xs, ys)
    return kept, slope, intercept + slope * xs[0]


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------


@dataclass
class Soak:
    args: argparse.Namespace
    setup: MailmarkSetup
    serve_pid: int
    mx_port: int
    http_port: int
    imaps_port: int
    password: str
    authorization: str
    sink: Sink
    factory: MessageFactory
    inbound: Samples = field(default_factory=Samples)
    api: Samples = field(default_factory=Samples)
    imap: Samples = field(default_factory=Samples)
    inbound_accepted: list[int] = field(default_factory=list)
    api_accepted: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    traced: Path | None = None  # --tracemalloc: where the server writes its snapshots

    def errors(self) -> int:
        return len(self.inbound.errors) + len(self.api.errors) + len(self.imap.errors)

    def sample(self, elapsed: float) -> Row:
        pids = children(self.serve_pid)
        row = Row(elapsed, rss_kib(self.serve_pid), sum(map(rss_kib, pids)), len(pids))
        self.rows.append(row)
        return row

    async def run(self) -> None:
        args = self.args
        self.seconds = args.minutes * 60
        self.sample(0.0)
        print(
            f"{'time':>6} {'RSS MiB':>8} {'child':>6} {'cpu%':>5} | {'in/s':>6} {'p99 ms':>7} | "
            f"{'api/s':>6} {'p99 ms':>7} | {'out/s':>6} {'defer':>5} | {'imap/s':>6} "
            f"{'p99 ms':>7} | {'errors':>6} {'load':>5}",
            flush=True,
        )
        started = time.monotonic()
        deadline = started + self.seconds
        numbers = iter(range(10**12))
        inbound = [
            InboundClient(f"inbound #{i}", self.mx_port, self.factory, numbers)
            for i in range(args.inbound_clients)
        ]
        api_numbers = iter(range(10**12))
        api = [
            ApiClient(self.http_port, self.authorization, args.domains, api_numbers)
            for _ in range(args.api_clients)
        ]
        tasks = [
            *(
                paced(
                    args.inbound_rate / len(inbound),
                    deadline,
                    i / len(inbound),
                    self.inbound,
                    functools.partial(client.send, self.inbound, self.inbound_accepted),
                )
                for i, client in enumerate(inbound)
            ),
            *(
                paced(
                    args.api_rate / len(api),
                    deadline,
                    i / len(api),
                    self.api,
                    functools.partial(client.send, self.api, self.api_accepted),
                )
                for i, client in enumerate(api)
            ),
        ]
        threads = [
            threading.Thread(
                target=imap_client,
                args=(self.imaps_port, self.password, deadline, args.imap_pause, self.imap),
                daemon=True,
            )
            for _ in range(args.imap_clients)
        ]
        for thread in threads:
            thread.start()
        sampler = asyncio.create_task(self.sampler(started, deadline))
        try:
            await asyncio.gather(*tasks)
        finally:
            await asyncio.gather(*(c.close() for c in [*inbound, *api]), return_exceptions=True)
            await asyncio.to_thread(lambda: [t.join() for t in threads])
            await sampler
        if self.traced is not None:
            await asyncio.to_thread(take_snapshot, self.serve_pid, self.traced)

    async def sampler(self, started: float, deadline: float) -> None:
        marks = {"inbound": 0, "api": 0, "imap": 0, "accepted": 0, "deferred": 0}
        cpu_before, at_before = process_cpu_seconds(self.serve_pid) or 0.0, started
        tick = 1
        warm = False
        while True:
            due = min(started + tick * self.args.interval, deadline)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            span = now - at_before
            row = self.sample(due - started)  # its slot: the sleep may end a little early
            if self.traced is not None and not warm and row.elapsed >= WARMUP_SHARE * self.seconds:
                warm = True
                os.kill(self.serve_pid, signal.SIGUSR2)  # tracing starts
            cpu = process_cpu_seconds(self.serve_pid) or 0.0
            cells = []
            for name, samples in (
                ("inbound", self.inbound),
                ("api", self.api),
                ("imap", self.imap),
            ):
                end = len(samples.latencies)
                window = samples.latencies[marks[name] : end]
                marks[name] = end
                cells.append((len(window) / span, percentile_ms(window, 99)))
            with self.sink.lock:
                accepted, deferred = len(self.sink.accepted), len(self.sink.deferred)
            out_rate = (accepted - marks["accepted"]) / span
            defer = deferred - marks["deferred"]
            marks["accepted"], marks["deferred"] = accepted, deferred
            print(
                f"{row.elapsed:>5.0f}s {row.rss / 1024:>8.1f} {row.children / 1024:>6.1f} "
                f"{100 * (cpu - cpu_before) / span:>5.0f} | {cells[0][0]:>6.1f} {cells[0][1]:>7.1f} | "
                f"{cells[1][0]:>6.1f} {cells[1][1]:>7.1f} | {out_rate:>6.1f} {defer:>5} | "
                f"{cells[2][0]:>6.1f} {cells[2][1]:>7.1f} | {self.errors():>6} "
                f"{os.getloadavg()[0]:>5.2f}",
                flush=True,
            )
            cpu_before, at_before = cpu, now
            if now >= deadline - 0.001:
                return
            tick += 1

    async def drain(self) -> None:
        """Wait (up to DRAIN_TIMEOUT) until no queue row waits for its first attempt; deferred
        ones wait for their retry, which may be hours away."""
        limit = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < limit:
            if not any(status == "queued" for _, status, _ in await queue_rows(self.setup)):
                return
            await asyncio.sleep(1)


def report(soak: Soak, rows: list[tuple[str, str, int]], inbox: list[str]) -> bool:
    args = soak.args
    seconds = soak.seconds
    passed = True

    def verdict(label: str, ok: bool) -> None:
        nonlocal passed
        passed &= ok
        print(f"{label}   {'PASS' if ok else 'FAIL'}")

    print()
    print(f"totals over {seconds:.0f} s:")
    for name, samples, offered in (
        ("inbound (final dot -> 250)", soak.inbound, args.inbound_rate),
        ("API POST /v1/send", soak.api, args.api_rate),
    ):
        lat = samples.latencies
        print(
            f"  {name}: {len(lat)} answered, {len(lat) / seconds:.1f}/s (offered {offered:g}/s, "
            f"{samples.late} late starts), p50 {percentile_ms(lat, 50):.1f} ms, p99 "
            f"{percentile_ms(lat, 99):.1f} ms, max {percentile_ms(lat, 100):.1f} ms, "
            f"errors {len(samples.errors)}"
        )
    imap = soak.imap
    print(
        f"  IMAP: {len(imap.latencies)} commands, {len(imap.latencies) / seconds:.1f}/s, p99 "
        f"{percentile_ms(imap.latencies, 99):.1f} ms, errors {len(imap.errors)}; p50/p99 ms: "
        + ", ".join(
            f"{step} {percentile_ms(imap.by_name.get(step, []), 50):.1f}/"
            f"{percentile_ms(imap.by_name.get(step, []), 99):.1f}"
            for step in IMAP_STEPS
        )
    )
    with soak.sink.lock:
        accepted_ids = dict(soak.sink.accepted_ids)
        deferred_answers = len(soak.sink.deferred)
        retried = len(soak.sink.deferred_ids & accepted_ids.keys())
    by_status: dict[str, int] = {}
    for _, status, _ in rows:
        by_status[status] = by_status.get(status, 0) + 1
    attempts = sum(a for _, _, a in rows)
    print(
        f"  outbound: the sink accepted {sum(accepted_ids.values())} messages "
        f"({sum(accepted_ids.values()) / seconds:.1f}/s) and deferred {deferred_answers} attempts "
        f"({100 * deferred_answers / max(1, deferred_answers + sum(accepted_ids.values())):.1f}%);"
        f" {retried} came back and were accepted within the run; queue rows by status: "
        + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items()))
        + f"; {attempts} attempts recorded"
    )

    warmup = WARMUP_SHARE * seconds
    kept, slope, fitted_start = rss_trend(soak.rows, warmup)
    growth = slope * (kept[-1].elapsed - kept[0].elapsed) / 3600
    rss = [(row.rss + row.children) / 1024 for row in kept]
    print(
        f"  RSS (serve + its children) after the warm-up ({warmup:.0f} s, {len(kept)} samples):"
        f" {rss[0]:.1f} -> {rss[-1]:.1f} MiB, min {min(rss):.1f}, max {max(rss):.1f}; "
        f"{soak.rows[0].rss / 1024:.1f} MiB before the load; at most "
        f"{max(row.child_count for row in soak.rows)} child processes"
    )
    print()
    verdict(
        f"RSS slope after the warm-up: {slope:+.1f} MiB/hour, fitted growth {growth:+.1f} MiB "
        f"over {kept[-1].elapsed - kept[0].elapsed:.0f} s = {100 * growth / fitted_start:+.1f}% "
        f"(target < {args.rss_growth:g}%)",
        100 * growth / fitted_start < args.rss_growth,
    )

    expected = {f"{n}.{soak.factory.run_id}@{SENDER_DOMAIN}" for n in soak.inbound_accepted}
    stored = set(inbox)
    missing = expected - stored
    verdict(
        f"inbound: {len(expected)} messages answered 250, {len(expected & stored)} of them in "
        f"INBOX ({len(inbox)} messages there), {len(missing)} missing",
        not missing and len(inbox) >= len(expected),
    )
    queued = {message_id for message_id, _, _ in rows}
    sends = set(soak.api_accepted)
    verdict(
        f"API: {len(sends)} sends answered 200, {len(sends & queued)} with their queue row",
        sends <= queued,
    )
    delivered = {message_id for message_id, status, _ in rows if status == "delivered"}
    unseen = delivered - accepted_ids.keys()
    unrecorded = accepted_ids.keys() - delivered
    twice = sum(1 for count in accepted_ids.values() if count > 1)
    verdict(
        f"outbound: {len(delivered)} rows delivered, {len(unseen)} of them never accepted by the "
        f"sink, {len(unrecorded)} accepted by the sink but not recorded delivered, {twice} "
        f"accepted twice, {by_status.get('bounced', 0)} bounced, {by_status.get('queued', 0)} "
        "never tried",
        not (unseen or unrecorded or twice or by_status.get("bounced") or by_status.get("queued")),
    )
    log = soak.setup.log.read_text(errors="replace").splitlines()
    bad = [line for line in log if "Traceback" in line or " ERROR " in line]
    lag = [line for line in log if "event loop held for" in line]
    verdict(
        f"errors: inbound {len(soak.inbound.errors)}, API {len(soak.api.errors)}, IMAP "
        f"{len(soak.imap.errors)}, server log {len(bad)} ERROR/Traceback lines "
        f"({len(lag)} loop-lag warnings)",
        not soak.errors() and not bad,
    )
    for samples in (soak.inbound, soak.api, soak.imap):
        for error in samples.errors[:3]:
            print(f"  {error}")
    for line in bad[:5]:
        print(f"  log: {line[:300]}")
    return passed


def bench(args: argparse.Namespace, procs: Processes) -> int:
    import aiosmtpd

    from tests.fakedns import FakeDns

    run, loop_name = event_loop_runner()
    workdir = Path(tempfile.mkdtemp(prefix="mailmark-bench-soak-", dir=args.workdir))
    try:
        sink = Sink(procs, workdir, args.defer, args.sink_delay)
        with FakeDns() as dns, fresh_database(args.database_url) as database_url:
            dns.add(SENDER_DOMAIN, "TXT", SPF_RECORD)
            dns.add(f"_dmarc.{SENDER_DOMAIN}", "TXT", DMARC_RECORD)
            for n in range(args.domains):
                dns.add(f"d{n}.remote.bench.test", "MX", f"10 mx.d{n}.remote.bench.test.")
                dns.add(f"mx.d{n}.remote.bench.test", "A", "127.0.0.1")
            setup = mailmark_setup(workdir, database_url, dns.address, args.sqlite_synchronous)
            http_port, imaps_port = free_loopback_port(), free_loopback_port()
            setup.env.update(
                MAILMARK_HTTP_PORT=str(http_port),
                MAILMARK_IMAPS_PORT=str(imaps_port),
                MAILMARK_REMOTE_SMTP_PORT=str(sink.port),
                **api_settings_env(),
            )
            if args.retry_schedule:
                setup.env["MAILMARK_RETRY_SCHEDULE"] = args.retry_schedule
            setup.env.update(args.setting)
            api_key = provision(setup)
            password = secrets.token_urlsafe(18)
            mailmark_cli(setup, "domain", "add", RCPT_DOMAIN, "--account", "bench", "--trust")
            mailmark_cli(setup, "mailbox", "add", RCPT, f"--password={password}")
            traced = None
            if args.tracemalloc is not None:
                traced = args.tracemalloc.absolute()
                traced.mkdir(parents=True, exist_ok=True)
            serve_command = (
                None
                if traced is None
                else shlex.join([sys.executable, str(Path(__file__).resolve()), TRACED_MAILMARK])
                + " "
                + shlex.quote(str(traced))
            )
            proc, mx_port = start_mailmark(procs, setup, profile=None, serve_command=serve_command)
            wait_http(http_port, proc, setup.log)
            wait_for_port(imaps_port, proc, "mailmark serve", setup.log)
            store = (
                "PostgreSQL" if database_url else f"SQLite (synchronous={args.sqlite_synchronous})"
            )
            print(
                f"soak: {args.minutes:g} min, a row every {args.interval:g} s; inbound "
                f"{args.inbound_rate:g} msg/s of {args.size} bytes over {args.inbound_clients} "
                f"connections; API {args.api_rate:g} sends/s over {args.api_clients} connections to "
                f"{args.domains} remote domains; sink: {args.sink_delay * 1000:g} ms a message, "
                f"{100 * args.defer:g}% deferred; {args.imap_clients} IMAP clients"
            )
            print(
                f"mailmark serve (pid {proc.pid}) on {store}; retry schedule "
                f"{args.retry_schedule or 'the default (5m, 10m, ...)'}; load generator on "
                f"{loop_name}, aiosmtpd {aiosmtpd.__version__} sink; {os.cpu_count()} cores, load "
                f"average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the start"
                + "".join(f"; {name}={value}" for name, value in args.setting.items()),
                flush=True,
            )
            soak = Soak(
                args,
                setup,
                proc.pid,
                mx_port,
                http_port,
                imaps_port,
                password,
                f"Bearer {api_key}",
                sink,
                MessageFactory(args.size, secrets.token_hex(4)),
                traced=traced,
            )
            run(soak.run())
            run(soak.drain())
            inbox = inbox_message_ids(imaps_port, password)
            code = procs.stop(proc)
            if code != 0:
                soak.imap.error(f"mailmark serve exited with status {code}")
            rows = run(queue_rows(setup))  # once the server has stopped: nothing in flight
            print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            passed = report(soak, rows, inbox)
            if traced is not None:
                print_growth(traced)
        print("PASS" if passed else "FAIL")
        return 0 if passed else 1
    finally:
        procs.stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--minutes", type=float, default=10.0, help="length of the soak (10; fractions allowed)")
    add("--interval", type=float, default=30.0, help="seconds between rows and RSS samples (30)")
    add("--inbound-rate", type=float, default=10.0, help="inbound messages/s offered (10)")
    add("--inbound-clients", type=int, default=4, help="SMTP connections to the MX (4)")
    add("--size", type=int, default=10240, help="inbound message size in bytes (10240)")
    add("--api-rate", type=float, default=10.0, help="POST /v1/send requests/s offered (10)")
    add("--api-clients", type=int, default=4, help="HTTP connections (4)")
    add("--domains", type=int, default=10, help="remote recipient domains (10)")
    add("--defer", type=float, default=0.10, help="share of attempts the sink defers (0.10)")
    add("--sink-delay", type=float, default=0.05, help="seconds the sink takes a message (0.05)")
    add(
        "--retry-schedule",
        default="",
        metavar="STEPS",
        help="MAILMARK_RETRY_SCHEDULE for the run, e.g. 1m,5m (default: Mailmark's, 5m first)",
    )
    add("--imap-clients", type=int, default=3, help="IMAP client threads (3)")
    add("--imap-pause", type=float, default=1.0, help="seconds between IMAP sessions (1)")
    add(
        "--rss-growth",
        type=float,
        default=5.0,
        metavar="PERCENT",
        help="largest fitted RSS growth after the warm-up that passes (5)",
    )
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
        help="MAILMARK_SQLITE_SYNCHRONOUS (FULL, the durable default)",
    )
    add("--workdir", type=Path, default=None, help="where to create the temporary data dir")
    add(
        "--setting",
        action="append",
        default=[],
        metavar="MAILMARK_NAME=VALUE",
        help="a setting for the server, for experiments (repeatable), e.g. "
        "MAILMARK_LOGIN_CACHE_TTL=30s",
    )
    add("--keep", action="store_true", help="keep the data dir and the server log")
    add(
        "--tracemalloc",
        type=Path,
        default=None,
        metavar="DIR",
        help="a debug run: the server traces its allocations after the warm-up (slower, more "
        "memory); prints what it still holds at the end (the snapshot is written to DIR)",
    )
    args = parser.parse_args(argv)
    settings = [item.partition("=") for item in args.setting]
    if any(not name.startswith("MAILMARK_") or not sep for name, sep, _ in settings):
        parser.error("--setting takes MAILMARK_NAME=VALUE")
    args.setting = {name: value for name, _, value in settings}
    if args.minutes <= 0 or args.interval <= 0:
        parser.error("--minutes and --interval must be positive")
    if args.minutes * 60 * (1 - WARMUP_SHARE) / args.interval < 3:
        parser.error("the RSS trend needs 3 samples after the warm-up: a shorter --interval")
    if (
        min(args.inbound_rate, args.api_rate) <= 0
        or min(args.inbound_clients, args.api_clients) < 1
    ):
        parser.error("the rates must be positive and the client counts at least 1")
    if args.imap_clients < 0 or args.domains < 1 or not 0 <= args.defer < 1:
        parser.error("needs --imap-clients >= 0, --domains >= 1 and 0 <= --defer < 1")
    if args.size < 1024 or args.sink_delay < 0 or args.imap_pause < 0:
        parser.error("needs --size >= 1024, --sink-delay >= 0 and --imap-pause >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [TRACED_MAILMARK] and len(argv) > 1:
        return traced_mailmark_main(argv[1], argv[2:])
    if argv[:1] == [SINK] and len(argv) == 4:
        return sink_main(float(argv[1]), float(argv[2]), int(argv[3]))
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


if __name__ == "__main__":
    sys.exit(main())

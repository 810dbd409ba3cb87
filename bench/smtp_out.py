"""Outbound delivery throughput: Mailmark's queue worker against Postfix relaying the same load.

    cd /work/main && .venv/bin/python bench/smtp_out.py [--messages 10000] [--domains M]
        [--size BYTES] [--workers N [N ...]]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Both deliver N messages (one recipient each, spread over M recipient domains) into the same
receiving MTA, Postfix's `smtp-sink` on a loopback port, which throws them away and counts them.
N is 10,000 by default: at Postfix's pace here 2,000 were gone in under a second, too short a
run to give a steady rate.

Mailmark: N messages are queued through the core SendingService (not through submission) on a
fresh data dir (SQLite with the default MAILMARK_SQLITE_SYNCHRONOUS=FULL, or a fresh PostgreSQL
database with --database-url), then the outbound worker starts and the clock runs until every
queue row is recorded delivered. It resolves each domain's MX through a loopback DNS server
(FakeDns), DKIM-signs every message (rsa-sha256, 2048 bits) and delivers with connection reuse.

Postfix: a private instance (`postfix -c <temp dir>/config`, its own queue; never the system one)
takes the same N messages over SMTP into its hold queue; then `postsuper -H ALL` releases them and
the clock runs until its queue is empty, with `relayhost = [127.0.0.1]:<sink port>`. Postfix
fsyncs its queue files but does not sign.

`--workers 1 2` measures Mailmark once per value, each on a fresh SQLite data dir: with N, N-1
`mailmark serve --delivery-only` processes deliver beside the bench's own worker (what `serve
--delivery-workers N` runs). Their clock starts once every process's worker has started, and
counts the messages the sink receives from then on; their CPU is counted with the bench's.

Prints each rate (messages/s), the CPU each used, the ratio of Mailmark's best to Postfix and
PASS/FAIL against the target ratio >= 0.80. Needs root (Postfix's master) and Debian's postfix
package.
This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pwd
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import aiosmtplib
from smtp_in import (  # the private-Postfix helpers of the inbound bench
    POSTFIX,
    PostfixError,
    _one_line,
    _postfix,
    _stop_postfix,
    event_loop_runner,
    free_loopback_port,
    fresh_database,
    postfix_cpu_seconds,
    postfix_master_cf,
)

from mailmark.bootstrap import build_services, outbound_worker
from mailmark.config import Settings
from mailmark.security import Argon2PasswordHasher
from tests.fakedns import FakeDns

TARGET_RATIO = 0.80
SMTP_SINK = Path("/usr/sbin/smtp-sink")
SENDER_DOMAIN = "acme.bench.test"
MAILMARK_HOSTNAME = "mx.bench.test"
POSTFIX_HOSTNAME = "postfix.bench.test"
_COUNTER = re.compile(rb"mesg=(\d+)")


class BenchError(Exception):
    """The run cannot produce figures."""


@dataclass
class Result:
    label: str
    messages: int
    seconds: float
    cpu_seconds: float | None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


class SmtpSink:
    """smtp-sink on a loopback port, counting the messages it receives (its -c counters)."""

    def __init__(self) -> None:
        self.port = free_loopback_port()
        self.count = 0
        self._changed = threading.Condition()
        argv = [str(SMTP_SINK), "-c"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        self.process = subprocess.Popen(
            [*argv, f"127.0.0.1:{self.port}", "1024"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 10
        while not self._accepting():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise BenchError("smtp-sink did not start")
            time.sleep(0.05)

    def _accepting(self) -> bool:
        import socket

        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
            return True
        return False

    def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read1(65536):  # type: ignore[attr-defined]
            found = _COUNTER.findall(chunk)
            if found:
                with self._changed:
                    self.count = int(found[-1])
                    self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.count >= count, timeout):
                raise BenchError(f"the sink counted {self.count} of {count} messages")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def message_text(size: int, number: int) -> str:
    line = "The quick brown fox jumps over the lazy dog, message {n:06d}, line {i:03d}.\n"
    lines, total, i = [], 0, 0
    while total < size:
        text = line.format(n=number, i=i)
        lines.append(text)
        total += len(text)
        i += 1
    return "".join(lines)


def recipients(messages: int, domains: int) -> list[str]:
    return [f"user{n}@d{n % domains}.remote.bench.test" for n in range(messages)]


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------------------------
# Mailmark
# ------------------------------------------------------------------------------------------------


class DeliveryProcess:
    """One `mailmark serve --delivery-only` beside the bench's own worker (what `serve
    --delivery-workers N` starts), its log read in a thread until it says its worker started."""

    def __init__(self, settings: Settings) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILMARK_")}
        env.update(
            MAILMARK_DATA_DIR=str(settings.data_dir),
            MAILMARK_DATABASE_URL=settings.database_url,
            MAILMARK_HOSTNAME=settings.hostname,
            MAILMARK_DNS_NAMESERVERS=",".join(settings.dns_nameservers),
            MAILMARK_REMOTE_SMTP_PORT=str(settings.remote_smtp_port),
        )
        command = (sys.executable, "-m", "mailmark", "serve", "--delivery-only")
        self.process = subprocess.Popen(
            [*command, "--parent-pid", str(os.getpid())],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.log: list[str] = []
        self._started = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            if "outbound worker" in line and "started" in line:
                self._started.set()
        self._started.set()

    def wait_started(self, timeout: float) -> None:
        if not self._started.wait(timeout) or self.process.poll() is not None:
            raise BenchError("a delivery process did not start:\n" + "\n".join(self.log[-20:]))

    def cpu_seconds(self) -> float:
        """User and system CPU so far, from /proc (the process is not a reaped child yet)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def measure_mailmark(
    args: argparse.Namespace,
    sink: SmtpSink,
    dns: FakeDns,
    workdir: Path,
    database_url: str,
    workers: int,
) -> Result:
    settings = Settings(
        data_dir=workdir / f"mailmark-{workers}",
        database_url=database_url,
        hostname=MAILMARK_HOSTNAME,
        dns_nameservers=[dns.address],
        remote_smtp_port=sink.port,
    )
    services = await build_services(
        settings, passwords=Argon2PasswordHasher(time_cost=1, memory_cost_kib=1024)
    )
    try:
        await services.accounts.create(
            "bench",
            owner_email="owner@acme.bench.test",
            password="bench-pass-1",
            plan="unlimited",
        )
        await services.domains.add(SENDER_DOMAIN, account_name="bench", trust=True)
        sender = await services.mailboxes.create(f"sales@{SENDER_DOMAIN}", display_name="Sales")
        started = time.perf_counter()
        targets = recipients(args.messages, args.domains)
        for n, recipient in enumerate(targets):
            await services.sending.submit(
                mailbox=sender,
                to=[recipient],
                subject=f"Bench {n}",
                text=message_text(args.size, n),
            )
        queued = time.perf_counter() - started
        print(
            f"mailmark: queued {args.messages} messages in {queued:.1f}s "
            f"({args.messages / queued:.0f}/s, not part of the figure)"
        )

        before = sink.count
        extra = [DeliveryProcess(settings) for _ in range(workers - 1)]
        worker = outbound_worker(services)
        try:
            for process in extra:
                await asyncio.to_thread(process.wait_started, 60)
            # The extra processes deliver from their start: the clock covers the messages that
            # arrive from now on, once every worker runs.
            cpu_before = process_cpu() + sum(p.cpu_seconds() for p in extra)
            at_start = sink.count - before
            started = time.perf_counter()
            worker.start()
            while True:
                await worker.wait_until_idle(timeout=args.timeout)
                delivered = await services.queue_admin.list("delivered", limit=args.messages + 1)
                if len(delivered) >= args.messages:
                    break
                waiting = await services.queue_admin.list(limit=5)
                undelivered = [e for e in waiting if e.status != "delivered"]
                if undelivered and all(e.status == "bounced" for e in undelivered):
                    raise BenchError(f"mailmark bounced: {undelivered[0].last_reply}")
                if time.perf_counter() - started > args.timeout:
                    raise BenchError(f"mailmark delivered {len(delivered)} of {args.messages}")
            seconds = time.perf_counter() - started
            cpu = process_cpu() + sum(p.cpu_seconds() for p in extra) - cpu_before
        finally:
            await worker.stop()
            for process in extra:
                process.stop()
        await asyncio.to_thread(sink.wait_for, before + args.messages, 10)
        label = "mailmark" if workers == 1 else f"mailmark×{workers}"
        return Result(label, args.messages - at_start, seconds, cpu)
    finally:
        await services.close()


# ------------------------------------------------------------------------------------------------
# Postfix
# ------------------------------------------------------------------------------------------------


def relay_main_cf(root: Path, sink_port: int) -> str:
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": str(root / "queue"),
        "data_directory": str(root / "data"),
        "myhostname": POSTFIX_HOSTNAME,
        "mydomain": "bench.test",
        "myorigin": "$myhostname",
        "mydestination": "",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        # Everything accepted goes to the hold queue, released at once when the clock starts.
        "smtpd_data_restrictions": "check_client_access static:HOLD",
        "relayhost": f"[127.0.0.1]:{sink_port}",
        "smtp_host_lookup": "native",
        "smtp_dns_support_level": "disabled",
        "smtpd_peername_lookup": "no",
        "smtp_tls_security_level": "none",
        "smtpd_tls_security_level": "none",
        "alias_maps": "",
        "alias_database": "",
        "local_recipient_maps": "",
        "maillog_file": str(root / "postfix.log"),
        "maillog_file_prefixes": str(root),
        "biff": "no",
        "append_dot_mydomain": "no",
        "readme_directory": "no",
        "default_process_limit": "200",
        "smtpd_client_connection_count_limit": "0",
        "in_flow_delay": "0s",
    }
    return "".join(f"{name} = {value}\n" for name, value in settings.items())


@contextlib.contextmanager
def relay_postfix(sink_port: int) -> Iterator[tuple[int, int, Path]]:
    """A private Postfix relaying to the sink; yields (smtpd port, master pid, config dir)."""
    if os.geteuid() != 0:
        raise PostfixError("needs root (postfix start runs the master as root)")
    if not POSTFIX.exists():
        raise PostfixError(f"{POSTFIX} is not installed")
    root = Path(tempfile.mkdtemp(prefix="mailmark-bench-postfix-out-"))
    config = root / "config"
    log = root / "postfix.log"
    started = False
    try:
        root.chmod(0o755)
        config.mkdir(mode=0o755)
        (root / "queue").mkdir(mode=0o755)
        port = free_loopback_port()
        template = Path("/etc/postfix/master.cf").read_text()
        (config / "master.cf").write_text(postfix_master_cf(template, port))
        (config / "main.cf").write_text(relay_main_cf(root, sink_port))
        check = _postfix(config, "check")
        if check.returncode != 0:
            raise PostfixError(f"`postfix check` failed: {_one_line(check, log)}")
        started = True
        start = _postfix(config, "start")
        if start.returncode != 0:
            raise PostfixError(f"`postfix start` failed: {_one_line(start, log)}")
        master = int((root / "queue" / "pid" / "master.pid").read_text().split()[0])
        yield port, master, config
    finally:
        try:
            if started:
                _stop_postfix(config)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def queued_files(queue: Path, *names: str) -> int:
    """Queue files in the named queues (all of them by default)."""
    queues = names or ("maildrop", "incoming", "active", "deferred", "hold")
    return sum(1 for name in queues for path in (queue / name).rglob("*") if path.is_file())


async def inject(port: int, args: argparse.Namespace) -> None:
    """The same messages as Mailmark's, over SMTP into Postfix's hold queue."""
    targets = recipients(args.messages, args.domains)
    connections = 8

    async def share(first: int) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=60)
        await smtp.connect()
        try:
            for n in range(first, args.messages, connections):
                body = message_text(args.size, n).replace("\n", "\r\n")
                message = (
                    f"From: Sales <sales@{SENDER_DOMAIN}>\r\nTo: {targets[n]}\r\n"
                    f"Subject: Bench {n}\r\nMessage-ID: <bench-{n}@{SENDER_DOMAIN}>\r\n"
                    f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
                )
                await smtp.sendmail(f"sales@{SENDER_DOMAIN}", [targets[n]], message.encode())
        finally:
            await smtp.quit()

    await asyncio.gather(*(share(c) for c in range(connections)))


async def measure_postfix(args: argparse.Namespace, sink: SmtpSink) -> Result:
    with relay_postfix(sink.port) as (port, master, config):
        queue = config.parent / "queue"
        deadline = time.monotonic() + 30
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise PostfixError("smtpd does not accept connections") from None
                await asyncio.sleep(0.1)
        await inject(port, args)
        while queued_files(queue, "hold") < args.messages:
            if time.monotonic() > deadline + args.timeout:
                raise PostfixError(f"only {queued_files(queue, 'hold')} messages on hold")
            await asyncio.sleep(0.05)
        before = sink.count
        cpu_before = postfix_cpu_seconds(master)
        started = time.perf_counter()
        release = subprocess.run(
            [str(POSTFIX.parent / "postsuper"), "-c", str(config), "-H", "ALL"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if release.returncode != 0:
            raise PostfixError(f"postsuper -H ALL failed: {release.stderr.strip()}")
        # Released mail lands in the deferred queue, scanned every queue_run_delay: flush it now.
        flush = subprocess.run(
            [str(POSTFIX.parent / "postqueue"), "-c", str(config), "-f"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if flush.returncode != 0:
            raise PostfixError(f"postqueue -f failed: {flush.stderr.strip()}")
        while queued_files(queue) > 0:
            if time.perf_counter() - started > args.timeout:
                raise PostfixError(f"{queued_files(queue)} messages still queued")
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
        cpu_after = postfix_cpu_seconds(master)
        cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
        await asyncio.to_thread(sink.wait_for, before + args.messages, 10)
        return Result("postfix", args.messages, seconds, cpu)


# ------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="mailmark-bench-out-"))
    sink = SmtpSink()
    results: list[Result] = []
    try:
        with FakeDns() as dns:
            for n in range(args.domains):
                dns.add(f"d{n}.remote.bench.test", "MX", f"10 mx.d{n}.remote.bench.test.")
                dns.add(f"mx.d{n}.remote.bench.test", "A", "127.0.0.1")
            for workers in args.workers:
                database_url = (
                    args.fresh_database
                    or f"sqlite+aiosqlite:///{workdir / f'mailmark-{workers}.db'}"
                )
                results.append(
                    await measure_mailmark(args, sink, dns, workdir, database_url, workers)
                )
        if not args.no_postfix:
            try:
                results.append(await measure_postfix(args, sink))
            except (PostfixError, OSError, subprocess.SubprocessError) as error:
                print(f"postfix: not measured: {error}")
    finally:
        sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(
        f"{args.messages} messages of ~{args.size} bytes to {args.domains} domains, "
        f"into smtp-sink on 127.0.0.1 ({args.loop}, {os.cpu_count()} CPUs)"
    )
    print(f"{'':10} {'msg/s':>8} {'seconds':>8} {'CPU s':>7} {'CPU ms/msg':>11}")
    for result in results:
        cpu = f"{result.cpu_seconds:7.2f}" if result.cpu_seconds is not None else "      ?"
        per = (
            f"{result.cpu_seconds / result.messages * 1000:11.2f}"
            if result.cpu_seconds is not None
            else "          ?"
        )
        print(f"{result.label:10} {result.rate:8.0f} {result.seconds:8.2f} {cpu} {per}")
    postfix = [result for result in results if result.label == "postfix"]
    if not postfix:
        return 0
    best = max((result for result in results if result is not postfix[0]), key=lambda r: r.rate)
    ratio = best.rate / postfix[0].rate
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"ratio {best.label}/postfix: {ratio:.2f} (target >= {TARGET_RATIO:.2f}): {verdict}")
    return 0 if ratio >= TARGET_RATIO else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--domains", type=int, default=10)
    parser.add_argument("--size", type=int, default=4096, help="approximate body bytes")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--database-url", default="", help="a PostgreSQL server to use instead")
    parser.add_argument("--no-postfix", action="store_true")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        metavar="N",
        help="delivery processes, as `serve --delivery-workers N`; several values are measured "
        "one after another (SQLite only)",
    )
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.workers):
        parser.error("--workers takes numbers from 1")
    if args.database_url and len(args.workers) > 1:
        parser.error("with --database-url, give one --workers value per run")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not SMTP_SINK.exists():
        print(f"{SMTP_SINK} is needed (Debian package postfix)", file=sys.stderr)
        return 2
    runner, args.loop = event_loop_runner()
    if os.geteuid() == 0:
        pwd.getpwnam("nobody")  # smtp-sink drops to it
    try:
        # Created outside the event loop: fresh_database runs its own.
        with fresh_database(args.database_url) as args.fresh_database:
            return runner(run(args))
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""IMAP on a big mailbox: Mailmark's IMAP listener against Dovecot serving the same messages.

    cd /work/main && .venv/bin/python bench/imap.py [--messages 10000] [--rounds 5]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--imap-processes N]

Builds N messages of about 5 KiB (varied headers: some replies with References, some with Cc,
List-Id or encoded-word subjects, some multipart/alternative; one word in 1% of them) and serves
them twice:

Mailmark: the messages are delivered in-process through the core InboundDelivery service (group
commit, as the MX would) into a fresh data dir (SQLite, or a fresh PostgreSQL database with
--database-url); then a real `mailmark serve` on that data dir answers on a loopback IMAPS port
(login is refused on a cleartext connection, so the client speaks TLS to Mailmark); with
`--imap-processes N`, from N IMAP processes of its own (`serve --imap-processes`).

Dovecot: a private instance (`/usr/sbin/dovecot -F -c <temp dir>/dovecot.conf`: its own base
and state dirs and log file, passwd-file passdb, static userdb) on a free loopback IMAPS port, over
a maildir holding the same messages. Both check the same argon2id password, and both speak TLS with
a self-signed 2048-bit RSA pair made by the same function (`ensure_self_signed_certificate`), so
both sides pay the same encryption; `--dovecot-cleartext` gives Dovecot a cleartext port instead.

One untimed session per server first (Dovecot builds its index files on the first SELECT), then
each round times with imaplib, on one connection per server: LOGIN, SELECT INBOX,
`UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)`, `UID SEARCH TEXT <word>`, one
`UID FETCH <100 uids> BODY.PEEK[]` of the same messages each round, and one of 100 messages no
earlier round read ("new": the contents are read from disk for the first time; where they lie
both servers know already, Dovecot from its index files and Mailmark from what each SELECT has the
node read ahead, so the 'first' column is where a cold read shows). Prints the best of the rounds for each step and server, the ratio Mailmark/Dovecot
against the targets (1.5x Dovecot; SEARCH faster than Dovecot), and the peak RSS of the
`mailmark serve` process. Each answer is checked (10,000 envelopes, 1% found, the 100
bodies byte-equal to what was delivered); a wrong answer fails the run.

Then the login load: `--login-clients` (10) threads each open `--logins-per-client` (20)
connections one after another to each server and time the LOGIN alone (the TLS handshake is not
in it), all clients at once, as mail clients that reconnect often do; it prints p50/p99/max and
logins per second for both servers. Mailmark answers repeat logins from its verified-credential
cache; `--no-login-cache` starts it with MAILMARK_LOGIN_CACHE_TTL=0s so every LOGIN hashes, as
Dovecot (whose auth cache is off by default) does.

Last, the mixed load: `--mixed-clients` (10) threads at once for `--mixed-seconds` (20), each on
its own connection to INBOX doing random operations (re-LOGIN, SELECT, FETCH of 20 envelopes,
STORE a keyword on and off, APPEND, UID EXPUNGE of one of its own appended messages, a short
IDLE); it prints operations per second, errors, and p50/p99 of each operation for both servers.
Any error fails the run.

Exit status 0 when every target is met, 1 when one is missed, 2 when the run cannot produce
figures.

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import hashlib
import imaplib
import os
import pwd
import random
import re
import secrets
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from smtp_in import (  # process handling shared with the inbound bench
    BenchError,
    Processes,
    children,
    free_loopback_port,
    fresh_database,
    log_tail,
    mailmark_command,
)

DOVECOT = Path("/usr/sbin/dovecot")
DOVEADM = Path("/usr/bin/doveadm")
DOMAIN = "bench.test"
ADDRESS = f"inbox@{DOMAIN}"
HOSTNAME = "mx.bench.test"
NEEDLE = "quokkafeather"  # the searched word: in 1% of the messages, nowhere else
BODIES = 100
MESSAGE_SIZE = 5 * 1024
START_TIMEOUT = 120.0
TARGET_RATIO = 1.5
STEPS = (
    "LOGIN",
    "SELECT",
    "LOGIN+SELECT",
    "UID FETCH 1:* ENVELOPE",
    "UID SEARCH TEXT",
    f"{BODIES} x BODY.PEEK[]",
    f"{BODIES} x BODY.PEEK[], new",
)
FETCH_ITEMS = "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"
_FETCH_START = re.compile(rb"^\d+ \(")
_UID = re.compile(rb"\bUID (\d+)")

# ------------------------------------------------------------------------------------------------
# The mailbox
# ------------------------------------------------------------------------------------------------

_VOCABULARY = (
    "invoice shipment meeting quarterly report schedule budget review contract proposal "
    "customer support ticket release deploy server backup network update security patch "
    "agenda minutes follow-up thanks regards please attached document draft final version "
    "marketing campaign launch product roadmap feedback survey results analysis forecast "
    "revenue expenses travel booking hotel flight conference keynote workshop training "
    "onboarding holiday calendar office kitchen coffee lunch parking delivery warehouse"
)
_WORDS = tuple(_VOCABULARY.split())
_NAMES = (
    "Alice Martin",
    "Bob Nguyen",
    "Chloé Dubois",
    "Dmitri Petrov",
    "Eve O'Connor",
    "Fatima Zahra",
    "Günter Weiß",
    "Hiro Tanaka",
    "Isabel Souza",
    "Jamal Wright",
)
_DOMAINS = ("example.org", "partner.example", "mail.example.net", "corp.example.com")


def _address(rng: random.Random) -> tuple[str, str]:
    name = rng.choice(_NAMES)
    local = name.split()[0].lower().replace("é", "e").replace("ü", "u")
    return name, f"{local}.{rng.randrange(100)}@{rng.choice(_DOMAINS)}"


def _display(name: str, address: str) -> str:
    return email.utils.formataddr((name, address), charset="utf-8")


def _paragraphs(rng: random.Random, size: int, needle: bool) -> str:
    lines: list[str] = []
    total = 0
    at = rng.randrange(max(1, size // 80)) if needle else -1
    while total < size:
        words = [rng.choice(_WORDS) for _ in range(rng.randrange(8, 13))]
        if len(lines) == at:
            words[rng.randrange(len(words))] = NEEDLE
        line = " ".join(words).capitalize() + "."
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


def build_message(number: int, rng: random.Random) -> bytes:
    """One realistic message of about MESSAGE_SIZE bytes, CRLF line ends."""
    sender_name, sender = _address(rng)
    date = 1_760_000_000 + number * 600 + rng.randrange(600)
    topic = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(2, 6))).capitalize()
    subject = f"Re: {topic}" if number % 3 == 1 else topic
    if number % 17 == 0:
        subject = "=?UTF-8?B?" + b64encode(f"Résumé – {topic}".encode()).decode() + "?="
    headers = [
        f"Return-Path: <{sender}>",
        (
            f"Received: from mail.{sender.split('@')[1]} ([192.0.2.{number % 250 + 1}]) "
            f"by {HOSTNAME} with ESMTPS id {secrets.token_hex(6)}; {email.utils.formatdate(date)}"
        ),
        f"From: {_display(sender_name, sender)}",
        f"To: Inbox <{ADDRESS}>",
    ]
    if number % 4 == 0:
        cc_name, cc = _address(rng)
        headers.append(f"Cc: {_display(cc_name, cc)}, team@{DOMAIN}")
    headers += [
        f"Subject: {subject}",
        f"Date: {email.utils.formatdate(date, localtime=False)}",
        f"Message-ID: <bench-{number}.{secrets.token_hex(4)}@{sender.split('@')[1]}>",
    ]
    if number % 3 == 1:
        parent = f"<bench-{number - 1}.parent@{sender.split('@')[1]}>"
        headers += [
            f"In-Reply-To: {parent}",
            f"References: <root-{number // 30}@example.org> {parent}",
        ]
    if number % 5 == 0:
        headers.append(f"List-Id: Announcements <announce.{DOMAIN}>")
    headers += ["MIME-Version: 1.0", f"X-Mailer: BenchMail {number % 7}.{number % 3}"]
    head_size = sum(len(h) + 2 for h in headers)
    needle = number % 100 == 7
    if number % 5 == 2:
        boundary = f"=_alt_{number}_{secrets.token_hex(4)}"
        text = _paragraphs(rng, (MESSAGE_SIZE - head_size) // 2, needle)
        html = "<html><body><p>" + _paragraphs(rng, (MESSAGE_SIZE - head_size) // 2 - 200, False)
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        body = (
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{text}"
            f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}</p></body></html>\r\n"
            f"--{boundary}--\r\n"
        )
    else:
        headers += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
        body = _paragraphs(rng, MESSAGE_SIZE - head_size, needle)
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def build_mailbox(count: int) -> list[bytes]:
    rng = random.Random(20261203)
    return [build_message(n, rng) for n in range(count)]


# ------------------------------------------------------------------------------------------------
# Dovecot
# ------------------------------------------------------------------------------------------------


def _mail_user() -> tuple[int, int]:
    """The uid/gid Dovecot's mail processes run as: ours, or `nobody` when we are root (Dovecot
    refuses uid 0 for mail access)."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def write_maildir(maildir: Path, messages: list[bytes]) -> None:
    """A Dovecot maildir: LF line ends on disk, S= (file) and W= (CRLF) sizes in the names, the
    mtime as the internal date."""
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    base = 1_760_000_000
    for number, raw in enumerate(messages):
        data = raw.replace(b"\r\n", b"\n")
        name = f"{base + number}.M{number}P1.bench,S={len(data)},W={len(raw)}:2,"
        target = maildir / "cur" / name
        target.write_bytes(data)
        os.utime(target, (base + number * 600, base + number * 600))


def dovecot_conf(root: Path, port: int, tls: tuple[Path, Path] | None) -> str:
    """Dovecot listening on `port`: IMAPS with the `tls` pair (certificate, key), or cleartext
    IMAP without one."""
    uid, gid = _mail_user()
    if tls is None:
        ssl, imap_port, imaps_port = "ssl = no", port, 0
    else:
        ssl = f"ssl = required\nssl_cert = <{tls[0]}\nssl_key = <{tls[1]}"
        imap_port, imaps_port = 0, port
    if os.getuid() == 0:
        internal, login = "dovecot", "dovenull"
    else:
        internal = login = pwd.getpwuid(os.getuid()).pw_name
    return f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:~/Maildir
default_internal_user = {internal}
default_login_user = {login}
passdb {{
  driver = passwd-file
  args = {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
"""


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited ({proc.returncode}):\n{log_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise BenchError(
        f"{what} did not listen on port {port} in {START_TIMEOUT:.0f} s:\n{log_tail(log)}"
    )


@contextlib.contextmanager
def private_dovecot(
    procs: Processes, root: Path, messages: list[bytes], password: str, *, tls: bool
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    if not DOVECOT.exists() or not DOVEADM.exists():
        raise BenchError("Dovecot is not installed: apt-get install dovecot-imapd")
    for sub in ("run", "state"):
        (root / sub).mkdir(parents=True)
    write_maildir(root / "home" / "Maildir", messages)
    uid, gid = _mail_user()
    for dirpath, _, filenames in os.walk(root / "home"):
        os.chown(dirpath, uid, gid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), uid, gid)
    hashed = subprocess.run(
        [str(DOVEADM), "pw", "-s", "ARGON2ID", "-p", password],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    (root / "users").write_text(f"{ADDRESS}:{hashed}\n")
    port = free_loopback_port()
    conf = root / "dovecot.conf"
    from mailmark.security import ensure_self_signed_certificate

    pair = ensure_self_signed_certificate(root / "tls", HOSTNAME) if tls else None
    if pair is not None:
        # Dovecot's master reads the pair as root; its login processes never do.
        for path in (root / "tls", *pair):
            os.chmod(path, 0o700 if path.is_dir() else 0o600)
    conf.write_text(dovecot_conf(root, port, pair))
    log = root / "dovecot.log"
    proc = procs.start(
        "dovecot",
        [str(DOVECOT), "-F", "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc, "dovecot", log)
        yield port, proc
    finally:
        procs.stop(proc)


# ------------------------------------------------------------------------------------------------
# Mailmark
# ------------------------------------------------------------------------------------------------


def mailmark_env(
    data_dir: Path, database_url: str, imap_port: int, imaps_port: int, *, login_cache: bool = True
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MAILMARK_")}
    env.update(
        MAILMARK_DATA_DIR=str(data_dir),
        MAILMARK_HOSTNAME=HOSTNAME,
        MAILMARK_BIND="127.0.0.1",
        MAILMARK_IMAP_PORT=str(imap_port),
        MAILMARK_IMAPS_PORT=str(imaps_port),
        MAILMARK_LOG_LEVEL="INFO",
    )
    for name in ("MX", "SUBMISSION", "SUBMISSIONS", "HTTP", "MANAGESIEVE"):
        env[f"MAILMARK_{name}_PORT"] = "0"
    if database_url:
        env["MAILMARK_DATABASE_URL"] = database_url
    if not login_cache:
        env["MAILMARK_LOGIN_CACHE_TTL"] = "0s"
    return env


async def load_mailmark(
    data_dir: Path,
    database_url: str,
    messages: list[bytes],
    password: str,
    owner_password: str | None = None,
) -> None:
    """Create the mailbox and deliver every message through the core delivery service; the
    account's owner (owner@bench.test) gets `owner_password`, or a random one."""
    from mailmark.bootstrap import build_services
    from mailmark.config import Settings

    settings = Settings(data_dir=data_dir, database_url=database_url, hostname=HOSTNAME)
    services = await build_services(settings)
    try:
        await services.accounts.create(
            "bench",
            owner_email=f"owner@{DOMAIN}",
            password=owner_password or secrets.token_urlsafe(12),
            plan="unlimited",
        )
        await services.domains.add(DOMAIN, account_name="bench", trust=True)
        mailbox = await services.mailboxes.create(ADDRESS, password=password)
        batch = 256
        for start in range(0, len(messages), batch):
            await asyncio.gather(
                *(
                    services.delivery.deliver(
                        raw, recipients=[mailbox], mail_from="alice@example.org"
                    )
                    for raw in messages[start : start + batch]
                )
            )
    finally:
        await services.close()


@contextlib.contextmanager
def mailmark_server(
    procs: Processes,
    workdir: Path,
    database_url: str,
    *,
    login_cache: bool = True,
    imap_processes: int = 0,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    imaps_port = free_loopback_port()
    env = mailmark_env(
        workdir / "data", database_url, free_loopback_port(), imaps_port, login_cache=login_cache
    )
    log = workdir / "mailmark.log"
    with log.open("wb") as out:
        proc = procs.start(
            "mailmark serve",
            [
                *mailmark_command(),
                "serve",
                *(["--imap-processes", str(imap_processes)] if imap_processes else []),
            ],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(imaps_port, proc, "mailmark serve", log)
        yield imaps_port, proc
    finally:
        procs.stop(proc)


def serving_pids(pid: int) -> list[int]:
    """`serve` and its IMAP processes (`serve --imap-processes`), not its CPU pool's workers."""
    imap = []
    for child in children(pid):
        with contextlib.suppress(OSError):
            if b"--imap-only" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0"):
                imap.append(int(child))
    return [pid, *imap]


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM: the process's peak resident set size."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found[1]) if found else None


# ------------------------------------------------------------------------------------------------
# The client side
# ------------------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    connect: Callable[[], imaplib.IMAP4]
    password: str
    best: dict[str, float] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)

    def record(self, timings: dict[str, float]) -> None:
        for step, seconds in timings.items():
            self.best[step] = min(seconds, self.best.get(step, seconds))


def _ok(name: str, command: str, typ: str, data: Sequence[object]) -> None:
    if typ != "OK":
        raise BenchError(f"{name}: {command} answered {typ} {data!r}")


def _fetch_items(data: Sequence[object]) -> list[bytes]:
    """The first line of each FETCH response imaplib collected (literals come as tuples)."""
    lines: list[bytes] = []
    for item in data:
        line = item[0] if isinstance(item, tuple) else item
        if isinstance(line, bytes) and _FETCH_START.match(line):
            lines.append(line)
    return lines


def one_round(
    server: Server, expected: int, bodies: set[bytes], round_number: int
) -> dict[str, float]:
    """Every step once on one connection, each answer checked; the seconds each took. The
    `new` BODY step reads messages no earlier round read (`round_number` picks them)."""
    timings: dict[str, float] = {}
    typ: str
    data: list[Any]
    conn = server.connect()
    try:
        start = time.perf_counter()
        typ, data = conn.login(ADDRESS, server.password)
        timings["LOGIN"] = time.perf_counter() - start
        _ok(server.name, "LOGIN", typ, data)

        start = time.perf_counter()
        typ, data = conn.select("INBOX")
        timings["SELECT"] = time.perf_counter() - start
        _ok(server.name, "SELECT", typ, data)
        if int(data[0] or 0) != expected:
            raise BenchError(f"{server.name}: SELECT found {data[0]!r} messages, not {expected}")
        timings["LOGIN+SELECT"] = timings["LOGIN"] + timings["SELECT"]

        start = time.perf_counter()
        typ, data = conn.uid("FETCH", "1:*", FETCH_ITEMS)
        timings["UID FETCH 1:* ENVELOPE"] = time.perf_counter() - start
        _ok(server.name, "UID FETCH 1:*", typ, data)
        lines = _fetch_items(data)
        uids = sorted(int(m[1]) for line in lines if (m := _UID.search(line)))
        if len(lines) != expected or len(uids) != expected or b"ENVELOPE (" not in lines[-1]:
            raise BenchError(
                f"{server.name}: UID FETCH 1:* gave {len(lines)} responses "
                f"({len(uids)} UIDs), not {expected}"
            )

        start = time.perf_counter()
        typ, data = conn.uid("SEARCH", "TEXT", NEEDLE)
        timings["UID SEARCH TEXT"] = time.perf_counter() - start
        _ok(server.name, "UID SEARCH", typ, data)
        found = (data[0] or b"").split() if isinstance(data[0], bytes) else []
        wanted = len(range(7, expected, 100))
        if len(found) != wanted:
            raise BenchError(
                f"{server.name}: SEARCH TEXT {NEEDLE} found {len(found)}, not {wanted}"
            )

        step = max(1, len(uids) // BODIES)
        for name, offset in (("", 0), (", new", 1 + round_number % (step - 1 or 1))):
            chosen = uids[offset::step][:BODIES]
            start = time.perf_counter()
            typ, data = conn.uid("FETCH", ",".join(map(str, chosen)), "(BODY.PEEK[])")
            timings[f"{BODIES} x BODY.PEEK[]{name}"] = time.perf_counter() - start
            _ok(server.name, "UID FETCH BODY.PEEK[]", typ, data)
            got = [item[1] for item in data if isinstance(item, tuple)]
            if len(got) != len(chosen) or any(
                hashlib.sha256(b).digest() not in bodies for b in got
            ):
                raise BenchError(
                    f"{server.name}: BODY.PEEK[] returned {len(got)} bodies, not the "
                    f"{len(chosen)} delivered ones byte for byte"
                )
        conn.logout()
    finally:
        with contextlib.suppress(Exception):
            conn.shutdown()
    return timings


@dataclass
class LoginLoad:
    """Seconds each LOGIN took under the concurrent load, and the wall time of the whole load."""

    latencies: list[float]
    wall: float

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def login_load(server: Server, clients: int, per_client: int) -> LoginLoad:
    """`clients` threads at once, each connecting `per_client` times in turn: LOGIN (timed),
    LOGOUT. Every LOGIN must succeed."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_line = threading.Barrier(clients)

    def client() -> None:
        start_line.wait()
        for _ in range(per_client):
            conn: imaplib.IMAP4 | None = None
            try:
                conn = server.connect()
                started = time.perf_counter()
                typ, data = conn.login(ADDRESS, server.password)
                took = time.perf_counter() - started
                with lock:
                    if typ == "OK":
                        latencies.append(took)
                    else:
                        errors.append(f"{typ} {data!r}")
                conn.logout()
            except (imaplib.IMAP4.error, OSError) as error:
                with lock:
                    errors.append(repr(error))
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.shutdown()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise BenchError(f"{server.name}: {len(errors)} logins failed under load: {errors[:3]}")
    return LoginLoad(latencies, wall)


MIXED_OPERATIONS = ("LOGIN", "SELECT", "FETCH", "STORE", "APPEND", "EXPUNGE", "IDLE")


@dataclass
class MixedLoad:
    """Seconds each operation of the mixed load took, by operation; errors as text."""

    latencies: dict[str, list[float]]
    errors: list[str]
    wall: float

    @property
    def operations(self) -> int:
        return sum(map(len, self.latencies.values()))


def _idle_briefly(conn: imaplib.IMAP4) -> None:
    """IDLE (RFC 2177) for a moment, then DONE: imaplib has no IDLE before Python 3.14."""
    tag = conn._new_tag()  # type: ignore[attr-defined]
    conn.send(tag + b" IDLE\r\n")
    if not conn.readline().startswith(b"+"):
        raise imaplib.IMAP4.error("IDLE was not accepted")
    time.sleep(0.05)
    conn.send(b"DONE\r\n")
    while True:
        line = conn.readline()
        if not line:
            raise imaplib.IMAP4.error("the connection closed during IDLE")
        if line.startswith(tag + b" "):
            if not line.startswith(tag + b" OK"):
                raise imaplib.IMAP4.error(line.decode(errors="replace"))
            return


def mixed_load(server: Server, messages: int, clients: int, seconds: float, seed: int) -> MixedLoad:
    """`clients` threads at once for `seconds`, each on its own connection to INBOX doing random
    operations: re-LOGIN (a new connection), SELECT, FETCH of 20 messages' envelopes, STORE
    a flag on and off, APPEND a small message, EXPUNGE one of its own appended messages, and a
    short IDLE. Each answer must be OK; failures are counted, not raised."""
    latencies: dict[str, list[float]] = {name: [] for name in MIXED_OPERATIONS}
    errors: list[str] = []
    lock = threading.Lock()
    start_line = threading.Barrier(clients)

    def open_session() -> imaplib.IMAP4:
        conn = server.connect()
        _ok(server.name, "LOGIN", *conn.login(ADDRESS, server.password))
        _ok(server.name, "SELECT", *conn.select("INBOX"))
        return conn

    def client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        conn = open_session()
        appended: list[int] = []
        try:
            start_line.wait()
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                operation = rng.choice(MIXED_OPERATIONS)
                if operation == "EXPUNGE" and not appended:
                    operation = "APPEND"
                started = time.perf_counter()
                try:
                    if operation == "LOGIN":
                        conn.logout()
                        conn = open_session()
                    elif operation == "SELECT":
                        _ok(server.name, "SELECT", *conn.select("INBOX"))
                    elif operation == "FETCH":
                        low = rng.randint(1, messages - 20)
                        _ok(server.name, "FETCH", *conn.fetch(f"{low}:{low + 19}", FETCH_ITEMS))
                    elif operation == "STORE":
                        target = str(rng.randint(1, messages - 20))
                        _ok(server.name, "STORE", *conn.store(target, "+FLAGS", "($Mixed)"))
                        _ok(server.name, "STORE", *conn.store(target, "-FLAGS", "($Mixed)"))
                    elif operation == "APPEND":
                        raw = b"From: load@example.org\r\nSubject: mixed load\r\n\r\nbody\r\n"
                        typ, data = conn.append("INBOX", "", None, raw)
                        _ok(server.name, "APPEND", typ, data)
                        uid = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
                        if uid is not None:
                            appended.append(int(uid[1]))
                    elif operation == "EXPUNGE":
                        mine = str(appended.pop())
                        _ok(server.name, "STORE", *conn.uid("STORE", mine, "+FLAGS", r"(\Deleted)"))
                        _ok(server.name, "UID EXPUNGE", *conn.uid("EXPUNGE", mine))
                    else:
                        _idle_briefly(conn)
                except (imaplib.IMAP4.error, OSError, BenchError) as error:
                    with lock:
                        errors.append(f"{operation}: {error!r}"[:200])
                    with contextlib.suppress(Exception):
                        conn.shutdown()
                    conn = open_session()
                    continue
                took = time.perf_counter() - started
                with lock:
                    latencies[operation].append(took)
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return MixedLoad(latencies, errors, time.perf_counter() - started)


def print_mixed(loads: dict[str, MixedLoad], clients: int, seconds: float) -> None:
    print(
        f"\nmixed load: {clients} clients at once for {seconds:g} s on INBOX; operations per "
        "second, then p50/p99 ms of each operation"
    )
    header = f"{'server':<10}{'ops/s':>8}{'errors':>8}"
    for operation in MIXED_OPERATIONS:
        header += f"{operation:>16}"
    print(header)
    for name, load in loads.items():
        line = f"{name:<10}{load.operations / load.wall:>8.1f}{len(load.errors):>8}"
        for operation in MIXED_OPERATIONS:
            times = sorted(load.latencies[operation])
            if times:
                p50 = times[len(times) // 2] * 1000
                p99 = times[min(len(times) - 1, int(0.99 * len(times)))] * 1000
                line += f"{p50:>8.1f}/{p99:<7.1f}"
            else:
                line += f"{'-':>16}"
        print(line)
        for error in load.errors[:3]:
            print(f"  {name} error: {error}")


def print_logins(loads: dict[str, LoginLoad], clients: int, per_client: int) -> None:
    print(
        f"\nlogin load: {clients} clients at once, {per_client} connections each, "
        "LOGIN alone timed (ms)"
    )
    print(f"{'server':<12}{'p50':>9}{'p99':>9}{'max':>9}{'mean':>9}{'logins/s':>10}")
    for name, load in loads.items():
        print(
            f"{name:<12}{load.percentile(0.5) * 1000:>9.1f}{load.percentile(0.99) * 1000:>9.1f}"
            f"{max(load.latencies) * 1000:>9.1f}{statistics.fmean(load.latencies) * 1000:>9.1f}"
            f"{len(load.latencies) / load.wall:>10.1f}"
        )


def _mib(kib: int | None) -> str:
    return f"{kib / 1024:.1f} MiB" if kib is not None else "unknown"


def print_table(
    mailmark: Server,
    dovecot: Server,
    rss_kib: tuple[int | None, int | None],
    rounds: int,
    dovecot_link: str,
) -> bool:
    print(
        f"\nbest of {rounds} rounds, seconds (imaplib; Mailmark over TLS, Dovecot {dovecot_link});"
        "\nthe 'first' columns are each server's first session, before any cache is warm"
    )
    print(
        f"{'step':<26}{'mailmark s':>12}{'dovecot s':>12}{'ratio':>9}  {'target':<16}"
        f"{'first: mailmark':>16}{'dovecot':>9}"
    )
    passed = True
    for step in STEPS:
        ours, theirs = mailmark.best[step], dovecot.best[step]
        ratio = ours / theirs if theirs > 0 else float("inf")
        if step in ("LOGIN", "SELECT"):
            target = ""
        elif step == "UID SEARCH TEXT":
            ok = ratio < 1.0
            target = ("PASS" if ok else "FAIL") + " (< 1x)"
            passed &= ok
        else:
            ok = ratio <= TARGET_RATIO
            target = ("PASS" if ok else "FAIL") + f" (<= {TARGET_RATIO:g}x)"
            passed &= ok
        print(
            f"{step:<26}{ours:>12.4f}{theirs:>12.4f}{ratio:>8.2f}x  {target:<16}"
            f"{mailmark.first[step]:>16.4f}{dovecot.first[step]:>9.4f}"
        )
    print(
        f"\nmailmark serve peak RSS (VmHWM, with its IMAP processes' added): {_mib(rss_kib[1])}; "
        f"{_mib(rss_kib[0])} before the first session (each LOGIN's argon2id hash takes its "
        "memory cost while it runs)"
    )
    return passed


def run(args: argparse.Namespace) -> int:
    password = secrets.token_urlsafe(16)
    workdir = Path(tempfile.mkdtemp(prefix="mailmark-bench-imap-"))
    os.chmod(workdir, 0o755)  # Dovecot's unprivileged processes walk down to the maildir
    procs = Processes()
    try:
        started = time.perf_counter()
        messages = build_mailbox(args.messages)
        total = sum(map(len, messages))
        print(
            f"{len(messages)} messages, {total / len(messages) / 1024:.1f} KiB on average, "
            f"'{NEEDLE}' in {len(range(7, len(messages), 100))} of them "
            f"(built in {time.perf_counter() - started:.1f} s)"
        )
        bodies = {hashlib.sha256(raw).digest() for raw in messages}
        untls = ssl.create_default_context()
        untls.check_hostname = False
        untls.verify_mode = ssl.CERT_NONE  # Mailmark's self-signed certificate

        with contextlib.ExitStack() as stack:
            started = time.perf_counter()
            dport, _ = stack.enter_context(
                private_dovecot(
                    procs, workdir / "dovecot", messages, password, tls=not args.dovecot_cleartext
                )
            )
            print(
                f"dovecot {_dovecot_version()} on 127.0.0.1:{dport} "
                f"(maildir written in {time.perf_counter() - started:.1f} s)"
            )
            dovecot = Server(
                "dovecot",
                (lambda: imaplib.IMAP4("127.0.0.1", dport))
                if args.dovecot_cleartext
                else (lambda: imaplib.IMAP4_SSL("127.0.0.1", dport, ssl_context=untls)),
                password,
            )

            database_url = stack.enter_context(fresh_database(args.database_url))
            started = time.perf_counter()
            (workdir / "data").mkdir(mode=0o700)
            asyncio.run(load_mailmark(workdir / "data", database_url, messages, password))
            backend = "PostgreSQL" if database_url else "SQLite"
            print(
                f"mailmark: {len(messages)} messages delivered into {backend} in "
                f"{time.perf_counter() - started:.1f} s"
            )
            mport, mproc = stack.enter_context(
                mailmark_server(
                    procs,
                    workdir,
                    database_url,
                    login_cache=not args.no_login_cache,
                    imap_processes=args.imap_processes,
                )
            )
            print(f"mailmark serve on 127.0.0.1:{mport} (IMAPS)")
            serving = serving_pids(mproc.pid)
            rss_at_start = _total(peak_rss_kib(pid) for pid in serving)
            mailmark = Server(
                "mailmark",
                lambda: imaplib.IMAP4_SSL("127.0.0.1", mport, ssl_context=untls),
                password,
            )

            for server in (dovecot, mailmark):
                # Builds indexes and caches.
                server.first = one_round(server, len(messages), bodies, 0)
            for round_number in range(1, args.rounds + 1):
                for server in (dovecot, mailmark):
                    server.record(one_round(server, len(messages), bodies, round_number))
            loads = {
                server.name: login_load(server, args.login_clients, args.logins_per_client)
                for server in (dovecot, mailmark)
            }
            # Last: it changes the mailbox (appends and expunges its own messages).
            mixed = {
                server.name: mixed_load(
                    server, len(messages), args.mixed_clients, args.mixed_seconds, seed=1
                )
                for server in (dovecot, mailmark)
            }
            rss = (rss_at_start, _total(peak_rss_kib(pid) for pid in serving))
        passed = print_table(
            mailmark,
            dovecot,
            rss,
            args.rounds,
            "cleartext" if args.dovecot_cleartext else "over TLS",
        )
        print_logins(loads, args.login_clients, args.logins_per_client)
        print_mixed(mixed, args.mixed_clients, args.mixed_seconds)
        if any(load.errors for load in mixed.values()):
            passed = False
        return 0 if passed else 1
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        procs.stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _total(sizes: Iterable[int | None]) -> int | None:
    known = [size for size in sizes if size is not None]
    return sum(known) if known else None


def _dovecot_version() -> str:
    result = subprocess.run(
        [str(DOVECOT), "--version"], check=False, capture_output=True, text=True, timeout=10
    )
    return result.stdout.split()[0] if result.stdout else "?"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL server to create a fresh database on (default: SQLite)",
    )
    parser.add_argument("--login-clients", type=int, default=10)
    parser.add_argument("--logins-per-client", type=int, default=20)
    parser.add_argument("--mixed-clients", type=int, default=10)
    parser.add_argument("--mixed-seconds", type=float, default=20.0)
    parser.add_argument(
        "--no-login-cache",
        action="store_true",
        help="start Mailmark without its verified-credential cache (every LOGIN hashes)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and logs")
    parser.add_argument(
        "--imap-processes",
        type=int,
        default=0,
        metavar="N",
        help="run Mailmark's IMAP in N processes of its own (serve --imap-processes)",
    )
    parser.add_argument(
        "--dovecot-cleartext",
        action="store_true",
        help="Dovecot on a cleartext port (Mailmark refuses LOGIN without TLS)",
    )
    args = parser.parse_args(argv)
    if args.messages < BODIES or args.rounds < 1:
        parser.error(f"--messages must be at least {BODIES} and --rounds at least 1")
    if args.login_clients < 1 or args.logins_per_client < 1:
        parser.error("--login-clients and --logins-per-client must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

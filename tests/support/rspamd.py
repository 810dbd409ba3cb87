"""A private rspamd (Debian's package) on loopback ports, with Bayes in its own Redis database.

rspamd reads the Debian configuration and the overrides written here: its three workers (scanner,
controller, milter proxy) on free ports, Bayes classifying after a single learn of each class and
one hit of a token, no greylisting and no HELO/host name heuristics (every loopback client would
look like a spammer), and Redis database number `redis_db`, picked empty and flushed when rspamd
stops, so that parallel runs never share what they learned.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.serve import free_port

RSPAMD = Path("/usr/bin/rspamd")
REDIS = ("127.0.0.1", 6379)
# A client-side check: rspamd needs about 10 s to compile its rules on this machine.
START_TIMEOUT = 90.0
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def _redis(*commands: list[str]) -> list[bytes]:
    """Send RESP commands to the local Redis and return each raw reply line."""
    wire = b"".join(
        b"*%d\r\n" % len(command)
        + b"".join(b"$%d\r\n%s\r\n" % (len(part), part.encode()) for part in command)
        for command in commands
    )
    with socket.create_connection(REDIS, timeout=5) as conn:
        conn.sendall(wire)
        reader = conn.makefile("rb")
        return [reader.readline().rstrip(b"\r\n") for _ in commands]


def redis_available() -> bool:
    try:
        return _redis(["PING"]) == [b"+PONG"]
    except OSError:
        return False


def _empty_redis_db() -> int:
    """A Redis database number holding no keys, claimed with a marker key."""
    for db in range(15, 0, -1):
        _, size = _redis(["SELECT", str(db)], ["DBSIZE"])
        if size == b":0":
            claimed = _redis(["SELECT", str(db)], ["SET", "mailmark-test-claim", "1", "NX"])
            if claimed[1] == b"+OK":
                return db
    raise RuntimeError("no empty Redis database left for rspamd's Bayes statistics")


class Rspamd:
    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self.directory = Path(tempfile.mkdtemp(prefix="mailmark-rspamd-"))
        self.scanner_port = free_port()
        self.controller_port = free_port()
        self.proxy_port = free_port()
        self.redis_db = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.scanner_port}"

    @property
    def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.controller_port}"

    def _write_config(self) -> None:
        local = self.directory / "local.d"
        for sub in ("local.d", "override.d", "run", "db", "log"):
            (self.directory / sub).mkdir()
        redis = f'servers = "{REDIS[0]}:{REDIS[1]}";\ndbname = "{self.redis_db}";\n'
        files = {
            "worker-normal.inc": (
                f'bind_socket = "127.0.0.1:{self.scanner_port}";\ncount = {self.workers};\n'
            ),
            "worker-controller.inc": f'bind_socket = "127.0.0.1:{self.controller_port}";\n',
            "redis.conf": redis,
            "classifier-bayes.conf": (
                redis
                + 'backend = "redis";\nmin_learns = 1;\nmin_tokens = 5;\nmin_token_hits = 1;\nautolearn = false;\n'
            ),
            # Greylisting answers a first message from an unknown sender "soft reject".
            "greylist.conf": "enabled = false;\n",
            # Its HELO and host name heuristics score every loopback client as a likely spammer.
            "hfilter.conf": "enabled = false;\n",
            "logging.inc": 'type = "file";\nfilename = "$LOGDIR/rspamd.log";\nlevel = "error";\n',
        }
        for name, text in files.items():
            (local / name).write_text(text)
        # The milter proxy hands each message to the scanner above (Debian's upstream is
        # "localhost", the stock port): replaced, not merged, hence override.d.
        (self.directory / "override.d" / "worker-proxy.inc").write_text(
            f'bind_socket = "127.0.0.1:{self.proxy_port}";\nmilter = yes;\ntimeout = 120s;\n'
            f'count = {self.workers};\nupstream "local" {{\n  default = yes;\n'
            f'  hosts = "127.0.0.1:{self.scanner_port}";\n}}\n'
        )

    def start(self) -> None:
        self.redis_db = _empty_redis_db()
        self._write_config()
        directory = self.directory
        self.process = subprocess.Popen(
            [
                str(RSPAMD),
                "-f",
                "-u",
                "root",
                "-g",
                "root",
                "-c",
                "/etc/rspamd/rspamd.conf",
                f"--var=LOCAL_CONFDIR={directory}",
                f"--var=RUNDIR={directory / 'run'}",
                f"--var=DBDIR={directory / 'db'}",
                f"--var=LOGDIR={directory / 'log'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(directory / "stderr.log").open("wb"),
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rspamd exited: {self.log_tail()}")
            try:
                if (
                    httpx.get(f"{self.url}/ping", timeout=2).status_code == 200
                    and httpx.get(f"{self.controller_url}/ping", timeout=2).status_code == 200
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"rspamd did not answer within {START_TIMEOUT:.0f} s")

    def log_tail(self) -> str:
        parts = []
        for name in ("stderr.log", "log/rspamd.log"):
            path = self.directory / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def symbols(self, raw: bytes) -> dict[str, float]:
        """The symbols rspamd's scanner finds in `raw` right now, with their scores."""
        answer = httpx.post(f"{self.url}/checkv2", content=raw, timeout=30).json()
        return {name: float(symbol["score"]) for name, symbol in answer["symbols"].items()}

    def scanned(self) -> int:
        """How many messages rspamd has scanned since it started (the controller's /stat)."""
        return int(httpx.get(f"{self.controller_url}/stat", timeout=10).json()["scanned"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # Its own session: the main process and the workers it forked, by process group id.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.redis_db:
            _redis(["SELECT", str(self.redis_db)], ["FLUSHDB"])
            self.redis_db = 0
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def rspamd() -> Iterator[Rspamd]:
    """One rspamd for the session (it takes ~10 s to start), stopped by its process group."""
    if not RSPAMD.exists():
        pytest.skip("rspamd is not installed (/usr/bin/rspamd, Debian package rspamd)")
    if not redis_available():
        pytest.skip("Redis is not running on 127.0.0.1:6379 (rspamd's Bayes statistics)")
    server = Rspamd()
    server.start()
    try:
        yield server
    finally:
        server.stop()

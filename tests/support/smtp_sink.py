"""Receiving MTAs on loopback, standing in for other domains' mail servers: an aiosmtpd one in
the test's own process that records the bytes on the wire, and Postfix's smtp-sink as a subprocess."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.serve import free_port

SMTP_SINK = Path("/usr/sbin/smtp-sink")


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    content: bytes  # as aiosmtpd hands it over: dot-unstuffed, without the final dot
    tls: bool


class _RecordingSmtp(SMTP):
    """aiosmtpd's session, keeping every byte the client sent on this connection."""

    def __init__(self, sink: AiosmtpdSink, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sink = sink
        self.wire = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._sink.wires.append(self.wire)

    def data_received(self, data: bytes) -> None:
        self.wire += data
        super().data_received(data)


class AiosmtpdSink:
    """A receiving MTA. Recipients decide the answer: `tempfail-once*@` gets 451 at RCPT the first
    time, `reject*@` 550 5.1.1, everyone else 250."""

    def __init__(self, tls_context: ssl.SSLContext | None = None) -> None:
        self.received: list[Received] = []
        self.wires: list[bytearray] = []
        self.rcpt_attempts: dict[str, int] = {}
        self.connections = 0
        self._tls_context = tls_context
        self.server: asyncio.Server | None = None
        self.arrived = asyncio.Event()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> SMTP:
            self.connections += 1
            return _RecordingSmtp(
                self,
                self,
                hostname="sink.remote.test",
                tls_context=self._tls_context,
                require_starttls=False,
                enable_SMTPUTF8=True,
            )

        self.server = await loop.create_server(factory, host, port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local = address.split("@")[0].lower()
        seen = self.rcpt_attempts.get(address, 0)
        self.rcpt_attempts[address] = seen + 1
        if local.startswith("tempfail-once") and seen == 0:
            return "451 4.3.0 Try again later"
        if local.startswith("reject"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.received.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                bytes(content),
                session.ssl is not None,
            )
        )
        self.arrived.set()
        return "250 2.0.0 Queued"

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        async def enough() -> None:
            while sum(len(r.recipients) for r in self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), timeout)


class SmtpSinkProcess:
    """Postfix's smtp-sink on a loopback port, dumping each transaction into its own directory.

    As root it must drop to another user (-u nobody), so the dump directory is a fresh one under
    the system temp dir, owned by that user."""

    def __init__(self, *extra: str) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="smtp-sink-"))
        self.port = free_port()
        self._extra = list(extra)
        if os.geteuid() == 0:
            os.chown(self.directory, pwd.getpwnam("nobody").pw_uid, -1)
            self._extra += ["-u", "nobody"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(SMTP_SINK),
                *self._extra,
                "-d",
                f"{self.directory}/%M.",
                f"127.0.0.1:{self.port}",
                "100",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    assert self.process.stderr is not None
                    error = self.process.stderr.read().decode(errors="replace").strip()
                    raise RuntimeError(f"smtp-sink exited: {error}") from None
                time.sleep(0.05)
        raise RuntimeError("smtp-sink did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=5)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def dumps(self) -> list[bytes]:
        """Each complete dumped transaction (smtp-sink writes LF line endings)."""
        return [path.read_bytes() for path in sorted(self.directory.rglob("*")) if path.is_file()]


@pytest.fixture
async def sink() -> AsyncIterator[AiosmtpdSink]:
    """A started AiosmtpdSink: 250 for everyone but tempfail-once*@ and reject*@."""
    server = AiosmtpdSink()
    await server.start()
    try:
        yield server
    finally:
        await server.close()

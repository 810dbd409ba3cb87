"""The remote world of outbound tests, all on loopback: a test certificate authority, an HTTPS
server for MTA-STS policies, an aiosmtpd receiving MTA that records the bytes on the wire, and
Postfix's smtp-sink as a subprocess."""

from __future__ import annotations

import asyncio
import datetime
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SMTP_SINK = Path("/usr/sbin/smtp-sink")


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class TestCa:
    """A certificate authority trusted only by the contexts it hands out."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._key = _key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mailmark Test CA")])
        now = datetime.datetime.now(datetime.UTC)
        self._name = name
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = directory / "ca.pem"
        self.cert_path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def client_context(self) -> ssl.SSLContext:
        """Verifies peers against this CA only, host names included."""
        context = ssl.create_default_context(cafile=str(self.cert_path))
        return context

    def server_context(self, *names: str) -> ssl.SSLContext:
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self._name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        stem = self.directory / names[0]
        cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_path, key_path)
        return context


@dataclass
class PolicyServer:
    """HTTPS on loopback answering GET /.well-known/mta-sts.txt by the Host header."""

    policies: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def origin(self, host: str) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def start(self, context: ssl.SSLContext) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=context)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            host = next(
                (line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("host:")),
                "",
            )
            self.requests.append(host)
            body = self.policies.get(host)
            if body is None:
                status, payload = "404 Not Found", b"no policy"
            else:
                status, payload = "200 OK", body.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()


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
                self, self, hostname="sink.remote.test", tls_context=self._tls_context,
                require_starttls=False, enable_SMTPUTF8=True,
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
                str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content),
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
            [str(SMTP_SINK), *self._extra, "-d", f"{self.directory}/%M.",
             f"127.0.0.1:{self.port}", "100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
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



class SettableClock:
    """A clock the test moves by hand (the schedule is tested without waiting)."""

    def __init__(self, now: datetime.datetime | None = None) -> None:
        self.current = now or datetime.datetime(2030, 1, 7, 9, 0, tzinfo=datetime.UTC)

    def now(self) -> datetime.datetime:
        return self.current

    def advance(self, delta: datetime.timedelta) -> None:
        self.current += delta

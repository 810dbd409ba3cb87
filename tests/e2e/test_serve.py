"""`mailmark serve` as a real process: first start on an empty directory, kill -9 safety, clean stops."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import ssl
import stat
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from mailmark.bootstrap import build_services
from tests.support.serve import START_TIMEOUT, Server, free_port, mailmark, settings_for
from tests.support.tls import trusting
from tests.support.world import HOSTNAME, stored_copies

pytestmark = pytest.mark.slow

MESSAGES = 20
CONNECTIONS = 4


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """serve's very first start finds nothing, not even the schema."""
    return empty_database_url


async def start_serving(env: dict[str, str], cwd: Path, servers: list[Server]) -> Server:
    server = await Server.start(env, cwd)
    servers.append(server)
    port = env["MAILMARK_MX_PORT"]
    await server.wait_for(rf"MX listening on 127\.0\.0\.1:{port}\b")
    return server


def numbered_message(n: int) -> bytes:
    # ~16 KiB, so that every blob write is real work for the disk.
    body = "".join(f"Line {i:04d} of message {n:02d}: the quick brown fox.\r\n" for i in range(300))
    return (
        f"From: Alice <alice@example.org>\r\n"
        f"To: sales@acme.test\r\n"
        f"Subject: Crash test {n:02d}\r\n"
        f"Message-ID: <crash-{n:02d}@example.org>\r\n"
        f"\r\n{body}"
    ).encode()


async def test_kill_9_after_the_last_250_loses_nothing(
    serve_env: dict[str, str], tmp_path: Path, database_url: str, servers: list[Server]
) -> None:
    # A fresh directory: serve is the very first command, so it migrates and makes its own TLS key.
    assert not (tmp_path / "data").exists()
    server = await start_serving(serve_env, tmp_path, servers)
    for args in (
        ("account", "create", "acme", "--owner", "owner@acme.test", "--password", "owner-pass-1"),
        ("domain", "add", "acme.test", "--account", "acme", "--trust"),
        ("mailbox", "add", "sales@acme.test"),
    ):
        result = await mailmark(serve_env, *args, cwd=tmp_path)
        assert result.code == 0, result.err

    port = int(serve_env["MAILMARK_MX_PORT"])
    sent = {n: numbered_message(n) for n in range(MESSAGES)}
    acknowledged: list[int] = []

    async def client(numbers: list[int]) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        await smtp.connect()
        try:
            for n in numbers:
                errors, reply = await smtp.sendmail(
                    "alice@example.org", ["sales@acme.test"], sent[n]
                )
                assert errors == {} and reply.startswith("2.0.0 Ok"), reply
                acknowledged.append(n)
                if len(acknowledged) == MESSAGES:
                    # The instant the last 250 is read: no chance for any later cleanup to run.
                    os.kill(server.process.pid, signal.SIGKILL)
        finally:
            smtp.close()

    await asyncio.wait_for(
        asyncio.gather(
            *(client(list(range(c, MESSAGES, CONNECTIONS))) for c in range(CONNECTIONS))
        ),
        timeout=60,
    )
    assert sorted(acknowledged) == list(range(MESSAGES))
    assert await server.exit_status(timeout=10) == -signal.SIGKILL

    # It starts again on the crashed directory (WAL recovery, half-written files swept).
    restarted = await start_serving(serve_env, tmp_path, servers)

    services = await build_services(settings_for(tmp_path / "data", database_url))
    try:
        sales = await services.mailboxes.get("sales@acme.test")
        copies = await stored_copies(services, sales)
        blob_files = [
            path
            for path in services.settings.blob_path.glob("*/*")
            if not path.name.startswith(".tmp-")
        ]
    finally:
        await services.close()
    assert sorted(c.uid for c in copies) == list(range(1, MESSAGES + 1))
    by_subject = {c.subject: c for c in copies}
    for n, raw in sent.items():
        copy = by_subject[f"Crash test {n:02d}"]
        assert copy.folder == "INBOX"
        assert copy.data.endswith(raw), f"message {n} is damaged"
    assert len(blob_files) == MESSAGES  # one per message, none half-written

    restarted.process.send_signal(signal.SIGTERM)
    assert await restarted.exit_status(timeout=SHUTDOWN_GUARD) == 0, restarted.log


def pool_workers(pid: int) -> set[int]:
    """The CPU pool's worker processes among `pid`'s children (Linux's /proc)."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children.update(int(child) for child in (task / "children").read_text().split())
    return {
        child for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    }


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def test_the_cpu_workers_die_with_a_killed_serve(
    serve_env: dict[str, str], tmp_path: Path, servers: list[Server]
) -> None:
    env = {**serve_env, "MAILMARK_CPU_WORKERS": "2"}
    server = await start_serving(env, tmp_path, servers)
    for args in (
        ("account", "create", "acme", "--owner", "owner@acme.test", "--password", "owner-pass-1"),
        ("domain", "add", "acme.test", "--account", "acme", "--trust"),
        ("mailbox", "add", "sales@acme.test"),
    ):
        result = await mailmark(env, *args, cwd=tmp_path)
        assert result.code == 0, result.err
    # Above the offload threshold (256 KiB): delivery parses it in a worker process.
    large = numbered_message(0) + (b"y" * 998 + b"\r\n") * 300
    port = int(env["MAILMARK_MX_PORT"])
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
    await smtp.connect()
    try:
        errors, _ = await smtp.sendmail("alice@example.org", ["sales@acme.test"], large)
    finally:
        smtp.close()
    assert errors == {}
    workers = pool_workers(server.process.pid)
    assert workers, "the large message was not parsed in the CPU pool"

    server.process.kill()
    # serve's stderr reaches its end only when every process holding it is gone.
    assert await server.exit_status(timeout=15) == -signal.SIGKILL
    for _ in range(100):
        if not any(running(worker) for worker in workers):
            break
        await asyncio.sleep(0.1)
    assert not any(running(worker) for worker in workers)


SHUTDOWN_GUARD = 60.0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_stops_serve_cleanly(
    serve_env: dict[str, str], tmp_path: Path, servers: list[Server], signum: signal.Signals
) -> None:
    server = await start_serving(serve_env, tmp_path, servers)
    port = int(serve_env["MAILMARK_MX_PORT"])
    # An idle client that is connected when the signal comes must not hold the shutdown up.
    idle = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
    await idle.connect()
    code, _ = await idle.ehlo()
    assert code == 250

    server.process.send_signal(signum)

    # A guard against a hang, not a speed bound: the passes the workers have in hand get a few
    # seconds' grace, longer on a loaded machine; an idle client held for its session's
    # 5-minute timeout would exceed it many times over.
    try:
        assert await server.exit_status(timeout=SHUTDOWN_GUARD) == 0, server.log
    finally:
        idle.close()
    assert any("shutting down" in line for line in server.lines), server.log
    assert "Traceback" not in server.log
    with pytest.raises(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()


async def test_serve_runs_the_http_listener_beside_the_mx(
    serve_env: dict[str, str], tmp_path: Path, servers: list[Server]
) -> None:
    server = await start_serving(serve_env, tmp_path, servers)
    found = await server.wait_for(r"HTTP listening on 127\.0\.0\.1:(\d+)")
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{found[1]}", trust_env=False
    ) as client:
        unknown = await client.get(
            "/mail/config-v1.1.xml", params={"emailaddress": "a@nowhere.test"}
        )
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": {"code": "not_found", "message": "No domain nowhere.test here.", "field": None}
    }


async def test_serve_runs_https_and_the_redirect_port(
    serve_env: dict[str, str], tmp_path: Path, servers: list[Server]
) -> None:
    https_port, redirect_port = free_port(), free_port()
    env = {
        **serve_env,
        "MAILMARK_HTTPS_PORT": str(https_port),
        "MAILMARK_HTTP_REDIRECT_PORT": str(redirect_port),
    }
    server = await start_serving(env, tmp_path, servers)
    await server.wait_for(rf"HTTPS listening on 127\.0\.0\.1:{https_port}\b")
    await server.wait_for(rf"HTTP redirect listening on 127\.0\.0\.1:{redirect_port}\b")
    # The first-run link is on the HTTPS listener.
    await server.wait_for(rf"open https://127\.0\.0\.1:{https_port}/setup\?token=")
    verify = trusting(tmp_path / "data" / "tls" / "cert.pem")
    async with httpx.AsyncClient(trust_env=False, verify=verify, timeout=10) as client:
        session = await client.get(f"https://127.0.0.1:{https_port}/api/session")
        assert session.status_code == 200, session.text
        assert session.headers["strict-transport-security"].startswith("max-age=")
        moved = await client.get(
            f"http://127.0.0.1:{redirect_port}/sign-in?next=%2F", headers={"Host": HOSTNAME}
        )
        assert moved.status_code == 308
        assert moved.headers["location"] == f"https://{HOSTNAME}:{https_port}/sign-in?next=%2F"
    server.process.send_signal(signal.SIGTERM)
    assert await server.exit_status(timeout=10) == 0, server.log


async def test_a_ready_serve_has_put_its_start_up_heap_beyond_the_collector(
    serve_env: dict[str, str], tmp_path: Path, servers: list[Server]
) -> None:
    """Once every listener is up, the objects alive then are frozen (gc.freeze), so full
    collections no longer walk them; /metrics shows how many, beside the collector's counts."""
    server = await start_serving(serve_env, tmp_path, servers)
    found = await server.wait_for(r"HTTP listening on 127\.0\.0\.1:(\d+)")
    frozen = 0.0
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{found[1]}", trust_env=False
    ) as client:
        for _ in range(100):  # the freeze comes right after the last listener starts
            scrape = await client.get("/metrics")
            assert scrape.status_code == 200, scrape.text
            families = {f.name: f for f in text_string_to_metric_families(scrape.text)}
            frozen = families["mailmark_gc_frozen_objects"].samples[0].value
            if frozen:
                break
            await asyncio.sleep(0.1)
    assert frozen > 10_000
    assert "python_gc_collections" in families
    assert families["process_resident_memory_bytes"].samples[0].value > 0


def served_certificate(port: int) -> x509.Certificate:
    """The certificate a TLS listener presents, unverified (it is self-signed)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def dns_names(certificate: x509.Certificate) -> list[str]:
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return names.get_values_for_type(x509.DNSName)


async def serve_once(env: dict[str, str], cwd: Path, servers: list[Server]) -> x509.Certificate:
    """Start serve, read the certificate of its implicit-TLS submission port, stop it."""
    server = await start_serving(env, cwd, servers)
    found = await server.wait_for(r"submissions listening on 127\.0\.0\.1:(\d+)")
    certificate = await asyncio.to_thread(served_certificate, int(found[1]))
    server.process.send_signal(signal.SIGTERM)
    assert await server.exit_status(timeout=10) == 0, server.log
    return certificate


async def test_the_self_signed_certificate_follows_the_hostname(
    serve_env: dict[str, str], tmp_path: Path, servers: list[Server]
) -> None:
    first = await serve_once(serve_env, tmp_path, servers)
    assert dns_names(first)[0] == "mx.mailmark.test"
    tls = tmp_path / "data" / "tls"
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700
    assert stat.S_IMODE((tls / "key.pem").stat().st_mode) == 0o600

    again = await serve_once(serve_env, tmp_path, servers)
    assert again == first  # same name: the same pair is kept

    renamed = await serve_once(
        {**serve_env, "MAILMARK_HOSTNAME": "mail.mailmark.test"}, tmp_path, servers
    )
    assert dns_names(renamed)[0] == "mail.mailmark.test"

    # A configured certificate is the operator's: never replaced, whatever the hostname.
    configured = tmp_path / "configured"
    configured.mkdir()
    for name in ("cert.pem", "key.pem"):
        (configured / name).write_bytes((tls / name).read_bytes())
    own = {
        **serve_env,
        "MAILMARK_HOSTNAME": "other.mailmark.test",
        "MAILMARK_TLS_CERT": str(configured / "cert.pem"),
        "MAILMARK_TLS_KEY": str(configured / "key.pem"),
    }
    assert await serve_once(own, tmp_path, servers) == renamed
    assert (configured / "cert.pem").read_bytes() == (tls / "cert.pem").read_bytes()


async def test_serve_says_where_its_data_is_and_warns_about_a_local_hostname_and_cheap_hashes(
    serve_env: dict[str, str], tmp_path: Path, servers: list[Server]
) -> None:
    env = {**serve_env, "MAILMARK_HOSTNAME": "localhost"}
    server = await start_serving(env, tmp_path, servers)
    await server.wait_for(rf"data directory {re.escape(str(tmp_path / 'data'))}, database ")
    await server.wait_for(r"WARNING .*MAILMARK_HOSTNAME 'localhost' names only this machine")
    # The suite's cheap password hashing is never silent in a server's log.
    await server.wait_for(
        r"WARNING .*MAILMARK_PASSWORD_HASH_COST=test: .* never for real mailboxes"
    )
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    if (database := data / "mailmark.db").exists():
        assert stat.S_IMODE(database.stat().st_mode) == 0o600


async def test_a_port_in_use_ends_in_one_line(
    serve_env: dict[str, str], tmp_path: Path, servers: list[Server]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = await Server.start({**serve_env, "MAILMARK_HTTP_PORT": str(port)}, tmp_path)
        servers.append(server)
        assert await server.exit_status(timeout=START_TIMEOUT) == 1
    assert server.lines[-1] == (
        f"mailmark: cannot listen for HTTP on 127.0.0.1:{port}: Address already in use "
        "(set MAILMARK_HTTP_PORT or MAILMARK_BIND)"
    ), server.log
    assert "Traceback" not in server.log
    # The listeners started before it were closed again: the MX port is free.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", int(serve_env["MAILMARK_MX_PORT"])))

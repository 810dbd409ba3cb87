"""`mailmark serve` killed with SIGKILL between IMAP commands: after each restart every
acknowledged APPEND, delivery and expunge holds, UIDVALIDITY is unchanged, UIDNEXT never goes
back and new UIDs are larger than every UID handed out before (RFC 3501 §2.3.1.1)."""

from __future__ import annotations

import asyncio
import imaplib
import os
import re
import signal
import smtplib
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakedns import FakeDns
from tests.support.serve import Server, cli_environment, free_port, mailmark
from tests.support.tls import client_tls

pytestmark = pytest.mark.slow

ADDRESS = "sales@acme.test"
PASSWORD = "sales-pass-1"
APPENDS = 20
DELIVERIES = 10


def numbered(kind: str, n: int) -> bytes:
    return (
        f"From: Crash <crash@example.org>\r\nTo: {ADDRESS}\r\nSubject: {kind} {n:03d}\r\n"
        f"Message-ID: <{kind}-{n}@example.org>\r\n\r\n"
        + "".join(f"{kind} {n} line {i}: the quick brown fox\r\n" for i in range(50))
    ).encode()


@dataclass
class Mailbox:
    uidvalidity: int
    uidnext: int
    uids: list[int]
    bodies: dict[int, bytes]


class Imap:
    """imaplib over implicit TLS, run in a thread per call so the event loop keeps reading the
    server's log."""

    def __init__(self, port: int) -> None:
        self.conn = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls(), timeout=30)
        typ, _ = self.conn.login(ADDRESS, PASSWORD)
        assert typ == "OK"

    def select(self, folder: str = "INBOX") -> tuple[int, int]:
        typ, data = self.conn.select(folder)
        assert typ == "OK", data
        validity, uidnext = (
            self.conn.untagged_responses[key][0] for key in ("UIDVALIDITY", "UIDNEXT")
        )
        assert isinstance(validity, bytes) and isinstance(uidnext, bytes)
        return int(validity), int(uidnext)

    def append(self, raw: bytes) -> int:
        typ, data = self.conn.append("INBOX", "", None, raw)
        assert typ == "OK", data
        found = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0] or b"")
        assert found, data
        return int(found[2])

    def read(self) -> Mailbox:
        validity, uidnext = self.select()
        typ, data = self.conn.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        assert typ == "OK", data
        bodies = {}
        for item in data:
            if isinstance(item, tuple):
                uid = re.search(rb"UID (\d+)", item[0])
                assert uid, item[0]
                bodies[int(uid[1])] = item[1]
        return Mailbox(validity, uidnext, sorted(bodies), bodies)

    def logout(self) -> None:
        self.conn.logout()


def deliver(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        assert smtp.sendmail("crash@example.org", [ADDRESS], raw) == {}


async def wait_listening(server: Server, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process.returncode is None, server.log
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}:\n{server.log}")


async def kill_9(server: Server) -> None:
    os.kill(server.process.pid, signal.SIGKILL)
    assert await server.exit_status(timeout=10) == -signal.SIGKILL


def body_of(stored: bytes) -> bytes:
    """What was delivered, without the trace prefix the MX adds in front."""
    return stored[stored.index(b"From: Crash") :]


async def test_kill_9_between_imap_commands_keeps_uids_and_acknowledged_mail(
    tmp_path: Path, database_url: str, fake_dns: FakeDns
) -> None:
    imaps = free_port()
    mx = free_port()
    env = cli_environment(
        tmp_path / "data",
        database_url,
        MAILMARK_MX_PORT=str(mx),
        MAILMARK_IMAPS_PORT=str(imaps),
        MAILMARK_MANAGESIEVE_PORT="0",
        MAILMARK_IMAP_PORT="0",
        MAILMARK_SUBMISSION_PORT="0",
        MAILMARK_SUBMISSIONS_PORT="0",
        MAILMARK_HTTP_PORT="0",
        MAILMARK_DNS_NAMESERVERS=fake_dns.address,
    )
    servers: list[Server] = []

    async def start() -> Server:
        server = await Server.start(env, tmp_path)
        servers.append(server)
        await wait_listening(server, imaps)
        await wait_listening(server, mx)
        return server

    try:
        server = await start()
        for args in (
            (
                "account",
                "create",
                "acme",
                "--owner",
                "owner@acme.test",
                "--password",
                "owner-pass-1",
            ),
            ("domain", "add", "acme.test", "--account", "acme", "--trust"),
            ("mailbox", "add", ADDRESS, "--password", PASSWORD),
        ):
            result = await mailmark(env, *args, cwd=tmp_path)
            assert result.code == 0, result.err

        # 1. APPENDs and MX deliveries, killed the instant the last one is acknowledged.
        imap = await asyncio.to_thread(Imap, imaps)
        validity, first_uidnext = await asyncio.to_thread(imap.select)
        assert first_uidnext == 1
        acknowledged: dict[int, bytes] = {}
        for n in range(APPENDS):
            raw = numbered("Append", n)
            acknowledged[await asyncio.to_thread(imap.append, raw)] = raw
            if n % 2 == 0 and n // 2 < DELIVERIES:
                await asyncio.to_thread(deliver, mx, numbered("Delivered", n // 2))
        await kill_9(server)
        delivered = {numbered("Delivered", n) for n in range(DELIVERIES)}
        assert len(acknowledged) == APPENDS

        server = await start()
        imap = await asyncio.to_thread(Imap, imaps)
        box = await asyncio.to_thread(imap.read)
        assert box.uidvalidity == validity
        assert len(box.uids) == APPENDS + DELIVERIES
        for uid, raw in acknowledged.items():
            assert box.bodies[uid] == raw, f"APPENDed UID {uid} is damaged or missing"
        assert {
            body_of(box.bodies[uid]) for uid in box.uids if uid not in acknowledged
        } == delivered
        highest = max(box.uids)
        assert box.uidnext > highest

        # 2. Expunge the newest half, kill right after the tagged OK: the UIDs stay used up.
        doomed = box.uids[len(box.uids) // 2 :]
        uid_set = ",".join(map(str, doomed))
        typ, _ = await asyncio.to_thread(
            imap.conn.uid, "STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"
        )
        assert typ == "OK"
        typ, _ = await asyncio.to_thread(imap.conn.expunge)
        assert typ == "OK"
        await kill_9(server)

        server = await start()
        imap = await asyncio.to_thread(Imap, imaps)
        after = await asyncio.to_thread(imap.read)
        assert after.uidvalidity == validity
        assert after.uids == box.uids[: len(box.uids) // 2]
        assert after.uidnext >= box.uidnext, "UIDNEXT went backwards after an expunge and a crash"

        # 3. New mail after all that gets UIDs above everything handed out before.
        new_uid = await asyncio.to_thread(imap.append, numbered("After", 1))
        assert new_uid > highest and new_uid >= after.uidnext
        await asyncio.to_thread(deliver, mx, numbered("Delivered", 99))
        await kill_9(server)

        server = await start()
        imap = await asyncio.to_thread(Imap, imaps)
        final = await asyncio.to_thread(imap.read)
        assert final.uidvalidity == validity
        assert final.uids[:-2] == after.uids
        assert final.uids[-2] == new_uid and final.uids[-1] > new_uid
        assert final.bodies[new_uid] == numbered("After", 1)
        assert body_of(final.bodies[final.uids[-1]]) == numbered("Delivered", 99)
        assert final.uidnext > final.uids[-1]
        await asyncio.to_thread(imap.logout)

        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_status(timeout=20) == 0, server.log
    finally:
        for started in servers:
            await started.stop()


CONNECTIONS = 4


async def test_kill_9_during_concurrent_appends_keeps_every_acknowledged_one(
    tmp_path: Path, database_url: str, fake_dns: FakeDns
) -> None:
    imaps = free_port()
    env = cli_environment(
        tmp_path / "data",
        database_url,
        MAILMARK_IMAPS_PORT=str(imaps),
        MAILMARK_MANAGESIEVE_PORT="0",
        MAILMARK_MX_PORT="0",
        MAILMARK_IMAP_PORT="0",
        MAILMARK_SUBMISSION_PORT="0",
        MAILMARK_SUBMISSIONS_PORT="0",
        MAILMARK_HTTP_PORT="0",
        MAILMARK_DNS_NAMESERVERS=fake_dns.address,
    )
    servers: list[Server] = []
    try:
        server = await Server.start(env, tmp_path)
        servers.append(server)
        await wait_listening(server, imaps)
        for args in (
            (
                "account",
                "create",
                "acme",
                "--owner",
                "owner@acme.test",
                "--password",
                "owner-pass-1",
            ),
            ("domain", "add", "acme.test", "--account", "acme", "--trust"),
            ("mailbox", "add", ADDRESS, "--password", PASSWORD),
        ):
            result = await mailmark(env, *args, cwd=tmp_path)
            assert result.code == 0, result.err

        acknowledged: dict[int, bytes] = {}
        attempted: dict[bytes, bytes] = {}  # Message-ID line -> message, acknowledged or not

        def appender(connection: int) -> None:
            """APPEND until the server dies under it."""
            try:
                imap = Imap(imaps)
                for n in range(10_000):
                    raw = numbered(f"Conn{connection}", n)
                    attempted[raw.split(b"Message-ID: ")[1].split(b"\r\n")[0]] = raw
                    acknowledged[imap.append(raw)] = raw
            except (OSError, imaplib.IMAP4.abort, EOFError):
                return

        writers = [asyncio.create_task(asyncio.to_thread(appender, c)) for c in range(CONNECTIONS)]
        deadline = time.monotonic() + 60
        while len(acknowledged) < 60:
            assert time.monotonic() < deadline, server.log
            assert not any(w.done() for w in writers), server.log
            await asyncio.sleep(0.005)
        await kill_9(server)
        await asyncio.wait_for(asyncio.gather(*writers), timeout=30)
        promised = dict(acknowledged)

        server = await Server.start(env, tmp_path)
        servers.append(server)
        await wait_listening(server, imaps)
        imap = await asyncio.to_thread(Imap, imaps)
        box = await asyncio.to_thread(imap.read)
        for uid, raw in promised.items():
            assert box.bodies.get(uid) == raw, f"acknowledged UID {uid} is damaged or missing"
        # Anything else stored is an APPEND whose OK was lost with the process: whole, never torn.
        known = set(attempted.values())
        assert all(body in known for body in box.bodies.values())
        assert box.uidnext > max(box.uids)
        new_uid = await asyncio.to_thread(imap.append, numbered("After", 1))
        assert new_uid > max(box.uids)
        await asyncio.to_thread(imap.logout)
    finally:
        for started in servers:
            await started.stop()

"""`mailmark serve --imap-processes 2`: IMAP and IMAPS are served by two processes of their own,
on ports the main process holds but does not listen on; mail the main process's MX accepts
reaches an IDLE session in them; one that dies is started again; they stop with the main
process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import pytest

from mailmark.bootstrap import ImapProcesses
from mailmark.connections import listening_socket
from mailmark.startup import StartupError
from tests.e2e.test_http_workers import alive, wait_gone
from tests.e2e.test_imap_idle import WAKE_TIMEOUT, idling, message, next_exists, send_through_mx
from tests.imap.raw import session
from tests.support.serve import Server, mailmark, settings_for

pytestmark = pytest.mark.slow

PASSWORD = "sales-pass-1"


async def start(
    env: dict[str, str], cwd: Path, started: list[Server]
) -> tuple[Server, int, list[int]]:
    """serve with two IMAP processes, once both listen: its IMAPS port and their pids."""
    server = await Server.start(env, cwd, "--imap-processes", "2")
    started.append(server)
    served = await server.wait_for(r"IMAP and IMAPS are served by processes (\d+) (\d+)$")
    ports = set(re.findall(r"IMAPS listening on 127\.0\.0\.1:(\d+)", server.log))
    assert len(ports) == 1, server.log
    return server, int(ports.pop()), [int(served[1]), int(served[2])]


def listening_pids(port: int) -> set[int]:
    """The processes holding a socket that listens on `port` (from /proc: no `ss` needed)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in rows.read().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    holders = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in descriptors):
                holders.add(int(pid))
        except OSError:
            continue  # gone meanwhile, or not ours to look at
    return holders


async def a_mailbox(env: dict[str, str], cwd: Path) -> None:
    for args in (
        ("account", "create", "acme", "--owner", "o@acme.test", "--password", "owner-pass-1"),
        ("domain", "add", "acme.test", "--account", "acme", "--trust"),
        ("mailbox", "add", "sales@acme.test", "--password", PASSWORD),
    ):
        assert (await mailmark(env, *args, cwd=cwd)).code == 0


async def test_imap_is_served_by_its_processes_and_sees_what_the_mx_delivers(
    tmp_path: Path, serve_env: dict[str, str], servers: list[Server]
) -> None:
    env = {**serve_env, "MAILMARK_IMAP_POLL_INTERVAL": "1s"}
    await a_mailbox(env, tmp_path)
    server, imaps_port, workers = await start(env, tmp_path, servers)

    assert len(workers) == 2 and all(map(alive, workers))
    assert listening_pids(imaps_port) == set(workers)
    assert server.process.pid not in listening_pids(imaps_port)

    idler = await idling(imaps_port, "sales@acme.test", PASSWORD)
    try:
        mx_port = int(env["MAILMARK_MX_PORT"])
        await asyncio.to_thread(send_through_mx, mx_port, message(1))
        assert await next_exists(idler, timeout=WAKE_TIMEOUT) == 1
        await idler.send(b"DONE\r\n")
        assert (await idler.until(b"I1"))[-1].startswith(b"I1 OK")
    finally:
        await idler.close()
    for _ in range(6):  # new connections: the kernel spreads them over both processes
        async with session(imaps_port, select="INBOX") as reader:
            fetched = await reader.ok(b"F1", b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert b"Subject: Idle 1" in fetched[0], fetched

    server.process.send_signal(signal.SIGTERM)
    assert await server.exit_status(30) == 0, server.log
    for pid in workers:
        assert await wait_gone(pid, 10)


async def test_an_imap_process_that_dies_is_started_again(
    tmp_path: Path, serve_env: dict[str, str], servers: list[Server]
) -> None:
    await a_mailbox(serve_env, tmp_path)
    server, imaps_port, (killed, kept) = await start(serve_env, tmp_path, servers)

    os.kill(killed, signal.SIGKILL)

    await server.wait_for(rf"IMAP process {killed} ended with status -9; starting another")
    replacement = int((await server.wait_for(rf"IMAP process (\d+) replaces {killed}"))[1])
    assert listening_pids(imaps_port) == {kept, replacement}
    async with session(imaps_port, select="INBOX") as reader:
        assert await reader.ok(b"N1", b"NOOP") == [b"N1 OK NOOP completed\r\n"]


async def test_imap_processes_exit_when_the_main_process_is_killed(
    tmp_path: Path, serve_env: dict[str, str], servers: list[Server]
) -> None:
    server, _, workers = await start(serve_env, tmp_path, servers)

    server.process.kill()
    await server.process.wait()

    for pid in workers:
        assert await wait_gone(pid, 15)


async def test_an_imap_process_that_cannot_listen_fails_the_start(
    tmp_path: Path, serve_env: dict[str, str], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ports held without SO_REUSEPORT, so the IMAP process's own bind is refused: the main
    process's start ends with its exit status instead of waiting on it."""
    await a_mailbox(serve_env, tmp_path)  # migrates the database the process will open
    for name, value in serve_env.items():
        monkeypatch.setenv(name, value)
    held = {name: listening_socket("127.0.0.1", 0) for name in ("IMAP", "IMAPS")}
    try:
        for sock in held.values():
            sock.listen()
        processes = ImapProcesses(settings_for(tmp_path / "data", database_url), 1, held)
        with pytest.raises(StartupError, match=r"ended with status 1 before it listened"):
            await processes.start()
        assert processes.pids == []
    finally:
        for sock in held.values():
            sock.close()

"""`mailmark serve` started as root with MAILMARK_RUN_AS_USER: it binds a privileged port, then
runs as that user, tells systemd it is ready over NOTIFY_SOCKET, and refuses to start when that
user could not use the data directory."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serve import Server, cli_environment, free_port, mailmark

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="switching users needs root (the suite runs as root in CI)"
)
NOBODY = pwd.getpwnam("nobody")


def free_privileged_port() -> int:
    """A port below 1024 nothing listens on, which only root (or CAP_NET_BIND_SERVICE) binds."""
    for port in range(1023, 600, -1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port below 1024 on 127.0.0.1")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory under /tmp that `nobody` can reach (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="mailmark-run-as-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_as_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    ports = dict.fromkeys(
        (
            "MAILMARK_SUBMISSION_PORT",
            "MAILMARK_SUBMISSIONS_PORT",
            "MAILMARK_IMAP_PORT",
            "MAILMARK_IMAPS_PORT",
            "MAILMARK_MANAGESIEVE_PORT",
            "MAILMARK_HTTP_PORT",
        ),
        "0",
    )
    return cli_environment(
        data_dir, database_url, **{"MAILMARK_RUN_AS_USER": "nobody", **ports, **extra}
    )


def process_ids(pid: int) -> dict[str, list[int]]:
    """The real, effective, saved and filesystem uids and gids, and the supplementary groups."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            fields[key] = [int(part) for part in value.split()]
    return fields


async def test_binds_a_privileged_port_then_runs_as_the_user(
    shared_dir: Path, database_url: str, servers: list[Server]
) -> None:
    data_dir = shared_dir / "data"
    data_dir.mkdir(mode=0o700)
    os.chown(data_dir, NOBODY.pw_uid, NOBODY.pw_gid)
    # systemd's notification socket: a datagram socket the service writes READY=1 to.
    notify_path = shared_dir / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    notify_path.chmod(0o777)
    listener.setblocking(False)
    mx_port = free_privileged_port()
    env = run_as_env(
        data_dir, database_url, MAILMARK_MX_PORT=str(mx_port), NOTIFY_SOCKET=str(notify_path)
    )
    server = await Server.start(env, shared_dir)
    servers.append(server)
    try:
        await server.wait_for(r"now running as user nobody \(uid 65534\)")
        await server.wait_for(r"HTTP listening on")
        loop = asyncio.get_running_loop()
        ready = await asyncio.wait_for(loop.sock_recv(listener, 4096), 30)
        assert b"READY=1" in ready.split(b"\n")

        ids = process_ids(server.process.pid)
        assert ids["Uid"] == [NOBODY.pw_uid] * 4
        assert ids["Gid"] == [NOBODY.pw_gid] * 4
        assert 0 not in ids["Groups"]
        reader, writer = await asyncio.open_connection("127.0.0.1", mx_port)
        banner = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert banner.startswith(b"220 ")
        # Everything it wrote after the switch belongs to the user, not to root.
        owners = {path.name: path.stat().st_uid for path in data_dir.iterdir()}
        assert "secrets.key" in owners
        assert set(owners.values()) == {NOBODY.pw_uid}, owners
        server.process.terminate()
        assert await server.exit_status(30) == 0
        assert b"STOPPING=1" in listener.recv(4096).split(b"\n")
    finally:
        listener.close()


async def test_refuses_a_data_dir_the_user_cannot_use(
    shared_dir: Path, database_url: str, servers: list[Server]
) -> None:
    data_dir = shared_dir / "data"
    # An installation made by root (here, an admin command run as root) leaves root's files.
    made = await mailmark(
        cli_environment(data_dir, database_url),
        *("account", "create", "acme", "--owner", "o@acme.test", "--password", "pass-word-1"),
        cwd=shared_dir,
    )
    assert made.code == 0, made.err
    os.chown(data_dir, NOBODY.pw_uid, NOBODY.pw_gid)
    env = run_as_env(data_dir, database_url, MAILMARK_MX_PORT=str(free_port()))
    server = await Server.start(env, shared_dir)
    servers.append(server)
    assert await server.exit_status(30) == 1
    refusal = next(line for line in server.lines if "user nobody cannot use" in line)
    assert f"{data_dir / 'secrets.key'} (read)" in refusal
    assert f"{data_dir / 'blobs'} (read, write)" in refusal
    assert f"chown -R nobody:nogroup {data_dir}" in server.log
    assert "Traceback" not in server.log

    # After the chown it asks for, the same installation starts.
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    again = await Server.start(env, shared_dir)
    servers.append(again)
    await again.wait_for(r"MX listening on")
    again.process.terminate()
    assert await again.exit_status(30) == 0


async def test_unknown_user_and_non_root_start_end_in_one_line(
    shared_dir: Path, database_url: str
) -> None:
    env = run_as_env(
        shared_dir / "data",
        database_url,
        MAILMARK_MX_PORT=str(free_port()),
        MAILMARK_RUN_AS_USER="no-such-user-here",
    )
    unknown = await mailmark(env, "serve", cwd=shared_dir)
    assert unknown.code == 1
    assert "MAILMARK_RUN_AS_USER: no user 'no-such-user-here' on this machine" in unknown.err
    assert "Traceback" not in unknown.err

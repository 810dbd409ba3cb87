"""`mailmark serve --http-workers 2`: a second process serves the API on the same port against the
same database, stops with the first, and exits on its own when the first is killed."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.support.serve import MAILMARK, Server, free_port, mailmark

pytestmark = pytest.mark.slow


async def start(env: dict[str, str], cwd: Path, started: list[Server]) -> tuple[Server, int]:
    process = await asyncio.create_subprocess_exec(
        MAILMARK,
        "serve",
        "--http-workers",
        "2",
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    server = Server(process)
    started.append(server)
    worker = int((await server.wait_for(r"HTTP worker process (\d+) started"))[1])
    # The worker logs its own listening line once it serves (the main one logged before it).
    listening = r"HTTP listening on 127\.0\.0\.1:" + env["MAILMARK_HTTP_PORT"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while sum(1 for line in server.lines if re.search(listening, line)) < 2:
        assert loop.time() < deadline, server.log
        await asyncio.sleep(0.1)
    return server, worker


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def wait_gone(pid: int, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.1)
    return False


async def api_key(env: dict[str, str], cwd: Path) -> str:
    for args in (
        ("account", "create", "acme", "--owner", "o@acme.test", "--password", "owner-pass-1"),
        ("domain", "add", "acme.test", "--account", "acme", "--trust"),
        ("mailbox", "add", "sales@acme.test"),
    ):
        assert (await mailmark(env, *args, cwd=cwd)).code == 0
    created = await mailmark(env, "apikey", "create", "acme.test", cwd=cwd)
    return created.out.strip().splitlines()[-1]


async def test_two_http_processes_serve_one_port(
    tmp_path: Path, serve_env: dict[str, str], servers: list[Server]
) -> None:
    port = free_port()
    env = {**serve_env, "MAILMARK_HTTP_PORT": str(port)}
    server, worker = await start(env, tmp_path, servers)
    key = await api_key(env, tmp_path)
    assert alive(worker)

    answers = []
    for _ in range(40):  # a new connection each time: the kernel spreads them over both
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            answers.append(
                await http.get("/v1/mailboxes", headers={"Authorization": f"Bearer {key}"})
            )

    assert {a.status_code for a in answers} == {200}
    assert answers[-1].json()[0]["fullAddress"] == "sales@acme.test"
    server.process.send_signal(signal.SIGTERM)
    assert await server.exit_status(30) == 0
    assert await wait_gone(worker, 10)


async def test_the_worker_exits_when_the_main_process_is_killed(
    tmp_path: Path, serve_env: dict[str, str], servers: list[Server]
) -> None:
    env = {**serve_env, "MAILMARK_HTTP_PORT": str(free_port())}
    server, worker = await start(env, tmp_path, servers)

    server.process.kill()
    await server.process.wait()

    assert await wait_gone(worker, 15)


async def test_a_worker_whose_main_process_died_before_it_started_exits(
    tmp_path: Path, serve_env: dict[str, str], servers: list[Server]
) -> None:
    """The main process killed while the worker was still starting: by the time the worker looks,
    its parent is already init, so it goes by the pid it was handed."""
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()
    process = await asyncio.create_subprocess_exec(
        MAILMARK,
        "serve",
        "--http-only",
        "--http-port",
        str(free_port()),
        "--parent-pid",
        str(gone.pid),
        env=serve_env,
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    worker = Server(process)
    servers.append(worker)
    await worker.wait_for(r"HTTP listening on 127\.0\.0\.1:")
    assert await worker.exit_status(30) == 0, worker.log

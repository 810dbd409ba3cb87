"""The real `mailmark` console script as a subprocess: one-shot commands, and `serve` on ports
the test chooses (`free_port`, tests/support/ports.py), against the test's data dir and database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailmark.config import Settings
from tests.fakedns import FakeDns
from tests.support.database import TEST_DATABASE_URL
from tests.support.ports import free_port
from tests.support.world import HOSTNAME

MAILMARK = str(Path(sys.executable).with_name("mailmark"))
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> object:
        return json.loads(self.out)


def cli_environment(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The caller's environment minus any MAILMARK_*, pointed at a fresh data dir (and database)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MAILMARK_")}
    env["MAILMARK_DATA_DIR"] = str(data_dir)
    env["MAILMARK_HOSTNAME"] = HOSTNAME
    env["MAILMARK_PASSWORD_HASH_COST"] = "test"
    if TEST_DATABASE_URL:
        # SQLite runs rely on the default <data dir>/mailmark.db; PostgreSQL gets the fresh database.
        env["MAILMARK_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def settings_for(data_dir: Path, database_url: str) -> Settings:
    """The Settings the CLI builds from `cli_environment`, to read back what it stored."""
    return Settings(
        data_dir=data_dir,
        database_url=database_url if TEST_DATABASE_URL else "",
        hostname=HOSTNAME,
        password_hash_cost="test",
    )


async def mailmark(env: dict[str, str], *args: str, stdin: str | None = None, cwd: Path) -> Run:
    process = await asyncio.create_subprocess_exec(
        MAILMARK,
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else None), timeout=60
    )
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


class Server:
    """One `mailmark serve` process; its log (stderr) is read continuously so it never blocks."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._new_line = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path, *arguments: str) -> Server:
        process = await asyncio.create_subprocess_exec(
            MAILMARK,
            "serve",
            *arguments,
            env=env,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._new_line.set()
        self._new_line.set()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        async def scan() -> re.Match[str]:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if found := re.search(pattern, line):
                        return found
                seen = len(self.lines)
                if self._reader.done():
                    raise AssertionError(f"serve ended without logging {pattern!r}:\n{self.log}")
                self._new_line.clear()
                await self._new_line.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no {pattern!r} within {timeout}s; log so far:\n{self.log}"
            ) from None

    async def exit_status(self, timeout: float) -> int:
        """The exit code, once the process has ended and its stderr has been read to the end."""

        async def ended() -> int:
            code = await self.process.wait()
            await self._reader
            return code

        return await asyncio.wait_for(ended(), timeout)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        # A child that outlived the server would keep its stderr open (the CPU workers die with
        # it, test_serve.py checks): the log read so far is then all there is.
        done, _ = await asyncio.wait({self._reader}, timeout=5)
        if not done:
            self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


@pytest.fixture
def serve_env(tmp_path: Path, database_url: str, fake_dns: FakeDns) -> dict[str, str]:
    return cli_environment(
        tmp_path / "data",
        database_url,
        MAILMARK_MX_PORT=str(free_port()),
        MAILMARK_DNS_NAMESERVERS=fake_dns.address,
        # Whatever other listeners serve starts, they must not collide with other test runs.
        MAILMARK_SUBMISSION_PORT="0",
        MAILMARK_SUBMISSIONS_PORT="0",
        MAILMARK_IMAP_PORT="0",
        MAILMARK_IMAPS_PORT="0",
        MAILMARK_MANAGESIEVE_PORT="0",
        MAILMARK_HTTP_PORT="0",
    )


@pytest.fixture
async def servers() -> AsyncIterator[list[Server]]:
    """Every server a test starts; any still running at the end is killed."""
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            await server.stop()

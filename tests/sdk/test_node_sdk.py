"""The npm package against a live server: npm ci, npm run build, then `node --test`."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.sdk.conftest import LiveApi
from tests.support.world import World, stored_copies

SDK = Path(__file__).resolve().parents[2] / "sdk" / "node"
NODE = shutil.which("node")
NPM = shutil.which("npm")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (Debian: nodejs npm)")
# Both tests build sdk/node in place, and pytest-xdist may run them in two workers at once: `npm ci`
# empties node_modules before it fills it, so one build takes this lock at a time.
BUILD_LOCK = Path(tempfile.gettempdir()) / (
    "mailmark-sdk-node-" + hashlib.sha256(str(SDK).encode()).hexdigest()[:16] + ".lock"
)


async def _run(*argv: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run a command in sdk/node without blocking the event loop the server runs in."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=SDK,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    output = out.decode(errors="replace")
    assert proc.returncode == 0, f"{' '.join(argv)} exited {proc.returncode}:\n{output[-6000:]}"
    return output


@contextlib.asynccontextmanager
async def _built() -> AsyncIterator[None]:
    """The package installed and built, held so for the body: no other build rewrites it."""
    assert NPM is not None, "npm is not installed (Debian: npm)"
    with BUILD_LOCK.open("a") as lock:
        # Waited for in a thread: this worker's event loop also runs the live server.
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        try:
            # node_modules is the cache (gitignored): install only when it lacks the compiler.
            if not (SDK / "node_modules" / ".bin" / "tsc").exists():
                await _run(NPM, "ci", "--no-audit", "--no-fund")
            await _run(NPM, "run", "build")
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def test_npm_package_against_live_server(live_api: LiveApi, world: World) -> None:
    tests = sorted(str(path.relative_to(SDK)) for path in (SDK / "test").glob("*.test.js"))
    assert tests, "no sdk/node/test/*.test.js"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}
    }
    env.update(
        MAILMARK_BASE_URL=live_api.base_url,
        MAILMARK_API_KEY=live_api.api_key,
        MAILMARK_SPARE_API_KEY=live_api.spare_api_key,
        MAILMARK_SENDER=live_api.sender,
        NO_COLOR="1",
    )
    assert NODE is not None
    async with _built():
        output = await _run(NODE, "--test", "--test-reporter=tap", *tests, env=env)
    passed = re.search(r"^# pass (\d+)$", output, re.MULTILINE)
    failed = re.search(r"^# fail (\d+)$", output, re.MULTILINE)
    assert passed and failed, output[-4000:]
    assert int(failed[1]) == 0, output[-6000:]
    assert int(passed[1]) >= 20, output[-4000:]
    # What the attachments test (send.test.js) sent, as the server built it.
    [copy] = [
        c
        for c in await stored_copies(world.services, world.sales)
        if c.subject == "Node attachments"
    ]
    message = email.message_from_bytes(copy.data, policy=email.policy.default)
    [csv] = message.iter_attachments()
    assert csv.get_filename() == "report-node.csv" and csv.get_content() == "a,b\n1,2\n"
    [logo] = [part for part in message.walk() if part["Content-ID"] == "<logo>"]
    assert logo.get_content() == bytes(i % 256 for i in range(70_000))


async def test_package_is_esm_with_types_that_check_and_no_runtime_dependencies() -> None:
    import json

    package = json.loads((SDK / "package.json").read_text())
    assert package["name"] == "mailmark-sdk"
    assert package["type"] == "module"
    assert package["exports"]["."]["types"] == "./dist/index.d.ts"
    assert "dependencies" not in package
    async with _built():
        # A TypeScript user's code against the declarations: right usage compiles, misuse
        # (marked @ts-expect-error) does not.
        await _run(NPM or "npm", "run", "typecheck")
        declarations = (SDK / "dist" / "index.d.ts").read_text()
        client = (SDK / "dist" / "client.d.ts").read_text()
    for name in ("Mailmark", "MailmarkError", "RateLimitError", "ValidationError"):
        assert name in declarations
    for method in (
        "send",
        "listMailboxes",
        "createMailbox",
        "updateMailbox",
        "deleteMailbox",
        "listAliases",
        "createAlias",
        "deleteAlias",
        "listSenderGroups",
        "createSenderGroup",
        "updateSenderGroup",
        "deleteSenderGroup",
        "listEmails",
        "cancelEmail",
        "rescheduleEmail",
    ):
        assert re.search(rf"\b{method}\(", client), method

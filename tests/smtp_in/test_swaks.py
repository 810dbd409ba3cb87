"""The MX as the Debian tool `swaks` sees it: a plain delivery, and one over STARTTLS.

swaks runs as a subprocess started with asyncio, so the in-process server keeps being served by
this event loop while it waits.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tests.support.world import HOSTNAME, World, stored_copies

SWAKS = shutil.which("swaks")
pytestmark = pytest.mark.skipif(SWAKS is None, reason="swaks not installed")


async def run_swaks(port: int, subject: str, *extra: str) -> str:
    assert SWAKS is not None
    process = await asyncio.create_subprocess_exec(
        SWAKS,
        "--server",
        "127.0.0.1",
        "--port",
        str(port),
        "--helo",
        "swaks.example.org",
        "--from",
        "alice@example.org",
        "--to",
        "sales@acme.test",
        "--header",
        f"Subject: {subject}",
        "--body",
        f"Sent by swaks: {subject}.",
        "--timeout",
        "10",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    transcript = output.decode("utf-8", "replace")
    assert process.returncode == 0, transcript
    return transcript


async def test_plain_delivery_with_swaks(world: World, mx_port: int) -> None:
    transcript = await run_swaks(mx_port, "plain swaks")
    assert "<-  250 2.0.0 Ok: queued as" in transcript
    copies = await stored_copies(world.services, world.sales)
    assert [(c.folder, c.subject) for c in copies] == [("INBOX", "plain swaks")]
    assert b"Sent by swaks: plain swaks." in copies[0].data
    assert f"by {HOSTNAME} (Mailmark) with ESMTP id ".encode() in copies[0].data


async def test_starttls_delivery_with_swaks(world: World, mx_port: int) -> None:
    transcript = await run_swaks(mx_port, "tls swaks", "--tls")
    assert "<-  220 2.0.0 Ready to start TLS" in transcript
    assert "=== TLS started with cipher" in transcript
    assert "<~  250 2.0.0 Ok: queued as" in transcript  # "~" marks lines read over TLS
    copies = await stored_copies(world.services, world.sales)
    assert [(c.folder, c.subject) for c in copies] == [("INBOX", "tls swaks")]
    assert f"by {HOSTNAME} (Mailmark) with ESMTPS id ".encode() in copies[0].data

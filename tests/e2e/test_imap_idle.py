"""MX → IMAP IDLE: a session idling on INBOX is woken by mail delivered through the MX listener,
and only the mailbox the mail was for is woken."""

from __future__ import annotations

import asyncio
import re
import smtplib
import time
from collections.abc import AsyncIterator

import pytest

from mailmark.bootstrap import Listeners
from mailmark.config import Settings
from tests.imap.raw import NO_POLL, Raw
from tests.support.world import World


# Sessions here never poll for other nodes' changes: every wake below comes from the folder signals.
@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"imap_poll_interval": NO_POLL})


# A guard against a hang, not a speed bound: without a poll, only a signal can wake the session.
WAKE_TIMEOUT = 30.0


def message(n: int, to: str = "sales@acme.test") -> bytes:
    return (
        f"From: Alice <alice@example.org>\r\nTo: {to}\r\nSubject: Idle {n}\r\n"
        f"Message-ID: <idle-{n}@example.org>\r\n\r\nWake up {n}.\r\n"
    ).encode()


def send_through_mx(port: int, raw: bytes, to: str = "sales@acme.test") -> None:
    """A real SMTP client delivering one message; returns after the 250."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        refused = smtp.sendmail("alice@example.org", [to], raw)
    assert refused == {}


async def idling(port: int, address: str, password: str) -> Raw:
    client = await Raw.connect(port, tls=True)
    done = await client.run(b"L1", f'LOGIN "{address}" "{password}"'.encode())
    assert done[-1].startswith(b"L1 OK"), done
    done = await client.run(b"S1", b"SELECT INBOX")
    assert done[-1].startswith(b"S1 OK"), done
    assert b"* 0 EXISTS\r\n" in done, done
    await client.send(b"I1 IDLE\r\n")
    assert (await client.line()).startswith(b"+ "), "no IDLE continuation"
    return client


@pytest.fixture
async def sales_idle(listeners: Listeners, world: World) -> AsyncIterator[Raw]:
    client = await idling(listeners.imaps.port, "sales@acme.test", "sales-pass-1")
    try:
        yield client
    finally:
        await client.close()


async def next_exists(client: Raw, timeout: float) -> int:
    """The count of the next untagged EXISTS, skipping other untagged data (RECENT, FETCH)."""
    deadline = time.monotonic() + timeout
    while True:
        line = await client.line(timeout=max(0.01, deadline - time.monotonic()))
        if found := re.fullmatch(rb"\* (\d+) EXISTS\r\n", line):
            return int(found[1])
        assert line.startswith(b"* "), line


async def test_mx_delivery_wakes_idle_before_any_poll(
    listeners: Listeners, sales_idle: Raw
) -> None:
    for n in range(1, 6):
        await asyncio.to_thread(send_through_mx, listeners.mx_port, message(n))
        # The 250 has been read: the message is committed.
        assert await next_exists(sales_idle, timeout=WAKE_TIMEOUT) == n

    await sales_idle.send(b"DONE\r\n")
    done = await sales_idle.until(b"I1")
    assert done[-1].startswith(b"I1 OK"), done
    fetched = await sales_idle.run(b"F1", b"FETCH 5 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: Idle 5" in fetched[0], fetched


async def test_delivery_to_another_mailbox_does_not_wake_idle(
    listeners: Listeners, world: World, sales_idle: Raw
) -> None:
    support = await idling(listeners.imaps.port, "support@acme.test", "support-pass-1")
    try:
        await asyncio.to_thread(
            send_through_mx, listeners.mx_port, message(1, "support@acme.test"), "support@acme.test"
        )
        assert await next_exists(support, timeout=WAKE_TIMEOUT) == 1
        # sales@ is silent: nothing at all for it, not even a spurious EXISTS.
        with pytest.raises(TimeoutError):
            await sales_idle.line(timeout=1.0)
        await sales_idle.send(b"DONE\r\n")
        done = await sales_idle.until(b"I1")
        assert len(done) == 1 and done[0].startswith(b"I1 OK"), done
    finally:
        await support.close()


async def test_two_sessions_idling_on_one_mailbox_are_both_woken(
    listeners: Listeners, sales_idle: Raw
) -> None:
    second = await idling(listeners.imaps.port, "sales@acme.test", "sales-pass-1")
    try:
        await asyncio.to_thread(send_through_mx, listeners.mx_port, message(1))
        counts = await asyncio.gather(
            next_exists(sales_idle, timeout=WAKE_TIMEOUT),
            next_exists(second, timeout=WAKE_TIMEOUT),
        )
        assert list(counts) == [1, 1]
    finally:
        await second.close()

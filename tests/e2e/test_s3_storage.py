"""Mail through the real MX into an S3 blob store (SeaweedFS on loopback), read back over IMAP;
and the S3 server killed in the middle of MX traffic: every message answered 250 is stored and
readable byte for byte, every other one was answered 451 (never 250 then lost), and mail is
accepted again once the server is back. IMAP APPEND and the API answer "try again" likewise."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import re
import time

import aiosmtplib
import httpx
import pytest

from mailmark.bootstrap import Listeners
from mailmark.config import Settings
from mailmark.storage.s3blobstore import S3BlobStore
from tests.imap.raw import Raw
from tests.support.seaweedfs_server import SeaweedFs
from tests.support.tls import client_tls
from tests.support.world import World

# Bounds the whole exchange so that a broken store fails the test instead of hanging it.
SCENARIO_TIMEOUT = 180


@pytest.fixture
def settings(settings: Settings, seaweedfs: SeaweedFs) -> Settings:
    return seaweedfs.settings_for(settings)


def message(number: int) -> bytes:
    return (
        b"From: Alice <alice@example.org>\r\n"
        b"To: sales@acme.test\r\n"
        b"Subject: Order %d\r\n"
        b"Message-ID: <order-%d@example.org>\r\n"
        b"\r\n"
        b"Order number %d, with a line of data:\r\n%s\r\n" % (number, number, number, b"x" * 2000)
    )


async def send(port: int, raw: bytes) -> tuple[int, str]:
    """The MX's final reply to DATA: (code, text)."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=60)
    await client.connect()
    try:
        _, text = await client.sendmail("alice@example.org", ["sales@acme.test"], raw)
        return 250, text  # aiosmtplib raises for anything but 2xx
    except aiosmtplib.SMTPResponseException as refused:
        return refused.code, refused.message
    finally:
        client.close()


def inbox_over_imap(port: int) -> list[bytes]:
    """Every message of sales@'s INBOX as IMAP serves it (BODY[]), in UID order."""
    client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls(), timeout=30)
    try:
        client.login("sales@acme.test", "sales-pass-1")
        client.select("INBOX", readonly=True)
        status, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert status == "OK", data
        return [part[1] for part in data if isinstance(part, tuple)]
    finally:
        client.logout()


def order_numbers(bodies: list[bytes]) -> list[int]:
    return [int(re.search(rb"Message-ID: <order-(\d+)@", body)[1]) for body in bodies]  # type: ignore[index]


async def test_mail_stored_in_s3_is_served_byte_identical_over_imap(
    world: World, listeners: Listeners, seaweedfs: SeaweedFs
) -> None:
    assert isinstance(world.services.blobs, S3BlobStore)
    raw = message(1)
    assert (await send(listeners.mx_port, raw))[0] == 250

    [served] = await asyncio.to_thread(inbox_over_imap, listeners.imaps_port)
    assert served.endswith(raw)
    assert served.startswith(b"Return-Path: <alice@example.org>\r\nReceived: from ")
    # The blob is the message as it came (the trace headers are a stored prefix) in the bucket.
    location = world.services.settings.blob_bucket
    assert location is not None
    names = seaweedfs.object_names(location[1])
    assert len(names) == 2  # this message and the start-up check's empty blob


async def append(imap: Raw, tag: bytes, raw: bytes) -> bytes:
    """APPEND `raw` to INBOX; the tagged answer."""
    await imap.send(tag + b" APPEND INBOX {%d}\r\n" % len(raw))
    assert (await imap.line()).startswith(b"+")
    await imap.send(raw + b"\r\n")
    return (await imap.until(tag, timeout=30))[-1]


async def test_s3_killed_during_mx_traffic_gives_451_never_250_then_loss(
    world: World, listeners: Listeners, seaweedfs: SeaweedFs
) -> None:
    """And while it is down, IMAP APPEND answers NO [UNAVAILABLE] and POST /v1/send 503."""
    key = await world.services.api_keys.create(world.domain, name="tests")
    api = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{listeners.http_port}",
        headers={"Authorization": f"Bearer {key.secret}"},
        trust_env=False,
        timeout=30,
    )
    send_body = {
        "from": "sales@acme.test",
        "to": ["ann@example.com"],
        "subject": "Hello",
        "text": "Hello",
        # Ahead, so that the delivery worker leaves it queued.
        "scheduledAt": int((time.time() + 3600) * 1000),
    }
    imap = await Raw.connect(listeners.imaps_port, tls=True)
    await imap.login()
    appended = message(0)  # never sent to the MX
    replies: dict[int, tuple[int, str]] = {}
    phase = {"name": "before"}
    # Each message under the phase it was sent and answered in; "mixed" when the phase changed
    # meanwhile (a retry may reach the server as it comes back, so either answer is right).
    by_phase: dict[str, list[int]] = {
        name: [] for name in ("before", "down", "restarting", "mixed", "after")
    }
    stop = asyncio.Event()

    async def traffic() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            sent_in = phase["name"]
            replies[number] = await send(listeners.mx_port, message(number))
            by_phase[sent_in if phase["name"] == sent_in else "mixed"].append(number)

    def answered(name: str, code: int) -> int:
        return sum(1 for number in by_phase[name] if replies[number][0] == code)

    async def until(condition: str, check: object) -> None:
        while not check():  # type: ignore[operator]
            # A message sent and answered while the server is dead cannot be stored: never 250.
            assert answered("down", 250) == 0, replies
            if sender.done():
                sender.result()
                raise AssertionError(f"the traffic stopped before {condition}")
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(traffic())
    try:
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            await until("3 accepted", lambda: answered("before", 250) >= 3)
            seaweedfs.stop(crash=True)
            phase["name"] = "down"
            await until("2 refused", lambda: answered("down", 451) >= 2)
            assert (await append(imap, b"A1", appended)).startswith(b"A1 NO [UNAVAILABLE] ")
            refused_send = await api.post("/v1/send", json=send_body)
            assert refused_send.status_code == 503, refused_send.text
            assert "Retry-After" in refused_send.headers
            phase["name"] = "restarting"
            await asyncio.to_thread(seaweedfs.start)
            phase["name"] = "after"
            await until("3 accepted again", lambda: answered("after", 250) >= 3)
            stop.set()
            await sender
        assert (await append(imap, b"A2", appended)).startswith(b"A2 OK [APPENDUID ")
        accepted_send = await api.post("/v1/send", json=send_body)
        assert accepted_send.status_code == 200, accepted_send.text
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await api.aclose()
        await imap.close()

    codes = {code for code, _ in replies.values()}
    assert codes <= {250, 451}, replies
    refused = [number for number, (code, _) in replies.items() if code == 451]
    assert all(replies[number][1].startswith("4.3.0 ") for number in refused), replies
    assert answered("down", 250) == 0, replies
    accepted = sorted(number for number, (code, _) in replies.items() if code == 250)
    served = await asyncio.to_thread(inbox_over_imap, listeners.imaps_port)
    assert order_numbers(served) == [*accepted, 0]
    for number, body in zip([*accepted, 0], served, strict=True):
        assert body.endswith(message(number)), number

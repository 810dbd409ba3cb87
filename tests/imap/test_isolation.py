"""Large messages keep off the event loop: FETCH parses and decodes them in the CPU pool's worker
processes (small ones in place), and a large APPEND literal waits in the spool, not in memory.
Measured with the pool's and the spool's own counters, over real connections."""

from __future__ import annotations

import asyncio
import base64

from mailmark.bootstrap import Listeners
from tests.imap.raw import Raw
from tests.support.world import World

KiB = 1024
MiB = 1024 * KiB


def with_attachment(payload: bytes, subject: str) -> bytes:
    return (
        (
            f"From: a@example.org\r\nTo: sales@acme.test\r\nSubject: {subject}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            "--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + base64.encodebytes(payload).replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )


async def test_large_messages_are_parsed_in_the_pool_and_small_ones_in_place(
    listeners: Listeners, world: World
) -> None:
    pool = listeners.cpu
    assert pool.running
    large_payload = bytes(range(256)) * (4 * KiB)  # 1 MiB, 1.4 MiB encoded
    large = with_attachment(large_payload, "Large")
    small = with_attachment(b"tiny attachment", "Small")
    assert len(large) > pool.threshold > len(small)
    jobs = pool.counters.jobs
    await world.services.delivery.deliver(
        large, recipients=[world.sales], mail_from="a@example.org"
    )
    assert pool.counters.jobs == jobs + 1  # delivery's metadata and index
    await world.services.delivery.deliver(
        small, recipients=[world.sales], mail_from="a@example.org"
    )
    assert pool.counters.jobs == jobs + 1
    client = await Raw.connect(listeners.imaps.port, tls=True)
    try:
        await client.login()
        await client.ok(b"S1", b"SELECT INBOX")
        jobs, inline = pool.counters.jobs, pool.counters.inline
        done = await client.ok(
            b"F1", b"FETCH 1 (BINARY.PEEK[2]<1000.3> BODY.PEEK[1] BINARY.SIZE[2] BINARY.PEEK[3])"
        )
        answer = b"".join(done[:-1])
        assert b"BINARY[2]<1000> {3}\r\n" + large_payload[1000:1003] in answer
        assert b"BODY[1] {12}\r\nsee attached" in answer
        assert b"BINARY.SIZE[2] %d" % len(large_payload) in answer
        assert b"BINARY[3] {0}\r\n" in answer  # no such part: empty
        assert pool.counters.jobs == jobs + 1  # one job for the command's large message
        assert pool.counters.inline == inline

        done = await client.ok(
            b"F2", b"FETCH 2 (BINARY.PEEK[2] BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
        )
        answer = b"".join(done[:-1])
        assert b"BINARY[2] {15}\r\ntiny attachment" in answer
        assert b"Subject: Small\r\n" in answer
        assert pool.counters.jobs == jobs + 1
        assert pool.counters.inline == inline + 1  # the small one, in place
    finally:
        await client.close()


async def test_an_undecodable_part_in_a_large_message_is_unknown_cte(
    listeners: Listeners, world: World
) -> None:
    raw = (
        b"From: a@example.org\r\nTo: sales@acme.test\r\nSubject: Odd\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: x-unknown\r\n\r\n" + b"x" * (2 * listeners.cpu.threshold)
    ) + b"\r\n--b--\r\n"
    await world.services.delivery.deliver(raw, recipients=[world.sales], mail_from="a@example.org")
    client = await Raw.connect(listeners.imaps.port, tls=True)
    try:
        await client.login()
        await client.ok(b"S1", b"SELECT INBOX")
        jobs = listeners.cpu.counters.jobs
        done = await client.run(b"F1", b"FETCH 1 (BINARY.PEEK[1])")
        assert done[-1].startswith(b"F1 NO [UNKNOWN-CTE]"), done
        assert listeners.cpu.counters.jobs == jobs + 1
        await client.ok(b"N1", b"NOOP")
    finally:
        await client.close()


async def test_a_large_append_literal_waits_in_the_spool_not_in_memory(
    listeners: Listeners, world: World
) -> None:
    spooling = listeners.mx.spooling  # shared by SMTP DATA and IMAP APPEND
    counters = spooling.counters
    message = b"From: a@example.org\r\nTo: sales@acme.test\r\nSubject: Appended\r\n\r\n" + (
        b"z" * 998 + b"\r\n"
    ) * (5 * MiB // 1000)
    assert len(message) > 4 * spooling.threshold
    spooled = counters.spooled
    client = await Raw.connect(listeners.imaps.port, tls=True)
    try:
        await client.login()
        await client.send(b"A1 APPEND INBOX {%d}\r\n" % len(message))
        assert (await client.line()).startswith(b"+ ")
        half = len(message) // 2
        await client.send(message[:half])
        for _ in range(400):
            if counters.spooled > spooled and counters.buffered == 0:
                break
            await asyncio.sleep(0.025)
        # Half of a 5 MiB literal received: none of it is held in memory any more.
        assert counters.spooled == spooled + 1
        assert counters.buffered == 0
        assert counters.peak_buffered <= spooling.threshold
        await client.send(message[half:] + b"\r\n")
        done = await client.until(b"A1")
        assert done[-1].startswith(b"A1 OK"), done
        # Loaded once complete, under the memory budget, and given back after the command.
        assert counters.peak_loaded >= len(message)
        assert counters.loaded == 0
        await client.ok(b"S1", b"SELECT INBOX")
        done = await client.ok(b"F1", b"FETCH 1 (BODY.PEEK[])")
        assert b"{%d}\r\n" % len(message) + message in done[0]
    finally:
        await client.close()

"""Memory held per SMTP connection: DATA past the spool threshold waits in a temporary file, and
complete messages are loaded for delivery within the process's byte budget. Measured with the
listener's own counters while real clients hold large messages half-sent."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from mailmark.bootstrap import Services, start_listeners
from tests.smtp_in.corpus import RawSmtp, dot_stuff
from tests.support.world import World, stored_copies

KiB = 1024
MiB = 1024 * KiB
THRESHOLD = 256 * KiB
BUDGET = 3 * MiB
CLIENTS = 4


def large_message(n: int) -> bytes:
    # Lines starting with "." are dot-stuffed on the wire and must come back unstuffed.
    line = b".%d" % n + b"x" * 996 + b"\r\n"
    return (
        f"From: a@example.org\r\nTo: sales@acme.test\r\nSubject: Large {n}\r\n"
        f"Message-ID: <large-{n}@example.org>\r\n\r\n"
    ).encode() + line * (2 * MiB // len(line))


async def test_large_messages_are_spooled_and_loaded_within_the_budget(
    services: Services, world: World
) -> None:
    settings = services.settings.model_copy(
        update={"smtp_spool_threshold": THRESHOLD, "smtp_data_memory": BUDGET}
    )
    listeners = await start_listeners(replace(services, settings=settings))
    counters = listeners.mx.spooling.counters
    clients: list[RawSmtp] = []
    try:
        messages = [large_message(n) for n in range(CLIENTS)]
        for message in messages:
            client, greeting = await RawSmtp.connect(listeners.mx_port)
            clients.append(client)
            assert greeting.code == 220
            assert (await client.command("EHLO client.example")).code == 250
            assert (await client.command("MAIL FROM:<a@example.org>")).code == 250
            assert (await client.command("RCPT TO:<sales@acme.test>")).code == 250
            assert (await client.command("DATA")).code == 354
            await client.send(dot_stuff(message))  # everything but the end-of-data line
        for _ in range(200):
            if counters.spooled == CLIENTS:
                break
            await asyncio.sleep(0.05)
        assert counters.spooled == CLIENTS
        # Four 2 MiB messages half-sent: each connection holds at most the threshold in memory.
        assert counters.peak_buffered <= THRESHOLD
        assert counters.buffered <= CLIENTS * THRESHOLD
        for client in clients:
            await client.send(b".\r\n")
        replies = [await client.reply() for client in clients]
        assert [reply.code for reply in replies] == [250] * CLIENTS
        # 8 MiB of messages, loaded for delivery no more than the 3 MiB budget at once.
        assert 2 * MiB <= counters.peak_loaded <= BUDGET
        assert counters.buffered == counters.loaded == 0
        stored = sorted(copy.data for copy in await stored_copies(services, world.sales))
        for message in messages:
            assert sum(raw.endswith(message) for raw in stored) == 1
    finally:
        for client in clients:
            await client.close()
        await listeners.close()


async def test_a_message_under_the_threshold_stays_in_memory(
    services: Services, world: World
) -> None:
    listeners = await start_listeners(services)
    counters = listeners.mx.spooling.counters
    try:
        client, _ = await RawSmtp.connect(listeners.mx_port)
        await client.command("EHLO client.example")
        await client.command("MAIL FROM:<a@example.org>")
        await client.command("RCPT TO:<sales@acme.test>")
        await client.command("DATA")
        await client.send(b"Subject: small\r\n\r\n..dot\r\n.\r\n")
        assert (await client.reply()).code == 250
        await client.close()
        assert counters.spooled == 0
        [copy] = await stored_copies(services, world.sales)
        assert copy.data.endswith(b"Subject: small\r\n\r\n.dot\r\n")
    finally:
        await listeners.close()

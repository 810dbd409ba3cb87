"""Mail to a hosted mailbox over a real socket ends up stored, once, with its trace headers."""

from __future__ import annotations

import aiosmtplib

from tests.support.world import World, stored_copies

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: sales@acme.test, support@acme.test\r\n"
    b"Subject: Quarterly numbers\r\n"
    b"Message-ID: <q1@example.org>\r\n"
    b"\r\n"
    b"Here are the numbers.\r\n"
)


async def test_one_message_to_two_mailboxes_is_one_blob_and_two_placements(
    world: World, mx_port: int
) -> None:
    errors, reply = await aiosmtplib.send(
        MESSAGE,
        sender="alice@example.org",
        recipients=["sales@acme.test", "support@acme.test"],
        hostname="127.0.0.1",
        port=mx_port,
        start_tls=False,
    )
    assert errors == {}
    assert reply.startswith("2.0.0 Ok: queued as")

    sales = await stored_copies(world.services, world.sales)
    support = await stored_copies(world.services, world.support)
    assert [(c.folder, c.uid, c.subject) for c in sales] == [("INBOX", 1, "Quarterly numbers")]
    assert [(c.folder, c.uid) for c in support] == [("INBOX", 1)]
    assert sales[0].data == support[0].data
    assert sales[0].data.endswith(MESSAGE)
    trace = sales[0].data[: -len(MESSAGE)]
    assert trace.startswith(b"Return-Path: <alice@example.org>\r\nReceived: from ")
    assert b"by mx.mailmark.test (Mailmark) with ESMTP" in trace
    assert b"Authentication-Results: mx.mailmark.test;" in trace
    blobs = list((world.services.settings.blob_path).glob("*/*"))
    assert len(blobs) == 1


async def test_a_forged_authentication_results_naming_this_host_is_not_stored(
    world: World, mx_port: int
) -> None:
    forged = (
        b"Authentication-Results: mx.mailmark.test; dmarc=pass header.from=bank.test\r\n"
        b"Authentication-Results: relay.example.org; spf=pass\r\n"
    )
    await aiosmtplib.send(
        forged + MESSAGE,
        sender="alice@example.org",
        recipients=["sales@acme.test"],
        hostname="127.0.0.1",
        port=mx_port,
        start_tls=False,
    )
    [copy] = await stored_copies(world.services, world.sales)
    # RFC 8601 §5: ours is the one we prepend, and only that one.
    assert copy.data.count(b"Authentication-Results: mx.mailmark.test;") == 1
    assert b"dmarc=pass header.from=bank.test" not in copy.data
    assert copy.data.endswith(b"Authentication-Results: relay.example.org; spf=pass\r\n" + MESSAGE)

"""The MX accepts mail for hosted mailboxes only: the relay matrix, answered at RCPT time.

A hosted domain's unknown mailbox is `550 5.1.1`; any other domain, and every way of smuggling
another destination into an address that looks local (RFC 5321 Appendix C source routes, the %
hack, UUCP bang paths, quoted local parts, address literals), is `554 5.7.1`. Nothing is stored.
"""

from __future__ import annotations

import pytest

from tests.smtp_in.corpus import RawSmtp
from tests.support.world import World, stored_copies

RELAY_DENIED = "554 5.7.1"
NO_SUCH_MAILBOX = "550 5.1.1"


# (what is tried, the RCPT addresses, the reply they must all get); one world per row.
MATRIX = [
    ("unknown mailbox", ["<nobody@acme.test>", "<NoBody+tag@ACME.test>"], NO_SUCH_MAILBOX),
    (
        "other domain",
        [
            "<someone@example.org>",
            "<sales@sub.acme.test>",
            "<sales@acme.test.example.org>",
            "<postmaster@example.org>",
        ],
        RELAY_DENIED,
    ),
    ("percent hack", ["<u%example.org@acme.test>", "<sales%example.org@acme.test>"], RELAY_DENIED),
    (
        "source route",
        ["<@acme.test:u@example.org>", "<@acme.test,@mx.acme.test:sales@example.org>"],
        RELAY_DENIED,
    ),
    ("bang path", ["<example.org!u@acme.test>", "<acme.test!sales@acme.test>"], RELAY_DENIED),
    (
        "quoted local part",
        ['<"u@example.org"@acme.test>', '<"sales@acme.test"@acme.test>'],
        RELAY_DENIED,
    ),
    ("address literal", ["<u@[127.0.0.1]>", "<sales@[IPv6:::1]>"], RELAY_DENIED),
]


@pytest.mark.parametrize(
    ("rcpts", "expected"), [row[1:] for row in MATRIX], ids=[row[0] for row in MATRIX]
)
async def test_rcpt_is_refused_and_nothing_is_stored(
    world: World, mx_port: int, rcpts: list[str], expected: str
) -> None:
    client, _ = await RawSmtp.connect(mx_port)
    try:
        assert (await client.command("EHLO relay-tester.example.org")).code == 250
        assert (await client.command("MAIL FROM:<alice@example.org>")).code == 250
        for rcpt in rcpts:
            reply = await client.command(f"RCPT TO:{rcpt}")
            assert str(reply).startswith(expected + " "), f"{rcpt}: {reply}"
        # With no accepted recipient there is no transaction to send data in.
        after = await client.command("DATA")
        assert after.code == 503, str(after)
        assert (await client.command("QUIT")).code == 221
    finally:
        await client.close()
    assert await stored_copies(world.services, world.sales) == []
    assert await stored_copies(world.services, world.support) == []
    assert list(world.services.settings.blob_path.glob("*/*")) == []


async def test_refused_recipient_does_not_receive_a_copy_sent_to_a_good_one(
    world: World, mx_port: int
) -> None:
    """A refused RCPT beside an accepted one: the message reaches only the accepted mailbox."""
    client, _ = await RawSmtp.connect(mx_port)
    try:
        assert (await client.command("EHLO relay-tester.example.org")).code == 250
        assert (await client.command("MAIL FROM:<alice@example.org>")).code == 250
        assert str(await client.command("RCPT TO:<support%example.org@acme.test>")).startswith(
            RELAY_DENIED
        )
        assert (await client.command("RCPT TO:<sales@acme.test>")).code == 250
        assert (await client.command("DATA")).code == 354
        reply = await client.command(b"Subject: hi\r\n\r\nhello\r\n.")
        assert reply.code == 250, str(reply)
    finally:
        await client.close()
    assert len(await stored_copies(world.services, world.sales)) == 1
    assert await stored_copies(world.services, world.support) == []

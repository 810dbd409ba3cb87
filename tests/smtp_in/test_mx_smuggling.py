"""SMTP smuggling: a bare CR or LF anywhere in DATA is refused, and nothing hides a second message.

RFC 5321 §2.3.8: lines end with CRLF only, and the data ends only at CRLF "." CRLF. A receiver
that also ends the data at LF "." LF (or similar) executes the commands an attacker hid in the
body. Exact bytes matter, so these tests talk to the MX over a raw stream.
"""

from __future__ import annotations

import pytest

from tests.smtp_in.corpus import RawSmtp, Reply
from tests.support.world import World, stored_copies

FIRST = (
    b"From: alice@example.org\r\nTo: sales@acme.test\r\nSubject: harmless\r\n\r\n"
    b"Hello Sales,\r\nsee you"
)
SMUGGLED = (
    b"MAIL FROM:<ceo@acme.test>\r\n"
    b"RCPT TO:<support@acme.test>\r\n"
    b"DATA\r\n"
    b"From: ceo@acme.test\r\nTo: support@acme.test\r\nSubject: smuggled\r\n\r\n"
    b"Please wire the money.\r\n"
)
END = b"\r\n.\r\n"


async def _open_transaction(port: int) -> RawSmtp:
    client, greeting = await RawSmtp.connect(port)
    assert greeting.code == 220
    assert (await client.command("EHLO attacker.example.org")).code == 250
    assert (await client.command("MAIL FROM:<alice@example.org>")).code == 250
    assert (await client.command("RCPT TO:<sales@acme.test>")).code == 250
    assert (await client.command("DATA")).code == 354
    return client


async def _assert_nothing_stored(world: World) -> None:
    assert await stored_copies(world.services, world.sales) == []
    assert await stored_copies(world.services, world.support) == []
    assert list(world.services.settings.blob_path.glob("*/*")) == []


async def _assert_session_clean(client: RawSmtp) -> None:
    """The next reply answers our NOOP: no smuggled MAIL/RCPT/DATA was run as a command."""
    noop = await client.command("NOOP")
    assert (noop.code, noop.text) == (250, "2.0.0 OK")
    assert (await client.command("QUIT")).code == 221


def _assert_refused_for_bare_line_ending(reply: Reply) -> None:
    assert reply.code // 100 == 5, str(reply)
    assert reply.text.startswith("5.5.2 ")
    assert "bare CR or LF" in reply.text


# The end-of-data look-alikes that some receivers have honoured (CVE-2023-51764/5/6 and kin).
SEPARATORS = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CR": b"\r.\r",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.CR": b"\r\n.\r",
    "LF.CR": b"\n.\r",
}


async def test_smuggled_second_message_is_refused_and_not_delivered(
    world: World, mx_port: int, subtests: pytest.Subtests
) -> None:
    """One world, one connection per variant (a test each would mostly time fixture setup)."""
    for name, separator in SEPARATORS.items():
        with subtests.test(msg=name):
            client = await _open_transaction(mx_port)
            try:
                # One write, as an attacker's relay would pass it on.
                await client.send(FIRST + separator + SMUGGLED + END)
                _assert_refused_for_bare_line_ending(await client.reply())
                await _assert_session_clean(client)
            finally:
                await client.close()
            await _assert_nothing_stored(world)


BARE_LINE_ENDINGS = {
    "unix line endings": b"Subject: unix\n\nbody\n",
    "LF inside a header field": b"Subject: lf\r\nX-Note: one\ntwo\r\n\r\nbody\r\n",
    "CR inside the body": b"Subject: cr\r\n\r\nline one\rline two\r\n",
    "LF as the first octet": b"\nSubject: leading lf\r\n\r\nbody\r\n",
    "CR before CRLF": b"Subject: cr cr lf\r\n\r\nbody\r\r\n",
}


async def test_any_bare_line_ending_is_refused(world: World, mx_port: int) -> None:
    """Not only smuggling shapes: a lone CR or LF anywhere, even with no "." after it."""
    for name, message in BARE_LINE_ENDINGS.items():
        client = await _open_transaction(mx_port)
        try:
            await client.send(message + END)
            reply = await client.reply()
            assert reply.code // 100 == 5, f"{name}: {reply}"
            _assert_refused_for_bare_line_ending(reply)
            await _assert_session_clean(client)
        finally:
            await client.close()
    await _assert_nothing_stored(world)


async def test_properly_stuffed_dot_line_keeps_the_commands_as_body_text(
    world: World, mx_port: int
) -> None:
    """The control: with CRLF and a stuffed dot (RFC 5321 §4.5.2), the would-be commands are text
    of the one message for sales@, and support@ receives nothing."""
    client = await _open_transaction(mx_port)
    try:
        await client.send(FIRST + b"\r\n..\r\n" + SMUGGLED + END)
        reply = await client.reply()
        assert reply.code == 250, str(reply)
        await _assert_session_clean(client)
    finally:
        await client.close()
    sales = await stored_copies(world.services, world.sales)
    assert len(sales) == 1
    assert sales[0].data.endswith(FIRST + b"\r\n.\r\n" + SMUGGLED + b"\r\n")
    assert await stored_copies(world.services, world.support) == []

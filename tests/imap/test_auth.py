"""Greeting, capabilities, STARTTLS, LOGIN and AUTHENTICATE over real sockets (imaplib and bytes)."""

from __future__ import annotations

import asyncio
import base64
import imaplib

import pytest

from mailmark.bootstrap import Listeners
from tests.imap.raw import Raw
from tests.support.tls import client_tls
from tests.support.world import World

pytestmark = pytest.mark.usefixtures("world")


def _caps(line: bytes) -> set[bytes]:
    return set(line.split(b"CAPABILITY ", 1)[1].split(b"]")[0].split())


async def test_capabilities_before_and_after_starttls(listeners: Listeners) -> None:
    def scenario() -> tuple[tuple[str, ...], tuple[str, ...], str, tuple[str, ...]]:
        client = imaplib.IMAP4("127.0.0.1", listeners.imap_port)
        before = client.capabilities
        with pytest.raises(imaplib.IMAP4.error) as refused:
            client.login("sales@acme.test", "sales-pass-1")
        client.starttls(client_tls())
        after = client.capabilities
        client.login("sales@acme.test", "sales-pass-1")
        logged_in = tuple(client.capability()[1][0].decode().upper().split())
        client.logout()
        return before, after, str(refused.value), logged_in

    before, after, refusal, logged_in = await asyncio.to_thread(scenario)
    assert {
        "STARTTLS",
        "LOGINDISABLED",
        "IMAP4REV1",
        "IMAP4REV2",
        "IDLE",
        "UIDPLUS",
        "MOVE",
    } <= set(before)
    assert "AUTH=PLAIN" not in before
    assert "PRIVACYREQUIRED" in refusal
    assert "AUTH=PLAIN" in after and "STARTTLS" not in after and "LOGINDISABLED" not in after
    assert "AUTH=PLAIN" not in logged_in and "CONDSTORE" in logged_in


async def test_greeting_and_transcript_on_implicit_tls(listeners: Listeners) -> None:
    client = await Raw.connect(listeners.imaps_port)
    try:
        assert client.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
        assert b"AUTH=PLAIN" in client.greeting and b"STARTTLS" not in client.greeting
        lines = await client.run(b"a1", b"CAPABILITY")
        assert (
            lines[0].startswith(b"* CAPABILITY IMAP4rev1 ")
            and lines[1] == b"a1 OK CAPABILITY completed\r\n"
        )
        lines = await client.run(b"a2", b'ID ("name" "test")')
        assert lines == [
            b'* ID ("name" "Mailmark" "vendor" "Mailmark")\r\n',
            b"a2 OK ID completed\r\n",
        ]
        lines = await client.run(b"a3", b"NAMESPACE")
        assert lines[-1].startswith(b"a3 BAD")  # not before login
        lines = await client.run(b"a4", b"LOGOUT")
        assert lines == [b"* BYE Logging out\r\n", b"a4 OK LOGOUT completed\r\n"]
        assert await client.reader.read() == b""
    finally:
        await client.close()


async def test_authenticate_plain_with_sasl_ir_and_continuation(listeners: Listeners) -> None:
    token = base64.b64encode(b"\x00sales@acme.test\x00sales-pass-1")
    client = await Raw.connect(listeners.imaps_port)
    try:
        lines = await client.run(b"a1", b"AUTHENTICATE PLAIN " + token)
        assert lines[-1].startswith(b"a1 OK [CAPABILITY IMAP4rev1 "), lines
        assert b"AUTH=PLAIN" not in lines[-1]
        lines = await client.run(b"a2", b"NAMESPACE")
        assert lines == [b'* NAMESPACE (("" "/")) NIL NIL\r\n', b"a2 OK NAMESPACE completed\r\n"]
        lines = await client.run(b"a3", b"AUTHENTICATE PLAIN " + token)
        assert lines[-1].startswith(b"a3 BAD")  # already authenticated
    finally:
        await client.close()
    client = await Raw.connect(listeners.imaps_port)
    try:
        await client.send(b"b1 AUTHENTICATE PLAIN\r\n")
        assert await client.line() == b"+ \r\n"
        await client.send(base64.b64encode(b"\x00sales@acme.test\x00wrong") + b"\r\n")
        assert (await client.line()).startswith(b"b1 NO [AUTHENTICATIONFAILED]")
        await client.send(b"b2 AUTHENTICATE PLAIN\r\n")
        assert await client.line() == b"+ \r\n"
        await client.send(b"*\r\n")
        assert (await client.line()).startswith(b"b2 BAD")
        lines = await client.run(b"b3", b"AUTHENTICATE PLAIN !!!notbase64")
        assert lines[-1].startswith(b"b3 BAD")
        lines = await client.run(
            b"b4",
            b"AUTHENTICATE PLAIN "
            + base64.b64encode(b"other@acme.test\x00sales@acme.test\x00sales-pass-1"),
        )
        assert lines[-1].startswith(b"b4 NO [AUTHORIZATIONFAILED]")
        lines = await client.run(b"b5", b"AUTHENTICATE CRAM-MD5")
        assert lines[-1].startswith(b"b5 NO")
        await client.ok(
            b"b6",
            b"AUTHENTICATE PLAIN "
            + base64.b64encode(b"sales@acme.test\x00sales@acme.test\x00sales-pass-1"),
        )
    finally:
        await client.close()


async def test_authenticate_refused_before_tls(listeners: Listeners) -> None:
    client = await Raw.connect(listeners.imap_port, tls=False)
    try:
        token = base64.b64encode(b"\x00sales@acme.test\x00sales-pass-1")
        lines = await client.run(b"a1", b"AUTHENTICATE PLAIN " + token)
        assert lines[-1].startswith(b"a1 NO [PRIVACYREQUIRED]")
    finally:
        await client.close()


async def test_failed_logins_are_throttled_per_ip(listeners: Listeners) -> None:
    client = await Raw.connect(listeners.imaps_port)
    try:
        for n in range(10):
            lines = await client.run(b"f%d" % n, b'LOGIN "sales@acme.test" "guess"')
            assert lines[-1].startswith(b"f%d NO [AUTHENTICATIONFAILED]" % n), lines
        lines = await client.run(b"f10", b'LOGIN "sales@acme.test" "sales-pass-1"')
        # The right password no longer helps: the address is refused without checking it.
        assert lines[-1].startswith(b"f10 NO [UNAVAILABLE]"), lines
    finally:
        await client.close()


async def test_starttls_discards_pipelined_commands(listeners: Listeners) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", listeners.imap_port)
    try:
        await reader.readline()
        # A man in the middle appends a command after STARTTLS in clear text.
        writer.write(b"a1 STARTTLS\r\na2 CAPABILITY\r\n")
        await writer.drain()
        assert await reader.readline() == b"a1 OK Begin TLS negotiation now\r\n"
        await writer.start_tls(client_tls())
        writer.write(b"a3 NOOP\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), 5)
        assert answer == b"a3 OK NOOP completed\r\n", answer  # nothing for a2
        writer.write(b"a4 STARTTLS\r\n")
        await writer.drain()
        assert (await reader.readline()).startswith(b"a4 BAD")
    finally:
        writer.close()


async def test_connections_per_ip_are_limited(listeners: Listeners, world: World) -> None:
    limit = world.services.settings.max_connections_per_ip
    # Any loopback-range address but 127.0.0.1, which is exempt (local tools, a proxy).
    source = "127.0.0.2"
    clients = [
        await Raw.connect(listeners.imap_port, tls=False, source=source) for _ in range(limit)
    ]
    try:
        assert all(c.greeting.startswith(b"* OK") for c in clients)
        extra = await Raw.connect(listeners.imap_port, tls=False, source=source)
        assert extra.greeting.startswith(b"* BYE"), extra.greeting
        await extra.close()
    finally:
        for client in clients:
            await client.close()
    await asyncio.sleep(0.2)
    again = await Raw.connect(listeners.imap_port, tls=False, source=source)
    assert again.greeting.startswith(b"* OK")
    await again.close()


async def test_enable_and_wrong_state_commands(listeners: Listeners) -> None:
    client = await Raw.connect(listeners.imaps_port)
    try:
        lines = await client.run(b"a1", b"ENABLE IMAP4rev2")
        assert lines[-1].startswith(b"a1 BAD")  # not before login
        await client.login()
        lines = await client.ok(b"a2", b"ENABLE IMAP4rev2 CONDSTORE X-UNKNOWN")
        assert lines[0] == b"* ENABLED IMAP4rev2 CONDSTORE\r\n"
        lines = await client.ok(b"a3", b"ENABLE IMAP4rev2")
        assert lines[0] == b"* ENABLED\r\n"
        lines = await client.run(b"a4", b"FETCH 1 FLAGS")
        assert lines == [b"a4 BAD No mailbox selected\r\n"]
        lines = await client.run(b"a5", b"LOGIN a b")
        assert lines[-1].startswith(b"a5 BAD")
        lines = await client.run(b"a6", b"FROB")
        assert lines == [b"a6 BAD unknown command FROB\r\n"]
        await client.ok(b"a7", b"NOOP")
    finally:
        await client.close()

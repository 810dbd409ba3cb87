"""UTF8=ACCEPT (RFC 6855) with ENABLE (RFC 5161), byte for byte over IMAPS: UTF-8 mailbox names,
APPEND's UTF8 data item, SEARCH's charset rules, raw UTF-8 header fields, and the modified UTF-7
a client that did not enable it still gets."""

from __future__ import annotations

import asyncio
import imaplib

from mailmark.bootstrap import Listeners
from tests.imap.raw import Raw, session
from tests.support.tls import client_tls
from tests.support.world import World

NAME = "Répertoire/日本"
MUTF7_NAME = b"R&AOk-pertoire/&ZeVnLA-"
# An SMTPUTF8 message (RFC 6532): raw UTF-8 in the header fields, no encoded words.
UTF8_MESSAGE = (
    "From: Zoë <zoë@exämple.test>\r\nTo: sales@acme.test\r\nSubject: Grüße aus Köln\r\n"
    "Message-ID: <1@exämple.test>\r\n\r\nHallo\r\n"
).encode()


async def test_enabled_session_names_folders_in_utf8_and_others_in_modified_utf7(
    listeners: Listeners, world: World
) -> None:
    async with session(listeners.imaps_port) as legacy, session(listeners.imaps_port) as modern:
        assert b" UTF8=ACCEPT " in (await modern.ok(b"C0", b"CAPABILITY"))[0]
        assert await modern.ok(b"E1", b"ENABLE UTF8=ACCEPT") == [
            b"* ENABLED UTF8=ACCEPT\r\n",
            b"E1 OK ENABLE completed\r\n",
        ]
        # Enabling it again reports nothing new (RFC 5161 §3.1).
        assert await modern.ok(b"E2", b"ENABLE UTF8=ACCEPT") == [
            b"* ENABLED\r\n",
            b"E2 OK ENABLE completed\r\n",
        ]
        quoted = b'"' + NAME.encode() + b'"'
        await modern.ok(b"C1", b"CREATE " + quoted)
        assert await modern.ok(b"L1", b'LIST "" "R*"') == [
            b'* LIST (\\HasChildren) "/" "R\xc3\xa9pertoire"\r\n',
            b'* LIST (\\HasNoChildren) "/" ' + quoted + b"\r\n",
            b"L1 OK LIST completed\r\n",
        ]
        # "&" is an ordinary character in a UTF-8 name, never the start of modified UTF-7.
        await modern.ok(b"C2", b'CREATE "R&D"')
        assert (await modern.ok(b"L2", b'LIST "" "R&D"'))[0] == (
            b'* LIST (\\HasNoChildren) "/" "R&D"\r\n'
        )
        # The client that did not enable it sees and names the same folders in modified UTF-7.
        assert await legacy.ok(b"L3", b'LIST "" "R*"') == [
            b'* LIST (\\HasNoChildren) "/" "R&-D"\r\n',
            b'* LIST (\\HasChildren) "/" "R&AOk-pertoire"\r\n',
            b'* LIST (\\HasNoChildren) "/" "' + MUTF7_NAME + b'"\r\n',
            b"L3 OK LIST completed\r\n",
        ]
        assert (await legacy.ok(b"S1", b'STATUS "' + MUTF7_NAME + b'" (MESSAGES)'))[0] == (
            b'* STATUS "' + MUTF7_NAME + b'" (MESSAGES 0)\r\n'
        )
        assert (await modern.ok(b"S2", b"STATUS " + quoted + b" (MESSAGES)"))[0] == (
            b"* STATUS " + quoted + b" (MESSAGES 0)\r\n"
        )


async def test_enable_utf8_accept_only_in_the_authenticated_state(
    listeners: Listeners, world: World
) -> None:
    async with session(listeners.imaps_port, select="INBOX") as client:
        assert await client.run(b"E1", b"ENABLE UTF8=ACCEPT") == [
            b"E1 BAD ENABLE UTF8=ACCEPT is only allowed in the authenticated state\r\n"
        ]
        # Still a modified UTF-7 session.
        await client.ok(b"C1", b'CREATE "R&AOk-sum&AOk-"')
        assert (await client.ok(b"L1", b'LIST "" "R*"'))[0] == (
            b'* LIST (\\HasNoChildren) "/" "R&AOk-sum&AOk-"\r\n'
        )


async def test_append_utf8_data_item_and_raw_utf8_headers_come_back_as_they_are(
    listeners: Listeners, world: World
) -> None:
    async with session(listeners.imaps_port) as client:
        head = b"A1 APPEND INBOX UTF8 (~{%d}\r\n" % len(UTF8_MESSAGE)
        # Before ENABLE the UTF8 data item is refused (RFC 6855 §4); the literal is still read.
        await client.send(head)
        assert (await client.line()).startswith(b"+ ")
        await client.send(UTF8_MESSAGE + b")\r\n")
        assert await client.until(b"A1") == [
            b"A1 BAD ENABLE UTF8=ACCEPT before sending a UTF8 data item\r\n"
        ]
        await client.ok(b"E1", b"ENABLE UTF8=ACCEPT")
        await client.send(head.replace(b"A1", b"A2").replace(b"}", b"+}") + UTF8_MESSAGE + b")\r\n")
        assert (await client.until(b"A2"))[-1] == b"A2 OK [APPENDUID %d 1] APPEND completed\r\n" % (
            await _uidvalidity(client)
        )
        await client.ok(b"S1", b"SELECT INBOX")
        lines = await client.ok(
            b"F1", b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] ENVELOPE)"
        )
        header = "From: Zoë <zoë@exämple.test>\r\nSubject: Grüße aus Köln\r\n\r\n".encode()
        assert b"BODY[HEADER.FIELDS (SUBJECT FROM)] {%d}\r\n%s" % (len(header), header) in lines[0]
        # The ENVELOPE carries the UTF-8 text unchanged, not decoded or replaced.
        assert "Grüße aus Köln".encode() in lines[0]
        assert "zoë".encode() in lines[0] and "exämple.test".encode() in lines[0]
        # SEARCH takes UTF-8 strings without a charset, and refuses one now (RFC 6855 §3).
        assert await client.ok(b"R1", 'SEARCH SUBJECT "Grüße"'.encode()) == [
            b"* SEARCH 1\r\n",
            b"R1 OK SEARCH completed\r\n",
        ]
        assert await client.run(b"R2", b"SEARCH CHARSET UTF-8 SUBJECT x") == [
            b"R2 BAD CHARSET conflicts with UTF8=ACCEPT (RFC 6855 \xc2\xa73)\r\n"
        ]
        # SORT's mandatory charset may only say UTF-8 (RFC 6855 erratum 4029).
        assert await client.ok(b"O1", b"SORT (SUBJECT) UTF-8 ALL") == [
            b"* SORT 1\r\n",
            b"O1 OK SORT completed\r\n",
        ]
        assert (await client.run(b"O2", b"SORT (SUBJECT) US-ASCII ALL"))[-1].startswith(b"O2 BAD")


async def test_search_charset_is_still_accepted_without_utf8_accept(
    listeners: Listeners, world: World
) -> None:
    async with session(listeners.imaps_port, select="INBOX") as client:
        assert await client.ok(b"R1", b"SEARCH CHARSET UTF-8 SUBJECT x") == [
            b"* SEARCH\r\n",
            b"R1 OK SEARCH completed\r\n",
        ]
        assert (await client.run(b"R2", b"SEARCH CHARSET KOI8-R SUBJECT x")) == [
            b"R2 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
        ]


async def _uidvalidity(client: Raw) -> int:
    lines = await client.ok(b"V0", b"STATUS INBOX (UIDVALIDITY)")
    return int(lines[0].rsplit(b" ", 1)[1].rstrip(b")\r\n"))


def _imaplib_round_trip(port: int) -> list[bytes]:
    with imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls()) as client:
        client.login("sales@acme.test", "sales-pass-1")
        client.enable("UTF8=ACCEPT")
        assert client.create('"Überweisungen"')[0] == "OK"
        status, listed = client.list('""', '"Ü*"')
        assert status == "OK"
        return [line for line in listed if isinstance(line, bytes)]


async def test_imaplib_creates_and_lists_a_utf8_name(listeners: Listeners, world: World) -> None:
    """Python's imaplib sends UTF-8 names once it enabled UTF8=ACCEPT."""
    listed = await asyncio.to_thread(_imaplib_round_trip, listeners.imaps_port)
    assert listed == ['(\\HasNoChildren) "/" "Überweisungen"'.encode()]

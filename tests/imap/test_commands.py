"""IMAP commands against the real store over real sockets: folders, SELECT, APPEND, FETCH, STORE,
SEARCH, COPY/MOVE, EXPUNGE, concurrent sessions and IDLE. Byte-level transcripts where the exact
response matters, imaplib and aioimaplib where a real client's view does."""

from __future__ import annotations

import asyncio
import dataclasses
import imaplib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aioimaplib
import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Listeners, start_listeners
from mailmark.config import Settings
from mailmark.storage.dialect import Dialect
from tests.imap.raw import NO_POLL, Raw, session
from tests.support.tls import client_tls
from tests.support.world import World, stored_copies


# Sessions here never poll for other nodes' changes: every wake below comes from the folder signals.
@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"imap_poll_interval": NO_POLL})


# A guard against a hang, not a speed bound: without a poll, only a signal can wake the session.
WAKE_TIMEOUT = 30.0

SIMPLE = (
    b"From: Alice <alice@example.org>\r\nTo: sales@acme.test\r\nSubject: Quarterly numbers\r\n"
    b"Date: Mon, 02 Feb 2026 10:00:00 +0000\r\nMessage-ID: <q1@example.org>\r\n\r\n"
    b"Hello sales,\r\nthe numbers are in.\r\n"
)
ALTERNATIVE = (
    b"From: Bob <bob@example.org>\r\nTo: sales@acme.test\r\nSubject: Report attached\r\n"
    b"Date: Tue, 03 Feb 2026 11:00:00 +0000\r\nMessage-ID: <r1@example.org>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'
    b"--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain pineapple body\r\n"
    b"--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML body</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\nContent-Type: application/pdf; name=report.pdf\r\n"
    b"Content-Disposition: attachment; filename=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--outer--\r\n"
)


async def deliver(world: World, raw: bytes) -> None:
    await world.services.delivery.deliver(
        raw, recipients=[world.sales], mail_from="alice@example.org"
    )


@pytest.fixture
async def inbox(listeners: Listeners, world: World) -> World:
    """sales@ has two messages in INBOX: a plain one (UID 1) and a multipart one (UID 2)."""
    await deliver(world, SIMPLE)
    await deliver(world, ALTERNATIVE)
    return world


def untagged(lines: list[bytes], word: bytes) -> list[bytes]:
    return [line for line in lines if line.startswith(b"* ") and word in line.split(b"\r\n")[0]]


async def test_list_lsub_and_special_use(listeners: Listeners, world: World) -> None:
    async with session(listeners.imaps_port) as c:
        lines = await c.ok(b"a1", b'LIST "" "*"')
        assert lines[:-1] == [
            b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n',
            b'* LIST (\\HasNoChildren \\Archive) "/" "Archive"\r\n',
            b'* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"\r\n',
            b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"\r\n',
            b'* LIST (\\HasNoChildren) "/" "Outbox"\r\n',
            b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n',
            b'* LIST (\\HasNoChildren \\Trash) "/" "Trash"\r\n',
        ], lines
        lines = await c.ok(b"a2", b'LIST "" ""')
        assert lines[0] == b'* LIST (\\Noselect) "/" ""\r\n'
        lines = await c.ok(b"a3", b'LIST (SPECIAL-USE) "" "*" RETURN (SUBSCRIBED)')
        assert [line.split(b'"/"')[1].strip() for line in lines[:-1]] == [
            b'"Archive"',
            b'"Drafts"',
            b'"Junk"',
            b'"Sent"',
            b'"Trash"',
        ]
        assert all(b"\\Subscribed" in line for line in lines[:-1])
        lines = await c.ok(b"a4", b'LIST "" "inbox"')
        assert lines[0] == b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n'
        await c.ok(b"a5", b"CREATE Projects/2026")
        lines = await c.ok(b"a6", b'LIST "" "%"')
        assert b'* LIST (\\HasChildren) "/" "Projects"\r\n' in lines
        assert not any(b"2026" in line for line in lines)
        lines = await c.ok(b"a7", b'LIST "Projects/" "%"')
        assert lines[0] == b'* LIST (\\HasNoChildren) "/" "Projects/2026"\r\n'
        await c.ok(b"a8", b"UNSUBSCRIBE Junk")
        lines = await c.ok(b"a9", b'LSUB "" "*"')
        names = [line.rsplit(b" ", 1)[1].strip() for line in lines[:-1]]
        assert b'"Junk"' not in names and b'"Sent"' in names and lines[0].startswith(b"* LSUB ()")
        lines = await c.ok(b"b1", b'LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT))')
        assert b'* STATUS "INBOX" (MESSAGES 0 UIDNEXT 1)\r\n' in lines


async def test_create_rename_delete(listeners: Listeners, world: World) -> None:
    async with session(listeners.imaps_port) as c:
        await c.ok(b"a1", b"CREATE Records")
        lines = await c.run(b"a2", b"CREATE records/")
        lines = await c.run(b"a3", b"CREATE Records")
        assert lines[-1].startswith(b"a3 NO [ALREADYEXISTS]"), lines
        await c.ok(b"a4", b'CREATE "Entw&APw-rfe"')
        lines = await c.ok(b"a5", b'LIST "" "Entw*"')
        assert lines[0] == b'* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"\r\n'
        await c.ok(b"a6", b"RENAME Records Old/Records")
        lines = await c.ok(b"a7", b'LIST "" "*Records"')
        assert [line.rsplit(b" ", 1)[1] for line in lines[:-1]] == [b'"Old/Records"\r\n']
        lines = await c.run(b"a8", b"DELETE INBOX")
        assert lines[-1].startswith(b"a8 NO"), lines
        lines = await c.run(b"a9", b"DELETE Nope")
        assert lines[-1].startswith(b"a9 NO [NONEXISTENT]"), lines
        await c.ok(b"b1", b"DELETE Old/Records")
        lines = await c.ok(b"b2", b'LIST "" "*Records"')
        assert lines == [b"b2 OK LIST completed\r\n"]
        lines = await c.run(b"b3", b'CREATE "bad&name"')
        assert lines[-1].startswith(b"b3 NO"), lines


async def _seen_by_another_session(listeners: Listeners) -> None:
    """Select INBOX once elsewhere, so that its messages are not \\Recent to the test's session
    (RFC 3501 §2.3.2) and its FLAGS are only the stored ones."""
    async with session(listeners.imaps_port, select="INBOX"):
        pass


async def test_select_and_examine_responses(listeners: Listeners, inbox: World) -> None:
    async with session(listeners.imaps_port) as c:
        lines = await c.ok(b"s1", b"SELECT INBOX")
        text = b"".join(lines)
        assert lines[0] == b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n"
        assert b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)]" in text
        assert b"* 2 EXISTS\r\n" in lines and b"* 2 RECENT\r\n" in lines
        assert b"* OK [UNSEEN 1]" in text
        validity = re.search(rb"\* OK \[UIDVALIDITY (\d+)\]", text)
        assert validity and int(validity[1]) > 0
        assert b"* OK [UIDNEXT 3]" in text and re.search(rb"\* OK \[HIGHESTMODSEQ \d+\]", text)
        assert lines[-1] == b"s1 OK [READ-WRITE] SELECT completed\r\n"
        lines = await c.ok(b"s2", b"EXAMINE INBOX")
        assert b"* OK [PERMANENTFLAGS ()]" in b"".join(lines)
        assert lines[-1] == b"s2 OK [READ-ONLY] EXAMINE completed\r\n"
        lines = await c.run(b"s3", b"STORE 1 +FLAGS (\\Seen)")
        assert lines[-1].startswith(b"s3 NO [READ-ONLY]")
        lines = await c.run(b"s4", b"SELECT Nope")
        assert lines[-1].startswith(b"s4 NO [NONEXISTENT]")
        lines = await c.run(b"s5", b"FETCH 1 FLAGS")
        assert lines[-1].startswith(b"s5 BAD")  # the failed SELECT deselected
        await c.ok(b"s6", b"ENABLE IMAP4rev2")
        lines = await c.ok(b"s7", b"SELECT Inbox")
        assert b"* 0 RECENT\r\n" not in lines and b'* LIST () "/" "INBOX"\r\n' in lines
        lines = await c.ok(
            b"s8", b"STATUS Sent (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)"
        )
        assert re.match(
            rb'\* STATUS "Sent" \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0 HIGHESTMODSEQ \d+ SIZE 0\)',
            lines[1],
        )
        # RFC 7162 §3.1: the first CONDSTORE-enabling command, with INBOX selected.
        assert re.match(rb"\* OK \[HIGHESTMODSEQ \d+\] Highest", lines[0]), lines
        lines = await c.ok(b"s9", b"SELECT Sent")
        assert lines[0] == b"* OK [CLOSED] Previous mailbox closed\r\n"


async def test_append_with_flags_and_date_round_trips_byte_exact(
    listeners: Listeners, world: World
) -> None:
    async with session(listeners.imaps_port) as c:
        await c.send(
            b'a1 APPEND Drafts (\\Draft $Work) "05-Mar-2026 08:09:10 +0100" {%d}\r\n'
            % len(ALTERNATIVE)
        )
        assert (await c.line()).startswith(b"+ ")
        await c.send(ALTERNATIVE + b"\r\n")
        lines = await c.until(b"a1")
        done = re.match(rb"a1 OK \[APPENDUID (\d+) 1\] ", lines[-1])
        assert done, lines
        lines = await c.ok(b"a2", b"SELECT Drafts")
        assert b"$Work" in lines[0]
        assert f"[UIDVALIDITY {done[1].decode()}]".encode() in b"".join(lines)
        lines = await c.ok(b"a3", b"UID FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        assert lines[0] == (
            b'* 1 FETCH (UID 1 FLAGS (\\Draft $Work \\Recent) INTERNALDATE " 5-Mar-2026 07:09:10 +0000" '
            b"RFC822.SIZE %d BODY[] {%d}\r\n"
            % (len(ALTERNATIVE), len(ALTERNATIVE))
            + ALTERNATIVE
            + b")\r\n"
        ), lines[0][:300]
        lines = await c.run(b"a4", b"APPEND Nope {1+}\r\nx")
        assert lines[-1].startswith(b"a4 NO [TRYCREATE]"), lines
        # APPEND to Sent stores the message; nothing is queued for sending.
        await c.ok(b"a5", b"APPEND Sent {%d+}\r\n" % len(SIMPLE) + SIMPLE)
    copies = await stored_copies(world.services, world.sales)
    assert sorted(copy.folder for copy in copies) == ["Drafts", "Sent"]
    assert await world.services.queue_admin.list() == []


async def test_mx_delivery_body_is_trace_prefix_plus_original(
    listeners: Listeners, inbox: World
) -> None:
    stored = await stored_copies(inbox.services, inbox.sales)

    def scenario() -> list[bytes]:
        client = imaplib.IMAP4_SSL("127.0.0.1", listeners.imaps_port, ssl_context=client_tls())
        client.login("sales@acme.test", "sales-pass-1")
        client.select("INBOX")
        bodies = []
        for uid in (b"1", b"2"):
            typ, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
            assert typ == "OK"
            bodies.append(data[0][1])  # type: ignore[index]
        client.logout()
        return bodies

    bodies = await asyncio.to_thread(scenario)
    assert bodies == [copy.data for copy in stored]
    assert bodies[0].endswith(SIMPLE) and bodies[1].endswith(ALTERNATIVE)


async def test_peek_partials_header_fields_and_seen(listeners: Listeners, inbox: World) -> None:
    await _seen_by_another_session(listeners)
    async with session(listeners.imaps_port, select="INBOX") as c:
        lines = await c.ok(b"f1", b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject From)])")
        assert lines[0] == (
            b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {63}\r\n"
            b"From: Alice <alice@example.org>\r\nSubject: Quarterly numbers\r\n\r\n)\r\n"
        ), lines[0]
        lines = await c.ok(b"f2", b"FETCH 1 (FLAGS)")
        assert lines[0] == b"* 1 FETCH (FLAGS ())\r\n"
        lines = await c.ok(b"f3", b"FETCH 1 BODY.PEEK[TEXT]<0.5>")
        assert lines[0] == b"* 1 FETCH (BODY[TEXT]<0> {5}\r\nHello)\r\n"
        lines = await c.ok(b"f4", b"FETCH 1 BODY.PEEK[TEXT]<6.100>")
        assert (
            lines[0] == b"* 1 FETCH (BODY[TEXT]<6> {29}\r\nsales,\r\nthe numbers are in.\r\n)\r\n"
        )
        lines = await c.ok(b"f5", b"FETCH 1 BODY.PEEK[]<0.100>")
        assert re.match(rb"\* 1 FETCH \(BODY\[\]<0> \{100\}\r\n", lines[0])
        lines = await c.ok(b"f6", b"FETCH 1 BODY[TEXT]")
        assert lines[0] == (
            b"* 1 FETCH (BODY[TEXT] {35}\r\nHello sales,\r\nthe numbers are in.\r\n FLAGS (\\Seen))\r\n"
        ), lines[0]
        lines = await c.ok(b"f7", b"FETCH 1:2 (FLAGS)")
        assert lines[:2] == [b"* 1 FETCH (FLAGS (\\Seen))\r\n", b"* 2 FETCH (FLAGS ())\r\n"]
        lines = await c.ok(
            b"f8", b"FETCH 2 (BODY.PEEK[1.1] BODY.PEEK[1.2.MIME] BINARY.PEEK[2] BINARY.SIZE[2])"
        )
        assert lines[0] == (
            b"* 2 FETCH (BODY[1.1] {20}\r\nPlain pineapple body BODY[1.2.MIME] {42}\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n BINARY[2] {9}\r\n%PDF-1.4\n BINARY.SIZE[2] 9)\r\n"
        ), lines[0]
        lines = await c.ok(b"f9", b"FETCH 2 RFC822.HEADER")
        assert (
            lines[0].startswith(b"* 2 FETCH (RFC822.HEADER {")
            and b"Subject: Report attached" in lines[0]
        )


async def test_bodystructure_of_alternative_with_attachment(
    listeners: Listeners, inbox: World
) -> None:
    async with session(listeners.imaps_port, select="INBOX") as c:
        lines = await c.ok(b"b1", b"UID FETCH 2 (BODYSTRUCTURE ENVELOPE)")
        assert lines[0].startswith(
            b'* 2 FETCH (UID 2 BODYSTRUCTURE ((("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 20 1 NIL NIL NIL NIL)'
            b'("text" "html" ("charset" "utf-8") NIL NIL "7BIT" 16 1 NIL NIL NIL NIL) "alternative" ("boundary" "inner") '
            b'NIL NIL NIL)("application" "pdf" ("name" "report.pdf") NIL NIL "base64" 12 NIL ("attachment" '
            b'("filename" "report.pdf")) NIL NIL) "mixed" ("boundary" "outer") NIL NIL NIL) ENVELOPE '
            b'("Tue, 03 Feb 2026 11:00:00 +0000" "Report attached" (("Bob" NIL "bob" "example.org"))'
        ), lines[0]
        assert lines[0].endswith(
            b' ((NIL NIL "sales" "acme.test")) NIL NIL NIL "<r1@example.org>"))\r\n'
        )
        lines = await c.ok(b"b2", b"FETCH 1 BODY")
        assert (
            lines[0]
            == b'* 1 FETCH (BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 35 2))\r\n'
        )


async def test_search_combinations(listeners: Listeners, inbox: World) -> None:
    async with session(listeners.imaps_port, select="INBOX") as c:
        await c.ok(b"x0", b"STORE 2 +FLAGS (\\Flagged)")

        async def found(criteria: bytes) -> bytes:
            lines = await c.ok(b"q", criteria)
            return untagged(lines, b"SEARCH")[0].strip()

        assert await found(b"SEARCH ALL") == b"* SEARCH 1 2"
        assert await found(b"SEARCH FLAGGED") == b"* SEARCH 2"
        assert await found(b"SEARCH UNFLAGGED SUBJECT quarterly") == b"* SEARCH 1"
        assert await found(b"SEARCH OR FROM bob SUBJECT numbers") == b"* SEARCH 1 2"
        assert await found(b"SEARCH NOT FROM bob") == b"* SEARCH 1"
        assert await found(b"SEARCH TEXT pineapple") == b"* SEARCH 2"
        assert await found(b'SEARCH BODY "numbers are"') == b"* SEARCH 1"
        assert await found(b"SEARCH HEADER Message-ID r1@example.org") == b"* SEARCH 2"
        assert await found(b"SEARCH SENTBEFORE 3-Feb-2026") == b"* SEARCH 1"
        assert await found(b"SEARCH SENTSINCE 3-Feb-2026 LARGER 200") == b"* SEARCH 2"
        assert await found(b"SEARCH 2:*") == b"* SEARCH 2"
        assert await found(b"SEARCH 5") == b"* SEARCH"
        assert await found(b"UID SEARCH UID 2:* UNSEEN") == b"* SEARCH 2"
        assert (
            await found(b"SEARCH CHARSET UTF-8 (OR SEEN FLAGGED) SMALLER 100000") == b"* SEARCH 2"
        )
        lines = await c.ok(b"e1", b"UID SEARCH RETURN (MIN MAX COUNT ALL) ALL")
        assert lines[0] == b'* ESEARCH (TAG "e1") UID MIN 1 MAX 2 ALL 1:2 COUNT 2\r\n'
        lines = await c.ok(b"e2", b"SEARCH RETURN () FROM nobody")
        assert lines[0] == b'* ESEARCH (TAG "e2")\r\n'
        lines = await c.ok(b"e3", b"SEARCH RETURN (SAVE) FLAGGED")
        assert lines == [b"e3 OK SEARCH completed\r\n"]
        lines = await c.ok(b"e4", b"FETCH $ (UID)")
        assert lines[0] == b"* 2 FETCH (UID 2)\r\n"
        lines = await c.run(b"e5", b"SEARCH CHARSET KOI8-R ALL")
        assert lines[-1].startswith(b"e5 NO [BADCHARSET (UTF-8 US-ASCII)]")
        lines = await c.ok(b"e6", b"SEARCH MODSEQ 1")
        # RFC 7162 §3.1: the first CONDSTORE-enabling command reports HIGHESTMODSEQ first.
        assert re.match(rb"\* OK \[HIGHESTMODSEQ \d+\] Highest", lines[0]), lines
        assert re.match(rb"\* SEARCH 1 2 \(MODSEQ \d+\)", lines[1]), lines


async def test_store_modes_silent_and_unchangedsince(listeners: Listeners, inbox: World) -> None:
    await _seen_by_another_session(listeners)
    async with session(listeners.imaps_port, select="INBOX") as c:
        lines = await c.ok(b"t1", b"STORE 1 +FLAGS (\\Seen $Label)")
        assert lines[0] == b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Label)\r\n"
        assert b"* 1 FETCH (FLAGS (\\Seen $Label))\r\n" in lines
        lines = await c.ok(b"t2", b"STORE 1 -FLAGS (\\seen)")
        assert lines[0] == b"* 1 FETCH (FLAGS ($Label))\r\n"
        lines = await c.ok(b"t3", b"UID STORE 1:2 FLAGS (\\Answered)")
        assert lines[:2] == [
            b"* 1 FETCH (FLAGS (\\Answered) UID 1)\r\n",
            b"* 2 FETCH (FLAGS (\\Answered) UID 2)\r\n",
        ]
        lines = await c.ok(b"t4", b"STORE 1:2 +FLAGS.SILENT (\\Flagged)")
        assert lines == [b"t4 OK STORE completed\r\n"]
        lines = (await c.ok(b"t5", b"FETCH 1:2 (FLAGS MODSEQ)"))[1:]
        modseq = int(re.search(rb"MODSEQ \((\d+)\)", lines[0])[1])  # type: ignore[index]
        assert lines[0].startswith(b"* 1 FETCH (FLAGS (\\Answered \\Flagged) MODSEQ (")
        await c.ok(b"t6", b"STORE 2 +FLAGS.SILENT (\\Draft)")
        lines = await c.ok(b"t7", b"STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Deleted)" % modseq)
        assert lines[-1] == b"t7 OK [MODIFIED 2] Conditional STORE failed\r\n", lines
        assert lines[0].startswith(b"* 1 FETCH (FLAGS (\\Answered \\Flagged \\Deleted) MODSEQ ("), (
            lines
        )
        lines = await c.ok(b"t8", b"FETCH 1:2 (FLAGS) (CHANGEDSINCE %d)" % modseq)
        assert len(lines) == 3 and lines[1].startswith(
            b"* 2 FETCH (FLAGS (\\Answered \\Flagged \\Draft) MODSEQ ("
        )


async def test_copy_move_and_expunge(listeners: Listeners, inbox: World) -> None:
    async with session(listeners.imaps_port, select="INBOX") as c:
        lines = await c.ok(b"c1", b"COPY 1:2 Trash")
        copied = re.match(rb"c1 OK \[COPYUID (\d+) 1:2 1:2\] COPY completed", lines[-1])
        assert copied, lines
        lines = await c.run(b"c2", b"COPY 1 Nowhere")
        assert lines[-1].startswith(b"c2 NO [TRYCREATE]")
        await c.ok(b"c3", b"CREATE Records")
        lines = await c.ok(b"c4", b"UID MOVE 1 Records")
        assert re.match(rb"\* OK \[COPYUID \d+ 1 1\]", lines[0]), lines
        assert lines[1:] == [b"* 1 EXPUNGE\r\n", b"c4 OK MOVE completed\r\n"]
        lines = await c.ok(b"c5", b"FETCH 1 (UID)")
        assert lines[0] == b"* 1 FETCH (UID 2)\r\n"
        await c.ok(b"c6", b"SELECT Trash")
        await c.ok(b"c7", b"STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        lines = await c.ok(b"c8", b"APPEND Trash {%d+}\r\n" % len(SIMPLE) + SIMPLE)
        assert lines[0] == b"* 3 EXISTS\r\n"  # RFC 9051 §6.3.12: appended to the selected folder
        lines = await c.ok(b"d1", b"UID EXPUNGE 2")
        assert lines == [b"* 2 EXPUNGE\r\n", b"d1 OK EXPUNGE completed\r\n"]
        await c.ok(b"d2", b"STORE 2 +FLAGS.SILENT (\\Deleted)")
        lines = await c.ok(b"d3", b"EXPUNGE")
        assert lines == [b"* 2 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n", b"d3 OK EXPUNGE completed\r\n"]
        lines = await c.ok(b"d4", b"UID FETCH 1:* (UID)")
        assert lines == [b"d4 OK FETCH completed\r\n"]
        lines = await c.ok(b"d5", b"STATUS Trash (MESSAGES UIDNEXT)")
        assert lines[0] == b'* STATUS "Trash" (MESSAGES 0 UIDNEXT 4)\r\n'  # UIDs are never reused
        await c.ok(b"d6", b"CLOSE")
        lines = await c.run(b"d7", b"FETCH 1 FLAGS")
        assert lines[-1].startswith(b"d7 BAD")


async def test_two_sessions_see_each_others_changes(listeners: Listeners, inbox: World) -> None:
    async with (
        session(listeners.imaps_port, select="INBOX") as one,
        session(listeners.imaps_port, select="INBOX") as two,
    ):
        await one.ok(b"a1", b"STORE 1 +FLAGS (\\Flagged)")
        lines = await two.ok(b"b1", b"NOOP")
        assert lines[0] == b"* 1 FETCH (FLAGS (\\Flagged) UID 1)\r\n"
        await deliver(inbox, SIMPLE)
        lines = await two.ok(b"b2", b"NOOP")
        assert lines[0] == b"* 3 EXISTS\r\n"
        await one.ok(b"a2", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        await one.ok(b"a3", b"EXPUNGE")
        # No EXPUNGE while answering FETCH by sequence number: numbers must not shift under it.
        lines = await two.ok(b"b3", b"FETCH 2 (UID)")
        assert lines == [b"* 2 FETCH (UID 2)\r\n", b"b3 OK FETCH completed\r\n"]
        lines = await two.ok(b"b4", b"NOOP")
        assert lines[0] == b"* 1 EXPUNGE\r\n"
        lines = await two.ok(b"b5", b"FETCH 1:* (UID)")
        assert lines[:2] == [b"* 1 FETCH (UID 2)\r\n", b"* 2 FETCH (UID 3)\r\n"]


async def test_idle_wakes_on_append_from_another_session(
    listeners: Listeners, inbox: World
) -> None:
    async with (
        session(listeners.imaps_port, select="INBOX") as idler,
        session(listeners.imaps_port) as other,
    ):
        await idler.send(b"i1 IDLE\r\n")
        assert await idler.line() == b"+ idling\r\n"
        await other.ok(b"o1", b"APPEND INBOX {%d+}\r\n" % len(SIMPLE) + SIMPLE)
        assert await idler.line(timeout=WAKE_TIMEOUT) == b"* 3 EXISTS\r\n"
        assert await idler.line() == b"* 3 RECENT\r\n"
        await other.ok(b"o2", b"SELECT INBOX")
        await other.ok(b"o3", b"STORE 1 +FLAGS (\\Seen)")
        assert (
            await idler.line(timeout=WAKE_TIMEOUT)
            == b"* 1 FETCH (FLAGS (\\Seen \\Recent) UID 1)\r\n"
        )
        await idler.send(b"DONE\r\n")
        assert await idler.line() == b"i1 OK IDLE terminated\r\n"
        await idler.ok(b"i2", b"NOOP")


async def test_aioimaplib_client(listeners: Listeners, inbox: World) -> None:
    client = aioimaplib.IMAP4_SSL("127.0.0.1", listeners.imaps_port, ssl_context=client_tls())
    await client.wait_hello_from_server()
    assert (await client.login("sales@acme.test", "sales-pass-1")).result == "OK"
    selected = await client.select("INBOX")
    assert selected.result == "OK" and b"2 EXISTS" in selected.lines
    response = await client.uid("fetch", "1:*", "(UID FLAGS RFC822.SIZE)")
    assert response.result == "OK"
    assert sum(b" FETCH (" in line for line in response.lines if isinstance(line, bytes)) == 2
    response = await client.uid_search("FROM", "bob")
    assert response.result == "OK" and response.lines[0] == b"2"
    idle = await client.idle_start(timeout=5)
    await deliver(inbox, SIMPLE)
    pushed = await client.wait_server_push(timeout=2)
    assert any(b"3 EXISTS" in line for line in pushed), pushed
    client.idle_done()
    await asyncio.wait_for(idle, 5)
    assert (await client.logout()).result == "OK"


async def test_malformed_commands_get_bad_and_the_session_goes_on(
    listeners: Listeners, inbox: World
) -> None:
    async with session(listeners.imaps_port, select="INBOX") as c:
        for text in (
            b"FETCH",
            b"FETCH 1 (FLAGS",
            b"STORE 1 *FLAGS (x)",
            b"SEARCH BLUE",
            b'LIST "unterminated',
        ):
            lines = await c.run(b"m1", text)
            assert lines[-1].startswith(b"m1 BAD "), (text, lines)
        await c.ok(b"m2", b"FETCH 1 (UID)")


@pytest.fixture
async def impatient(listeners: Listeners, world: World) -> AsyncIterator[Listeners]:
    """Listeners whose IMAP sessions are logged out after one second of silence."""
    services = world.services
    settings = services.settings.model_copy(update={"imap_idle_timeout": timedelta(seconds=1)})
    started = await start_listeners(dataclasses.replace(services, settings=settings))
    try:
        yield started
    finally:
        await started.close()


async def test_idle_ends_with_bye_when_the_autologout_timer_runs_out(impatient: Listeners) -> None:
    async with session(impatient.imaps_port, select="INBOX") as c:
        await c.send(b"i1 IDLE\r\n")
        assert await c.line() == b"+ idling\r\n"
        assert (await c.line(timeout=5)).startswith(b"* BYE Autologout")
        assert await c.reader.read() == b""


async def test_idle_refuses_anything_but_done(listeners: Listeners, inbox: World) -> None:
    async with session(listeners.imaps_port, select="INBOX") as c:
        await c.send(b"i1 IDLE\r\n")
        assert await c.line() == b"+ idling\r\n"
        await c.send(b"i2 NOOP\r\n")
        assert (await c.line()).startswith(b"i1 BAD")
        await c.ok(b"i3", b"NOOP")
        # IDLE in the authenticated state: nothing to report, DONE ends it.
        await c.ok(b"i4", b"UNSELECT")
        await c.send(b"i5 IDLE\r\n")
        assert await c.line() == b"+ idling\r\n"
        await c.send(b"done\r\n")
        assert await c.line() == b"i5 OK IDLE terminated\r\n"


async def test_qresync_resynchronises_and_reports_vanished(
    listeners: Listeners, inbox: World
) -> None:
    await deliver(inbox, SIMPLE)  # UID 3
    async with session(listeners.imaps_port) as c:
        lines = await c.run(b"q0", b"SELECT INBOX (QRESYNC (1 1))")
        assert lines[-1].startswith(b"q0 BAD")  # not enabled
        await c.ok(b"q1", b"ENABLE QRESYNC")
        lines = await c.ok(b"q2", b"SELECT INBOX")
        text = b"".join(lines)
        validity = int(re.search(rb"UIDVALIDITY (\d+)", text)[1])  # type: ignore[index]
        remembered = int(re.search(rb"HIGHESTMODSEQ (\d+)", text)[1])  # type: ignore[index]
        await c.ok(b"q3", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        lines = await c.ok(b"q4", b"EXPUNGE")
        assert lines == [b"* VANISHED 1\r\n", b"q4 OK EXPUNGE completed\r\n"]
        await c.ok(b"q5", b"STORE 1 +FLAGS.SILENT (\\Flagged)")  # UID 2
        lines = await c.ok(b"q6", b"SELECT INBOX (QRESYNC (%d %d 1:3))" % (validity, remembered))
        assert b"* VANISHED (EARLIER) 1\r\n" in lines, lines
        assert any(
            re.match(rb"\* 1 FETCH \(FLAGS \(\\Flagged\) UID 2 MODSEQ \(\d+\)\)", line)
            for line in lines
        ), lines
        assert not any(b"UID 3" in line for line in lines)  # unchanged since
        lines = await c.ok(b"q7", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % remembered)
        assert lines[0] == b"* VANISHED (EARLIER) 1\r\n", lines
        assert re.match(rb"\* 1 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ", lines[1]), lines
        lines = await c.ok(b"q8", b"SELECT INBOX (QRESYNC (%d %d))" % (validity + 1, remembered))
        assert not any(b"VANISHED" in line for line in lines)  # another UIDVALIDITY: full resync


async def test_searchres_with_min_and_max_saves_only_those(
    listeners: Listeners, inbox: World
) -> None:
    await deliver(inbox, SIMPLE)
    async with session(listeners.imaps_port, select="INBOX") as c:
        lines = await c.ok(b"r1", b"UID SEARCH RETURN (SAVE MIN MAX) ALL")
        assert lines[0] == b'* ESEARCH (TAG "r1") UID MIN 1 MAX 3\r\n'
        lines = await c.ok(b"r2", b"UID FETCH $ (FLAGS)")
        assert [line.split(b" ")[1] for line in lines[:-1]] == [b"1", b"3"]
        await c.ok(b"r3", b"SEARCH RETURN (SAVE) NOT FROM bob")
        lines = await c.ok(b"r4", b"UID SEARCH UID $")
        assert lines[0] == b"* SEARCH 1 3\r\n"


async def test_select_reads_ahead_where_contents_lie_so_a_body_fetch_reads_only_blobs(
    listeners: Listeners, inbox: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SELECT has the node read where the folder's contents lie, as Dovecot's index files
    keep it: a FETCH of bodies no session fetched before reads no message row and answers
    them byte for byte. The next SELECT reads ahead again only once the folder has new mail."""
    store = inbox.services.mailstore
    folder_id = (await store.select(inbox.sales.id, "INBOX")).folder_id
    content_reads: list[str] = []
    read_rows = Dialect.all_rows

    async def recording(self: Dialect, conn: Any, query: Any, params: Any) -> Any:
        # The reads of message rows on the hot paths go straight to the driver, where
        # SQLAlchemy's events do not see them.
        if "trace_prefix" in str(query):
            content_reads.append(str(query))
        return await read_rows(self, conn, query, params)

    monkeypatch.setattr(Dialect, "all_rows", recording)

    async def select(client: Raw) -> None:
        await client.ok(b"s", b"SELECT INBOX")
        await store.places_read(folder_id)

    async def bodies(client: Raw, uids: bytes) -> bytes:
        reads = len(content_reads)
        lines = await client.ok(b"f", b"UID FETCH " + uids + b" (BODY.PEEK[])")
        assert len(content_reads) == reads  # only the blobs were read
        return b"".join(lines)

    async with session(listeners.imaps_port) as first:
        await select(first)
        assert len(content_reads) == 1
        answer = await bodies(first, b"1:2")

        async with session(listeners.imaps_port) as second:
            await select(second)
            assert len(content_reads) == 1  # unchanged: nothing read again
            await deliver(inbox, SIMPLE)
            await select(second)
            assert len(content_reads) == 2
            new_answer = await bodies(second, b"3")
        for uid in (1, 2):
            stored = await store.message_bytes(folder_id, uid)
            assert b"{%d}\r\n" % len(stored) + stored in answer
        stored = await store.message_bytes(folder_id, 3)
        assert b"{%d}\r\n" % len(stored) + stored in new_answer


async def test_select_of_an_unchanged_folder_reuses_its_uids_and_sees_every_change(
    listeners: Listeners, inbox: World
) -> None:
    """SELECT keeps a folder's UIDs, unseen count and keywords for as long as its UIDVALIDITY,
    HIGHESTMODSEQ and UIDNEXT stay the same; each kind of change shows in the next SELECT."""
    placement_reads: list[str] = []

    def record(*args: object) -> None:
        statement = str(args[2])
        if "FROM placements" in statement and "GROUP BY" in statement:
            placement_reads.append(statement)

    engine = inbox.services.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        async with (
            session(listeners.imaps_port) as reader,
            session(listeners.imaps_port, select="INBOX") as writer,
        ):

            async def select() -> tuple[bytes, list[bytes]]:
                lines = await reader.ok(b"s", b"EXAMINE INBOX")
                answered = await reader.ok(b"f", b"FETCH 1:* (UID)")
                return b"".join(lines), [line for line in answered if line.startswith(b"* ")]

            first, uids = await select()
            reads = len(placement_reads)
            again, same_uids = await select()
            assert (again, same_uids) == (first, uids)
            assert len(placement_reads) == reads  # the second SELECT read no placements
            assert b"* OK [UNSEEN 1]" in first

            await writer.ok(b"w1", b"STORE 1 +FLAGS (\\Seen $Important)")
            text, _ = await select()
            assert b"* OK [UNSEEN 2]" in text and b"$Important" in text

            await deliver(inbox, SIMPLE)
            text, uids = await select()
            assert b"* 3 EXISTS\r\n" in text and len(uids) == 3

            await writer.ok(b"w2", b"STORE 2 +FLAGS.SILENT (\\Deleted)")
            await writer.ok(b"w3", b"EXPUNGE")
            text, uids = await select()
            assert b"* 2 EXISTS\r\n" in text
            assert uids == [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 3)\r\n"]

            await writer.ok(b"w4", b"CREATE Later")
            await writer.ok(b"w5", b"UID MOVE 1 Later")
            text, uids = await select()
            assert b"* 1 EXISTS\r\n" in text and uids == [b"* 1 FETCH (UID 3)\r\n"]
            assert len(placement_reads) == reads + 4
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)

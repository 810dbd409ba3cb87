"""A desktop client's reply appears once in Sent (issue 13, "Also fix on the way"): the server
files a copy on SMTP submission, and the client's APPEND of the same message to Sent is answered
with that copy's APPENDUID instead of a second copy; a mailbox can also turn the server's copy
off (`saveSentCopy`), for clients that always save their own."""

from __future__ import annotations

import asyncio
import imaplib
import re
import smtplib
from datetime import timedelta

import sqlalchemy as sa

from mailmark.bootstrap import Listeners
from mailmark.core.message_meta import read_index
from mailmark.storage.tables import messages, outbound_messages, placements
from tests.imap.raw import session
from tests.support.tls import client_tls
from tests.support.web import ApiClient
from tests.support.world import World, queued_rows

REPLY = (
    b"From: Sales <sales@acme.test>\r\n"
    b"To: Bob <bob@remote.test>\r\n"
    b"Subject: Re: the quote\r\n"
    b"Message-ID: <reply-7f3a@acme.test>\r\n"
    b"In-Reply-To: <quote-1@remote.test>\r\n"
    b"Date: Sun, 06 Dec 2026 01:00:00 +0000\r\n"
    b"\r\n"
    b"Thanks, agreed.\r\n"
)
_APPENDUID = re.compile(rb"^\[APPENDUID (\d+) (\d+)\] APPEND completed$")


def submit(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        smtp.starttls(context=client_tls())
        smtp.login("sales@acme.test", "sales-pass-1")
        smtp.sendmail("sales@acme.test", ["bob@remote.test"], raw)


class Client:
    """imaplib as a desktop client drives it after sending: APPEND to Sent, then look."""

    def __init__(self, port: int) -> None:
        self.imap = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls())
        self.imap.login("sales@acme.test", "sales-pass-1")

    def append(self, folder: str, raw: bytes) -> tuple[int, int]:
        typ, data = self.imap.append(folder, "(\\Seen)", None, raw)
        assert typ == "OK", data
        found = _APPENDUID.match(data[0])
        assert found, data
        return int(found[1]), int(found[2])

    def uids(self, folder: str) -> list[int]:
        typ, data = self.imap.select(folder)
        assert typ == "OK", data
        typ, data = self.imap.uid("SEARCH", "ALL")
        return [int(uid) for uid in data[0].split()]

    def validity(self, folder: str) -> int:
        _, data = self.imap.status(folder, "(UIDVALIDITY)")
        found = re.search(rb"UIDVALIDITY (\d+)", data[0])
        assert found, data
        return int(found[1])

    def close(self) -> None:
        self.imap.logout()


async def test_the_clients_append_of_a_submitted_message_answers_with_the_filed_copy(
    listeners: Listeners, world: World
) -> None:
    await asyncio.to_thread(submit, listeners.submission_port, REPLY)

    def client_side() -> None:
        client = Client(listeners.imaps_port)
        try:
            [filed] = client.uids("Sent")
            # The same bytes, as Thunderbird saves them after sending: no second copy.
            assert client.append("Sent", REPLY) == (client.validity("Sent"), filed)
            assert client.uids("Sent") == [filed]
            # Not where the server filed it: a copy like any other.
            assert client.append("Drafts", REPLY)[1] == 1
            assert client.uids("Drafts") == [1]
            # Another message to Sent is kept, of course.
            other = REPLY.replace(b"reply-7f3a@", b"reply-8b1c@")
            assert client.append("Sent", other)[1] == filed + 1
            assert client.uids("Sent") == [filed, filed + 1]
        finally:
            client.close()

    await asyncio.to_thread(client_side)


async def test_an_append_long_after_the_submission_or_after_an_expunge_is_a_new_copy(
    listeners: Listeners, world: World
) -> None:
    await asyncio.to_thread(submit, listeners.submission_port, REPLY)
    async with world.services.engine.begin() as conn:
        await conn.execute(
            outbound_messages.update().values(
                created_at=world.services.clock.now() - timedelta(minutes=11)
            )
        )

    def client_side() -> None:
        client = Client(listeners.imaps_port)
        try:
            [filed] = client.uids("Sent")
            assert client.append("Sent", REPLY)[1] == filed + 1
            # Expunged from Sent: the client's copy is what the user wants kept.
            client.imap.select("Sent")
            client.imap.uid("STORE", "1:*", "+FLAGS.SILENT", "(\\Deleted)")
            client.imap.expunge()
            assert client.append("Sent", REPLY)[1] == filed + 2
        finally:
            client.close()

    await asyncio.to_thread(client_side)


async def test_with_the_servers_sent_copy_off_only_the_clients_copy_is_kept(
    listeners: Listeners, world: World, owner_client: ApiClient
) -> None:
    shown = await owner_client.get("/api/mailboxes/sales@acme.test")
    assert shown.json()["saveSentCopy"] is True
    patched = await owner_client.patch(
        "/api/mailboxes/sales@acme.test", json={"saveSentCopy": False}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["saveSentCopy"] is False
    refused = await owner_client.patch(
        "/api/mailboxes/sales@acme.test", json={"saveSentCopy": "no"}
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["field"] == "saveSentCopy"

    await asyncio.to_thread(submit, listeners.submission_port, REPLY)
    assert await queued_rows(world) == [("sales@acme.test", "bob@remote.test", None)]

    def client_side() -> None:
        client = Client(listeners.imaps_port)
        try:
            assert client.uids("Sent") == []
            assert client.append("Sent", REPLY)[1] == 1
            assert client.uids("Sent") == [1]
        finally:
            client.close()

    await asyncio.to_thread(client_side)
    # What the API sends is still filed: the setting is about SMTP submission only.
    await world.services.sending.submit(
        mailbox=world.sales, to=["support@acme.test"], subject="From the API", text="Hi.\n"
    )
    async with world.services.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(outbound_messages.c.source, outbound_messages.c.sent_message_id).order_by(
                    outbound_messages.c.id
                )
            )
        ).all()
    assert [(row.source, row.sent_message_id is not None) for row in rows] == [
        ("submission", False),
        ("api", True),
    ]
    assert await asyncio.to_thread(lambda: Client(listeners.imaps_port).uids("Sent")) == [1, 2]


async def test_a_sent_copy_is_indexed_by_the_first_fetch_or_search_that_needs_it(
    listeners: Listeners, world: World
) -> None:
    """The server's Sent copy is stored with the metadata lists show but not its IMAP index
    (half the parsing of a send): the first FETCH of its structure computes and keeps it, for
    a session that still sees the copy after another expunged it too, and a text SEARCH finds
    copies no FETCH has indexed."""
    await world.services.sending.submit(
        mailbox=world.sales, to=["support@acme.test"], subject="Quarterly plan", text="Walrus.\n"
    )
    await asyncio.to_thread(submit, listeners.submission_port, REPLY)
    store = world.services.mailstore
    folder_id = (await store.select(world.sales.id, "Sent")).folder_id

    async def envelopes() -> list[bytes | None]:
        async with world.services.engine.connect() as conn:
            query = (
                sa.select(messages.c.envelope)
                .select_from(placements.join(messages))
                .where(placements.c.folder_id == folder_id)
                .order_by(placements.c.uid)
            )
            return list((await conn.execute(query)).scalars())

    assert await envelopes() == [None, None]
    expected = [read_index(await store.message_bytes(folder_id, uid)) for uid in (1, 2)]

    async with session(listeners.imaps_port, select="Sent") as reader:
        found = await reader.ok(b"s1", b"UID SEARCH TEXT walrus")
        assert found[0] == b"* SEARCH 1\r\n"
        assert await envelopes() == [index.envelope for index in expected]

    async with world.services.engine.begin() as conn:
        await conn.execute(
            messages.update()
            .where(messages.c.id.in_(sa.select(placements.c.message_id)))
            .values(envelope=None, bodystructure=None, body=None)
        )
    async with (
        session(listeners.imaps_port, select="Sent") as seer,
        session(listeners.imaps_port, select="Sent") as expunger,
    ):
        await expunger.ok(b"e1", b"UID STORE 2 +FLAGS.SILENT (\\Deleted)")
        await expunger.ok(b"e2", b"EXPUNGE")
        lines = await seer.ok(b"f1", b"UID FETCH 1:2 (ENVELOPE BODYSTRUCTURE)")
    for uid, index in zip((1, 2), expected, strict=True):
        assert any(
            line.startswith(b"* %d FETCH (UID %d " % (uid, uid))
            and b"ENVELOPE " + index.envelope in line
            and b"BODYSTRUCTURE " + index.bodystructure in line
            for line in lines
        ), lines

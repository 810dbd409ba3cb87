"""/api/mail, the webmail's read side, over the running listeners: folders, conversation pages,
threads, messages and parts, actions seen by a real IMAP client (and the reverse), search
operators, live counts over SSE, and the clear 400s of bad input."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import smtplib
from collections.abc import Callable
from typing import Any

import pytest

from mailmark.bootstrap import Listeners
from tests.support.tls import client_tls
from tests.support.web import ApiClient
from tests.support.world import World

ALTERNATIVE = (
    b"From: Alice Example <alice@example.org>\r\nTo: Sales <sales@acme.test>\r\n"
    b"Cc: Carol <carol@example.net>\r\nSubject: Quarterly report\r\n"
    b"Date: Tue, 03 Feb 2026 11:00:00 +0000\r\nMessage-ID: <r1@example.org>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'
    b"--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain pineapple body\r\n"
    b"--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML <b>pineapple</b></p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\nContent-Type: application/pdf; name=report.pdf\r\n"
    b"Content-Disposition: attachment; filename=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--outer--\r\n"
)


def mail(
    n: int | str,
    subject: str,
    body: str = "Hello.",
    *,
    sender: str = "Bob Sender <bob@example.org>",
    in_reply_to: str | None = None,
) -> bytes:
    lines = [
        f"From: {sender}",
        "To: sales@acme.test",
        f"Subject: {subject}",
        f"Message-ID: <m{n}@example.org>",
    ]
    if in_reply_to:
        lines += [
            f"In-Reply-To: <{in_reply_to}@example.org>",
            f"References: <{in_reply_to}@example.org>",
        ]
    return ("\r\n".join(lines) + f"\r\n\r\n{body}\r\n").encode()


async def deliver(world: World, raw: bytes) -> None:
    await world.services.delivery.deliver(
        raw, recipients=[world.sales], mail_from="bob@example.org"
    )


async def folders_of(client: ApiClient, mailbox_id: int) -> dict[str, dict[str, Any]]:
    response = await client.get(f"/api/mail/{mailbox_id}/folders")
    assert response.status_code == 200, response.text
    return {f["name"]: f for f in response.json()}


def imap_session(port: int, action: Callable[[imaplib.IMAP4], Any]) -> Any:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.starttls(client_tls())
        imap.login("sales@acme.test", "sales-pass-1")
        return action(imap)
    finally:
        imap.logout()


@pytest.fixture
def sales_id(world: World) -> int:
    assert world.sales.id is not None
    return world.sales.id


async def test_mailboxes_and_folders_in_their_order_with_archive(
    listeners: Listeners, world: World, owner_client: ApiClient, sales_id: int
) -> None:
    await deliver(world, mail(1, "One"))
    await deliver(world, mail(2, "Two"))

    mailboxes = (await owner_client.get("/api/mail/mailboxes")).json()
    assert {m["address"]: m["unread"] for m in mailboxes} == {
        "sales@acme.test": 2,
        "support@acme.test": 0,
    }
    created = await owner_client.post(
        f"/api/mail/{sales_id}/folders", json={"name": "Projects/2026"}
    )
    assert created.status_code == 201, created.text
    response = await owner_client.get(f"/api/mail/{sales_id}/folders")
    names = [(f["name"], f["role"]) for f in response.json()]
    assert names == [
        ("INBOX", "inbox"),
        ("Drafts", "drafts"),
        ("Sent", "sent"),
        ("Outbox", "outbox"),
        ("Archive", "archive"),
        ("Junk", "junk"),
        ("Trash", "trash"),
        ("Projects", None),
        ("Projects/2026", None),
    ]
    inbox = response.json()[0]
    assert (inbox["total"], inbox["unread"]) == (2, 2)


async def test_conversations_group_threads_newest_first_and_page_with_a_cursor(
    listeners: Listeners, world: World, owner_client: ApiClient, sales_id: int
) -> None:
    for n in range(1, 6):
        await deliver(world, mail(n, f"Topic {n}"))
    await deliver(
        world,
        mail("r2", "Re: Topic 2", "Answer.", sender="Dana <dana@example.org>", in_reply_to="m2"),
    )
    inbox = (await folders_of(owner_client, sales_id))["INBOX"]["id"]
    url = f"/api/mail/{sales_id}/folders/{inbox}/conversations"

    first = (await owner_client.get(url, params={"limit": 2})).json()
    assert first["total"] == 5
    assert [c["subject"] for c in first["items"]] == ["Topic 2", "Topic 5"]
    topic2 = first["items"][0]
    assert topic2["count"] == 2 and topic2["unread"] and not topic2["starred"]
    assert [p["address"] for p in topic2["participants"]] == ["bob@example.org", "dana@example.org"]
    assert topic2["participants"][0]["name"] == "Bob Sender"
    assert topic2["snippet"].startswith("Answer")
    assert topic2["latest"] == topic2["messages"][0]
    assert len(topic2["messages"]) == 2

    seen = [c["subject"] for c in first["items"]]
    cursor = first["nextCursor"]
    while cursor:
        page = (await owner_client.get(url, params={"limit": 2, "cursor": cursor})).json()
        seen += [c["subject"] for c in page["items"]]
        cursor = page["nextCursor"]
    assert seen == ["Topic 2", "Topic 5", "Topic 4", "Topic 3", "Topic 1"]

    bad = await owner_client.get(url, params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "cursor"
    too_many = await owner_client.get(url, params={"limit": 1000})
    assert too_many.status_code == 400 and "limit" in too_many.json()["error"]["message"]


async def test_thread_message_parts_and_raw(
    listeners: Listeners, world: World, owner_client: ApiClient, sales_id: int
) -> None:
    await deliver(world, ALTERNATIVE)
    inbox = (await folders_of(owner_client, sales_id))["INBOX"]["id"]
    page = (await owner_client.get(f"/api/mail/{sales_id}/folders/{inbox}/conversations")).json()
    [conversation] = page["items"]
    assert conversation["hasAttachments"]

    thread = await owner_client.get(f"/api/mail/{sales_id}/threads/{conversation['threadId']}")
    assert thread.status_code == 200, thread.text
    [message] = thread.json()["messages"]
    assert message["from"] == {"name": "Alice Example", "address": "alice@example.org"}
    assert message["to"] == [{"name": "Sales", "address": "sales@acme.test"}]
    assert message["cc"] == [{"name": "Carol", "address": "carol@example.net"}]
    assert message["bcc"] == []
    assert message["subject"] == "Quarterly report"
    assert message["messageId"] == "<r1@example.org>"
    assert message["text"].strip() == "Plain pineapple body"
    assert message["hasHtml"] and message["htmlUrl"].endswith("/body?images=0")
    assert not message["seen"] and message["role"] == "inbox" and message["folder"] == "INBOX"
    [attachment] = message["attachments"]
    assert attachment["filename"] == "report.pdf"
    assert attachment["contentType"] == "application/pdf" and not attachment["inline"]

    part = await owner_client.get(attachment["url"])
    assert part.status_code == 200
    assert part.content == b"%PDF-1.4\n"
    assert part.headers["content-disposition"].startswith("attachment;")
    assert part.headers["content-type"] == "application/octet-stream"
    shown = await owner_client.get(attachment["url"], params={"inline": 1})
    assert shown.headers["content-type"] == "application/pdf"
    assert shown.headers["content-disposition"].startswith("inline;")

    detail = await owner_client.get(f"/api/mail/{sales_id}/messages/{inbox}/{message['uid']}")
    assert detail.json() == message

    raw = await owner_client.get(message["rawUrl"])
    assert raw.headers["content-type"] == "text/plain; charset=utf-8"
    assert raw.content.endswith(ALTERNATIVE)
    downloaded = await owner_client.get(message["rawUrl"], params={"download": 1})
    assert downloaded.headers["content-type"] == "message/rfc822"
    assert "attachment" in downloaded.headers["content-disposition"]

    body = await owner_client.get(message["htmlUrl"])
    assert body.status_code == 200
    assert "<b>pineapple</b>" in body.text

    missing = await owner_client.get(f"/api/mail/{sales_id}/messages/{inbox}/999")
    assert missing.status_code == 404
    no_part = await owner_client.get(
        f"/api/mail/{sales_id}/messages/{inbox}/{message['uid']}/parts/7"
    )
    assert no_part.status_code == 404


async def test_actions_are_seen_by_imap_and_imap_changes_by_the_api(
    listeners: Listeners, world: World, owner_client: ApiClient, sales_id: int
) -> None:
    await deliver(world, mail(1, "Flag me"))
    await deliver(world, mail(2, "Move me"))
    folders = await folders_of(owner_client, sales_id)
    inbox, archive, trash = (folders[n]["id"] for n in ("INBOX", "Archive", "Trash"))
    actions = f"/api/mail/{sales_id}/actions"

    done = await owner_client.post(
        actions, json={"messages": [{"folderId": inbox, "uid": 1}], "action": "read"}
    )
    assert done.json() == {"moved": [], "updated": 1}
    await owner_client.post(
        actions, json={"messages": [{"folderId": inbox, "uid": 1}], "action": "star"}
    )
    moved = await owner_client.post(
        actions, json={"messages": [{"folderId": inbox, "uid": 2}], "action": "archive"}
    )
    assert moved.json() == {
        "moved": [{"from": {"folderId": inbox, "uid": 2}, "to": {"folderId": archive, "uid": 1}}],
        "updated": 1,
    }

    def look(imap: imaplib.IMAP4) -> tuple[Any, Any]:
        imap.select("INBOX")
        flags = imap.uid("FETCH", "1:*", "(FLAGS)")[1]
        imap.select("Archive")
        archived = imap.uid("SEARCH", "ALL")[1]
        return flags, archived

    flags, archived = await asyncio.to_thread(imap_session, listeners.imap_port, look)
    assert len(flags) == 1 and b"\\Seen" in flags[0] and b"\\Flagged" in flags[0]
    assert archived == [b"1"]

    # The reverse: IMAP unflags and moves to Trash; the API shows it.
    def change(imap: imaplib.IMAP4) -> None:
        imap.select("INBOX")
        imap.uid("STORE", "1", "-FLAGS", "(\\Flagged \\Seen)")
        imap.uid("MOVE", "1", "Trash")

    await asyncio.to_thread(imap_session, listeners.imap_port, change)
    folders = await folders_of(owner_client, sales_id)
    assert (folders["INBOX"]["total"], folders["Trash"]["total"]) == (0, 1)
    trashed = (await owner_client.get(f"/api/mail/{sales_id}/folders/{trash}/conversations")).json()
    [conversation] = trashed["items"]
    assert conversation["unread"] and not conversation["starred"]

    refused = await owner_client.post(
        actions, json={"messages": [{"folderId": archive, "uid": 1}], "action": "delete"}
    )
    assert refused.status_code == 400 and "Trash" in refused.json()["error"]["message"]
    deleted = await owner_client.post(
        actions, json={"messages": [{"folderId": trash, "uid": 1}], "action": "delete"}
    )
    assert deleted.json()["updated"] == 1
    assert (await folders_of(owner_client, sales_id))["Trash"]["total"] == 0


async def test_spam_notspam_move_and_empty(
    listeners: Listeners, world: World, owner_client: ApiClient, sales_id: int
) -> None:
    for n in range(1, 4):
        await deliver(world, mail(n, f"Offer {n}"))
    folders = await folders_of(owner_client, sales_id)
    inbox, junk = folders["INBOX"]["id"], folders["Junk"]["id"]
    actions = f"/api/mail/{sales_id}/actions"
    spam = await owner_client.post(
        actions,
        json={"messages": [{"folderId": inbox, "uid": u} for u in (1, 2, 3)], "action": "spam"},
    )
    assert spam.json()["updated"] == 3

    def junk_flags(imap: imaplib.IMAP4) -> Any:
        imap.select("Junk")
        return imap.uid("SEARCH", "KEYWORD", "$Junk")[1]

    assert await asyncio.to_thread(imap_session, listeners.imap_port, junk_flags) == [b"1 2 3"]
    back = await owner_client.post(
        actions, json={"messages": [{"folderId": junk, "uid": 1}], "action": "notspam"}
    )
    assert back.json()["moved"][0]["to"]["folderId"] == inbox
    no_target = await owner_client.post(
        actions, json={"messages": [{"folderId": junk, "uid": 2}], "action": "move"}
    )
    assert no_target.status_code == 400 and no_target.json()["error"]["field"] == "folderId"
    not_trash = await owner_client.post(f"/api/mail/{sales_id}/folders/{inbox}/empty")
    assert not_trash.status_code == 400
    emptied = await owner_client.post(f"/api/mail/{sales_id}/folders/{junk}/empty")
    assert emptied.status_code == 204
    folders = await folders_of(owner_client, sales_id)
    assert (folders["INBOX"]["total"], folders["Junk"]["total"]) == (1, 0)
    unknown = await owner_client.post(
        actions, json={"messages": [{"folderId": inbox, "uid": 1}], "action": "explode"}
    )
    assert unknown.status_code == 400
    too_many = await owner_client.post(
        actions,
        json={
            "messages": [{"folderId": inbox, "uid": u} for u in range(1, 1002)],
            "action": "read",
        },
    )
    assert too_many.status_code == 400


async def test_folder_create_rename_delete_and_special_folders_refuse(
    listeners: Listeners, world: World, owner_client: ApiClient, sales_id: int
) -> None:
    created = (
        await owner_client.post(f"/api/mail/{sales_id}/folders", json={"name": "Clients"})
    ).json()
    renamed = await owner_client.patch(
        f"/api/mail/{sales_id}/folders/{created['id']}", json={"name": "Customers"}
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Customers"
    inbox = (await folders_of(owner_client, sales_id))["INBOX"]["id"]
    refused = await owner_client.patch(f"/api/mail/{sales_id}/folders/{inbox}", json={"name": "X"})
    assert refused.status_code == 400 and "INBOX" in refused.json()["error"]["message"]
    refused = await owner_client.delete(f"/api/mail/{sales_id}/folders/{inbox}")
    assert refused.status_code == 400
    duplicate = await owner_client.post(f"/api/mail/{sales_id}/folders", json={"name": "Customers"})
    assert duplicate.status_code == 409
    bad = await owner_client.post(f"/api/mail/{sales_id}/folders", json={"name": "a*b"})
    assert bad.status_code == 400
    gone = await owner_client.delete(f"/api/mail/{sales_id}/folders/{created['id']}")
    assert gone.status_code == 204
    assert "Customers" not in await folders_of(owner_client, sales_id)


async def test_search_operators_across_folders(
    listeners: Listeners, world: World, owner_client: ApiClient, sales_id: int
) -> None:
    await deliver(world, ALTERNATIVE)  # from alice, attachment, "pineapple"
    await deliver(
        world, mail(1, "Invoice March", "Please pay the invoice.", sender="Bob <bob@example.org>")
    )
    await deliver(world, mail(2, "Lunch", "Pineapple pizza?", sender="Carl <carl@example.org>"))
    await deliver(world, mail(3, "Old junk", "pineapple offer", sender="spam@example.com"))
    folders = await folders_of(owner_client, sales_id)
    inbox, archive, junk = (folders[n]["id"] for n in ("INBOX", "Archive", "Junk"))
    actions = f"/api/mail/{sales_id}/actions"
    await owner_client.post(
        actions, json={"messages": [{"folderId": inbox, "uid": 2}], "action": "archive"}
    )
    await owner_client.post(
        actions, json={"messages": [{"folderId": inbox, "uid": 4}], "action": "spam"}
    )
    await owner_client.post(
        actions, json={"messages": [{"folderId": inbox, "uid": 3}], "action": "star"}
    )

    async def subjects(q: str) -> list[str]:
        response = await owner_client.get(f"/api/mail/{sales_id}/search", params={"q": q})
        assert response.status_code == 200, (q, response.text)
        return sorted(c["subject"] for c in response.json()["items"])

    assert await subjects("pineapple") == ["Lunch", "Quarterly report"]
    assert await subjects("pineapple in:junk") == ["Old junk"]
    assert await subjects("invoice") == ["Invoice March"]  # found in Archive
    assert await subjects("from:alice") == ["Quarterly report"]
    assert await subjects("to:carol") == ["Quarterly report"]
    assert await subjects("subject:lunch") == ["Lunch"]
    assert await subjects("has:attachment") == ["Quarterly report"]
    assert await subjects("is:starred") == ["Lunch"]
    assert await subjects("is:unread in:inbox") == ["Lunch", "Quarterly report"]
    assert await subjects('"pay the invoice"') == ["Invoice March"]
    assert await subjects('"the pay invoice"') == []
    assert await subjects("in:archive") == ["Invoice March"]
    assert await subjects("after:2000-01-01 before:2100-01-01 lunch") == ["Lunch"]
    assert await subjects("before:2000-01-01") == []

    for q, word in [
        ("is:sleepy", "is:sleepy"),
        ("has:wings", "has:wings"),
        ("before:yesterday", "before:yesterday"),
        ("from:", "from:"),
        ('"open phrase', "quoted"),
        ("in:nowhere", "in:nowhere"),
        ("", "search"),
    ]:
        response = await owner_client.get(f"/api/mail/{sales_id}/search", params={"q": q})
        assert response.status_code == 400, q
        error = response.json()["error"]
        assert error["code"] == "invalid_input" and error["field"] == "q"
        assert word.lower() in error["message"].lower(), (q, error)
    assert archive and junk


def send_through_mx(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        assert smtp.sendmail("bob@example.org", ["sales@acme.test"], raw) == {}


async def test_events_stream_tells_of_mail_arriving_over_smtp(
    listeners: Listeners, world: World, owner_client: ApiClient, sales_id: int
) -> None:
    async with owner_client.http.stream("GET", f"/api/mail/{sales_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()

        async def next_event() -> str:
            while True:
                line = await asyncio.wait_for(anext(lines), 30)
                if line.startswith("data: "):
                    return line

        assert '"total":0' in await next_event()  # the counts when the stream opens
        await asyncio.to_thread(send_through_mx, listeners.mx_port, mail(1, "Live"))
        data = await next_event()
        inbox = (await folders_of(owner_client, sales_id))["INBOX"]["id"]
        assert f'{{"id":{inbox},"total":1,"unread":1}}' in data


async def test_at_most_five_event_streams_per_user(
    listeners: Listeners, world: World, owner_client: ApiClient, sales_id: int
) -> None:
    url = f"/api/mail/{sales_id}/events"
    # Each line iterator is kept: one dropped would close its stream when collected.
    readers = []
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(5):
            response = await stack.enter_async_context(owner_client.http.stream("GET", url))
            assert response.status_code == 200
            readers.append(response.aiter_lines())
            assert await asyncio.wait_for(anext(readers[-1]), 10) == "retry: 3000"
        refused = await asyncio.wait_for(owner_client.get(url), 10)
        assert refused.status_code == 429
        assert "5 live update streams" in refused.json()["error"]["message"]
    # Closed streams give their places back (once the server has seen the disconnects).
    for _ in range(100):
        async with owner_client.http.stream("GET", url) as response:
            if response.status_code == 200:
                break
        await asyncio.sleep(0.1)
    assert response.status_code == 200


async def test_thread_leaves_out_trash_unless_asked_from_there(
    listeners: Listeners, world: World, owner_client: ApiClient, sales_id: int
) -> None:
    await deliver(world, mail(1, "Plan"))
    await deliver(world, mail(2, "Re: Plan", "Reply.", in_reply_to="m1"))
    folders = await folders_of(owner_client, sales_id)
    inbox, trash = folders["INBOX"]["id"], folders["Trash"]["id"]
    await owner_client.post(
        f"/api/mail/{sales_id}/actions",
        json={"messages": [{"folderId": inbox, "uid": 2}], "action": "trash"},
    )
    page = (await owner_client.get(f"/api/mail/{sales_id}/folders/{inbox}/conversations")).json()
    [conversation] = page["items"]
    assert conversation["count"] == 1
    url = f"/api/mail/{sales_id}/threads/{conversation['threadId']}"
    shown = (await owner_client.get(url)).json()
    assert [(m["folder"], m["subject"]) for m in shown["messages"]] == [("INBOX", "Plan")]
    from_trash = (await owner_client.get(url, params={"folderId": trash})).json()
    assert [(m["folder"], m["subject"]) for m in from_trash["messages"]] == [
        ("INBOX", "Plan"),
        ("Trash", "Re: Plan"),
    ]
    assert (await owner_client.get(f"/api/mail/{sales_id}/threads/nope")).status_code == 404

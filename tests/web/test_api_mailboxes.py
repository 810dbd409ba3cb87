"""/api/mailboxes over a real listener: create by local part with a password that IMAP and SMTP
submission accept at once, passwords for mailboxes made through /v1, signatures, the connection
settings, a member's view, and deletion with a typed confirmation."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
from email.message import EmailMessage

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Listeners
from mailmark.storage.tables import accounts
from tests.support.tls import client_tls
from tests.support.web import ApiClient
from tests.support.world import World, queued_rows
from tests.web.api.conftest import assert_error, client


def imap_login(port: int, address: str, password: str) -> str:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.starttls(client_tls())
        status, _ = imap.login(address, password)
        imap.select("INBOX")
        return str(status)
    finally:
        imap.logout()


def submit(port: int, address: str, password: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        smtp.starttls(context=client_tls())
        smtp.login(address, password)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = address, "sales@acme.test", "Hi"
        message.set_content("Sent from a desktop client.\n")
        smtp.send_message(message)


async def test_a_mailbox_created_here_logs_in_over_imap_and_smtp(
    owner_client: ApiClient, listeners: Listeners, world: World
) -> None:
    created = await owner_client.post(
        "/api/mailboxes",
        json={
            "domain": world.domain,
            "localPart": "Hello",
            "displayName": "Hello Team",
            "password": "hello-pass-1",
        },
    )
    assert created.status_code == 201, created.text
    mailbox = created.json()
    assert mailbox["address"] == "hello@acme.test" and mailbox["localPart"] == "hello"
    assert mailbox["domain"] == world.domain and mailbox["hasPassword"] is True
    assert mailbox["signatureFormat"] == "text" and mailbox["assignedUserIds"] == []

    status = await asyncio.to_thread(
        imap_login, listeners.imap_port, "hello@acme.test", "hello-pass-1"
    )
    assert status == "OK"
    await asyncio.to_thread(submit, listeners.submission_port, "hello@acme.test", "hello-pass-1")
    # Accepted for delivery: the message waits in the queue for the worker.
    assert ("hello@acme.test", "sales@acme.test", None) in await queued_rows(world)


async def test_a_mailbox_made_through_v1_can_be_given_a_password(
    owner_client: ApiClient, listeners: Listeners, world: World
) -> None:
    key = await world.services.api_keys.create(world.domain, "t")
    async with client(listeners.http_port, key.secret) as v1:
        made = await v1.post("/v1/mailboxes", json={"address": "robot"})
    assert made.status_code == 201, made.text
    shown = (await owner_client.get("/api/mailboxes/robot@acme.test")).json()
    assert shown["hasPassword"] is False
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(imap_login, listeners.imap_port, "robot@acme.test", "x" * 12)

    short = await owner_client.put(
        "/api/mailboxes/robot@acme.test/password", json={"password": "short"}
    )
    assert_error(short, 400, "invalid_input")
    set_ = await owner_client.put(
        "/api/mailboxes/robot@acme.test/password", json={"password": "robot-pass-1"}
    )
    assert set_.status_code == 204, set_.text
    assert (
        await asyncio.to_thread(imap_login, listeners.imap_port, "robot@acme.test", "robot-pass-1")
        == "OK"
    )
    generated = await owner_client.post("/api/mailboxes/robot@acme.test/password/generate")
    assert generated.status_code == 200
    password = generated.json()["password"]
    assert len(password) >= 24
    assert (
        await asyncio.to_thread(imap_login, listeners.imap_port, "robot@acme.test", password)
        == "OK"
    )
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(imap_login, listeners.imap_port, "robot@acme.test", "robot-pass-1")


async def test_signatures_display_names_and_connection_settings(
    owner_client: ApiClient, world: World
) -> None:
    patched = await owner_client.patch(
        "/api/mailboxes/sales@acme.test",
        json={
            "displayName": "Sales Team",
            "signature": '<p>Best,<br><img src=x onerror="alert(1)"> <script>x()</script>Sales</p>',
            "signatureFormat": "html",
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["displayName"] == "Sales Team" and body["signatureFormat"] == "html"
    assert "onerror" not in body["signature"] and "<script" not in body["signature"]
    assert body["signature"].startswith("<p>Best,<br>")
    injected = await owner_client.patch(
        "/api/mailboxes/sales@acme.test", json={"displayName": "a\r\nBcc: x@evil.test"}
    )
    assert injected.status_code == 422

    connection = (await owner_client.get("/api/mailboxes/sales@acme.test/connection")).json()
    assert connection["username"] == "sales@acme.test"
    assert connection["imaps"]["host"] == "mx.mailmark.test"
    assert connection["imap"]["security"] == "STARTTLS"
    assert connection["submissions"]["security"] == "TLS"
    profile = await owner_client.get(connection["mobileconfigUrl"])
    assert profile.status_code == 200 and b"sales@acme.test" in profile.content
    autoconfig = await owner_client.get(connection["autoconfigUrl"])
    assert autoconfig.status_code == 200 and b"mx.mailmark.test" in autoconfig.content


async def test_a_member_uses_only_the_assigned_mailbox(
    member_client: ApiClient, owner_client: ApiClient
) -> None:
    listing = (await member_client.get("/api/mailboxes")).json()
    assert [m["address"] for m in listing] == ["sales@acme.test"]
    me = (await member_client.get("/api/me")).json()
    assert listing[0]["assignedUserIds"] == [me["id"]]
    ok = await member_client.patch("/api/mailboxes/sales@acme.test", json={"displayName": "Me"})
    assert ok.status_code == 200
    assert_error(await member_client.get("/api/mailboxes/support@acme.test"), 404, "not_found")
    refused = await member_client.post(
        "/api/mailboxes", json={"domain": "acme.test", "localPart": "mine"}
    )
    message = assert_error(refused, 403, "forbidden")
    assert message == "Only an owner or an admin can create a mailbox."
    everything = (await owner_client.get("/api/mailboxes?domain=acme.test")).json()
    assert [m["address"] for m in everything] == ["sales@acme.test", "support@acme.test"]


async def test_mailbox_quota_and_typed_deletion(owner_client: ApiClient, world: World) -> None:
    async with world.services.engine.begin() as conn:
        await conn.execute(sa.update(accounts).values(plan="starter"))
    third = await owner_client.post(
        "/api/mailboxes", json={"domain": world.domain, "localPart": "third"}
    )
    assert third.status_code == 201
    fourth = await owner_client.post(
        "/api/mailboxes", json={"domain": world.domain, "localPart": "fourth"}
    )
    assert assert_error(fourth, 403, "quota_exceeded") == (
        "Mailbox limit reached. Your plan allows 3 mailbox(es). Please upgrade to add more."
    )
    wrong = await owner_client.delete("/api/mailboxes/third@acme.test", json={"confirm": "third"})
    assert_error(wrong, 400, "invalid_input", "confirm")
    gone = await owner_client.delete(
        "/api/mailboxes/third@acme.test", json={"confirm": "third@acme.test"}
    )
    assert gone.status_code == 204
    assert_error(await owner_client.get("/api/mailboxes/third@acme.test"), 404, "not_found")

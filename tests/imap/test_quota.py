"""QUOTA (RFC 9208) over IMAPS, byte for byte, and through imaplib: the plan's per-mailbox limits,
the usage of what the mailbox holds, and APPEND refused with [OVERQUOTA] past them.

No plan of PRODUCT.md limits a mailbox yet, so the limited cases give the account's plan limits
in the plans table the server reads, as a plan that has them would."""

from __future__ import annotations

import asyncio
import imaplib

import pytest

from mailmark.bootstrap import Listeners
from mailmark.core.plans import PLANS, Plan
from tests.imap.raw import Raw, session
from tests.support.tls import client_tls
from tests.support.world import World

STORAGE_LIMIT = 4 * 1024  # bytes: 4 KiB
MESSAGE_LIMIT = 3


def _message(size: int) -> bytes:
    head = b"From: a@example.org\r\nSubject: sized\r\n\r\n"
    return head + b"x" * (size - len(head) - 2) + b"\r\n"


async def _append(client: Raw, tag: bytes, raw: bytes, folder: bytes = b"INBOX") -> bytes:
    await client.send(tag + b" APPEND " + folder + b" {%d+}\r\n" % len(raw) + raw + b"\r\n")
    return (await client.until(tag))[-1]


@pytest.fixture
def limited(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    """The world's account plan ("unlimited") with per-mailbox limits."""
    plan = PLANS["unlimited"]
    monkeypatch.setitem(
        PLANS,
        plan.name,
        Plan(
            plan.name,
            plan.domains,
            plan.mailboxes,
            plan.emails_per_month,
            mailbox_storage=STORAGE_LIMIT,
            mailbox_messages=MESSAGE_LIMIT,
        ),
    )


async def test_without_plan_limits_a_folder_has_no_quota_root(
    listeners: Listeners, world: World
) -> None:
    async with session(listeners.imaps_port) as client:
        capabilities = (await client.ok(b"C1", b"CAPABILITY"))[0]
        assert b" QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE" in capabilities
        assert await client.ok(b"Q1", b"GETQUOTAROOT INBOX") == [
            b'* QUOTAROOT "INBOX"\r\n',
            b"Q1 OK GETQUOTAROOT completed\r\n",
        ]
        assert await client.run(b"Q2", b'GETQUOTA ""') == [
            b"Q2 NO [NONEXISTENT] No such quota root: your plan sets no mailbox limits\r\n"
        ]
        assert (await client.run(b"Q3", b"GETQUOTAROOT Nowhere"))[-1].startswith(
            b"Q3 NO [NONEXISTENT] "
        )
        assert await client.run(b"Q4", b'SETQUOTA "" (STORAGE 512)') == [
            b"Q4 NO [NOPERM] Mailbox limits come from your plan; change the plan to change them\r\n"
        ]
        assert (await client.run(b"Q5", b'SETQUOTA "" (STORAGE)'))[-1].startswith(b"Q5 BAD ")
        assert (await _append(client, b"A1", _message(10_000))).startswith(b"A1 OK ")


async def test_plan_limits_show_usage_and_refuse_appends_past_them(
    listeners: Listeners, world: World, limited: None
) -> None:
    async with session(listeners.imaps_port) as client:
        assert (await _append(client, b"A1", _message(1500))).startswith(b"A1 OK ")
        assert (await _append(client, b"A2", _message(1000), b"Archive")).startswith(b"A2 OK ")
        # 2500 bytes in two folders: 3 KiB rounded up, of 4.
        assert await client.ok(b"Q1", b"GETQUOTAROOT Archive") == [
            b'* QUOTAROOT "Archive" ""\r\n',
            b'* QUOTA "" (STORAGE 3 4 MESSAGE 2 3)\r\n',
            b"Q1 OK GETQUOTAROOT completed\r\n",
        ]
        assert await client.ok(b"Q2", b'GETQUOTA ""') == [
            b'* QUOTA "" (STORAGE 3 4 MESSAGE 2 3)\r\n',
            b"Q2 OK GETQUOTA completed\r\n",
        ]
        assert await client.run(b"Q3", b"GETQUOTA other") == [
            b"Q3 NO [NONEXISTENT] No such quota root: your plan sets no mailbox limits\r\n"
        ]
        # Over the storage limit: nothing stored (RFC 5530 §3 OVERQUOTA).
        assert await _append(client, b"A3", _message(2000)) == (
            b"A3 NO [OVERQUOTA] Mailbox storage limit reached (4096 bytes). "
            b"Delete messages or upgrade your plan.\r\n"
        )
        # MULTIAPPEND is all or nothing: the second message would be the fourth.
        first, second = _message(100), _message(100)
        await client.send(
            b"A4 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n"
            % (len(first), first, len(second), second)
        )
        assert await client.until(b"A4") == [
            b"A4 NO [OVERQUOTA] Mailbox message limit reached (3 messages). "
            b"Delete messages or upgrade your plan.\r\n"
        ]
        assert (await client.ok(b"Q4", b'GETQUOTA ""'))[0] == (
            b'* QUOTA "" (STORAGE 3 4 MESSAGE 2 3)\r\n'
        )
        assert (await _append(client, b"A5", first)).startswith(b"A5 OK ")
        assert (await client.ok(b"Q5", b'GETQUOTA ""'))[0] == (
            b'* QUOTA "" (STORAGE 3 4 MESSAGE 3 3)\r\n'
        )


def _imaplib_quota(port: int) -> tuple[list[object], list[object]]:
    with imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls()) as client:
        client.login("sales@acme.test", "sales-pass-1")
        status, roots = client.getquotaroot("INBOX")
        assert status == "OK"
        status, quota = client.getquota('""')
        assert status == "OK"
        return roots, quota


async def test_imaplib_reads_the_quota(listeners: Listeners, world: World, limited: None) -> None:
    roots, quota = await asyncio.to_thread(_imaplib_quota, listeners.imaps_port)
    assert roots == [[b'"INBOX" ""'], [b'"" (STORAGE 0 4 MESSAGE 0 3)']]
    assert quota == [b'"" (STORAGE 0 4 MESSAGE 0 3)']

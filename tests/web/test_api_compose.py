"""The webmail's compose side over real sockets: /api over HTTP as the signed-in owner, the
queue's worker delivering to a second local mailbox and to a receiving MTA on loopback, IMAP
(imaplib) reading Drafts, Outbox and Sent. The clock moves by hand past schedules and undo
windows."""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import dkim  # type: ignore[import-untyped]
import pytest

from mailmark.bootstrap import Listeners, Services
from mailmark.config import Settings
from mailmark.core.model import Suppression
from mailmark.core.states import SuppressionReason
from mailmark.dns_tools.resolver import DnsResolver
from tests.fakedns import FakeDns
from tests.smtp_out.conftest import publish_dkim
from tests.support.clock import SettableClock
from tests.support.smtp_sink import AiosmtpdSink
from tests.support.tls import client_tls
from tests.support.web import ApiClient
from tests.support.world import World, stored_copies

MESSAGE_SIZE = 200_000
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 100


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def settings(settings: Settings, sink: AiosmtpdSink) -> Settings:
    return settings.model_copy(
        update={"remote_smtp_port": sink.port, "max_message_size": MESSAGE_SIZE}
    )


@pytest.fixture
async def owner(
    owner_client: ApiClient, services: Services, world: World, fake_dns: FakeDns
) -> AsyncIterator[ApiClient]:
    """The signed-in owner; remote.test's MX is the sink and acme.test's DKIM key is published."""
    fake_dns.add("remote.test", "MX", "10 mx.remote.test.")
    fake_dns.add("mx.remote.test", "A", "127.0.0.1")
    await publish_dkim(services, fake_dns, world.domain)
    yield owner_client


def mail(world: World, path: str = "") -> str:
    return f"/api/mail/{world.sales.id}{path}"


async def upload(client: ApiClient, world: World, name: str, content: bytes) -> dict[str, Any]:
    response = await client.post(
        mail(world, "/uploads"), files={"file": (name, content, "application/pdf")}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def imap_folder(listeners: Listeners, folder: str) -> list[tuple[bytes, bytes]]:
    """(FLAGS, the message) of every message in the folder, over IMAP as sales@."""
    with imaplib.IMAP4("127.0.0.1", listeners.imap_port, timeout=20) as imap:
        imap.starttls(client_tls())
        imap.login("sales@acme.test", "sales-pass-1")
        imap.select(folder, readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        found = []
        for item in data:
            if isinstance(item, tuple):
                flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
                found.append((flags.group(1) if flags else b"", item[1]))
        return found


async def folder_of(listeners: Listeners, folder: str) -> list[tuple[bytes, bytes]]:
    return await asyncio.to_thread(imap_folder, listeners, folder)


async def idle(listeners: Listeners) -> None:
    """Everything due now attempted and recorded."""
    assert listeners.outbound is not None
    await listeners.outbound.wait_until_idle()


async def test_a_send_with_an_attachment_reaches_a_local_mailbox_and_a_remote_mta(
    owner: ApiClient,
    world: World,
    listeners: Listeners,
    services: Services,
    sink: AiosmtpdSink,
    fake_dns: FakeDns,
) -> None:
    file = await upload(owner, world, "Report Q4.pdf", PDF)
    response = await owner.post(
        mail(world, "/send"),
        json={
            "to": ["support@acme.test", "bob@remote.test"],
            "bcc": ["carol@remote.test"],
            "subject": "Quarterly report",
            "html": '<p>Hello <b>team</b>,</p><p>see <a href="https://acme.test/q4">Q4</a>.</p>',
            "text": None,
            "attachments": [{"uploadId": file["id"]}],
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued" and response.json()["outbox"] is None
    await idle(listeners)

    [got] = sink.received
    assert sorted(got.recipients) == ["bob@remote.test", "carol@remote.test"]
    assert dkim.verify(got.content, dnsfunc=DnsResolver([fake_dns.address]).dkim_dnsfunc)
    assert b"carol" not in got.content.split(b"\r\n\r\n", 1)[0]
    message = parsed(got.content)
    assert message["Bcc"] is None and message["To"] == "support@acme.test, bob@remote.test"
    assert message.get_content_type() == "multipart/mixed"
    alternative, attached = message.get_payload()  # type: ignore[misc]
    assert [p.get_content_type() for p in alternative.get_payload()] == [
        "text/plain",
        "text/html",
    ]
    plain = alternative.get_payload()[0].get_content()
    assert "Hello team," in plain and "Q4 <https://acme.test/q4>" in plain
    assert attached.get_filename() == "Report Q4.pdf" and attached.get_content() == PDF
    # No signature added by the server: the editor holds it.
    assert "-- " not in plain
    # Open tracking is off for this mailbox: no pixel.
    assert "/t/o/" not in alternative.get_payload()[1].get_content()

    [inbox] = [c for c in await stored_copies(services, world.support) if c.folder == "INBOX"]
    local = parsed(inbox.data)
    assert local["Subject"] == "Quarterly report" and local["Bcc"] is None
    assert b"carol" not in inbox.data
    [(flags, sent)] = await folder_of(listeners, "Sent")
    assert b"\\Seen" in flags
    assert parsed(sent)["Message-ID"] == message["Message-ID"]
    assert await folder_of(listeners, "Outbox") == []

    sent_folder = await _folder_id(services, world, "Sent")
    status = await owner.get(mail(world, f"/messages/{sent_folder}/1/delivery"))
    assert status.status_code == 200, status.text
    assert {r["address"]: r["status"] for r in status.json()["recipients"]} == {
        "support@acme.test": "delivered",
        "bob@remote.test": "delivered",
        "carol@remote.test": "delivered",
    }
    assert status.json()["opens"] == []


async def _folder_id(services: Services, world: World, name: str) -> int:
    async with services.uow(read_only=True) as uow:
        assert world.sales.id is not None
        folder = await uow.folders.get_by_name(world.sales.id, name)
    assert folder is not None and folder.id is not None
    return folder.id


async def test_draft_autosave_replaces_the_draft_in_place_and_imap_sees_it(
    owner: ApiClient, world: World, listeners: Listeners, services: Services
) -> None:
    file = await upload(owner, world, "notes.pdf", PDF)
    first = await owner.put(
        mail(world, "/drafts"),
        json={
            "draft": None,
            "to": ["bob@remote.test"],
            "bcc": ["carol@remote.test"],
            "subject": "Draft one",
            "html": "<p>first</p>",
            "attachments": [],
        },
    )
    assert first.status_code == 200, first.text
    [(flags, data)] = await folder_of(listeners, "Drafts")
    # \Recent too: the draft is new to this IMAP4rev1 session (RFC 3501 §2.3.2).
    assert set(flags.split()) == {b"\\Draft", b"\\Seen", b"\\Recent"}
    assert parsed(data)["Subject"] == "Draft one" and parsed(data)["Bcc"] == "carol@remote.test"
    drafts = first.json()["folderId"]
    listed = (await owner.get(mail(world, f"/folders/{drafts}/conversations"))).json()
    [conversation] = listed["items"]
    thread_of_first = conversation["threadId"]

    second = await owner.put(
        mail(world, "/drafts"),
        json={
            "draft": first.json(),
            "to": ["bob@remote.test"],
            "subject": "Draft two",
            "html": "<p>second</p>",
            "attachments": [{"uploadId": file["id"]}],
        },
    )
    assert second.status_code == 200, second.text
    assert second.json()["uid"] > first.json()["uid"]
    # The replacement stays in the first draft's conversation: a link to it still opens it.
    after = await owner.get(mail(world, f"/threads/{thread_of_first}"))
    assert after.status_code == 200, after.text
    assert [m["uid"] for m in after.json()["messages"]] == [second.json()["uid"]]
    [(_, data)] = await folder_of(listeners, "Drafts")
    draft = parsed(data)
    assert draft["Subject"] == "Draft two"
    [attached] = draft.iter_attachments()
    assert attached.get_content() == PDF  # type: ignore[attr-defined]

    stale = await owner.put(
        mail(world, "/drafts"), json={"draft": first.json(), "subject": "Lost race"}
    )
    assert stale.status_code == 409, stale.text
    assert len(await folder_of(listeners, "Drafts")) == 1

    sent = await owner.post(
        mail(world, "/send"),
        json={
            "draft": second.json(),
            "to": ["bob@remote.test"],
            "subject": "Draft two",
            "html": "<p>second</p>",
        },
    )
    assert sent.status_code == 202, sent.text
    assert await folder_of(listeners, "Drafts") == []


async def test_a_scheduled_send_waits_in_outbox_and_cancel_brings_it_back_to_drafts(
    owner: ApiClient,
    world: World,
    listeners: Listeners,
    services: Services,
    sink: AiosmtpdSink,
    clock: SettableClock,
) -> None:
    when = clock.now() + timedelta(hours=1)
    response = await owner.post(
        mail(world, "/send"),
        json={
            "to": ["bob@remote.test"],
            "bcc": ["carol@remote.test"],
            "subject": "Later",
            "html": "<p>later</p>",
            "scheduledAt": when.isoformat(),
        },
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "scheduled" and body["outbox"] is not None
    outbox = await _folder_id(services, world, "Outbox")
    assert body["outbox"]["folderId"] == outbox
    assert [parsed(m)["Subject"] for _, m in await folder_of(listeners, "Outbox")] == ["Later"]
    assert await folder_of(listeners, "Sent") == []
    status = await owner.get(mail(world, f"/messages/{outbox}/{body['outbox']['uid']}/delivery"))
    assert [r["status"] for r in status.json()["recipients"]] == ["scheduled", "scheduled"]

    canceled = await owner.post(mail(world, f"/outbox/{body['outbox']['uid']}/cancel"))
    assert canceled.status_code == 200, canceled.text
    clock.advance(timedelta(hours=2))
    await idle(listeners)

    assert sink.received == []
    assert await folder_of(listeners, "Outbox") == []
    [(flags, data)] = await folder_of(listeners, "Drafts")
    assert b"\\Draft" in flags
    draft = parsed(data)
    assert draft["Subject"] == "Later" and draft["Bcc"] == "carol@remote.test"
    assert canceled.json()["draft"]["folderId"] == await _folder_id(services, world, "Drafts")
    again = await owner.post(mail(world, f"/outbox/{body['outbox']['uid']}/cancel"))
    assert again.status_code == 409, again.text
    missing = await owner.post(mail(world, "/outbox/999/cancel"))
    assert missing.status_code == 404, missing.text


async def test_rescheduled_mail_moves_from_outbox_to_sent_when_the_queue_takes_it(
    owner: ApiClient,
    world: World,
    listeners: Listeners,
    sink: AiosmtpdSink,
    clock: SettableClock,
) -> None:
    response = await owner.post(
        mail(world, "/send"),
        json={
            "to": ["bob@remote.test"],
            "subject": "Moved",
            "html": "<p>x</p>",
            "scheduledAt": (clock.now() + timedelta(hours=1)).isoformat(),
        },
    )
    uid = response.json()["outbox"]["uid"]
    later = clock.now() + timedelta(hours=3)
    moved = await owner.post(
        mail(world, f"/outbox/{uid}/reschedule"), json={"scheduledAt": later.isoformat()}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["sendAt"].startswith(later.isoformat()[:19])

    clock.advance(timedelta(hours=2))
    await idle(listeners)
    assert sink.received == []
    assert len(await folder_of(listeners, "Outbox")) == 1

    clock.advance(timedelta(hours=1, minutes=1))
    await idle(listeners)
    assert [r for got in sink.received for r in got.recipients] == ["bob@remote.test"]
    assert await folder_of(listeners, "Outbox") == []
    [(_, data)] = await folder_of(listeners, "Sent")
    assert parsed(data)["Subject"] == "Moved"
    late = await owner.post(mail(world, f"/outbox/{uid}/cancel"))
    assert late.status_code == 409, late.text


async def test_undo_send_is_a_cancel_within_the_window(
    owner: ApiClient,
    world: World,
    listeners: Listeners,
    sink: AiosmtpdSink,
    clock: SettableClock,
) -> None:
    body = {"to": ["bob@remote.test"], "subject": "Oops", "html": "<p>x</p>", "undoSeconds": 10}
    undone = (await owner.post(mail(world, "/send"), json=body)).json()
    kept = (await owner.post(mail(world, "/send"), json={**body, "subject": "Fine"})).json()
    assert undone["status"] == "scheduled" and undone["outbox"] is not None
    assert (await owner.post(mail(world, f"/outbox/{undone['outbox']['uid']}/cancel"))).is_success

    clock.advance(timedelta(seconds=11))
    await idle(listeners)

    assert [parsed(got.content)["Subject"] for got in sink.received] == ["Fine"]
    assert [parsed(m)["Subject"] for _, m in await folder_of(listeners, "Sent")] == ["Fine"]
    assert [parsed(m)["Subject"] for _, m in await folder_of(listeners, "Drafts")] == ["Oops"]
    too_late = await owner.post(mail(world, f"/outbox/{kept['outbox']['uid']}/cancel"))
    assert too_late.status_code == 409


async def test_reply_and_forward_carry_the_thread_and_the_original_attachments(
    owner: ApiClient, world: World, listeners: Listeners, services: Services, sink: AiosmtpdSink
) -> None:
    original = (
        b"From: Bob <bob@remote.test>\r\nTo: sales@acme.test\r\nSubject: Contract\r\n"
        b"Message-ID: <parent@remote.test>\r\nReferences: <root@remote.test>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="contract.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKY29udHJhY3Q=\r\n--b--\r\n"
    )
    await services.delivery.deliver(original, recipients=[world.sales], mail_from="bob@remote.test")
    inbox = await _folder_id(services, world, "INBOX")
    ref = {"folderId": inbox, "uid": 1}

    reply = await owner.post(
        mail(world, "/send"),
        json={
            "to": ["bob@remote.test"],
            "subject": "Re: Contract",
            "html": "<p>Thanks</p>",
            "replyTo": ref,
        },
    )
    forward = await owner.post(
        mail(world, "/send"),
        json={
            "to": ["dan@remote.test"],
            "subject": "Fwd: Contract",
            "html": "<p>FYI</p>",
            "forwardOf": ref,
        },
    )
    part = await owner.post(
        mail(world, "/send"),
        json={
            "to": ["eve@remote.test"],
            "subject": "Just the file",
            "html": "<p>.</p>",
            "attachments": [{"folderId": inbox, "uid": 1, "partId": "2"}],
        },
    )
    assert reply.status_code == forward.status_code == part.status_code == 202, reply.text
    await idle(listeners)

    got = {r: parsed(m.content) for m in sink.received for r in m.recipients}
    answered = got["bob@remote.test"]
    assert answered["In-Reply-To"] == "<parent@remote.test>"
    assert answered["References"] == "<root@remote.test> <parent@remote.test>"
    for address in ("dan@remote.test", "eve@remote.test"):
        [file] = got[address].iter_attachments()
        assert file.get_filename() == "contract.pdf"  # type: ignore[attr-defined]
        assert file.get_content() == b"%PDF-1.4\ncontract"  # type: ignore[attr-defined]
    [(flags, _)] = await folder_of(listeners, "INBOX")
    assert b"\\Answered" in flags and b"$Forwarded" in flags

    contacts = await owner.get(mail(world, "/contacts"), params={"q": "bo"})
    assert contacts.status_code == 200, contacts.text
    assert contacts.json()[0] == {"name": "", "address": "bob@remote.test"}
    assert all(c["address"] != "sales@acme.test" for c in contacts.json())


async def test_a_suppressed_recipient_is_refused_with_the_product_text(
    owner: ApiClient, world: World, services: Services, sink: AiosmtpdSink
) -> None:
    acme = await services.domains.get(world.domain)
    async with services.uow() as uow:
        assert acme.id is not None
        await uow.suppressions.add(
            Suppression(
                acme.id, "gone@remote.test", SuppressionReason.BOUNCE, "", services.clock.now()
            )
        )
        await uow.commit()
    response = await owner.post(
        mail(world, "/send"),
        json={"to": ["gone@remote.test"], "subject": "Hi", "html": "<p>x</p>"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"] == (
        "gone@remote.test is on the suppression list of acme.test: an earlier message to it "
        "bounced. Mail to it is not sent."
    )
    assert await stored_copies(services, world.sales) == []


async def test_an_upload_over_the_limit_is_413_and_bad_uploads_are_400(
    owner: ApiClient, world: World, services: Services
) -> None:
    limit = services.compose.upload_limit
    fits = await owner.post(mail(world, "/uploads"), files={"file": ("a.bin", b"x" * limit)})
    over = await owner.post(mail(world, "/uploads"), files={"file": ("b.bin", b"x" * (limit + 1))})
    huge = await owner.post(
        mail(world, "/uploads"), files={"file": ("c.bin", b"x" * (MESSAGE_SIZE * 2))}
    )
    not_form = await owner.post(mail(world, "/uploads"), content=b"raw bytes")
    no_file = await owner.post(mail(world, "/uploads"), files={"other": ("x.txt", b"x")})
    broken = await owner.post(
        mail(world, "/uploads"),
        content=b'--zz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
    )

    assert fits.status_code == 201, fits.text
    assert fits.json()["size"] == limit and fits.json()["contentType"] == "application/octet-stream"
    for response in (over, huge):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["field"] == "file"
        assert f"{limit} bytes" in response.json()["error"]["message"]
    for response in (not_form, no_file, broken):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_input"
    # The file that fits can still be sent: the limit is the message size's.
    sent = await owner.post(
        mail(world, "/send"),
        json={
            "to": ["bob@remote.test"],
            "subject": "Big",
            "html": "<p>x</p>",
            "attachments": [{"uploadId": fits.json()["id"]}],
        },
    )
    assert sent.status_code == 202, sent.text


async def test_bad_input_is_400_naming_the_field(
    owner: ApiClient, world: World, clock: SettableClock
) -> None:
    base = {"to": ["bob@remote.test"], "subject": "S", "html": "<p>x</p>"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**base, "to": []}, "to"),
        ({**base, "to": ["not an address"]}, "to[0]"),
        ({**base, "cc": ["ok@remote.test", "bad@"]}, "cc[1]"),
        ({**base, "scheduledAt": "2030-01-07T12:00:00"}, "scheduledAt"),
        ({**base, "scheduledAt": (clock.now() - timedelta(minutes=1)).isoformat()}, "scheduledAt"),
        ({**base, "undoSeconds": 31}, "undoSeconds"),
        ({**base, "attachments": [{"uploadId": "x", "partId": "1"}]}, "attachments[0]"),
        ({**base, "attachments": [{"uploadId": "nope"}]}, "attachments[0]"),
        ({**base, "attachments": [{"folderId": 1, "uid": 1, "partId": "a.b"}]}, "attachments[0]"),
        ({**base, "subject": "a\r\nBcc: eve@remote.test"}, "subject"),
        ({**base, "draft": {"folderId": 1, "uid": 1}}, "draft"),
    ]
    for body, field in cases:
        response = await owner.post(mail(world, "/send"), json=body)
        assert 400 <= response.status_code < 500, (body, response.text)
        error = response.json()["error"]
        assert error["field"] == field, (body, error)
        assert error["message"], body
    unknown = await owner.post(mail(world, "/send"), json={**base, "from": "x@acme.test"})
    assert unknown.status_code in (400, 422), unknown.text
    assert "from" in unknown.json()["error"]["message"]
    contacts = await owner.get(mail(world, "/contacts"), params={"limit": 500})
    assert contacts.status_code == 400 and contacts.json()["error"]["field"] == "limit"


async def test_an_upload_serves_only_its_user_and_mailbox_and_expires_after_a_day(
    owner: ApiClient, admin_client: ApiClient, world: World, clock: SettableClock
) -> None:
    file = await upload(owner, world, "mine.pdf", PDF)
    body = {
        "to": ["bob@remote.test"],
        "subject": "S",
        "html": "<p>x</p>",
        "attachments": [{"uploadId": file["id"]}],
    }
    by_admin = await admin_client.post(mail(world, "/send"), json=body)
    other_mailbox = await owner.post(f"/api/mail/{world.support.id}/send", json=body)
    clock.advance(timedelta(days=1, seconds=1))
    expired = await owner.post(mail(world, "/send"), json=body)

    for response in (by_admin, other_mailbox, expired):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["field"] == "attachments[0]"
        assert "attach the file again" in response.json()["error"]["message"]


async def test_open_tracking_records_when_the_pixel_is_loaded(
    owner: ApiClient, world: World, listeners: Listeners, services: Services, sink: AiosmtpdSink
) -> None:
    turned_on = await owner.patch("/api/mailboxes/sales@acme.test", json={"trackOpens": True})
    assert turned_on.status_code == 200 and turned_on.json()["trackOpens"] is True
    sent = await owner.post(
        mail(world, "/send"),
        json={"to": ["bob@remote.test"], "subject": "Tracked", "html": "<p>Hi</p>"},
    )
    assert sent.status_code == 202, sent.text
    await idle(listeners)

    [got] = sink.received
    html = parsed(got.content).get_body(("html",))
    assert html is not None
    [url] = re.findall(r'<img src="([^"]+/t/o/[^"]+\.gif)"', html.get_content())
    path = "/t/o/" + url.split("/t/o/", 1)[1]
    plain = parsed(got.content).get_body(("plain",))
    assert plain is not None and "/t/o/" not in plain.get_content()
    token, signature = path.removeprefix("/t/o/").removesuffix(".gif").split("/")
    forged = f"/t/o/{token}/{'A' * len(signature)}.gif"

    loaded = await owner.http.get(path, headers={"User-Agent": "Reader/1.0"})
    refused = await owner.http.get(forged)

    assert loaded.status_code == 200, loaded.text
    assert loaded.headers["content-type"] == "image/gif"
    assert loaded.content[:6] == b"GIF89a" and loaded.headers["cache-control"].startswith(
        "no-store"
    )
    assert refused.status_code == 404
    await services.tracking.flush()  # hits are written in batches, after the pixel is answered
    sent_folder = await _folder_id(services, world, "Sent")
    status = (await owner.get(mail(world, f"/messages/{sent_folder}/1/delivery"))).json()
    assert len(status["opens"]) == 1
    assert [r["status"] for r in status["recipients"]] == ["delivered"]


async def test_two_saves_racing_on_one_draft_leave_exactly_one_copy(
    owner: ApiClient, world: World, listeners: Listeners
) -> None:
    first = await owner.put(mail(world, "/drafts"), json={"subject": "v1"})
    assert first.status_code == 200, first.text

    answers = await asyncio.gather(
        *(
            owner.put(mail(world, "/drafts"), json={"draft": first.json(), "subject": f"v2-{n}"})
            for n in range(4)
        )
    )

    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409], [a.text for a in answers]
    [winner] = [a for a in answers if a.status_code == 200]
    [(_, data)] = await folder_of(listeners, "Drafts")
    assert parsed(data)["Subject"] == f"v2-{answers.index(winner)}"

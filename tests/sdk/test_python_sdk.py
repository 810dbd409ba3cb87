"""The Python SDK, sync and async, against the live listeners."""

from __future__ import annotations

import asyncio
import email
import email.policy
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mailmark_sdk import (
    APIConnectionError,
    AsyncMailmark,
    Attachment,
    AuthenticationError,
    CampaignSendResult,
    ConflictError,
    Mailmark,
    MailmarkError,
    NotFoundError,
    RateLimitError,
    SendResult,
    ValidationError,
)

from tests.sdk.conftest import RATE_BURST, LiveApi
from tests.support.world import World, stored_copies


def test_every_exported_name_is_importable() -> None:
    import mailmark_sdk

    assert [name for name in mailmark_sdk.__all__ if not hasattr(mailmark_sdk, name)] == []


def _unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def _sync_mailboxes(api: LiveApi) -> None:
    with Mailmark(api.api_key, base_url=api.base_url) as client:
        local = _unique("py-")
        created = client.create_mailbox(local, display_name="Python Team")
        assert (created.address, created.full_address, created.display_name) == (
            local,
            f"{local}@{api.domain}",
            "Python Team",
        )
        assert created.id
        listed = client.list_mailboxes()
        assert created in listed
        assert api.sender in {mailbox.full_address for mailbox in listed}

        with pytest.raises(ConflictError) as conflict:
            client.create_mailbox(local)
        assert conflict.value.status == 409
        assert conflict.value.message

        renamed = client.update_mailbox(local, display_name="Renamed")
        assert (renamed.full_address, renamed.display_name) == (f"{local}@{api.domain}", "Renamed")
        with pytest.raises(ValidationError) as short:
            client.update_mailbox(local, password="short")
        assert (short.value.status, short.value.field) == (400, "password")

        assert client.delete_mailbox(f"{local}@{api.domain}") is True
        assert local not in {mailbox.address for mailbox in client.list_mailboxes()}
        with pytest.raises(NotFoundError) as missing:
            client.delete_mailbox(local)
        assert missing.value.status == 404

        with pytest.raises(ValidationError) as invalid:
            client.create_mailbox("has space")
        assert invalid.value.status in (400, 422)
        assert invalid.value.field is not None


async def test_sync_client_manages_mailboxes(live_api: LiveApi) -> None:
    # The server runs in this event loop: the blocking client runs in a thread.
    await asyncio.to_thread(_sync_mailboxes, live_api)


async def test_async_client_manages_aliases(live_api: LiveApi) -> None:
    async with AsyncMailmark(live_api.api_key, base_url=live_api.base_url) as client:
        local = _unique("team-")
        created = await client.create_alias(local, [live_api.sender])
        assert (created.address, created.full_address, created.targets) == (
            local,
            f"{local}@{live_api.domain}",
            [live_api.sender],
        )
        assert created in await client.list_aliases()
        with pytest.raises(ConflictError):
            await client.create_alias(local, [live_api.sender])
        assert await client.delete_alias(local) is True
        with pytest.raises(NotFoundError):
            await client.delete_alias(local)


def _sync_sender_groups(api: LiveApi) -> None:
    with Mailmark(api.api_key, base_url=api.base_url) as client:
        group = client.create_sender_group(
            "Marketing Team", mailboxes="all", emails=["user1@example.com", "user2@example.com"]
        )
        assert group.name == "Marketing Team"
        assert sorted(group.emails) == ["user1@example.com", "user2@example.com"]
        assert api.sender in group.mailboxes

        group = client.update_sender_group(
            group.id, add_emails=["new@example.com"], remove_emails=["user1@example.com"]
        )
        assert sorted(group.emails) == ["new@example.com", "user2@example.com"]
        group = client.update_sender_group(
            group.id, name="Renamed", emails=["only@example.com"], mailboxes=[api.sender]
        )
        assert (group.name, group.emails, group.mailboxes) == (
            "Renamed",
            ["only@example.com"],
            [api.sender],
        )
        assert [g.id for g in client.list_sender_groups()] == [group.id]

        assert client.delete_sender_group(group.id) is True
        assert client.list_sender_groups() == []
        with pytest.raises(NotFoundError):
            client.update_sender_group(group.id, name="gone")


async def test_sync_client_manages_sender_groups(live_api: LiveApi) -> None:
    await asyncio.to_thread(_sync_sender_groups, live_api)


def _sync_send(api: LiveApi) -> None:
    with Mailmark(api.api_key, base_url=api.base_url) as client:
        recipient = _unique("r-") + "@example.com"
        sent = client.send(from_=api.sender, to=recipient, subject="Hello!", html="<p>Hello</p>")
        assert isinstance(sent, SendResult)
        assert sent.status == "queued" and sent.message_id

        page = client.list_emails(from_=api.sender)
        email = next(item for item in page.data if item.message_id == sent.message_id)
        assert [e.id for e in client.iter_emails(from_=api.sender, limit=1)] == [
            e.id for e in page.data
        ]
        assert email.subject == "Hello!"
        assert email.to == [recipient]
        assert email.raw["messageId"] == sent.message_id
        detail = client.get_email(sent.message_id)
        assert detail.email.id == email.id
        assert [r.address for r in detail.recipients] == [recipient]
        assert client.get_email(email.id).email.message_id == sent.message_id
        with pytest.raises(NotFoundError):
            client.get_email("999999")

        once = _unique("once-") + "@example.com"
        retried = [
            client.send(
                from_=api.sender,
                to=[once],
                subject="Once",
                text="once",
                idempotency_key="order-42",
            )
            for _ in range(2)
        ]
        assert retried[0] == retried[1]
        with pytest.raises((ConflictError, ValidationError)):
            client.send(
                from_=api.sender,
                to=[once],
                subject="Other body",
                text="x",
                idempotency_key="order-42",
            )

        with pytest.raises(ValidationError) as no_body:
            client.send(from_=api.sender, to=["x@example.com"], subject="Empty")
        assert no_body.value.status in (400, 422)
        with pytest.raises(ValidationError) as injected:
            client.send(from_=api.sender, to=["x@example.com"], subject="a\r\nBcc: b@c.d", text="x")
        assert injected.value.status == 422
        with pytest.raises(ValidationError) as past:
            client.send(
                from_=api.sender,
                to=["x@example.com"],
                subject="Past",
                text="x",
                scheduled_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        assert past.value.field == "scheduledAt"
        with pytest.raises(ValueError, match="timezone-aware"):
            client.send(
                from_=api.sender,
                to=["x@example.com"],
                subject="Naive",
                text="x",
                scheduled_at=datetime.now() + timedelta(days=1),
            )
        with pytest.raises(NotFoundError):
            # A sender outside the key's domain does not exist as far as the key can tell.
            client.send(from_="someone@elsewhere.test", to=["x@example.com"], subject="x", text="x")

    with Mailmark(f"dm_live_{'x' * 40}", base_url=api.base_url) as stranger:
        with pytest.raises(AuthenticationError) as unauthorized:
            stranger.list_mailboxes()
        assert unauthorized.value.status == 401
    with Mailmark("dm_live_x", base_url="http://127.0.0.1:9", timeout=5) as closed:
        with pytest.raises(APIConnectionError) as no_server:
            closed.list_mailboxes()
        assert (no_server.value.status, no_server.value.code) == (0, "connection_failed")


async def test_sync_client_sends_and_lists(live_api: LiveApi) -> None:
    await asyncio.to_thread(_sync_send, live_api)


async def test_async_client_sends_a_campaign(live_api: LiveApi) -> None:
    async with AsyncMailmark(live_api.api_key, base_url=live_api.base_url) as client:
        later = datetime.now(UTC) + timedelta(hours=1)
        ann, bob = _unique("ann-") + "@example.com", _unique("bob-") + "@example.com"
        sent = await client.send(
            from_=live_api.sender,
            to=[ann, bob],
            subject="Hi {{firstName}}",
            text="Hello {{firstName}}!",
            type="campaign",
            variables={ann: {"firstName": "Ann"}, bob: {"firstName": "Bob"}},
            scheduled_at=later,
            track_clicks=False,
        )
        assert isinstance(sent, CampaignSendResult)
        assert sent.status == "queued" and sent.batch_id
        assert len(set(sent.message_ids)) == 2 and sent.skipped == []

        page = await client.list_emails(batch_id=sent.batch_id)
        assert sorted(str(email.message_id) for email in page.data) == sorted(sent.message_ids)
        assert sorted(str(email.subject) for email in page.data) == ["Hi Ann", "Hi Bob"]
        assert {email.batch_id for email in page.data} == {sent.batch_id}


async def test_async_client_sends_attachments_from_bytes_and_paths_with_tags(
    live_api: LiveApi, world: World, tmp_path: Path
) -> None:
    report = tmp_path / "Bericht März.pdf"
    report.write_bytes(b"%PDF-1.4\n" + bytes(range(256)))
    logo = b"\x89PNG\r\n\x1a\n" + bytes(reversed(range(256)))
    tag = _unique("t-")
    async with AsyncMailmark(live_api.api_key, base_url=live_api.base_url) as client:
        sent = await client.send(
            from_=live_api.sender,
            to="ann@example.com",
            subject="Report",
            html='<p>Report</p><img src="cid:logo">',
            scheduled_at=datetime.now(UTC) + timedelta(hours=1),
            attachments=[
                Attachment(path=report),
                Attachment(filename="logo.png", content=logo, content_id="logo"),
            ],
            tags=[tag, "reports"],
        )
        tagged = await client.list_emails(tag=tag)
        with pytest.raises(ValidationError) as bad:
            await client.send(
                from_=live_api.sender,
                to="ann@example.com",
                subject="x",
                text="x",
                attachments=[Attachment(filename="a\r\nb.txt", content=b"x")],
            )
        with pytest.raises(ValueError, match="content or path"):
            Attachment(filename="a.txt").to_json()

    assert isinstance(sent, SendResult)
    assert [(e.message_id, e.tags) for e in tagged.data] == [
        (sent.message_id, sorted([tag, "reports"]))
    ]
    assert bad.value.field == "attachments[0].filename"
    [copy] = await stored_copies(world.services, world.sales)
    message = email.message_from_bytes(copy.data, policy=email.policy.default)
    parts = {part.get_filename(): part for part in message.iter_attachments()}
    assert parts["Bericht März.pdf"].get_content() == report.read_bytes()
    assert parts["Bericht März.pdf"].get_content_type() == "application/pdf"
    [related] = [p for p in message.iter_parts() if p.get_content_type() == "multipart/related"]
    [image] = [p for p in related.iter_parts() if p["Content-ID"] == "<logo>"]
    assert image.get_content() == logo and image.get_content_type() == "image/png"


async def test_async_client_pages_emails_newest_first(live_api: LiveApi) -> None:
    async with AsyncMailmark(live_api.api_key, base_url=live_api.base_url) as client:
        ids = [
            await client.send(
                from_=live_api.sender, to=_unique("p-") + "@example.com", subject=f"{n}", text="x"
            )
            for n in range(5)
        ]
        seen: list[str] = []
        page = await client.list_emails(limit=2)
        while True:
            assert len(page.data) <= 2
            seen += [str(email.message_id) for email in page.data]
            if page.next_cursor is None:
                break
            page = await client.list_emails(limit=2, cursor=page.next_cursor)
        assert seen == [sent.message_id for sent in reversed(ids) if isinstance(sent, SendResult)]
        assert [str(email.message_id) async for email in client.iter_emails(limit=2)] == seen


async def test_async_client_mailboxes_and_groups(live_api: LiveApi) -> None:
    async with AsyncMailmark(live_api.api_key, base_url=live_api.base_url) as client:
        mailbox = await client.create_mailbox("async-team")
        group = await client.create_sender_group(
            "Async", mailboxes=f"{live_api.sender},{mailbox.full_address}"
        )
        assert sorted(group.mailboxes) == sorted([live_api.sender, mailbox.full_address])
        # Deleting a mailbox removes it from the groups it sent for.
        assert await client.delete_mailbox("async-team") is True
        (group,) = await client.list_sender_groups()
        assert group.mailboxes == [live_api.sender]
        assert await client.delete_sender_group(group.id) is True
        with pytest.raises(NotFoundError):
            await client.delete_sender_group(group.id)


async def test_async_client_raises_rate_limit_with_retry_after(live_api: LiveApi) -> None:
    async with AsyncMailmark(live_api.spare_api_key, base_url=live_api.base_url) as client:
        results = await asyncio.gather(
            *(client.list_mailboxes() for _ in range(2 * RATE_BURST)), return_exceptions=True
        )
    limited = [result for result in results if isinstance(result, MailmarkError)]
    assert limited, f"{2 * RATE_BURST} requests at once met no rate limit"
    assert all(isinstance(error, RateLimitError) for error in limited), limited[:3]
    first = limited[0]
    assert isinstance(first, RateLimitError)
    assert first.status == 429
    assert first.retry_after is not None and first.retry_after >= 1
    # The main key has its own bucket.
    async with AsyncMailmark(live_api.api_key, base_url=live_api.base_url) as client:
        assert await client.list_mailboxes()


async def test_async_client_lists_and_lifts_suppressions(live_api: LiveApi) -> None:
    async with AsyncMailmark(live_api.api_key, base_url=live_api.base_url) as client:
        # example.com has no MX in the test DNS: the worker bounces the message and suppresses
        # the address.
        gone = _unique("gone-") + "@example.com"
        sent = await client.send(from_=live_api.sender, to=gone, subject="Bounce", text="x")
        assert isinstance(sent, SendResult)
        async with asyncio.timeout(20):
            # Polls the server over HTTP, as an API user would: there is no event to wait on.
            while gone not in {s.address for s in (await client.list_suppressions()).data}:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        (suppression,) = [s for s in (await client.list_suppressions()).data if s.address == gone]
        assert suppression.reason == "bounce" and suppression.created_at
        detail = await client.get_email(sent.message_id)
        assert [r.status for r in detail.recipients] == ["bounced"]
        assert detail.events, "a bounced email has events"

        with pytest.raises(MailmarkError) as refused:
            await client.send(from_=live_api.sender, to=gone, subject="Again", text="x")
        assert gone in refused.value.message

        assert await client.delete_suppression(gone) is True
        assert gone not in {s.address for s in (await client.list_suppressions()).data}
        with pytest.raises(NotFoundError):
            await client.delete_suppression(gone)


async def test_async_client_manages_webhooks(live_api: LiveApi) -> None:
    async with AsyncMailmark(live_api.api_key, base_url=live_api.base_url) as client:
        created = await client.create_webhook(
            "http://127.0.0.1:9/hooks", events=["email.delivered", "email.bounced"]
        )
        assert created.secret, "the signing secret is shown when the webhook is created"
        assert sorted(created.events) == ["email.bounced", "email.delivered"]
        (listed,) = await client.list_webhooks()
        assert (listed.id, listed.url, listed.secret) == (
            created.id,
            "http://127.0.0.1:9/hooks",
            None,
        )

        with pytest.raises(ValidationError) as internal:
            await client.create_webhook("http://10.1.2.3/hooks")
        assert internal.value.field == "url"

        assert await client.delete_webhook(created.id) is True
        assert await client.list_webhooks() == []
        with pytest.raises(NotFoundError):
            await client.delete_webhook(created.id)


def _sync_cancel_and_reschedule(api: LiveApi) -> None:
    with Mailmark(api.api_key, base_url=api.base_url) as client:
        recipient = _unique("later-") + "@example.com"
        sent = client.send(
            from_=api.sender,
            to=recipient,
            subject="Later",
            text="x",
            scheduled_at=datetime.now(UTC) + timedelta(hours=1),
        )
        assert isinstance(sent, SendResult)
        when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)

        moved = client.reschedule_email(sent.message_id, when)

        assert moved.message_id == sent.message_id and moved.status == "queued"
        assert moved.scheduled_at is not None
        assert datetime.fromisoformat(moved.scheduled_at) == when
        with pytest.raises(ValidationError) as past:
            client.reschedule_email(moved.id, int(datetime.now(UTC).timestamp() * 1000) - 60_000)
        assert past.value.field == "scheduledAt"
        with pytest.raises(ValueError, match="timezone-aware"):
            client.reschedule_email(moved.id, datetime.now() + timedelta(days=1))

        canceled = client.cancel_email(moved.id)

        assert (canceled.id, canceled.message_id) == (moved.id, sent.message_id)
        assert (canceled.status, canceled.canceled, canceled.not_canceled) == (
            "canceled",
            [recipient],
            [],
        )
        assert [r.status for r in client.get_email(moved.id).recipients] == ["canceled"]
        with pytest.raises(ConflictError) as again:
            client.cancel_email(moved.id)
        assert again.value.status == 409
        with pytest.raises(NotFoundError):
            client.cancel_email("999999")


async def test_sync_client_cancels_and_reschedules(live_api: LiveApi) -> None:
    await asyncio.to_thread(_sync_cancel_and_reschedule, live_api)


async def test_async_client_cancels_and_reschedules(live_api: LiveApi) -> None:
    async with AsyncMailmark(live_api.api_key, base_url=live_api.base_url) as client:
        ann, bob = _unique("ann-") + "@example.com", _unique("bob-") + "@example.com"
        sent = await client.send(
            from_=live_api.sender,
            to=[ann, bob],
            subject="Later",
            text="x",
            scheduled_at=datetime.now(UTC) + timedelta(hours=1),
        )
        assert isinstance(sent, SendResult)
        later = int((datetime.now(UTC) + timedelta(hours=2)).timestamp() * 1000)

        moved = await client.reschedule_email(sent.message_id, later)
        canceled = await client.cancel_email(sent.message_id)

        assert moved.scheduled_at is not None
        assert datetime.fromisoformat(moved.scheduled_at).timestamp() * 1000 == later
        assert canceled.canceled == [ann, bob] and canceled.not_canceled == []
        with pytest.raises(ConflictError):
            await client.reschedule_email(sent.message_id, later)

"""Mailboxes, API keys, webhooks and the account as the dashboard changes them, for a viewer:
owners and admins manage their account, a member only sees and edits the mailboxes assigned to
them, and anything of another account is answered as not existing."""

from __future__ import annotations

import asyncio
import imaplib
from datetime import timedelta

import pytest

from mailmark.bootstrap import Listeners, Services
from mailmark.config import Settings
from mailmark.core.access import Role, Viewer
from mailmark.core.errors import Forbidden, InvalidInput, NotFound
from mailmark.core.ports import Clock
from mailmark.core.webhooks import TEST_EVENT_TYPE, verify_signature
from tests.support.clock import SettableClock
from tests.support.tls import client_tls
from tests.support.viewers import add_user, assign, viewer_of
from tests.support.webhook_receiver import Receiver
from tests.support.world import World


@pytest.fixture
def clock() -> Clock:
    return SettableClock()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private_networks": ["127.0.0.1/32"]})


@pytest.fixture
async def owner(world: World) -> Viewer:
    return await viewer_of(world.services, "owner@acme.test")


@pytest.fixture
async def member(world: World) -> Viewer:
    viewer = await add_user(world.services, "acme", "member@acme.test", Role.MEMBER)
    await assign(world.services, world.support, viewer)
    return viewer


@pytest.fixture
async def stranger(world: World) -> Viewer:
    await world.services.accounts.create(
        "other", owner_email="owner@other.test", password="owner-pass-1", plan="unlimited"
    )
    return await viewer_of(world.services, "owner@other.test")


def imap_login(port: int, address: str, password: str) -> str:
    client = imaplib.IMAP4("127.0.0.1", port)
    try:
        client.starttls(client_tls())
        status, _ = client.login(address, password)
        return str(status)
    finally:
        client.logout()


async def test_a_mailbox_created_without_a_password_logs_in_once_one_is_set(
    world: World, owner: Viewer, listeners: Listeners
) -> None:
    services = world.services
    # As /v1 creates it: no password, so no IMAP or SMTP login is possible.
    await services.mailboxes.create("api@acme.test")
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(imap_login, listeners.imap_port, "api@acme.test", "whatever-1")

    await services.mailboxes.set_password(owner, "api@acme.test", "chosen-pass-1")
    assert (
        await asyncio.to_thread(imap_login, listeners.imap_port, "api@acme.test", "chosen-pass-1")
        == "OK"
    )

    generated = await services.mailboxes.generate_password(owner, "api@acme.test")
    assert len(generated) >= 24
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(imap_login, listeners.imap_port, "api@acme.test", "chosen-pass-1")
    assert (
        await asyncio.to_thread(imap_login, listeners.imap_port, "api@acme.test", generated) == "OK"
    )


async def test_create_by_local_part_with_a_sanitised_html_signature(
    world: World, owner: Viewer
) -> None:
    services = world.services
    created = await services.mailboxes.create_for(
        owner,
        world.domain,
        "hello",
        display_name="Hello Team",
        signature='<p onclick="steal()">Hi<script>alert(1)</script> <a href="javascript:x()">'
        'me</a> <a href="https://acme.test">site</a></p>',
        signature_format="html",
    )
    mailbox = created.mailbox
    assert mailbox.address == "hello@acme.test"
    assert mailbox.signature_format == "html"
    assert "script" not in mailbox.signature and "onclick" not in mailbox.signature
    assert "javascript" not in mailbox.signature
    assert 'href="https://acme.test"' in mailbox.signature
    assert mailbox.password_hash is None

    text = await services.mailboxes.update_for(
        owner, "hello@acme.test", signature="<b>plain</b>", signature_format="text"
    )
    assert text.mailbox.signature == "<b>plain</b>"  # text is kept as written
    with pytest.raises(InvalidInput) as bad_format:
        await services.mailboxes.update_for(owner, "hello@acme.test", signature_format="rtf")
    assert bad_format.value.field == "signatureFormat"
    with pytest.raises(InvalidInput) as with_domain:
        await services.mailboxes.create_for(owner, world.domain, "x@acme.test")
    assert with_domain.value.field == "localPart"


async def test_a_member_sees_and_edits_only_assigned_mailboxes(
    world: World, owner: Viewer, member: Viewer
) -> None:
    services = world.services
    everything = await services.mailboxes.list_for(owner)
    assert [v.mailbox.address for v in everything] == ["sales@acme.test", "support@acme.test"]
    mine = await services.mailboxes.list_for(member)
    assert [v.mailbox.address for v in mine] == ["support@acme.test"]
    assert mine[0].assigned_user_ids == (member.user_id,)

    await services.mailboxes.update_for(member, "support@acme.test", display_name="Support")
    await services.mailboxes.set_password(member, "support@acme.test", "member-pass-1")
    for call in (
        services.mailboxes.get_for(member, "sales@acme.test"),
        services.mailboxes.update_for(member, "sales@acme.test", display_name="Mine now"),
        services.mailboxes.set_password(member, "sales@acme.test", "member-pass-1"),
        services.mailboxes.generate_password(member, "sales@acme.test"),
    ):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(Forbidden, match="Only an owner or an admin can delete a mailbox"):
        await services.mailboxes.delete_for(
            member, "support@acme.test", confirm="support@acme.test"
        )
    with pytest.raises(Forbidden):
        await services.mailboxes.create_for(member, world.domain, "mine")
    assert (await services.mailboxes.get("sales@acme.test")).display_name == "Sales"


async def test_another_account_sees_none_of_it(
    world: World, owner: Viewer, stranger: Viewer
) -> None:
    services = world.services
    assert await services.mailboxes.list_for(stranger) == []
    with pytest.raises(NotFound):
        await services.mailboxes.list_for(stranger, world.domain)
    for call in (
        services.mailboxes.get_for(stranger, "sales@acme.test"),
        services.mailboxes.set_password(stranger, "sales@acme.test", "stolen-pass-1"),
        services.mailboxes.delete_for(stranger, "sales@acme.test", confirm="sales@acme.test"),
        services.mailboxes.create_for(stranger, world.domain, "intruder"),
        services.api_keys.list_for(stranger, world.domain),
        services.api_keys.create_for(stranger, world.domain, "k"),
        services.webhooks.list_for(stranger, world.domain),
        services.webhooks.create_for(stranger, world.domain, "http://127.0.0.1:9/x", None),
    ):
        with pytest.raises(NotFound):
            await call
    created = await services.api_keys.create_for(owner, world.domain, "mine")
    assert created.key.id is not None
    with pytest.raises(NotFound):
        await services.api_keys.revoke_for(stranger, world.domain, created.key.id)
    await services.accounts.create(
        "third", owner_email="o@third.test", password="owner-pass-1", plan="unlimited"
    )
    await services.domains.add("third.test", account_name="third", trust=True)
    # Revoking through one's own domain does not reach a key of another domain either.
    third = await viewer_of(services, "o@third.test")
    with pytest.raises(NotFound):
        await services.api_keys.revoke_for(third, "third.test", created.key.id)
    assert (await services.api_keys.list_for(owner, world.domain))[0].revoked_at is None


async def test_mailbox_deletion_needs_the_address_typed(world: World, owner: Viewer) -> None:
    services = world.services
    with pytest.raises(InvalidInput) as refused:
        await services.mailboxes.delete_for(owner, "sales@acme.test", confirm="sales")
    assert refused.value.field == "confirm"
    await services.mailboxes.delete_for(owner, "sales@acme.test", confirm="Sales@acme.test")
    with pytest.raises(NotFound):
        await services.mailboxes.get("sales@acme.test")


async def test_a_test_delivery_is_signed_and_posted_like_a_real_one(
    world: World, owner: Viewer, receiver: Receiver
) -> None:
    services = world.services
    url = f"http://127.0.0.1:{receiver.port}/hook"
    created = await services.webhooks.create_for(owner, world.domain, url, None)
    hook_id = created.webhook.id
    assert hook_id is not None

    result = await services.webhooks.send_test(owner, world.domain, hook_id)
    assert result.ok and result.status_code == 200 and result.error is None
    sent = receiver.requests[-1]
    assert sent.event["type"] == TEST_EVENT_TYPE and sent.event["domain"] == world.domain
    now = int(services.clock.now().timestamp())
    assert verify_signature(created.secret, sent.headers["mailmark-signature"], sent.body, now)

    rotated = await services.webhooks.rotate_secret(owner, world.domain, hook_id)
    assert rotated != created.secret and rotated.startswith("whsec_")
    receiver.statuses.append(503)
    failed = await services.webhooks.send_test(owner, world.domain, hook_id)
    assert (failed.ok, failed.status_code) == (False, 503)
    again = receiver.requests[-1]
    assert verify_signature(rotated, again.headers["mailmark-signature"], again.body, now)
    assert not verify_signature(
        created.secret, again.headers["mailmark-signature"], again.body, now
    )
    assert await services.webhooks.attempts(owner, world.domain, hook_id) == []


async def test_the_account_overview_shows_limits_usage_and_the_product_texts(
    services: Services, clock: Clock
) -> None:
    assert isinstance(clock, SettableClock)
    await services.accounts.create("trial", owner_email="o@trial.test", password="owner-pass-1")
    owner = await viewer_of(services, "o@trial.test")
    fresh = await services.accounts.overview(owner)
    assert (fresh.status, fresh.plan.name, fresh.plan_label) == ("trial", "starter", "Starter")
    assert (fresh.trial_days_left, fresh.notices) == (7, ())

    await services.domains.add("trial.test", account_name="trial", trust=True)
    for name in ("a", "b", "c"):
        await services.mailboxes.create(f"{name}@trial.test")
    clock.advance(timedelta(days=2, hours=1))
    full = await services.accounts.overview(owner)
    assert (full.usage.domains, full.usage.mailboxes, full.usage.emails_this_month) == (1, 3, 0)
    assert full.trial_days_left == 5
    assert full.notices == (
        "Domain limit reached. Your plan allows 1 domain(s). Please upgrade to add more.",
        "Mailbox limit reached. Your plan allows 3 mailbox(es). Please upgrade to add more.",
    )

    clock.advance(timedelta(days=5))
    paused = await services.accounts.overview(owner)
    assert paused.status == "paused" and paused.trial_days_left is None
    assert paused.notices[0] == (
        "Your free trial has ended. Choose a plan to continue using Mailmark."
    )

    member = await add_user(services, "trial", "m@trial.test", Role.MEMBER)
    assert (await services.accounts.overview(member)).account.name == "trial"
    with pytest.raises(Forbidden, match="Only an owner or an admin can rename the account"):
        await services.accounts.rename(member, "Renamed")
    renamed = await services.accounts.rename(owner, "Renamed Co")
    assert renamed.account.name == "Renamed Co"
    with pytest.raises(InvalidInput):
        await services.accounts.rename(owner, "\n")

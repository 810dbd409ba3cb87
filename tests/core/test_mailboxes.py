"""Mailboxes: creation rules, default folders, and deletion that frees exactly what nothing else uses."""

from __future__ import annotations

import hashlib
import re

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Services
from mailmark.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RelayDenied,
    UnknownMailbox,
)
from mailmark.core.mailboxes import MailboxService
from mailmark.sanitize import Nh3Sanitizer
from mailmark.storage.tables import messages, placements
from tests.support.world import World, stored_copies


def mail(subject: str, body: str = "Hello.") -> bytes:
    return (
        f"From: Alice <alice@example.org>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{hashlib.sha1(subject.encode()).hexdigest()}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


async def count(services: Services, query: sa.Select[tuple[int]]) -> int:
    async with services.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_create_normalises_and_makes_the_default_folders(world: World) -> None:
    services = world.services
    mailbox = await services.mailboxes.create(
        "First.Last@ACME.test", display_name="  First Last  ", password="first-pass-1"
    )

    assert (mailbox.local_part, mailbox.domain_name, mailbox.address) == (
        "first.last",
        "acme.test",
        "first.last@acme.test",
    )
    assert mailbox.display_name == "First Last"
    assert mailbox.password_hash and "first-pass-1" not in mailbox.password_hash
    assert await services.mailboxes.get("first.last@acme.test") == mailbox

    async with services.uow() as uow:
        folders = await uow.folders.list_for_mailbox(mailbox.id or 0)
    assert [(f.name, f.special_use) for f in folders] == [
        ("INBOX", None),
        ("Sent", "\\Sent"),
        ("Drafts", "\\Drafts"),
        ("Trash", "\\Trash"),
        ("Junk", "\\Junk"),
        ("Archive", "\\Archive"),
        ("Outbox", None),
    ]
    assert {(f.uid_next, f.subscribed) for f in folders} == {(1, True)}
    assert len({f.uid_validity for f in folders}) == 1 and folders[0].uid_validity > 0


async def test_duplicates_are_refused_whatever_the_case(world: World) -> None:
    with pytest.raises(Conflict, match=re.escape("Mailbox sales@acme.test already exists")):
        await world.services.mailboxes.create("SALES@acme.test")
    assert [m.local_part for m in await world.services.mailboxes.list("acme.test")] == [
        "sales",
        "support",
    ]


# One world for the whole table: setting one up (DKIM key, password hashes) is the slow part.
INVALID_ADDRESSES: list[tuple[str, type[Exception], str]] = [
    ("no-at-sign", InvalidInput, "not a full address"),
    ("@acme.test", InvalidInput, "not a full address"),
    ("a..b@acme.test", InvalidInput, "not a valid mailbox name"),
    (".a@acme.test", InvalidInput, "not a valid mailbox name"),
    ("a.@acme.test", InvalidInput, "not a valid mailbox name"),
    ("a b@acme.test", InvalidInput, "not a valid mailbox name"),
    ("tag+ged@acme.test", InvalidInput, "not a valid mailbox name"),
    ("per%cent@acme.test", InvalidInput, "not a valid mailbox name"),
    ('"quoted"@acme.test', InvalidInput, "not a valid mailbox name"),
    ("x" * 65 + "@acme.test", InvalidInput, "1 to 64 characters"),
    ("ok@acme..test", InvalidInput, "not a valid domain name"),
    ("ok@elsewhere.test", NotFound, "No domain elsewhere.test here"),
]

UNSAFE_OPTIONS: list[tuple[dict[str, str], str]] = [
    ({"password": "short"}, "at least 8 characters"),
    ({"display_name": "Evil\r\nBcc: victim@example.org"}, "line breaks"),
    ({"display_name": "x" * 201}, "longer than 200"),
]


async def test_invalid_addresses_and_unsafe_options_are_refused(world: World) -> None:
    for address, error, message in INVALID_ADDRESSES:
        with pytest.raises(error, match=message):
            await world.services.mailboxes.create(address)
    for options, message in UNSAFE_OPTIONS:
        with pytest.raises(InvalidInput, match=message):
            await world.services.mailboxes.create("new@acme.test", **options)
    assert [m.local_part for m in await world.services.mailboxes.list("acme.test")] == [
        "sales",
        "support",
    ]


async def test_mailboxes_need_a_verified_domain(services: Services) -> None:
    await services.accounts.create(
        "acme", owner_email="o@acme.test", password="owner-pass-1", plan="unlimited"
    )
    pending = await services.domains.add("pending.test", account_name="acme")
    assert (pending.status, pending.trusted) == ("pending", False)

    with pytest.raises(Forbidden, match=re.escape("pending.test is not verified yet")):
        await services.mailboxes.create("sales@pending.test")
    assert await services.mailboxes.list("pending.test") == []

    async with services.uow() as uow:
        await uow.domains.set_verified(pending.id or 0, services.clock.now())
        await uow.commit()
    created = await services.mailboxes.create("sales@pending.test")
    assert created.address == "sales@pending.test"


async def test_delete_removes_placements_and_only_unshared_blobs(world: World) -> None:
    services = world.services
    shared = mail("Shared with support")  # one message, placed in both mailboxes
    own = mail("For sales only")
    same_bytes = mail("Same bytes, separate messages")  # two messages, one blob
    shared_receipt = await services.delivery.deliver(
        shared, recipients=[world.sales, world.support], mail_from="alice@example.org"
    )
    own_receipt = await services.delivery.deliver(
        own, recipients=[world.sales], mail_from="alice@example.org"
    )
    twin_a = await services.delivery.deliver(
        same_bytes, recipients=[world.sales], mail_from="a@example.org"
    )
    twin_b = await services.delivery.deliver(
        same_bytes, recipients=[world.support], mail_from="b@example.org"
    )
    assert twin_a.blob_key == twin_b.blob_key and twin_a.message_id != twin_b.message_id
    assert len(await stored_copies(services, world.sales)) == 3

    await services.mailboxes.delete("Sales@acme.test")

    with pytest.raises(NotFound):
        await services.mailboxes.get("sales@acme.test")
    sales_id = world.sales.id
    assert (
        await count(
            services,
            sa.select(sa.func.count())
            .select_from(placements)
            .where(placements.c.mailbox_id == sales_id),
        )
        == 0
    )
    # The message only sales had is gone with its blob; the others stay for support.
    assert not await services.blobs.exists(own_receipt.blob_key)
    remaining = await count(
        services,
        sa.select(sa.func.count())
        .select_from(messages)
        .where(messages.c.id == own_receipt.message_id),
    )
    assert remaining == 0
    assert await services.blobs.get(shared_receipt.blob_key) == shared
    assert await services.blobs.get(twin_b.blob_key) == same_bytes
    support = await stored_copies(services, world.support)
    assert sorted(c.data for c in support) == sorted([shared, same_bytes])
    assert [m.local_part for m in await services.mailboxes.list("acme.test")] == ["support"]


async def test_delete_then_recreate_starts_empty(world: World) -> None:
    services = world.services
    await services.delivery.deliver(
        mail("Old"), recipients=[world.sales], mail_from="alice@example.org"
    )
    await services.mailboxes.delete("sales@acme.test")
    again = await services.mailboxes.create("sales@acme.test")

    assert again.id != world.sales.id
    assert await stored_copies(services, again) == []
    receipt = await services.delivery.deliver(
        mail("New"), recipients=[again], mail_from="alice@example.org"
    )
    assert receipt.placements[0].uid == 1


async def test_delete_unknown_mailbox(world: World) -> None:
    with pytest.raises(NotFound, match=re.escape("No mailbox nobody@acme.test here")):
        await world.services.mailboxes.delete("nobody@acme.test")


async def test_recipient_answers_follow_creation_and_deletion_at_once(world: World) -> None:
    """Recipient lookups are cached; creating or deleting a mailbox here must show immediately."""
    mailboxes = world.services.mailboxes
    with pytest.raises(UnknownMailbox):
        await mailboxes.resolve_recipients("late@acme.test")
    created = await mailboxes.create("late@acme.test")
    assert [m.id for m in await mailboxes.resolve_recipients("Late@ACME.test")] == [created.id]
    await mailboxes.delete("late@acme.test")
    with pytest.raises(UnknownMailbox):
        await mailboxes.resolve_recipients("late@acme.test")
    with pytest.raises(RelayDenied):
        await mailboxes.resolve_recipients("late@elsewhere.test")


async def test_a_mailbox_created_by_another_process_is_never_refused_from_the_cache(
    world: World,
) -> None:
    """Another process (the CLI, another node) cannot clear this process's recipient cache."""
    services = world.services
    other_process = MailboxService(
        services.uow,
        services.clock,
        services.passwords,
        services.blobs,
        Nh3Sanitizer(),
    )
    with pytest.raises(UnknownMailbox):
        await services.mailboxes.resolve_recipients("fresh@acme.test")
    created = await other_process.create("fresh@acme.test")
    assert [m.id for m in await services.mailboxes.resolve_recipients("fresh@acme.test")] == [
        created.id
    ]

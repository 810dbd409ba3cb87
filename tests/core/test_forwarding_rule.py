"""The forwarding rule at the rule level, last in the list: it adds the mailbox's forwarding, and
checks the redirects earlier rules asked for (a Sieve "redirect") against loops and the account's
standing, keeping the message here when it refuses them."""

from __future__ import annotations

from mailmark.bootstrap import Services
from mailmark.core.dispositions import Disposition, InboundMessage, MailboxSettings
from tests.support.world import World

PREFIX = (
    b"Return-Path: <alice@example.org>\r\n"
    b"Received: from client ([127.0.0.1])\r\n\tby mx.mailmark.test (Mailmark) with ESMTP id t1;\r\n"
    b"\tSun, 6 Dec 2026 04:00:00 +0000\r\n"
)


def message(raw: bytes = b"Subject: Hello\r\n\r\nHi.\r\n") -> InboundMessage:
    return InboundMessage(raw, PREFIX, "alice@example.org", ["sales@acme.test"], "t1")


async def test_forwarding_adds_its_addresses_and_drops_the_copy(
    services: Services, world: World
) -> None:
    rule = services.forwarding_rule
    start = Disposition(world.sales, ("INBOX",))
    assert await rule.apply(message(), start) == start  # no forwarding set

    await services.forwarding.set(world.sales.address, ["bob@remote.test"], keep_copy=False)
    decided = await rule.apply(message(), start)
    assert (decided.folders, decided.redirects) == ((), ("bob@remote.test",))

    # A copy a Sieve filter filed elsewhere stays where it was filed when a copy is kept.
    await services.forwarding.set(world.sales.address, ["bob@remote.test"], keep_copy=True)
    filed = Disposition(world.sales, ("Invoices",), redirects=("carol@remote.test",))
    decided = await rule.apply(message(), filed)
    assert decided.folders == ("Invoices",)
    assert decided.redirects == ("carol@remote.test", "bob@remote.test")


async def test_a_redirect_to_the_mailbox_itself_is_dropped(
    services: Services, world: World
) -> None:
    rule = services.forwarding_rule
    asked = Disposition(world.sales, ("INBOX",), redirects=("Sales@acme.test", "bob@remote.test"))
    assert (await rule.apply(message(), asked)).redirects == ("bob@remote.test",)
    # Sent on to itself only, without a copy: that is delivery to its INBOX, not a loss.
    only_itself = Disposition(world.sales, (), redirects=("sales@acme.test",))
    decided = await rule.apply(message(), only_itself)
    assert (decided.folders, decided.redirects) == (("INBOX",), ())


async def test_a_looping_redirect_is_refused_and_the_message_kept(
    services: Services, world: World
) -> None:
    """A Sieve "redirect" without "keep" of a message this mailbox forwarded before."""
    rule = services.forwarding_rule
    looped = message(b"Delivered-To: <sales@acme.test>\r\nSubject: Hello\r\n\r\nHi.\r\n")
    asked = Disposition(world.sales, (), redirects=("bob@remote.test",))
    decided = await rule.apply(looped, asked)
    assert (decided.folders, decided.redirects) == (("INBOX",), ())
    assert decided.problems == (
        "Not forwarded: it was forwarded by sales@acme.test before and came back (a forwarding "
        "loop)",
    )
    # Another mailbox's marker is no loop for this one.
    other = message(b"Delivered-To: support@acme.test\r\n\r\nHi.\r\n")
    assert (await rule.apply(other, asked)).redirects == ("bob@remote.test",)


async def test_mail_in_junk_is_not_forwarded(services: Services, world: World) -> None:
    await services.forwarding.set(world.sales.address, ["bob@remote.test"], keep_copy=False)
    rule = services.forwarding_rule
    junk = Disposition(world.sales, ("Junk",))
    assert await rule.apply(message(), junk) == junk


async def test_settings_are_read_once_per_mailbox_until_changed_here() -> None:
    """Delivery reads a mailbox's forwarding once in a while, not for every message; a change
    made on this node applies to the next message."""
    reads: list[int] = []

    async def read(mailbox_id: int) -> int:
        reads.append(mailbox_id)
        return len(reads)

    settings = MailboxSettings(read)
    assert [await settings.get(1), await settings.get(1), await settings.get(2)] == [1, 1, 2]
    settings.forget(1)
    assert await settings.get(1) == 3
    assert reads == [1, 2, 1]

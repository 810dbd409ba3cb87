"""Aliases, catch-all and alias domains, received over the MX with smtplib on a real socket."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from mailmark.core.errors import Conflict, InvalidInput, NotFound
from tests.support.world import World, stored_copies


def message(to: str, subject: str) -> bytes:
    return (
        f"From: Alice <alice@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.org>\r\n\r\nHello.\r\n"
    ).encode()


def send(port: int, recipients: list[str], subject: str = "Hello") -> dict[str, tuple[int, bytes]]:
    """Send over a blocking smtplib client; the refused recipients with their replies."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.sendmail(
            "alice@example.org", recipients, message(", ".join(recipients), subject)
        )


def rcpt_reply(port: int, recipient: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail("alice@example.org")
        return client.rcpt(recipient)


async def subjects(world: World, address: str) -> list[str | None]:
    mailbox = await world.services.mailboxes.get(address)
    return [copy.subject for copy in await stored_copies(world.services, mailbox)]


async def test_an_alias_delivers_one_copy_to_each_of_its_mailboxes(
    world: World, mx_port: int
) -> None:
    await world.services.aliases.add("team@acme.test", ["sales@acme.test", "support@acme.test"])

    # The alias, a member named again, and a second alias sharing that member: one copy each.
    await world.services.aliases.add("info@acme.test", ["sales"])  # a local part of its domain
    refused = await asyncio.to_thread(
        send, mx_port, ["team@acme.test", "Sales@acme.test", "info+news@acme.test"], "Team news"
    )

    assert refused == {}
    assert await subjects(world, "sales@acme.test") == ["Team news"]
    assert await subjects(world, "support@acme.test") == ["Team news"]


async def test_an_unknown_address_is_still_refused_without_a_catch_all(
    world: World, mx_port: int
) -> None:
    code, text = await asyncio.to_thread(rcpt_reply, mx_port, "nobody@acme.test")

    assert code == 550
    assert text.startswith(b"5.1.1")


async def test_a_catch_all_takes_unknown_local_parts_until_turned_off(
    world: World, mx_port: int
) -> None:
    await world.services.aliases.set_catch_all("acme.test", "support")

    refused = await asyncio.to_thread(send, mx_port, ["whoever+x@acme.test"], "Caught")
    assert refused == {}
    assert await subjects(world, "support@acme.test") == ["Caught"]
    # An existing mailbox still gets its own mail, not the catch-all.
    await asyncio.to_thread(send, mx_port, ["sales@acme.test"], "Direct")
    assert await subjects(world, "sales@acme.test") == ["Direct"]
    assert await subjects(world, "support@acme.test") == ["Caught"]

    await world.services.aliases.set_catch_all("acme.test", None)
    code, text = await asyncio.to_thread(rcpt_reply, mx_port, "whoever@acme.test")
    assert (code, text[:5]) == (550, b"5.1.1")


async def test_a_catch_all_does_not_swallow_report_or_bounce_addresses(
    world: World, mx_port: int
) -> None:
    await world.services.aliases.set_catch_all("acme.test", "support@acme.test")

    # Handled as a report (this one holds none, so DATA refuses it), never by the catch-all.
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await asyncio.to_thread(send, mx_port, ["dmarc@acme.test"], "Report")

    assert refused.value.smtp_code == 550
    assert b"No DMARC aggregate report" in refused.value.smtp_error
    assert await subjects(world, "support@acme.test") == []


async def test_an_alias_domain_delivers_as_the_domain_it_aliases(
    world: World, mx_port: int
) -> None:
    await world.services.domains.add("acme.example", account_name="acme", alias_of="acme.test")
    await world.services.aliases.add("team@acme.test", ["support@acme.test"])

    refused = await asyncio.to_thread(
        send, mx_port, ["sales@acme.example", "team@acme.example"], "Via alias domain"
    )

    assert refused == {}
    assert await subjects(world, "sales@acme.test") == ["Via alias domain"]
    assert await subjects(world, "support@acme.test") == ["Via alias domain"]
    code, text = await asyncio.to_thread(rcpt_reply, mx_port, "nobody@acme.example")
    assert (code, text[:5]) == (550, b"5.1.1")


async def test_an_alias_domain_publishes_its_own_mx_and_spf(world: World) -> None:
    await world.services.domains.add("acme.example", account_name="acme", alias_of="acme.test")

    domain, records = await world.services.domains.records("acme.example")

    kinds = {(record.type, record.name) for record in records}
    assert ("MX", "acme.example") in kinds
    assert any(r.type == "TXT" and r.value.startswith("v=spf1") for r in records)
    assert domain.name == "acme.example"


async def test_a_removed_member_leaves_the_alias_and_an_empty_alias_goes(
    world: World, mx_port: int
) -> None:
    await world.services.aliases.add("team@acme.test", ["sales@acme.test", "support@acme.test"])
    await world.services.aliases.add("help@acme.test", ["support@acme.test"])

    await world.services.mailboxes.delete("support@acme.test")

    [team] = await world.services.aliases.list("acme.test")
    assert team.address == "team@acme.test"
    assert [m.address for m in team.targets] == ["sales@acme.test"]
    code, _ = await asyncio.to_thread(rcpt_reply, mx_port, "help@acme.test")
    assert code == 550


async def test_another_accounts_mailbox_cannot_be_an_alias_target(world: World) -> None:
    services = world.services
    await services.accounts.create(
        "rival", owner_email="owner@rival.test", password="owner-pass-1", plan="unlimited"
    )
    await services.domains.add("rival.test", account_name="rival", trust=True)
    await services.mailboxes.create("boss@rival.test")

    with pytest.raises(NotFound, match="in this account"):
        await services.aliases.add("spy@rival.test", ["sales@acme.test"])
    with pytest.raises(NotFound, match="in this account"):
        await services.aliases.set_catch_all("rival.test", "sales@acme.test")
    with pytest.raises(NotFound):
        await services.domains.add("rival.example", account_name="rival", alias_of="acme.test")


async def test_aliases_and_mailboxes_never_share_an_address(world: World) -> None:
    services = world.services
    with pytest.raises(Conflict, match="is a mailbox already"):
        await services.aliases.add("sales@acme.test", ["support@acme.test"])
    await services.aliases.add("team@acme.test", ["support@acme.test"])
    with pytest.raises(Conflict, match="is an alias"):
        await services.mailboxes.create("team@acme.test")
    with pytest.raises(Conflict, match="already exists"):
        await services.aliases.add("Team@acme.test", ["sales@acme.test"])
    await services.domains.add("acme.example", account_name="acme", alias_of="acme.test")
    with pytest.raises(InvalidInput, match=r"is an alias of acme\.test"):
        await services.aliases.add("x@acme.example", ["sales@acme.test"])


async def test_a_new_alias_works_at_once_after_a_refusal(world: World, mx_port: int) -> None:
    code, _ = await asyncio.to_thread(rcpt_reply, mx_port, "later@acme.test")
    assert code == 550
    # A found recipient is cached for a few seconds: the change must clear it on this node.
    await asyncio.to_thread(send, mx_port, ["sales@acme.test"], "Warm the cache")

    await world.services.aliases.add("later@acme.test", ["support@acme.test"])
    await world.services.aliases.set_catch_all("acme.test", "support")
    assert await asyncio.to_thread(send, mx_port, ["later@acme.test"], "Now") == {}
    await world.services.aliases.remove("later@acme.test")

    assert await asyncio.to_thread(send, mx_port, ["later@acme.test"], "Caught") == {}
    assert await subjects(world, "support@acme.test") == ["Now", "Caught"]


async def test_aliases_do_not_count_against_the_mailbox_quota(world: World) -> None:
    services = world.services
    await services.accounts.create(
        "tiny", owner_email="owner@tiny.test", password="owner-pass-1", plan="starter"
    )
    await services.domains.add("tiny.test", account_name="tiny", trust=True)
    for name in ("a", "b", "c"):
        await services.mailboxes.create(f"{name}@tiny.test")

    for name in ("d", "e", "f", "g"):
        await services.aliases.add(f"{name}@tiny.test", ["a@tiny.test"])
    await services.domains.add("tiny.example", account_name="tiny", alias_of="tiny.test")

    assert len(await services.aliases.list("tiny.test")) == 4

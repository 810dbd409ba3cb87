"""The inbound use case, called directly: the DMARC verdict chooses the folder (or refuses), the
trace fields lead the stored message, and mail only to return paths stores nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import pytest
import sqlalchemy as sa

from mailmark.core.dispositions import DeliveryRule, Disposition, InboundMessage
from mailmark.core.errors import MessageTooLarge, PolicyRejected
from mailmark.core.inbound import InboundEnvelope, InboundMail
from mailmark.core.states import SpecialFolder
from mailmark.storage.tables import placements
from tests.support.world import HOSTNAME, World, stored_copies

RAW = b"From: ann@remote.test\r\nTo: sales@acme.test\r\nSubject: Hi\r\n\r\nHello\r\n"


@dataclass(frozen=True)
class Verdict:
    """A fixed authentication verdict: the DNS-backed evaluation lives in smtp_in."""

    dmarc: str = "pass"
    dmarc_policy: str | None = "reject"
    header_from_domain: str | None = "remote.test"

    def header(self) -> bytes:
        return f"Authentication-Results: {HOSTNAME}; dmarc={self.dmarc}\r\n".encode()


@dataclass
class FixedAuthentication:
    verdict: Verdict
    asked: int = 0

    async def authenticate(
        self, *, raw: bytes, client_ip: str, helo: str, mail_from: str
    ) -> Verdict:
        self.asked += 1
        return self.verdict


def inbound(world: World, verdict: Verdict) -> tuple[InboundMail, FixedAuthentication]:
    services = world.services
    authentication = FixedAuthentication(verdict)
    service = InboundMail(
        delivery=services.delivery,
        reports=services.queue,
        authentication=authentication,
        clock=services.clock,
        hostname=HOSTNAME,
    )
    return service, authentication


def envelope(world: World) -> InboundEnvelope:
    return InboundEnvelope(
        transaction_id="0123456789abcdef",
        mail_from="ann@remote.test",
        rcpt_tos=["sales@acme.test"],
        mailboxes=[world.sales],
        report_tokens=[],
        client_ip="2001:db8::1",
        helo="mail.remote.test",
        esmtp=True,
        tls=True,
    )


async def test_a_message_is_stored_with_its_trace_fields_first(world: World) -> None:
    service, _ = inbound(world, Verdict())

    receipt = await service.accept(RAW, envelope(world))

    assert receipt is not None and len(receipt.placements) == 1
    [copy] = await stored_copies(world.services, world.sales)
    assert copy.folder == SpecialFolder.INBOX
    trace, _, rest = copy.data.partition(b"Authentication-Results: ")
    assert trace.startswith(b"Return-Path: <ann@remote.test>\r\nReceived: from mail.remote.test")
    assert b"([IPv6:2001:db8::1])" in trace and b"with ESMTPS id 0123456789abcdef" in trace
    assert b"for <sales@acme.test>;" in trace
    assert rest.endswith(RAW)


@pytest.mark.parametrize(
    ("policy", "folder"), [("quarantine", SpecialFolder.JUNK), ("none", SpecialFolder.INBOX)]
)
async def test_a_failing_message_goes_where_its_dmarc_policy_says(
    world: World, policy: str, folder: SpecialFolder
) -> None:
    service, _ = inbound(world, Verdict(dmarc="fail", dmarc_policy=policy))

    await service.accept(RAW, envelope(world))

    assert [copy.folder for copy in await stored_copies(world.services, world.sales)] == [folder]


async def test_a_failing_message_under_p_reject_is_refused_and_not_stored(world: World) -> None:
    service, _ = inbound(world, Verdict(dmarc="fail", dmarc_policy="reject"))

    with pytest.raises(PolicyRejected, match=re.escape("remote.test")):
        await service.accept(RAW, envelope(world))

    assert await stored_copies(world.services, world.sales) == []


async def test_mail_only_to_return_paths_is_not_authenticated_or_stored(world: World) -> None:
    service, authentication = inbound(world, Verdict())
    to_return_path = replace(
        envelope(world),
        rcpt_tos=["bounce+unknown@mail.acme.test"],
        mailboxes=[],
        report_tokens=["unknown"],
    )

    assert await service.accept(RAW, to_return_path) is None
    assert authentication.asked == 0


async def test_header_limits_come_before_authentication(world: World) -> None:
    service, authentication = inbound(world, Verdict())
    huge_header = b"X-Filler: " + b"x" * (1024 * 1024) + b"\r\n" + RAW

    with pytest.raises(MessageTooLarge):
        await service.accept(huge_header, envelope(world))
    assert authentication.asked == 0


@dataclass
class FileAs:
    """A mailbox rule of the kind filters are: file the message by what its Subject says."""

    folder: str
    flags: tuple[str, ...] = ()
    seen_subjects: list[str] | None = None

    async def apply(self, message: InboundMessage, disposition: Disposition) -> Disposition:
        if self.seen_subjects is not None:
            self.seen_subjects.append(str(message.message["Subject"]))
        return replace(disposition.filed_in(self.folder), flags=self.flags)


class Broken:
    async def apply(self, message: InboundMessage, disposition: Disposition) -> Disposition:
        raise ValueError("line 3: unknown command")


class Discard:
    async def apply(self, message: InboundMessage, disposition: Disposition) -> Disposition:
        return disposition.filed_in()


def with_rules(world: World, *rules: DeliveryRule) -> InboundMail:
    services = world.services
    return InboundMail(
        delivery=services.delivery,
        reports=services.queue,
        authentication=FixedAuthentication(Verdict()),
        clock=services.clock,
        hostname=HOSTNAME,
        rules=rules,
    )


async def test_rules_choose_each_copys_folder_and_flags_seeing_the_parsed_message(
    world: World,
) -> None:
    subjects: list[str] = []
    service = with_rules(world, FileAs(SpecialFolder.ARCHIVE, ("\\Flagged",), subjects))

    await service.accept(RAW, envelope(world))

    [copy] = await stored_copies(world.services, world.sales)
    assert copy.folder == SpecialFolder.ARCHIVE and subjects == ["Hi"]
    async with world.services.engine.connect() as conn:
        flags = (await conn.execute(sa.select(placements.c.flags))).scalar_one()
    assert flags == ["\\Flagged"]


async def test_a_failing_rule_leaves_the_message_where_it_was_going(world: World) -> None:
    service = with_rules(world, Broken())

    receipt = await service.accept(RAW, envelope(world))

    assert receipt is not None
    assert [copy.folder for copy in await stored_copies(world.services, world.sales)] == [
        SpecialFolder.INBOX
    ]


async def test_a_message_every_mailbox_discards_is_accepted_and_not_stored(world: World) -> None:
    service = with_rules(world, Discard())

    assert await service.accept(RAW, envelope(world)) is None
    assert await stored_copies(world.services, world.sales) == []

"""Vacation replies over real sockets: mail comes in through the MX (smtplib), the answer leaves
through the outbound queue to a receiving MTA on loopback found by its MX record, DKIM-signed,
with a null return path; once per sender per N days (the clock moved by hand), never to lists,
automatic mail or null senders, and only within the responder's dates."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP, default

import dkim  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Services
from mailmark.core.vacation import VacationChange
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.smtp_out.worker import OutboundWorker
from mailmark.storage.tables import outbound_messages, vacation_replies
from tests.fakedns import FakeDns
from tests.support.clock import SettableClock
from tests.support.smtp_sink import AiosmtpdSink
from tests.support.world import World, stored_copies

AWAY = "I am away until 20 January and will answer when I am back.\n"


def message(
    sender: str = "bob@remote.test",
    *,
    to: str = "sales@acme.test",
    subject: str = "Quote request",
    message_id: str = "<q1@remote.test>",
    **fields: str,
) -> bytes:
    built = EmailMessage()
    built["From"] = sender or "daemon@remote.test"
    built["To"] = to
    built["Subject"] = subject
    built["Message-ID"] = message_id
    for name, value in fields.items():
        built[name.replace("_", "-")] = value
    built.set_content("Could you send me a quote for 40 chairs?\n")
    return built.as_bytes(policy=SMTP)


async def send(port: int, raw: bytes, *, mail_from: str = "bob@remote.test") -> None:
    """Deliver through the MX with smtplib; the 250 comes after any reply is queued."""

    def transaction() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail(mail_from, ["sales@acme.test"], raw)

    await asyncio.to_thread(transaction)


async def replies_queued(services: Services) -> int:
    query = sa.select(sa.func.count()).where(outbound_messages.c.source == "auto-reply")
    async with services.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


@pytest.fixture
async def away(services: Services, world: World) -> None:
    await services.vacation.set(world.sales.address, VacationChange(enabled=True, body=AWAY))


def parsed(content: bytes) -> EmailMessage:
    result = BytesParser(policy=default).parsebytes(content)
    assert isinstance(result, EmailMessage)
    return result


async def test_the_reply_goes_to_the_return_path_signed_with_a_null_sender(
    services: Services,
    world: World,
    mx_port: int,
    away: None,
    outbound: OutboundWorker,
    sink: AiosmtpdSink,
    remote_dns: FakeDns,
) -> None:
    raw = message(
        "Bob <bob@remote.test>",
        to="Sales <sales@acme.test>",
        References="<q0@remote.test>",
    )
    await send(mx_port, raw, mail_from="bob@remote.test")
    await sink.wait_for(1)
    [received] = sink.received
    assert received.mail_from == "<>"  # RFC 3834 §3.3: MAIL FROM:<>
    assert received.recipients == ["bob@remote.test"]
    reply = parsed(received.content)
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["Subject"] == "Auto: Quote request"
    assert reply["From"] == "Sales <sales@acme.test>"
    assert reply["To"] == "bob@remote.test"
    assert reply["In-Reply-To"] == "<q1@remote.test>"
    assert reply["References"] == "<q0@remote.test> <q1@remote.test>"
    body = reply.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == AWAY  # type: ignore[attr-defined]
    resolver = DnsResolver([remote_dns.address])
    assert dkim.verify(received.content, dnsfunc=resolver.dkim_dnsfunc)
    assert b"d=acme.test" in received.content.split(b"\r\n\r\n", 1)[0]
    # The original is kept in the INBOX as usual.
    assert [copy.folder for copy in await stored_copies(services, world.sales)] == ["INBOX"]


async def test_each_sender_is_answered_once_in_the_days_set(
    services: Services,
    world: World,
    mx_port: int,
    away: None,
    outbound: OutboundWorker,
    sink: AiosmtpdSink,
    clock: SettableClock,
) -> None:
    await send(mx_port, message(message_id="<a1@remote.test>"))
    await send(mx_port, message(message_id="<a2@remote.test>", subject="Any news?"))
    assert await replies_queued(services) == 1
    await send(
        mx_port,
        message("carol@other.test", message_id="<c1@other.test>"),
        mail_from="carol@other.test",
    )
    assert await replies_queued(services) == 2
    # Delivered before the clock jumps: a jump past a delivery's lease would let it go twice.
    await sink.wait_for(2)
    clock.advance(timedelta(days=6, hours=23))
    await send(mx_port, message(message_id="<a3@remote.test>"))
    assert await replies_queued(services) == 2
    clock.advance(timedelta(hours=1))
    await send(mx_port, message(message_id="<a4@remote.test>", subject="Back yet?"))
    assert await replies_queued(services) == 3
    await sink.wait_for(3)
    assert [r.recipients for r in sink.received] == [
        ["bob@remote.test"],
        ["carol@other.test"],
        ["bob@remote.test"],
    ]
    assert parsed(sink.received[2].content)["In-Reply-To"] == "<a4@remote.test>"
    # Carol's silence ended too and was pruned when Bob's was renewed; no address is kept.
    async with services.engine.connect() as conn:
        keys = (await conn.execute(sa.select(vacation_replies.c.key))).scalars().all()
    assert len(keys) == 1 and "bob" not in keys[0]
    assert len(await stored_copies(services, world.sales)) == 5


@pytest.mark.parametrize(
    ("raw", "mail_from"),
    [
        pytest.param(
            message(List_Id="<chairs.lists.remote.test>"), "bob@remote.test", id="List-Id"
        ),
        pytest.param(
            message(List_Unsubscribe="<mailto:leave@remote.test>"),
            "bob@remote.test",
            id="List-Unsubscribe",
        ),
        pytest.param(
            message(Auto_Submitted="auto-generated"), "bob@remote.test", id="auto-generated"
        ),
        pytest.param(message(Auto_Submitted="auto-replied"), "bob@remote.test", id="auto-replied"),
        pytest.param(message(Precedence="bulk"), "bob@remote.test", id="Precedence-bulk"),
        pytest.param(message(Precedence="list"), "bob@remote.test", id="Precedence-list"),
        pytest.param(message(), "", id="null-sender"),
        pytest.param(
            message("MAILER-DAEMON@remote.test"), "MAILER-DAEMON@remote.test", id="daemon"
        ),
        pytest.param(message("owner-chairs@remote.test"), "owner-chairs@remote.test", id="owner"),
        pytest.param(
            message("chairs-request@remote.test"), "chairs-request@remote.test", id="request"
        ),
        pytest.param(message("noreply@remote.test"), "noreply@remote.test", id="noreply"),
        pytest.param(message(to="everyone@remote.test"), "bob@remote.test", id="not-named"),
        pytest.param(message("sales@acme.test"), "sales@acme.test", id="ourselves"),
    ],
)
async def test_automatic_list_and_bulk_mail_is_never_answered(
    services: Services, world: World, mx_port: int, away: None, raw: bytes, mail_from: str
) -> None:
    await send(mx_port, raw, mail_from=mail_from)
    assert await replies_queued(services) == 0
    assert len(await stored_copies(services, world.sales)) == 1


async def test_auto_submitted_no_is_answered(services: Services, mx_port: int, away: None) -> None:
    await send(mx_port, message(Auto_Submitted="no"))
    assert await replies_queued(services) == 1


async def test_only_within_its_dates(
    services: Services, world: World, mx_port: int, clock: SettableClock
) -> None:
    # The clock reads 2030-01-07 09:00 UTC, 10:00 in Paris.
    await services.vacation.set(
        world.sales.address,
        VacationChange(
            enabled=True,
            body=AWAY,
            time_zone="Europe/Paris",
            starts="2030-01-08",
            ends="2030-01-09",
            days=1,
        ),
    )
    await send(mx_port, message(message_id="<d1@remote.test>"))
    assert await replies_queued(services) == 0
    clock.advance(timedelta(hours=14))  # 2030-01-08 00:00 in Paris
    await send(mx_port, message(message_id="<d2@remote.test>"))
    assert await replies_queued(services) == 1
    # Each later message comes from a new sender, so neither the once-per-sender memory nor a
    # bounce of an earlier reply (the outbound worker runs) can be why one is not answered.
    clock.advance(timedelta(days=1, hours=22))  # 2030-01-09 22:00 in Paris: the last day counts
    carol = "carol@remote.test"
    await send(mx_port, message(carol, message_id="<d3@remote.test>"), mail_from=carol)
    assert await replies_queued(services) == 2
    clock.advance(timedelta(hours=2))  # 2030-01-10 00:00 in Paris: the last day is over
    dave = "dave@remote.test"
    await send(mx_port, message(dave, message_id="<d4@remote.test>"), mail_from=dave)
    assert await replies_queued(services) == 2


async def test_turned_off_it_answers_nothing(
    services: Services, world: World, mx_port: int, away: None
) -> None:
    await services.vacation.set(world.sales.address, VacationChange(enabled=False, body=AWAY))
    await send(mx_port, message())
    assert await replies_queued(services) == 0

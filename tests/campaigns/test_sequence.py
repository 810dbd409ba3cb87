"""A three-stage campaign over real sockets on an injected clock: contacts and the campaign made
through the API, stages queued by the engine and delivered by the outbound worker to the
receiving MTA for remote.test, replies coming back through our MX.

One contact replies after stage 1 (no more stages), one unsubscribes, one is refused at the sink
(bounced: stopped and suppressed), one auto-replies (counted, the sequence goes on), one has a
custom field that would inject a header (refused, nothing sent); the others get all three stages,
threaded, DKIM signed, with merge fields and their fallbacks filled in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

import dkim  # type: ignore[import-untyped]
import httpx
import sqlalchemy as sa

from mailmark.bootstrap import Services
from mailmark.core.states import WAITING_STATUSES
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.smtp_out.worker import OutboundWorker
from mailmark.storage.tables import deliveries, events, suppressions
from tests.campaigns.conftest import contacts_list, reply_through_mx
from tests.fakedns import FakeDns
from tests.support.clock import SettableClock
from tests.support.smtp_sink import AiosmtpdSink

STAGES = [
    {
        "subject": "Hello {{firstName|there}} at {{company|your company}}{{title}}",
        "html": "<p>Hi {{firstName|there}},</p><p>Your plan: {{plan|none yet}}.</p>",
    },
    {"delayDays": 2, "html": "<p>Following up, {{firstName|there}}.</p>"},
    {"delayDays": 3, "html": "<p>Last note, {{firstName|there}}.</p>"},
]
CONTACTS: list[dict[str, object]] = [
    {"email": "ann@remote.test", "firstName": "Ann", "company": "Acme", "fields": {"plan": "pro"}},
    {"email": "bob@remote.test"},
    {"email": "reject-carl@remote.test", "firstName": "Carl"},
    {"email": "dora@remote.test", "firstName": "Dora"},
    {"email": "eve@remote.test", "firstName": "Eve"},
    {"email": "mallory@remote.test", "fields": {"title": "x\r\nBcc: victim@other.test"}},
    {"email": "zed@remote.test", "firstName": "<script>alert(1)</script>"},
    {"email": "uma@remote.test", "firstName": "Uma"},
]


def parsed(content: bytes) -> EmailMessage:
    message = BytesParser(policy=default).parsebytes(content)
    assert isinstance(message, EmailMessage)
    return message


def by_recipient(sink: AiosmtpdSink) -> dict[str, list[EmailMessage]]:
    found: dict[str, list[EmailMessage]] = {}
    for got in sink.received:
        for recipient in got.recipients:
            found.setdefault(recipient, []).append(parsed(got.content))
    return found


def html_of(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    content: str = body.get_content()  # type: ignore[attr-defined]
    return content


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Wait until `check` holds: the outbound worker records outcomes on its own time."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.05)


async def queue_settled(services: Services) -> None:
    """Wait until every queued message has its outcome recorded: moving the clock while a
    delivery is under way would expire its lease and have it delivered again."""

    async def settled() -> bool:
        query = sa.select(sa.func.count()).where(
            deliveries.c.status.in_([s.value for s in WAITING_STATUSES])
        )
        async with services.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one()) == 0

    await eventually(settled)


async def queued(services: Services) -> int:
    """Campaign emails queued so far, whatever became of them."""
    async with services.engine.connect() as conn:
        return int(
            (await conn.execute(sa.select(sa.func.count()).select_from(deliveries))).scalar_one()
        )


async def stats(api: httpx.AsyncClient, campaign_id: str) -> dict[str, object]:
    response = await api.get(f"/v1/campaigns/{campaign_id}/stats")
    assert response.status_code == 200, response.text
    found: dict[str, object] = response.json()
    return found


async def test_three_stages_stop_on_reply_and_bounce_and_go_on_after_an_auto_reply(
    services: Services,
    api: httpx.AsyncClient,
    outbound: OutboundWorker,
    sink: AiosmtpdSink,
    remote_dns: FakeDns,
    clock: SettableClock,
    mx_port: int,
) -> None:
    list_id = await contacts_list(api, "Prospects", CONTACTS)
    created = await api.post(
        "/v1/campaigns",
        json={
            "name": "Outreach",
            "from": "sales@acme.test",
            "audience": {"listIds": [list_id]},
            "stages": STAGES,
        },
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["_id"]
    assert created.json()["status"] == "draft"
    assert created.json()["from"] == "sales@acme.test"
    launched = await api.post(f"/v1/campaigns/{campaign_id}/launch")
    assert launched.status_code == 200, launched.text
    assert launched.json()["status"] == "running"

    await services.campaign_engine.run_once()
    # Stage 1: ann, bob, dora, eve and zed get it; carl is refused at RCPT; mallory's is never
    # built (her field would add a Bcc header to the subject).
    await sink.wait_for(6)

    async def carl_bounced() -> bool:
        totals = (await stats(api, campaign_id))["totals"]
        assert isinstance(totals, dict)
        return bool(totals["bounced"] == 1)

    await eventually(carl_bounced)
    first = by_recipient(sink)
    assert sorted(first) == [
        "ann@remote.test",
        "bob@remote.test",
        "dora@remote.test",
        "eve@remote.test",
        "uma@remote.test",
        "zed@remote.test",
    ]
    ann = first["ann@remote.test"][0]
    assert ann["Subject"] == "Hello Ann at Acme"
    assert "<p>Hi Ann,</p><p>Your plan: pro.</p>" in html_of(ann)
    bob = first["bob@remote.test"][0]
    assert bob["Subject"] == "Hello there at your company"
    assert "Hi there," in html_of(bob) and "Your plan: none yet." in html_of(bob)
    zed = first["zed@remote.test"][0]
    assert "<script>" not in html_of(zed) and "&lt;script&gt;alert(1)&lt;/script&gt;" in html_of(
        zed
    )
    assert all(b"victim@other.test" not in got.content for got in sink.received)
    resolver = DnsResolver([remote_dns.address])
    for got in sink.received:
        assert dkim.verify(got.content, dnsfunc=resolver.dkim_dnsfunc)

    # Eve answers; Dora's out-of-office answers for her (RFC 3834 Auto-Submitted).
    await reply_through_mx(
        mx_port,
        sender="eve@remote.test",
        to="sales@acme.test",
        in_reply_to=first["eve@remote.test"][0]["Message-ID"],
        subject="Re: Hello Eve at your company",
    )
    await reply_through_mx(
        mx_port,
        sender="dora@remote.test",
        to="sales@acme.test",
        in_reply_to=first["dora@remote.test"][0]["Message-ID"],
        subject="Out of office: Hello Dora at your company",
        Auto_Submitted="auto-replied",
    )

    # Uma's mail provider unsubscribes her with the message's RFC 8058 one-click POST: no
    # session, no key (§3.2).
    uma = first["uma@remote.test"][0]
    assert uma["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = httpx.URL(uma["List-Unsubscribe"].strip().strip("<>"))
    async with httpx.AsyncClient(base_url=api.base_url) as provider:
        one_click = await provider.post(unsubscribe.path, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200, one_click.text

    await queue_settled(services)
    clock.advance(timedelta(days=1))
    await services.campaign_engine.run_once()
    assert await queued(services) == 7  # stage 2 is 2 days after stage 1
    clock.advance(timedelta(days=1, minutes=1))
    await services.campaign_engine.run_once()
    assert await queued(services) == 11  # ann, bob, dora, zed
    await sink.wait_for(10)
    await queue_settled(services)
    clock.advance(timedelta(days=3, minutes=1))
    await services.campaign_engine.run_once()
    await sink.wait_for(14)
    await queue_settled(services)
    await services.campaign_engine.run_once()
    assert await queued(services) == 15

    got = by_recipient(sink)
    assert len(got["eve@remote.test"]) == 1
    assert "reject-carl@remote.test" not in got
    assert "mallory@remote.test" not in got
    assert len(got["uma@remote.test"]) == 1
    for address in ("ann@remote.test", "bob@remote.test", "dora@remote.test", "zed@remote.test"):
        assert len(got[address]) == 3, [(m["Subject"], m["Message-ID"]) for m in got[address]]
        one, two, three = got[address]
        assert two["Subject"] == three["Subject"] == f"Re: {one['Subject']}"
        assert two["In-Reply-To"] == one["Message-ID"]
        assert two["References"] == one["Message-ID"]
        assert three["In-Reply-To"] == two["Message-ID"]
        assert three["References"] == f"{one['Message-ID']} {two['Message-ID']}"
    assert "Following up, Ann." in html_of(got["ann@remote.test"][1])
    assert "Last note, there." in html_of(got["bob@remote.test"][2])

    recipients = await api.get(f"/v1/campaigns/{campaign_id}/recipients")
    assert recipients.status_code == 200
    states = {r["email"]: r for r in recipients.json()["data"]}
    assert states["eve@remote.test"]["state"] == "replied"
    assert states["eve@remote.test"]["stagesSent"] == 1
    assert states["reject-carl@remote.test"]["state"] == "bounced"
    assert states["mallory@remote.test"]["state"] == "failed"
    assert states["uma@remote.test"]["state"] == "unsubscribed"
    assert states["dora@remote.test"]["state"] == "completed"
    assert states["dora@remote.test"]["autoReplies"] == 1
    assert states["ann@remote.test"]["state"] == "completed"
    assert states["ann@remote.test"]["stagesSent"] == 3

    final = await stats(api, campaign_id)
    assert final["status"] == "completed"
    stages = final["stages"]
    assert isinstance(stages, list)
    assert [s["counts"]["sent"] for s in stages] == [7, 4, 4]
    assert stages[0]["counts"]["unsubscribed"] == 1
    assert stages[0]["counts"]["replied"] == 1
    assert stages[0]["counts"]["bounced"] == 1

    async with services.engine.connect() as conn:
        suppressed = (await conn.execute(sa.select(suppressions.c.address))).scalars().all()
        replied = (
            (
                await conn.execute(
                    sa.select(events.c.payload).where(events.c.type == "campaign.replied")
                )
            )
            .scalars()
            .all()
        )
    assert "reject-carl@remote.test" in suppressed
    assert [p["email"] for p in replied] == ["eve@remote.test"]

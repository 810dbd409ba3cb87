"""Campaign tracking and unsubscribing end to end: a campaign sent over /v1/send and delivered by
the queue's worker to a receiving MTA on loopback, then its pixel, redirects and unsubscribe link
used through the public HTTP endpoints with httpx, as a mail reader, a privacy proxy, a link
scanner and a mail provider would. Webhooks are posted to a receiver on loopback. The clock
moves by hand, so that "seconds after delivery" is decided without waiting."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import dkim  # type: ignore[import-untyped]
import httpx
import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Listeners, Services
from mailmark.config import Settings
from mailmark.core.contacts import ContactStatus
from mailmark.core.model import Suppression
from mailmark.core.states import SuppressionReason
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.storage.tables import events
from tests.fakedns import FakeDns
from tests.smtp_out.conftest import publish_dkim
from tests.support.clock import SettableClock
from tests.support.smtp_sink import AiosmtpdSink, Received
from tests.support.web import ApiClient
from tests.support.webhook_receiver import Receiver
from tests.support.world import World
from tests.web.api.conftest import Tenant

READER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari"
HTML = (
    '<p>Hi {{firstName}}, see <a class="b" href="https://shop.example/sale?a=1&amp;b=2">'
    "the sale</a>, <a href='https://shop.example/sale?a=1&amp;b=2'>again</a>, "
    '<a href="https://docs.example/guide">the guide</a> or '
    '<a href="mailto:help@acme.test">write</a>.</p>'
)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def settings(settings: Settings, sink: AiosmtpdSink) -> Settings:
    return settings.model_copy(
        update={"webhook_allow_private_networks": ["127.0.0.1/32"], "remote_smtp_port": sink.port}
    )


@pytest.fixture
async def api(
    acme: Tenant, services: Services, world: World, fake_dns: FakeDns
) -> AsyncIterator[httpx.AsyncClient]:
    """acme.test's API client; remote.test's MX is the sink and acme.test's DKIM key is
    published."""
    fake_dns.add("remote.test", "MX", "10 mx.remote.test.")
    fake_dns.add("mx.remote.test", "A", "127.0.0.1")
    await publish_dkim(services, fake_dns, world.domain)
    yield acme.client


@pytest.fixture
async def public(listeners: Listeners) -> AsyncIterator[httpx.AsyncClient]:
    """Someone on the Internet: no key, no cookie, redirects not followed."""
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{listeners.http_port}", trust_env=False, timeout=20
    ) as client:
        yield client


async def campaign(api: httpx.AsyncClient, to: list[str], **extra: Any) -> dict[str, Any]:
    response = await api.post(
        "/v1/send",
        json={
            "type": "campaign",
            "from": "sales@acme.test",
            "to": to,
            "subject": "Spring sale",
            "html": HTML,
            "text": "See https://shop.example/sale",
            **extra,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def delivered(listeners: Listeners, sink: AiosmtpdSink, count: int) -> list[Received]:
    assert listeners.outbound is not None
    await listeners.outbound.wait_until_idle()
    await sink.wait_for(count)
    return sink.received


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    content: str = part.get_content()  # type: ignore[attr-defined]
    return content


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


async def tracking_events(services: Services) -> list[tuple[str, dict[str, Any]]]:
    await services.tracking.flush()
    query = (
        sa.select(events.c.type, events.c.payload)
        .where(events.c.type.in_(["email.opened", "email.clicked", "email.unsubscribed"]))
        .order_by(events.c.id)
    )
    async with services.engine.connect() as conn:
        return [(row.type, row.payload) for row in await conn.execute(query)]


async def test_opens_and_clicks_are_recorded_machines_flagged_and_no_redirect_is_open(
    api: httpx.AsyncClient,
    public: httpx.AsyncClient,
    listeners: Listeners,
    services: Services,
    sink: AiosmtpdSink,
    receiver: Receiver,
    clock: SettableClock,
    fake_dns: FakeDns,
) -> None:
    hook = await api.post(
        "/v1/webhooks",
        json={
            "url": f"http://127.0.0.1:{receiver.port}/hook",
            "events": ["email.opened", "email.clicked"],
        },
    )
    assert hook.status_code == 201, hook.text
    sent = await campaign(
        api, ["bob@remote.test"], variables={"bob@remote.test": {"firstName": "Bob"}}
    )
    assert sent["skipped"] == []
    [got] = await delivered(listeners, sink, 1)

    assert dkim.verify(got.content, dnsfunc=DnsResolver([fake_dns.address]).dkim_dnsfunc)
    message = parsed(got.content)
    body = html_of(message)
    assert "Hi Bob" in body
    clicks = re.findall(r'href="([^"]+/t/c/[^"]+)"', body)
    [pixel] = re.findall(r'<img src="([^"]+/t/o/[^"]+\.gif)"', body)
    # Both spellings of the sale link share a redirect; the mailto link is left alone.
    assert len(clicks) == 3 and clicks[0] == clicks[1] and clicks[0] != clicks[2]
    assert 'href="mailto:help@acme.test"' in body
    assert "shop.example" not in body and "docs.example" not in body
    assert all("bob" not in url and "remote" not in url for url in [*clicks, pixel])
    token, index, signature = path_of(clicks[0]).split("/")[3:]

    # Apple Mail Privacy Protection fetches the images as the message arrives.
    proxy = await public.get(path_of(pixel), headers={"User-Agent": "Mozilla/5.0"})
    scanned = await public.head(path_of(clicks[2]), headers={"User-Agent": READER})
    clock.advance(timedelta(minutes=5))
    opened = await public.get(path_of(pixel), headers={"User-Agent": READER})
    followed = await public.get(path_of(clicks[0]), headers={"User-Agent": READER})
    forged = await public.get(f"/t/c/{token}/{index}/{'A' * len(signature)}")
    other_index = await public.get(f"/t/c/{token}/2/{signature}")
    # A link the message does not have, under a valid signature: still no redirect.
    unknown = await public.get(path_of(services.tracking.signer.click_url(token, 7)))
    unknown_token = await public.get(f"/t/c/{'x' * 24}/0/{signature}")

    assert proxy.status_code == 200 and opened.status_code == 200
    assert scanned.status_code == 302
    assert followed.status_code == 302, followed.text
    assert followed.headers["location"] == "https://shop.example/sale?a=1&b=2"
    for refused in (forged, other_index, unknown, unknown_token):
        assert refused.status_code == 404 and "location" not in refused.headers
        assert refused.headers["content-type"].startswith("text/html")
    recorded = await tracking_events(services)
    assert [(kind, p["machine"], p.get("url")) for kind, p in recorded] == [
        ("email.opened", True, None),
        ("email.clicked", True, "https://docs.example/guide"),
        ("email.opened", False, None),
        ("email.clicked", False, "https://shop.example/sale?a=1&b=2"),
    ]
    assert recorded[0][1]["machineReason"] == "privacy proxy"
    assert recorded[1][1]["machineReason"] == "head request"
    assert recorded[2][1]["batchId"] == sent["batchId"]

    await receiver.wait_for(4)
    posted = sorted(
        (request.event["type"], request.event["data"]["machine"])  # type: ignore[index]
        for request in receiver.requests
    )
    assert posted == [
        ("email.clicked", False),
        ("email.clicked", True),
        ("email.opened", False),
        ("email.opened", True),
    ]


async def test_a_scanner_following_a_link_on_arrival_is_a_machine(
    api: httpx.AsyncClient,
    public: httpx.AsyncClient,
    listeners: Listeners,
    services: Services,
    sink: AiosmtpdSink,
) -> None:
    await campaign(api, ["bob@remote.test"], trackOpens=False)
    [got] = await delivered(listeners, sink, 1)
    body = html_of(parsed(got.content))
    assert "/t/o/" not in body
    link = re.findall(r'href="([^"]+/t/c/[^"]+)"', body)[0]

    # A browser's user agent, but seconds after delivery: a security scanner prefetching.
    followed = await public.get(path_of(link), headers={"User-Agent": READER})

    assert followed.status_code == 302
    [(kind, payload)] = await tracking_events(services)
    assert kind == "email.clicked" and payload["machine"] is True
    assert payload["machineReason"] == "seconds after delivery"


async def test_one_click_unsubscribe_stops_campaign_mail_to_the_address(
    api: httpx.AsyncClient,
    public: httpx.AsyncClient,
    listeners: Listeners,
    services: Services,
    world: World,
    sink: AiosmtpdSink,
    fake_dns: FakeDns,
) -> None:
    domain = await services.domains.get(world.domain)
    assert domain.id is not None
    contact = await services.contacts.create(
        domain.account_id, email="Ann@remote.test", first_name="Ann"
    )
    async with services.uow() as uow:
        await uow.suppressions.add(
            Suppression(
                domain.id, "gone@remote.test", SuppressionReason.BOUNCE, "550", services.clock.now()
            )
        )
        await uow.commit()

    first = await campaign(api, ["ann@remote.test", "gone@remote.test"])
    assert first["skipped"] == [{"email": "gone@remote.test", "reason": "bounce"}]
    [got] = await delivered(listeners, sink, 1)
    message = parsed(got.content)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [url] = re.findall(r"^<(https?://[^>]+)>$", message["List-Unsubscribe"])
    assert "ann" not in url.lower()
    assert dkim.verify(got.content, dnsfunc=DnsResolver([fake_dns.address]).dkim_dnsfunc)
    signed = parsed(got.content)["DKIM-Signature"].replace(" ", "").replace("\r\n", "")
    signed_fields = re.search(r"h=([^;]+)", signed)
    assert signed_fields is not None
    assert {"list-unsubscribe", "list-unsubscribe-post"} <= set(
        signed_fields.group(1).lower().split(":")
    )

    page = await public.get(path_of(url))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<form method=post><input type=hidden name="List-Unsubscribe" value="One-Click">' in (
        page.text
    )
    assert (await services.contacts.get(domain.account_id, str(contact.id))).status == (
        ContactStatus.SUBSCRIBED
    )
    token, signature = path_of(url).split("/")[2:]
    forged = await public.post(
        f"/u/{token}/{'A' * len(signature)}", data={"List-Unsubscribe": "One-Click"}
    )
    without_body = await public.post(path_of(url))
    # RFC 8058 §3.2: the provider's POST, with no cookie, no key and no CSRF token.
    one_click = await public.post(path_of(url), data={"List-Unsubscribe": "One-Click"})
    again = await public.post(path_of(url), data={"List-Unsubscribe": "One-Click"})

    assert forged.status_code == 404 and without_body.status_code == 400
    assert one_click.status_code == 200 and again.status_code == 200, one_click.text
    assert (await services.contacts.get(domain.account_id, str(contact.id))).status == (
        ContactStatus.UNSUBSCRIBED
    )
    unsubscribed = [
        p for kind, p in await tracking_events(services) if kind.endswith("unsubscribed")
    ]
    assert [p["email"] for p in unsubscribed] == ["ann@remote.test"]

    # Every later campaign of the account leaves the address out; one-to-one mail still goes.
    second = await campaign(api, ["ann@remote.test", "cy@remote.test"])
    assert second["skipped"] == [{"email": "ann@remote.test", "reason": "unsubscribe"}]
    assert len(second["messageIds"]) == 1
    direct = await api.post(
        "/v1/send",
        json={"from": "support@acme.test", "to": "ann@remote.test", "subject": "Re", "text": "x"},
    )
    assert direct.status_code == 200, direct.text
    await delivered(listeners, sink, 3)
    assert sorted(r for got in sink.received for r in got.recipients) == [
        "ann@remote.test",
        "ann@remote.test",
        "cy@remote.test",
    ]


async def test_a_domains_tracking_host_is_used_by_its_links(
    api: httpx.AsyncClient,
    owner_client: ApiClient,
    listeners: Listeners,
    sink: AiosmtpdSink,
) -> None:
    refused = await owner_client.put(
        "/api/domains/acme.test/tracking-host", json={"host": "track.evil.example"}
    )
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "host"
    changed = await owner_client.put(
        "/api/domains/acme.test/tracking-host", json={"host": "Track.Acme.Test"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["trackingHost"] == "track.acme.test"

    await campaign(api, ["bob@remote.test"])
    [got] = await delivered(listeners, sink, 1)
    message = parsed(got.content)
    body = html_of(message)
    links = re.findall(r'(?:href|src)="([^"]+/t/[co]/[^"]+)"', body)
    assert len(links) == 4  # three redirects (two to one link) and the pixel
    assert all(link.startswith("http://track.acme.test/t/") for link in links)
    assert message["List-Unsubscribe"].startswith("<http://track.acme.test/u/")
    # The CNAME leads to this server, which answers whatever the Host.
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{listeners.http_port}",
        headers={"Host": "track.acme.test"},
        trust_env=False,
    ) as tracked:
        followed = await tracked.get(path_of(links[0]))
    assert followed.status_code == 302
    assert followed.headers["location"] == "https://shop.example/sale?a=1&b=2"

"""A campaign built in the editor, previewed for a contact, launched to a small list and watched in
its analytics while `mailmark serve` delivers it to a receiving MTA on loopback and a reply comes
back through our MX; a recipient's timeline, the CSV export, pausing with its reason on the list.
The contacts and their list are made through /v1, as an integration would."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import smtplib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP, default

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Locator, Page, expect

from tests.browser.web_app import DOMAIN, Person, WebApp, sign_in
from tests.fakedns import FakeDns
from tests.support.smtp_sink import AiosmtpdSink

pytestmark = pytest.mark.asyncio(loop_scope="session")

CONTACTS = [
    {"email": "ann@remote.test", "firstName": "Ann", "company": "Initech"},
    {"email": "bob@remote.test", "company": "Globex"},
    {"email": "cy@remote.test", "firstName": "Cy"},
]
# The page refreshes every 5 s while the campaign runs; delivery and the reply take a moment.
LIVE_TIMEOUT_MS = 45_000


@pytest_asyncio.fixture(loop_scope="session")
async def remote_mta() -> AsyncIterator[AiosmtpdSink]:
    """The receiving MTA of remote.test (our contacts' domain)."""
    server = AiosmtpdSink()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def serve_env(
    serve_env: dict[str, str], remote_mta: AiosmtpdSink, fake_dns: FakeDns
) -> dict[str, str]:
    fake_dns.add("remote.test", "MX", "10 mx.remote.test.")
    fake_dns.add("mx.remote.test", "A", "127.0.0.1")
    return {
        **serve_env,
        "MAILMARK_REMOTE_SMTP_PORT": str(remote_mta.port),
        "MAILMARK_CAMPAIGN_INTERVAL": "1s",
    }


async def prospects_list(web_app: WebApp) -> None:
    """The list "Prospects" of three contacts, made with an API key of acme.test."""
    made = await web_app.cli("apikey", "create", DOMAIN, "--name", "crm", "--json")
    assert isinstance(made.json, dict)
    headers = {"Authorization": f"Bearer {made.json['key']}"}
    async with httpx.AsyncClient(
        base_url=web_app.base_url, headers=headers, trust_env=False, timeout=20
    ) as api:
        for contact in CONTACTS:
            created = await api.post("/v1/contacts", json=contact)
            assert created.status_code == 201, created.text
        listed = await api.post("/v1/lists", json={"name": "Prospects"})
        assert listed.status_code == 201, listed.text
        added = await api.post(
            f"/v1/lists/{listed.json()['_id']}/members",
            json={"emails": [c["email"] for c in CONTACTS]},
        )
        assert added.status_code in (200, 201), added.text


async def received_by(sink: AiosmtpdSink, count: int) -> dict[str, EmailMessage]:
    deadline = time.monotonic() + LIVE_TIMEOUT_MS / 1000
    while len(sink.received) < count:
        assert time.monotonic() < deadline, f"{len(sink.received)} of {count} messages arrived"
        await asyncio.sleep(0.2)
    found = {}
    for got in sink.received:
        message = BytesParser(policy=default).parsebytes(got.content)
        assert isinstance(message, EmailMessage)
        for recipient in got.recipients:
            found[recipient] = message
    return found


def reply(port: int, original: EmailMessage) -> None:
    answer = EmailMessage()
    answer["From"] = str(original["To"])
    answer["To"] = str(original["From"])
    answer["Subject"] = f"Re: {original['Subject']}"
    answer["In-Reply-To"] = str(original["Message-ID"])
    answer["References"] = str(original["Message-ID"])
    answer.set_content("Sounds good, let's talk on Tuesday.\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("ann@remote.test", [f"sales@{DOMAIN}"], answer.as_bytes(policy=SMTP))


def tile(page: Page, label: str) -> Locator:
    """The figure of one of the analytics' totals ("Sent", "Replied"…)."""
    return (
        page.locator("dl[aria-label='Totals'] > div")
        .filter(has=page.locator("dt", has_text=re.compile(f"^{label}$")))
        .locator("dd")
        .first
    )


async def test_a_campaign_is_built_launched_and_watched(
    web_app: WebApp,
    acme: Person,
    page: Page,
    remote_mta: AiosmtpdSink,
    look: Callable[..., Awaitable[None]],
) -> None:
    await prospects_list(web_app)
    await sign_in(page, acme)
    await page.get_by_role("navigation").get_by_role("link", name="Campaigns").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Campaigns")
    await page.get_by_role("link", name="New campaign").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("New campaign")

    form = page.get_by_role("form", name="Campaign")
    await form.get_by_label("Name").fill("December outreach")
    await form.get_by_label("Send from").select_option(f"mailbox:sales@{DOMAIN}")
    await form.get_by_label("Prospects").check()
    first = form.get_by_role("listitem", name="Stage 1")
    # The server's sentence, at the field it is about.
    await form.get_by_role("button", name="Save draft").click()
    await expect(first.get_by_role("alert")).to_have_text(
        "The first stage, and a stage in a new thread, needs a subject."
    )
    await first.get_by_label("Subject", exact=True).fill("Hello {{firstName|there}}")
    await first.get_by_role("button", name="Add an A/B subject variant").click()
    await first.get_by_label("Subject variant B").fill("A question for {{company|your team}}")
    await first.get_by_label("Message (HTML)").fill(
        "<p>Hi {{firstName|there}},</p><p>Could Mailmark help {{company|your team}}?</p>"
    )
    await form.get_by_role("button", name="Add follow-up").click()
    second = form.get_by_role("listitem", name="Stage 2")
    await second.get_by_label("Days after the previous stage").fill("4")
    await expect(second).to_contain_text(
        "Sent 4 days after stage 1 if they have not replied (day 5)."
    )
    await second.get_by_label("Message (HTML)").fill("<p>Any thoughts, {{firstName|there}}?</p>")
    # Any day, any hour, no spacing: the test must not wait for a window.
    for day in ("Sat", "Sun"):
        await form.get_by_label(day, exact=True).check()
    await form.get_by_label("From", exact=True).select_option("0")
    await form.get_by_label("Until", exact=True).select_option("24")
    await form.get_by_label("Seconds between sends").fill("0")
    await form.get_by_role("button", name="Save draft").click()
    await expect(page.get_by_text("Draft saved.")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/dashboard/campaigns/\d+/edit$"))

    preview = page.locator("section").filter(
        has=page.get_by_role("heading", name="Preview and test")
    )
    await preview.get_by_label("Preview for").select_option(label="Ann <ann@remote.test>")
    await expect(preview.get_by_test_id("preview-subject")).to_have_text("Hello Ann")
    await preview.get_by_label("Stage").select_option("2")
    await expect(preview.get_by_test_id("preview-subject")).to_have_text("Re: Hello Ann")
    await preview.get_by_label("Stage").select_option("1")
    shown = preview.frame_locator("iframe[title='Message preview']").locator("body")
    await expect(shown).to_contain_text("Could Mailmark help Initech?")
    await look(page, "editor")

    await form.get_by_role("button", name="Launch…").click()
    dialog = page.get_by_role("dialog", name="Launch December outreach?")
    await dialog.get_by_role("button", name="Launch campaign").click()
    await expect(page).to_have_url(re.compile(r"/dashboard/campaigns/\d+$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("December outreach")
    header = page.locator("main").get_by_text("Running", exact=True).first
    await expect(header).to_be_visible()

    delivered = await received_by(remote_mta, 3)
    assert set(delivered) == {c["email"] for c in CONTACTS}
    assert "Hi Ann," in str(delivered["ann@remote.test"].get_body(("html",)))
    await asyncio.to_thread(
        reply, int(web_app.env["MAILMARK_MX_PORT"]), delivered["ann@remote.test"]
    )

    # A privacy proxy fetches bob's open pixel: an open, but not a person's.
    html = str(delivered["bob@remote.test"].get_body(("html",)).get_content())  # type: ignore[union-attr]
    pixel = re.findall(r'<img[^>]+src="([^"]+)"', html)[-1]
    async with httpx.AsyncClient(trust_env=False, timeout=20) as proxy:
        fetched = await proxy.get(
            pixel.replace("&amp;", "&"), headers={"User-Agent": "Mozilla/5.0"}
        )
        assert fetched.status_code == 200, fetched.text

    # The analytics page refreshes on its own: no reload.
    await expect(tile(page, "Sent")).to_have_text("3", timeout=LIVE_TIMEOUT_MS)
    await expect(tile(page, "Replied")).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
    await expect(tile(page, "Delivered")).to_have_text("3", timeout=LIVE_TIMEOUT_MS)
    opened = page.locator("dl[aria-label='Totals'] > div").filter(has_text="Opened")
    await expect(opened).to_contain_text("0% by people · 1 by machines", timeout=LIVE_TIMEOUT_MS)
    chart = page.get_by_role("img", name=re.compile(r"^Activity per (hour|day)"))
    await expect(chart).to_have_attribute("aria-label", re.compile(r"Sent: 3, .*Replies: 1"))
    recipients = page.get_by_role("table", name="Recipients")
    ann_row = recipients.get_by_role("row").filter(has_text="ann@remote.test")
    await expect(ann_row).to_contain_text("replied", timeout=LIVE_TIMEOUT_MS)
    await look(page, "analytics")

    exported = await page.request.get(
        page.url.removeprefix(web_app.base_url).replace("/dashboard/", "/api/") + "/recipients.csv"
    )
    assert exported.ok, await exported.text()
    rows = {row["email"]: row for row in csv.DictReader(io.StringIO(await exported.text()))}
    assert set(rows) == {c["email"] for c in CONTACTS}
    assert rows["ann@remote.test"]["state"] == "replied"
    assert rows["bob@remote.test"]["state"] == "active"
    assert rows["bob@remote.test"]["delivered"] == "1"

    await recipients.get_by_role("link", name="ann@remote.test").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("ann@remote.test")
    timeline = page.get_by_role("list", name="Timeline")
    await expect(timeline.get_by_role("listitem")).to_have_count(3)
    await expect(timeline.get_by_role("listitem").nth(0)).to_contain_text("Sent")
    await expect(timeline).to_contain_text("Delivered")
    await expect(timeline).to_contain_text("Replied")
    await look(page, "recipient")

    await page.get_by_role("link", name="← Campaign").click()
    await page.get_by_role("button", name="Pause", exact=True).click()
    await page.get_by_role("dialog").get_by_role("button", name="Pause campaign").click()
    await expect(page.get_by_role("main").get_by_text("Paused by the user.")).to_be_visible()
    await page.get_by_role("link", name="← Campaigns").click()
    row = page.get_by_role("table", name="Campaigns").get_by_role("row").nth(1)
    await expect(row).to_contain_text("December outreach")
    await expect(row).to_contain_text("Paused")
    await expect(row).to_contain_text("Paused by the user.")
    await expect(row).to_contain_text("33%")  # one reply of three sent
    await look(page, "list")

"""The vacation responder turned on from the mailbox page, read back by the command line."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import DOMAIN, Person, WebApp, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_vacation_responder_is_turned_on_from_the_mailbox_page(
    web_app: WebApp, acme: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    address = f"sales@{DOMAIN}"
    # A window around today whatever the browser's zone: from yesterday to two weeks ahead.
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=1), today + timedelta(days=14)
    await sign_in(page, acme)
    await page.get_by_role("navigation").get_by_role("link", name="Mailboxes").click()
    await page.get_by_role("link", name=address).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(address)

    form = page.get_by_role("form", name="Vacation responder")
    section = page.locator("section").filter(
        has=page.get_by_role("heading", name="Vacation responder", exact=True)
    )
    await expect(form).to_contain_text("Turned off: mail is not answered automatically.")
    await expect(section.get_by_text("Off", exact=True)).to_be_visible()
    # Off: the reply settings wait until it is turned on.
    await expect(form.get_by_label("Message")).to_be_disabled()
    await form.get_by_label("Send automatic replies").check()
    await form.get_by_label("First day").fill(first.isoformat())
    await form.get_by_label("Last day").fill(last.isoformat())
    await form.get_by_label("Subject").fill("Out of the office")
    await form.get_by_label("Message").fill(
        "Thanks for writing. I'm away with limited access to email and will answer when I'm back."
    )
    await form.get_by_label("Reply to the same sender once every").fill("3")
    await look(page, "vacation-editing", dark=False)
    await form.get_by_role("button", name="Save vacation responder").click()

    await expect(page.get_by_text("Vacation responder saved.")).to_be_visible()
    await expect(section.get_by_text("On", exact=True)).to_be_visible()
    await expect(form).to_contain_text(re.compile(r"Answering mail from .+ to .+\("))
    await expect(form.get_by_role("button", name="Save vacation responder")).to_be_disabled()
    await look(page, "vacation-on")

    shown = await web_app.cli("mailbox", "vacation", address, "--json")
    saved = shown.json
    assert isinstance(saved, dict)
    assert saved["enabled"] is True and saved["active"] is True
    assert saved["subject"] == "Out of the office" and saved["days"] == 3
    assert saved["body"].startswith("Thanks for writing.")
    assert saved["startsAt"] == f"{first.isoformat()}T00:00"
    assert saved["endsAt"] == f"{(last + timedelta(days=1)).isoformat()}T00:00"

    # A mistake is explained at its field.
    await form.get_by_label("Message").fill(" ")
    await form.get_by_role("button", name="Save vacation responder").click()
    await expect(form.get_by_text("Write the message the responder sends.")).to_be_visible()

"""The mailbox page's Forwarding section: set two addresses without a local copy, see the
settings survive a reload (and in the CLI), get the reason for a refused address, turn it off."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import DOMAIN, Person, WebApp, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_forwarding_is_set_checked_and_turned_off_on_the_mailbox_page(
    web_app: WebApp, acme: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    address = f"sales@{DOMAIN}"
    await sign_in(page, acme)
    await page.goto(f"/dashboard/mailboxes/{address}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(address)
    form = page.get_by_role("form", name="Forwarding")
    await expect(form).to_contain_text(f"Off: mail to {address} stays in this mailbox only.")
    save = form.get_by_role("button", name="Save forwarding")
    await expect(save).to_be_disabled()

    await form.get_by_label("Forward to").fill("me@home.example")
    await form.get_by_role("button", name="+ Add another address").click()
    await form.get_by_label("Forward to (address 2)").fill("Archive@Backup.Example")
    await form.get_by_label("Keep a copy in this mailbox").uncheck()
    await save.click()
    await expect(page.get_by_text("Forwarding saved.")).to_be_visible()
    await expect(form).to_contain_text(
        f"On: mail to {address} is forwarded to me@home.example, Archive@backup.example. "
        "No copy is kept here."
    )
    await look(page, "mailbox-forwarding")

    shown = await web_app.cli("mailbox", "forward", address, "--json")
    assert json.loads(shown.out) == {
        "addresses": ["me@home.example", "Archive@backup.example"],
        "keepCopy": False,
    }
    await page.reload()
    form = page.get_by_role("form", name="Forwarding")
    await expect(form.get_by_label("Forward to (address 1)")).to_have_value("me@home.example")
    await expect(form.get_by_label("Keep a copy in this mailbox")).not_to_be_checked()

    # Its own address is refused, with the reason under the field.
    second = form.get_by_label("Forward to (address 2)")
    await second.fill(address)
    await form.get_by_role("button", name="Save forwarding").click()
    await expect(second).to_have_accessible_description(f"{address} cannot forward to itself.")
    await look(page, "mailbox-forwarding-refused", dark=False)
    await form.get_by_role("button", name="Remove address 2").click()

    await form.get_by_role("button", name="Turn off forwarding").click()
    await expect(page.get_by_text("Forwarding turned off.")).to_be_visible()
    await expect(form).to_contain_text(re.compile(r"Off: mail to .* stays in this mailbox only\."))
    shown = await web_app.cli("mailbox", "forward", address)
    assert shown.out == f"{address} does not forward its mail\n"

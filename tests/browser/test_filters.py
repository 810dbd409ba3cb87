"""A mailbox's filters built as two simple rules on its page, saved, and shown as the Sieve the
server generated; a broken script edited by hand is refused with its line. The command line
reads back what the page saved."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import DOMAIN, Person, WebApp, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_two_rules_saved_as_sieve(
    web_app: WebApp, acme: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    address = f"sales@{DOMAIN}"
    await sign_in(page, acme)
    await page.get_by_role("navigation").get_by_role("link", name="Mailboxes").click()
    await page.get_by_role("link", name=address).click()
    filters = page.get_by_role("region", name="Filters")
    await expect(filters).to_contain_text("No rules yet")

    rules = filters.get_by_role("form", name="Filter rules")
    await rules.get_by_role("button", name="Add rule").click()
    await rules.get_by_label("Rule 1 field").select_option("from")
    await rules.get_by_label("Rule 1 value").fill("billing@supplier.example")
    await rules.get_by_label("Rule 1 action").select_option("move")
    await rules.get_by_label("Rule 1 folder").fill("Invoices")
    await rules.get_by_role("button", name="Add rule").click()
    await rules.get_by_label("Rule 2 field").select_option("subject")
    await rules.get_by_label("Rule 2 comparison").select_option("matches")
    await rules.get_by_label("Rule 2 value").fill("*urgent*")
    await rules.get_by_label("Rule 2 action").select_option("flag")
    await look(page, "rules")
    await rules.get_by_role("button", name="Save filters").click()
    await expect(page.get_by_text("Filters saved.")).to_be_visible()

    await filters.get_by_text("Edit as Sieve").click()
    script = filters.get_by_role("textbox", name="Sieve script")
    await expect(script).to_have_value(re.compile(r'require \["fileinto", "imap4flags"\];'))
    generated = await script.input_value()
    assert (
        'if header :contains "from" "billing@supplier.example" {\n    fileinto "Invoices";\n}'
        in generated
    )
    assert 'if header :matches "subject" "*urgent*" {\n    addflag "\\\\Flagged";\n}' in generated
    await look(page, "sieve")

    saved = await web_app.cli("sieve", "get", address)
    assert 'fileinto "Invoices";' in saved.out

    # A script broken by hand is refused, and the line is named; the saved filters stay.
    await script.fill('require "fileinto";\nif header :is "subject" "x" {\n  fileinto "Y"\n}\n')
    await filters.get_by_role("button", name="Check").click()
    await expect(
        filters.get_by_text("Line 3: expected \";\" after fileinto, found '}'")
    ).to_be_visible()
    await filters.get_by_role("button", name="Save script").click()
    await expect(script).to_have_accessible_description(
        "Line 3: expected \";\" after fileinto, found '}'."
    )
    await look(page, "sieve-error", dark=False)
    await page.reload()
    await expect(
        page.get_by_role("region", name="Filters").get_by_label("Rule 2 value")
    ).to_have_value("*urgent*")

"""A domain added on the page, and its DNS records turning ok as they are published."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from tests.browser.web_app import DOMAIN, Person, WebApp, publish, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")


def relative_host(record: dict[str, Any]) -> str:
    """The host as most DNS panels want it: "@" for the domain itself, else the part before it."""
    name: str = record["name"]
    return "@" if name == DOMAIN else name.removesuffix(f".{DOMAIN}")


def record_group(page: Page, record: dict[str, Any]) -> Locator:
    """One record's rows in the table of required records, named like "MX @" or "TXT _dmarc"."""
    table = page.get_by_role("table", name="Required records")
    return table.get_by_role("rowgroup", name=f"{record['type']} {relative_host(record)}")


async def expect_status(page: Page, record: dict[str, Any], status: str | re.Pattern[str]) -> None:
    await expect(record_group(page, record).get_by_role("cell").first).to_have_text(status)


async def check_now(page: Page) -> None:
    async with page.expect_response("**/verify"):
        await page.get_by_role("button", name="Check now").click()


async def test_records_turn_ok_as_they_are_published(
    web_app: WebApp, owner: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    await sign_in(page, owner)
    await page.get_by_role("navigation").get_by_role("link", name="Domains").click()
    await expect(page).to_have_url(re.compile(r"/dashboard/domains$"))
    await expect(page.get_by_role("heading", name="Add your first domain")).to_be_visible()
    await look(page, "domains-empty")

    await page.get_by_role("button", name="Add domain").click()
    dialog = page.get_by_role("dialog", name="Add a domain")
    await dialog.get_by_label("Domain name").fill(DOMAIN.upper() + ".")
    await look(page, "domains-add", dark=False)
    await dialog.get_by_role("button", name="Add domain").click()
    await expect(page).to_have_url(re.compile(rf"/dashboard/domains/{re.escape(DOMAIN)}$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(DOMAIN)

    records = json.loads((await web_app.cli("domain", "records", DOMAIN, "--json")).out)
    required = [r for r in records if r["required"]]
    assert len(required) >= 4, records
    # Every required record is listed, by the short host a DNS panel wants and by its full name.
    for record in required:
        group = record_group(page, record)
        await expect(group).to_contain_text(record["name"])
        await expect(group).to_contain_text(record["value"][:60])
        await expect_status(page, record, re.compile("Missing|Not checked"))
    await look(page, "domain-records-missing")

    # The MX record first: that row turns ok, the others still wait.
    mx = next(r for r in required if r["type"] == "MX" and r["name"] == DOMAIN)
    publish(web_app.dns, mx)
    await check_now(page)
    await expect_status(page, mx, "OK")
    for record in required:
        if record is not mx:
            await expect_status(page, record, "Missing")
    progress = page.get_by_role("progressbar", name="Required records found")
    await expect(progress).to_have_attribute("aria-valuenow", "1")

    # A wrong value says what was found and how to fix it.
    spf = next(r for r in required if r["type"] == "TXT" and r["name"] == DOMAIN)
    web_app.dns.add(DOMAIN, "TXT", "v=spf1 -all")
    await check_now(page)
    await expect_status(page, spf, "Mismatch")
    await expect(record_group(page, spf)).to_contain_text("Found: v=spf1 -all")
    await look(page, "domain-records-partly-ok")

    web_app.dns.remove(DOMAIN, "TXT")
    for record in records:
        if record is not mx:
            publish(web_app.dns, record)
    await check_now(page)
    for record in required:
        await expect_status(page, record, "OK")
    await expect(page.get_by_role("region", name="Verification")).to_contain_text("Verified")
    await expect(progress).to_have_attribute("aria-valuenow", str(len(required)))
    await look(page, "domain-verified")

    await page.get_by_role("navigation").get_by_role("link", name="Domains").click()
    await expect(page).to_have_url(re.compile(r"/dashboard/domains$"))
    # The list's row, which links to the domain: the rows of the domain's own records name it too.
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=DOMAIN, exact=True))
    await expect(row).to_contain_text("Verified")
    await look(page, "domains")

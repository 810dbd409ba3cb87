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

# The page re-checks by itself in the background; a person may also press "Check now".
RECHECK_TIMEOUT_MS = 60_000


def host_pattern(name: str) -> re.Pattern[str]:
    """The fully qualified host on its own: acme.test, not the end of _dmarc.acme.test."""
    return re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w-])")


def record_row(page: Page, record: dict[str, Any]) -> Locator:
    """The table row of one record: its type and its fully qualified host."""
    return (
        page.get_by_role("row")
        .filter(has=page.get_by_role("cell", name=record["type"], exact=True))
        .filter(has_text=host_pattern(record["name"]))
    )


async def test_records_turn_ok_as_they_are_published(
    web_app: WebApp, owner: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    await sign_in(page, owner)
    await page.get_by_role("navigation").get_by_role("link", name="Domains").first.click()
    await expect(page).to_have_url(re.compile(r"/dashboard/domains$"))
    await look(page, "domains-empty")

    await page.get_by_role("button", name=re.compile("add domain", re.IGNORECASE)).first.click()
    await page.get_by_label(re.compile("domain", re.IGNORECASE)).fill(DOMAIN)
    await page.get_by_role("button", name=re.compile("^add", re.IGNORECASE)).last.click()
    await expect(page).to_have_url(re.compile(rf"/dashboard/domains/{re.escape(DOMAIN)}$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text(DOMAIN)

    records = json.loads((await web_app.cli("domain", "records", DOMAIN, "--json")).out)
    required = [r for r in records if r["required"]]
    assert len(required) >= 4, records
    # Every record is listed, with the part a registrar's panel wants beside the full name.
    for record in records:
        await expect(record_row(page, record)).to_have_count(1)
    await expect(record_row(page, required[0])).to_contain_text("@")
    await expect(record_row(page, required[0])).to_contain_text(
        re.compile("missing", re.IGNORECASE)
    )
    await look(page, "domain-records-missing")

    # The MX record first: that row turns ok and says so; the others still wait.
    mx, rest = required[0], required[1:]
    assert mx["type"] == "MX", mx
    publish(web_app.dns, mx)
    await page.get_by_role("button", name=re.compile("check now", re.IGNORECASE)).click()
    await expect(record_row(page, mx)).to_contain_text(re.compile(r"\bok\b", re.IGNORECASE))
    for record in rest:
        await expect(record_row(page, record)).not_to_contain_text(
            re.compile(r"\bok\b", re.IGNORECASE)
        )

    # A wrong value shows what was found and what to do about it.
    spf = next(r for r in rest if r["type"] == "TXT" and r["name"] == DOMAIN)
    web_app.dns.add(DOMAIN, "TXT", "v=spf1 -all")
    await page.get_by_role("button", name=re.compile("check now", re.IGNORECASE)).click()
    await expect(record_row(page, spf)).to_contain_text(re.compile("mismatch", re.IGNORECASE))
    await expect(record_row(page, spf)).to_contain_text("v=spf1 -all")
    await look(page, "domain-records-partly-ok")

    web_app.dns.remove(DOMAIN, "TXT")
    for record in records[1:]:
        publish(web_app.dns, record)
    # Without pressing anything: the page keeps checking until the domain is verified.
    for record in required:
        await expect(record_row(page, record)).to_contain_text(
            re.compile(r"\bok\b", re.IGNORECASE), timeout=RECHECK_TIMEOUT_MS
        )
    await expect(page.get_by_text(re.compile(r"\bverified\b", re.IGNORECASE)).first).to_be_visible()
    await look(page, "domain-verified")

    await page.get_by_role("link", name=re.compile("domains", re.IGNORECASE)).first.click()
    row = page.get_by_role("row").filter(has_text=host_pattern(DOMAIN))
    await expect(row).to_contain_text(re.compile(r"\bverified\b", re.IGNORECASE))
    await look(page, "domains")

"""Every page the flows do not open, checked with axe-core and photographed, light and dark, at
desktop and phone width: the public pages, and the dashboard's pages of an account with data."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import DOMAIN, Person, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

PUBLIC_PAGES = [
    ("forgot-password", "/forgot-password"),
    ("reset-password-bad-link", "/reset-password?token=not-a-real-token"),
    ("invite-bad-link", "/invite/not-a-real-token"),
    ("sign-up-closed", "/sign-up"),
    ("api-reference", "/schema"),
]
DASHBOARD_PAGES = [
    ("overview", "/dashboard"),
    ("domain", f"/dashboard/domains/{DOMAIN}"),
    ("mailbox-sales", f"/dashboard/mailboxes/sales@{DOMAIN}"),
    ("settings", "/dashboard/settings"),
    ("campaigns-empty", "/dashboard/campaigns"),
    ("campaign-new", "/dashboard/campaigns/new"),
    ("not-found", "/dashboard/no-such-page"),
]


@pytest.mark.parametrize(("name", "path"), PUBLIC_PAGES, ids=[n for n, _ in PUBLIC_PAGES])
async def test_public_page(
    acme: Person, page: Page, look: Callable[..., Awaitable[None]], name: str, path: str
) -> None:
    await page.goto(path)
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await look(page, name)


async def test_dashboard_pages(
    acme: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    await sign_in(page, acme)
    for name, path in DASHBOARD_PAGES:
        await page.goto(path)
        heading = page.get_by_role("heading", level=1)
        await expect(heading).to_be_visible()
        # The page has its data (or said why not) before it is judged.
        await expect(page.locator("[aria-busy=true]")).to_have_count(0)
        await look(page, name)


async def test_every_dashboard_page_is_reachable_by_keyboard_at_phone_width(
    acme: Person, page: Page
) -> None:
    await sign_in(page, acme)
    await page.set_viewport_size({"width": 360, "height": 740})
    # The navigation is behind a menu button on a phone; Tab and Enter reach it and its links.
    menu = page.get_by_role("button", name=re.compile("menu|navigation", re.IGNORECASE))
    await expect(menu).to_be_visible()
    for label, path in (("Mailboxes", "/dashboard/mailboxes"), ("Settings", "/dashboard/settings")):
        await menu.focus()
        await page.keyboard.press("Enter")
        link = page.get_by_role("link", name=label, exact=True).last
        await expect(link).to_be_visible()
        await link.focus()
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(re.compile(rf"{re.escape(path)}$"))
        await expect(link).to_be_hidden()

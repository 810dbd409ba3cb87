"""First run: the one-time setup link `mailmark serve` prints opens the page that creates the owner."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.web_app import WebApp, sign_out

pytestmark = pytest.mark.asyncio(loop_scope="session")

SETUP_LINK = r"(https?://\S+/setup\?token=[A-Za-z0-9_.~%-]+)"


async def test_setup_link_creates_the_owner_and_signs_them_in(
    web_app: WebApp,
    page: Page,
    new_context: Callable[[], Awaitable[BrowserContext]],
    look: Callable[..., Awaitable[None]],
) -> None:
    printed = (await web_app.server.wait_for(SETUP_LINK))[1]
    assert printed.startswith(web_app.base_url + "/setup?token="), printed

    # Without the link's token the home page still leads to setup, not to a dead sign-in form.
    await page.goto("/")
    await page.goto(printed)
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile("set up", re.IGNORECASE)
    )
    await look(page, "setup")

    await page.get_by_label("Account name").fill("Acme")
    await page.get_by_label("Your name").fill("Ada Lovelace")
    await page.get_by_label("Email", exact=True).fill("ada@acme.test")
    await page.get_by_label("Password", exact=True).fill("correct horse battery staple")
    await page.get_by_role("button", name=re.compile("create", re.IGNORECASE)).click()

    await expect(page).to_have_url(re.compile(r"/dashboard$"))
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await expect(page.get_by_text("Ada Lovelace").first).to_be_visible()
    await look(page, "overview-new-account")

    # The link was for one use: someone else opening it later creates nothing.
    stranger = await (await new_context()).new_page()
    await stranger.goto(printed)
    await expect(stranger.get_by_role("alert")).to_be_visible()
    await expect(
        stranger.get_by_role("button", name=re.compile("create", re.IGNORECASE))
    ).to_have_count(0)
    await look(stranger, "setup-link-used", dark=False)

    # The owner signs in again with what they chose.
    await sign_out(page)
    await page.get_by_label("Email", exact=True).fill("ada@acme.test")
    await page.get_by_label("Password", exact=True).fill("correct horse battery staple")
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/dashboard$"))


async def test_setup_link_command_prints_a_link_that_works(web_app: WebApp, page: Page) -> None:
    fresh = (await web_app.cli("setup-link")).out
    [link] = re.findall(SETUP_LINK, fresh)
    await page.goto(link)
    await expect(page.get_by_label("Account name")).to_be_visible()
    await page.get_by_label("Account name").fill("Acme")
    await page.get_by_label("Your name").fill("Ada Lovelace")
    await page.get_by_label("Email", exact=True).fill("ada@acme.test")
    await page.get_by_label("Password", exact=True).fill("correct horse battery staple")
    await page.get_by_role("button", name=re.compile("create", re.IGNORECASE)).click()
    await expect(page).to_have_url(re.compile(r"/dashboard$"))

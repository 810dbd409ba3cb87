"""An API key created on the developer page, used with curl against /v1, then revoked there."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import Person, WebApp, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def curl_status(url: str, key: str) -> int:
    """The HTTP status curl gets for GET `url` with the key as its Bearer token."""
    process = await asyncio.create_subprocess_exec(
        "curl",
        "--silent",
        "--show-error",
        "--noproxy",
        "*",
        "--max-time",
        "10",
        "--output",
        "/dev/null",
        "--write-out",
        "%{http_code}",
        "--header",
        f"Authorization: Bearer {key}",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return int(out)


async def test_api_key_is_copied_used_with_curl_and_revoked(
    web_app: WebApp, acme: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    await sign_in(page, acme)
    await page.get_by_role("navigation").get_by_role("link", name="Developer").first.click()
    await expect(page).to_have_url(re.compile(r"/dashboard/developer"))
    await look(page, "developer")

    await page.get_by_role(
        "button", name=re.compile("(create|new) (api )?key", re.IGNORECASE)
    ).first.click()
    await page.get_by_label(re.compile("name", re.IGNORECASE)).fill("deploy script")
    await page.get_by_role("button", name=re.compile("^create", re.IGNORECASE)).last.click()

    shown = page.get_by_text(re.compile(r"^dm_live_\S+$"))
    await expect(shown).to_be_visible()
    key = (await shown.inner_text()).strip()
    await page.get_by_role("button", name=re.compile("copy", re.IGNORECASE)).first.click()
    assert await page.evaluate("navigator.clipboard.readText()") == key
    await look(page, "developer-new-key", dark=False)

    mailboxes = f"{web_app.base_url}/v1/mailboxes"
    assert await curl_status(mailboxes, key) == 200

    # Shown once: after closing, the page lists the key by name and prefix, never the key.
    await page.get_by_role("button", name=re.compile("done|close", re.IGNORECASE)).first.click()
    row = page.get_by_role("row").filter(has_text="deploy script")
    await expect(row).to_be_visible()
    await expect(page.get_by_text(key)).to_have_count(0)

    await row.get_by_role("button", name=re.compile("revoke", re.IGNORECASE)).click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name=re.compile("revoke", re.IGNORECASE)).click()
    await expect(row).to_contain_text(re.compile("revoked", re.IGNORECASE))
    await look(page, "developer-revoked", dark=False)

    assert await curl_status(mailboxes, key) == 401

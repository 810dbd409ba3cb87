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
    await page.get_by_role("navigation").get_by_role("link", name="Developer").click()
    await expect(page).to_have_url(re.compile(r"/dashboard/developer"))
    await expect(page.get_by_text("No keys yet.")).to_be_visible()
    await look(page, "developer")

    await page.get_by_role("button", name="Create API key").click()
    dialog = page.get_by_role("dialog", name="Create an API key")
    await dialog.get_by_label("Name").fill("deploy script")
    await dialog.get_by_role("button", name="Create key").click()

    shown = page.get_by_role("dialog", name="Your new API key")
    key = await shown.get_by_label("API key", exact=True).input_value()
    assert key.startswith("dm_live_"), key
    await shown.get_by_role("button", name="Copy API key").click()
    await expect(shown.get_by_role("button", name="Copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == key
    await look(page, "developer-new-key", dark=False)

    mailboxes = f"{web_app.base_url}/v1/mailboxes"
    assert await curl_status(mailboxes, key) == 200

    # Shown once: once closed, the page lists the key by its name and prefix only.
    await shown.get_by_role("button", name="I have saved it").click()
    keys = page.get_by_role("table", name="API keys")
    row = keys.get_by_role("row").filter(has_text="deploy script")
    await expect(row).to_contain_text(key[:12])
    await expect(page.get_by_text(key, exact=True)).to_have_count(0)
    # The examples are filled with the key while the page stays open, as the dialog said.
    await expect(page.get_by_text(re.compile(re.escape(key))).first).to_be_visible()
    await look(page, "developer-keys")

    await row.get_by_role("button", name="Revoke deploy script").click()
    confirm = page.get_by_role("dialog", name="Revoke this API key?")
    await confirm.get_by_role("button", name=re.compile("^Revoke")).click()
    await expect(row).to_contain_text("Revoked")
    await expect(row.get_by_role("button", name="Revoke deploy script")).to_have_count(0)

    assert await curl_status(mailboxes, key) == 401

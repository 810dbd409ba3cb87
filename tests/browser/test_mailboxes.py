"""A mailbox created on the page, given a password there, then used by a desktop client (IMAP)."""

from __future__ import annotations

import asyncio
import imaplib
import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import DOMAIN, Person, WebApp, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

MAILBOX_PASSWORD = "a-mailbox-password-9"


def imap_login(port: int, address: str, password: str) -> list[str]:
    """Logs in over IMAP as a desktop client would; returns the folders it sees."""
    with imaplib.IMAP4("127.0.0.1", port, timeout=10) as imap:
        imap.login(address, password)
        status, folders = imap.list()
        assert status == "OK", folders
        return [f.decode() if isinstance(f, bytes) else str(f) for f in folders]


async def test_created_mailbox_logs_in_over_imap_with_the_password_set_on_the_page(
    web_app: WebApp, acme: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    address = f"hello@{DOMAIN}"
    await sign_in(page, acme)
    await page.get_by_role("navigation").get_by_role("link", name="Mailboxes").first.click()
    await expect(page).to_have_url(re.compile(r"/dashboard/mailboxes$"))
    await expect(page.get_by_role("cell", name=f"sales@{DOMAIN}")).to_be_visible()
    await look(page, "mailboxes")

    await page.get_by_role(
        "button", name=re.compile("(new|create|add) mailbox", re.IGNORECASE)
    ).first.click()
    await page.get_by_label(re.compile("local part|address", re.IGNORECASE)).fill("hello")
    await page.get_by_label(re.compile("display name", re.IGNORECASE)).fill("Hello Team")
    await look(page, "mailbox-create", dark=False)
    await page.get_by_role("button", name=re.compile("^create", re.IGNORECASE)).last.click()
    await expect(page).to_have_url(re.compile(rf"/dashboard/mailboxes/{re.escape(address)}$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text(address)

    # No password yet: a desktop client cannot log in.
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(imap_login, web_app.imap_port, address, MAILBOX_PASSWORD)

    await page.get_by_label(re.compile("new password", re.IGNORECASE)).fill(MAILBOX_PASSWORD)
    await page.get_by_role(
        "button", name=re.compile("(set|save|change) password", re.IGNORECASE)
    ).click()
    await expect(
        page.get_by_text(re.compile("password (set|saved|changed)", re.IGNORECASE)).first
    ).to_be_visible()
    await look(page, "mailbox")

    folders = await asyncio.to_thread(imap_login, web_app.imap_port, address, MAILBOX_PASSWORD)
    assert any("INBOX" in folder for folder in folders), folders

    # The connection settings a desktop client needs are on the page, with this server's port.
    await expect(page.get_by_text(str(web_app.imap_port)).first).to_be_visible()

    # A generated password replaces the old one.
    await page.get_by_role("button", name=re.compile("generate", re.IGNORECASE)).click()
    generated = page.get_by_label(re.compile("generated password", re.IGNORECASE))
    await expect(generated).to_be_visible()
    new_password = (await generated.input_value()).strip()
    assert len(new_password) >= 12, new_password
    await asyncio.to_thread(imap_login, web_app.imap_port, address, new_password)
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(imap_login, web_app.imap_port, address, MAILBOX_PASSWORD)

"""A mailbox created on the page, given a password there, then used by a desktop client (IMAP)."""

from __future__ import annotations

import asyncio
import imaplib
import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import DOMAIN, Person, WebApp, sign_in
from tests.support.tls import client_tls

pytestmark = pytest.mark.asyncio(loop_scope="session")

MAILBOX_PASSWORD = "a-mailbox-password-9"


def imap_login(port: int, address: str, password: str) -> list[str]:
    """Logs in over IMAP as a desktop client would; returns the folders it sees."""
    # The server gives a STARTTLS handshake 30 s; a loaded machine with two browsers and two
    # servers running has needed more than 10.
    with imaplib.IMAP4("127.0.0.1", port, timeout=30) as imap:
        imap.starttls(client_tls())
        imap.login(address, password)
        status, folders = imap.list()
        assert status == "OK", folders
        return [f.decode() if isinstance(f, bytes) else str(f) for f in folders]


async def test_created_mailbox_logs_in_over_imap_with_the_password_set_on_the_page(
    web_app: WebApp, acme: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    address = f"hello@{DOMAIN}"
    await sign_in(page, acme)
    await page.get_by_role("navigation").get_by_role("link", name="Mailboxes").click()
    await expect(page).to_have_url(re.compile(r"/dashboard/mailboxes$"))
    await expect(page.get_by_role("link", name=f"sales@{DOMAIN}")).to_be_visible()
    await look(page, "mailboxes")

    await page.get_by_role("button", name="New mailbox").click()
    dialog = page.get_by_role("dialog", name="New mailbox")
    await expect(dialog.get_by_label("Domain")).to_have_value(DOMAIN)
    await dialog.get_by_label("Address").fill("hello")
    await dialog.get_by_label("Display name (optional)").fill("Hello Team")
    await expect(dialog.get_by_label("Address")).to_have_accessible_description(
        f"The address will be {address}."
    )
    await look(page, "mailboxes-new", dark=False)
    await dialog.get_by_role("button", name="Create mailbox").click()
    # The address in the path, its @ written as is or as %40.
    at_path = re.escape(address).replace("@", "(@|%40)")
    await expect(page).to_have_url(re.compile(rf"/dashboard/mailboxes/{at_path}$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(address)

    # No password yet: a desktop client cannot log in.
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(imap_login, web_app.imap_port, address, MAILBOX_PASSWORD)

    form = page.get_by_role("form", name="Set password")
    await form.get_by_label("Password", exact=True).fill(MAILBOX_PASSWORD)
    await form.get_by_role("button", name="Set password").click()
    await expect(form.get_by_label("New password")).to_be_visible()
    folders = await asyncio.to_thread(imap_login, web_app.imap_port, address, MAILBOX_PASSWORD)
    assert any("INBOX" in folder for folder in folders), folders

    # What a mail app needs is on the page, with this server's own IMAP port.
    incoming = page.get_by_role("region", name="Incoming mail (IMAP)")
    await expect(incoming).to_contain_text(f"{web_app.imap_port} with STARTTLS")
    await look(page, "mailbox")

    # A generated password replaces the one typed.
    await form.get_by_role("button", name="Generate a password").click()
    shown = page.get_by_role("dialog", name="Your new password")
    generated = await shown.get_by_label("Generated password").input_value()
    assert len(generated) >= 12, generated
    await look(page, "mailbox-generated-password", dark=False)
    await shown.get_by_role("button", name="I have saved it").click()
    await asyncio.to_thread(imap_login, web_app.imap_port, address, generated)
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(imap_login, web_app.imap_port, address, MAILBOX_PASSWORD)

"""The Aliases and Catch-all sections of a domain's page, end to end: an alias added with two
mailboxes receives mail over the MX into both, is removed again, and the catch-all is set and
turned off; an alias domain shows on the domains list."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiosmtplib
import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import ACCOUNT, DOMAIN, Person, WebApp, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def rcpt(web_app: WebApp, recipient: str) -> int:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=int(web_app.env["MAILMARK_MX_PORT"]), start_tls=False
    )
    async with client:
        await client.ehlo()
        await client.mail("alice@example.org")
        try:
            reply = await client.rcpt(recipient)
        except aiosmtplib.SMTPRecipientRefused as refused:
            return refused.code
        return reply.code


async def test_aliases_and_catch_all_on_the_domain_page(
    web_app: WebApp, acme: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    await web_app.cli("domain", "add", "acme.example", "--account", ACCOUNT, "--alias-of", DOMAIN)
    await sign_in(page, acme)
    await page.goto("/dashboard/domains")
    domains = page.get_by_role("table", name="Domains")
    await expect(domains.get_by_role("row", name="acme.example")).to_contain_text(
        f"Alias of {DOMAIN}"
    )

    await page.goto(f"/dashboard/domains/{DOMAIN}")
    aliases = page.locator("section", has=page.get_by_role("heading", name="Aliases", exact=True))
    await expect(aliases).to_contain_text("No aliases yet")
    await aliases.get_by_role("button", name="Add alias").click()
    dialog = page.get_by_role("dialog", name="Add an alias")
    await dialog.get_by_label("Alias address").fill("team")
    await dialog.get_by_label(f"sales@{DOMAIN}").check()
    await dialog.get_by_label(f"support@{DOMAIN}").check()
    await look(page, "add-alias")
    await dialog.get_by_role("button", name="Add alias").click()
    await expect(dialog).to_be_hidden()
    listed = aliases.get_by_role("list", name="Aliases")
    await expect(listed).to_contain_text(f"team@{DOMAIN}")
    await expect(listed).to_contain_text(f"Delivers to sales@{DOMAIN}, support@{DOMAIN}")
    assert await rcpt(web_app, f"team@{DOMAIN}") == 250
    assert await rcpt(web_app, "team@acme.example") == 250

    catch_all = page.locator(
        "section", has=page.get_by_role("heading", name="Catch-all", exact=True)
    )
    assert await rcpt(web_app, f"anyone@{DOMAIN}") == 550
    await catch_all.get_by_label("Unknown addresses").select_option(f"support@{DOMAIN}")
    await catch_all.get_by_role("button", name="Save").click()
    await expect(page.get_by_text(f"now goes to support@{DOMAIN}")).to_be_visible()
    assert await rcpt(web_app, f"anyone@{DOMAIN}") == 250
    await aliases.scroll_into_view_if_needed()
    await look(page, "domain-addresses")

    await catch_all.get_by_label("Unknown addresses").select_option("")
    await catch_all.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("Catch-all turned off.")).to_be_visible()
    assert await rcpt(web_app, f"anyone@{DOMAIN}") == 550

    await listed.get_by_role("button", name=f"Remove alias team@{DOMAIN}").click()
    await page.get_by_role("dialog").get_by_role("button", name="Remove alias").click()
    await expect(aliases).to_contain_text("No aliases yet")
    assert await rcpt(web_app, f"team@{DOMAIN}") == 550

"""An invitation accepted in another browser: the new member sees only the mailbox given to them."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.web_app import DOMAIN, Person, WebApp, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

MEMBER = Person("mia@acme.test", "mia-password-long-1", "Mia Member")


async def test_invited_member_sees_only_the_assigned_mailbox(
    web_app: WebApp,
    acme: Person,
    page: Page,
    new_context: Callable[[], Awaitable[BrowserContext]],
    look: Callable[..., Awaitable[None]],
) -> None:
    await sign_in(page, acme)
    await page.get_by_role("navigation").get_by_role("link", name="Team").first.click()
    await expect(page).to_have_url(re.compile(r"/dashboard/team$"))
    await look(page, "team")

    await page.get_by_role("button", name=re.compile("invite", re.IGNORECASE)).first.click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Email", exact=True).fill(MEMBER.email)
    await dialog.get_by_label("Role").select_option("member")
    await dialog.get_by_label(f"sales@{DOMAIN}").check()
    await look(page, "team-invite", dark=False)
    await dialog.get_by_role("button", name=re.compile("invite|send", re.IGNORECASE)).last.click()

    # The link is on the page too, for an installation that sends no mail.
    link_text = page.get_by_text(re.compile(r"/invite/[\w-]+"))
    await expect(link_text.first).to_be_visible()
    accept_url = re.search(r"https?://\S+/invite/[\w-]+", await link_text.first.inner_text())
    assert accept_url, await link_text.first.inner_text()
    await look(page, "team-invited", dark=False)

    # Mia, in a browser of her own.
    mia = await (await new_context()).new_page()
    await mia.goto(accept_url[0])
    await expect(mia.get_by_text(MEMBER.email).first).to_be_visible()
    await look(mia, "invite")
    await mia.get_by_label(re.compile("your name|^name", re.IGNORECASE)).fill(MEMBER.name)
    await mia.get_by_label("Password", exact=True).fill(MEMBER.password)
    await mia.get_by_role("button", name=re.compile("accept|join|create", re.IGNORECASE)).click()
    await expect(mia).to_have_url(re.compile(r"/dashboard$"))

    await mia.goto("/dashboard/mailboxes")
    await expect(mia.get_by_role("cell", name=f"sales@{DOMAIN}")).to_be_visible()
    await expect(mia.get_by_text(f"support@{DOMAIN}")).to_have_count(0)
    # No domains, developer or team pages in a member's navigation.
    navigation = mia.get_by_role("navigation").first
    for manage_only in ("Domains", "Developer", "Team"):
        await expect(navigation.get_by_role("link", name=manage_only)).to_have_count(0)
    await look(mia, "mailboxes-as-member")

    # Another mailbox of the account, typed in by hand: as if it did not exist.
    await mia.goto(f"/dashboard/mailboxes/support@{DOMAIN}")
    await expect(
        mia.get_by_text(re.compile("not found|no mailbox", re.IGNORECASE)).first
    ).to_be_visible()
    await expect(mia.get_by_text(f"support@{DOMAIN}")).to_have_count(0)

    # The owner sees her as a member with her mailbox.
    await page.reload()
    row = page.get_by_role("row").filter(has_text=MEMBER.email)
    await expect(row).to_contain_text(f"sales@{DOMAIN}")

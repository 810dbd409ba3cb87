"""An invitation accepted in another browser: the new member sees only the mailbox given to them."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.web_app import ACCOUNT, DOMAIN, Person, WebApp, sign_in

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
    await page.get_by_role("navigation").get_by_role("link", name="Team").click()
    await expect(page).to_have_url(re.compile(r"/dashboard/team$"))
    await expect(page.get_by_role("table", name="Team members")).to_contain_text(acme.email)
    await look(page, "team")

    await page.get_by_role("button", name="Invite someone").click()
    dialog = page.get_by_role("dialog", name="Invite someone")
    await dialog.get_by_label("Email", exact=True).fill(MEMBER.email)
    await expect(dialog.get_by_label("Role")).to_have_value("member")
    await dialog.get_by_label(f"sales@{DOMAIN}").check()
    await look(page, "team-invite", dark=False)
    await dialog.get_by_role("button", name="Send invitation").click()

    # The link is on the page too, for an installation that sends no mail.
    sent = page.get_by_role("status").filter(has_text=f"Invitation sent to {MEMBER.email}")
    await expect(sent).to_be_visible()
    accept_url = (await sent.locator("code").inner_text()).strip()
    assert re.fullmatch(rf"{re.escape(web_app.base_url)}/invite/[\w-]+", accept_url), accept_url
    await expect(page.get_by_role("table", name="Pending invitations")).to_contain_text(
        MEMBER.email
    )
    await look(page, "team-invited")

    # Mia, in a browser of her own.
    mia = await (await new_context()).new_page()
    await mia.goto(accept_url)
    await expect(mia.get_by_text("You will sign in as")).to_be_visible()
    await expect(mia.get_by_text(MEMBER.email, exact=True)).to_be_visible()
    await look(mia, "invite")
    await mia.get_by_label("Your name").fill(MEMBER.name)
    await mia.get_by_label("Password", exact=True).fill(MEMBER.password)
    await mia.get_by_role("button", name=f"Join {ACCOUNT}").click()
    await expect(mia).to_have_url(re.compile(r"/dashboard$"))

    # Her navigation has no domains, developer or team pages.
    navigation = mia.get_by_role("navigation", name="Dashboard")
    await expect(navigation.get_by_role("link", name="Mailboxes")).to_be_visible()
    for manage_only in ("Domains", "Developer", "Team"):
        await expect(navigation.get_by_role("link", name=manage_only)).to_have_count(0)
    await look(mia, "overview-as-member")

    await navigation.get_by_role("link", name="Mailboxes").click()
    await expect(mia.get_by_role("link", name=f"sales@{DOMAIN}")).to_be_visible()
    await expect(mia.get_by_text(f"support@{DOMAIN}")).to_have_count(0)
    await look(mia, "mailboxes-as-member")

    # Another mailbox of the account, typed in by hand: the same answer as for none at all.
    await mia.goto(f"/dashboard/mailboxes/nobody@{DOMAIN}")
    await expect(mia.get_by_role("alert")).to_be_visible()
    absent = await mia.get_by_role("alert").inner_text()
    await mia.goto(f"/dashboard/mailboxes/support@{DOMAIN}")
    await expect(mia.get_by_role("alert")).to_have_text(absent)
    await expect(mia.get_by_role("main")).not_to_contain_text("Support")
    await look(mia, "mailbox-not-assigned", dark=False)

    # The invitation is used up: the owner sees her as a member with her mailbox.
    await page.reload()
    row = (
        page.get_by_role("table", name="Team members")
        .get_by_role("row")
        .filter(has_text=MEMBER.email)
    )
    await expect(row).to_contain_text(f"sales@{DOMAIN}")
    await expect(page.get_by_role("table", name="Pending invitations")).to_have_count(0)

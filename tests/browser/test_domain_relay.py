"""The Outgoing mail section of a domain's page: the server's relay host as the default, the
domain's own relay (its password never shown again, kept when only the port changes), a refused
host named under its field, and "directly"; what the page saved is what `mailmark domain relay`
then reports."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import DOMAIN, Person, WebApp, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")
PASSWORD = "relay-secret-93"


@pytest.fixture
def serve_env(serve_env: dict[str, str]) -> dict[str, str]:
    return {
        **serve_env,
        "MAILMARK_RELAY_HOST": "smtp.provider.test",
        "MAILMARK_RELAY_USERNAME": "server",
        "MAILMARK_RELAY_PASSWORD": "server password",
    }


async def stored(web_app: WebApp) -> dict[str, object]:
    shown = await web_app.cli("domain", "relay", DOMAIN, "--json")
    assert PASSWORD not in shown.out
    data = json.loads(shown.out)
    assert isinstance(data, dict)
    return data


async def test_a_domain_sends_through_its_own_relay_host(
    web_app: WebApp, acme: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    await sign_in(page, acme)
    await page.goto(f"/dashboard/domains/{DOMAIN}")
    section = page.locator("section", has=page.get_by_role("heading", name="Outgoing mail"))
    default = section.get_by_role("radio", name="Server default", exact=True)
    await expect(default).to_be_checked()
    await expect(section).to_contain_text(
        "Through the server's relay host, smtp.provider.test:587."
    )
    save = section.get_by_role("button", name="Save")
    await expect(save).to_be_disabled()

    await section.get_by_role("radio", name="Through a relay host", exact=True).check()
    await section.get_by_label("Relay host", exact=True).fill("smtp.relay.test:2525")
    await section.get_by_label("Encryption", exact=True).select_option("implicit")
    await expect(section.get_by_label("Port", exact=True)).to_have_attribute("placeholder", "465")
    await section.get_by_label("Username", exact=True).fill("acme")
    await section.get_by_label("Password", exact=True).fill(PASSWORD)
    await save.click()
    await expect(section.get_by_role("alert")).to_contain_text(
        "'smtp.relay.test:2525' is not a host name"
    )
    assert (await stored(web_app))["choice"] == "default"

    await section.get_by_label("Relay host", exact=True).fill("smtp.relay.test")
    await save.click()
    await expect(
        page.get_by_text(f"Mail from {DOMAIN} now goes through smtp.relay.test.")
    ).to_be_visible()
    password = section.get_by_label("Password", exact=True)
    await expect(password).to_have_value("")
    await expect(password).to_have_attribute("placeholder", "Saved")
    await expect(section).to_contain_text("Saved and never shown.")
    assert PASSWORD not in await page.content()
    assert await stored(web_app) == {
        "domain": DOMAIN,
        "choice": "relay",
        "host": "smtp.relay.test",
        "port": 465,
        "tls": "implicit",
        "username": "acme",
        "passwordSet": True,
        "installationRelay": "smtp.provider.test:587",
    }
    await section.scroll_into_view_if_needed()
    await look(page, "domain-relay")

    # Another port only: the saved password stays.
    await section.get_by_label("Port", exact=True).fill("2465")
    await save.click()
    await expect(save).to_be_disabled()
    after = await stored(web_app)
    assert (after["port"], after["passwordSet"]) == (2465, True)

    # The page reloaded shows what the server has.
    await page.reload()
    await expect(
        section.get_by_role("radio", name="Through a relay host", exact=True)
    ).to_be_checked()
    await expect(section.get_by_label("Relay host", exact=True)).to_have_value("smtp.relay.test")

    await section.get_by_role("radio", name="Directly", exact=True).check()
    await expect(section.get_by_label("Relay host", exact=True)).to_have_count(0)
    await save.click()
    await expect(
        page.get_by_text(f"Mail from {DOMAIN} now goes directly to recipients' servers.")
    ).to_be_visible()
    assert (await stored(web_app))["choice"] == "direct"

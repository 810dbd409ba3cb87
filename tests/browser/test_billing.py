"""Billing and the affiliate program in the browser: an affiliate applies and the operator
approves it; a visitor follows the referral link, starts a trial, picks a plan through the
loopback Polar stand-in (whose checkout sends the browser straight back, as Polar does after the
payment) and gets the plan's limits once Polar's signed webhooks arrive; the affiliate's
dashboard shows the paying customer."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.web_app import Person, WebApp, sign_in
from tests.support.polar import (
    PRODUCTS,
    SECRET,
    order_event,
    post_webhook,
    subscription_data,
    subscription_event,
)
from tests.support.webhook_receiver import Receiver, Request

pytestmark = pytest.mark.asyncio(loop_scope="session")

PARTNER = Person("pat@partner.test", "partner-pass-1-long", "")


class PolarStandIn:
    """Polar's API on loopback: checkout answers with the page Polar returns the browser to."""

    def __init__(self) -> None:
        self.return_to = ""
        self.server = Receiver(answer=self.answer)

    def answer(self, request: Request) -> object:
        if request.target.startswith("/v1/checkouts"):
            return {"id": "chk_1", "url": self.return_to}
        return {"id": "x", "customer_portal_url": "https://sandbox.polar.sh/portal"}


@pytest_asyncio.fixture(loop_scope="session")
async def polar() -> AsyncIterator[PolarStandIn]:
    stand_in = PolarStandIn()
    await stand_in.server.start()
    try:
        yield stand_in
    finally:
        await stand_in.server.close()


@pytest.fixture
def serve_env(serve_env: dict[str, str], polar: PolarStandIn) -> dict[str, str]:
    return {
        **serve_env,
        "MAILMARK_SIGNUP": "open",
        "MAILMARK_BILLING": "polar",
        "MAILMARK_POLAR_ACCESS_TOKEN": "polar_oat_test_token",
        "MAILMARK_POLAR_WEBHOOK_SECRET": SECRET,
        "MAILMARK_POLAR_BASE_URL": f"http://127.0.0.1:{polar.server.port}",
        "MAILMARK_POLAR_PRODUCT_STARTER": PRODUCTS["starter"],
        "MAILMARK_POLAR_PRODUCT_PRO": PRODUCTS["pro"],
        "MAILMARK_POLAR_PRODUCT_BUSINESS": PRODUCTS["business"],
    }


async def test_a_referred_trial_picks_a_plan_and_the_affiliate_sees_it(
    web_app: WebApp,
    owner: Person,
    polar: PolarStandIn,
    page: Page,
    new_context: Callable[[], Awaitable[BrowserContext]],
    look: Callable[..., Awaitable[None]],
) -> None:
    polar.return_to = f"{web_app.base_url}/dashboard/billing?checkout=done"
    await web_app.cli(
        "account", "create", "partnerco", "--owner", PARTNER.email, f"--password={PARTNER.password}"
    )
    partner = await (await new_context()).new_page()
    await sign_in(partner, PARTNER)
    await partner.get_by_role("navigation").get_by_role("link", name="Affiliates").click()
    await partner.get_by_label("Website or channel").fill("https://partner.test/reviews")
    await partner.get_by_label("How will you promote Mailmark?").fill("Reviews of email hosts.")
    await partner.get_by_role("button", name="Send application").click()
    await expect(partner.get_by_role("heading", name="Application received")).to_be_visible()

    # The operator: the owner of the server's first account.
    await sign_in(page, owner)
    await page.get_by_role("navigation").get_by_role("link", name="Operator").click()
    applications = page.get_by_role("table", name="Affiliate applications")
    await applications.get_by_role("button", name="Approve partnerco").click()
    await expect(applications).to_contain_text("approved")
    await expect(page.get_by_role("table", name="Accounts")).to_contain_text("partnerco")
    await look(page, "operator", dark=False)

    await partner.reload()
    link = await partner.locator("code").inner_text()
    assert re.fullmatch(rf"{re.escape(web_app.base_url)}/r/[a-z0-9]{{8}}", link), link

    visitor = await (await new_context()).new_page()
    await visitor.goto(link)
    await expect(visitor).to_have_url(re.compile(r"/sign-up$"))
    await visitor.get_by_label("Account name").fill("newco")
    await visitor.get_by_label("Your name").fill("Nia New")
    await visitor.get_by_label("Work email").fill("nia@newco.test")
    await visitor.get_by_label("Password", exact=True).fill("nia-password-long-1")
    await visitor.get_by_role("button", name="Start free trial").click()
    await expect(visitor).to_have_url(re.compile(r"/dashboard$"))

    await visitor.get_by_role("navigation").get_by_role("link", name="Billing").click()
    await expect(visitor.get_by_text("Free trial", exact=True)).to_be_visible()
    await expect(visitor.get_by_text("$50", exact=True)).to_be_visible()
    await expect(visitor.get_by_role("meter", name="Mailboxes")).to_have_attribute(
        "aria-valuemax", "3"
    )
    await look(visitor, "billing-trial")
    await visitor.get_by_role("button", name="Choose Pro").click()
    await expect(visitor).to_have_url(re.compile(r"/dashboard/billing\?checkout=done$"))
    await expect(visitor.get_by_text("Thank you.")).to_be_visible()

    # Polar's events for the payment the checkout took.
    checkout = json.loads(polar.server.requests[-1].body)
    account_id = int(checkout["external_customer_id"])
    now = datetime.now(UTC)
    data = subscription_data(
        account_id, plan="pro", modified_at=now, period_end=now + timedelta(days=30)
    )
    async with httpx.AsyncClient(base_url=web_app.base_url, trust_env=False) as to_server:
        created = await post_webhook(to_server, "evt_sub", subscription_event("created", data))
        assert created.status_code == 200, created.text
        paid = await post_webhook(
            to_server, "evt_paid", order_event("paid", "ord_1", account_id, amount=5000, at=now)
        )
        assert paid.json()["outcome"].endswith("affiliate commission 1500"), paid.text

    await visitor.reload()
    await expect(visitor.get_by_text("Your plan", exact=True)).to_be_visible()
    await expect(visitor.get_by_role("meter", name="Emails this month")).to_have_attribute(
        "aria-valuemax", "25000"
    )
    await expect(visitor.get_by_role("button", name="Upgrade to Business")).to_be_visible()
    await look(visitor, "billing-pro")

    await partner.reload()
    numbers = partner.get_by_role("definition")
    await expect(numbers).to_have_text(["1", "1", "1", "$15.00", "$15.00", "$0.00"])
    await look(partner, "affiliate")

"""The Reports section of a domain's page: its empty state, then the sources and TLS failures of
reports sent to the domain's report addresses over the MX."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiosmtplib
import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import DOMAIN, Person, WebApp, sign_in
from tests.core.aggregate_report_samples import (
    google_report,
    microsoft_report,
    plain_report,
    tls_report,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def send_reports(web_app: WebApp) -> None:
    dmarc, tls = f"dmarc@{DOMAIN}", f"tls-reports@{DOMAIN}"
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=int(web_app.env["MAILMARK_MX_PORT"]), start_tls=False
    )
    async with client:
        await client.sendmail(
            "noreply-dmarc-support@google.com", [dmarc], google_report(dmarc, DOMAIN)
        )
        await client.sendmail("dmarcreport@microsoft.com", [dmarc], microsoft_report(dmarc, DOMAIN))
        await client.sendmail("tls-reporting@company-x.example", [tls], tls_report(tls, DOMAIN))
        with pytest.raises(aiosmtplib.SMTPDataError):
            await client.sendmail("x@hostile.example", [dmarc], plain_report(dmarc, b"<feedback>"))


async def test_the_domain_page_shows_what_reports_say(
    web_app: WebApp, acme: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    await sign_in(page, acme)
    await page.goto(f"/dashboard/domains/{DOMAIN}")
    reports = page.locator("section", has=page.get_by_role("heading", name="Reports", exact=True))
    await expect(reports.get_by_role("heading", name="No reports yet")).to_be_visible()
    await expect(reports).to_contain_text(f"dmarc@{DOMAIN}")

    await send_reports(web_app)
    await page.reload()
    table = reports.get_by_role("table", name="Sending sources")
    await expect(table.get_by_role("row")).to_have_count(4)  # heading + 3 sources
    await expect(table.get_by_role("row").nth(1)).to_contain_text("203.0.113.25")
    await expect(reports).to_contain_text("22 messages reported: 86% pass DMARC")
    await expect(reports.get_by_role("list", name="TLS failures")).to_contain_text(
        "starttls-not-supported at mx2.mail.acme.test: 200 sessions"
    )
    await expect(reports).to_contain_text("1 report could not be read")
    await reports.scroll_into_view_if_needed()
    await look(page, "domain-reports")

"""Signing in: wrong password, the throttle, two-factor with TOTP, signing out."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

import pyotp
import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import Person, WebApp, sign_in, sign_out

pytestmark = pytest.mark.asyncio(loop_scope="session")

INVALID = "Invalid email or password."
TOO_MANY = re.compile(r"Too many failed sign-ins; try again in \d+ seconds?\.")
# Enough to pass any per-account or per-IP limit the throttle has (IMAP's is 10 per 5 minutes).
MAX_ATTEMPTS = 25


async def submit(page: Page, email: str, password: str) -> None:
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()


async def test_wrong_password_is_refused_where_it_was_typed(
    web_app: WebApp, owner: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    await page.goto("/dashboard/mailboxes")
    # Not signed in: the private page sends to sign-in.
    await expect(page).to_have_url(re.compile(r"/sign-in"))
    await look(page, "sign-in")

    await submit(page, owner.email, "not-the-password")
    await expect(page.get_by_role("alert")).to_have_text(INVALID)
    await expect(page).to_have_url(re.compile(r"/sign-in"))
    # The email stays typed; the password does not.
    await expect(page.get_by_label("Email", exact=True)).to_have_value(owner.email)
    await look(page, "sign-in-wrong-password")

    await submit(page, owner.email, owner.password)
    # Back to the page that asked for sign-in.
    await expect(page).to_have_url(re.compile(r"/dashboard/mailboxes$"))

    await sign_out(page)
    await page.goto("/dashboard")
    await expect(page).to_have_url(re.compile(r"/sign-in"))


async def test_too_many_wrong_passwords_are_throttled(
    web_app: WebApp, owner: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    await page.goto("/sign-in")
    alert = page.get_by_role("alert")
    refused = 0
    for _ in range(MAX_ATTEMPTS):
        async with page.expect_response("**/api/auth/sign-in") as answer:
            await submit(page, owner.email, f"guess-{refused}")
        if (await answer.value).status == 429:
            await expect(alert).to_have_text(TOO_MANY)
            break
        await expect(alert).to_have_text(INVALID)
        refused += 1
    else:
        pytest.fail(f"{MAX_ATTEMPTS} wrong passwords and no throttle message")
    assert refused >= 3, f"throttled after only {refused} wrong passwords"
    # While throttled the form says when it opens again.
    await expect(
        page.get_by_text(re.compile(r"^Sign-in opens again in \d+ seconds?\.$"))
    ).to_be_visible()
    await look(page, "sign-in-throttled", dark=False)


async def next_code(totp: pyotp.TOTP, used: set[str]) -> str:
    """A current code not used yet: a server may refuse a code used once (RFC 6238 §5.2)."""
    code = totp.now()
    if code in used:
        await asyncio.sleep(totp.interval - time.time() % totp.interval + 0.2)
        code = totp.now()
    used.add(code)
    return code


async def test_two_factor_with_an_authenticator_app(
    web_app: WebApp, owner: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    await sign_in(page, owner)
    await page.goto("/dashboard/settings/security")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Security")
    await look(page, "security")

    await page.get_by_role("button", name="Set up two-factor authentication").click()
    form = page.locator("form").filter(has=page.get_by_label("Authentication code"))
    qr_code = page.get_by_role("img", name=re.compile("QR code"))
    await expect(qr_code).to_be_visible()
    # An authenticator app scans it: it must be a picture, not its alt text.
    decoded = "img => img.decode().then(() => img.naturalWidth, () => 0)"
    assert await qr_code.evaluate(decoded) > 0, "the QR code image does not render"
    secret = re.sub(r"\s", "", await form.locator("code").inner_text())
    assert re.fullmatch(r"[A-Z2-7]{16,}=*", secret), secret
    await look(page, "security-totp-setup")

    totp = pyotp.TOTP(secret)
    used: set[str] = set()
    await form.get_by_label("Authentication code").fill(await next_code(totp, used))
    await form.get_by_role("button", name="Turn on").click()
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    await expect(codes).to_have_count(10)
    recovery = [code.strip() for code in await codes.all_inner_texts()]
    await look(page, "security-recovery-codes", dark=False)
    await page.get_by_role("button", name="I have saved them").click()

    await sign_out(page)
    await submit(page, owner.email, owner.password)
    # The password alone is not enough now.
    step = page.get_by_role("main")
    code_field = step.get_by_label("Authentication code")
    await expect(code_field).to_be_focused()
    await look(page, "sign-in-totp", dark=False)

    wrong = "000000" if totp.now() != "000000" else "111111"
    await code_field.fill(wrong)
    await step.get_by_role("button", name="Verify").click()
    await expect(code_field).to_have_accessible_description(re.compile("not right"))
    await expect(page).to_have_url(re.compile(r"/sign-in"))

    await code_field.fill(await next_code(totp, used))
    await step.get_by_role("button", name="Verify").click()
    await expect(page).to_have_url(re.compile(r"/dashboard$"))

    # A recovery code stands in for a lost phone, once.
    await sign_out(page)
    await submit(page, owner.email, owner.password)
    await step.get_by_role("button", name="Use a recovery code").click()
    await step.get_by_label("Recovery code").fill(recovery[0])
    await step.get_by_role("button", name="Verify").click()
    await expect(page).to_have_url(re.compile(r"/dashboard$"))
    await sign_out(page)
    await submit(page, owner.email, owner.password)
    await step.get_by_role("button", name="Use a recovery code").click()
    await step.get_by_label("Recovery code").fill(recovery[0])
    await step.get_by_role("button", name="Verify").click()
    await expect(step.get_by_label("Recovery code")).to_have_attribute("aria-invalid", "true")
    await expect(page).to_have_url(re.compile(r"/sign-in"))

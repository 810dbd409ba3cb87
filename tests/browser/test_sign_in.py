"""Signing in: wrong password, the throttle, two-factor with TOTP, signing out."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

import pyotp
import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import Person, WebApp, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

INVALID = "Invalid email or password."
TOO_MANY = re.compile(r"Too many failed sign-ins; try again in \d+ seconds?\.")
# Enough to pass any per-account or per-IP limit the throttle has (IMAP's is 10 per 5 minutes).
MAX_ATTEMPTS = 25


async def submit(page: Page, email: str, password: str) -> None:
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()


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
    await expect(page.get_by_label("Email")).to_have_value(owner.email)
    await look(page, "sign-in-wrong-password")

    await submit(page, owner.email, owner.password)
    # Back to the page that asked for sign-in.
    await expect(page).to_have_url(re.compile(r"/dashboard/mailboxes$"))

    await page.get_by_role("button", name=re.compile("sign out", re.IGNORECASE)).click()
    await expect(page).to_have_url(re.compile(r"/sign-in"))
    await page.goto("/dashboard")
    await expect(page).to_have_url(re.compile(r"/sign-in"))


async def test_too_many_wrong_passwords_are_throttled(
    web_app: WebApp, owner: Person, page: Page, look: Callable[..., Awaitable[None]]
) -> None:
    await page.goto("/sign-in")
    alert = page.get_by_role("alert")
    refused = 0
    for _ in range(MAX_ATTEMPTS):
        await submit(page, owner.email, f"guess-{refused}")
        await expect(alert).to_have_text(re.compile(f"{re.escape(INVALID)}|{TOO_MANY.pattern}"))
        if TOO_MANY.fullmatch((await alert.inner_text()).strip()):
            break
        refused += 1
        # Wait for the form to be ready again before the next try.
        await expect(page.get_by_role("button", name="Sign in")).to_be_enabled()
    else:
        pytest.fail(f"{MAX_ATTEMPTS} wrong passwords and no throttle message")
    assert refused >= 3, f"throttled after only {refused} wrong passwords"
    await look(page, "sign-in-throttled", dark=False)

    # While throttled even the right password is refused, with the same message.
    await submit(page, owner.email, owner.password)
    await expect(alert).to_have_text(TOO_MANY)
    await expect(page).to_have_url(re.compile(r"/sign-in"))


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
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await look(page, "security")

    await page.get_by_role(
        "button", name=re.compile("two-factor|authenticator", re.IGNORECASE)
    ).click()
    secret_text = page.get_by_text(re.compile(r"^\s*([A-Z2-7]{4}\s?){4,}\s*$"))
    await expect(secret_text).to_be_visible()
    secret = re.sub(r"\s", "", await secret_text.inner_text())
    await expect(page.get_by_role("img", name=re.compile("QR", re.IGNORECASE))).to_be_visible()
    await look(page, "security-totp-setup")

    totp = pyotp.TOTP(secret)
    used: set[str] = set()
    await page.get_by_label(re.compile("code", re.IGNORECASE)).fill(await next_code(totp, used))
    await page.get_by_role(
        "button", name=re.compile("turn on|enable|verify", re.IGNORECASE)
    ).click()
    codes = page.get_by_role("listitem").filter(has_text=re.compile(r"^\s*[\w-]{8,}\s*$"))
    await expect(codes).to_have_count(10)
    recovery = [c.strip() for c in await codes.all_inner_texts()]
    await look(page, "security-recovery-codes", dark=False)

    await page.get_by_role("button", name=re.compile("sign out", re.IGNORECASE)).click()
    await expect(page).to_have_url(re.compile(r"/sign-in"))
    await submit(page, owner.email, owner.password)
    # The password alone is not enough now.
    code_field = page.get_by_label(re.compile("code", re.IGNORECASE))
    await expect(code_field).to_be_visible()
    await expect(page).not_to_have_url(re.compile(r"/dashboard"))
    await look(page, "sign-in-totp", dark=False)

    await code_field.fill("000000" if totp.now() != "000000" else "111111")
    await page.get_by_role(
        "button", name=re.compile("verify|continue|sign in", re.IGNORECASE)
    ).click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page).not_to_have_url(re.compile(r"/dashboard"))

    await code_field.fill(await next_code(totp, used))
    await page.get_by_role(
        "button", name=re.compile("verify|continue|sign in", re.IGNORECASE)
    ).click()
    await expect(page).to_have_url(re.compile(r"/dashboard$"))

    # A recovery code stands in for a lost phone, once.
    await page.get_by_role("button", name=re.compile("sign out", re.IGNORECASE)).click()
    await submit(page, owner.email, owner.password)
    await code_field.fill(recovery[0])
    await page.get_by_role(
        "button", name=re.compile("verify|continue|sign in", re.IGNORECASE)
    ).click()
    await expect(page).to_have_url(re.compile(r"/dashboard$"))

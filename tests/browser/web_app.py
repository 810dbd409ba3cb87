"""The running web app and the people who use it, as the browser tests see them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from tests.fakedns import FakeDns
from tests.support.serve import Run, Server, mailmark

OWNER_EMAIL = "owner@acme.test"
OWNER_PASSWORD = "owner-pass-1-long-enough"
ACCOUNT = "acme"
DOMAIN = "acme.test"


@dataclass
class WebApp:
    """A running `mailmark serve` with the built UI, and the ways a test reaches it."""

    base_url: str
    imap_port: int
    env: dict[str, str]
    workdir: Path
    server: Server
    dns: FakeDns

    async def cli(self, *args: str) -> Run:
        """A `mailmark` command against the same data dir and database; fails the test if it
        exits non-zero."""
        result = await mailmark(self.env, *args, cwd=self.workdir)
        assert result.code == 0, f"mailmark {' '.join(args)} exited {result.code}:\n{result.err}"
        return result


@dataclass(frozen=True)
class Person:
    email: str
    password: str
    name: str


async def sign_in(page: Page, person: Person) -> None:
    """Signs in through the sign-in page and waits for the dashboard."""
    await page.goto("/sign-in")
    await page.get_by_label("Email", exact=True).fill(person.email)
    await page.get_by_label("Password", exact=True).fill(person.password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/dashboard$"))
    await expect(page.get_by_role("heading", level=1)).to_be_visible()


def publish(dns: FakeDns, record: dict[str, Any]) -> None:
    """Publish one record of `mailmark domain records --json` in the loopback DNS, as the
    domain's owner would at their registrar."""
    kind, name, value = record["type"], record["name"], record["value"]
    if kind == "MX":
        dns.add(name, kind, f"{record['priority']} {value}.")
    elif kind == "TXT":
        dns.add(name, kind, value)
    elif kind in {"CNAME", "SRV"}:
        dns.add(name, kind, f"{value}.")
    else:
        raise AssertionError(f"no way to publish a {kind} record")


async def sign_out(page: Page) -> None:
    """Signs out through the account menu and waits for the sign-in page."""
    await page.get_by_role("button", name="Sign out", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/sign-in"))

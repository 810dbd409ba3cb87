"""The web app end to end: the built UI served by a real `mailmark serve`, driven in Debian's
Chromium through Playwright.

One Chromium per pytest-xdist worker (session scope: the tests here run in the session's event
loop, see `pytestmark` in each module), a fresh browser context per test, and a `mailmark serve`
of the test's own whose resolver is the loopback FakeDns. Every test here is marked `browser`, so
`pytest -m 'not browser'` leaves them out locally; CI runs them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    async_playwright,
    expect,
)

from tests.browser.web_app import (
    ACCOUNT,
    DOMAIN,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    Person,
    WebApp,
)
from tests.fakedns import FakeDns
from tests.support.browser import (
    DESKTOP,
    UiUnavailable,
    build_ui,
    inspect_page,
    launch_chromium,
    screenshot_path,
)
from tests.support.serve import Server, free_port

HERE = Path(__file__).resolve().parent
# Long enough for a DNS check or a password hash on a loaded two-core machine, short enough that
# a page that never shows what a test waits for fails in seconds rather than minutes.
ACTION_TIMEOUT_MS = 15_000
# Starts of serve for one test when the ports picked for it were taken meanwhile.
PORT_ATTEMPTS = 3
expect.set_options(timeout=ACTION_TIMEOUT_MS)


# Whether the test's own body failed, for the screenshot of where it stopped.
_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def web_ui() -> None:
    """The web app built into the package, as `./scripts/serve` builds it."""
    try:
        build_ui()
    except UiUnavailable as missing:
        pytest.skip(str(missing))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def web_app(
    web_ui: None, serve_env: dict[str, str], tmp_path: Path, fake_dns: FakeDns
) -> AsyncIterator[WebApp]:
    # Known before the start: the pages show the public URL and the IMAP port to people. A port
    # found free may be taken (by another worker's client socket) before serve binds it: then
    # serve is started again on other ports.
    for attempt in range(1, PORT_ATTEMPTS + 1):
        http_port, imap_port = free_port(), free_port()
        env = {
            **serve_env,
            "MAILMARK_MX_PORT": str(free_port()),
            "MAILMARK_HTTP_PORT": str(http_port),
            "MAILMARK_PUBLIC_URL": f"http://127.0.0.1:{http_port}",
            "MAILMARK_IMAP_PORT": str(imap_port),
        }
        server = await Server.start(env, tmp_path)
        try:
            await server.wait_for(rf"HTTP listening on 127\.0\.0\.1:{http_port}\b")
            await server.wait_for(rf"IMAP listening on 127\.0\.0\.1:{imap_port}\b")
            break
        except AssertionError:
            await server.stop()
            if attempt == PORT_ATTEMPTS or "Address already in use" not in server.log:
                raise
    try:
        yield WebApp(
            base_url=f"http://127.0.0.1:{http_port}",
            imap_port=imap_port,
            env=env,
            workdir=tmp_path,
            server=server,
            dns=fake_dns,
        )
    finally:
        await server.stop()
        # Shown by pytest only when the test failed: what the server logged meanwhile.
        print(f"mailmark serve's log:\n{server.log}")


@dataclass
class PageWatch:
    """What went wrong inside the page: uncaught errors and Content-Security-Policy refusals."""

    problems: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.problems.append(f"CSP: {message.text}")

    def on_page_error(self, error: Exception) -> None:
        self.problems.append(f"uncaught: {error}")


@pytest_asyncio.fixture(loop_scope="session")
async def new_context(
    browser: Browser, web_app: WebApp, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[[], Awaitable[BrowserContext]]]:
    """Makes browser contexts (separate cookie jars: separate people) on the web app; at the end
    fails the test if any page threw or was refused by the Content-Security-Policy. When the test
    failed, each page is kept as a screenshot of where it stopped (`failed-<test>-<n>.png`)."""
    contexts: list[BrowserContext] = []
    watch = PageWatch()

    async def make() -> BrowserContext:
        context = await browser.new_context(
            base_url=web_app.base_url,
            viewport=DESKTOP,
            permissions=["clipboard-read", "clipboard-write"],
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.on("console", watch.on_console)
        context.on("weberror", lambda web_error: watch.on_page_error(web_error.error))
        contexts.append(context)
        return context

    yield make
    if request.node.stash.get(_CALL_FAILED, False):
        pages = [page for context in contexts for page in context.pages]
        for number, page in enumerate(pages, start=1):
            path = screenshot_path("failed", request.node.name, number, "light")
            path.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(path), timeout=ACTION_TIMEOUT_MS)
    for context in contexts:
        await context.close()
    assert not watch.problems, "the pages reported:\n" + "\n".join(watch.problems)


@pytest_asyncio.fixture(loop_scope="session")
async def page(new_context: Callable[[], Awaitable[BrowserContext]]) -> Page:
    context = await new_context()
    return await context.new_page()


@pytest.fixture
def look(request: pytest.FixtureRequest) -> Callable[..., Awaitable[None]]:
    """`await look(page, "dashboard")`: axe-core and screenshots of the page as it is now, named
    after the test (`dark=False` for pages that only need the light scheme)."""
    test = request.node.originalname.removeprefix("test_")

    async def look(page: Page, name: str, *, dark: bool = True) -> None:
        schemes: tuple[Literal["light", "dark"], ...] = ("light", "dark") if dark else ("light",)
        await inspect_page(page, test, name, schemes=schemes)

    return look


@pytest_asyncio.fixture(loop_scope="session")
async def owner(web_app: WebApp) -> Person:
    """The owner of account acme (plan unlimited), made with `mailmark account create`."""
    await web_app.cli(
        "account",
        "create",
        ACCOUNT,
        "--owner",
        OWNER_EMAIL,
        f"--password={OWNER_PASSWORD}",
        "--plan",
        "unlimited",
    )
    return Person(OWNER_EMAIL, OWNER_PASSWORD, name="")  # the CLI asks for no name


@pytest_asyncio.fixture(loop_scope="session")
async def acme(web_app: WebApp, owner: Person) -> Person:
    """The owner's account with the trusted domain acme.test and the mailboxes sales@ and
    support@ (made with the CLI, as a self-hoster would); returns the owner."""
    await web_app.cli("domain", "add", DOMAIN, "--account", ACCOUNT, "--trust")
    for local, name in (("sales", "Sales"), ("support", "Support")):
        await web_app.cli("mailbox", "add", f"{local}@{DOMAIN}", "--display-name", name)
    return owner

"""The web app at size: first render in Chromium, /api list latency, and the JavaScript it ships.

    cd <checkout> && .venv/bin/python bench/web.py [--loads 5] [--requests 300]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Builds the UI as ./scripts/serve does, starts a real `mailmark serve` on a fresh data dir (SQLite,
or a fresh PostgreSQL database with --database-url) and seeds it as bench/dashboard_api.py does
(whose helpers it uses): an account on the unlimited plan with 5 trusted domains, its owner signed
in over /api, 100 mailboxes on each domain made through POST /api/mailboxes.

1. The /api list routes the pages read, timed as bench/dashboard_api.py times them (one
   keep-alive connection, one request at a time, after a warm-up): p50 and p99.
2. Time to first render in Debian's Chromium (Playwright, headless): a new browser context (cold
   cache) carrying the owner's session opens the page; the time is from navigation start to the
   moment the page's h1 is visible (for the mailboxes page: its table with a row), read from the
   page's own clock (`performance.now()`, whose origin is navigation start) by an observer added
   before any of the page's scripts run. Median and worst of --loads runs, for /dashboard and
   /dashboard/mailboxes, beside the sign-in page (no data behind it) as the baseline of the same
   run; also first contentful paint, and the same pages reloaded in a warm context.
3. The JavaScript the dashboard loads, gzipped (level 9): the files Chromium fetched to render
   /dashboard, and index.html's entry with the files it imports statically.

Prints PASS/FAIL against the targets: first render < 1 s, p99 < 50 ms, JavaScript < 250 KB
gzipped. Exit status 0 on PASS, 1 on FAIL, 2 on error.

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from api import api_settings_env, start_serve, wait_http
from dashboard_api import (  # the /api bench: same seed, same timing
    DOMAINS,
    MAILBOXES_PER_DOMAIN,
    create_mailboxes,
    percentile,
    provision,
    signed_in,
    timed,
)
from playwright.async_api import Browser, Page, async_playwright
from smtp_in import (
    BenchError,
    Processes,
    free_loopback_port,
    fresh_database,
    log_tail,
    mailmark_setup,
)

from tests.support.browser import DESKTOP, UiUnavailable, build_ui, launch_chromium

TARGET_FIRST_RENDER_MS = 1000.0
TARGET_P99_MS = 50.0
TARGET_JS_GZIP_KB = 250.0
BUILT_UI = REPO / "src" / "mailmark" / "web" / "static" / "ui"
RENDER_TIMEOUT = 30.0

# Records, from before the page's first script runs, the page's clock when the element the page
# is measured by first becomes visible. Added through the DevTools protocol, so the app's
# Content-Security-Policy (no inline script) does not apply to it.
FIRST_RENDER_OBSERVER = """
(() => {
  const selector = %s;
  const visible = () => {
    const element = document.querySelector(selector);
    if (!element) return false;
    const box = element.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(element).visibility !== "hidden";
  };
  const check = () => {
    if (window.__firstRender === undefined && visible()) {
      window.__firstRender = performance.now();
    }
  };
  new MutationObserver(check).observe(document, {childList: true, subtree: true, attributes: true});
  document.addEventListener("DOMContentLoaded", check);
})();
"""


@dataclass(frozen=True)
class PageUnderTest:
    label: str
    path: str
    selector: str  # rendered = this element visible
    signed_in: bool = True


PAGES = (
    PageUnderTest("sign-in page (baseline)", "/sign-in", "h1", signed_in=False),
    PageUnderTest("/dashboard", "/dashboard", "main h1"),
    PageUnderTest("/dashboard/mailboxes", "/dashboard/mailboxes", "main table tbody tr"),
)


@dataclass
class RenderTimes:
    first_render: list[float]
    first_paint: list[float]
    warm: list[float]
    scripts: set[str]


# ------------------------------------------------------------------------------------------------
# Chromium
# ------------------------------------------------------------------------------------------------


async def first_render(page: Page, page_under_test: PageUnderTest) -> float:
    """The page's clock when the observer saw the element visible; polled from here, since
    Playwright's wait_for_function compiles its predicate in the page, which the CSP forbids."""
    deadline = time.monotonic() + RENDER_TIMEOUT
    while time.monotonic() < deadline:
        rendered = await page.evaluate("window.__firstRender ?? null")
        if rendered is not None:
            return float(rendered)
        await asyncio.sleep(0.02)
    raise BenchError(
        f"{page_under_test.path}: {page_under_test.selector} not visible within "
        f"{RENDER_TIMEOUT:.0f} s (the page is at {page.url})"
    )


async def render_times(
    browser: Browser, base_url: str, session_cookie: str, page_under_test: PageUnderTest, loads: int
) -> RenderTimes:
    times = RenderTimes([], [], [], set())
    observer = FIRST_RENDER_OBSERVER % json.dumps(page_under_test.selector)
    for run in range(loads):
        context = await browser.new_context(base_url=base_url, viewport=DESKTOP)
        try:
            if page_under_test.signed_in:
                await context.add_cookies(
                    [{"name": "mailmark_session", "value": session_cookie, "url": base_url}]
                )
            await context.add_init_script(observer)
            page = await context.new_page()
            for warm in (False, True):
                if warm:
                    await page.reload()
                else:
                    await page.goto(page_under_test.path)
                rendered = await first_render(page, page_under_test)
                if warm:
                    times.warm.append(rendered)
                    continue
                times.first_render.append(rendered)
                paint = await page.evaluate(
                    "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
                )
                if paint is not None:
                    times.first_paint.append(float(paint))
                if run == 0:
                    scripts = await page.evaluate(
                        "performance.getEntriesByType('resource')"
                        ".filter(e => e.initiatorType === 'script' || e.name.endsWith('.js'))"
                        ".map(e => e.name)"
                    )
                    times.scripts.update(urlsplit(name).path for name in scripts)
                    times.scripts.update(
                        urlsplit(src).path
                        for src in await page.eval_on_selector_all(
                            "script[src]", "els => els.map(e => e.src)"
                        )
                    )
        finally:
            await context.close()
    return times


# A static `import ... from "./x.js"` (or a bare `import "./x.js"`) in Vite's minified output;
# `import("./x.js")`, a page loaded on first visit, is not matched.
STATIC_IMPORT = re.compile(
    r"""(?:^|[;\n])\s*import\s*(?:[\w$*{}\s,]+from\s*)?["'](\./[^"']+\.js)["']"""
)
ENTRY_SCRIPT = re.compile(
    r'<(?:script[^>]*\bsrc|link[^>]*rel="modulepreload"[^>]*\bhref)="/([^"]+\.js)"'
)


def gzipped(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def entry_js(dist: Path) -> list[Path]:
    """What index.html loads before the app runs: its module scripts, their preloads and,
    through them, every file they import statically (Vite's build writes no manifest here)."""
    pending = [dist / name for name in ENTRY_SCRIPT.findall((dist / "index.html").read_text())]
    if not pending:
        raise BenchError(f"{dist / 'index.html'} names no script")
    seen: list[Path] = []
    while pending:
        file = pending.pop()
        if file in seen:
            continue
        seen.append(file)
        pending.extend(
            (file.parent / name).resolve() for name in STATIC_IMPORT.findall(file.read_text())
        )
    return seen


def fetched_js(dist: Path, paths: set[str]) -> list[Path]:
    """The built files behind the script URLs Chromium fetched (same name under the build dir)."""
    found = []
    for url_path in sorted(paths):
        name = url_path.rsplit("/", 1)[-1]
        matches = [m for m in dist.rglob(name) if m.is_file()]
        if matches:
            found.append(matches[0])
    return found


# ------------------------------------------------------------------------------------------------
# The run and the report
# ------------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


async def chromium_renders(
    base_url: str, session_cookie: str, loads: int
) -> tuple[str, dict[str, RenderTimes]]:
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        try:
            # One untimed load of each page first: the server's and Chromium's first-use costs
            # would otherwise fall on whichever page is measured first.
            for page in PAGES:
                await render_times(browser, base_url, session_cookie, page, 1)
            renders = {
                page.path: await render_times(browser, base_url, session_cookie, page, loads)
                for page in PAGES
            }
            return browser.version, renders
        finally:
            await browser.close()


def report_api(rows: list[tuple[str, list[float]]]) -> bool:
    print(f"\n/api list routes on one keep-alive connection, {len(rows[0][1])} requests each")
    print(f"{'route':<44} {'p50 ms':>7} {'p99 ms':>7}  target")
    ok = True
    for label, latencies in rows:
        p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
        passed = p99 < TARGET_P99_MS
        ok &= passed
        print(f"{label:<44} {p50:>7.1f} {p99:>7.1f}  p99 < {TARGET_P99_MS:.0f} {verdict(passed)}")
    return ok


def report_renders(version: str, renders: dict[str, RenderTimes]) -> bool:
    print(f"\nfirst render in Chromium {version} (navigation start -> element visible)")
    print(f"{'page':<26} {'median ms':>9} {'worst ms':>8} {'FCP ms':>7} {'warm ms':>8}  target")
    ok = True
    for page in PAGES:
        times = renders[page.path]
        median = statistics.median(times.first_render)
        fcp = f"{statistics.median(times.first_paint):.0f}" if times.first_paint else "-"
        target = ""
        if page.signed_in:
            passed = median < TARGET_FIRST_RENDER_MS
            ok &= passed
            target = f"< {TARGET_FIRST_RENDER_MS:.0f} {verdict(passed)}"
        print(
            f"{page.label:<26} {median:>9.0f} {max(times.first_render):>8.0f} {fcp:>7} "
            f"{statistics.median(times.warm):>8.0f}  {target}"
        )
    return ok


def report_javascript(scripts: set[str]) -> bool:
    dist = BUILT_UI
    entry_files = entry_js(dist)
    entry_kb = sum(gzipped(f) for f in entry_files) / 1024
    loaded = fetched_js(dist, scripts)
    loaded_kb = sum(gzipped(f) for f in loaded) / 1024
    loaded_raw_kb = sum(f.stat().st_size for f in loaded) / 1024
    all_kb = sum(gzipped(f) for f in dist.rglob("*.js")) / 1024
    ok = loaded_kb < TARGET_JS_GZIP_KB and entry_kb < TARGET_JS_GZIP_KB
    print(f"\nJavaScript ({dist.relative_to(REPO)}), gzip -9")
    print(
        f"index.html's entry and its static imports: {len(entry_files)} files, "
        f"{entry_kb:.1f} KB gzipped"
    )
    print(
        f"fetched to render /dashboard: {len(loaded)} files, {loaded_raw_kb:.1f} KB raw, "
        f"{loaded_kb:.1f} KB gzipped  (target < {TARGET_JS_GZIP_KB:.0f} KB) {verdict(ok)}"
    )
    print(f"every built .js file: {all_kb:.1f} KB gzipped")
    return ok


def bench(args: argparse.Namespace, procs: Processes) -> int:
    try:
        build_ui()
    except (UiUnavailable, AssertionError) as error:
        raise BenchError(str(error)) from None
    workdir = Path(tempfile.mkdtemp(prefix="mailmark-bench-web-", dir=args.workdir))
    try:
        with fresh_database(args.database_url) as database_url:
            setup = mailmark_setup(
                workdir, database_url, f"127.0.0.1:{free_loopback_port()}", "FULL"
            )
            http_port = free_loopback_port()
            base_url = f"http://127.0.0.1:{http_port}"
            setup.env.update(
                MAILMARK_HTTP_PORT=str(http_port),
                MAILMARK_PUBLIC_URL=base_url,
                **api_settings_env(),
            )
            provision(setup)
            serve = start_serve(procs, setup, 1)
            wait_http(http_port, serve, setup.log)
            client, csrf = signed_in(http_port)
            try:
                create_mailboxes(client, csrf)
                total = len(DOMAINS) * MAILBOXES_PER_DOMAIN
                store = "PostgreSQL" if database_url else "SQLite (synchronous=FULL)"
                print(f"{len(DOMAINS)} domains, {total} mailboxes; store: {store}")
                api_rows = [
                    (f"GET {path}", timed(client, path, args.requests, expect))
                    for path, expect in (
                        ("/api/domains", len(DOMAINS)),
                        ("/api/mailboxes", total),
                        (f"/api/mailboxes?domain={DOMAINS[0]}", MAILBOXES_PER_DOMAIN),
                    )
                ]
                cookie = next(
                    value
                    for name, value in client.cookies.items()
                    if name.endswith("mailmark_session")
                )
                version, renders = asyncio.run(chromium_renders(base_url, cookie, args.loads))
            except BenchError as error:
                raise BenchError(f"{error}\nserve's log:\n{log_tail(setup.log)}") from None
            finally:
                client.close()
            procs.stop(serve)
        ok = report_api(api_rows)
        ok &= report_renders(version, renders)
        ok &= report_javascript(renders["/dashboard"].scripts)
        return 0 if ok else 1
    finally:
        procs.stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="First render in Chromium, /api list latency and JavaScript size at size."
    )
    add = parser.add_argument
    add("--loads", type=int, default=5, help="cold loads of each page in Chromium (5)")
    add("--requests", type=int, default=300, help="timed requests per /api route (300)")
    add(
        "--database-url",
        default="",
        metavar="URL",
        help="PostgreSQL server for Mailmark, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/"
        "test: a fresh database is created there and dropped afterwards (default: SQLite)",
    )
    add("--workdir", type=Path, default=None, help="where to create the temporary data dir")
    add("--keep", action="store_true", help="keep the data dir and the server log")
    args = parser.parse_args(argv)
    if min(args.loads, args.requests) < 1:
        parser.error("every count must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)  # so that the `finally`s stop the server
    procs = Processes()
    try:
        return bench(args, procs)
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

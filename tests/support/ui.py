"""The built web app (web/ui) for tests that serve it: built once, under a lock, when its sources
changed, by the same `ensure_ui` as ./scripts/serve and ./scripts/test.

pytest-xdist may run several workers at once, and `npm ci` empties node_modules before filling it:
every npm command in web/ui runs under `UI_LOCK`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmark.web.spa import UI_DIR

REPO = Path(__file__).resolve().parents[2]
UI_SOURCES = REPO / "web" / "ui"
UI_LOCK = Path(tempfile.gettempdir()) / (
    "mailmark-web-ui-" + hashlib.sha256(str(UI_SOURCES).encode()).hexdigest()[:16] + ".lock"
)
NPM = shutil.which("npm")


@contextlib.contextmanager
def ui_lock() -> Iterator[None]:
    """Held while npm installs, builds or tests in web/ui."""
    with UI_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_ui_built() -> Path:
    """The built app's directory, built first when web/ui changed (or skip: no npm, no build)."""
    if NPM is None:
        if (UI_DIR / "index.html").is_file():
            return UI_DIR
        pytest.skip("the web app is not built and npm is not installed (Debian: nodejs npm)")
    with ui_lock():
        done = subprocess.run(
            ["bash", "-c", ". scripts/lib/ui.sh && ensure_ui"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    assert done.returncode == 0, (
        f"building web/ui failed:\n{done.stdout[-3000:]}{done.stderr[-6000:]}"
    )
    assert (UI_DIR / "index.html").is_file(), done.stderr
    return UI_DIR


@pytest.fixture(scope="session")
def built_ui() -> Path:
    return ensure_ui_built()

"""The web app's component tests (Vitest, web/ui/src/**/*.test.tsx): the API client's CSRF and
error handling, the sign-in redirects, the typed-confirmation dialog, and the dashboard's DNS-check
polling, signature preview and send snippets, which the browser tests reach only with difficulty."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.support.ui import UI_SOURCES, ensure_ui_built, ui_lock

NODE = shutil.which("node")
NPM = shutil.which("npm")

pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None, reason="node and npm are not installed (Debian: nodejs npm)"
)


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=UI_SOURCES,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_vitest_suite_passes(tmp_path: os.PathLike[str]) -> None:
    assert NPM is not None
    report = f"{tmp_path}/vitest.json"
    env = {**os.environ, "CI": "1", "NO_COLOR": "1"}
    # `npm ci` (when the lock file changed since the last install) and the build, as scripts do.
    ensure_ui_built()
    with ui_lock():
        done = _run(
            NPM, "exec", "--", "vitest", "run", "--reporter=json", f"--outputFile={report}", env=env
        )
    with open(report) as file:
        results = json.load(file)
    failures = [
        f"{test['fullName']}: {' '.join(test['failureMessages'])[:2000]}"
        for suite in results["testResults"]
        for test in suite["assertionResults"]
        if test["status"] != "passed"
    ]
    assert done.returncode == 0 and not failures, "\n".join(failures) or done.stderr[-6000:]
    names = {test["fullName"] for s in results["testResults"] for test in s["assertionResults"]}
    # The suites this test stands for are there (a renamed file must not drop them silently).
    for expected in (
        "CSRF token refreshes a stale token once on csrf_failed and repeats the request",
        "route guards sends a signed-out visitor of a dashboard page to sign-in, remembering the page",
        "ConfirmTyped runs the action only once the exact name is typed",
        "DomainPage shows each record's check with the fix, and polls until the domain verifies",
        "SignatureCard previews only what the server saved, never what was typed",
        "curlSnippet posts the sample to /v1/send with the key, as the shell will pass it",
    ):
        assert expected in names, sorted(names)
    assert results["numPassedTests"] >= 30

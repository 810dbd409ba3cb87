"""`mailmark sieve get|put|check`, run as the real console script."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailmark.bootstrap import build_services
from tests.support.serve import cli_environment, mailmark, settings_for

ADDRESS = "sales@acme.test"
SCRIPT = (
    'require "fileinto";\nif header :contains "subject" "invoice" {\n    fileinto "Invoices";\n}\n'
)


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return cli_environment(tmp_path / "data", database_url)


@pytest.fixture
async def mailbox(tmp_path: Path, database_url: str) -> str:
    services = await build_services(settings_for(tmp_path / "data", database_url))
    try:
        await services.accounts.create("acme", owner_email="o@acme.test", password="owner-pass-1")
        await services.domains.add("acme.test", account_name="acme", trust=True)
        await services.mailboxes.create(ADDRESS)
    finally:
        await services.close()
    return ADDRESS


async def test_put_get_and_check(tmp_path: Path, env: dict[str, str], mailbox: str) -> None:
    good = tmp_path / "good.sieve"
    good.write_text(SCRIPT)
    bad = tmp_path / "bad.sieve"
    bad.write_text('require "fileinto";\n\nfileinto "x"\n')

    missing = await mailmark(env, "sieve", "get", mailbox, cwd=tmp_path)
    assert missing.code == 1 and "has no such Sieve script" in missing.err

    checked = await mailmark(env, "sieve", "check", mailbox, str(bad), cwd=tmp_path)
    assert checked.code == 1
    assert checked.out.strip() == 'Line 3: expected ";" after fileinto, found the end of the script'
    refused = await mailmark(env, "sieve", "put", mailbox, str(bad), cwd=tmp_path)
    assert refused.code == 1
    assert 'Line 3: expected ";" after fileinto' in refused.err

    saved = await mailmark(env, "sieve", "put", mailbox, "-", cwd=tmp_path, stdin=SCRIPT)
    assert saved.code == 0, saved.err
    assert saved.out.strip() == f"Saved the Sieve script filters of {mailbox} (active)"
    shown = await mailmark(env, "sieve", "get", mailbox, "--json", cwd=tmp_path)
    assert shown.json == {
        "name": "filters",
        "active": True,
        "script": SCRIPT,
        "lastError": None,
        "lastErrorAt": None,
    }
    stored = await mailmark(env, "sieve", "check", mailbox, cwd=tmp_path)
    assert (stored.code, stored.out.strip()) == (0, "The script is valid")
    assert (await mailmark(env, "sieve", "check", mailbox, str(good), cwd=tmp_path)).code == 0

"""`mailmark alias add|list|remove`, `domain catch-all` and `domain add --alias-of`, run as the
real console script."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailmark.bootstrap import build_services
from tests.support.serve import cli_environment, mailmark, settings_for


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return cli_environment(tmp_path / "data", database_url)


@pytest.fixture
async def domain(tmp_path: Path, database_url: str) -> str:
    services = await build_services(settings_for(tmp_path / "data", database_url))
    try:
        await services.accounts.create("acme", owner_email="o@acme.test", password="owner-pass-1")
        await services.domains.add("acme.test", account_name="acme", trust=True)
        await services.mailboxes.create("sales@acme.test")
        await services.mailboxes.create("support@acme.test")
    finally:
        await services.close()
    return "acme.test"


async def test_aliases_are_added_listed_and_removed(
    tmp_path: Path, env: dict[str, str], domain: str
) -> None:
    added = await mailmark(
        env, "alias", "add", "team@acme.test", "sales@acme.test", "support@acme.test", cwd=tmp_path
    )
    assert added.code == 0, added.err
    assert "team@acme.test → sales@acme.test, support@acme.test" in added.out

    listed = await mailmark(env, "alias", "list", domain, "--json", cwd=tmp_path)
    assert listed.code == 0, listed.err
    assert isinstance(listed.json, list)
    assert [(a["address"], a["targets"]) for a in listed.json] == [
        ("team@acme.test", ["sales@acme.test", "support@acme.test"])
    ]

    clash = await mailmark(
        env, "alias", "add", "sales@acme.test", "support@acme.test", cwd=tmp_path
    )
    assert clash.code != 0
    assert "is a mailbox already" in clash.err

    removed = await mailmark(env, "alias", "remove", "team@acme.test", cwd=tmp_path)
    assert removed.code == 0, removed.err
    empty = await mailmark(env, "alias", "list", domain, cwd=tmp_path)
    assert empty.out.strip() == "No aliases."


async def test_catch_all_is_set_and_turned_off(
    tmp_path: Path, env: dict[str, str], domain: str
) -> None:
    on = await mailmark(env, "domain", "catch-all", domain, "support", cwd=tmp_path)
    assert on.code == 0, on.err
    assert "now goes to support@acme.test" in on.out

    unknown = await mailmark(env, "domain", "catch-all", domain, "nobody", cwd=tmp_path)
    assert unknown.code != 0
    assert "No mailbox nobody@acme.test" in unknown.err

    off = await mailmark(env, "domain", "catch-all", domain, "off", "--json", cwd=tmp_path)
    assert off.code == 0, off.err
    assert off.json == {"catchAll": None}


async def test_an_alias_domain_is_added_with_its_own_records(
    tmp_path: Path, env: dict[str, str], domain: str
) -> None:
    added = await mailmark(
        env,
        "domain",
        "add",
        "acme.example",
        "--account",
        "acme",
        "--alias-of",
        domain,
        cwd=tmp_path,
    )
    assert added.code == 0, added.err
    assert "as an alias of acme.test" in added.out

    records = await mailmark(env, "domain", "records", "acme.example", "--json", cwd=tmp_path)
    assert records.code == 0, records.err
    assert isinstance(records.json, list)
    kinds = {(r["type"], r["name"]) for r in records.json}
    assert ("MX", "acme.example") in kinds
    assert any(r["type"] == "TXT" and r["value"].startswith("v=spf1") for r in records.json)

"""`mailmark apikey create|list|revoke`, run as the real console script, and the key used over
HTTP against a running app."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from mailmark.bootstrap import build_services, start_listeners
from mailmark.core.apikeys import KEY_PREFIX
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
    finally:
        await services.close()
    return "acme.test"


async def test_create_prints_the_key_last_and_list_shows_its_use(
    tmp_path: Path, database_url: str, env: dict[str, str], domain: str
) -> None:
    created = await mailmark(env, "apikey", "create", domain, "--name", "CI", cwd=tmp_path)
    as_json = await mailmark(env, "apikey", "create", domain, "--json", cwd=tmp_path)

    assert created.code == 0, created.err
    key = created.out.strip().splitlines()[-1]
    assert key.startswith(KEY_PREFIX) and len(key) >= len(KEY_PREFIX) + 32
    data = as_json.json
    assert isinstance(data, dict) and data["key"].startswith(KEY_PREFIX) and data["key"] != key

    settings = settings_for(tmp_path / "data", database_url).model_copy(
        update={
            "http_port": 0,
            "mx_port": 0,
            "submission_port": 0,
            "submissions_port": 0,
            "imap_port": 0,
            "imaps_port": 0,
            "sqlite_synchronous": "NORMAL",
        }
    )
    services = await build_services(settings)
    try:
        listeners = await start_listeners(services)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{listeners.http_port}", trust_env=False
            ) as http:
                used = await http.get("/v1/mailboxes", headers={"Authorization": f"Bearer {key}"})
        finally:
            await listeners.close()
    finally:
        await services.close()
    assert used.status_code == 200

    listed = await mailmark(env, "apikey", "list", domain, cwd=tmp_path)
    listed_json = await mailmark(env, "apikey", "list", domain, "--json", cwd=tmp_path)

    assert listed.code == 0
    first, second = listed.out.strip().splitlines()
    assert key[:20] in first and "CI" in first and "last used never" not in first
    assert "last used never" in second
    assert key not in listed.out and data["key"] not in listed_json.out
    rows = listed_json.json
    assert (
        isinstance(rows, list)
        and rows[0]["lastUsedAt"] is not None
        and rows[1]["lastUsedAt"] is None
    )


async def test_revoke_by_prefix_or_id(tmp_path: Path, env: dict[str, str], domain: str) -> None:
    one = (await mailmark(env, "apikey", "create", domain, "--json", cwd=tmp_path)).json
    two = (await mailmark(env, "apikey", "create", domain, "--json", cwd=tmp_path)).json
    assert isinstance(one, dict) and isinstance(two, dict)

    by_prefix = await mailmark(env, "apikey", "revoke", one["prefix"], cwd=tmp_path)
    by_id = await mailmark(env, "apikey", "revoke", str(two["id"]), "--json", cwd=tmp_path)
    unknown = await mailmark(env, "apikey", "revoke", "dm_live_nothing", cwd=tmp_path)

    assert by_prefix.code == 0 and "Revoked" in by_prefix.out
    revoked = by_id.json
    assert isinstance(revoked, dict) and revoked["revokedAt"] is not None
    assert unknown.code == 1 and "No API key" in unknown.err
    listed = await mailmark(env, "apikey", "list", domain, cwd=tmp_path)
    assert listed.out.count("revoked") == 2


async def test_create_for_an_unknown_domain_fails(
    tmp_path: Path, env: dict[str, str], domain: str
) -> None:
    result = await mailmark(env, "apikey", "create", "nowhere.test", cwd=tmp_path)

    assert result.code == 1 and "No domain nowhere.test" in result.err

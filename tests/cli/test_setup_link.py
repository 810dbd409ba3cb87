"""First run: `mailmark serve` prints a one-time setup link while no owner exists, and
`mailmark setup-link` prints a fresh one that replaces it; the link creates the owner once."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.serve import Server, mailmark

SETUP_LINK = r"open (http://127\.0\.0\.1:(\d+)/setup\?token=[A-Za-z0-9_-]+) to create the owner"


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


async def setup(http: httpx.AsyncClient, token: str, email: str) -> httpx.Response:
    csrf = (await http.get("/api/session")).json()["csrfToken"]
    return await http.post(
        "/api/setup",
        json={
            "token": token,
            "accountName": "Home",
            "name": "Ada",
            "email": email,
            "password": "a-long-owner-password",
        },
        headers={"X-CSRF-Token": csrf},
    )


async def test_serve_prints_a_setup_link_and_setup_link_replaces_it(
    tmp_path: Path, serve_env: dict[str, str], servers: list[Server]
) -> None:
    server = await Server.start(serve_env, tmp_path)
    servers.append(server)
    printed = await server.wait_for(SETUP_LINK)
    first_url, port = printed[1], printed[2]

    fresh = await mailmark(serve_env, "setup-link", cwd=tmp_path)
    assert fresh.code == 0, fresh.err
    assert fresh.out.startswith("Open this link to create the owner account")
    second_url = fresh.out.strip().splitlines()[-1]
    assert "/setup?token=" in second_url and token_of(second_url) != token_of(first_url)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
        assert (await http.get("/api/session")).json()["setupRequired"] is True
        stale = await setup(http, token_of(first_url), "eve@example.test")
        assert stale.status_code == 400, stale.text
        created = await setup(http, token_of(second_url), "ada@example.test")
        assert created.status_code == 201, created.text
        assert created.json()["role"] == "owner"
        assert (await http.get("/api/me")).json()["email"] == "ada@example.test"
        again = await setup(http, token_of(second_url), "eve@example.test")
        assert again.status_code == 400

    # With an owner, no more links.
    refused = await mailmark(serve_env, "setup-link", "--json", cwd=tmp_path)
    assert refused.code == 1
    assert "has an owner already" in refused.err

"""The real `mailmark` console script, run as a subprocess: texts, --json, exit statuses."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailmark.bootstrap import build_services
from tests.support.database import TEST_DATABASE_URL
from tests.support.serve import Run, cli_environment, mailmark, settings_for

DOMAIN_LIMIT = "Domain limit reached. Your plan allows 1 domain(s). Please upgrade to add more."


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return cli_environment(tmp_path / "data", database_url)


async def test_account_domain_and_mailboxes(tmp_path: Path, empty_database_url: str) -> None:
    # No schema yet: the first command on an empty data directory creates the installation.
    env = cli_environment(tmp_path / "data", empty_database_url)

    async def run(*args: str, stdin: str | None = None) -> Run:
        return await mailmark(env, *args, stdin=stdin, cwd=tmp_path)

    created = await run(
        "account",
        "create",
        "acme",
        "--owner",
        "Owner@Acme.test",
        "--password",
        "owner-pass-1",
        "--plan",
        "starter",
        "--json",
    )
    # A first command on SQLite creates the database file, and says where.
    new = "" if TEST_DATABASE_URL else f"mailmark: new installation in {tmp_path / 'data'}\n"
    assert (created.code, created.err) == (0, new)
    assert created.json == {"id": 1, "name": "acme", "plan": "starter", "status": "active"}

    domain = await run("domain", "add", "ACME.test", "--account", "acme", "--trust")
    assert (domain.code, domain.out) == (0, "Added acme.test (verified)\n")

    # Independent commands run side by side: each start-up costs most of a second.
    over_quota, sales = await asyncio.gather(
        run("domain", "add", "second.test", "--account", "acme", "--json"),
        run(
            "mailbox",
            "add",
            "Sales@acme.test",
            "--display-name",
            "Sales Team",
            "--password",
            "-",
            "--json",
            stdin="sales-pass-1\n",
        ),
    )
    assert over_quota.code == 1
    assert over_quota.json == {"error": DOMAIN_LIMIT}
    assert over_quota.err == f"mailmark: {DOMAIN_LIMIT}\n"
    assert sales.code == 0, sales.err
    assert sales.json == {
        "id": 1,
        "address": "sales",
        "fullAddress": "sales@acme.test",
        "displayName": "Sales Team",
    }
    support = await run("mailbox", "add", "support@acme.test")
    assert (support.code, support.out) == (0, "Created mailbox support@acme.test\n")

    duplicate, listed_text, listed_json = await asyncio.gather(
        run("mailbox", "add", "SUPPORT@acme.test"),
        run("mailbox", "list", "acme.test"),
        run("mailbox", "list", "acme.test", "--json"),
    )
    assert (duplicate.code, duplicate.out) == (1, "")
    assert duplicate.err == "mailmark: Mailbox support@acme.test already exists.\n"
    assert (listed_text.code, listed_text.out) == (
        0,
        "sales@acme.test  (Sales Team)\nsupport@acme.test\n",
    )
    assert listed_json.json == [
        {
            "id": 1,
            "address": "sales",
            "fullAddress": "sales@acme.test",
            "displayName": "Sales Team",
        },
        {"id": 2, "address": "support", "fullAddress": "support@acme.test", "displayName": ""},
    ]

    deleted = await run("mailbox", "delete", "Support@acme.test")
    assert (deleted.code, deleted.out) == (
        0,
        "Deleted mailbox support@acme.test and all its mail\n",
    )
    gone, deleted_json = await asyncio.gather(
        run("mailbox", "delete", "support@acme.test", "--json"),
        run("mailbox", "delete", "sales@acme.test", "--json"),
    )
    assert (gone.code, gone.json) == (1, {"error": "No mailbox support@acme.test here."})
    assert (deleted_json.code, deleted_json.json) == (0, {"deleted": True})
    empty = await run("mailbox", "list", "acme.test")
    assert (empty.code, empty.out) == (0, "No mailboxes.\n")

    # What the commands stored: one owner, the verified domain with a 2048-bit RSA DKIM key.
    from mailmark.storage.tables import dkim_keys, domains, mailboxes, users

    services = await build_services(settings_for(tmp_path / "data", empty_database_url))
    try:
        async with services.engine.connect() as conn:
            owners = (await conn.execute(sa.select(users.c.email, users.c.role))).all()
            domain_rows = (await conn.execute(sa.select(domains.c.name, domains.c.trusted))).all()
            key_rows = (await conn.execute(sa.select(dkim_keys))).all()
            mailbox_count = (
                await conn.execute(sa.select(sa.func.count()).select_from(mailboxes))
            ).scalar()
        account = await services.accounts.get("acme")
        verified = await services.domains.get("acme.test")
    finally:
        await services.close()
    assert [tuple(r) for r in owners] == [("owner@acme.test", "owner")]
    assert [tuple(r) for r in domain_rows] == [("acme.test", True)]
    assert account.plan == "starter" and verified.status == "verified"
    assert mailbox_count == 0
    assert sorted((k.algorithm, k.state) for k in key_rows) == [
        ("ed25519-sha256", "active"),
        ("rsa-sha256", "active"),
    ]
    [key] = [k for k in key_rows if k.algorithm == "rsa-sha256"]
    assert key.selector.startswith("mm")
    private = serialization.load_pem_private_key(key.private_key_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert base64.b64decode(key.public_key) == public_der


async def test_refusals_are_clear_errors_with_status_1(env: dict[str, str], tmp_path: Path) -> None:
    async def run(*args: str) -> Run:
        return await mailmark(env, *args, cwd=tmp_path)

    account = await run(
        "account", "create", "self", "--owner", "me@self.test", "--password", "my-pass-12"
    )
    assert (account.code, account.out) == (
        0,
        "Created account self (plan unlimited) owned by me@self.test\n",
    )
    domain = await run("domain", "add", "self.test", "--account", "self", "--json")
    assert domain.code == 0 and domain.json == {"id": 1, "name": "self.test", "status": "pending"}

    unverified, missing_account, bad_name, short_password = await asyncio.gather(
        run("mailbox", "add", "me@self.test"),
        run("domain", "add", "other.test", "--account", "nobody"),
        run("mailbox", "add", "a..b@self.test"),
        run("account", "create", "x", "--owner", "o@x.test", "--password", "short"),
    )
    assert (unverified.code, unverified.out) == (1, "")
    assert unverified.err.startswith("mailmark: Domain self.test is not verified yet")
    assert (missing_account.code, missing_account.err) == (
        1,
        "mailmark: No account named 'nobody'.\n",
    )
    assert bad_name.code == 1 and bad_name.err.startswith(
        "mailmark: 'a..b' is not a valid mailbox name"
    )
    assert (short_password.code, short_password.err) == (
        1,
        "mailmark: Passwords must be at least 8 characters long.\n",
    )


async def test_bad_setting_prints_one_line_and_exits_2(
    tmp_path: Path, empty_database_url: str
) -> None:
    config = tmp_path / "mailmark.toml"
    config.write_text('max_message_size = "big"\n')
    elsewhere = tmp_path / "elsewhere"  # a working directory without a mailmark.toml
    elsewhere.mkdir()
    from_env, from_file = await asyncio.gather(
        mailmark(
            cli_environment(tmp_path / "data", empty_database_url, MAILMARK_MX_PORT="smtp"),
            "mailbox",
            "list",
            "acme.test",
            cwd=elsewhere,
        ),
        # ./mailmark.toml in the working directory is read without --config.
        mailmark(cli_environment(tmp_path / "data", empty_database_url), "serve", cwd=tmp_path),
    )

    assert (from_env.code, from_env.out) == (2, "")
    assert from_env.err.count("\n") == 1
    assert from_env.err.startswith("mailmark: invalid setting MAILMARK_MX_PORT: ")
    assert (from_file.code, from_file.out) == (2, "")
    assert from_file.err.count("\n") == 1
    assert from_file.err.startswith(
        "mailmark: invalid setting MAILMARK_MAX_MESSAGE_SIZE: 'big' is not a size"
    )
    # Nothing was started or created.
    assert not (tmp_path / "data").exists()

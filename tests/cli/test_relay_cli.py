"""`mailmark domain relay`, run as the real console script: show, set (password write-only and
stored sealed), go direct, back to the installation's relay."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import build_services
from mailmark.core.relays import Relay, RelayTls
from tests.support.serve import cli_environment, mailmark, settings_for

PASSWORD = "s3cret relay password"


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return cli_environment(
        tmp_path / "data",
        database_url,
        MAILMARK_RELAY_HOST="smtp.provider.test",
        MAILMARK_RELAY_USERNAME="installation",
        MAILMARK_RELAY_PASSWORD="installation password",
    )


@pytest.fixture
async def domain(tmp_path: Path, database_url: str) -> str:
    services = await build_services(settings_for(tmp_path / "data", database_url))
    try:
        await services.accounts.create("acme", owner_email="o@acme.test", password="owner-pass-1")
        await services.domains.add("acme.test", account_name="acme", trust=True)
    finally:
        await services.close()
    return "acme.test"


async def stored_relay(tmp_path: Path, database_url: str, domain: str) -> tuple[Relay | None, str]:
    """What the outbound worker would use for the domain, and the password column as stored."""
    services = await build_services(settings_for(tmp_path / "data", database_url))
    try:
        relay = await services.relays.relay_for(domain)
        async with services.engine.connect() as conn:
            raw = (await conn.execute(sa.text("SELECT password FROM domain_relays"))).scalar()
    finally:
        await services.close()
    return relay, str(raw)


async def test_a_domain_gets_its_own_relay_with_a_write_only_password(
    tmp_path: Path, database_url: str, env: dict[str, str], domain: str
) -> None:
    shown = await mailmark(env, "domain", "relay", domain, "--json", cwd=tmp_path)
    assert shown.code == 0, shown.err
    assert shown.json == {
        "domain": domain,
        "choice": "default",
        "host": None,
        "port": None,
        "tls": None,
        "username": None,
        "passwordSet": False,
        "installationRelay": "smtp.provider.test:587",
    }

    set_ = await mailmark(
        env,
        "domain",
        "relay",
        domain,
        "--host",
        "Mail.Relay.TEST",
        "--tls",
        "implicit",
        "--username",
        "acme",
        "--password",
        "-",
        stdin=PASSWORD + "\n",
        cwd=tmp_path,
    )
    assert set_.code == 0, set_.err
    assert set_.out.strip() == (
        f"{domain} sends through relay mail.relay.test:465 "
        "(implicit TLS, certificate verified, AUTH as acme)"
    )
    relay, raw = await stored_relay(tmp_path, database_url, domain)
    assert relay == Relay("mail.relay.test", 465, RelayTls.IMPLICIT, "acme", PASSWORD)
    assert raw.startswith("enc:v1:") and PASSWORD not in raw

    # Another port: the password is not asked again, and never shown.
    moved = await mailmark(
        env,
        "domain",
        "relay",
        domain,
        "--host",
        "mail.relay.test",
        "--port",
        "2465",
        "--tls",
        "implicit",
        "--username",
        "acme",
        "--json",
        cwd=tmp_path,
    )
    assert moved.code == 0, moved.err
    assert PASSWORD not in moved.out
    assert moved.json == {
        "domain": domain,
        "choice": "relay",
        "host": "mail.relay.test",
        "port": 2465,
        "tls": "implicit",
        "username": "acme",
        "passwordSet": True,
        "installationRelay": "smtp.provider.test:587",
    }
    relay, _ = await stored_relay(tmp_path, database_url, domain)
    assert relay is not None and relay.password == PASSWORD and relay.port == 2465

    # Another host: the old password is not sent there.
    other = await mailmark(
        env,
        "domain",
        "relay",
        domain,
        "--host",
        "other.relay.test",
        "--username",
        "acme",
        cwd=tmp_path,
    )
    assert (other.code, other.err.strip()) == (
        1,
        "mailmark: Enter the password of acme at other.relay.test.",
    )


async def test_direct_and_default(
    tmp_path: Path, database_url: str, env: dict[str, str], domain: str
) -> None:
    direct = await mailmark(env, "domain", "relay", domain, "--direct", cwd=tmp_path)
    assert direct.code == 0, direct.err
    assert direct.out.strip() == f"{domain} sends to each recipient's MX directly"
    relay, _ = await stored_relay(tmp_path, database_url, domain)
    assert relay is None

    default = await mailmark(env, "domain", "relay", domain, "--default", cwd=tmp_path)
    assert default.code == 0, default.err
    assert default.out.strip() == (
        f"{domain} follows the installation's setting: the installation's relay "
        "smtp.provider.test:587"
    )
    relay, _ = await stored_relay(tmp_path, database_url, domain)
    assert relay is None  # the CLI's test settings have no installation relay


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "smtp://relay.test"], "'smtp://relay.test' is not a host name"),
        (["--host", "relay.test", "--port", "70000"], "The port must be between 1 and 65535."),
        (["--port", "25"], "--port, --username and --password go with --host."),
        (["--host", "relay.test", "--username", "a\tb", "--password", "x"], "The username must"),
    ],
)
async def test_bad_relay_settings_are_refused(
    tmp_path: Path, env: dict[str, str], domain: str, args: list[str], message: str
) -> None:
    refused = await mailmark(env, "domain", "relay", domain, *args, cwd=tmp_path)
    assert refused.code == 1
    assert refused.err.startswith(f"mailmark: {message}"), refused.err


async def test_an_unknown_domain(tmp_path: Path, env: dict[str, str], domain: str) -> None:
    missing = await mailmark(env, "domain", "relay", "nope.test", cwd=tmp_path)
    assert (missing.code, missing.err.strip()) == (1, "mailmark: No domain nope.test here.")

"""DKIM private keys and webhook secrets are sealed in the database with a key kept outside it:
the rows (and, on SQLite, the database files) hold no plaintext key; rows an older version wrote
in plaintext are encrypted at the next start; a wrong key stops the start with one line."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from mailmark.bootstrap import Services, build_services
from mailmark.config import Settings
from mailmark.core.model import Webhook
from mailmark.core.ports import Clock
from mailmark.startup import StartupError
from mailmark.storage.secrets import KEY_FILE, PREFIX
from tests.support.world import DOMAIN, World

SECRET = "whsec_" + "s3cr3t" * 6


async def add_webhook(services: Services, domain_id: int, account_id: int) -> None:
    async with services.uow() as uow:
        await uow.webhooks.add(
            Webhook(
                account_id,
                domain_id,
                "https://hooks.example.org/",
                ("email.sent",),
                SECRET,
                services.clock.now(),
            )
        )
        await uow.commit()


async def stored(services: Services) -> list[str]:
    """The values as the database holds them, read without the cipher."""
    async with services.engine.connect() as conn:
        keys = (await conn.execute(sa.text("SELECT private_key_pem FROM dkim_keys"))).scalars()
        hooks = (await conn.execute(sa.text("SELECT secret FROM webhooks"))).scalars()
        return [*keys, *hooks]


async def plaintext_read(services: Services, domain_id: int) -> tuple[list[str], list[str]]:
    async with services.uow(read_only=True) as uow:
        keys = await uow.domains.dkim_keys(domain_id, ["active", "pending", "retired"])
        hooks = await uow.webhooks.list_for_domain(domain_id)
    return [key.private_key_pem for key in keys], [hook.secret for hook in hooks]


async def acme_ids(services: Services) -> tuple[int, int]:
    async with services.uow(read_only=True) as uow:
        domain = await uow.domains.get_by_name(DOMAIN)
    assert domain is not None and domain.id is not None
    return domain.id, domain.account_id


def sqlite_files(settings: Settings) -> list[Path]:
    database = settings.sqlite_path
    if database is None:
        return []
    return [p for p in (database, Path(f"{database}-wal")) if p.exists()]


async def test_rows_hold_no_plaintext_key_or_secret(world: World) -> None:
    services = world.services
    domain_id, account_id = await acme_ids(services)
    await add_webhook(services, domain_id, account_id)
    keys, hooks = await plaintext_read(services, domain_id)
    assert any("PRIVATE KEY-----" in key for key in keys) and hooks == [SECRET]
    plaintexts = [*keys, SECRET]
    values = await stored(services)
    assert len(values) == len(plaintexts)
    for value in values:
        assert value.startswith(PREFIX), value[:40]
        assert not any(plain in value for plain in plaintexts)
    for path in sqlite_files(services.settings):
        data = path.read_bytes()
        assert not any(plain.encode() in data for plain in plaintexts), path
    key_file = services.settings.data_dir / KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600


async def test_plaintext_rows_of_an_older_version_are_encrypted_at_start(
    world: World, settings: Settings, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    services = world.services
    domain_id, account_id = await acme_ids(services)
    await add_webhook(services, domain_id, account_id)
    keys, _ = await plaintext_read(services, domain_id)
    async with services.engine.begin() as conn:
        # As a version before encryption left them.
        await conn.execute(sa.text("UPDATE webhooks SET secret = :s"), {"s": SECRET})
        for row_id, pem in zip(
            (await conn.execute(sa.text("SELECT id FROM dkim_keys ORDER BY id"))).scalars(),
            keys,
            strict=True,
        ):
            await conn.execute(
                sa.text("UPDATE dkim_keys SET private_key_pem = :p WHERE id = :i"),
                {"p": pem, "i": row_id},
            )
    assert SECRET in await stored(services)
    caplog.set_level(logging.INFO, logger="mailmark.storage.secrets")
    restarted = await build_services(settings, clock=clock)
    try:
        assert all(value.startswith(PREFIX) for value in await stored(restarted))
        assert await plaintext_read(restarted, domain_id) == (keys, [SECRET])
        assert any(
            f"encrypted {len(keys) + 1} secret(s)" in record.getMessage()
            for record in caplog.records
        )
    finally:
        await restarted.close()


async def test_a_wrong_key_stops_the_start(world: World, settings: Settings) -> None:
    other = SecretStr(secrets.token_urlsafe(32) + "=")
    with pytest.raises(StartupError, match=r"cannot decrypt dkim_keys\.private_key_pem"):
        await build_services(settings.model_copy(update={"secrets_key": other}))


async def test_a_users_two_factor_secret_is_stored_sealed(world: World) -> None:
    services = world.services
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    async with services.uow() as uow:
        owner = await uow.users.get_by_email("owner@acme.test")
        assert owner is not None and owner.id is not None
        await uow.users.set_totp(owner.id, secret, services.clock.now())
        await uow.commit()
    async with services.engine.connect() as conn:
        raw = (await conn.execute(sa.text("SELECT totp_secret FROM users"))).scalar_one()
    async with services.uow(read_only=True) as uow:
        read = await uow.users.get(owner.id)
    assert raw.startswith(PREFIX) and secret not in raw
    assert read is not None and read.totp_secret == secret

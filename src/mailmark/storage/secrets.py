"""Secrets at rest: DKIM private keys and webhook signing secrets are encrypted in the database
(AES-256-GCM) with a key kept outside it, so that a copied database or backup alone gives away
no signing key.

The key is a setting (`MAILMARK_SECRETS_KEY`, for nodes that share a PostgreSQL database) or a
file in the data directory (`secrets.key`, 0600, made on first start). The columns are of type
`EncryptedText`: every query that writes or reads them, joins included, goes through the cipher
the engine carries. Values written by an older version are plaintext; they are read as they are
and re-encrypted at start (`encrypt_plaintext_secrets`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

PREFIX = "enc:v1:"
KEY_FILE = "secrets.key"
_NONCE_BYTES = 12
# Where the engine's dialect carries its cipher (one per engine; no module-level key).
_DIALECT_ATTRIBUTE = "mailmark_secret_box"


class SecretKeyError(Exception):
    """The secrets key is missing, malformed, or not the one the database was encrypted with."""


class SecretBox:
    """AES-256-GCM with the column's name as associated data: a ciphertext copied into another
    column does not decrypt."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SecretKeyError("the secrets key must be 32 bytes (44 characters of base64)")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, purpose: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, purpose: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # written before secrets were encrypted; re-encrypted at start
        try:
            data = base64.urlsafe_b64decode(stored[len(PREFIX) :])
            plain = self._aead.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], purpose.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretKeyError(
                f"cannot decrypt {purpose}: the secrets key is not the one it was encrypted with"
            ) from None
        return plain.decode()


def load_key(setting: str | None, data_dir: Path) -> bytes:
    """The key from the setting, else from `data_dir/secrets.key`, made (0600) if missing."""
    if setting:
        return _decode_key(setting, "MAILMARK_SECRETS_KEY")
    path = data_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _decode_key(path.read_text().strip(), str(path))
    with os.fdopen(fd, "w") as file:
        file.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() + "\n")
        file.flush()
        os.fsync(file.fileno())
    log.info("created the secrets key %s: back it up with the database", path)
    return _decode_key(path.read_text().strip(), str(path))


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text)
    except (binascii.Error, ValueError):
        raise SecretKeyError(f"{where} is not base64") from None
    if len(key) != 32:
        raise SecretKeyError(f"{where} must hold 32 bytes of base64")
    return key


def install(engine: AsyncEngine, box: SecretBox) -> None:
    """Give the engine the cipher its `EncryptedText` columns use."""
    setattr(engine.sync_engine.dialect, _DIALECT_ATTRIBUTE, box)


def _box(dialect: sa.Dialect) -> SecretBox:
    box = getattr(dialect, _DIALECT_ATTRIBUTE, None)
    if box is None:
        raise SecretKeyError("this engine has no secrets key (storage.secrets.install)")
    assert isinstance(box, SecretBox)
    return box


class EncryptedText(sa.TypeDecorator[str]):
    """Text stored sealed by the engine's SecretBox, with `purpose` as associated data."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else _box(dialect).seal(value, self.purpose)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> str | None:
        return None if value is None else _box(dialect).open(str(value), self.purpose)


async def encrypt_plaintext_secrets(engine: AsyncEngine, columns: list[sa.Column[Any]]) -> int:
    """Check that the engine's key opens what is sealed already (SecretKeyError if not: better
    at start than at the first DKIM signature), and encrypt the values of `columns`
    (EncryptedText) still stored in plaintext; returns how many."""
    box = _box(engine.sync_engine.dialect)
    done = 0
    async with engine.begin() as conn:
        for column in columns:
            table = column.table
            assert isinstance(table, sa.Table)
            assert isinstance(column.type, EncryptedText)
            raw = sa.type_coerce(column, sa.Text)
            sealed = await conn.scalar(sa.select(raw).where(raw.like(PREFIX + "%")).limit(1))
            if sealed is not None:
                box.open(sealed, column.type.purpose)
            plaintext = await conn.execute(
                sa.select(table.c.id, raw.label("value")).where(raw.not_like(PREFIX + "%"))
            )
            for row in plaintext.all():
                await conn.execute(
                    table.update().where(table.c.id == row.id).values({column.name: row.value})
                )
                done += 1
    if done:
        log.info("encrypted %d secret(s) that an older version stored in plaintext", done)
    return done

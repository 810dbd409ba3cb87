"""Backups of a whole installation, taken while it runs, and their restore into an empty one.

A backup is a directory:
    manifest.json         what it holds (FORMAT, VERSION), written last
    database.sqlite3      SQLite: a copy made with SQLite's online backup API, or
    database.pgdump       PostgreSQL: `pg_dump --format=custom`, for `pg_restore`
    blobs/<ab>/<sha256>   every blob the database copy references, its name its SHA-256
    secrets.key           the key sealing DKIM keys and webhook secrets, when it is a file

The database is copied at one instant (one read transaction); the blobs it references are then
copied through the `BlobStore` interface, each checked against its SHA-256. Blobs are immutable,
so a blob copied before that instant is the same blob after it: most are copied before the
database (what the live database references then), which leaves only the few written in between
to copy afterwards, and only those can have been deleted meanwhile. The backup is built under a
temporary name and renamed at the end: a directory with the final name is always complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from mailmark import __version__
from mailmark.core.ports import BlobStore
from mailmark.storage.db import READ_ONLY_OPTION, SQLITE_BUSY_TIMEOUT_MS, create_engine
from mailmark.storage.migrate import alembic_config, migrate
from mailmark.storage.secrets import KEY_FILE
from mailmark.storage.sql import referenced_blob_keys

FORMAT = "mailmark-backup"
VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
POSTGRESQL_FILE = "database.pgdump"
BLOB_DIR = "blobs"
# Blobs read (BlobStore.get_many) and written per step: a few MB at most for ordinary mail.
COPY_BATCH = 64
PROGRESS_EVERY = 1000

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot be made, with the sentence that says why."""


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    database: str
    revision: str
    database_bytes: int
    blobs: int
    blob_bytes: int
    secrets_key: bool
    # Blobs the database copy references that were deleted before they could be copied (their
    # messages were deleted while the backup ran).
    vanished: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "database": self.database,
            "revision": self.revision,
            "databaseBytes": self.database_bytes,
            "blobs": self.blobs,
            "blobBytes": self.blob_bytes,
            "secretsKey": self.secrets_key,
            "vanished": list(self.vanished),
        }


@dataclass(frozen=True)
class RestoreSummary:
    source: Path
    database: str
    backup_revision: str
    revision: str
    blobs: int
    blob_bytes: int
    secrets_key: str
    vanished: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "database": self.database,
            "backupRevision": self.backup_revision,
            "revision": self.revision,
            "blobs": self.blobs,
            "blobBytes": self.blob_bytes,
            "secretsKey": self.secrets_key,
            "vanished": list(self.vanished),
        }


def database_kind(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


def _sqlite_file(database_url: str) -> Path:
    path = database_url.partition(":///")[2].partition("?")[0]
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(path)


# Backup


@dataclass
class _BlobCopier:
    blobs: BlobStore
    target: Path
    progress: Progress
    copied: dict[str, int] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    async def copy(self, keys: Iterable[str], total: int) -> None:
        pending = sorted(set(keys) - set(self.copied))
        for start in range(0, len(pending), COPY_BATCH):
            batch = pending[start : start + COPY_BATCH]
            contents = await self._read(batch)
            await asyncio.to_thread(self._write, contents)
            before = len(self.copied) - len(contents)
            if len(self.copied) // PROGRESS_EVERY > before // PROGRESS_EVERY:
                self.progress(
                    f"blobs: {len(self.copied)}/{total} copied "
                    f"({sum(self.copied.values()) / 1e6:.1f} MB)"
                )

    async def _read(self, keys: Sequence[str]) -> dict[str, bytes]:
        try:
            return dict(zip(keys, await self.blobs.get_many(keys), strict=True))
        except Exception:  # noqa: BLE001 - one blob is gone: find which, below
            pass
        contents = {}
        for key in keys:
            try:
                contents[key] = await self.blobs.get(key)
            except Exception:
                if await self.blobs.exists(key):
                    raise
                self.missing.add(key)
        return contents

    def _write(self, contents: dict[str, bytes]) -> None:
        for key, data in contents.items():
            if hashlib.sha256(data).hexdigest() != key:
                raise BackupError(
                    f"blob {key} in the store does not match its SHA-256: it is damaged; "
                    "the backup was not made"
                )
            directory = self.target / key[:2]
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            (directory / key).write_bytes(data)
            self.copied[key] = len(data)
            self.missing.discard(key)

    def drop(self, keys: Collection[str]) -> None:
        """Forget blobs copied before the snapshot that it no longer references."""
        for key in keys:
            if self.copied.pop(key, None) is not None:
                (self.target / key[:2] / key).unlink()


async def create_backup(
    engine: AsyncEngine,
    blobs: BlobStore,
    destination: Path,
    *,
    secrets_key_file: Path | None,
    progress: Progress,
) -> BackupSummary:
    """Back up the database behind `engine` and the blobs it references into `destination`,
    a directory that must not exist yet; `secrets_key_file` is copied along when given."""
    destination, work = await asyncio.to_thread(_start_backup, destination)
    kind = database_kind(engine.url.drivername)
    try:
        copier = _BlobCopier(blobs, work / BLOB_DIR, progress)
        async with engine.connect() as conn:
            await conn.execution_options(**{READ_ONLY_OPTION: True})
            live = await referenced_blob_keys(conn)
        progress(f"copying the {len(live)} blobs the database references now")
        await copier.copy(live, len(live))
        progress(f"copying the {kind} database")
        if kind == "sqlite":
            database_file = work / SQLITE_FILE
            await asyncio.to_thread(
                _sqlite_snapshot, _sqlite_file(engine.url.render_as_string()), database_file
            )
            revision, referenced = await _sqlite_contents(database_file)
        else:
            database_file = work / POSTGRESQL_FILE
            revision, referenced = await _pg_dump(engine, database_file)
        # Blobs written between the first pass and the snapshot; then those deleted in between.
        await copier.copy(referenced, len(referenced))
        copier.drop(set(copier.copied) - referenced)
        summary = BackupSummary(
            path=destination,
            database=kind,
            revision=revision,
            database_bytes=0,
            blobs=len(copier.copied),
            blob_bytes=sum(copier.copied.values()),
            secrets_key=False,
            vanished=tuple(sorted(copier.missing & referenced)),
        )
        return await asyncio.to_thread(
            _finish_backup, work, summary, database_file, secrets_key_file
        )
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)
        raise


def _start_backup(destination: Path) -> tuple[Path, Path]:
    """The destination's absolute path, and the temporary directory the backup is built in."""
    destination = destination.absolute()
    if destination.exists() or destination.is_symlink():
        raise BackupError(f"{destination} already exists; name a new directory for the backup")
    if not destination.parent.is_dir():
        raise BackupError(f"{destination.parent} is not a directory")
    work = destination.parent / f".{destination.name}.partial-{secrets.token_hex(4)}"
    work.mkdir(mode=0o700)
    return destination, work


def _finish_backup(
    work: Path, summary: BackupSummary, database_file: Path, secrets_key_file: Path | None
) -> BackupSummary:
    """Copy the secrets key, write the manifest, flush it all to disk, then give the backup
    its name: a directory with that name is complete."""
    key_copied = secrets_key_file is not None and secrets_key_file.is_file()
    if secrets_key_file is not None and key_copied:
        shutil.copyfile(secrets_key_file, work / KEY_FILE)
        (work / KEY_FILE).chmod(0o600)
    summary = replace(summary, database_bytes=database_file.stat().st_size, secrets_key=key_copied)
    _write_manifest(work, summary, database_file.name)
    os.sync()
    work.rename(summary.path)
    _fsync_directory(summary.path.parent)
    return summary


def _sqlite_snapshot(source: Path, target: Path) -> None:
    """Copy the live database with SQLite's online backup API. All pages in one step: one read
    transaction, so one consistent instant; in WAL mode writers go on meanwhile."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    live = sqlite3.connect(source)
    try:
        live.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        copy = sqlite3.connect(target)
        try:
            live.backup(copy)
            # One self-contained file: no -wal beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
    finally:
        live.close()
    target.chmod(0o600)


async def _sqlite_contents(path: Path) -> tuple[str, set[str]]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            return await _revision(conn), await referenced_blob_keys(conn)
    finally:
        await engine.dispose()


async def _revision(conn: AsyncConnection) -> str:
    try:
        found = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
    except sa.exc.DBAPIError:
        found = None
    if not found:
        raise BackupError("the database has no migration revision: it is not a Mailmark database")
    return str(found)


def _pg_environment(url: URL) -> dict[str, str]:
    """libpq's environment for the URL: no password on a command line others can read."""
    env = dict(os.environ)
    for name, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value is not None:
            env[name] = str(value)
    return env


async def _pg_tool(tool: str, url: URL, *args: str) -> None:
    if shutil.which(tool) is None:
        raise BackupError(f"{tool} is not installed (Debian: apt install postgresql-client)")
    process = await asyncio.create_subprocess_exec(
        tool,
        *args,
        env=_pg_environment(url),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        reason = err.decode(errors="replace").strip().splitlines()
        raise BackupError(f"{tool} failed: {reason[-1] if reason else process.returncode}")


async def _pg_dump(engine: AsyncEngine, target: Path) -> tuple[str, set[str]]:
    """pg_dump's custom format (what pg_restore reads, compressed, restorable in one
    transaction), taken in a snapshot this transaction exports: the blob keys read here are
    exactly those of the dump."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await conn.execute(sa.text("SET TRANSACTION READ ONLY"))
            snapshot = (await conn.execute(sa.text("SELECT pg_export_snapshot()"))).scalar_one()
            revision = await _revision(conn)
            keys = await referenced_blob_keys(conn)
            await _pg_tool(
                "pg_dump",
                engine.url,
                "--format=custom",
                f"--snapshot={snapshot}",
                f"--file={target}",
            )
    await asyncio.to_thread(target.chmod, 0o600)
    return revision, keys


def _write_manifest(work: Path, summary: BackupSummary, database_file: str) -> None:
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "createdAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "mailmarkVersion": __version__,
        "database": {
            "kind": summary.database,
            "file": database_file,
            "revision": summary.revision,
            "bytes": summary.database_bytes,
        },
        "blobs": {
            "directory": BLOB_DIR,
            "count": summary.blobs,
            "bytes": summary.blob_bytes,
            "vanished": list(summary.vanished),
        },
        "secretsKey": KEY_FILE if summary.secrets_key else None,
    }
    path = work / MANIFEST
    with path.open("w") as file:
        json.dump(manifest, file, indent=2)
        file.write("\n")
    path.chmod(0o600)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Restore


@dataclass(frozen=True)
class _Manifest:
    kind: str
    database_file: Path
    revision: str
    blob_count: int
    blob_bytes: int
    vanished: frozenset[str]
    secrets_key: Path | None


def read_manifest(source: Path) -> _Manifest:
    path = source / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BackupError(
            f"{source} is not a Mailmark backup (no {MANIFEST}; an unfinished backup has none)"
        ) from None
    except (OSError, ValueError) as error:
        raise BackupError(f"cannot read {path}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a Mailmark backup manifest")
    if manifest.get("version") != VERSION:
        raise BackupError(
            f"{path} is backup format version {manifest.get('version')}; this Mailmark reads "
            f"version {VERSION}"
        )
    try:
        database, blobs = manifest["database"], manifest["blobs"]
        key = manifest.get("secretsKey")
        return _Manifest(
            kind=str(database["kind"]),
            database_file=source / Path(str(database["file"])).name,
            revision=str(database["revision"]),
            blob_count=int(blobs["count"]),
            blob_bytes=int(blobs["bytes"]),
            vanished=frozenset(str(k) for k in blobs.get("vanished", [])),
            secrets_key=source / KEY_FILE if key else None,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise BackupError(f"{path} is incomplete: {error!r} is missing or wrong") from None


def _check_revision(revision: str) -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    head = scripts.get_current_head()
    try:
        known = scripts.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise BackupError(
            f"the backup's database is at migration {revision}, newer than this Mailmark knows "
            f"(up to {head}): restore it with the Mailmark version that made it, or a newer one"
        )


async def restore_backup(
    source: Path,
    database_url: str,
    blobs: BlobStore,
    *,
    data_dir: Path,
    secrets_key_setting: bool,
    force: bool,
    progress: Progress,
) -> RestoreSummary:
    """Restore the backup in `source` into the (empty) database and blob store, migrating an
    older database forward. `force` replaces a database that is not empty."""
    manifest = read_manifest(source)
    _check_revision(manifest.revision)
    kind = database_kind(database_url)
    if manifest.kind != kind:
        raise BackupError(
            f"the backup holds a {manifest.kind} database and MAILMARK_DATABASE_URL names a "
            f"{kind} one; restore it into a {manifest.kind} database"
        )
    if not manifest.database_file.is_file():
        raise BackupError(f"the backup lacks its database file {manifest.database_file.name}")
    present = sum(1 for _ in (source / BLOB_DIR).glob("*/*"))
    if present != manifest.blob_count:
        raise BackupError(
            f"the backup lists {manifest.blob_count} blobs but holds {present}: it is incomplete"
        )
    key_outcome = _plan_secrets_key(manifest, data_dir, secrets_key_setting, force)
    engine = create_engine(database_url)
    try:
        await _ensure_empty(engine, database_url, force)
        progress(f"restoring the {kind} database (migration {manifest.revision})")
        if kind == "sqlite":
            await engine.dispose()
            await asyncio.to_thread(
                _sqlite_restore, manifest.database_file, _sqlite_file(database_url)
            )
        else:
            await _pg_tool(
                "pg_restore",
                engine.url,
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={engine.url.database}",
                str(manifest.database_file),
            )
        await migrate(engine)
        async with engine.connect() as conn:
            await conn.execution_options(**{READ_ONLY_OPTION: True})
            revision = await _revision(conn)
            referenced = await referenced_blob_keys(conn)
    finally:
        await engine.dispose()
    if revision != manifest.revision:
        progress(f"migrated the database forward from {manifest.revision} to {revision}")
    if key_outcome == "restored":
        assert manifest.secrets_key is not None
        _install_secrets_key(manifest.secrets_key, data_dir)
    lacking = sorted(referenced - manifest.vanished - _backed_up(source))
    if lacking:
        raise BackupError(
            f"the backup lacks {len(lacking)} blobs its database references (first {lacking[0]}): "
            "it is damaged; the database was restored, the mail of those messages is not"
        )
    count, size = await _restore_blobs(
        source, sorted(referenced - manifest.vanished), blobs, progress
    )
    progress(f"blobs: {count} restored and verified ({size / 1e6:.1f} MB)")
    return RestoreSummary(
        source=await asyncio.to_thread(source.absolute),
        database=kind,
        backup_revision=manifest.revision,
        revision=revision,
        blobs=count,
        blob_bytes=size,
        secrets_key=key_outcome,
        vanished=tuple(sorted(manifest.vanished & referenced)),
    )


def _backed_up(source: Path) -> set[str]:
    return {path.name for path in (source / BLOB_DIR).glob("*/*")}


def _plan_secrets_key(
    manifest: _Manifest, data_dir: Path, secrets_key_setting: bool, force: bool
) -> str:
    """What becomes of the backup's secrets key: "restored", "kept" (the data dir has the same
    one), "setting" (MAILMARK_SECRETS_KEY is used instead) or "none" (the backup has none)."""
    if manifest.secrets_key is None:
        return "none"
    if secrets_key_setting:
        return "setting"
    present = data_dir / KEY_FILE
    if present.is_file():
        if present.read_bytes() == manifest.secrets_key.read_bytes():
            return "kept"
        if not force:
            raise BackupError(
                f"{present} differs from the backup's secrets key; the restored DKIM keys and "
                "webhook secrets need the backup's: move it away, or add --force to replace it"
            )
    return "restored"


def _install_secrets_key(key: Path, data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = data_dir / f".{KEY_FILE}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(key.read_bytes())
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, data_dir / KEY_FILE)


async def _ensure_empty(engine: AsyncEngine, database_url: str, force: bool) -> None:
    if database_kind(database_url) == "sqlite":
        path = _sqlite_file(database_url)
        if not path.exists():
            return
        tables = await asyncio.to_thread(_sqlite_tables, path)
        if tables and not force:
            raise BackupError(
                f"{path} already holds a database ({tables} tables): restore into an empty data "
                "directory, or add --force to replace that database"
            )
        await engine.dispose()
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        return
    async with engine.connect() as conn:
        tables = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            )
        ).scalar_one()
        if tables and not force:
            raise BackupError(
                f"the database {engine.url.database} already holds {tables} tables: restore into "
                "an empty database, or add --force to drop everything in it first"
            )
        if tables:
            await conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            await conn.execute(sa.text("CREATE SCHEMA public"))
        await conn.commit()


def _sqlite_tables(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(
            conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        )


def _sqlite_restore(source: Path, target: Path) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
    try:
        shutil.copyfile(source, temporary)
        temporary.chmod(0o600)
        with temporary.open("rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


async def _restore_blobs(
    source: Path, keys: Sequence[str], blobs: BlobStore, progress: Progress
) -> tuple[int, int]:
    total = 0
    for start in range(0, len(keys), COPY_BATCH):
        if start and start % PROGRESS_EVERY < COPY_BATCH:
            progress(f"blobs: {start}/{len(keys)} restored ({total / 1e6:.1f} MB)")
        batch = keys[start : start + COPY_BATCH]
        contents = await asyncio.to_thread(_read_verified, source / BLOB_DIR, batch)
        for key, outcome in zip(batch, await blobs.put_many(contents), strict=True):
            if isinstance(outcome, Exception):
                raise outcome
            if outcome[0] != key:
                raise BackupError(f"the blob store named blob {key} {outcome[0]}")
        total += sum(len(data) for data in contents)
    return len(keys), total


def _read_verified(directory: Path, keys: Sequence[str]) -> list[bytes]:
    contents = []
    for key in keys:
        data = (directory / key[:2] / key).read_bytes()
        if hashlib.sha256(data).hexdigest() != key:
            raise BackupError(
                f"blob {key} in the backup does not match its SHA-256: the backup is damaged"
            )
        contents.append(data)
    return contents

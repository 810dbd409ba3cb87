"""`mailmark backup` of a running server and `mailmark restore` into a fresh installation, run as
the real console script; every message is then read back over IMAP from a server started on the
restored data, byte for byte."""

from __future__ import annotations

import asyncio
import imaplib
import json
import os
import re
import shutil
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
import sqlalchemy as sa
from alembic import command

from mailmark.bootstrap import Listeners, build_services, start_listeners
from mailmark.cli import main
from mailmark.config import Settings
from mailmark.storage.backup import MANIFEST, SQLITE_FILE
from mailmark.storage.migrate import alembic_config
from tests.support.database import TEST_DATABASE_URL
from tests.support.serve import Run, cli_environment, mailmark
from tests.support.tls import client_tls
from tests.support.world import World

needs_pg_tools = pytest.mark.skipif(
    bool(TEST_DATABASE_URL) and shutil.which("pg_dump") is None,
    reason="pg_dump and pg_restore (Debian: postgresql-client) are not installed",
)
pytestmark = needs_pg_tools

PASSWORDS = {"sales@acme.test": "sales-pass-1", "support@acme.test": "support-pass-1"}
# (mailbox, folder, uid) → the message as IMAP BODY[] returns it.
Messages = dict[tuple[str, str, int], bytes]


def _message(number: int, to: str, size: int = 2000) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"sender{number}@example.org"
    message["To"] = to
    message["Subject"] = f"Message {number}"
    message["Message-ID"] = f"<m{number}@example.org>"
    message.set_content(f"Body of message {number}.\n" + "x" * size)
    return message


async def _deliver(port: int, first: int, count: int) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as smtp:
        for number in range(first, first + count):
            # Every third one to both mailboxes: two placements, one blob.
            to = "sales@acme.test" if number % 3 else "sales@acme.test, support@acme.test"
            await smtp.send_message(_message(number, to))


def _append(port: int, user: str, folder: str, raws: list[bytes]) -> None:
    client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls())
    try:
        client.login(user, PASSWORDS[user])
        assert client.create(folder)[0] == "OK"
        for raw in raws:
            assert client.append(folder, r"(\Seen)", None, raw)[0] == "OK"
    finally:
        client.logout()


def _read_all(port: int) -> Messages:
    """Every message of every folder of both mailboxes, as IMAP BODY[] returns it."""
    found: Messages = {}
    for user, password in PASSWORDS.items():
        client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls())
        try:
            client.login(user, password)
            _, listing = client.list()
            folders = [
                re.search(rb'"([^"]*)"$', line).group(1).decode()  # type: ignore[union-attr]
                for line in listing
                if isinstance(line, bytes)
            ]
            for folder in folders:
                assert client.select(f'"{folder}"', readonly=True)[0] == "OK"
                typ, data = client.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
                assert typ == "OK"
                for item in data:
                    if isinstance(item, tuple):
                        uid = int(re.search(rb"UID (\d+)", item[0]).group(1))  # type: ignore[union-attr]
                        found[(user, folder, uid)] = item[1]
        finally:
            client.logout()
    return found


@pytest.fixture
async def restored_settings(
    tmp_path: Path, settings: Settings, empty_database_url: str
) -> Settings:
    """A second installation, empty: its own data dir, and on PostgreSQL its own database."""
    return settings.model_copy(
        update={
            "data_dir": tmp_path / "restored",
            "database_url": (
                empty_database_url
                if TEST_DATABASE_URL
                else f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'mailmark.db'}"
            ),
        }
    )


class InProcessCli:
    """The command line's `main` run in this process (a thread of its own: it runs its own event
    loop), for the cases that need no second process: it saves starting one each time."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
        self._monkeypatch = monkeypatch
        self._capsys = capsys

    async def __call__(self, settings: Settings, *args: str) -> Run:
        for name in [name for name in os.environ if name.upper().startswith("MAILMARK_")]:
            self._monkeypatch.delenv(name)
        for name, value in _env(settings).items():
            if name.startswith("MAILMARK_"):
                self._monkeypatch.setenv(name, value)
        self._capsys.readouterr()
        code = await asyncio.to_thread(main, list(args))
        out, err = self._capsys.readouterr()
        return Run(code, out, err)


def _env(settings: Settings) -> dict[str, str]:
    return cli_environment(settings.data_dir, settings.database_url)


async def _cli(settings: Settings, tmp_path: Path, *args: str) -> Run:
    return await mailmark(_env(settings), *args, cwd=tmp_path)


async def test_a_running_server_is_backed_up_and_restored_byte_for_byte(
    tmp_path: Path,
    settings: Settings,
    listeners: Listeners,
    world: World,
    restored_settings: Settings,
) -> None:
    await _deliver(listeners.mx_port, 0, 12)
    appended = [_message(100 + n, "sales@acme.test", size=50_000).as_bytes() for n in range(3)]
    await asyncio.to_thread(_append, listeners.imaps_port, "sales@acme.test", "Projects", appended)
    await asyncio.to_thread(
        _append, listeners.imaps_port, "support@acme.test", "Archive/2026", appended[:1]
    )
    # Scheduled mail: in the queue and the Outbox folder, its blob only the queue's.
    await world.services.sending.submit(
        mailbox=world.sales,
        to=["dave@later.test"],
        subject="Scheduled",
        text="Tomorrow.",
        scheduled_at=world.services.clock.now() + timedelta(days=1),
    )
    before = await asyncio.to_thread(_read_all, listeners.imaps_port)
    # 12 delivered, 4 of them to support too, 3 + 1 appended, 1 sent
    assert len(before) == 12 + 4 + 4 + 1

    # More mail arrives while the backup runs.
    arriving = asyncio.create_task(_deliver(listeners.mx_port, 1000, 30))
    made = await _cli(settings, tmp_path, "backup", str(tmp_path / "backup"), "--json")
    await arriving
    assert made.code == 0, made.err
    summary = made.json
    assert isinstance(summary, dict)
    manifest = json.loads((tmp_path / "backup" / MANIFEST).read_text())
    assert manifest["blobs"]["count"] == summary["blobs"] >= 15
    assert manifest["database"]["kind"] == ("postgresql" if TEST_DATABASE_URL else "sqlite")
    assert manifest["secretsKey"] == "secrets.key"
    assert [name for name in os.listdir(tmp_path) if "partial" in name] == []

    restored = await _cli(restored_settings, tmp_path, "restore", str(tmp_path / "backup"))
    assert restored.code == 0, restored.err
    assert f"{summary['blobs']} blobs" in restored.out

    restored_services = await build_services(restored_settings)
    try:
        server = await start_listeners(restored_services)
        try:
            after_restore = await asyncio.to_thread(_read_all, server.imaps_port)
        finally:
            await server.close()
    finally:
        await restored_services.close()
    now = await asyncio.to_thread(_read_all, listeners.imaps_port)
    # Everything there before the backup, and nothing that is not byte-identical to the live
    # server's copy: mail that arrived during the backup is there or not, never half.
    assert before.items() <= after_restore.items()
    assert after_restore.items() <= now.items()
    sales_folders = {folder for user, folder, _ in after_restore if user == "sales@acme.test"}
    assert {"INBOX", "Projects", "Outbox"} <= sales_folders


async def test_restore_refuses_what_it_cannot_restore_and_migrates_an_older_backup(
    tmp_path: Path,
    settings: Settings,
    listeners: Listeners,
    world: World,
    restored_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli = InProcessCli(monkeypatch, capsys)
    await _deliver(listeners.mx_port, 0, 2)
    backup = tmp_path / "backup"
    assert (await cli(settings, "backup", str(backup))).code == 0
    manifest = json.loads((backup / MANIFEST).read_text())

    (tmp_path / "taken").mkdir()
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / SQLITE_FILE).write_bytes(b"")
    newer = tmp_path / "newer"
    shutil.copytree(backup, newer)
    (newer / MANIFEST).write_text(
        json.dumps({**manifest, "database": {**manifest["database"], "revision": "9999"}})
    )
    taken = await cli(settings, "backup", str(tmp_path / "taken"))
    not_a_backup = await cli(restored_settings, "restore", str(unfinished))
    # The first installation is not empty.
    not_empty = await cli(settings, "restore", str(backup))
    too_new = await cli(restored_settings, "restore", str(newer))
    assert (taken.code, not_a_backup.code, not_empty.code, too_new.code) == (1, 1, 1, 1)
    assert "already exists" in taken.err
    assert "not a Mailmark backup" in not_a_backup.err
    assert "already holds" in not_empty.err
    assert "--force" in not_empty.err
    assert "newer than this Mailmark knows" in too_new.err

    if not TEST_DATABASE_URL:
        # An older backup: the copy migrated back to 0024.
        older = tmp_path / "older"
        shutil.copytree(backup, older)
        (older / MANIFEST).write_text(
            json.dumps({**manifest, "database": {**manifest["database"], "revision": "0024"}})
        )
        engine = sa.create_engine(f"sqlite:///{older / SQLITE_FILE}")
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0024")
        engine.dispose()
        migrated = await cli(restored_settings, "restore", str(older), "--json")
        assert migrated.code == 0, migrated.err
        answer = migrated.json
        assert isinstance(answer, dict)
        assert (answer["backupRevision"], answer["secretsKey"]) == ("0024", "restored")
        assert answer["revision"] not in ("0024", "9999")

    # A blob damaged in the backup is found while restoring (over the restored installation
    # on SQLite: --force replaces it).
    damaged = tmp_path / "damaged"
    shutil.copytree(backup, damaged)
    blob = next((damaged / "blobs").glob("*/*"))
    blob.write_bytes(blob.read_bytes().replace(b"Body", b"Bogus"))
    refused = await cli(restored_settings, "restore", str(damaged), "--force")
    assert refused.code == 1
    assert f"blob {blob.name} in the backup does not match its SHA-256" in refused.err

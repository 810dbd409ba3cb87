"""Backup and restore throughput on SQLite, beside a plain copy of the data directory.

    cd /work/main && .venv/bin/python bench/backup.py [--messages 5000] [--size 10240]

Delivers N messages of about `--size` bytes (each distinct) through the core InboundDelivery
service into a fresh data dir, then times, in this process:

- baseline: `shutil.copytree` of the data dir (database file and blob files as they lie, no
  consistency, no checks): what the disk allows;
- backup: `mailmark backup` (bootstrap.backup): SQLite online backup of the database, every
  referenced blob read through the BlobStore, checked against its SHA-256 and written, the
  manifest, one sync;
- restore: `mailmark restore` (bootstrap.restore) into a second, empty data dir: the database
  file, the migration check, every blob read, checked and stored through BlobStore.put_many
  (fsynced, as mail is).

Prints messages/s and MB/s (message bytes) for each, and checks that the restored store holds
every blob. This is a benchmark, not a test: the figures depend on whatever else the machine is
doing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from mailmark.bootstrap import backup, build_services, restore
from mailmark.config import Settings

HOSTNAME = "mx.bench.test"
DOMAIN = "bench.test"


def _messages(count: int, size: int) -> list[bytes]:
    filler = (b"The quick brown fox jumps over the lazy dog. " * (size // 45 + 1))[:size]
    return [
        b"From: alice@example.org\r\nTo: bob@bench.test\r\nSubject: message %d\r\n"
        b"Message-ID: <%d@example.org>\r\n\r\n%s\r\n" % (n, n, filler)
        for n in range(count)
    ]


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, hostname=HOSTNAME, sqlite_synchronous="NORMAL")


async def _fill(settings: Settings, messages: list[bytes]) -> None:
    services = await build_services(settings)
    try:
        await services.accounts.create(
            "bench", owner_email=f"owner@{DOMAIN}", password="bench-pass-1", plan="unlimited"
        )
        await services.domains.add(DOMAIN, account_name="bench", trust=True)
        mailbox = await services.mailboxes.create(f"bob@{DOMAIN}", password="bench-pass-1")
        for start in range(0, len(messages), 256):
            await asyncio.gather(
                *(
                    services.delivery.deliver(
                        raw, recipients=[mailbox], mail_from="alice@example.org"
                    )
                    for raw in messages[start : start + 256]
                )
            )
    finally:
        await services.close()


def _line(name: str, seconds: float, count: int, size: int) -> str:
    return (
        f"{name:<10} {seconds:7.2f} s {count / seconds:9.0f} msg/s {size / seconds / 1e6:8.1f} MB/s"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=10240)
    args = parser.parse_args()
    messages = _messages(args.messages, args.size)
    total = sum(len(m) for m in messages)
    with tempfile.TemporaryDirectory(prefix="mailmark-bench-backup-") as temp:
        work = Path(temp)
        source = _settings(work / "data")
        started = time.perf_counter()
        await _fill(source, messages)
        print(
            f"{args.messages} messages, {total / 1e6:.1f} MB delivered in "
            f"{time.perf_counter() - started:.1f} s"
        )

        started = time.perf_counter()
        await asyncio.to_thread(shutil.copytree, work / "data", work / "copy")
        await asyncio.to_thread(os.sync)
        copied = time.perf_counter() - started

        started = time.perf_counter()
        made = await backup(source, work / "backup", lambda _: None)
        backed_up = time.perf_counter() - started

        target = _settings(work / "restored")
        started = time.perf_counter()
        done = await restore(target, work / "backup", force=False, progress=lambda _: None)
        restored = time.perf_counter() - started

        blobs = {path.name: path for path in (work / "restored" / "blobs").glob("*/*")}
        expected = {hashlib.sha256(m).hexdigest() for m in messages}
        if made.blobs != args.messages or done.blobs != args.messages or set(blobs) != expected:
            print("the backup or the restore lost blobs", file=sys.stderr)
            return 1
        print(f"database {made.database_bytes / 1e6:.1f} MB, {made.blobs} blobs")
        print(_line("copytree", copied, args.messages, total) + "  (baseline: no checks)")
        print(_line("backup", backed_up, args.messages, total))
        print(_line("restore", restored, args.messages, total))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

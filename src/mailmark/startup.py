"""Start-up checks that run before anything listens: a private data directory, a hostname fit
for the internet, and the one-line error that ends a start which cannot succeed."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from mailmark.config import Settings

log = logging.getLogger(__name__)
DATA_DIR_HINT = "set MAILMARK_DATA_DIR or --data-dir to a directory this user can write"


class StartupError(Exception):
    """Mailmark cannot start with these settings and this machine; the message is one line that
    says what is wrong and which setting to change."""


def prepare_data_dir(settings: Settings) -> None:
    """Create the data dir and blob dir (0700) and the SQLite file (0600), which hold DKIM private
    keys, webhook secrets, password hashes and everyone's mail. Where an older version left them
    open to other users, tighten what is Mailmark's alone, and warn about the data dir itself (it
    may be a directory the operator chose and shares on purpose)."""
    data_dir = settings.data_dir.resolve()

    def hint_for(path: Path, setting: str) -> str:
        return DATA_DIR_HINT if path.resolve().is_relative_to(data_dir) else f"check {setting}"

    paths = [(settings.data_dir, True, False, "the data directory", DATA_DIR_HINT)]
    if settings.blob_url.startswith("file://"):
        blobs = settings.blob_path
        paths.append(
            (blobs, True, True, "the blob directory", hint_for(blobs, "MAILMARK_BLOB_URL"))
        )
    if (database := settings.sqlite_path) is not None:
        database_hint = hint_for(database, "MAILMARK_DATABASE_URL")
        paths.append((database, False, True, "the database", database_hint))
        # SQLite gives its -wal and -shm files the database file's mode; older ones may remain.
        paths += [
            (extra, False, True, "the database", database_hint)
            for extra in (Path(f"{database}-wal"), Path(f"{database}-shm"))
            if extra.exists()
        ]
    for path, directory, tighten, what, hint in paths:
        try:
            _private(path, directory=directory, tighten=tighten)
        except OSError as error:
            reason = error.strerror or str(error)
            raise StartupError(f"cannot use {what} {path.absolute()}: {reason} ({hint})") from None


def _private(path: Path, *, directory: bool, tighten: bool) -> None:
    """Create `path` readable by its owner only; if it exists and is open to others, make it
    private (`tighten`, and only when it is ours) or warn."""
    mode = 0o700 if directory else 0o600
    if directory:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
    elif not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    status = path.stat()
    if not status.st_mode & 0o077:
        return
    was = stat.filemode(status.st_mode)
    if not tighten or status.st_uid != os.geteuid():
        log.warning("%s is open to other users (%s): chmod go= it", path.absolute(), was)
        return
    path.chmod(stat.S_IMODE(status.st_mode) & 0o700)
    log.warning(
        "%s was open to other users (%s); it is now readable by its owner only",
        path.absolute(),
        was,
    )


def hostname_problem(hostname: str) -> str | None:
    """Why `hostname` will not do as the server's name on the internet, or None if it will."""
    if hostname == "localhost" or hostname.startswith("localhost."):
        return "names only this machine"
    if "." not in hostname:
        return "is not a fully qualified domain name"
    if hostname.endswith((".localdomain", ".local", ".internal", ".lan", ".home.arpa")):
        return "is a local name, not one the internet can resolve"
    return None

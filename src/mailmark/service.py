"""Running under a service manager: started as root, `serve` binds its ports and then runs as an
unprivileged user; and it tells systemd when it is ready and when it stops (sd_notify)."""

from __future__ import annotations

import grp
import logging
import os
import pwd
import socket
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from mailmark.config import Settings
from mailmark.startup import StartupError

log = logging.getLogger(__name__)

# A data dir holds a few files and directories; more than this is not Mailmark's layout.
MAX_ENTRIES_CHECKED = 1000


@dataclass(frozen=True)
class RunAs:
    """The user and group `serve` runs as once its ports are bound."""

    user: str
    uid: int
    group: str
    gid: int
    home: str


def run_as(settings: Settings) -> RunAs | None:
    """The configured MAILMARK_RUN_AS_USER/_GROUP, looked up; None when none is configured."""
    if not settings.run_as_user:
        if settings.run_as_group:
            raise StartupError("MAILMARK_RUN_AS_GROUP is set without MAILMARK_RUN_AS_USER")
        return None
    try:
        user = _lookup_user(settings.run_as_user)
    except KeyError:
        raise StartupError(
            f"MAILMARK_RUN_AS_USER: no user {settings.run_as_user!r} on this machine "
            "(create it: useradd --system --home-dir /var/lib/mailmark mailmark)"
        ) from None
    try:
        group = (
            _lookup_group(settings.run_as_group)
            if settings.run_as_group
            else grp.getgrgid(user.pw_gid)
        )
    except KeyError:
        raise StartupError(
            f"MAILMARK_RUN_AS_GROUP: no group {settings.run_as_group or user.pw_gid!r} on this "
            "machine"
        ) from None
    return RunAs(user.pw_name, user.pw_uid, group.gr_name, group.gr_gid, user.pw_dir)


def must_switch(target: RunAs | None) -> bool:
    """Whether this process has to become `target`: it runs as root and `target` is not root.
    Already running as the target user (systemd's `User=`), there is nothing to do; as anyone
    else, it cannot become that user."""
    if target is None:
        return False
    euid = os.geteuid()
    if euid == target.uid:
        return False
    if euid == 0:
        return True
    raise StartupError(
        f"MAILMARK_RUN_AS_USER={target.user} needs `mailmark serve` started as root, to bind its "
        f"ports before it becomes that user; it was started as uid {euid} (start it as root, "
        "or as that user with CAP_NET_BIND_SERVICE and no MAILMARK_RUN_AS_USER)"
    )


def switch_user(target: RunAs) -> None:
    """Become `target` for good: supplementary groups, then the group, then the user (after
    setuid the process may no longer change its groups), and its HOME. Ends the start if any step fails or
    root could be regained: a server configured to drop root never goes on as root."""
    try:
        os.setgroups(os.getgrouplist(target.user, target.gid))
        os.setgid(target.gid)
        os.setuid(target.uid)
    except OSError as error:
        raise StartupError(
            f"cannot switch to user {target.user} and group {target.group}: "
            f"{error.strerror or error} (check MAILMARK_RUN_AS_USER and MAILMARK_RUN_AS_GROUP)"
        ) from None
    # As login(1) does: libraries looking in ~ (libpq's ~/.postgresql) must not look in root's.
    os.environ.update(HOME=target.home, USER=target.user, LOGNAME=target.user)
    ids = (os.getuid(), os.geteuid(), os.getgid(), os.getegid())
    if ids != (target.uid, target.uid, target.gid, target.gid) or _can_regain_root():
        raise StartupError(
            f"switching to user {target.user} did not drop root (uid/euid/gid/egid now {ids}); "
            "refusing to run"
        )
    log.info(
        "ports bound; now running as user %s (uid %d), group %s (gid %d)",
        target.user,
        target.uid,
        target.group,
        target.gid,
    )
    for code in _python_paths():
        if not os.access(code, os.R_OK | os.X_OK):
            log.warning(
                "user %s cannot read %s: a module imported from there from now on fails; "
                "install Mailmark and its Python where that user can read them (e.g. /opt)",
                target.user,
                code,
            )


def _can_regain_root() -> bool:
    try:
        os.setuid(0)
    except PermissionError:
        return False
    return True


def unusable_paths(settings: Settings) -> list[str]:
    """What this process, as the user it now runs as, cannot use of what `serve` needs: the
    data dir, the SQLite database and its -wal/-shm, and each directory directly in it (blobs,
    spool, tls) read-write; each other file in it (secrets.key) and in data_dir/tls readable; the
    configured TLS pair, relay password and relay CA files readable. The blobs are not walked:
    there may be millions, and a chown of the data dir fixes them with the rest."""
    problems: dict[Path, str] = {}

    def check(path: Path, need: int, wanted: str) -> None:
        if path.absolute() not in problems and path.exists() and not os.access(path, need):
            problems[path.absolute()] = wanted

    data_dir = settings.data_dir
    rwx = os.R_OK | os.W_OK | os.X_OK
    check(data_dir, rwx, "read, write")
    if (database := settings.sqlite_path) is not None:
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            check(path, os.R_OK | os.W_OK, "read, write")
    if data_dir.is_dir() and os.access(data_dir, os.R_OK | os.X_OK):
        for entry in sorted(islice(data_dir.iterdir(), MAX_ENTRIES_CHECKED)):
            if entry.is_dir():
                check(entry, rwx, "read, write")
            else:
                check(entry, os.R_OK, "read")
        tls = data_dir / "tls"
        if tls.is_dir() and os.access(tls, os.R_OK | os.X_OK):
            for entry in sorted(islice(tls.iterdir(), MAX_ENTRIES_CHECKED)):
                check(entry, os.R_OK, "read")
    if settings.blob_url.startswith("file://"):
        check(settings.blob_path, rwx, "read, write")
    for configured in (
        settings.tls_cert,
        settings.tls_key,
        settings.relay_password_file,
        settings.relay_ca_file,
    ):
        if configured is not None:
            check(configured, os.R_OK, "read")
    return [f"{path} ({wanted})" for path, wanted in problems.items()]


def require_usable_paths(settings: Settings, target: RunAs) -> None:
    """End the start in one line naming every path `target` cannot use, and the fix."""
    if problems := unusable_paths(settings):
        raise StartupError(
            f"user {target.user} cannot use {', '.join(problems)}: give them to it "
            f"(chown -R {target.user}:{target.group} {settings.data_dir.absolute()}; for a "
            f"certificate key elsewhere: chgrp {target.group} KEY && chmod g+r KEY)"
        )


def notify(state: str) -> bool:
    """Tell the service manager `state` (sd_notify: "READY=1", "STOPPING=1", "STATUS=…") over
    the datagram socket named in NOTIFY_SOCKET; False when there is none (not under systemd's
    Type=notify). A name starting with "@" is in the abstract namespace."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as error:
        log.warning("cannot notify the service manager at %s: %s", address, error)
        return False
    return True


def _python_paths() -> list[Path]:
    """Where this process imports code from: the standard library and Mailmark's own package."""
    return [Path(os.__file__).parent, Path(__file__).parent]


def _lookup_user(name: str) -> pwd.struct_passwd:
    return pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)


def _lookup_group(name: str) -> grp.struct_group:
    return grp.getgrgid(int(name)) if name.isdigit() else grp.getgrnam(name)

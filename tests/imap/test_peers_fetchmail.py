"""Real `fetchmail` retrieving a Mailmark mailbox over IMAP with TLS (the self-signed certificate as
its only trusted root, host name checked): every message handed to the MDA byte for byte; `keep`
leaves them on the server marked \\Seen, the default deletes and expunges them."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import os
import pwd
import shutil
from pathlib import Path
from typing import Any

import pytest

from mailmark.bootstrap import Listeners
from mailmark.security import ensure_self_signed_certificate
from tests.support.tls import client_tls
from tests.support.world import HOSTNAME, World, stored_copies

FETCHMAIL = shutil.which("fetchmail")
pytestmark = pytest.mark.skipif(
    FETCHMAIL is None, reason="fetchmail not installed (Debian package fetchmail)"
)

PASSWORD = "sales-pass-1"
# The MDA: each message on stdin into its own file in the directory it is given.
MDA_SCRIPT = 'cat > "$(mktemp -p "$1" msg.XXXXXX)"\n'


def message(n: int) -> bytes:
    body = "".join(
        f"Fetch line {i}: {'é' if i % 7 == 0 else 'e'} and some text\r\n" for i in range(60)
    )
    return (
        f"From: Far Away <far{n}@example.org>\r\nTo: sales@acme.test\r\nSubject: Fetch {n}\r\n"
        f"Message-ID: <fetchmail-{n}@example.org>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    ).encode()


def rcfile(home: Path, port: int, certificate: Path, inbox: Path, *, keep: bool, ssl: str) -> Path:
    # Connect to 127.0.0.1 but check the certificate's name against the server's host name.
    path = home / "fetchmailrc"
    mda = home / "mda.sh"
    mda.write_text(MDA_SCRIPT)
    path.write_text(
        "set no syslog\n"
        "set invisible\n"
        f"poll {HOSTNAME} via 127.0.0.1 protocol IMAP port {port}\n"
        f'  user "sales@acme.test" there with password "{PASSWORD}" is "{pwd.getpwuid(os.getuid()).pw_name}" here\n'
        f"  {ssl} sslcertck sslcertfile {certificate} sslcommonname {HOSTNAME}\n"
        f'  mda "/bin/sh {mda} {inbox}"\n'
        f"  no stripcr\n"
        f"  {'keep' if keep else 'no keep'} fetchall\n"
    )
    path.chmod(0o600)  # fetchmail refuses a readable rcfile
    return path


async def fetch(home: Path, rc: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(FETCHMAIL),
        "--fetchmailrc",
        str(rc),
        "--nodetach",
        "--verbose",
        # As root its lock is /var/run/fetchmail.pid, whatever FETCHMAILHOME says: parallel runs
        # would refuse to start ("another foreground fetchmail is running").
        "--pidfile",
        str(home / "fetchmail.pid"),
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "FETCHMAILHOME": str(home)},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


def server_flags(port: int) -> list[bytes]:
    conn = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls(), timeout=30)
    with contextlib.closing(conn.socket()):
        conn.login("sales@acme.test", PASSWORD)
        typ, count = conn.select("INBOX", readonly=True)
        assert typ == "OK", count
        data: list[Any] = []
        if int(count[0] or 0):
            typ, data = conn.fetch("1:*", "(FLAGS)")
            assert typ == "OK", data
        conn.logout()
    return [item for item in data if isinstance(item, bytes)]


# "ssl": implicit TLS; without it fetchmail insists on STARTTLS (and sslcertck on its certificate).
@pytest.mark.parametrize("ssl", ["ssl", ""], ids=["imaps", "starttls"])
async def test_fetchmail_retrieves_every_message_byte_for_byte(
    tmp_path: Path, listeners: Listeners, world: World, ssl: str
) -> None:
    settings = world.services.settings
    certificate, _ = ensure_self_signed_certificate(settings.data_dir / "tls", settings.hostname)
    sent = [message(n) for n in range(1, 6)]
    for raw in sent:
        await world.services.delivery.deliver(
            raw, recipients=[world.sales], mail_from="far@example.org"
        )
    port = listeners.imaps.port if ssl == "ssl" else listeners.imap.port
    home = tmp_path / "home"
    first, second = home / "first", home / "second"
    first.mkdir(parents=True)
    second.mkdir()

    # keep: everything delivered to the MDA, left on the server and marked read.
    code, log = await fetch(home, rcfile(home, port, certificate, first, keep=True, ssl=ssl))
    assert code == 0, log
    got = sorted(path.read_bytes() for path in first.iterdir())
    stored = sorted(copy.data for copy in await stored_copies(world.services, world.sales))
    assert got == stored
    assert all(any(data.endswith(raw) for data in got) for raw in sent)
    flags = await asyncio.to_thread(server_flags, listeners.imaps.port)
    assert len(flags) == 5 and all(b"\\Seen" in line for line in flags), flags

    # Again without keep: fetchall takes the read ones too, then they are deleted and expunged.
    code, log = await fetch(home, rcfile(home, port, certificate, second, keep=False, ssl=ssl))
    assert code == 0, log
    assert sorted(path.read_bytes() for path in second.iterdir()) == stored
    assert await stored_copies(world.services, world.sales) == []

    # Nothing left: fetchmail says so with its own exit status 1 ("no mail").
    code, log = await fetch(home, rcfile(home, port, certificate, second, keep=False, ssl=ssl))
    assert code == 1, log


async def test_fetchmail_refuses_a_server_whose_certificate_is_not_the_pinned_one(
    tmp_path: Path, listeners: Listeners, world: World
) -> None:
    await world.services.delivery.deliver(
        message(1), recipients=[world.sales], mail_from="far@example.org"
    )
    other, _ = ensure_self_signed_certificate(tmp_path / "other-tls", HOSTNAME)
    home = tmp_path / "home"
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    code, log = await fetch(
        home, rcfile(home, listeners.imaps.port, other, inbox, keep=True, ssl="ssl")
    )
    assert code != 0, log
    assert "certificate verification error" in log.lower(), log
    assert list(inbox.iterdir()) == []
    assert len(await stored_copies(world.services, world.sales)) == 1

"""Real OfflineIMAP (Debian's offlineimap3) syncing a Mailmark mailbox with a local Maildir both
ways over implicit TLS, the server's certificate pinned by its SHA-256 fingerprint: new mail
comes down with every folder; flag changes, a deletion and a message filed locally go up (it
uploads with APPEND and finds its upload again by UIDPLUS's APPENDUID or its own header)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import ssl
from pathlib import Path

import pytest

from mailmark.bootstrap import Listeners
from mailmark.security import ensure_self_signed_certificate
from tests.imap.peers import PASSWORD, add_flags, message, server_view
from tests.support.world import World, stored_copies

OFFLINEIMAP = shutil.which("offlineimap")
pytestmark = pytest.mark.skipif(
    OFFLINEIMAP is None, reason="offlineimap not installed (Debian package offlineimap3)"
)

FILED = (
    b"From: Sales <sales@acme.test>\r\nTo: someone@example.org\r\n"
    b"Subject: Filed offline\r\nMessage-ID: <filed-1@acme.test>\r\n"
    b"Date: Thu, 3 Dec 2026 11:00:00 +0000\r\n\r\nKept for later.\r\n"
)


def without_offlineimap_header(data: bytes) -> bytes:
    """A message as sent, from OfflineIMAP's Maildir copy: LF line ends, and the X-OfflineIMAP
    field it adds to messages it uploads."""
    data = data.replace(b"\r\n", b"\n")
    return re.sub(rb"^X-OfflineIMAP: [^\n]*\n", b"", data, flags=re.MULTILINE)


class OfflineImap:
    def __init__(self, home: Path, port: int, certificate: Path) -> None:
        self.home = home
        self.maildir = home / "Mail"
        self.maildir.mkdir(parents=True)
        der = ssl.PEM_cert_to_DER_cert(certificate.read_text())
        self.config = home / "offlineimaprc"
        self.config.write_text(f"""\
[general]
accounts = mailmark
metadata = {home}/.offlineimap

[Account mailmark]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {self.maildir}

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {port}
remoteuser = sales@acme.test
remotepass = {PASSWORD}
ssl = yes
cert_fingerprint = {hashlib.sha256(der).hexdigest()}
""")

    async def run(self) -> str:
        process = await asyncio.create_subprocess_exec(
            str(OFFLINEIMAP),
            "-c",
            str(self.config),
            "-o",  # one sync, then exit
            "-u",
            "basic",
            env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
        text = out.decode(errors="replace")
        assert process.returncode == 0, text
        assert "ERROR" not in text, text
        return text

    def messages(self, folder: str) -> dict[Path, bytes]:
        return {
            path: path.read_bytes()
            for sub in ("cur", "new")
            for path in sorted((self.maildir / folder / sub).glob("*"))
        }

    def find(self, folder: str, subject: bytes) -> Path:
        matches = [path for path, data in self.messages(folder).items() if subject in data]
        assert len(matches) == 1, (subject, matches)
        return matches[0]


async def test_offlineimap_pulls_new_mail_and_pushes_flags_deletions_and_a_filed_message(
    tmp_path: Path, listeners: Listeners, world: World
) -> None:
    settings = world.services.settings
    certificate, _ = ensure_self_signed_certificate(settings.data_dir / "tls", settings.hostname)
    sync = OfflineImap(tmp_path / "home", listeners.imaps.port, certificate)
    for n in range(1, 4):
        await world.services.delivery.deliver(
            message(n), recipients=[world.sales], mail_from=f"peer{n}@example.org"
        )

    await sync.run()
    inbox = sync.messages("INBOX")
    assert sorted(map(without_offlineimap_header, inbox.values())) == sorted(
        without_offlineimap_header(message(n)) for n in range(1, 4)
    )
    for folder in ("Drafts", "Sent", "Trash", "Junk", "Archive"):
        assert (sync.maildir / folder / "cur").is_dir(), folder

    add_flags(sync.find("INBOX", b"Subject: Sync me 1"), "S")
    add_flags(sync.find("INBOX", b"Subject: Sync me 2"), "F")
    sync.find("INBOX", b"Subject: Sync me 3").unlink()
    filed = sync.maildir / "Archive" / "cur" / "1764759600.offline.localhost:2,S"
    filed.write_bytes(FILED.replace(b"\r\n", b"\n"))
    await sync.run()

    port = listeners.imaps.port
    inbox_view = await asyncio.to_thread(server_view, port, "INBOX")
    assert sorted(inbox_view) == [b"Sync me 1", b"Sync me 2"]
    assert inbox_view[b"Sync me 1"][1].split() == [b"\\Seen"]
    assert inbox_view[b"Sync me 2"][1].split() == [b"\\Flagged"]
    archive = await asyncio.to_thread(server_view, port, "Archive")
    assert list(archive) == [b"Filed offline"]
    _, flags, body = archive[b"Filed offline"]
    assert flags.split() == [b"\\Seen"]
    assert without_offlineimap_header(body) == without_offlineimap_header(FILED)
    copies = await stored_copies(world.services, world.sales)
    assert sorted((c.folder, c.subject) for c in copies) == [
        ("Archive", "Filed offline"),
        ("INBOX", "Sync me 1"),
        ("INBOX", "Sync me 2"),
    ]

    # A third run changes nothing on either side; then new mail comes down incrementally.
    await sync.run()
    assert len(sync.messages("INBOX")) == 2
    assert len(sync.messages("Archive")) == 1
    assert await asyncio.to_thread(server_view, port, "INBOX") == inbox_view
    await world.services.delivery.deliver(
        message(4), recipients=[world.sales], mail_from="p@example.org"
    )
    await sync.run()
    assert without_offlineimap_header(message(4)) in map(
        without_offlineimap_header, sync.messages("INBOX").values()
    )

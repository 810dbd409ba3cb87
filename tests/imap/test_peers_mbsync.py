"""Real `mbsync` (isync) syncing a Mailmark mailbox with a local Maildir both ways, over implicit
TLS and over STARTTLS with the server's self-signed certificate pinned: new mail comes down; flag
changes, a deletion and a new draft go up."""

from __future__ import annotations

import asyncio
import imaplib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailmark.bootstrap import Listeners
from mailmark.security import ensure_self_signed_certificate
from tests.imap.peers import PASSWORD, add_flags, message, server_view
from tests.support.tls import client_tls
from tests.support.world import World, stored_copies

MBSYNC = shutil.which("mbsync")
pytestmark = pytest.mark.skipif(
    MBSYNC is None, reason="mbsync not installed (Debian package isync)"
)

DRAFT = (
    b"From: Sales <sales@acme.test>\r\nTo: someone@example.org\r\n"
    b"Subject: A draft written offline\r\nMessage-ID: <draft-1@acme.test>\r\n"
    b"Date: Thu, 3 Dec 2026 11:00:00 +0000\r\n\r\nNot sent yet.\r\n"
)


def as_sent(data: bytes) -> bytes:
    """A message as mbsync keeps it, compared with what was sent: mbsync stores LF line ends in
    the Maildir and adds an X-TUID header to find its own uploads again."""
    return re.sub(rb"^X-TUID: [^\n]*\n", b"", data.replace(b"\r\n", b"\n"), flags=re.MULTILINE)


@dataclass
class Sync:
    home: Path
    config: Path

    @property
    def maildir(self) -> Path:
        return self.home / "Mail"

    async def run(self) -> str:
        process = await asyncio.create_subprocess_exec(
            str(MBSYNC),
            "--config",
            str(self.config),
            "--all",
            "--verbose",
            env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        text = out.decode(errors="replace")
        assert process.returncode == 0, text
        return text

    def messages(self, folder: str) -> dict[Path, bytes]:
        found = {}
        for sub in ("cur", "new"):
            for path in sorted((self.maildir / folder / sub).glob("*")):
                found[path] = path.read_bytes()
        return found

    def find(self, folder: str, subject: bytes) -> Path:
        matches = [path for path, data in self.messages(folder).items() if subject in data]
        assert len(matches) == 1, (subject, matches)
        return matches[0]


def mbsync_config(home: Path, port: int, certificate: Path, ssl_type: str) -> str:
    return f"""\
IMAPAccount mailmark
Host 127.0.0.1
Port {port}
User sales@acme.test
Pass {PASSWORD}
SSLType {ssl_type}
CertificateFile {certificate}
Timeout 30

IMAPStore mailmark-far
Account mailmark

MaildirStore local
Path {home}/Mail/
Inbox {home}/Mail/INBOX
SubFolders Verbatim

Channel mailmark
Far :mailmark-far:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
Sync All
"""


@pytest.fixture(params=["IMAPS", "STARTTLS"])
def sync(
    request: pytest.FixtureRequest, tmp_path: Path, listeners: Listeners, world: World
) -> Iterator[Sync]:
    settings = world.services.settings
    certificate, _ = ensure_self_signed_certificate(settings.data_dir / "tls", settings.hostname)
    implicit = request.param == "IMAPS"
    port = listeners.imaps.port if implicit else listeners.imap.port
    home = tmp_path / "home"
    (home / "Mail").mkdir(parents=True)
    config = home / "mbsyncrc"
    config.write_text(mbsync_config(home, port, certificate, request.param))
    yield Sync(home, config)


async def test_mbsync_pulls_new_mail_and_pushes_flags_deletions_and_a_draft(
    sync: Sync, listeners: Listeners, world: World
) -> None:
    for n in range(1, 4):
        await world.services.delivery.deliver(
            message(n), recipients=[world.sales], mail_from=f"peer{n}@example.org"
        )

    # Pull: every message arrives byte for byte; the special-use folders come along.
    await sync.run()
    inbox = sync.messages("INBOX")
    assert sorted(map(as_sent, inbox.values())) == sorted(as_sent(message(n)) for n in range(1, 4))
    for folder in ("Drafts", "Sent", "Trash", "Junk"):
        assert (sync.maildir / folder / "cur").is_dir(), folder

    # Push: one read, one starred, one deleted, and a new draft.
    add_flags(sync.find("INBOX", b"Subject: Sync me 1"), "S")
    add_flags(sync.find("INBOX", b"Subject: Sync me 2"), "F")
    sync.find("INBOX", b"Subject: Sync me 3").unlink()
    draft = sync.maildir / "Drafts" / "cur" / "1764759600.offline-draft.localhost:2,DS"
    draft.write_bytes(DRAFT.replace(b"\r\n", b"\n"))
    await sync.run()

    port = listeners.imaps.port
    inbox_view = await asyncio.to_thread(server_view, port, "INBOX")
    assert sorted(inbox_view) == [b"Sync me 1", b"Sync me 2"]
    assert inbox_view[b"Sync me 1"][1].split() == [b"\\Seen"]
    assert inbox_view[b"Sync me 2"][1].split() == [b"\\Flagged"]
    drafts = await asyncio.to_thread(server_view, port, "Drafts")
    assert list(drafts) == [b"A draft written offline"]
    _, flags, body = drafts[b"A draft written offline"]
    assert sorted(flags.split()) == [b"\\Draft", b"\\Seen"]
    assert b"\n" not in body.replace(b"\r\n", b"")  # CRLF on the server side
    assert as_sent(body) == as_sent(DRAFT)
    # The deletion is an expunge, not a \Deleted flag left behind, and it reached the store.
    copies = await stored_copies(world.services, world.sales)
    assert sorted((c.folder, c.subject) for c in copies) == [
        ("Drafts", "A draft written offline"),
        ("INBOX", "Sync me 1"),
        ("INBOX", "Sync me 2"),
    ]

    # Nothing left to do: a third run changes nothing on either side.
    await sync.run()
    assert len(sync.messages("INBOX")) == 2
    assert await asyncio.to_thread(server_view, port, "INBOX") == inbox_view

    # New mail after the first sync comes down incrementally, and a server-side flag change too.
    await world.services.delivery.deliver(
        message(4), recipients=[world.sales], mail_from="p@example.org"
    )
    conn = await asyncio.to_thread(
        imaplib.IMAP4_SSL, "127.0.0.1", port, ssl_context=client_tls(), timeout=30
    )
    await asyncio.to_thread(conn.login, "sales@acme.test", PASSWORD)
    await asyncio.to_thread(conn.select, "INBOX")
    uid = inbox_view[b"Sync me 2"][0]
    typ, _ = await asyncio.to_thread(conn.uid, "STORE", str(uid), "+FLAGS", r"(\Seen)")
    assert typ == "OK"
    await asyncio.to_thread(conn.logout)
    await sync.run()
    inbox = sync.messages("INBOX")
    assert as_sent(message(4)) in map(as_sent, inbox.values())
    starred = sync.find("INBOX", b"Subject: Sync me 2")
    assert starred.name.endswith(":2,FS"), starred.name

"""What the peer tests (real IMAP clients syncing with a local Maildir) share: the messages they
sync, the server's view read back with imaplib, and Maildir flag changes."""

from __future__ import annotations

import contextlib
import imaplib
import re
from pathlib import Path

from tests.support.tls import client_tls

PASSWORD = "sales-pass-1"


def message(n: int) -> bytes:
    return (
        f"From: Peer {n} <peer{n}@example.org>\r\nTo: sales@acme.test\r\n"
        f"Subject: Sync me {n}\r\nMessage-ID: <peer-{n}@example.org>\r\n"
        f"Date: Thu, 3 Dec 2026 10:0{n}:00 +0000\r\n\r\n"
        + "".join(f"Line {i} of message {n}.\r\n" for i in range(40))
    ).encode()


def server_view(port: int, folder: str) -> dict[bytes, tuple[int, bytes, bytes]]:
    """Subject -> (uid, flags, body) of every message in `folder`, read back with imaplib."""
    conn = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls(), timeout=30)
    with contextlib.closing(conn.socket()):
        conn.login("sales@acme.test", PASSWORD)
        typ, _ = conn.select(folder, readonly=True)
        assert typ == "OK"
        typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        assert typ == "OK", data
        view = {}
        for item in data:
            if isinstance(item, tuple):
                uid = re.search(rb"UID (\d+)", item[0])
                flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
                subject = re.search(rb"^Subject: (.*?)\r$", item[1], re.MULTILINE)
                assert uid and flags and subject, item[0]
                view[subject[1]] = (int(uid[1]), flags[1], item[1])
        conn.logout()
        return view


def add_flags(path: Path, flags: str) -> Path:
    """Maildir flags live after ':2,' in the name, sorted (the maildir spec)."""
    base, _, current = path.name.partition(":2,")
    renamed = path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(set(current + flags)))}"
    path.rename(renamed)
    return renamed

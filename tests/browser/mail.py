"""What the webmail tests share: two mailboxes with IMAP passwords, mail delivered over the MX,
an IMAP client beside the browser, and a web page that counts who fetched from it."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import email.utils
import http.server
import imaplib
import re
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from typing import Any, TypeVar

from playwright.async_api import Locator, Page, expect

from tests.browser.web_app import DOMAIN, WebApp
from tests.support.serve import free_port
from tests.support.tls import client_tls

MAILBOX_PASSWORD = "mailbox-pass-7-long-enough"
ANNA = f"anna@{DOMAIN}"
BEN = f"ben@{DOMAIN}"
ANNA_SIGNATURE = "Anna Berg, Acme Sales"
T = TypeVar("T")


async def add_mail_users(web_app: WebApp) -> None:
    """anna@ (with a signature) and ben@, both with an IMAP password, on the owner's domain."""
    await web_app.cli(
        "mailbox",
        "add",
        ANNA,
        "--display-name",
        "Anna Berg",
        "--signature",
        ANNA_SIGNATURE,
        f"--password={MAILBOX_PASSWORD}",
    )
    await web_app.cli(
        "mailbox", "add", BEN, "--display-name", "Ben Okafor", f"--password={MAILBOX_PASSWORD}"
    )


def message(
    subject: str,
    *,
    sender: str = "Carol Diaz <carol@outside.test>",
    to: str = ANNA,
    text: str = "Hello there.",
    html: str | None = None,
    attachment: tuple[str, bytes, str] | None = None,
    more_attachments: tuple[tuple[str, bytes, str], ...] = (),
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = email.utils.make_msgid(domain="outside.test")
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for name, data, kind in ((attachment,) if attachment else ()) + more_attachments:
        maintype, subtype = kind.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def _deliver(port: int, rcpt: str, msg: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail(
            email.utils.parseaddr(str(msg["From"]))[1],
            [rcpt],
            msg.as_bytes(policy=email.policy.SMTP),
        )


async def deliver(web_app: WebApp, msg: EmailMessage, rcpt: str = ANNA) -> None:
    """Hands `msg` to our MX over SMTP, as another mail server would."""
    await asyncio.to_thread(_deliver, int(web_app.env["MAILMARK_MX_PORT"]), rcpt, msg)


@contextlib.contextmanager
def imap_session(web_app: WebApp, address: str) -> Iterator[imaplib.IMAP4]:
    """A desktop client's session on `address` (STARTTLS, LOGIN)."""
    with imaplib.IMAP4("127.0.0.1", web_app.imap_port, timeout=30) as imap:
        imap.starttls(client_tls())
        imap.login(address, MAILBOX_PASSWORD)
        yield imap


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def find(imap: imaplib.IMAP4, folder: str, subject: str) -> list[bytes]:
    """UIDs of the messages in `folder` whose subject contains `subject`."""
    status, _ = imap.select(quoted(folder))
    assert status == "OK", f"no folder {folder}"
    status, data = imap.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT", quoted(subject))
    assert status == "OK", data
    return data[0].split() if data and data[0] else []


def flags(imap: imaplib.IMAP4, folder: str, subject: str) -> set[str]:
    uids = find(imap, folder, subject)
    assert len(uids) == 1, f"{len(uids)} messages {subject!r} in {folder}"
    status, data = imap.uid("FETCH", uids[0], "(FLAGS)")
    assert status == "OK", data
    found = re.search(rb"FLAGS \(([^)]*)\)", data[0] if isinstance(data[0], bytes) else data[0][0])
    assert found, data
    return set(found.group(1).decode().split())


def fetch(imap: imaplib.IMAP4, folder: str, subject: str) -> Message:
    uids = find(imap, folder, subject)
    assert len(uids) == 1, f"{len(uids)} messages {subject!r} in {folder}"
    status, data = imap.uid("FETCH", uids[0], "(BODY.PEEK[])")
    assert status == "OK", data
    raw = next(part[1] for part in data if isinstance(part, tuple))
    return email.message_from_bytes(raw, policy=email.policy.default)


async def eventually(check: Callable[[], T], *, timeout: float = 20.0, what: str = "") -> T:
    """`check()` once it stops raising AssertionError (run in a thread: it may do IMAP)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.to_thread(check)
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:.0f} s: {what}") from None
            await asyncio.sleep(0.5)


async def open_mailbox(page: Page, address: str) -> str:
    """Opens the webmail on `address`'s Inbox; returns the mailbox id."""
    response = await page.request.get("/api/mail/mailboxes")
    assert response.ok, await response.text()
    boxes: list[dict[str, Any]] = await response.json()
    mailbox_id = str(next(box["id"] for box in boxes if box["address"] == address))
    await page.goto(f"/mail/{mailbox_id}")
    await expect(folder_link(page, "Inbox")).to_have_attribute("aria-current", "page")
    return mailbox_id


def folder_link(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Folders").get_by_role(
        "link", name=re.compile(rf"^{re.escape(name)}\b")
    )


def row(page: Page, subject: str) -> Locator:
    """The conversation list's row (a list item) whose subject is `subject`."""
    return (
        page.get_by_role("list", name="Conversations")
        .get_by_role("listitem")
        .filter(has_text=subject)
    )


def compose_window(page: Page) -> Locator:
    return page.get_by_role("dialog").filter(has=page.get_by_role("toolbar", name="Formatting"))


async def write(page: Page, *, to: str, subject: str, body: str) -> Locator:
    """Opens compose (the button), fills To, Subject and the body; returns the window."""
    await page.get_by_role("button", name="Compose").first.click()
    window = compose_window(page)
    await expect(window).to_be_visible()
    to_field = window.get_by_role("combobox", name="To")
    await to_field.fill(to)
    await to_field.press("Enter")
    await expect(window.get_by_title(to)).to_be_visible()
    await window.get_by_label("Subject").fill(subject)
    # Focused without a click: the cursor is where compose put it, above the signature.
    await window.get_by_role("textbox", name="Message body").focus()
    await page.keyboard.type(body)
    return window


@dataclass
class Watchtower:
    """A web server on loopback that records every request: the hostile message's remote
    resources all point here, so any fetch, by the browser or by our server, is seen."""

    port: int = field(default_factory=free_port)
    hits: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextlib.contextmanager
    def running(self) -> Iterator[Watchtower]:
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()

            do_GET = do_POST = _record

            def log_message(self, format: str, *args: object) -> None:
                return

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()

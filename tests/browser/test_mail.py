"""The webmail end to end: mail arriving over the MX shows up live, hostile HTML runs and loads
nothing, compose sends and the bytes arrive, drafts save, schedule and undo, flags and moves are
the same over IMAP both ways, search, keyboard shortcuts; axe-core and screenshots of each view."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from playwright.async_api import ConsoleMessage, Dialog, Page, Request, expect

from tests.browser.mail import (
    ANNA,
    ANNA_SIGNATURE,
    BEN,
    Watchtower,
    add_mail_users,
    compose_window,
    deliver,
    eventually,
    fetch,
    find,
    flags,
    folder_link,
    imap_session,
    message,
    open_mailbox,
    row,
    write,
)
from tests.browser.web_app import Person, WebApp, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

Look = Callable[..., Awaitable[None]]
# A 1×1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
async def mail_users(web_app: WebApp, acme: Person) -> Person:
    await add_mail_users(web_app)
    return acme


async def test_mail_from_the_mx_appears_live_and_reads(
    web_app: WebApp, mail_users: Person, page: Page, look: Look
) -> None:
    await sign_in(page, mail_users)
    # The dashboard's navigation leads to the webmail first.
    await expect(page.get_by_role("navigation").get_by_role("link").first).to_have_text("Mail")
    await open_mailbox(page, ANNA)
    await expect(page.get_by_text("Your Inbox is empty.")).to_be_visible()
    await page.evaluate("window.__sameDocument = true")

    await deliver(
        web_app, message("Quarterly numbers", text="Revenue is up.\nSee https://acme.test/q3")
    )
    await deliver(
        web_app,
        message(
            "Team offsite",
            sender="Dave Ng <dave@outside.test>",
            text="Where shall we go?",
            attachment=("agenda.txt", b"09:00 coffee\n", "text/plain"),
            more_attachments=(("venue.png", PNG, "image/png"),),
        ),
    )
    # No reload: the server's events bring both in, with the unread count.
    await expect(row(page, "Quarterly numbers")).to_be_visible()
    await expect(row(page, "Team offsite")).to_be_visible()
    await expect(row(page, "Team offsite")).to_contain_text("Has attachments")
    await expect(folder_link(page, "Inbox")).to_contain_text("2")
    assert await page.evaluate("window.__sameDocument") is True
    await look(page, "inbox")

    await row(page, "Quarterly numbers").get_by_role("link").click()
    conversation = page.get_by_role("region", name="Conversation")
    await expect(conversation.get_by_role("heading", name="Quarterly numbers")).to_be_visible()
    await expect(conversation.get_by_role("link", name="https://acme.test/q3")).to_have_attribute(
        "rel", "noopener noreferrer"
    )
    await expect(folder_link(page, "Inbox")).to_contain_text("1")
    await expect(row(page, "Quarterly numbers")).not_to_contain_text("Unread")
    await look(page, "conversation")

    await row(page, "Team offsite").get_by_role("link").click()
    attachments = conversation.get_by_role("region", name="Attachments")
    await expect(attachments.get_by_text("agenda.txt")).to_be_visible()
    async with page.expect_download() as download:
        await attachments.get_by_role("link", name="Download agenda.txt").click()
    saved = await (await download.value).path()
    assert saved.read_bytes() == b"09:00 coffee\n"
    # Images preview in place; the original is one click away.
    await attachments.get_by_role("button", name="Preview venue.png").click()
    preview = page.get_by_role("dialog", name="venue.png")
    await expect(preview.get_by_role("img", name="venue.png")).to_be_visible()
    assert await preview.get_by_role("img").evaluate("img => img.naturalWidth") == 1
    await preview.get_by_role("button", name="Close").click()
    original = conversation.get_by_role("link", name="Show original")
    raw = await page.request.get(await original.get_attribute("href") or "")
    assert raw.ok and "Subject: Team offsite" in await raw.text()


HOSTILE = """<html><head>
<style>body {{ background: url({base}/css-background) }} @import url({base}/import.css);</style>
<link rel="stylesheet" href="{base}/linked.css">
<meta http-equiv="refresh" content="0; url={base}/refresh">
</head><body onload="alert('onload')">
<script>alert('script'); fetch('{base}/script')</script>
<p id="hello">Hostile hello</p>
<img src="{base}/remote.png" onerror="alert('onerror')" alt="remote">
<a href="javascript:alert('link')" id="js">click me</a>
<a href="https://example.test/ok" id="fine">a fine link</a>
<div style="background-image: url({base}/inline-style)">styled</div>
<form action="{base}/form" method="post"><input name="q" value="secret"><button>Go</button></form>
<iframe src="{base}/frame"></iframe>
<svg><image href="{base}/svg-image"/><script>alert('svg')</script></svg>
<video poster="{base}/poster" src="{base}/video"></video>
<object data="{base}/object"></object>
</body></html>"""


async def test_hostile_html_runs_nothing_and_loads_nothing(
    web_app: WebApp, mail_users: Person, page: Page, look: Look
) -> None:
    watchtower = Watchtower()
    requests: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []

    def on_request(request: Request) -> None:
        requests.append(request.url)

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    def on_console(console: ConsoleMessage) -> None:
        if console.type == "error":
            errors.append(console.text)

    page.on("request", on_request)
    page.on("dialog", on_dialog)
    page.on("console", on_console)
    with watchtower.running():
        await sign_in(page, mail_users)
        await open_mailbox(page, ANNA)
        html = HOSTILE.format(base=watchtower.base)
        await deliver(web_app, message("Hostile", text="Hostile hello (text)", html=html))
        await row(page, "Hostile").get_by_role("link").click()

        frame_element = page.locator("iframe[title^='Message from']")
        await expect(frame_element).to_have_attribute(
            "sandbox", "allow-same-origin allow-popups allow-popups-to-escape-sandbox"
        )
        body = page.frame_locator("iframe[title^='Message from']")
        await expect(body.get_by_text("Hostile hello", exact=True)).to_be_visible()
        frame = next(f for f in page.frames if "/body" in f.url)
        left = await frame.evaluate(
            """() => ({
              active: document.querySelectorAll('script, form, iframe, object, embed, meta[http-equiv], link').length,
              handlers: [...document.querySelectorAll('*')].flatMap(e => [...e.attributes])
                .filter(a => a.name.startsWith('on')).length,
              javascript: [...document.querySelectorAll('[href], [src]')]
                .filter(e => /^\\s*javascript:/i.test(e.getAttribute('href') || e.getAttribute('src') || '')).length,
              remote: [...document.querySelectorAll('[src], [href], [poster]')]
                .filter(e => /127\\.0\\.0\\.1:"""
            + str(watchtower.port)
            + """/.test(e.outerHTML)).length,
              styles: [...document.querySelectorAll('style, [style]')]
                .filter(e => /url\\(/i.test(e.textContent + (e.getAttribute('style') || ''))).length,
              fine: document.querySelector('#fine, a[href="https://example.test/ok"]')?.getAttribute('target'),
            })"""
        )
        assert left == {
            "active": 0,
            "handlers": 0,
            "javascript": 0,
            "remote": 0,
            "styles": 0,
            "fine": "_blank",
        }, left
        # Remote images: blocked until asked for; even then never fetched from the page.
        await expect(page.get_by_text("Images from the sender are hidden")).to_be_visible()
        await look(page, "hostile", dark=False)
        await page.get_by_role("button", name="Show images").click()
        await expect(body.get_by_text("Hostile hello", exact=True)).to_be_visible()
        await page.wait_for_timeout(1500)

    assert dialogs == [], dialogs
    assert watchtower.hits == [], watchtower.hits
    assert [url for url in requests if urlsplit(url).port == watchtower.port] == []
    assert not [e for e in errors if "Content Security Policy" in e and "/body" not in e], errors


async def test_compose_with_attachment_reaches_the_other_mailbox(
    web_app: WebApp,
    mail_users: Person,
    page: Page,
    look: Look,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    await sign_in(page, mail_users)
    await open_mailbox(page, ANNA)
    window = await write(page, to=BEN, subject="Contract draft", body="Please sign the attached.")
    # The mailbox's signature is in the editor, ready to edit.
    await expect(window.get_by_role("textbox", name="Message body")).to_contain_text(ANNA_SIGNATURE)
    await window.get_by_role("button", name="Cc Bcc").click()
    bcc = window.get_by_role("combobox", name="Bcc")
    await bcc.fill(f"sales@{ANNA.split('@')[1]}")
    await bcc.press("Enter")
    document = tmp_path_factory.mktemp("upload") / "contract.pdf"
    document.write_bytes(b"%PDF-1.4\n" + b"0" * 300_000 + b"\n%%EOF\n")
    await window.locator("input[type=file]").set_input_files(str(document))
    await expect(window.get_by_role("list", name="Attachments")).to_contain_text("contract.pdf")
    await expect(window.get_by_label("Uploading contract.pdf")).to_have_count(0)
    await expect(window.get_by_role("list", name="Attachments").get_by_role("alert")).to_have_count(
        0
    )
    await look(page, "compose")
    await window.get_by_role("button", name="Send", exact=True).click()
    await expect(page.get_by_role("status").filter(has_text="Message sent.")).to_be_visible()
    await expect(window).to_have_count(0)

    def arrived() -> None:
        with imap_session(web_app, BEN) as imap:
            received = fetch(imap, "INBOX", "Contract draft")
        assert received.get_content_type() == "multipart/mixed"
        assert "Bcc" not in received and "sales@" not in received.as_string()
        parts = {part.get_content_type(): part for part in received.walk()}
        assert "text/plain" in parts and "text/html" in parts, list(parts)
        plain = parts["text/plain"].get_content()
        # What was typed comes first, then the signature after its "-- " line.
        assert plain.index("Please sign the attached.") < plain.index(ANNA_SIGNATURE), plain
        assert ANNA_SIGNATURE in parts["text/html"].get_content()
        attachment = next(received.iter_attachments())
        assert attachment.get_filename() == "contract.pdf"
        assert attachment.get_content() == document.read_bytes()

    await eventually(arrived, timeout=30, what="the message in ben's Inbox over IMAP")

    # Sent shows it with each recipient's delivery.
    await folder_link(page, "Sent").click()
    await row(page, "Contract draft").get_by_role("link").click()
    delivery = page.get_by_role("region", name="Delivery status")
    await expect(delivery).to_contain_text(BEN)


async def test_drafts_save_while_typing_and_are_replaced_in_place(
    web_app: WebApp, mail_users: Person, page: Page
) -> None:
    await sign_in(page, mail_users)
    await open_mailbox(page, ANNA)
    window = await write(page, to=BEN, subject="Autosaved plan", body="First thoughts")
    await expect(window.get_by_role("status")).to_have_text("Draft saved", timeout=15_000)

    def one_draft(text: str) -> Callable[[], None]:
        def check() -> None:
            with imap_session(web_app, ANNA) as imap:
                assert len(find(imap, "Drafts", "Autosaved plan")) == 1
                draft = fetch(imap, "Drafts", "Autosaved plan")
            assert text in draft.as_string(), draft.as_string()[:2000]

        return check

    await eventually(one_draft("First thoughts"), what="the draft over IMAP")
    await window.get_by_role("textbox", name="Message body").press("End")
    await page.keyboard.type(" and second thoughts")
    await expect(window.get_by_role("status")).to_have_text("Draft saved", timeout=15_000)
    await eventually(one_draft("second thoughts"), what="the replaced draft over IMAP")

    # Closing keeps it; Drafts lists it; opening it continues it.
    await window.get_by_role("button", name="Close (saves a draft)").click()
    await folder_link(page, "Drafts").click()
    await row(page, "Autosaved plan").get_by_role("link").click()
    await page.get_by_role("button", name="Edit draft").click()
    window = compose_window(page)
    await expect(window.get_by_label("Subject")).to_have_value("Autosaved plan")
    await expect(window.get_by_role("textbox", name="Message body")).to_contain_text(
        "second thoughts"
    )


async def test_scheduled_mail_waits_in_the_outbox_and_can_be_cancelled(
    web_app: WebApp, mail_users: Person, page: Page
) -> None:
    await sign_in(page, mail_users)
    await open_mailbox(page, ANNA)
    window = await write(page, to=BEN, subject="Monday reminder", body="Standup at nine.")
    await window.get_by_role("button", name="More send options").click()
    await window.get_by_role("button", name="Tomorrow morning").click()
    await expect(page.get_by_role("status").filter(has_text="Scheduled for")).to_be_visible()

    await folder_link(page, "Outbox").click()
    await row(page, "Monday reminder").get_by_role("link").click()
    await expect(page.get_by_text("Waiting in the Outbox to be sent.")).to_be_visible()
    with imap_session(web_app, ANNA) as imap:
        assert len(find(imap, "Outbox", "Monday reminder")) == 1
        assert find(imap, "Sent", "Monday reminder") == []

    await page.get_by_role("button", name="Reschedule").click()
    later = (datetime.now() + timedelta(days=3)).strftime("%Y-%m-%dT09:30")
    await page.get_by_label("Send at").fill(later)
    await page.get_by_role("button", name="Save time").click()
    await expect(page.get_by_role("status").filter(has_text="Rescheduled for")).to_be_visible()
    await page.get_by_role("button", name="Cancel sending").click()
    await expect(page.get_by_role("status").filter(has_text="back in Drafts")).to_be_visible()
    await expect(row(page, "Monday reminder")).to_have_count(0)

    def back_in_drafts() -> None:
        with imap_session(web_app, ANNA) as imap:
            assert find(imap, "Outbox", "Monday reminder") == []
            assert len(find(imap, "Drafts", "Monday reminder")) == 1

    await eventually(back_in_drafts, what="the cancelled message back in Drafts")


async def test_undo_send_brings_the_message_back(
    web_app: WebApp, mail_users: Person, page: Page
) -> None:
    await sign_in(page, mail_users)
    await open_mailbox(page, ANNA)
    window = await write(page, to=BEN, subject="Oops wrong person", body="Not for you.")
    await window.get_by_role("button", name="Send", exact=True).click()
    toast = page.get_by_role("status").filter(has_text="Message sent.")
    await toast.get_by_role("button", name="Undo").click()
    window = compose_window(page)
    await expect(window.get_by_label("Subject")).to_have_value("Oops wrong person")
    await expect(window.get_by_title(BEN)).to_be_visible()
    await window.get_by_role("button", name="Close (saves a draft)").click()
    await asyncio.sleep(7)  # past the undo window: a message not undone would be on its way
    with imap_session(web_app, BEN) as imap:
        assert find(imap, "INBOX", "Oops wrong person") == []
    with imap_session(web_app, ANNA) as imap:
        assert len(find(imap, "Drafts", "Oops wrong person")) == 1
        assert find(imap, "Outbox", "Oops wrong person") == []


async def test_flags_and_moves_are_the_same_over_imap_both_ways(
    web_app: WebApp, mail_users: Person, page: Page
) -> None:
    for subject in ("Alpha", "Bravo", "Charlie"):
        await deliver(web_app, message(subject))
    await sign_in(page, mail_users)
    await open_mailbox(page, ANNA)
    await expect(row(page, "Charlie")).to_be_visible()

    # Browser → IMAP: star, read, archive, a folder of our own.
    await row(page, "Alpha").get_by_role("button", name="Not starred").click()
    await row(page, "Bravo").get_by_role("link").click()
    await expect(page.get_by_role("heading", name="Bravo")).to_be_visible()

    def browser_changes_seen() -> None:
        with imap_session(web_app, ANNA) as imap:
            assert "\\Flagged" in flags(imap, "INBOX", "Alpha")
            assert "\\Seen" not in flags(imap, "INBOX", "Alpha")
            assert "\\Seen" in flags(imap, "INBOX", "Bravo")

    await eventually(browser_changes_seen, what="star and read over IMAP")
    await (
        page.get_by_role("region", name="Conversation")
        .get_by_role("button", name="Archive")
        .click()
    )
    await expect(row(page, "Bravo")).to_have_count(0)

    def archived() -> None:
        with imap_session(web_app, ANNA) as imap:
            assert find(imap, "INBOX", "Bravo") == []
            assert len(find(imap, "Archive", "Bravo")) == 1

    await eventually(archived, what="Bravo in Archive over IMAP")

    # IMAP → browser: read and flagged, then moved away, with the page open.
    with imap_session(web_app, ANNA) as imap:
        uid = find(imap, "INBOX", "Charlie")[0]
        imap.uid("STORE", uid, "+FLAGS", "(\\Seen \\Flagged)")
    charlie = row(page, "Charlie")
    await expect(charlie.get_by_role("button", name="Starred")).to_be_visible()
    await expect(charlie).not_to_contain_text("Unread")
    with imap_session(web_app, ANNA) as imap:
        imap.select("INBOX")
        uid = find(imap, "INBOX", "Charlie")[0]
        status, _ = imap.uid("MOVE", uid, "Archive")
        assert status == "OK"
    await expect(row(page, "Charlie")).to_have_count(0)
    await folder_link(page, "Archive").click()
    await expect(row(page, "Charlie")).to_be_visible()
    await expect(row(page, "Bravo")).to_be_visible()

    # Moved by mistake: the toast's Undo puts it back, over IMAP too.
    await row(page, "Charlie").get_by_role("checkbox").check()
    await (
        page.get_by_role("toolbar", name="Selected conversations")
        .get_by_role("button", name="Move to")
        .click()
    )
    await page.get_by_role("menuitem", name="Inbox").click()
    await expect(row(page, "Charlie")).to_have_count(0)
    await (
        page.get_by_role("status")
        .filter(has_text="moved to inbox")
        .get_by_role("button", name="Undo")
        .click()
    )
    await expect(row(page, "Charlie")).to_be_visible()

    def back_in_archive() -> None:
        with imap_session(web_app, ANNA) as imap:
            assert find(imap, "INBOX", "Charlie") == []
            assert len(find(imap, "Archive", "Charlie")) == 1

    await eventually(back_in_archive, what="Charlie back in Archive over IMAP")


async def test_search_with_operators(
    web_app: WebApp, mail_users: Person, page: Page, look: Look
) -> None:
    await deliver(
        web_app,
        message("Invoice 42", attachment=("invoice.txt", b"total 42\n", "text/plain")),
    )
    await deliver(
        web_app, message("Lunch", sender="Dave Ng <dave@outside.test>", text="Pizza on Friday")
    )
    await deliver(web_app, message("Holiday photos", text="From the beach"))
    await sign_in(page, mail_users)
    await open_mailbox(page, ANNA)
    await expect(row(page, "Holiday photos")).to_be_visible()
    search = page.get_by_role("searchbox", name="Search mail")

    async def results(query: str, expected: list[str]) -> None:
        await search.fill(query)
        await search.press("Enter")
        await expect(page).to_have_url(re.compile(r"/search\?q="))
        listing = page.get_by_role("list", name="Conversations")
        for subject in expected:
            await expect(row(page, subject)).to_be_visible()
        await expect(listing.get_by_role("listitem")).to_have_count(len(expected))

    await results("from:carol", ["Invoice 42", "Holiday photos"])
    await results("has:attachment", ["Invoice 42"])
    await results("pizza", ["Lunch"])
    await results("after:2020-01-01 is:unread from:dave", ["Lunch"])
    await results("in:Inbox before:2020-01-01", [])
    await results('subject:"holiday photos" from:carol', ["Holiday photos"])
    await look(page, "search")
    await search.fill("before:yesterday")
    await search.press("Enter")
    await expect(page.get_by_role("alert")).to_have_text("before: takes a date as YYYY-MM-DD.")
    await results("nothing-matches-this", [])
    await expect(page.get_by_text("No conversations match")).to_be_visible()


async def test_keyboard_shortcuts(web_app: WebApp, mail_users: Person, page: Page) -> None:
    for subject in ("First", "Second", "Third"):
        await deliver(web_app, message(subject))
    await sign_in(page, mail_users)
    await open_mailbox(page, ANNA)
    await expect(row(page, "First")).to_be_visible()
    links = page.get_by_role("list", name="Conversations").get_by_role("link")

    # Newest first: Third, Second, First. j and k move the cursor; o opens.
    await page.keyboard.press("j")
    await expect(links.nth(1)).to_be_focused()
    await page.keyboard.press("j")
    await expect(links.nth(2)).to_be_focused()
    await page.keyboard.press("k")
    await expect(links.nth(1)).to_be_focused()
    await page.locator("body").press("o")
    await expect(page.get_by_role("heading", name="Second")).to_be_visible()
    await page.keyboard.press("s")
    await expect(row(page, "Second").get_by_role("button", name="Starred")).to_be_visible()
    await page.keyboard.press("j")
    await expect(page.get_by_role("heading", name="First")).to_be_visible()
    await page.keyboard.press("r")
    window = compose_window(page)
    await expect(window.get_by_label("Subject")).to_have_value("Re: First")
    await page.keyboard.press("Escape")
    await expect(window).to_have_count(0)
    await page.keyboard.press("e")
    await expect(row(page, "First")).to_have_count(0)
    # Archiving the last conversation opened the one before it; Escape goes back to the list.
    await expect(page.get_by_role("heading", name="Second")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page).to_have_url(re.compile(r"/mail/\d+/\d+$"))
    await expect(page.get_by_role("heading", name="Second")).to_have_count(0)
    await page.keyboard.press("#")
    await expect(
        page.get_by_role("list", name="Conversations").get_by_role("listitem")
    ).to_have_count(1)
    await page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(help_dialog).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(help_dialog).to_have_count(0)
    await page.keyboard.press("/")
    await expect(page.get_by_role("searchbox", name="Search mail")).to_be_focused()
    await page.keyboard.press("Escape")
    await page.keyboard.press("c")
    await expect(compose_window(page)).to_be_visible()
    await expect(compose_window(page).get_by_role("combobox", name="To")).to_be_focused()


async def test_folders_are_made_nested_renamed_and_deleted_as_imap_sees_them(
    web_app: WebApp, mail_users: Person, page: Page
) -> None:
    await sign_in(page, mail_users)
    await open_mailbox(page, ANNA)

    async def new_folder(name: str, inside: str | None = None) -> None:
        await page.get_by_role("button", name="New folder").click()
        dialog = page.get_by_role("dialog", name="New folder")
        await dialog.get_by_label("Folder name").fill(name)
        if inside:
            await dialog.get_by_label("Inside").select_option(inside)
        await dialog.get_by_role("button", name="Create").click()
        await expect(dialog).to_have_count(0)

    await new_folder("Projects")
    await new_folder("2026", inside="Projects")
    await expect(folder_link(page, "2026")).to_be_visible()

    def imap_folders() -> list[str]:
        with imap_session(web_app, ANNA) as imap:
            status, listed = imap.list()
        assert status == "OK"
        return [
            line.decode().rsplit(" ", 1)[-1].strip('"')
            for line in listed
            if isinstance(line, bytes)
        ]

    def has(*names: str) -> Callable[[], None]:
        def check() -> None:
            found = imap_folders()
            for name in names:
                assert name in found, found

        return check

    await eventually(has("Projects", "Projects/2026"), what="the new folders over IMAP")
    await folder_link(page, "2026").click()
    await page.get_by_role("button", name="Rename Projects/2026").click()
    dialog = page.get_by_role("dialog", name="Rename folder")
    await dialog.get_by_label("Folder name").fill("2027")
    await dialog.get_by_role("button", name="Rename").click()
    await expect(folder_link(page, "2027")).to_be_visible()
    await eventually(has("Projects/2027"), what="the renamed folder over IMAP")
    await page.get_by_role("button", name="Delete Projects/2027").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete folder").click()
    await expect(folder_link(page, "2027")).to_have_count(0)

    def gone() -> None:
        assert "Projects/2027" not in imap_folders()

    await eventually(gone, what="the deleted folder gone over IMAP")

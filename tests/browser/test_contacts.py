"""The contacts pages in the browser: an owner imports a CSV file whose email column needs mapping
and which has bad rows (the bad rows are reported by line, the good ones imported onto a new
list), searches, edits a contact and downloads the export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.web_app import Person, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

# "Mail" is no spelling the server guesses: the person maps it. Lines 4 and 7 are bad.
CSV = (
    "Mail,First name,Last name,Organisation,Labels,Plan,Status\r\n"
    "ann@example.com,Ann,Lee,Acme,customer;vip,pro,subscribed\r\n"
    "bob@example.com,Bob,Stone,Globex,customer,free,unsubscribed\r\n"
    "not-an-address,Bad,Row,Nowhere,,free,\r\n"
    "cid@example.com,Cid,Moe,Initech,trial,pro,bounced\r\n"
    "dee@example.com,Dee,Roe,Umbrella,,free,complained\r\n"
    ",No,Email,Nowhere,,,\r\n"
    "eve@example.com,Eve,Park,Acme,customer,business,\r\n"
    "fay@example.com,Fay,Hill,Hooli,,free,\r\n"
)


async def test_import_search_edit_and_export(
    page: Page, acme: Person, tmp_path: Path, look: Callable[..., Awaitable[None]]
) -> None:
    await sign_in(page, acme)
    await page.get_by_role("link", name="Contacts").first.click()
    await expect(page.get_by_role("heading", level=1, name="Contacts")).to_be_visible()
    await expect(page.get_by_role("heading", name="No contacts yet")).to_be_visible()

    # Step 1: the file.
    await page.get_by_role("link", name="Import CSV").click()
    await expect(page.get_by_role("heading", level=1, name="Import contacts")).to_be_visible()
    await look(page, "wizard-1-upload")
    upload = tmp_path / "leads.csv"
    upload.write_text(CSV, encoding="utf-8")
    await page.locator("#csv-file").set_input_files(str(upload))

    # Step 2: no column is the email yet; the server's preview says so until one is mapped.
    mapping = page.get_by_role("table", name="Column mapping")
    await expect(mapping).to_be_visible()
    await expect(page.get_by_role("alert")).to_contain_text("No column holds the email address")
    await expect(page.get_by_role("button", name="Next")).to_be_disabled()
    await page.get_by_label("Import Mail as").select_option("email")
    await page.get_by_label("Import Organisation as").select_option("company")
    await page.get_by_label("Import Labels as").select_option("tags")
    preview = page.get_by_role("table", name="Preview of the first rows")
    await expect(
        preview.get_by_role("row", name=re.compile(r"^2 ann@example\.com"))
    ).to_be_visible()
    await expect(preview).to_contain_text("Not imported:")
    await expect(preview).to_contain_text("plan: pro")
    await look(page, "wizard-2-mapping")
    await page.get_by_role("button", name="Next").click()

    # Step 3: a new list for the imported contacts.
    await page.get_by_placeholder("Or name a new list").fill("Spring leads")
    await page.get_by_role("button", name="Create list").click()
    await expect(page.get_by_label("Add the contacts to a list")).to_have_value(re.compile(r"\d+"))
    await look(page, "wizard-3-options")
    await page.get_by_role("button", name="Start import").click()

    # Step 4: progress, then the summary with each bad row's line and reason.
    await expect(page.get_by_role("heading", name="Import finished")).to_be_visible()
    await expect(page.get_by_role("progressbar", name="Import progress")).to_have_attribute(
        "aria-valuenow", "100"
    )
    summary = page.locator("dl")
    await expect(summary.get_by_text("Added")).to_be_visible()
    await expect(summary.locator("div", has_text="Added").locator("dd")).to_have_text("6")
    await expect(summary.locator("div", has_text="Not imported").locator("dd")).to_have_text("2")
    errors = page.get_by_role("table", name="Rows not imported")
    await expect(errors.get_by_role("row")).to_have_count(3)  # the header and two rows
    await expect(errors.get_by_role("row").nth(1)).to_contain_text("4")
    await expect(errors.get_by_role("row").nth(2)).to_contain_text("7")
    await expect(errors.get_by_role("row").nth(2)).to_contain_text("empty")
    await look(page, "wizard-4-summary")

    # The contacts: six, on the new list, with their statuses.
    await page.get_by_role("link", name="View contacts").click()
    table = page.get_by_role("table", name="Contacts")
    await expect(table.get_by_role("row")).to_have_count(7)
    cid = table.get_by_role("row", name=re.compile("cid@example.com"))
    await expect(cid).to_contain_text("Bounced")
    await expect(cid).to_contain_text("Initech")
    await expect(cid).to_contain_text("Spring leads")
    await expect(page.get_by_label("List", exact=True)).to_contain_text("Spring leads (6)")
    await look(page, "contacts")

    # The list, renamed.
    await page.get_by_label("List", exact=True).select_option(label="Spring leads (6)")
    await expect(page.get_by_role("heading", name=re.compile("Spring leads"))).to_contain_text(
        "6 contacts"
    )
    await page.get_by_role("button", name="Rename").click()
    rename = page.get_by_role("dialog", name="Rename Spring leads")
    await rename.get_by_label("List name").fill("Spring 2027")
    await rename.get_by_role("button", name="Rename").click()
    await expect(rename).to_be_hidden()
    await expect(page.get_by_role("heading", name=re.compile("Spring 2027"))).to_be_visible()
    await expect(cid).to_contain_text("Spring 2027")
    await page.get_by_label("List", exact=True).select_option("")

    # A second list, given two selected contacts, then deleted (its contacts stay).
    await page.get_by_role("button", name="New list").click()
    new_list = page.get_by_role("dialog", name="New list")
    await new_list.get_by_label("List name").fill("VIPs")
    await new_list.get_by_role("button", name="Create list").click()
    await expect(page.get_by_role("heading", name=re.compile("VIPs"))).to_contain_text("0 contacts")
    await page.get_by_label("List", exact=True).select_option("")
    await table.get_by_label("Select ann@example.com").check()
    await table.get_by_label("Select eve@example.com").check()
    await expect(page.get_by_text("2 contacts selected")).to_be_visible()
    await look(page, "contacts-selected")
    await page.get_by_label("List to add them to").select_option(label="VIPs")
    await page.get_by_role("button", name="Add to list").click()
    await expect(page.get_by_text("2 contacts selected")).to_be_hidden()
    ann = table.get_by_role("row", name=re.compile("ann@example.com"))
    await expect(ann).to_contain_text("Spring 2027, VIPs")
    await page.get_by_label("List", exact=True).select_option(label="VIPs (2)")
    await expect(table.get_by_role("row")).to_have_count(3)
    await page.get_by_role("button", name="Delete list").click()
    await (
        page.get_by_role("dialog", name="Delete VIPs?")
        .get_by_role("button", name="Delete list")
        .click()
    )
    await expect(page.get_by_label("List", exact=True)).not_to_contain_text("VIPs")
    await expect(table.get_by_role("row")).to_have_count(7)
    await expect(ann).not_to_contain_text("VIPs")

    # A status filter and a search.
    await page.get_by_label("Status").select_option("complained")
    await expect(table.get_by_role("row")).to_have_count(2)
    await expect(table).to_contain_text("dee@example.com")
    await page.get_by_label("Status").select_option("")
    await page.get_by_label("Search contacts").fill("acme")
    await expect(table.get_by_role("row")).to_have_count(3)  # Ann and Eve of Acme
    # A tag of a contact filters by that tag.
    await page.get_by_role("button", name="vip", exact=True).click()
    await expect(table.get_by_role("row")).to_have_count(2)
    await expect(table).to_contain_text("ann@example.com")
    await page.get_by_role("button", name="Stop filtering by tag vip").click()
    await expect(table.get_by_role("row")).to_have_count(3)
    await page.get_by_label("Search contacts").fill("INITECH")
    await expect(table.get_by_role("row")).to_have_count(2)

    # Edit the one found.
    await page.get_by_role("button", name="Edit cid@example.com").click()
    dialog = page.get_by_role("dialog", name="Edit cid@example.com")
    await expect(dialog.get_by_label("First name")).to_have_value("Cid")
    await dialog.get_by_label("First name").fill("Cyd")
    await dialog.get_by_label("Tags").fill("trial, partner")
    await look(page, "edit-dialog")
    await dialog.get_by_role("button", name="Save changes").click()
    await expect(dialog).to_be_hidden()
    await expect(table.get_by_role("row", name=re.compile("cid@example.com"))).to_contain_text(
        "Cyd Moe"
    )
    await expect(table).to_contain_text("partner")

    # The export is a download of what the filters show, from our server.
    await page.get_by_label("Search contacts").fill("")
    await expect(table.get_by_role("row")).to_have_count(7)
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Export CSV").click()
    download = await download_info.value
    assert download.suggested_filename == "contacts.csv"
    saved = tmp_path / "export.csv"
    await download.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert [r["email"] for r in rows] == [
        "ann@example.com",
        "bob@example.com",
        "cid@example.com",
        "dee@example.com",
        "eve@example.com",
        "fay@example.com",
    ]
    cyd = rows[2]
    assert (cyd["first_name"], cyd["status"], cyd["tags"], cyd["plan"]) == (
        "Cyd",
        "bounced",
        "trial,partner",
        "pro",
    )

    # A contact added by hand, and one deleted.
    await page.get_by_role("button", name="Add contact").click()
    add = page.get_by_role("dialog", name="Add a contact")
    await add.get_by_label("Email").fill("ann@example.com")
    await add.get_by_role("button", name="Add contact").click()
    await expect(add.get_by_role("alert")).to_contain_text("already a contact")
    await add.get_by_label("Email").fill("gus@example.com")
    await add.get_by_label("Company").fill("Vandelay")
    await add.get_by_role("button", name="Add contact").click()
    await expect(add).to_be_hidden()
    await expect(table.get_by_role("row", name=re.compile("gus@example.com"))).to_contain_text(
        "Vandelay"
    )
    await page.get_by_role("button", name="Delete fay@example.com").click()
    confirm = page.get_by_role("dialog", name="Delete fay@example.com?")
    await confirm.get_by_role("button", name="Delete contact").click()
    await expect(table.get_by_role("row", name=re.compile("fay@example.com"))).to_have_count(0)
    await expect(table.get_by_role("row")).to_have_count(7)

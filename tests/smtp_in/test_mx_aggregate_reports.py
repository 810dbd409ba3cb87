"""DMARC aggregate and TLS reports arriving at the report addresses every hosted domain publishes
(rua=mailto:dmarc@<domain>, rua=mailto:tls-reports@<domain>), over real sockets: sent to the MX
with smtplib the way Google, Microsoft, Yahoo and an RFC 8460 reporter send them, then read back
through GET /api/domains/{name}/reports and `mailmark report list`.

Hostile reports (entity expansion, external entities, a 100 MB gzip bomb, zip bombs, too many
records, broken XML) are refused with 550 5.6.0 within bounded memory, stored as failed with the
reason, and the session goes on.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from mailmark.bootstrap import Listeners
from mailmark.config import Settings
from tests.core.aggregate_report_samples import (
    billion_laughs,
    external_entity,
    google_report,
    gzip_bomb,
    gzip_report,
    many_records_xml,
    microsoft_report,
    plain_report,
    tls_report,
    yahoo_report,
    zip_bomb,
    zip_report,
)
from tests.support.serve import cli_environment, mailmark
from tests.support.web import ApiClient
from tests.support.world import World, stored_copies

DMARC = "dmarc@acme.test"
TLS = "tls-reports@acme.test"
# What handling one hostile report may allocate, server and client together: the message itself
# (~150 KB), its decoded attachment, parser state and a 64 KiB inflate window, far from 100 MB.
HOSTILE_PEAK = 24 * 1024 * 1024


@pytest.fixture
async def smtp(mx_port: int) -> AsyncIterator[aiosmtplib.SMTP]:
    """One session of a reporter's MTA, used for every message of the test."""
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=mx_port,
        start_tls=False,
        timeout=60,
        local_hostname="mx.reporter.test",
    )
    await client.connect()
    try:
        yield client
    finally:
        await client.quit()


async def send(
    client: aiosmtplib.SMTP, sender: str, recipients: list[str], data: bytes
) -> dict[str, aiosmtplib.SMTPResponse]:
    errors, _ = await client.sendmail(sender, recipients, data)
    return errors


async def refused(client: aiosmtplib.SMTP, recipients: list[str], data: bytes) -> tuple[int, str]:
    """Send `data`; the DATA reply of a refusal (code, text), asserting it was one."""
    with pytest.raises(aiosmtplib.SMTPDataError) as refusal:
        await send(client, "reports@hostile.example", recipients, data)
    return refusal.value.code, refusal.value.message


async def overview(owner_client: ApiClient) -> dict[str, object]:
    response = await owner_client.get("/api/domains/acme.test/reports")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_reports_from_google_microsoft_yahoo_and_a_tls_reporter_are_shown_per_source(
    world: World, smtp: aiosmtplib.SMTP, owner_client: ApiClient, listeners: Listeners
) -> None:
    empty = await overview(owner_client)
    assert (empty["reports"], empty["sources"], empty["recent"]) == (0, [], [])

    # Before reports were accepted, both addresses answered 550 5.1.1 at RCPT.
    assert (
        await send(
            smtp, "noreply-dmarc-support@google.com", [DMARC], google_report(DMARC, "acme.test")
        )
        == {}
    )
    assert (
        await send(smtp, "dmarcreport@microsoft.com", [DMARC], microsoft_report(DMARC, "acme.test"))
        == {}
    )
    # Reporters send to the address with any case and a +tag as they found it in DNS.
    assert (
        await send(
            smtp,
            "noreply@dmarc.yahoo.com",
            ["DMARC+rua@Acme.test"],
            yahoo_report(DMARC, "acme.test"),
        )
        == {}
    )
    assert (
        await send(smtp, "tls-reporting@company-x.example", [TLS], tls_report(TLS, "acme.test"))
        == {}
    )

    body = await overview(owner_client)
    assert (body["domain"], body["reports"], body["failedReports"]) == ("acme.test", 4, 0)
    # 203.0.113.25 is this server: Google saw 12 and Microsoft 5 messages, all aligned.
    assert body["sources"] == [
        {
            "sourceIp": "203.0.113.25",
            "messages": 17,
            "dmarcPass": 17,
            "spfPass": 17,
            "spfAligned": 17,
            "dkimPass": 17,
            "dkimAligned": 17,
            "quarantined": 0,
            "rejected": 0,
            "reporters": 2,
        },
        {
            "sourceIp": "198.51.100.7",
            "messages": 3,
            "dmarcPass": 0,
            "spfPass": 0,
            "spfAligned": 0,
            "dkimPass": 0,
            "dkimAligned": 0,
            "quarantined": 3,
            "rejected": 0,
            "reporters": 1,
        },
        # A mailing list forwarded 2 messages: SPF passed for the list, not aligned; the
        # author's DKIM signature survived, so DMARC passed. The address is canonical.
        {
            "sourceIp": "2001:db8::42",
            "messages": 2,
            "dmarcPass": 2,
            "spfPass": 2,
            "spfAligned": 0,
            "dkimPass": 2,
            "dkimAligned": 2,
            "quarantined": 0,
            "rejected": 0,
            "reporters": 1,
        },
        {
            "sourceIp": "192.0.2.99",
            "messages": 1,
            "dmarcPass": 0,
            "spfPass": 0,
            "spfAligned": 0,
            "dkimPass": 0,
            "dkimAligned": 0,
            "quarantined": 1,
            "rejected": 0,
            "reporters": 1,
        },
    ]
    totals = body["totals"]
    assert isinstance(totals, dict)
    assert (totals["messages"], totals["dmarcPass"], totals["quarantined"]) == (23, 19, 4)
    assert body["tls"] == {
        "successfulSessions": 5326,
        "failedSessions": 303,
        "failures": [
            {
                "resultType": "starttls-not-supported",
                "receivingMx": "mx2.mail.acme.test",
                "sessions": 200,
            },
            {
                "resultType": "certificate-expired",
                "receivingMx": "mx1.mail.acme.test",
                "sessions": 100,
            },
            {
                "resultType": "validation-failure",
                "receivingMx": "mx-backup.mail.acme.test",
                "sessions": 3,
            },
        ],
    }
    recent = body["recent"]
    assert isinstance(recent, list)
    by_org = {r["organization"]: r for r in recent}
    assert set(by_org) == {"google.com", "Enterprise Outlook", "Yahoo", "Company-X"}
    google = by_org["google.com"]
    assert google["reportId"] == "13790208385467380422"
    assert (google["begin"], google["end"]) == ("2024-05-01T00:00:00Z", "2024-05-01T23:59:59Z")
    assert google["policy"]["p"] == "quarantine" and google["messages"] == 15
    assert by_org["Company-X"]["kind"] == "tls" and by_org["Company-X"]["messages"] == 5629
    # No mailbox is called dmarc@ or tls-reports@: nothing was filed in one.
    assert await stored_copies(world.services, world.sales) == []

    # The same report again (reporters retry): accepted, stored once.
    assert (
        await send(
            smtp, "noreply-dmarc-support@google.com", [DMARC], google_report(DMARC, "acme.test")
        )
        == {}
    )
    again = await overview(owner_client)
    assert again["reports"] == 4 and again["sources"] == body["sources"]

    # The CLI reads the same reports from the same database.
    settings: Settings = world.services.settings
    env = cli_environment(settings.data_dir, settings.database_url)
    text = await mailmark(env, "report", "list", "acme.test", cwd=Path(settings.data_dir).parent)
    assert text.code == 0, text.err
    assert "Reports for acme.test: 4 received, 0 unreadable." in text.out
    assert "DMARC: 23 messages, 83% pass" in text.out
    assert "203.0.113.25" in text.out and "17" in text.out
    assert "TLS: 5326 sessions succeeded, 303 failed." in text.out
    assert "starttls-not-supported  mx2.mail.acme.test" in text.out
    as_json = await mailmark(
        env, "report", "list", "acme.test", "--json", cwd=Path(settings.data_dir).parent
    )
    assert as_json.code == 0, as_json.err
    data = as_json.json
    assert isinstance(data, dict)
    assert data["sources"] == body["sources"] and data["tls"] == body["tls"]


async def test_a_mailbox_named_dmarc_gets_the_report_too(
    world: World, smtp: aiosmtplib.SMTP, owner_client: ApiClient
) -> None:
    mailbox = await world.services.mailboxes.create(DMARC)
    assert (
        await send(smtp, "noreply@dmarc.yahoo.com", [DMARC], yahoo_report(DMARC, "acme.test")) == {}
    )
    [copy] = await stored_copies(world.services, mailbox)
    assert copy.folder == "INBOX" and copy.subject.startswith("Report Domain: acme.test")
    assert (await overview(owner_client))["reports"] == 1
    # A broken report to that mailbox is still delivered (the session answers 250), and the
    # report is stored as failed with the reason.
    assert (
        await send(smtp, "reports@hostile.example", [DMARC], plain_report(DMARC, b"<feedback>"))
        == {}
    )
    assert len(await stored_copies(world.services, mailbox)) == 2
    body = await overview(owner_client)
    assert body["failedReports"] == 1
    latest = body["recent"][0]
    assert latest["status"] == "failed" and "not well-formed XML" in latest["reason"]


async def test_report_addresses_of_unknown_domains_are_still_relay_denied(
    smtp: aiosmtplib.SMTP,
) -> None:
    await smtp.mail("reports@google.com")
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as relay:
        await smtp.rcpt("dmarc@elsewhere.test")
    assert relay.value.code == 554 and relay.value.message.startswith("5.7.1")
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as unknown:
        await smtp.rcpt("dmarc-reports@acme.test")
    assert unknown.value.code == 550 and unknown.value.message.startswith("5.1.1")
    await smtp.rset()


async def test_a_report_about_another_domain_is_refused(
    world: World, smtp: aiosmtplib.SMTP, owner_client: ApiClient
) -> None:
    code, text = await refused(smtp, [DMARC], google_report(DMARC, "victim.example"))
    assert code == 550 and text.startswith(
        "5.6.0 Report refused: The report is about victim.example"
    )
    # A subdomain's report belongs to the organisational domain (RFC 7489 §7.1).
    assert (
        await send(
            smtp,
            "noreply-dmarc-support@google.com",
            [DMARC],
            google_report(DMARC, "news.acme.test"),
        )
        == {}
    )
    body = await overview(owner_client)
    assert (body["reports"], body["failedReports"]) == (2, 1)


def gzip_bomb_report() -> bytes:
    message = EmailMessage()
    message["From"] = "reports@hostile.example"
    message["To"] = DMARC
    message["Subject"] = "Report"
    message.set_content("An aggregate report.")
    message.add_attachment(gzip_bomb(), maintype="application", subtype="gzip", filename="r.xml.gz")
    return message.as_bytes().replace(b"\n", b"\r\n")


HOSTILE = {
    "billion laughs": (lambda: plain_report(DMARC, billion_laughs()), "has a DOCTYPE"),
    "external entity": (lambda: plain_report(DMARC, external_entity()), "has a DOCTYPE"),
    "100 MB gzip bomb": (gzip_bomb_report, "larger than 20 MiB"),
    "100 MB zip bomb": (lambda: zip_report(DMARC, zip_bomb()), "larger than 20 MiB"),
    "zip bomb declaring 1 KiB": (lambda: zip_report(DMARC, zip_bomb(lie=True)), "corrupt"),
    "20,001 records": (
        lambda: gzip_report(DMARC, many_records_xml("acme.test", 20_001)),
        "more than 20000 records",
    ),
    "invalid XML": (
        lambda: plain_report(DMARC, b"<feedback><record></feedback>"),
        "not well-formed",
    ),
    "no report at all": (
        lambda: b"Subject: hello\r\n\r\nJust saying hi.\r\n",
        "No DMARC aggregate report",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_reports_are_refused_within_bounded_memory_and_the_session_goes_on(
    name: str, world: World, smtp: aiosmtplib.SMTP, owner_client: ApiClient
) -> None:
    build, reason = HOSTILE[name]
    data = build()
    tracemalloc.start()
    try:
        code, text = await refused(smtp, [DMARC], data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 550 and text.startswith("5.6.0 Report refused: "), text
    assert reason in text
    assert peak < HOSTILE_PEAK, f"{name}: {peak / 2**20:.1f} MiB"
    # The same session then delivers a good report.
    assert (
        await send(
            smtp, "noreply-dmarc-support@google.com", [DMARC], google_report(DMARC, "acme.test")
        )
        == {}
    )
    body = await overview(owner_client)
    assert (body["reports"], body["failedReports"]) == (2, 1)
    failed = [r for r in body["recent"] if r["status"] == "failed"]
    assert reason in failed[0]["reason"]


async def test_hostile_tls_reports_are_refused(world: World, smtp: aiosmtplib.SMTP) -> None:
    many = b"[" + b",\r\n".join([b"{}"] * 30_000) + b"]"
    for data, reason in [
        (many, "more than 20000 JSON objects"),
        (b'{"organization-name": "x"', "not valid JSON"),
        (b"[" * 30_000 + b"]" * 30_000, "more than 20000 JSON objects"),
    ]:
        message = (
            (
                f"From: x@hostile.example\r\nTo: {TLS}\r\nSubject: Report\r\nMIME-Version: 1.0\r\n"
                "Content-Type: application/tlsrpt+json\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
        code, text = await refused(smtp, [TLS], message)
        assert code == 550 and reason in text, text


async def test_the_cli_explains_an_empty_list_and_refuses_an_unknown_domain(world: World) -> None:
    settings: Settings = world.services.settings
    env = cli_environment(settings.data_dir, settings.database_url)
    cwd = Path(settings.data_dir).parent
    empty = await mailmark(env, "report", "list", "acme.test", cwd=cwd)
    assert empty.code == 0, empty.err
    assert empty.out.startswith("No reports for acme.test yet.")
    assert "dmarc@acme.test" in empty.out and "tls-reports@acme.test" in empty.out
    unknown = await mailmark(env, "report", "list", "nowhere.test", "--json", cwd=cwd)
    assert (unknown.code, unknown.json) == (1, {"error": "No domain nowhere.test here."})

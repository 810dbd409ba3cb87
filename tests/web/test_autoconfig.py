"""Client autoconfiguration and the MTA-STS policy, fetched over real HTTP and parsed back."""

from __future__ import annotations

import plistlib
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailmark.core.errors import InvalidInput
from mailmark.dns_tools.record_set import MailServer, mta_sts_policy
from mailmark.web.autoconfig import (
    MAX_AUTODISCOVER_REQUEST,
    OUTLOOK_RESPONSE_SCHEMA,
    parse_autodiscover_request,
)
from tests.support.world import HOSTNAME

THUNDERBIRD_PATHS = ["/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"]
AUTODISCOVER_PATHS = ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"]
RESPONSE_NS = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
OUTLOOK_NS = "{" + OUTLOOK_RESPONSE_SCHEMA + "}"


def autodiscover_request(address: str) -> bytes:
    root = ET.Element(
        "Autodiscover",
        {"xmlns": "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"},
    )
    request = ET.SubElement(root, "Request")
    ET.SubElement(request, "EMailAddress").text = address
    ET.SubElement(request, "AcceptableResponseSchema").text = OUTLOOK_RESPONSE_SCHEMA
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Autodiscover><Request><EMailAddress>&lol9;@acme.test</EMailAddress></Request></Autodiscover>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Autodiscover><Request><EMailAddress>&xxe;</EMailAddress></Request></Autodiscover>"""


def servers(
    provider: ET.Element, tag: str
) -> list[tuple[str | None, str | None, str | None, str | None]]:
    return [
        (s.get("type"), s.findtext("hostname"), s.findtext("port"), s.findtext("socketType"))
        for s in provider.findall(tag)
    ]


# --- Thunderbird ------------------------------------------------------------------------------


async def test_thunderbird_config_lists_imap_and_submission_with_tls(
    http: httpx.AsyncClient,
) -> None:
    for path in THUNDERBIRD_PATHS:
        response = await http.get(path, params={"emailaddress": "sales@acme.test"})

        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/xml")
        root = ET.fromstring(response.content)
        assert root.tag == "clientConfig" and root.get("version") == "1.1"
        provider = root.find("emailProvider")
        assert provider is not None and provider.get("id") == "acme.test"
        assert provider.findtext("domain") == "acme.test"
        assert servers(provider, "incomingServer") == [
            ("imap", HOSTNAME, "993", "SSL"),
            ("imap", HOSTNAME, "143", "STARTTLS"),
        ]
        assert servers(provider, "outgoingServer") == [
            ("smtp", HOSTNAME, "465", "SSL"),
            ("smtp", HOSTNAME, "587", "STARTTLS"),
        ]
        for server in provider.findall("incomingServer") + provider.findall("outgoingServer"):
            assert server.findtext("username") == "%EMAILADDRESS%"
            assert server.findtext("authentication") == "password-cleartext"

        # The same answer for a mailbox that does not exist: nothing to learn about mailboxes.
        missing = await http.get(path, params={"emailaddress": "nobody@ACME.test"})
        assert (missing.status_code, missing.content) == (200, response.content)


async def test_thunderbird_config_refuses_foreign_domains_and_malformed_addresses(
    http: httpx.AsyncClient,
) -> None:
    for path in THUNDERBIRD_PATHS:
        foreign = await http.get(path, params={"emailaddress": "someone@example.org"})
        assert foreign.status_code == 404, path
        assert foreign.json()["error"]["message"] == "No domain example.org here."

    malformed = await http.get(THUNDERBIRD_PATHS[1], params={"emailaddress": "not-an-address"})
    assert malformed.status_code == 400
    assert "not a full address" in malformed.json()["error"]["message"]


async def test_thunderbird_config_without_address_uses_the_autoconfig_host(
    http: httpx.AsyncClient,
) -> None:
    hosted = await http.get(THUNDERBIRD_PATHS[1], headers={"Host": "autoconfig.acme.test"})
    foreign = await http.get(THUNDERBIRD_PATHS[1], headers={"Host": "autoconfig.example.org"})
    by_ip = await http.get(THUNDERBIRD_PATHS[0])  # Host: 127.0.0.1:<port>

    assert hosted.status_code == 200
    provider = ET.fromstring(hosted.content).find("emailProvider")
    assert provider is not None and provider.get("id") == "acme.test"
    assert foreign.status_code == 404 and "example.org" in foreign.json()["error"]["message"]
    assert by_ip.status_code == 404 and "127.0.0.1" in by_ip.json()["error"]["message"]


# --- Outlook autodiscover ---------------------------------------------------------------------


async def test_autodiscover_answers_imap_and_smtp_over_tls(http: httpx.AsyncClient) -> None:
    for path, address in zip(
        AUTODISCOVER_PATHS, ["Sales@ACME.test", "nobody@acme.test"], strict=True
    ):
        response = await http.post(
            path, content=autodiscover_request(address), headers={"Content-Type": "text/xml"}
        )

        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/xml")
        root = ET.fromstring(response.content)
        assert root.tag == f"{RESPONSE_NS}Autodiscover"
        account = root.find(f"{OUTLOOK_NS}Response/{OUTLOOK_NS}Account")
        assert account is not None
        assert account.findtext(f"{OUTLOOK_NS}AccountType") == "email"
        assert account.findtext(f"{OUTLOOK_NS}Action") == "settings"
        protocols = {
            p.findtext(f"{OUTLOOK_NS}Type"): {c.tag.removeprefix(OUTLOOK_NS): c.text for c in p}
            for p in account.findall(f"{OUTLOOK_NS}Protocol")
        }
        assert set(protocols) == {"IMAP", "SMTP"}
        for kind, port in (("IMAP", "993"), ("SMTP", "465")):
            assert protocols[kind]["Server"] == HOSTNAME
            assert protocols[kind]["Port"] == port
            assert protocols[kind]["SSL"] == "on"
            # Normalised; and a mailbox that does not exist gets an answer all the same.
            assert protocols[kind]["LoginName"] == address.lower()
            assert protocols[kind]["AuthRequired"] == "on"


async def test_autodiscover_refuses_foreign_domains_and_other_schemas(
    http: httpx.AsyncClient,
) -> None:
    foreign = await http.post(AUTODISCOVER_PATHS[1], content=autodiscover_request("a@example.org"))
    assert foreign.status_code == 404
    assert foreign.json()["error"]["message"] == "No domain example.org here."

    activesync = autodiscover_request("a@acme.test").replace(
        b"outlook/responseschema/2006a", b"mobilesync/responseschema/2006"
    )
    other_schema = await http.post(AUTODISCOVER_PATHS[0], content=activesync)
    assert other_schema.status_code == 400
    assert OUTLOOK_RESPONSE_SCHEMA in other_schema.json()["error"]["message"]


def one_mebibyte() -> bytes:
    filler = b"<Pad>" + b"x" * (1024 * 1024) + b"</Pad>"
    return (
        b"<Autodiscover><Request>"
        + filler
        + b"<EMailAddress>a@acme.test</EMailAddress></Request></Autodiscover>"
    )


async def chunked(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 16 * 1024):
        yield data[start : start + 16 * 1024]


HOSTILE_BODIES: list[tuple[str, bytes, str]] = [
    ("billion laughs", BILLION_LAUGHS, "DOCTYPE or ENTITY"),
    ("external entity", EXTERNAL_ENTITY, "DOCTYPE or ENTITY"),
    ("1 MiB", one_mebibyte(), "larger than 64 KiB"),
    ("binary", b"\x00\xffnot xml at all {", "not well-formed XML"),
    ("form data", b"EMailAddress=a@acme.test", "not well-formed XML"),
    ("empty", b"", "empty"),
    ("no address", b"<Autodiscover><Request/></Autodiscover>", "no <EMailAddress>"),
    ("wrong root", b"<html><EMailAddress>a@acme.test</EMailAddress></html>", "<Autodiscover>"),
    (
        "deep nesting",
        b"<Autodiscover>" + b"<a>" * 100 + b"</a>" * 100 + b"</Autodiscover>",
        "deeper",
    ),
]


async def test_autodiscover_refuses_hostile_bodies_with_a_clear_400(
    http: httpx.AsyncClient,
) -> None:
    for name, body, message in HOSTILE_BODIES:
        # The server runs in this process: its CPU time bounds the work a body costs (no entity
        # expansion, no parsing past the limits), however busy the machine is.
        started = time.process_time()
        response = await http.post(AUTODISCOVER_PATHS[0], content=body)

        assert time.process_time() - started < 2, name
        assert response.status_code == 400, name
        assert message in response.json()["error"]["message"], name

    # A 1 MiB body sent chunked announces no length: the server stops reading at the limit.
    streamed = await http.post(AUTODISCOVER_PATHS[0], content=chunked(one_mebibyte()))
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 400
    assert "larger than 64 KiB" in streamed.json()["error"]["message"]

    # Still there, and still answering properly.
    follow_up = await http.post(AUTODISCOVER_PATHS[0], content=autodiscover_request("a@acme.test"))
    assert follow_up.status_code == 200


def test_autodiscover_parser_accepts_a_body_exactly_at_the_limit() -> None:
    request = autodiscover_request("a@acme.test")
    padded = request + b" " * (MAX_AUTODISCOVER_REQUEST - len(request))

    assert parse_autodiscover_request(padded) == "a@acme.test"
    with pytest.raises(InvalidInput, match="larger than 64 KiB"):
        parse_autodiscover_request(padded + b" ")


@given(st.binary(max_size=512) | st.text(max_size=256).map(str.encode))
def test_autodiscover_parser_returns_an_address_or_raises_invalid_input(body: bytes) -> None:
    try:
        address = parse_autodiscover_request(b"<Autodiscover><Request><EMailAddress>" + body)
    except InvalidInput:
        return
    assert isinstance(address, str)


# --- Apple configuration profile --------------------------------------------------------------


def payload_ids(profile: dict[str, Any]) -> tuple[str, str, str]:
    [mail] = profile["PayloadContent"]
    return (profile["PayloadUUID"], profile["PayloadIdentifier"], mail["PayloadUUID"])


async def test_mobileconfig_is_a_profile_with_one_mail_payload(http: httpx.AsyncClient) -> None:
    response = await http.get("/mobileconfig", params={"emailaddress": "Sales@acme.test"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-apple-aspen-config"
    assert response.headers["content-disposition"] == (
        'attachment; filename="sales@acme.test.mobileconfig"'
    )
    profile = plistlib.loads(response.content)
    assert profile["PayloadType"] == "Configuration"
    [mail] = profile["PayloadContent"]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAddress"] == "sales@acme.test"
    assert mail["EmailAccountName"] == "Sales"  # the mailbox's display name
    assert mail["EmailAccountType"] == "EmailTypeIMAP"
    assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"]) == (
        HOSTNAME,
        993,
    )
    assert (mail["OutgoingMailServerHostName"], mail["OutgoingMailServerPortNumber"]) == (
        HOSTNAME,
        465,
    )
    assert mail["IncomingMailServerUseSSL"] is True and mail["OutgoingMailServerUseSSL"] is True
    assert (
        mail["IncomingMailServerUsername"]
        == mail["OutgoingMailServerUsername"]
        == "sales@acme.test"
    )
    assert mail["IncomingMailServerAuthentication"] == "EmailAuthPassword"
    assert mail["OutgoingMailServerAuthentication"] == "EmailAuthPassword"
    assert len({uuid.UUID(profile["PayloadUUID"]), uuid.UUID(mail["PayloadUUID"])}) == 2

    # A second download replaces the installed profile: same identifiers. Another mailbox: new ones.
    again = plistlib.loads((await http.get("/mobileconfig?emailaddress=sales@acme.test")).content)
    other = plistlib.loads((await http.get("/mobileconfig?emailaddress=support@acme.test")).content)
    assert payload_ids(again) == payload_ids(profile)
    assert set(payload_ids(other)).isdisjoint(payload_ids(profile))
    assert other["PayloadContent"][0]["EmailAccountName"] == "support@acme.test"


async def test_mobileconfig_needs_an_existing_mailbox(http: httpx.AsyncClient) -> None:
    for address in ["nobody@acme.test", "sales@example.org"]:
        response = await http.get("/mobileconfig", params={"emailaddress": address})
        assert response.status_code == 404, address
        assert response.json()["error"]["message"] == f"No mailbox {address} here."

    no_address = await http.get("/mobileconfig")
    assert no_address.status_code == 400
    assert "emailaddress" in no_address.json()["error"]["message"]


# --- MTA-STS ----------------------------------------------------------------------------------


async def test_mta_sts_policy_is_served_only_at_the_mta_sts_host(
    http: httpx.AsyncClient, mail_server: MailServer
) -> None:
    for host in ["mta-sts.acme.test", "MTA-STS.acme.test:8443"]:
        response = await http.get("/.well-known/mta-sts.txt", headers={"Host": host})

        assert response.status_code == 200, host
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == mta_sts_policy(mail_server)
        fields = dict(line.split(": ", 1) for line in response.text.splitlines())
        assert fields["version"] == "STSv1"
        assert fields["mx"] == HOSTNAME

    for host in ["acme.test", "mta-sts.example.org", "127.0.0.1", "[::1]:80"]:
        response = await http.get("/.well-known/mta-sts.txt", headers={"Host": host})

        assert response.status_code == 404, host
        assert set(response.json()) == {"error"}


async def test_routing_errors_are_json_errors_too(http: httpx.AsyncClient) -> None:
    unknown = await http.get("/no/such/page")
    wrong_method = await http.get(AUTODISCOVER_PATHS[0])

    assert unknown.status_code == 404
    assert set(unknown.json()) == {"error"}
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()) == {"error"}
    assert "POST" in wrong_method.headers["allow"]

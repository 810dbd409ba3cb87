"""Mail client autoconfiguration documents: pure renderers and the one request parser.

Thunderbird autoconfig (config-v1.1 XML), Outlook autodiscover (the 2006a "outlookautodiscover"
schema) and an Apple configuration profile. Every host and port comes from `MailServer`; every
value reaches the output through ElementTree or plistlib, never through string formatting.
"""

from __future__ import annotations

import plistlib
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from xml.parsers import expat

from mailmark.core.errors import InvalidInput
from mailmark.dns_tools.record_set import MailServer

AUTODISCOVER_REQUEST_NS = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
)
AUTODISCOVER_RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_RESPONSE_SCHEMA = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)
# An autodiscover request is a few hundred bytes three elements deep; anything much bigger or
# deeper is not a mail client.
MAX_AUTODISCOVER_REQUEST = 64 * 1024
MAX_AUTODISCOVER_DEPTH = 16

XML_MEDIA_TYPE = "text/xml; charset=utf-8"
MOBILECONFIG_MEDIA_TYPE = "application/x-apple-aspen-config"

# Fixed namespace for the profile's PayloadUUIDs: uuid5(namespace, name) is stable, so a profile
# downloaded again carries the same identifiers and iOS/macOS replace the installed one.
_PROFILE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "mobileconfig.mailmark")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


# --- Thunderbird ------------------------------------------------------------------------------


def thunderbird_config(server: MailServer, domain: str) -> bytes:
    """The config-v1.1 document Thunderbird (and K-9, Evolution, …) fetch for `domain`.

    The username is the `%EMAILADDRESS%` placeholder, so the document is the same for every
    mailbox of the domain and says nothing about which mailboxes exist."""
    root = ET.Element("clientConfig", {"version": "1.1"})
    provider = ET.SubElement(root, "emailProvider", {"id": domain})
    _text(provider, "domain", domain)
    _text(provider, "displayName", f"{domain} mail")
    _text(provider, "displayShortName", domain)
    # Listed in order of preference: implicit TLS first (RFC 8314 §3), STARTTLS as fallback.
    for port, socket_type in ((server.imaps_port, "SSL"), (server.imap_port, "STARTTLS")):
        _thunderbird_server(provider, "incomingServer", "imap", server.hostname, port, socket_type)
    for port, socket_type in (
        (server.submissions_port, "SSL"),
        (server.submission_port, "STARTTLS"),
    ):
        _thunderbird_server(provider, "outgoingServer", "smtp", server.hostname, port, socket_type)
    return _xml_bytes(root)


def _thunderbird_server(
    parent: ET.Element, tag: str, kind: str, host: str, port: int, socket_type: str
) -> None:
    element = ET.SubElement(parent, tag, {"type": kind})
    _text(element, "hostname", host)
    _text(element, "port", str(port))
    _text(element, "socketType", socket_type)
    _text(element, "authentication", "password-cleartext")
    _text(element, "username", "%EMAILADDRESS%")


# --- Outlook autodiscover ---------------------------------------------------------------------


class _RefusingTreeBuilder:
    """Feeds pyexpat events into an ElementTree TreeBuilder and refuses any DTD outright.

    ElementTree's own XMLParser would accept a DOCTYPE and expand internal entities (billion
    laughs); its C implementation hides the expat handlers needed to stop that. A handler that
    raises makes pyexpat stop the parse at once, before any entity is declared or expanded."""

    def __init__(self) -> None:
        self.builder = ET.TreeBuilder()
        self.depth = 0
        self.parser = expat.ParserCreate(namespace_separator="}")
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._refuse_dtd
        self.parser.EntityDeclHandler = self._refuse_dtd
        self.parser.UnparsedEntityDeclHandler = self._refuse_dtd
        self.parser.ExternalEntityRefHandler = self._refuse_external_entity
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self.builder.data
        self.parser.buffer_text = True
        self.parser.ordered_attributes = False

    def _refuse_dtd(self, *_: Any) -> None:
        raise InvalidInput(
            "The autodiscover request must not contain a DOCTYPE or ENTITY declaration."
        )

    def _refuse_external_entity(self, *_: Any) -> int:
        self._refuse_dtd()
        return 0

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        if self.depth > MAX_AUTODISCOVER_DEPTH:
            raise InvalidInput(
                f"The autodiscover request nests deeper than {MAX_AUTODISCOVER_DEPTH} elements."
            )
        self.builder.start(_clark(name), {_clark(k): v for k, v in attributes.items()})

    def _end(self, name: str) -> None:
        self.depth -= 1
        self.builder.end(_clark(name))

    def parse(self, body: bytes) -> ET.Element:
        try:
            self.parser.Parse(body, True)
        except expat.ExpatError as exc:
            raise InvalidInput(
                f"The autodiscover request is not well-formed XML ({exc})."
            ) from None
        return self.builder.close()


def _clark(name: str) -> str:
    # pyexpat reports "uri}local" with this separator; ElementTree spells it "{uri}local".
    return "{" + name if "}" in name else name


def parse_autodiscover_request(body: bytes) -> str:
    """The EMailAddress of an Outlook autodiscover POST body.

    Raises InvalidInput for a body over MAX_AUTODISCOVER_REQUEST bytes, one with a DTD, one that
    is not well-formed XML, and one without an address."""
    if len(body) > MAX_AUTODISCOVER_REQUEST:
        raise InvalidInput(
            f"The autodiscover request is larger than {MAX_AUTODISCOVER_REQUEST // 1024} KiB."
        )
    if not body.strip():
        raise InvalidInput("The autodiscover request body is empty.")
    root = _RefusingTreeBuilder().parse(body)
    if _local_name(root.tag) != "Autodiscover":
        raise InvalidInput("The autodiscover request's root element must be <Autodiscover>.")
    schema = _first_text(root, "AcceptableResponseSchema")
    if schema and schema != OUTLOOK_RESPONSE_SCHEMA:
        raise InvalidInput(f"Only the {OUTLOOK_RESPONSE_SCHEMA} response schema is offered here.")
    address = _first_text(root, "EMailAddress")
    if not address:
        raise InvalidInput("The autodiscover request has no <EMailAddress>.")
    return address


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _first_text(root: ET.Element, local_name: str) -> str:
    for element in root.iter():
        if _local_name(element.tag) == local_name:
            return (element.text or "").strip()
    return ""


def outlook_autodiscover(server: MailServer, address: str) -> bytes:
    """The 2006a autodiscover response: IMAP and SMTP, both over implicit TLS."""
    # Default namespaces written as plain xmlns attributes: ET.register_namespace is process-wide,
    # and Outlook expects unprefixed elements like every Exchange server sends.
    root = ET.Element("Autodiscover", {"xmlns": AUTODISCOVER_RESPONSE_NS})
    response = ET.SubElement(root, "Response", {"xmlns": OUTLOOK_RESPONSE_SCHEMA})
    account = ET.SubElement(response, "Account")
    _text(account, "AccountType", "email")
    _text(account, "Action", "settings")
    for kind, port in (("IMAP", server.imaps_port), ("SMTP", server.submissions_port)):
        protocol = ET.SubElement(account, "Protocol")
        _text(protocol, "Type", kind)
        _text(protocol, "Server", server.hostname)
        _text(protocol, "Port", str(port))
        _text(protocol, "DomainRequired", "off")
        _text(protocol, "LoginName", address)
        _text(protocol, "SPA", "off")
        _text(protocol, "SSL", "on")
        _text(protocol, "AuthRequired", "on")
        if kind == "SMTP":
            _text(protocol, "UsePOPAuth", "on")  # the same credentials as IMAP
            _text(protocol, "SMTPLast", "off")
    return _xml_bytes(root)


# --- Apple configuration profile ------------------------------------------------------------


def profile_uuids(server: MailServer, address: str) -> tuple[str, str]:
    """(profile UUID, mail payload UUID): distinct, and the same on every download."""
    return (
        str(uuid.uuid5(_PROFILE_NAMESPACE, f"{server.hostname}/profile/{address}")).upper(),
        str(uuid.uuid5(_PROFILE_NAMESPACE, f"{server.hostname}/mail/{address}")).upper(),
    )


def apple_mobileconfig(server: MailServer, address: str, display_name: str = "") -> bytes:
    """An unsigned .mobileconfig with one com.apple.mail.managed payload for `address`."""
    profile_uuid, payload_uuid = profile_uuids(server, address)
    identifier = ".".join(reversed(server.hostname.split("."))) + ".mailmark"
    mail_payload: dict[str, Any] = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadUUID": payload_uuid,
        "PayloadIdentifier": f"{identifier}.mail.{payload_uuid}",
        "PayloadDisplayName": address,
        "PayloadDescription": f"IMAP and SMTP settings for {address}",
        "EmailAccountDescription": address,
        "EmailAccountName": display_name or address,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": address,
        "IncomingMailServerHostName": server.hostname,
        "IncomingMailServerPortNumber": server.imaps_port,
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerUsername": address,
        "OutgoingMailServerHostName": server.hostname,
        "OutgoingMailServerPortNumber": server.submissions_port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerUsername": address,
        "OutgoingPasswordSameAsIncomingPassword": True,
        "PreventMove": False,
        "PreventAppSheet": False,
        "SMIMEEnabled": False,
    }
    profile: dict[str, Any] = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadUUID": profile_uuid,
        # Same identifier on every download: the device replaces the installed profile.
        "PayloadIdentifier": f"{identifier}.profile.{profile_uuid}",
        "PayloadDisplayName": f"Mail: {address}",
        "PayloadDescription": f"Sets up {address} in Mail (IMAP {server.hostname}).",
        "PayloadOrganization": server.hostname,
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [mail_payload],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)


def mobileconfig_filename(address: str) -> str:
    """`<address>.mobileconfig`, with anything a file name or a header must not hold replaced."""
    return _FILENAME_UNSAFE.sub("_", address) + ".mobileconfig"


# --- the dashboard's connection settings --------------------------------------------------------


@dataclass(frozen=True)
class ClientSettings:
    """What a person types into a mail client by hand: (host, port, security) per service, and
    the links that set the client up instead."""

    username: str
    imap: tuple[str, int, str]
    imaps: tuple[str, int, str]
    submission: tuple[str, int, str]
    submissions: tuple[str, int, str]
    autoconfig_url: str
    mobileconfig_url: str


def client_settings(server: MailServer, address: str) -> ClientSettings:
    """The same hosts and ports the autoconfig documents above give, for one mailbox."""
    query = urlencode({"emailaddress": address})
    host = server.hostname
    return ClientSettings(
        username=address,
        # RFC 8314: implicit TLS on 993/465; STARTTLS on 143/587 (RFC 9051 §6.2.1, RFC 6409).
        imap=(host, server.imap_port, "STARTTLS"),
        imaps=(host, server.imaps_port, "TLS"),
        submission=(host, server.submission_port, "STARTTLS"),
        submissions=(host, server.submissions_port, "TLS"),
        autoconfig_url=f"/.well-known/autoconfig/mail/config-v1.1.xml?{query}",
        mobileconfig_url=f"/mobileconfig?{query}",
    )


# --- helpers ----------------------------------------------------------------------------------


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def _xml_bytes(root: ET.Element) -> bytes:
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"

"""Address and domain-name rules shared by every adapter (SMTP, IMAP, HTTP, CLI)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailmark.core.errors import HeaderInjection, InvalidInput, RelayDenied

# RFC 5321 §4.5.3.1.1–2: local part ≤ 64 octets, domain ≤ 255 octets.
MAX_LOCAL_PART = 64
MAX_DOMAIN = 253
MAX_ADDRESS = 320
MAX_HEADER_VALUE = 998  # RFC 5322 §2.1.1: no line longer than 998 characters
SUBADDRESS_SEPARATOR = "+"

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# A dot-atom (RFC 5322 §3.2.3) over a conservative subset of atext: the characters that have been
# used for source routing ("%", "!"), sub-addressing ("+") and quoting are not allowed in mailbox names.
_MAILBOX_ATOM = re.compile(r"^[a-z0-9#$&'*/=?^_`{|}~-]+$")


_FORBIDDEN_IN_PATH = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
# RFC 5322 §3.2.3 atext, as dot-atoms: the local parts we send to. Quoted local parts are refused.
_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


def is_malformed_path(address: str) -> bool:
    """A path with control characters (RFC 5321 §4.1.2 allows none) or octets that are not UTF-8
    (RFC 6531 §3.3; aiosmtpd hands them over as lone surrogates, which no database can store)."""
    return _FORBIDDEN_IN_PATH.search(address) is not None


def normalize_domain(name: str) -> str:
    """Lower-case, strip one trailing dot, IDNA-encode, and check every label (RFC 1035 §2.3.1)."""
    # Only one: "example.com.." has an empty label and is not a domain name (rstrip took them all).
    candidate = name.strip().lower().removesuffix(".")
    try:
        candidate = candidate.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"{name!r} is not a valid domain name.") from None
    labels = candidate.split(".")
    if len(candidate) > MAX_DOMAIN or len(labels) < 2 or not all(_LABEL.match(lb) for lb in labels):
        raise InvalidInput(f"{name!r} is not a valid domain name.")
    if labels[-1].isdigit():
        raise InvalidInput(f"{name!r} is not a valid domain name.")
    return candidate


def check_header_value(label: str, value: str, limit: int = MAX_HEADER_VALUE) -> None:
    """Refuse header injection: CR, LF or NUL in a value bound for a header field."""
    if any(ch in value for ch in "\r\n\0"):
        raise HeaderInjection(f"{label} must not contain line breaks or NUL characters.")
    if len(value) > limit:
        raise InvalidInput(f"{label} is longer than {limit} characters.")


def normalize_address(address: str, label: str = "The address") -> str:
    """A plain `local@domain` address to send to, its domain lower-cased and IDNA-encoded."""
    check_header_value(label, address, MAX_ADDRESS)
    candidate = address.strip()
    local, at, domain = candidate.rpartition("@")
    if not at or len(local.encode()) > MAX_LOCAL_PART or not _DOT_ATOM.match(local):
        raise InvalidInput(f"{label} {address!r} is not a valid email address.")
    try:
        return f"{local}@{normalize_domain(domain)}"
    except InvalidInput:
        raise InvalidInput(f"{label} {address!r} is not a valid email address.") from None


def normalize_local_part(local_part: str) -> str:
    """Validate a mailbox's local part for creation; mailbox names are case-insensitive."""
    candidate = local_part.strip().lower()
    if "@" in candidate:
        raise InvalidInput("Enter only the local part (e.g. 'support'), not a full address.")
    if not candidate or len(candidate.encode()) > MAX_LOCAL_PART:
        raise InvalidInput(f"A mailbox name must be 1 to {MAX_LOCAL_PART} characters long.")
    atoms = candidate.split(".")
    if any(not atom or not _MAILBOX_ATOM.match(atom) for atom in atoms):
        raise InvalidInput(
            f"{local_part!r} is not a valid mailbox name: use letters, digits and . - _ "
            "(no leading, trailing or repeated dots; no + % ! or quotes)."
        )
    return candidate


def relay_denied(address: str) -> RelayDenied:
    return RelayDenied(f"<{address}>: Relay access denied")


@dataclass(frozen=True)
class Recipient:
    """An envelope recipient for a domain that may be ours; `local_part` has any +tag removed."""

    local_part: str
    domain: str
    subaddress: str | None = None


def parse_recipient(address: str) -> Recipient:
    """Split an envelope address, refusing every relay trick before any lookup.

    Refused: source routes (`@ours:u@ext`, RFC 5321 §C), the percent hack (`u%ext@ours`), UUCP bang
    paths (`ext!u@ours`), quoted local parts (`"u@ext"@ours`) and address literals (`u@[1.2.3.4]`).
    """
    denied = relay_denied(address)
    if not address or address.startswith("@") or '"' in address or "\\" in address:
        raise denied
    local, at, domain = address.rpartition("@")
    if not at or not local or "@" in local or "%" in local or "!" in local:
        raise denied
    if domain.startswith("["):
        raise denied
    try:
        domain = normalize_domain(domain)
    except InvalidInput:
        raise denied from None
    local = local.lower()
    tag = None
    if SUBADDRESS_SEPARATOR in local:
        local, _, tag = local.partition(SUBADDRESS_SEPARATOR)
    if not local or len(local.encode()) > MAX_LOCAL_PART:
        raise denied
    return Recipient(local, domain, tag)


# The per-message return path of outgoing mail (VERP): bounce+<token>@mail.<domain> once the
# domain publishes that custom MAIL FROM subdomain's MX and SPF records, else
# bounce+<token>@<the server's own name>, which has an address record wherever the server runs:
# receivers that check the sender domain (Postfix's reject_unknown_sender_domain needs an MX or
# an address record) refuse a return path that does not resolve, and bounces to it are lost.
# Reports sent back to either name the message by its token alone, whatever they say inside.
RETURN_PATH_LABEL = "mail"
VERP_LOCAL_PREFIX = "bounce"
VERP_TOKEN_LENGTH = 24
_VERP_TOKEN = re.compile(rf"^[a-z0-9]{{{VERP_TOKEN_LENGTH}}}$")


@dataclass(frozen=True)
class VerpAddress:
    token: str  # lower-case
    # The sending domain of bounce+<token>@mail.<domain>; None on the server's own name.
    domain: str | None


def custom_return_path_domain(domain: str) -> str:
    """The custom MAIL FROM subdomain of a sending domain: mail.<domain>."""
    return f"{RETURN_PATH_LABEL}.{domain}"


def return_path_domain(domain: str, *, published: bool, server_hostname: str) -> str:
    """Where a domain's return paths live: mail.<domain> when its records are published."""
    return custom_return_path_domain(domain) if published else server_hostname


def verp_address(token: str, domain: str) -> str:
    return f"{VERP_LOCAL_PREFIX}{SUBADDRESS_SEPARATOR}{token}@{domain}"


def parse_verp(address: str, server_hostname: str) -> VerpAddress | None:
    """The token of a VERP return path, with its sending domain when on mail.<domain>, or None
    for any other address.

    The token is matched case-insensitively: RFC 5321 §2.4 lets local parts be case-sensitive,
    but some servers send reports to an address they lower- or upper-cased."""
    local, at, domain = address.rpartition("@")
    prefix, separator, token = local.partition(SUBADDRESS_SEPARATOR)
    if not at or not separator or prefix.lower() != VERP_LOCAL_PREFIX:
        return None
    token = token.lower()
    if not _VERP_TOKEN.match(token):
        return None
    domain = domain.lower().removesuffix(".")
    if domain == server_hostname.lower().removesuffix("."):
        return VerpAddress(token, None)
    label, dot, parent = domain.partition(".")
    if label != RETURN_PATH_LABEL or not dot:
        return None
    try:
        return VerpAddress(token, normalize_domain(parent))
    except InvalidInput:
        return None

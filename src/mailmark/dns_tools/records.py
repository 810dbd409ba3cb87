"""Pure readers for DNS-published mail policy records (DMARC) and domain relations; no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DmarcRecord",
    "InvalidRecord",
    "is_dmarc_record",
    "organizational_domain",
    "parse_dmarc",
]

_POLICIES = frozenset({"none", "quarantine", "reject"})
_ALIGNMENT_MODES = frozenset({"r", "s"})
# RFC 7489 §6.4: dmarc-version = "v" *WSP "=" *WSP %x44.4d.41.52.43.31 -- the tag name is
# case-insensitive (quoted ABNF), the value "DMARC1" is case-sensitive (%x); it must come first.
_VERSION_TAG = re.compile(r"[ \t]*[vV][ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)")
_PCT = re.compile(r"[0-9]{1,3}")

# Second-level labels under which registrations happen one level deeper (co.uk → example.co.uk).
# A tiny stand-in for the Public Suffix List, which is not available offline.
_MULTI_LABEL_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au",
        "co.nz", "org.nz", "net.nz",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp",
        "com.br", "net.br", "org.br",
        "co.in", "net.in", "org.in",
        "co.za", "co.kr", "co.il",
        "com.cn", "com.mx", "com.tr", "com.sg", "com.hk", "com.tw", "com.ar",
    }
)  # fmt: skip


class InvalidRecord(ValueError):
    """A DNS policy record that claims to be of its kind but cannot be used."""


@dataclass(frozen=True)
class DmarcRecord:
    """A DMARC policy record (RFC 7489 §6.3) with defaults applied."""

    p: str
    sp: str
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()


def is_dmarc_record(text: str) -> bool:
    """Whether a TXT string is a DMARC record at all; RFC 7489 §6.6.3 discards the others."""
    return _VERSION_TAG.match(text) is not None


def parse_dmarc(text: str) -> DmarcRecord:
    """Read a DMARC TXT record (RFC 7489 §6.3-6.4).

    Tag names are case-insensitive and unknown tags are ignored (§6.3). A missing or invalid
    p= or an invalid sp= makes the record unusable (§6.6.3 step 6) and raises InvalidRecord;
    invalid values of the optional adkim, aspf and pct fall back to their defaults, so that a
    typo there does not void the domain owner's policy.
    """
    if not is_dmarc_record(text):
        raise InvalidRecord(f"not a DMARC record (must start with v=DMARC1): {text[:80]!r}")
    tags: dict[str, str] = {}
    for part in text.split(";")[1:]:
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), value.strip())

    p = tags.get("p", "").lower()
    if p not in _POLICIES:
        reason = f"invalid p={tags['p']!r}" if "p" in tags else "no p= tag"
        raise InvalidRecord(f"DMARC record has {reason}; expected none, quarantine or reject")
    sp = tags.get("sp", p).lower()
    if sp not in _POLICIES:
        raise InvalidRecord(f"DMARC record has invalid sp={tags['sp']!r}")
    adkim = tags.get("adkim", "r").lower()
    aspf = tags.get("aspf", "r").lower()
    pct = tags.get("pct", "100")
    return DmarcRecord(
        p=p,
        sp=sp,
        adkim=adkim if adkim in _ALIGNMENT_MODES else "r",
        aspf=aspf if aspf in _ALIGNMENT_MODES else "r",
        pct=int(pct) if _PCT.fullmatch(pct) and int(pct) <= 100 else 100,
        rua=_uri_list(tags.get("rua", "")),
        ruf=_uri_list(tags.get("ruf", "")),
    )


def _uri_list(value: str) -> tuple[str, ...]:
    # RFC 7489 §6.4: dmarc-uri *(*WSP "," *WSP dmarc-uri); a "!size" suffix is kept verbatim.
    return tuple(uri for uri in (u.strip() for u in value.split(",")) if uri)


def organizational_domain(domain: str) -> str:
    """The Organizational Domain (RFC 7489 §3.2) of a domain name, lower-cased, no trailing dot.

    Limitation: the Public Suffix List is not available offline, so this keeps the last two
    labels, or three when the last two are one of a small built-in set of common multi-label
    public suffixes (co.uk, com.au, co.jp, ...). Other multi-label suffixes (e.g. city.kawasaki.jp)
    and private suffixes (e.g. github.io) are treated as registrable domains, which makes relaxed
    alignment a little more permissive for them than a full PSL would.
    """
    labels = domain.lower().rstrip(".").split(".")
    keep = 3 if ".".join(labels[-2:]) in _MULTI_LABEL_SUFFIXES else 2
    return ".".join(labels[-keep:])

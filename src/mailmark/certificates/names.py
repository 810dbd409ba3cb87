"""Which names the server's certificate must cover."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from cryptography import x509

log = logging.getLogger(__name__)

# Let's Encrypt (and most public CAs) issue at most 100 names per certificate.
MAX_NAMES = 100


def public_host(public_url: str) -> str | None:
    """The host name of the web app's public URL; None for an IP address literal (ACME HTTP-01
    validates DNS names) or a URL without a host."""
    host = (urlsplit(public_url).hostname or "").rstrip(".").lower()
    if not host:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def certificate_names(
    hostname: str, verified_domains: Iterable[str], web_host: str | None = None
) -> list[str]:
    """The names one certificate covers: the server's host name first (what MX, IMAP and
    submission clients connect to), the web app's public host, then for each verified domain the
    hosts clients fetch over HTTPS: `mta-sts.<domain>` (RFC 8461 §3.3: the policy host must
    present a valid certificate) and `autoconfig.<domain>` (Thunderbird's autoconfiguration).

    Unverified domains are left out: their names do not point here yet, and one failed
    validation fails the whole order. Beyond MAX_NAMES the rest are left out, with a warning."""
    names = [hostname.rstrip(".").lower()]
    if web_host:
        names.append(web_host)
    for domain in sorted({domain.rstrip(".").lower() for domain in verified_domains}):
        names += [f"mta-sts.{domain}", f"autoconfig.{domain}"]
    unique = list(dict.fromkeys(names))
    if len(unique) > MAX_NAMES:
        log.warning(
            "the certificate can name %d hosts, not %d: %s left out",
            MAX_NAMES,
            len(unique),
            ", ".join(unique[MAX_NAMES:]),
        )
    return unique[:MAX_NAMES]


def certificate_covers(certificate: x509.Certificate, hostname: str) -> bool:
    """Whether the certificate's subjectAltName DNS names cover `hostname` (RFC 6125 §6.4:
    a wildcard stands for exactly one left-most label)."""
    try:
        names = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        return False
    wanted = hostname.rstrip(".").lower()
    for name in (n.lower() for n in names):
        if name == wanted:
            return True
        if name.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == name[2:]:
            return True
    return False

"""Inbound message authentication: SPF (RFC 7208), DKIM (RFC 6376) and DMARC (RFC 7489).

The verdicts are reported, never enforced here: the caller decides what a DMARC fail under
p=reject means for the SMTP reply, and prepends `AuthenticationResults.header()` (RFC 8601).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any

import dkim  # type: ignore[import-untyped]
import spf  # type: ignore[import-untyped]
from dkim.util import InvalidTagValueList, parse_tag_value  # type: ignore[import-untyped]

from mailmark.dns_tools.records import (
    DmarcRecord,
    InvalidRecord,
    is_dmarc_record,
    organizational_domain,
    parse_dmarc,
)
from mailmark.dns_tools.resolver import DnsResolver, DnsTemporaryError

__all__ = ["AuthenticationResults", "DkimSignatureResult", "MessageAuthenticator"]

log = logging.getLogger(__name__)

# Header sections beyond this are not evaluated: legitimate mail stays far below it, and
# dkimpy's header parser is quadratic in the number of folded lines.
_HEADER_WINDOW = 64 * 1024
_MAX_DKIM_SIGNATURES = 5
# dkimpy looks up every h= name by scanning all header fields; real signatures list a few dozen.
_MAX_SIGNED_FIELDS = 100
# RFC 7208 §4.6.4: bound the whole SPF evaluation, at no less than 20 seconds.
_SPF_TIME_LIMIT = 20
# RFC 5322 §2.1.1: lines SHOULD be at most 78 characters; we stay below, as the caller asked.
_MAX_LINE = 77
# Best first: a temperror might still pass on retry, which a fail will not.
_DKIM_RANK = ("pass", "temperror", "fail", "permerror")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_LDH_DOMAIN = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
_AUTHSERV_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")
# RFC 8601 §2.2 pvalue without quoting: [ [ local-part ] "@" ] domain-name, local-part a dot-atom.
_BARE_PVALUE = re.compile(r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]*@)?[A-Za-z0-9_.-]+")

# The resolver of the authentication running in the current context, for pyspf's DNS hook.
_active_resolver: contextvars.ContextVar[DnsResolver] = contextvars.ContextVar("spf_resolver")
_pyspf_lookup: Callable[..., Any] = spf.DNSLookup


def _spf_dns_lookup(name: str, qtype: str, strict: bool | int = True, timeout: float = 20) -> Any:
    """pyspf's module-level DNSLookup, routed to the resolver of the running authentication."""
    resolver = _active_resolver.get(None)
    if resolver is None:  # pyspf used outside MessageAuthenticator keeps its own behaviour
        return _pyspf_lookup(name, qtype, strict, timeout)
    return resolver.spf_lookup(name, qtype, strict, timeout)


@dataclass(frozen=True)
class DkimSignatureResult:
    """The verdict on one DKIM-Signature field, with its d= and s= when readable."""

    result: str
    domain: str | None
    selector: str | None

    def resinfo(self) -> str:
        parts = [f"dkim={self.result}"]
        if self.domain:
            parts.append(f"header.d={_pvalue(self.domain)}")
        if self.selector:
            parts.append(f"header.s={_pvalue(self.selector)}")
        return " ".join(parts)


@dataclass(frozen=True)
class AuthenticationResults:
    """What SPF, DKIM and DMARC concluded about one inbound message (RFC 8601 result words)."""

    spf: str
    dkim: str
    dkim_domains: tuple[str, ...]
    dmarc: str
    dmarc_policy: str | None
    header_from_domain: str | None
    authserv_id: str
    spf_scope: str  # "mailfrom", or "helo" for the null reverse-path (RFC 7208 §2.4)
    spf_identity: str  # the MAIL FROM address or HELO name that SPF checked
    dkim_signatures: tuple[DkimSignatureResult, ...]

    def header(self) -> bytes:
        """The Authentication-Results field (RFC 8601 §2.2), folded, ending in CRLF."""
        resinfos = [f"spf={self.spf} smtp.{self.spf_scope}={_pvalue(self.spf_identity)}"]
        resinfos += [signature.resinfo() for signature in self.dkim_signatures] or [
            f"dkim={self.dkim}"
        ]
        dmarc = f"dmarc={self.dmarc}"
        if self.dmarc_policy:
            dmarc += f" (p={self.dmarc_policy})"
        if self.header_from_domain:
            dmarc += f" header.from={self.header_from_domain}"
        resinfos.append(dmarc)
        return _fold(f"Authentication-Results: {self.authserv_id};", resinfos)


class MessageAuthenticator:
    """Runs SPF, DKIM and DMARC for inbound messages against one resolver."""

    def __init__(self, resolver: DnsResolver, authserv_id: str) -> None:
        """`authserv_id` names this host in the header field (RFC 8601 §2.5), e.g. its MX name."""
        if not _AUTHSERV_ID.fullmatch(authserv_id):
            raise ValueError(f"authserv_id must be a host name, not {authserv_id!r}")
        self._resolver = resolver
        self._authserv_id = authserv_id
        # pyspf has no per-query resolver: hook its module-level lookup once, and let the hook
        # find each authentication's resolver in a ContextVar so concurrent ones do not mix.
        if spf.DNSLookup is not _spf_dns_lookup:
            spf.DNSLookup = _spf_dns_lookup

    async def authenticate(
        self, *, raw: bytes, client_ip: str, helo: str, mail_from: str
    ) -> AuthenticationResults:
        """Authenticate one message; never raises for bad input or DNS trouble.

        `mail_from` is the reverse-path without angle brackets; "" or "<>" for the null one.
        """
        return await asyncio.to_thread(self._authenticate, raw, client_ip, helo, mail_from)

    def _authenticate(
        self, raw: bytes, client_ip: str, helo: str, mail_from: str
    ) -> AuthenticationResults:
        # asyncio.to_thread runs us in a copy of the caller's context: this set stays ours.
        _active_resolver.set(self._resolver)
        sender = "" if mail_from in ("", "<>") else mail_from
        # RFC 7208 §2.4: with a null reverse-path, SPF checks postmaster@<HELO name>.
        spf_scope, spf_identity = ("mailfrom", sender) if sender else ("helo", helo)
        spf_result = self._check_spf(client_ip, helo, sender or f"postmaster@{helo}")
        # RFC 7489 §4.1 with RFC 7208 §2.4: DMARC uses the SPF result of that same identity.
        spf_domain = (sender.rpartition("@")[2] if sender else helo).rstrip(".").lower()

        section = _scan_header_section(raw)
        if not section.complete:
            log.info("header section over %d bytes: DKIM and DMARC not evaluated", _HEADER_WINDOW)
        dkim_result, signatures = self._check_dkim(raw, section)
        from_domain = _author_domain(section.from_values) if section.complete else None
        if from_domain is None:
            # RFC 7489 §6.6.1: a message with no, several or unreadable From addresses has no
            # single Author Domain, so DMARC cannot be applied; we report that as permerror.
            dmarc_result, policy = "permerror", None
        else:
            dmarc_result, policy = self._check_dmarc(
                from_domain, spf_result, spf_domain, signatures
            )
        return AuthenticationResults(
            spf=spf_result,
            dkim=dkim_result,
            dkim_domains=tuple(s.domain for s in signatures if s.result == "pass" and s.domain),
            dmarc=dmarc_result,
            dmarc_policy=policy,
            header_from_domain=from_domain,
            authserv_id=self._authserv_id,
            spf_scope=spf_scope,
            spf_identity=spf_identity,
            dkim_signatures=signatures,
        )

    def _check_spf(self, client_ip: str, helo: str, sender: str) -> str:
        try:
            query = spf.query(i=client_ip, s=sender, h=helo, querytime=_SPF_TIME_LIMIT)
            result, _code, explanation = query.check()
        except spf.PermError as exc:  # raised for a client IP that is not an address
            log.warning("SPF check impossible for client %r: %s", client_ip, exc)
            return "permerror"
        except Exception:
            log.exception("SPF check failed for %s from %s", sender, client_ip)
            return "temperror"
        if result in ("temperror", "permerror"):
            log.info("SPF %s for %s from %s: %s", result, sender, client_ip, explanation)
        return str(result)

    def _check_dkim(
        self, raw: bytes, section: _HeaderSection
    ) -> tuple[str, tuple[DkimSignatureResult, ...]]:
        """The best result over the signatures, and each signature's result."""
        if not section.complete:
            return "permerror", ()
        if not section.has_dkim_signature:
            return "none", ()
        try:
            verifier = dkim.DKIM(raw)
        except (dkim.MessageFormatError, IndexError) as exc:  # IndexError: a leading folded line
            log.info("message unreadable for DKIM: %r", exc)
            return "permerror", ()
        fields = [value for name, value in verifier.headers if name.lower() == b"dkim-signature"]
        signatures = tuple(
            self._verify_signature(verifier, index, value)
            for index, value in enumerate(fields[:_MAX_DKIM_SIGNATURES])
        )
        best = min((s.result for s in signatures), key=_DKIM_RANK.index, default="permerror")
        return best, signatures

    def _verify_signature(
        self, verifier: dkim.DKIM, index: int, field: bytes
    ) -> DkimSignatureResult:
        try:
            tags = parse_tag_value(field)
        except InvalidTagValueList as exc:
            log.info("unreadable DKIM-Signature: %s", exc)
            return DkimSignatureResult("permerror", None, None)
        domain = tags.get(b"d", b"").decode("ascii", "replace").rstrip(".").lower() or None
        selector = tags.get(b"s", b"").decode("ascii", "replace") or None
        if tags.get(b"h", b"").count(b":") >= _MAX_SIGNED_FIELDS:
            log.info("DKIM-Signature d=%s signs too many fields", domain)
            return DkimSignatureResult("permerror", domain, selector)

        key_missing = False

        def lookup_key(name: bytes, timeout: float = 5) -> bytes | None:
            nonlocal key_missing
            key = self._resolver.dkim_dnsfunc(name, timeout)
            key_missing = key is None
            return key

        try:
            verified = verifier.verify(idx=index, dnsfunc=lookup_key)
        except DnsTemporaryError as exc:
            log.warning("DKIM key lookup for d=%s s=%s: %s", domain, selector, exc)
            return DkimSignatureResult("temperror", domain, selector)
        except dkim.ValidationError as exc:  # body hash mismatch, expired, bad tag values
            log.info("DKIM d=%s s=%s fails: %s", domain, selector, exc)
            return DkimSignatureResult("fail", domain, selector)
        except dkim.DKIMException as exc:  # bad key record, malformed signature or message
            log.info("DKIM d=%s s=%s unverifiable: %s", domain, selector, exc)
            return DkimSignatureResult("permerror", domain, selector)
        except Exception:  # dkimpy trips over some malformed input with plain Python errors
            log.warning("DKIM d=%s s=%s crashed the verifier", domain, selector, exc_info=True)
            return DkimSignatureResult("permerror", domain, selector)
        if verified:
            return DkimSignatureResult("pass", domain, selector)
        # RFC 6376 §6.1.2: no key record for the selector is a permanent failure.
        return DkimSignatureResult("permerror" if key_missing else "fail", domain, selector)

    def _check_dmarc(
        self,
        from_domain: str,
        spf_result: str,
        spf_domain: str,
        signatures: tuple[DkimSignatureResult, ...],
    ) -> tuple[str, str | None]:
        """(result, applied policy) for the Author Domain (RFC 7489 §6.6)."""
        try:
            found = self._discover_policy(from_domain)
        except DnsTemporaryError as exc:
            log.warning("DMARC policy lookup for %s: %s", from_domain, exc)
            return "temperror", None
        except InvalidRecord as exc:  # RFC 7489 §11.2: a syntactically incorrect record
            log.info("DMARC record for %s: %s", from_domain, exc)
            return "permerror", None
        if found is None:
            return "none", None
        record, at_organizational_domain = found
        # RFC 7489 §6.3: sp= governs subdomains when the record came from the parent.
        policy = record.sp if at_organizational_domain else record.p

        def identifiers_with(result: str) -> bool:
            spf_aligned = spf_result == result and _aligned(spf_domain, from_domain, record.aspf)
            return spf_aligned or any(
                s.result == result and s.domain and _aligned(s.domain, from_domain, record.adkim)
                for s in signatures
            )

        if identifiers_with("pass"):
            return "pass", policy
        # RFC 7489 §11.2: temperror when a later attempt might produce a final result, i.e.
        # an aligned identifier whose check hit a temporary error.
        if identifiers_with("temperror"):
            return "temperror", policy
        return "fail", policy

    def _discover_policy(self, from_domain: str) -> tuple[DmarcRecord, bool] | None:
        """The DMARC record and whether it came from the Organizational Domain (RFC 7489 §6.6.3)."""
        for domain in dict.fromkeys((from_domain, organizational_domain(from_domain))):
            records = [t for t in self._resolver.txt(f"_dmarc.{domain}") if is_dmarc_record(t)]
            if records:
                # Step 5: several records end policy discovery with no DMARC processing.
                if len(records) > 1:
                    return None
                return parse_dmarc(records[0]), domain != from_domain
        return None


@dataclass(frozen=True)
class _HeaderSection:
    from_values: list[str]
    has_dkim_signature: bool
    complete: bool  # the section ended within the window


def _scan_header_section(raw: bytes) -> _HeaderSection:
    """The From field values (unfolded) and whether any DKIM-Signature is present."""
    from_values: list[list[bytes]] = []
    has_signature = False
    complete = len(raw) <= _HEADER_WINDOW
    current: list[bytes] | None = None  # the From field being unfolded
    for line in raw[:_HEADER_WINDOW].split(b"\n"):
        line = line.removesuffix(b"\r")
        if not line:
            complete = True
            break
        if line[:1] in (b" ", b"\t"):  # RFC 5322 §2.2.3: folded continuation
            if current is not None:
                current.append(line)
            continue
        name, colon, value = line.partition(b":")
        name = name.rstrip(b" \t").lower()  # RFC 5322 §4.5: obsolete WSP before the colon
        current = None
        if colon and name == b"from":
            current = [value]
            from_values.append(current)
        elif colon and name == b"dkim-signature":
            has_signature = True
    return _HeaderSection(
        [b"".join(parts).decode("utf-8", "replace") for parts in from_values],
        has_signature,
        complete,
    )


def _author_domain(from_values: list[str]) -> str | None:
    """The single RFC5322.From domain, as an ASCII (A-label) name, or None if there is none."""
    if len(from_values) != 1:
        return None
    try:
        addresses = getaddresses(from_values)
    except RecursionError:  # the stdlib parser recurses once per nested "(" of a comment
        log.info("From field nests comments too deeply")
        return None
    domains = {
        address.rpartition("@")[2].strip().rstrip(".").lower()
        for _, address in addresses
        if "@" in address
    }
    if len(domains) != 1:
        return None
    domain = domains.pop()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return domain if _LDH_DOMAIN.fullmatch(domain) else None


def _aligned(identifier: str, from_domain: str, mode: str) -> bool:
    """RFC 7489 §3.1: strict needs equal domains, relaxed the same Organizational Domain."""
    if mode == "s":
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


def _pvalue(value: str) -> str:
    """A header property value (RFC 8601 §2.2), quoted when not a plain address or domain."""
    if _BARE_PVALUE.fullmatch(value):
        return value
    # Only visible ASCII: nothing from the network may fold, inject fields or break the field.
    safe = "".join(c if "!" <= c <= "~" else "?" for c in value)
    return '"' + safe.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fold(first_line: str, resinfos: list[str]) -> bytes:
    """One resinfo per continuation line, further folded at spaces to stay under 78 chars."""
    lines = [first_line]
    for position, resinfo in enumerate(resinfos):
        words = (resinfo + (";" if position < len(resinfos) - 1 else "")).split(" ")
        line = "\t" + words[0]
        for word in words[1:]:
            if len(line) + 1 + len(word) > _MAX_LINE:
                lines.append(line)
                line = "\t" + word
            else:
                line += " " + word
        lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")

"""DKIM signing of outgoing mail (RFC 6376): rsa-sha256, relaxed/relaxed.

dkimpy parses the header section and canonicalizes the signed fields; the body is canonicalized
here in two whole-body regex passes, and the RSA operation runs in OpenSSL through
`cryptography`, because dkimpy's pure-Python modular exponentiation costs about 8 ms a message
(about 1 ms in OpenSSL), which was most of the outbound worker's CPU time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import threading
import time
from collections.abc import Sequence
from functools import lru_cache

import dkim  # type: ignore[import-untyped]
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import CanonicalizationPolicy  # type: ignore[import-untyped]

from mailmark.core.model import DkimKey

__all__ = ["OVERSIGNED_HEADERS", "SIGNED_HEADERS", "DkimSigner", "DkimSigningError", "to_crlf"]

# Signed one time more than they occur, so that a field added in transit (even one the message
# does not have) breaks the signature (RFC 6376 §8.15 "over-signing"); RFC 8058 §4 requires
# List-Unsubscribe and List-Unsubscribe-Post to be covered by the signature.
OVERSIGNED_HEADERS = (
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "list-unsubscribe",
    "list-unsubscribe-post",
)
# Signed once per occurrence when present (RFC 6376 §5.4.1 recommendations).
SIGNED_HEADERS = (
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "in-reply-to",
    "references",
)
_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_HEADER_END = re.compile(rb"\r\n\r\n")
_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.MULTILINE)
# RFC 6376 §3.4.4 (relaxed body): WSP at the end of a line goes, any other run of WSP becomes one
# SP. Only runs that are not already a single SP are rewritten, so a text's ordinary spaces cost
# nothing (dkimpy rewrites each of them, most of a 4 KiB message's signing time).
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")
_WSP_RUN = re.compile(rb"\t[ \t]*| [ \t]+")
_RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_FIELD = b"DKIM-Signature"


class DkimSigningError(Exception):
    """The message cannot be signed (no From field, unreadable header section, bad key)."""


def to_crlf(raw: bytes) -> bytes:
    """Every line ending as CRLF, a bare CR or LF included, and a final CRLF.

    RFC 5321 §2.3.8: only CRLF ends a line on the wire. This is what we sign and what we send, so
    the signature covers exactly the bytes the receiver sees (aiosmtplib would do the same
    conversion after signing otherwise)."""
    if b"\r" not in raw:
        text = raw.replace(b"\n", b"\r\n")
    elif raw.count(b"\r") == raw.count(b"\n") == raw.count(b"\r\n"):
        text = raw  # already CRLF only: the usual case for stored mail
    else:
        text = _LINE_ENDINGS.sub(b"\r\n", raw)
    return text if text.endswith(b"\r\n") else text + b"\r\n"


def header_names(message: bytes) -> list[str]:
    """The field names of the header section, lower-cased, in order."""
    end = _HEADER_END.search(message)
    section = message[: end.start() + 2] if end else message
    return [match[1].decode("ascii").lower() for match in _FIELD_NAME.finditer(section)]


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4 of a CRLF body: trailing WSP removed, WSP runs made one SP, empty lines
    at the end removed; an empty body stays empty."""
    # The substring tests run at memchr speed; the regexes try a match at every space.
    if b" \r\n" in body or b"\t\r\n" in body:
        body = _TRAILING_WSP.sub(b"\r\n", body)
    if b"  " in body or b"\t" in body:
        body = _WSP_RUN.sub(b" ", body)
    body = body.rstrip(b"\r\n")
    return body + b"\r\n" if body else b""


def split_message(message: bytes) -> tuple[list[list[bytes]], bytes]:
    """The header fields (name, value with its CRLF) and the body of a CRLF message. Only the
    header section is split into lines; the body is left whole."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        headers, body = dkim.rfc822_parse(message)
        return headers, body
    headers, _ = dkim.rfc822_parse(message[: end + 2])
    return headers, message[end + 4 :]


def signed_field_list(names: Sequence[str]) -> list[bytes]:
    """The h= list: over-signed fields n+1 times (absent ones once), the others n times."""
    fields: list[bytes] = []
    for name in OVERSIGNED_HEADERS:
        fields += [name.encode()] * (names.count(name) + 1)
    for name in SIGNED_HEADERS:
        fields += [name.encode()] * names.count(name)
    return fields


_KEY_LOADING = threading.Lock()


def rsa_key(private_key_pem: str) -> rsa.RSAPrivateKey:
    """The parsed key, parsed once per process rather than once per message: one thread parses
    while the others wait (checking a 2048-bit key costs tens of milliseconds)."""
    with _KEY_LOADING:
        return _parsed_rsa_key(private_key_pem)


@lru_cache(maxsize=256)
def _parsed_rsa_key(private_key_pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise DkimSigningError(f"unreadable DKIM key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimSigningError("the DKIM key is not an RSA private key")
    return key


class DkimSigner:
    """Signs CRLF messages with a domain's active RSA key; `sign` blocks, `sign_off_loop` not."""

    def sign(self, message: bytes, *, domain: str, key: DkimKey) -> bytes:
        """`message` (already CRLF, see `to_crlf`) with a DKIM-Signature field prepended."""
        if key.algorithm != "rsa-sha256":
            raise DkimSigningError(f"key {key.selector} is {key.algorithm}, not rsa-sha256")
        names = header_names(message)
        if "from" not in names:
            raise DkimSigningError("the message has no From field to sign (RFC 6376 §5.4)")
        private_key = rsa_key(key.private_key_pem)
        try:
            headers, body = split_message(message)
        except (dkim.DKIMException, ValueError, IndexError) as exc:
            raise DkimSigningError(f"DKIM signing for {domain} failed: {exc}") from exc
        signed = tuple(signed_field_list(names))
        domain_bytes = domain.encode("ascii")
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())
        # Only the fields named in h= are canonicalised, in message order (what select_headers
        # picks from depends on that order alone).
        wanted = set(signed)
        chosen = [field for field in headers if field[0].lower().rstrip() in wanted]
        # RFC 6376 §3.5 tags, in dkimpy's order; b= is a placeholder of the signature's folded
        # length so that folding the final field changes no whitespace before it (§3.5, "b=").
        tags = [
            (b"v", b"1"),
            (b"a", b"rsa-sha256"),
            (b"c", b"relaxed/relaxed"),
            (b"d", domain_bytes),
            (b"i", b"@" + domain_bytes),
            (b"q", b"dns/txt"),
            (b"s", key.selector.encode("ascii")),
            (b"t", str(int(time.time())).encode("ascii")),
            (b"h", b" : ".join(signed)),
            (b"bh", body_hash),
            (b"b", b"0" * 60),
        ]
        unsigned = dkim.fold(b"; ".join(b"=".join(tag) for tag in tags), namelen=len(_FIELD))
        # RFC 6376 §3.7: the signature field itself is hashed last, with an empty b= value.
        digest = hashlib.sha256()
        dkim.hash_headers(
            digest,
            _RELAXED,
            _RELAXED.canonicalize_headers(chosen),
            signed,
            (_FIELD, b" " + dkim.RE_BTAG.sub(b"\\1", unsigned)),
            dict(tags),
        )
        signature = private_key.sign(
            digest.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256())
        )
        tags[-1] = (b"b", base64.b64encode(signature))
        value: bytes = dkim.fold(
            b"; ".join(b"=".join(tag) for tag in tags) + b"\r\n", namelen=len(_FIELD)
        )
        return _FIELD + b": " + value + message

    async def sign_off_loop(self, message: bytes, *, domain: str, key: DkimKey) -> bytes:
        """`sign` in a worker thread: RSA is CPU work that must not stall other sessions."""
        return await asyncio.to_thread(self.sign, message, domain=domain, key=key)

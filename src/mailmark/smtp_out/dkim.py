"""DKIM signing of outgoing mail (RFC 6376): rsa-sha256, relaxed/relaxed.

Written here rather than through dkimpy's signer, which cost most of the outbound worker's CPU
time: the header section is split, the signed fields canonicalized and picked, and the
DKIM-Signature field folded in a few passes over bytes; the body is canonicalized in two
whole-body regex passes; the RSA operation runs in OpenSSL through `cryptography` (dkimpy's
pure-Python modular exponentiation cost about 8 ms a message). dkimpy stays the verifier, inbound
and in the tests, which check every signature with it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import threading
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

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
# RFC 6376 §3.4.4 (relaxed body): WSP at the end of a line goes, any other run of WSP becomes one
# SP. Only runs that are not already a single SP are rewritten, so a text's ordinary spaces cost
# nothing (dkimpy rewrites each of them, most of a 4 KiB message's signing time).
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")
_WSP_RUN = re.compile(rb"\t[ \t]*| [ \t]+")
# RFC 6376 §3.4.2 (relaxed header): every run of WSP in a field becomes one SP.
_FIELD_WSP = re.compile(rb"[ \t]+")
_FIELD = b"DKIM-Signature"
# RFC 5322 §2.1.1: lines SHOULD be no longer than 78 characters, CRLF excluded.
_LINE_LENGTH = 78


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


def split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The header fields (name, value as written after the colon, folding included) and the body
    of a CRLF message. RFC 5322 §2.2.3: a line that starts with WSP continues the field before
    it. A header line without a colon is refused (`DkimSigningError`)."""
    end = message.find(b"\r\n\r\n")
    section, body = (message, b"") if end < 0 else (message[: end + 2], message[end + 4 :])
    fields: list[tuple[bytes, bytes]] = []
    for line in section.removesuffix(b"\r\n").split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise DkimSigningError("the header section starts with a continuation line")
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        colon = line.find(b":")
        if colon <= 0:
            raise DkimSigningError(f"a header line has no field name: {line[:40]!r}")
        fields.append((line[:colon], line[colon + 1 :]))
    return fields, body


def relaxed_field(name: bytes, value: bytes) -> bytes:
    """RFC 6376 §3.4.2 of one field, its CRLF included: the name lower-cased, the value unfolded,
    its WSP runs made one SP, WSP before and after the colon and at the end removed."""
    value = _FIELD_WSP.sub(b" ", value.replace(b"\r\n", b"")).strip()
    return name.lower().rstrip() + b":" + value + b"\r\n"


def fold(text: bytes) -> bytes:
    """Fold a field at its spaces so that lines stay within 78 characters where a space allows
    (RFC 5322 §2.1.1, §2.2.3): a CRLF goes before the space, so unfolding gives `text` back."""
    lines: list[bytes] = []
    while len(text) > _LINE_LENGTH:
        cut = text.rfind(b" ", 1, _LINE_LENGTH + 1)
        if cut <= 0:
            cut = text.find(b" ", _LINE_LENGTH + 1)
            if cut < 0:
                break
        lines.append(text[:cut])
        text = text[cut:]
    lines.append(text)
    return b"\r\n".join(lines)


def signed_field_list(fields: Mapping[bytes, Sequence[bytes]]) -> list[bytes]:
    """The h= list, from the message's fields by lower-case name: over-signed fields n+1 times
    (absent ones once), the others n times."""
    signed: list[bytes] = []
    for name in OVERSIGNED_HEADERS:
        signed += [name.encode()] * (len(fields.get(name.encode(), ())) + 1)
    for name in SIGNED_HEADERS:
        signed += [name.encode()] * len(fields.get(name.encode(), ()))
    return signed


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
        headers, body = split_message(message)
        by_name: dict[bytes, list[bytes]] = {}
        for name, value in headers:
            by_name.setdefault(name.lower().rstrip(), []).append(value)
        if b"from" not in by_name:
            raise DkimSigningError("the message has no From field to sign (RFC 6376 §5.4)")
        private_key = rsa_key(key.private_key_pem)
        signed = signed_field_list(by_name)
        domain_bytes = domain.encode("ascii")
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())
        # RFC 6376 §5.4.2: each name in h= takes the last of its fields not taken yet, from the
        # bottom up; a name over-signed (one more than there are) takes nothing.
        digest = hashlib.sha256()
        for name in signed:
            found = by_name.get(name)
            if found:
                digest.update(relaxed_field(name, found.pop()))
        # RFC 6376 §3.5 tags; b= comes last and empty. The field up to it is hashed as it will
        # be sent (§3.7), then the signature is appended: whitespace within b= is ignored.
        tags = [
            b"v=1",
            b"a=rsa-sha256",
            b"c=relaxed/relaxed",
            b"d=" + domain_bytes,
            b"i=@" + domain_bytes,
            b"q=dns/txt",
            b"s=" + key.selector.encode("ascii"),
            b"t=" + str(int(time.time())).encode("ascii"),
            b"h=" + b" : ".join(signed),
            b"bh=" + body_hash,
            b"b=",
        ]
        unsigned = fold(_FIELD + b": " + b"; ".join(tags))
        value = unsigned[len(_FIELD) + 1 :]
        digest.update(relaxed_field(_FIELD, value).removesuffix(b"\r\n"))
        signature = private_key.sign(
            digest.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256())
        )
        encoded = base64.b64encode(signature)
        out = [unsigned]
        used = len(unsigned) - unsigned.rfind(b"\n") - 1  # the last line's length so far
        start = 0
        while start < len(encoded):
            if used >= _LINE_LENGTH:
                out.append(b"\r\n ")
                used = 1
            piece = encoded[start : start + _LINE_LENGTH - used]
            out.append(piece)
            used += len(piece)
            start += len(piece)
        return b"".join(out) + b"\r\n" + message

    async def sign_off_loop(self, message: bytes, *, domain: str, key: DkimKey) -> bytes:
        """`sign` in a worker thread: RSA is CPU work that must not stall other sessions."""
        return await asyncio.to_thread(self.sign, message, domain=domain, key=key)

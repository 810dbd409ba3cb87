"""DKIM signing of outgoing mail (RFC 6376) with dkimpy: rsa-sha256, relaxed/relaxed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

import dkim  # type: ignore[import-untyped]

from mailmark.core.model import DkimKey

__all__ = ["OVERSIGNED_HEADERS", "SIGNED_HEADERS", "DkimSigner", "DkimSigningError", "to_crlf"]

# Signed one time more than they occur, so that a field added in transit (even one the message
# does not have) breaks the signature (RFC 6376 §8.15 "over-signing"); RFC 8058 §4 requires
# List-Unsubscribe and List-Unsubscribe-Post to be covered by the signature.
OVERSIGNED_HEADERS = (
    "from", "to", "cc", "subject", "date", "message-id", "reply-to",
    "list-unsubscribe", "list-unsubscribe-post",
)
# Signed once per occurrence when present (RFC 6376 §5.4.1 recommendations).
SIGNED_HEADERS = (
    "mime-version", "content-type", "content-transfer-encoding", "in-reply-to", "references",
)
_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_HEADER_END = re.compile(rb"\r\n\r\n")
_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.MULTILINE)


class DkimSigningError(Exception):
    """The message cannot be signed (no From field, unreadable header section, bad key)."""


def to_crlf(raw: bytes) -> bytes:
    """Every line ending as CRLF, a bare CR or LF included, and a final CRLF.

    RFC 5321 §2.3.8: only CRLF ends a line on the wire. This is what we sign and what we send, so
    the signature covers exactly the bytes the receiver sees (aiosmtplib would do the same
    conversion after signing otherwise)."""
    text = _LINE_ENDINGS.sub(b"\r\n", raw)
    return text if text.endswith(b"\r\n") else text + b"\r\n"


def header_names(message: bytes) -> list[str]:
    """The field names of the header section, lower-cased, in order."""
    end = _HEADER_END.search(message)
    section = message[: end.start() + 2] if end else message
    return [match[1].decode("ascii").lower() for match in _FIELD_NAME.finditer(section)]


def signed_field_list(names: Sequence[str]) -> list[bytes]:
    """The h= list: over-signed fields n+1 times (absent ones once), the others n times."""
    fields: list[bytes] = []
    for name in OVERSIGNED_HEADERS:
        fields += [name.encode()] * (names.count(name) + 1)
    for name in SIGNED_HEADERS:
        fields += [name.encode()] * names.count(name)
    return fields


class DkimSigner:
    """Signs CRLF messages with a domain's active RSA key; `sign` blocks, `sign_off_loop` not."""

    def sign(self, message: bytes, *, domain: str, key: DkimKey) -> bytes:
        """`message` (already CRLF, see `to_crlf`) with a DKIM-Signature field prepended."""
        if key.algorithm != "rsa-sha256":
            raise DkimSigningError(f"key {key.selector} is {key.algorithm}, not rsa-sha256")
        names = header_names(message)
        if "from" not in names:
            raise DkimSigningError("the message has no From field to sign (RFC 6376 §5.4)")
        try:
            signer = dkim.DKIM(message, linesep=b"\r\n")
            field = signer.sign(
                key.selector.encode("ascii"),
                domain.encode("ascii"),
                key.private_key_pem.encode("ascii"),
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=signed_field_list(names),
            )
        except (dkim.DKIMException, ValueError, IndexError) as exc:
            raise DkimSigningError(f"DKIM signing for {domain} failed: {exc}") from exc
        return bytes(field) + message

    async def sign_off_loop(self, message: bytes, *, domain: str, key: DkimKey) -> bytes:
        """`sign` in a worker thread: RSA is CPU work that must not stall other sessions."""
        return await asyncio.to_thread(self.sign, message, domain=domain, key=key)

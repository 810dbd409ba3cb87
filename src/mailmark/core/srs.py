"""The Sender Rewriting Scheme (SRS): the envelope sender of forwarded mail, rewritten into an
address of the forwarding domain, so that the destination's SPF check (RFC 7208) looks at a
domain whose record names this server, and bounces come back here to be sent on.

The format is the one of Shevek's "Sender Rewriting Scheme" paper, as postsrsd and Exim write it:

    SRS0=HHHH=TT=orig-domain=orig-local@forwarder-domain
    SRS1=HHHH=first-forwarder-domain==HHHH=TT=orig-domain=orig-local@forwarder-domain

HHHH is the HMAC-SHA1 of the rest (lower-cased), base64, truncated; TT is the day number modulo
1024 in base32. An SRS0 address that is forwarded again becomes SRS1, which points back at the
first forwarder rather than growing with every hop. The hash compare ignores case: some MTAs
change the case of a local part.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from mailmark.core.errors import UnknownMailbox

HASH_LENGTH = 4
# A bounce may arrive days after the message was forwarded; older addresses are refused.
MAX_AGE_DAYS = 21
SEPARATOR = "="
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TIMESTAMP_CYCLE = 1024  # two base32 digits
_SECONDS_PER_DAY = 86400


class SrsError(UnknownMailbox):
    """An SRS address that does not decode: forged, damaged or expired."""


@dataclass(frozen=True)
class SrsAddress:
    """What a valid SRS address at our domain sends back to."""

    original: str  # the address a bounce goes to: the original sender, or the first forwarder
    srs1: bool


class Srs:
    def __init__(self, key: bytes, max_age_days: int = MAX_AGE_DAYS) -> None:
        """`key` is secret key material of this installation; a key of its own is derived."""
        self._key = hashlib.sha256(b"mailmark srs\0" + key).digest()
        self._max_age_days = max_age_days

    @staticmethod
    def is_srs(address: str) -> bool:
        local = address.rpartition("@")[0][:5].upper()
        return local in ("SRS0=", "SRS0-", "SRS0+", "SRS1=", "SRS1-", "SRS1+")

    def forward(self, sender: str, forwarder_domain: str, now: datetime) -> str:
        """The envelope sender for mail from `sender` forwarded by `forwarder_domain`. The null
        reverse-path stays null: bounces are never rewritten (nothing may answer them)."""
        if sender in ("", "<>"):
            return ""
        local, _, domain = sender.rpartition("@")
        if not local or not domain:
            # Nothing to send a bounce back to (a bare local part): bounces go nowhere, as for
            # the null reverse-path.
            return ""
        if domain.lower() == forwarder_domain.lower() and not self.is_srs(sender):
            return sender  # our own domain already: SPF of the forwarder covers it
        upper = local[:5].upper()
        if upper.startswith("SRS1") and upper[4:5] in "=-+":
            # SRS1=HHHH=first==rest: keep pointing at the first forwarder, re-hashed by us.
            parts = local[5:].split(SEPARATOR, 2)
            if len(parts) < 3:
                raise SrsError(f"{sender} is a damaged SRS1 address.")
            first, rest = parts[1], parts[2]
            return self._srs1(first, rest, forwarder_domain)
        if upper.startswith("SRS0") and upper[4:5] in "=-+":
            # Forwarded again: SRS1 names the domain the SRS0 address belongs to.
            return self._srs1(domain, local[4:], forwarder_domain)
        stamp = self._timestamp(now)
        hashed = self._hash(stamp, domain, local)
        return f"SRS0={hashed}={stamp}={domain}={local}@{forwarder_domain}"

    def _srs1(self, first_domain: str, rest: str, forwarder_domain: str) -> str:
        """`rest` is the SRS0 address's local part after "SRS0", separator included."""
        hashed = self._hash(first_domain, rest)
        return f"SRS1={hashed}={first_domain}={rest}@{forwarder_domain}"

    def reverse(self, address: str, now: datetime) -> SrsAddress:
        """Where a bounce to `address` goes; SrsError when it is not one we made or has expired."""
        local = address.rpartition("@")[0]
        upper = local[:5].upper()
        if upper[:4] == "SRS1" and upper[4:5] in "=-+":
            parts = local[5:].split(SEPARATOR, 2)
            if len(parts) != 3:
                raise SrsError(_DAMAGED)
            hashed, first, rest = parts
            if not self._hash_matches(hashed, first, rest):
                raise SrsError(_FORGED)
            # rest starts with the SRS0 separator ("=" for the "==" form).
            return SrsAddress(f"SRS0{rest}@{first}", srs1=True)
        if upper[:4] == "SRS0" and upper[4:5] in "=-+":
            parts = local[5:].split(SEPARATOR, 3)
            if len(parts) != 4 or not all(parts):
                raise SrsError(_DAMAGED)
            hashed, stamp, domain, original_local = parts
            if not self._hash_matches(hashed, stamp, domain, original_local):
                raise SrsError(_FORGED)
            age = self._age_days(stamp, now)
            if age is None or age > self._max_age_days:
                raise SrsError(
                    f"This forwarding address has expired (forwarded addresses are valid for "
                    f"{self._max_age_days} days)."
                )
            return SrsAddress(f"{original_local}@{domain}", srs1=False)
        raise SrsError(_DAMAGED)

    def _hash(self, *parts: str) -> str:
        data = "".join(parts).lower().encode("utf-8")
        digest = hmac.new(self._key, data, hashlib.sha1).digest()
        return base64.b64encode(digest).decode("ascii")[:HASH_LENGTH]

    def _hash_matches(self, given: str, *parts: str) -> bool:
        # Case-insensitive (the paper's advice): the hash survives an MTA that folds case.
        return hmac.compare_digest(given.lower().encode(), self._hash(*parts).lower().encode())

    @staticmethod
    def _day(now: datetime) -> int:
        return int(now.timestamp()) // _SECONDS_PER_DAY

    def _timestamp(self, now: datetime) -> str:
        day = self._day(now) % _TIMESTAMP_CYCLE
        return _BASE32[day >> 5] + _BASE32[day & 31]

    def _age_days(self, stamp: str, now: datetime) -> int | None:
        stamp = stamp.upper()
        if len(stamp) != 2 or any(ch not in _BASE32 for ch in stamp):
            return None
        then = _BASE32.index(stamp[0]) << 5 | _BASE32.index(stamp[1])
        return (self._day(now) - then) % _TIMESTAMP_CYCLE


_DAMAGED = "This is not a valid forwarding return address."
_FORGED = "This forwarding return address was not issued here (its signature does not match)."

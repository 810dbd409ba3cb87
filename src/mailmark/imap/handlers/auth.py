"""Any-state and not-authenticated commands: CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN,
AUTHENTICATE PLAIN (SASL-IR), ENABLE, NAMESPACE, and COMPRESS (RFC 4978)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import cast

from mailmark.imap import encoder
from mailmark.imap.commands import Authenticate, Command, Compress, Enable, Login
from mailmark.imap.session import ANSWERED, Done, Reply, Session, SessionState

log = logging.getLogger(__name__)

# What ENABLE can switch on (RFC 5161); anything else is silently not enabled.
ENABLEABLE = frozenset({"IMAP4REV2", "CONDSTORE", "QRESYNC", "UTF8=ACCEPT"})
_ENABLED_NAMES = {
    "IMAP4REV2": "IMAP4rev2",
    "CONDSTORE": "CONDSTORE",
    "QRESYNC": "QRESYNC",
    "UTF8=ACCEPT": "UTF8=ACCEPT",
}


async def do_capability(session: Session, command: Command) -> Done | None:
    session.write(encoder.untagged(session.capability_code()))
    return None


async def do_noop(session: Session, command: Command) -> Done | None:
    if session.selected is not None:
        session.selected.polled_at = 0.0  # look for other nodes' changes now
    return None


async def do_logout(session: Session, command: Command) -> Done | None:
    session.write(encoder.untagged_status("BYE", "Logging out"))
    session.state = SessionState.LOGOUT
    return None


async def do_id(session: Session, command: Command) -> Done | None:
    # RFC 2971: say who we are; what the client says about itself only goes to the debug log.
    log.debug("IMAP client %s identifies as %r", session.client_ip, command)
    session.write(encoder.untagged(b'ID ("name" "Mailmark" "vendor" "Mailmark")'))
    return None


async def do_namespace(session: Session, command: Command) -> Done | None:
    # RFC 2342: one personal namespace, no prefix, "/" as the delimiter.
    session.write(encoder.untagged(b'NAMESPACE (("" "/")) NIL NIL'))
    return None


async def do_enable(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Enable)
    if "UTF8=ACCEPT" in command.extensions and session.state != SessionState.AUTHENTICATED:
        # RFC 6855 §3: only in the authenticated state, before any name was sent in another form.
        raise Reply("BAD", "ENABLE UTF8=ACCEPT is only allowed in the authenticated state")
    newly = [
        ext
        for ext in dict.fromkeys(command.extensions)
        if ext in ENABLEABLE and ext not in session.enabled
    ]
    session.enabled.update(newly)
    if "CONDSTORE" in newly or "QRESYNC" in newly:
        # RFC 7162 §3.1 / §3.2.3: ENABLE CONDSTORE is CONDSTORE-enabling; QRESYNC implies it.
        session.enable_condstore()
    session.write(encoder.untagged("ENABLED" + "".join(" " + _ENABLED_NAMES[ext] for ext in newly)))
    return None


async def do_compress(session: Session, command: Command) -> Done | None:
    """RFC 4978 §3: the OK goes out uncompressed, everything after it deflated both ways."""
    assert isinstance(command, Compress)
    if session.compressed:
        raise Reply("NO", "DEFLATE is already active", "COMPRESSIONACTIVE")
    if command.mechanism != "DEFLATE":
        raise Reply("BAD", f"Unsupported compression mechanism {command.mechanism}")
    await session.send(encoder.tagged(command.tag, "OK", "DEFLATE active"))
    session.start_compression()
    return ANSWERED


async def do_starttls(session: Session, command: Command) -> Done | None:
    if session.tls:
        raise Reply("BAD", "TLS is already active")
    # Nothing more is read in clear text: the client's ClientHello may follow the OK at once, and
    # read while the OK drains it would land in the buffer cleared below, leaving the handshake
    # to time out. start_tls resumes reading on the TLS layer.
    cast("asyncio.Transport", session.writer.transport).pause_reading()
    await session.send(encoder.tagged(command.tag, "OK", "Begin TLS negotiation now"))
    # RFC 9051 §6.2.1 / RFC 3207-style injection: whatever the client pipelined after STARTTLS
    # arrived in clear text and is dropped, never executed after the handshake.
    buffered = getattr(session.stream, "_buffer", None)
    if isinstance(buffered, bytearray):
        buffered.clear()
    try:
        await asyncio.wait_for(session.writer.start_tls(session.config.tls_context), 30)
    except (OSError, TimeoutError, ConnectionError) as exc:
        log.info("STARTTLS handshake with %s failed: %s", session.client_ip, exc)
        session.state = SessionState.LOGOUT
        session.writer.close()
        return ANSWERED
    session.tls = True
    return ANSWERED


def _require_tls(session: Session) -> None:
    if not session.tls:
        # RFC 9051 §6.2.3 / §7.1: LOGINDISABLED until TLS is active.
        raise Reply("NO", "Use STARTTLS before logging in", "PRIVACYREQUIRED")


async def _log_in(session: Session, address: str, password: str) -> Done:
    mailbox = await session.logins.authenticate(address, password, session.client_ip)
    session.mailbox = mailbox
    session.state = SessionState.AUTHENTICATED
    return Done("Logged in", session.capability_code())


async def do_login(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Login)
    _require_tls(session)
    return await _log_in(session, command.user, command.password)


async def do_authenticate(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Authenticate)
    if command.mechanism != "PLAIN":
        raise Reply("NO", f"Unsupported authentication mechanism {command.mechanism}", "CANNOT")
    _require_tls(session)
    response = command.initial
    if response is None:
        await session.send(encoder.continuation())
        line = await asyncio.wait_for(session.reader.read_line(), session.config.idle_timeout)
        if line == b"*":
            raise Reply("BAD", "Authentication cancelled")  # RFC 9051 §6.2.2
        response = line.decode("ascii", "replace")
    try:
        # RFC 4959 §3: "=" is an empty initial response.
        decoded = b"" if response == "=" else base64.b64decode(response, validate=True)
    except (binascii.Error, ValueError):
        raise Reply("BAD", "Invalid base64 in the SASL response") from None
    parts = decoded.split(b"\x00")
    if len(parts) != 3:
        raise Reply("BAD", "Malformed PLAIN response (RFC 4616)")
    try:
        authzid, authcid, password = (part.decode("utf-8") for part in parts)
    except UnicodeDecodeError:
        raise Reply("BAD", "PLAIN response is not UTF-8") from None
    if authzid and authzid.lower() != authcid.lower():
        raise Reply("NO", "Logging in as another user is not allowed", "AUTHORIZATIONFAILED")
    return await _log_in(session, authcid, password)

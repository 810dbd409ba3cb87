"""The submission handler (RFC 6409): mail clients of our mailboxes hand over outgoing mail.

Two listeners share it: port 587 with STARTTLS required before anything but EHLO/NOOP/QUIT (RFC
3207 §4; AUTH is not even advertised in clear text) and port 465 with implicit TLS (RFC 8314 §3.3).
Every transaction needs AUTH (RFC 4954) as a mailbox; who may send as whom, suppression, quota and
queueing are core's decisions (SendingService), and the 250 comes after its commit.
"""

from __future__ import annotations

import base64
import binascii
import logging
import weakref
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Session

from mailmark.core.addresses import is_malformed_path
from mailmark.core.errors import MailmarkError, TooManyAttempts
from mailmark.core.logins import MailboxLogins
from mailmark.core.model import Mailbox
from mailmark.core.sending import SendingService
from mailmark.smtp_in.mx import (
    BARE_LINE_ENDING_REPLY,
    MALFORMED_RECIPIENT_REPLY,
    MALFORMED_SENDER_REPLY,
)
from mailmark.smtp_in.replies import TEMPORARY_FAILURE, reply_for
from mailmark.smtp_in.server import MailmarkEnvelope, has_bare_line_ending

log = logging.getLogger(__name__)

# Failed AUTH commands one connection may make before it is closed; the per-IP throttle in core
# bounds guessing across connections.
MAX_FAILED_AUTH_PER_SESSION = 3
AUTH_SUCCESS_REPLY = "235 2.7.0 Authentication successful"  # RFC 4954 §6
NOT_AUTHENTICATED_REPLY = "530 5.7.0 Authentication required"
NULL_SENDER_REPLY = "553 5.7.1 Submitted mail needs the sending mailbox as its sender"
TOO_MANY_FAILURES_REPLY = "421 4.7.0 Too many failed authentication attempts; closing connection"


class SubmissionHandler:
    def __init__(
        self, *, logins: MailboxLogins, sending: SendingService, max_recipients: int
    ) -> None:
        self._logins = logins
        self._sending = sending
        self._max_recipients = max_recipients
        self._failed_auth: weakref.WeakKeyDictionary[Session, int] = weakref.WeakKeyDictionary()

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        extensions = [line[4:] for line in responses[1:] if line[4:] != "HELP"]
        extensions += ["PIPELINING", "ENHANCEDSTATUSCODES"]
        lines = [responses[0], *(f"250-{ext}" for ext in extensions)]
        lines[-1] = "250 " + lines[-1][4:]
        return lines

    # aiosmtpd's own AUTH mechanisms call a synchronous authenticator; a password check is a
    # database lookup and an argon2 verification, so these replace them (same names, same wire
    # exchange through aiosmtpd's challenge_auth).
    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        """RFC 4616: base64 of authzid NUL authcid NUL password, inline or after a 334."""
        credentials = await _credentials(server, args, challenge="")
        if credentials is None:
            return AuthResult(success=False, handled=True)
        authzid, separator1, rest = credentials.partition(b"\x00")
        login, separator2, password = rest.partition(b"\x00")
        if not separator1 or not separator2 or b"\x00" in password:
            await server.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        if authzid and authzid != login:
            # RFC 4616 §2: acting as another identity is not offered.
            return await self._failed(server, "535 5.7.8 Authentication credentials invalid")
        return await self._check(server, login, password)

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        """The LOGIN mechanism (draft-murchison-sasl-login): user name, then password."""
        login = await _credentials(server, args, challenge="Username:")
        if login is None:
            return AuthResult(success=False, handled=True)
        password = await server.challenge_auth("Password:")
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._check(server, login, password)

    async def _check(self, server: SMTP, login: bytes, password: bytes) -> AuthResult:
        session = server.session
        assert session is not None
        client_ip = str(session.peer[0]) if session.peer else ""
        try:
            mailbox = await self._logins.authenticate(
                login.decode("utf-8", errors="replace"),
                password.decode("utf-8", errors="replace"),
                client_ip,
            )
        except TooManyAttempts as error:
            log.warning("submission login refused for %s: throttled", client_ip)
            await server.push(reply_for(error))
            return AuthResult(success=False, handled=True)
        except MailmarkError as error:
            log.info("submission login failed from %s", client_ip)
            return await self._failed(server, reply_for(error))
        log.info("submission login as %s from %s", mailbox.address, client_ip)
        # The session is marked and answered here: on a successful AuthResult aiosmtpd also sets
        # its deprecated Session.login_data, which logs a warning for every login.
        session.authenticated = True
        session.auth_data = mailbox  # type: ignore[assignment]  # aiosmtpd declares it None
        await server.push(AUTH_SUCCESS_REPLY)
        return AuthResult(success=False, handled=True)

    async def _failed(self, server: SMTP, reply: str) -> AuthResult:
        session = server.session
        assert session is not None
        failures = self._failed_auth.get(session, 0) + 1
        self._failed_auth[session] = failures
        if failures >= MAX_FAILED_AUTH_PER_SESSION:
            await server.push(reply)
            await server.push(TOO_MANY_FAILURES_REPLY)
            if server.transport is not None:
                server.transport.close()
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=reply)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: MailmarkEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        mailbox = _authenticated(session)
        if mailbox is None:  # aiosmtpd checks first; this keeps the rule local and explicit
            return NOT_AUTHENTICATED_REPLY
        if is_malformed_path(address):
            return MALFORMED_SENDER_REPLY
        if address in ("", "<>"):
            return NULL_SENDER_REPLY
        try:
            self._sending.check_sender(mailbox, address)
        except MailmarkError as error:
            return reply_for(error)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: MailmarkEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        mailbox = _authenticated(session)
        if mailbox is None:
            return NOT_AUTHENTICATED_REPLY
        if len(envelope.rcpt_tos) >= self._max_recipients:
            # RFC 5321 §4.5.3.1.10: a temporary code, so the client sends the rest later.
            return "452 4.5.3 Too many recipients"
        if is_malformed_path(address):
            return MALFORMED_RECIPIENT_REPLY
        try:
            await self._sending.check_recipient(mailbox, address)
        except MailmarkError as error:
            return reply_for(error)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: MailmarkEnvelope) -> str:
        mailbox = _authenticated(session)
        if mailbox is None:
            return NOT_AUTHENTICATED_REPLY
        raw = envelope.original_content
        assert isinstance(raw, bytes)
        if has_bare_line_ending(raw):
            return BARE_LINE_ENDING_REPLY
        try:
            submission = await self._sending.submit_raw(
                mailbox=mailbox, recipients=envelope.rcpt_tos, raw=raw, source="submission"
            )
        except MailmarkError as error:
            return reply_for(error)
        except Exception:
            log.exception("submission by %s failed", mailbox.address)
            return TEMPORARY_FAILURE
        return f"250 2.0.0 Ok: queued as {submission.outbound_id}"


async def _credentials(server: SMTP, args: list[str], *, challenge: str) -> bytes | None:
    """The decoded initial response (RFC 4954 §4), or the answer to a 334 challenge; None when the
    client cancelled or sent something undecodable (already answered)."""
    if len(args) > 1:
        text = args[1]
        if text == "=":  # RFC 4954 §4: an empty initial response
            return b""
        try:
            return base64.b64decode(text.encode("ascii", errors="replace"), validate=True)
        except (binascii.Error, ValueError):
            await server.push("501 5.5.2 Can't decode base64")
            return None
    answer = await server.challenge_auth(challenge)
    return answer if isinstance(answer, bytes) else None


def _authenticated(session: Session) -> Mailbox | None:
    mailbox = session.auth_data if session.authenticated else None
    return mailbox if isinstance(mailbox, Mailbox) else None

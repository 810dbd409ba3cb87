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

from aiosmtpd.smtp import SMTP, AuthResult, Session

from mailmark.core.addresses import is_malformed_path
from mailmark.core.errors import MailmarkError, TooManyAttempts
from mailmark.core.logins import MailboxLogins
from mailmark.core.model import Mailbox
from mailmark.core.sending import SendingService
from mailmark.smtp_in import replies
from mailmark.smtp_in.server import MailmarkEnvelope, SmtpHandler, has_bare_line_ending

log = logging.getLogger(__name__)

# Failed AUTH commands one connection may make before it is closed; the per-IP throttle in core
# bounds guessing across connections.
MAX_FAILED_AUTH_PER_SESSION = 3


class SubmissionHandler(SmtpHandler):
    offers_auth = True

    def __init__(
        self, *, logins: MailboxLogins, sending: SendingService, max_recipients: int
    ) -> None:
        super().__init__(max_recipients=max_recipients)
        self._logins = logins
        self._sending = sending
        self._failed_auth: weakref.WeakKeyDictionary[Session, int] = weakref.WeakKeyDictionary()

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
            await server.push(replies.AUTH_UNSPLITTABLE)
            return AuthResult(success=False, handled=True)
        if authzid and authzid != login:
            # RFC 4616 §2: acting as another identity is not offered.
            return await self._failed(server, replies.AUTH_INVALID)
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
            await server.push(replies.reply_for(error))
            return AuthResult(success=False, handled=True)
        except MailmarkError as error:
            log.info("submission login failed from %s", client_ip)
            return await self._failed(server, replies.reply_for(error))
        log.info("submission login as %s from %s", mailbox.address, client_ip)
        # The session is marked and answered here: on a successful AuthResult aiosmtpd also sets
        # its deprecated Session.login_data, which logs a warning for every login.
        session.authenticated = True
        session.auth_data = mailbox  # type: ignore[assignment]  # aiosmtpd declares it None
        await server.push(replies.AUTH_SUCCESS)
        return AuthResult(success=False, handled=True)

    async def _failed(self, server: SMTP, reply: str) -> AuthResult:
        session = server.session
        assert session is not None
        failures = self._failed_auth.get(session, 0) + 1
        self._failed_auth[session] = failures
        if failures >= MAX_FAILED_AUTH_PER_SESSION:
            await server.push(reply)
            await server.push(replies.TOO_MANY_AUTH_FAILURES)
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
            return replies.NOT_AUTHENTICATED
        if is_malformed_path(address):
            return replies.MALFORMED_SENDER
        if address in ("", "<>"):
            return replies.NULL_SENDER
        try:
            self._sending.check_sender(mailbox, address)
        except MailmarkError as error:
            return replies.reply_for(error)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return replies.SENDER_OK

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
            return replies.NOT_AUTHENTICATED
        refusal = self.recipient_refusal(envelope, address)
        if refusal is not None:
            return refusal
        try:
            await self._sending.check_recipient(mailbox, address)
        except MailmarkError as error:
            return replies.reply_for(error)
        return self.accept_recipient(envelope, address, options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: MailmarkEnvelope) -> str:
        mailbox = _authenticated(session)
        if mailbox is None:
            return replies.NOT_AUTHENTICATED
        raw = envelope.original_content
        assert isinstance(raw, bytes)
        if has_bare_line_ending(raw):
            return replies.BARE_LINE_ENDING
        try:
            submission = await self._sending.submit_raw(
                mailbox=mailbox, recipients=envelope.rcpt_tos, raw=raw, source="submission"
            )
        except MailmarkError as error:
            return replies.reply_for(error)
        except Exception:
            log.exception("submission by %s failed", mailbox.address)
            return replies.TEMPORARY_FAILURE
        envelope.transaction_id = str(submission.outbound_id)
        return replies.queued(submission.outbound_id)


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
            await server.push(replies.AUTH_UNDECODABLE)
            return None
    answer = await server.challenge_auth(challenge)
    return answer if isinstance(answer, bytes) else None


def _authenticated(session: Session) -> Mailbox | None:
    mailbox = session.auth_data if session.authenticated else None
    return mailbox if isinstance(mailbox, Mailbox) else None

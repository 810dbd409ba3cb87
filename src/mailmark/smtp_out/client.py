"""SMTP client to remote MX hosts (aiosmtplib): connection reuse, STARTTLS, per-recipient replies."""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import aiosmtplib

from mailmark.core.relays import Relay, RelayTls
from mailmark.core.smtp_reply import SmtpReply
from mailmark.smtp_out.mta_sts import MtaStsPolicy
from mailmark.smtp_out.mx import DeliveryFailure, MxHost

__all__ = [
    "OutgoingMessage",
    "SmtpConnection",
    "SmtpDialer",
    "SmtpTimeouts",
    "opportunistic_tls_context",
    "relay_tls_context",
]

log = logging.getLogger(__name__)

_ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")
# RFC 5321 §4.5.2: a line that starts with a period gets one more.
_LEADING_PERIOD = re.compile(rb"(?m)^\.")
# What may not appear in a path outside a quoted local part (RFC 5321 §4.1.2): whitespace,
# controls, brackets and quotes, which could smuggle parameters or commands onto the line.
_UNSAFE_IN_PATH = re.compile(r'[\x00-\x20<>"\x7f]')
_QUOTED_LOCAL_PART = re.compile(r'"(?:[^"\\\x00-\x1f\x7f]|\\[ -~])*"@[^\x00-\x20<>"\x7f]+')
MAX_REPLY_TEXT = 2000
TlsMode = Literal["verified", "opportunistic", "none"]


@dataclass(frozen=True)
class SmtpTimeouts:
    """Seconds to wait for each reply: RFC 5321 §4.5.3.2's minimums, which are also our bounds.

    `connect` (TCP and TLS set-up) is not in the RFC; `transaction` caps one whole transaction
    so that a server trickling replies cannot hold a delivery for longer than its lease."""

    connect: float = 60.0
    greeting: float = 300.0  # §4.5.3.2.1 initial 220 message
    command: float = 300.0  # §4.5.3.2.2-3 MAIL and RCPT (EHLO, STARTTLS and RSET alike)
    data_end: float = 600.0  # §4.5.3.2.6 DATA termination (the block of §4.5.3.2.5 is one write)
    transaction: float = 720.0


def opportunistic_tls_context() -> ssl.SSLContext:
    """TLS without certificate checks: better than plain text when nobody asks for more
    (RFC 7435 opportunistic security); MTA-STS enforce uses a verifying context instead."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def relay_tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Verifies a relay's certificate and host name: against `ca_file` alone when given (a
    relay with a private CA), else against the system's CAs."""
    return ssl.create_default_context(cafile=ca_file)


def reply_of(code: int, message: str, mx_host: str | None) -> SmtpReply:
    """An SmtpReply from a server's code and text, with the RFC 3463 enhanced code when given."""
    text = message.strip()[:MAX_REPLY_TEXT]
    match = _ENHANCED.match(text)
    return SmtpReply(code=code, enhanced=match[1] if match else None, text=text, mx_host=mx_host)


def needs_8bitmime(message: bytes) -> bool:
    return not message.isascii()


@dataclass(frozen=True)
class OutgoingMessage:
    """A CRLF message made ready for DATA once, however many transactions carry it: dot-stuffed
    and ended with the final period, its SIZE (RFC 1870) and body type known."""

    wire: bytes
    size: int
    eight_bit: bool

    @classmethod
    def from_crlf(cls, message: bytes) -> OutgoingMessage:
        """`message` must be CRLF-only and end with CRLF (see dkim.to_crlf)."""
        if message.startswith(b".") or b"\n." in message:
            stuffed = _LEADING_PERIOD.sub(b"..", message)
        else:
            stuffed = message
        wire = stuffed + b".\r\n"
        return cls(wire, len(message), needs_8bitmime(message))


def smtp_path(address: str) -> bytes:
    """The <address> of MAIL FROM and RCPT TO (RFC 5321 §4.1.2); ValueError for an address
    that cannot be put on a command line safely."""
    if not address.isascii():
        # RFC 6531 §3.2: a non-ASCII address needs SMTPUTF8, which this client does not offer.
        raise ValueError(f"{address!r} is not ASCII, and this server does not send SMTPUTF8")
    quoted = _QUOTED_LOCAL_PART.fullmatch(address)
    if _UNSAFE_IN_PATH.search(address) is not None and quoted is None:
        raise ValueError(f"{address!r} cannot be sent as an SMTP path")
    return b"<" + address.encode("ascii") + b">"


class ConnectionGone(Exception):
    """A reused connection was closed by the server between transactions: open a new one."""


class SmtpConnection:
    """One open SMTP session to one MX host, used for several transactions in turn."""

    def __init__(self, smtp: aiosmtplib.SMTP, mx_host: str, tls: bool, timeouts: SmtpTimeouts):
        self._smtp = smtp
        self.mx_host = mx_host
        self.tls = tls
        self._timeouts = timeouts
        self.transactions = 0
        self.broken = False
        self._open_transaction = False

    async def send(
        self, envelope_from: str, recipients: Sequence[str], message: OutgoingMessage
    ) -> list[SmtpReply]:
        """One transaction: MAIL, one RCPT per recipient, DATA; a reply for each recipient.

        Raises ConnectionGone when a reused connection turns out closed before anything of this
        transaction was sent."""
        if self.broken:
            raise ConnectionGone(f"connection to {self.mx_host} is no longer usable")
        if self._open_transaction:
            # RFC 5321 §4.1.1.5: the last transaction ended before DATA (every RCPT refused), so
            # the server still holds its MAIL; clear it. After a DATA reply the server has reset
            # by itself (§4.1.1.4), and skipping RSET saves a round trip per message.
            try:
                reply = await self._smtp.rset(timeout=self._timeouts.command)
            except (aiosmtplib.SMTPException, OSError) as exc:
                self.broken = True
                raise ConnectionGone(f"{self.mx_host} closed the connection: {exc}") from exc
            if reply.code != 250:
                self.broken = True
                raise ConnectionGone(f"{self.mx_host} answered RSET with {reply.code}")
            self._open_transaction = False
        reused = self.transactions > 0
        self.transactions += 1
        try:
            async with asyncio.timeout(self._timeouts.transaction):
                return await self._transaction(envelope_from, recipients, message, reused)
        except (
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPTimeoutError,
            TimeoutError,
            OSError,
        ) as exc:
            self.broken = True
            reason = "timed out" if isinstance(exc, TimeoutError) else f"was lost ({exc})"
            failure = SmtpReply(0, "4.4.2", f"connection to {self.mx_host} {reason}", self.mx_host)
            return [failure] * len(recipients)

    async def _transaction(
        self,
        envelope_from: str,
        recipients: Sequence[str],
        message: OutgoingMessage,
        reused: bool,
    ) -> list[SmtpReply]:
        # Commands go through SMTP.execute_command with paths built here: aiosmtplib's mail()
        # and rcpt() parse every address with email.utils, a fifth of a transaction's CPU.
        smtp, timeouts = self._smtp, self._timeouts
        options: list[bytes] = []
        if smtp.supports_extension("size"):
            options.append(b"SIZE=%d" % message.size)  # RFC 1870: refused early when too large
        if message.eight_bit and smtp.supports_extension("8bitmime"):
            options.append(b"BODY=8BITMIME")  # RFC 6152
        try:
            sender_path = smtp_path(envelope_from)
        except ValueError as refused:
            # A permanent failure of this message alone (RFC 3463 5.1.7: bad sender address
            # syntax), not a local error that would defer it again and again.
            return [SmtpReply(553, "5.1.7", str(refused), self.mx_host)] * len(recipients)
        try:
            response = await smtp.execute_command(
                b"MAIL", b"FROM:" + sender_path, *options, timeout=timeouts.command
            )
        except (aiosmtplib.SMTPServerDisconnected, OSError) as exc:
            if not reused:
                raise
            # A reused connection the server closed while idle: nothing of this transaction was
            # accepted yet, so a fresh connection retries it with no outcome at stake.
            self.broken = True
            raise ConnectionGone(f"{self.mx_host} closed the connection: {exc}") from exc
        if response.code != 250:
            if reused and response.code == 421:
                self.broken = True
                raise ConnectionGone(f"{self.mx_host} is closing: {response.message}")
            return [reply_of(response.code, response.message, self.mx_host)] * len(recipients)
        self._open_transaction = True
        replies: list[SmtpReply | None] = []
        for recipient in recipients:
            try:
                recipient_path = smtp_path(recipient)
            except ValueError as refused:
                # This recipient fails alone (5.1.3: bad destination address syntax); the others
                # of the transaction go on.
                replies.append(SmtpReply(553, "5.1.3", str(refused), self.mx_host))
                continue
            response = await smtp.execute_command(
                b"RCPT", b"TO:" + recipient_path, timeout=timeouts.command
            )
            if response.code in (250, 251):
                replies.append(None)  # accepted: its outcome is the DATA reply
            else:
                replies.append(reply_of(response.code, response.message, self.mx_host))
        if all(reply is not None for reply in replies):
            return [reply for reply in replies if reply is not None]
        final = await self._data(message)
        self._open_transaction = False
        return [final if reply is None else reply for reply in replies]

    async def _data(self, message: OutgoingMessage) -> SmtpReply:
        # The 354 within the command timeout (RFC 5321 §4.5.3.2.4), then the message, already
        # dot-stuffed, and the final reply within the DATA termination timeout (§4.5.3.2.6).
        smtp = self._smtp
        response = await smtp.execute_command(b"DATA", timeout=self._timeouts.command)
        if response.code != 354:
            return reply_of(response.code, response.message, self.mx_host)
        protocol = smtp.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        try:
            protocol.write(message.wire)
            response = await protocol.read_response(timeout=self._timeouts.data_end)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            smtp.close()
            raise
        return reply_of(response.code, response.message, self.mx_host)

    async def close(self) -> None:
        """QUIT politely (RFC 5321 §4.1.1.10), bounded; closes the socket whatever happens."""
        try:
            if not self.broken and self._smtp.is_connected:
                await self._smtp.quit(timeout=5.0)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            self._smtp.close()


class SmtpDialer:
    """Opens an SMTP session to the first reachable MX host of a domain."""

    def __init__(
        self,
        *,
        helo_name: str,
        port: int,
        timeouts: SmtpTimeouts | None = None,
        verified_tls: ssl.SSLContext | None = None,
        opportunistic_tls: ssl.SSLContext | None = None,
        relay_tls: ssl.SSLContext | None = None,
    ) -> None:
        self._helo_name = helo_name
        self._port = port
        self._timeouts = timeouts or SmtpTimeouts()
        self._verified_tls = verified_tls or ssl.create_default_context()
        self._opportunistic_tls = opportunistic_tls or opportunistic_tls_context()
        self._relay_tls = relay_tls or relay_tls_context()

    async def open(
        self, domain: str, hosts: Sequence[MxHost], policy: MtaStsPolicy | None = None
    ) -> SmtpConnection:
        """A ready session (EHLO done, TLS up when possible or required); raises DeliveryFailure
        (temporary) when no host could be used."""
        mode: TlsMode = "opportunistic"
        candidates = list(hosts)
        if policy is not None and policy.enforced:
            # RFC 8461 §4.1-4.2: only MX hosts the policy names, over TLS with a valid certificate.
            mode = "verified"
            candidates = [host for host in hosts if policy.allows(host.name)]
            if not candidates:
                names = ", ".join(host.name for host in hosts)
                raise DeliveryFailure(
                    451,
                    "4.7.5",
                    f"MTA-STS policy of {domain} (enforce) allows none of its MX hosts: {names}",
                )
        errors: list[str] = []
        codes: set[str] = set()
        for host in candidates:
            for address in host.addresses:
                try:
                    return await self._open(host.name, address, mode)
                except DeliveryFailure as exc:
                    errors.append(f"{host.name}[{address}]: {exc.text}")
                    codes.add(exc.enhanced)
                    log.info(
                        "delivery to %s: %s[%s] unusable: %s", domain, host.name, address, exc.text
                    )
        # The precise code when every host failed alike (4.7.5: TLS), else "no answer" (4.4.1).
        enhanced = codes.pop() if len(codes) == 1 else "4.4.1"
        raise DeliveryFailure(451, enhanced, "; ".join(errors)[:MAX_REPLY_TEXT] or "no MX host")

    async def _open(self, name: str, address: str, mode: TlsMode) -> SmtpConnection:
        timeouts = self._timeouts
        smtp = aiosmtplib.SMTP(
            hostname=address,
            port=self._port,
            local_hostname=self._helo_name,
            timeout=timeouts.command,
            start_tls=False,
            use_tls=False,
        )
        try:
            greeting = await smtp.connect(timeout=timeouts.connect)
        except aiosmtplib.SMTPConnectResponseError as exc:
            smtp.close()
            raise DeliveryFailure(451, "4.4.1", f"greeted with {exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise DeliveryFailure(451, "4.4.1", f"connection failed: {exc}") from exc
        if greeting.code != 220:
            smtp.close()
            raise DeliveryFailure(451, "4.4.1", f"greeted with {greeting.code} {greeting.message}")
        try:
            await smtp.ehlo(timeout=timeouts.command)
        except aiosmtplib.SMTPHeloError:
            try:
                await smtp.helo(timeout=timeouts.command)  # RFC 5321 §3.2: fall back to HELO
            except (aiosmtplib.SMTPException, OSError) as exc:
                smtp.close()
                raise DeliveryFailure(451, "4.4.1", f"EHLO and HELO refused: {exc}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise DeliveryFailure(451, "4.4.1", f"EHLO failed: {exc}") from exc
        if mode == "none" or (mode == "opportunistic" and not smtp.supports_extension("starttls")):
            return SmtpConnection(smtp, name, False, timeouts)
        if not smtp.supports_extension("starttls"):
            smtp.close()
            raise DeliveryFailure(451, "4.7.5", "STARTTLS required by MTA-STS but not offered")
        context = self._verified_tls if mode == "verified" else self._opportunistic_tls
        try:
            await smtp.starttls(server_hostname=name, tls_context=context, timeout=timeouts.connect)
            await smtp.ehlo(timeout=timeouts.command)  # RFC 3207 §4.2: forget, then ask again
        except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
            smtp.close()
            if mode == "verified":
                raise DeliveryFailure(
                    451, "4.7.5", f"TLS required by MTA-STS failed: {exc}"
                ) from exc
            # Opportunistic TLS that fails is no worse than none: reconnect in plain text.
            log.info("STARTTLS with %s[%s] failed (%s); trying without TLS", name, address, exc)
            return await self._open(name, address, "none")
        return SmtpConnection(smtp, name, True, timeouts)

    async def open_relay(self, relay: Relay) -> SmtpConnection:
        """A ready session with a relay host: TLS up with its certificate verified, then AUTH
        when it has credentials. Raises DeliveryFailure, always temporary (the fault is in the
        relay or its setting, not in the recipient), with the relay's own reply in the text.

        No MX lookup, MTA-STS or DANE: those name and secure a recipient domain's own MX hosts,
        and the relay, the next hop we were told to use, applies them when it delivers. Its
        name is resolved by the system's resolver, so that /etc/hosts can name a private relay."""
        timeouts = self._timeouts
        where = f"relay {relay.address}"
        implicit = relay.tls is RelayTls.IMPLICIT
        smtp = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            local_hostname=self._helo_name,
            timeout=timeouts.command,
            use_tls=implicit,
            start_tls=False,
            tls_context=self._relay_tls if implicit else None,
        )
        try:
            try:
                greeting = await smtp.connect(timeout=timeouts.connect)
            except aiosmtplib.SMTPConnectResponseError as exc:
                raise DeliveryFailure(
                    451, "4.4.1", f"{where} greeted with {exc.code} {exc.message}"
                ) from exc
            except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
                if _tls_error(exc):
                    raise DeliveryFailure(451, "4.7.5", f"TLS with {where} failed: {exc}") from exc
                raise DeliveryFailure(451, "4.4.1", f"cannot connect to {where}: {exc}") from exc
            if greeting.code != 220:
                raise DeliveryFailure(
                    451, "4.4.1", f"{where} greeted with {greeting.code} {greeting.message}"
                )
            await self._relay_ehlo(smtp, where)
            if not implicit:
                # RFC 3207 §4: a client that requires TLS does not go on without it.
                if not smtp.supports_extension("starttls"):
                    raise DeliveryFailure(
                        451,
                        "4.7.5",
                        f"{where} does not offer STARTTLS, which the relay setting requires: "
                        "nothing was sent",
                    )
                try:
                    await smtp.starttls(
                        server_hostname=relay.host,
                        tls_context=self._relay_tls,
                        timeout=timeouts.connect,
                    )
                except aiosmtplib.SMTPResponseException as exc:
                    raise DeliveryFailure(
                        451, "4.7.5", f"{where} refused STARTTLS: {exc.code} {exc.message}"
                    ) from exc
                except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
                    raise DeliveryFailure(451, "4.7.5", f"TLS with {where} failed: {exc}") from exc
                await self._relay_ehlo(smtp, where)  # RFC 3207 §4.2: forget, then ask again
            if relay.username:
                await self._relay_login(smtp, relay, where)
        except DeliveryFailure:
            smtp.close()
            raise
        return SmtpConnection(smtp, relay.host, True, timeouts)

    async def _relay_ehlo(self, smtp: aiosmtplib.SMTP, where: str) -> None:
        try:
            await smtp.ehlo(timeout=self._timeouts.command)
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryFailure(
                451, "4.4.1", f"{where} refused EHLO: {exc.code} {exc.message}"
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailure(451, "4.4.1", f"EHLO with {where} failed: {exc}") from exc

    async def _relay_login(self, smtp: aiosmtplib.SMTP, relay: Relay, where: str) -> None:
        """RFC 4954 AUTH, only ever over TLS (the caller has made sure of it). A refusal is a
        retry, not a bounce: the credentials are ours to fix, and the mail waits meanwhile."""
        assert relay.username is not None
        if not smtp.supports_extension("auth"):
            raise DeliveryFailure(
                451, "4.7.0", f"{where} does not offer AUTH, and the relay setting has a username"
            )
        try:
            await smtp.login(relay.username, relay.password or "", timeout=self._timeouts.command)
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryFailure(
                451,
                "4.7.0",
                f"{where} refused the login of {relay.username}: {exc.code} {exc.message}",
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailure(
                451, "4.7.0", f"AUTH with {where} as {relay.username} failed: {exc}"
            ) from exc


def _tls_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False

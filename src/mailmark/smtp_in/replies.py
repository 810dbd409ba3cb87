"""Every SMTP reply text of the listeners, and core errors → SMTP replies, in one place (RFC 5321
§4.2 codes, RFC 3463 enhanced codes)."""

from __future__ import annotations

import re

from mailmark.core.errors import (
    AccountPaused,
    AuthenticationFailed,
    ClientBlocklisted,
    Conflict,
    Forbidden,
    InvalidInput,
    MailLoop,
    MailmarkError,
    MessageTooLarge,
    NotFound,
    PolicyRejected,
    QuotaExceeded,
    RelayDenied,
    ReportRefused,
    SpamDeferred,
    SpamFilterUnavailable,
    SpamRefused,
    StorageFull,
    StorageUnavailable,
    Suppressed,
    TooManyAttempts,
    UnknownMailbox,
)

# Most specific first: the first matching class wins.
_REPLIES: tuple[tuple[type[MailmarkError], str], ...] = (
    (RelayDenied, "554 5.7.1"),
    (UnknownMailbox, "550 5.1.1"),
    (NotFound, "550 5.1.1"),
    (MessageTooLarge, "552 5.3.4"),
    (MailLoop, "554 5.4.6"),
    (PolicyRejected, "550 5.7.26"),
    # RFC 3463 §3.8: X.7.1 delivery not authorized, message refused (spam, blocklisted client).
    (SpamRefused, "550 5.7.1"),
    (ClientBlocklisted, "554 5.7.1"),
    (SpamDeferred, "451 4.7.1"),
    (SpamFilterUnavailable, "451 4.3.0"),
    # RFC 3463 §3.7: X.6.0, the content could not be used (a report we cannot read).
    (ReportRefused, "550 5.6.0"),
    (QuotaExceeded, "554 5.7.0"),
    (AccountPaused, "554 5.7.0"),
    (Forbidden, "553 5.7.1"),
    (Conflict, "554 5.0.0"),
    (InvalidInput, "501 5.5.4"),
    # RFC 4954 §6: wrong credentials; a client over the failed-login limit may try again later.
    (AuthenticationFailed, "535 5.7.8"),
    (TooManyAttempts, "454 4.7.0"),
    # A local policy refusal of the recipient (RFC 3463 §3.8: X.7.1 delivery not authorized).
    (Suppressed, "550 5.7.1"),
    # RFC 3463 §3.4: X.3.1 mail system full; X.3.0 other, here a locked or read-only database.
    (StorageFull, "452 4.3.1"),
    (StorageUnavailable, "451 4.3.0"),
)

TEMPORARY_FAILURE = "451 4.3.0 Temporary local problem storing the message; please try again later"

# Transactions (MX and submission).
SENDER_OK = "250 2.1.0 Sender OK"
RECIPIENT_OK = "250 2.1.5 Recipient OK"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
MALFORMED_SENDER = "553 5.1.7 Malformed sender address"
MALFORMED_RECIPIENT = "553 5.1.3 Malformed recipient address"
BARE_LINE_ENDING = (
    "550 5.5.2 Message refused: it contains a bare CR or LF; lines must end with CRLF "
    "(RFC 5321 section 2.3.8)"
)

# DATA, as aiosmtpd words it (server.py reads the data itself).
NEED_RCPT = "503 Error: need RCPT command"
DATA_SYNTAX = "501 Syntax: DATA"
START_DATA = "354 End data with <CR><LF>.<CR><LF>"
LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
TOO_MUCH_DATA = "552 Error: Too much mail data"
DATA_OK = "250 OK"

# The connection (RFC 5321 §3.8: 421 before closing the channel).
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address; try again later"
SERVER_BUSY = "421 4.3.2 Too many connections to this server; try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, please try again later"

# Submission: AUTH (RFC 4954 §6) and the sender it needs.
AUTH_SUCCESS = "235 2.7.0 Authentication successful"
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
AUTH_UNSPLITTABLE = "501 5.5.2 Can't split auth value"
AUTH_UNDECODABLE = "501 5.5.2 Can't decode base64"
NOT_AUTHENTICATED = "530 5.7.0 Authentication required"
TOO_MANY_AUTH_FAILURES = "421 4.7.0 Too many failed authentication attempts; closing connection"
NULL_SENDER = "553 5.7.1 Submitted mail needs the sending mailbox as its sender"


def queued(transaction: str | int) -> str:
    return f"250 2.0.0 Ok: queued as {transaction}"


def report_received(transaction: str) -> str:
    """The answer to a message that went only to VERP return paths (used or dropped alike)."""
    return f"250 2.0.0 Ok: report received as {transaction}"


# Enhanced codes for replies that carry none (aiosmtpd's own replies), by basic code (RFC 3463).
# 220 is STARTTLS's "Ready to start TLS"; the 220 greeting never gets one (server.py). 3xx replies
# (354) have none: RFC 3463 §3.1 defines only the classes 2, 4 and 5.
_DEFAULT_ENHANCED = {
    "220": "2.0.0",
    "221": "2.0.0",
    "250": "2.0.0",
    "251": "2.1.5",
    "252": "2.7.0",
    "421": "4.3.0",
    "450": "4.2.0",
    "451": "4.3.0",
    "452": "4.5.3",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "534": "5.7.9",
    "535": "5.7.8",
    "538": "5.7.11",
    "550": "5.0.0",
    "551": "5.1.6",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
    "555": "5.5.4",
}
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}( |$)")


def reply_for(error: MailmarkError) -> str:
    for error_type, code in _REPLIES:
        if isinstance(error, error_type):
            return f"{code} {_one_line(error.message)}"
    return f"554 5.0.0 {_one_line(error.message)}"


def with_enhanced_code(reply: str) -> str:
    """Add an RFC 3463 enhanced code to a reply line that lacks one (RFC 2034 §3 wants it on every
    reply but the greeting and EHLO/HELO)."""
    if len(reply) < 4 or _HAS_ENHANCED.match(reply):
        return reply
    enhanced = _DEFAULT_ENHANCED.get(reply[:3])
    if enhanced is None:
        return reply
    text = reply[4:]
    return f"{reply[:4]}{enhanced} {text}" if text else f"{reply[:4]}{enhanced}"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400]

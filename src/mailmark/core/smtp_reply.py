"""What a receiving server answered, and which answers condemn the address itself."""

from __future__ import annotations

from dataclasses import dataclass

# Reply text kept with a delivery, an event or a suppression at most.
MAX_REPLY_TEXT = 2000
# Without an enhanced code, these basic codes say the address itself is bad (RFC 5321 §4.2.3).
PERMANENT_ADDRESS_CODES = frozenset({550, 551, 553})


@dataclass(frozen=True)
class SmtpReply:
    """What a remote server (or our local delivery) answered."""

    code: int  # 250, 451, 550 ...; 0 for a network error or timeout
    enhanced: str | None  # "5.1.1" or None
    text: str  # human text; several lines joined by "\n"
    mx_host: str | None = None

    def line(self) -> str:
        """The reply on one line, as a suppression records it: `550 5.1.1 No such user`."""
        return " ".join(part for part in (str(self.code), self.enhanced or "", self.text) if part)


def is_permanent_failure(reply: SmtpReply) -> bool:
    """Whether a refusal condemns the address (suppress it), not only this message.

    An enhanced code is the precise answer (RFC 3463 §3.2: X.1.X are addressing failures, e.g.
    5.1.1 no such mailbox, 5.1.10 null MX); a 550 5.7.1 is a policy refusal of this message. Without
    one, or with the undefined 5.0.0 (Exim's habit), 550/551/553 are taken as addressing failures."""
    if not 500 <= reply.code <= 599:
        return False
    if reply.enhanced and reply.enhanced != "5.0.0":
        return reply.enhanced.startswith("5.1.")
    return reply.code in PERMANENT_ADDRESS_CODES

"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3), used until a client enables IMAP4rev2
or UTF8=ACCEPT (RFC 6855 §3)."""

from __future__ import annotations

import base64
import binascii


class MailboxNameError(ValueError):
    """A mailbox name that is not valid modified UTF-7."""


def encode(name: str) -> str:
    """`name` in modified UTF-7: printable ASCII as itself ("&" as "&-"), the rest as base64."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append(
                "&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-"
            )
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode(name: str) -> str:
    """The Unicode name for a modified UTF-7 one; MailboxNameError when it is malformed."""
    if "&" not in name:
        return name
    out: list[str] = []
    position = 0
    while position < len(name):
        amp = name.find("&", position)
        if amp < 0:
            out.append(name[position:])
            break
        out.append(name[position:amp])
        end = name.find("-", amp)
        if end < 0:
            raise MailboxNameError("unterminated modified UTF-7 sequence in mailbox name")
        chunk = name[amp + 1 : end]
        if not chunk:
            out.append("&")
        else:
            padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
            try:
                raw = base64.b64decode(padded, validate=True)
                out.append(raw.decode("utf-16-be"))
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise MailboxNameError("invalid modified UTF-7 sequence in mailbox name") from exc
        position = end + 1
    return "".join(out)

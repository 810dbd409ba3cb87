"""The MX's SMTP command parsing, fuzzed over a real socket: a seeded run of random command lines
(known verbs with mangled arguments, and garbage) each gets one reply with a reply code, and the
session still answers NOOP afterwards. Seeded, so a failure replays; bounded, so it stays short."""

from __future__ import annotations

import random

from tests.smtp_in.corpus import RawSmtp

VERBS = [
    "HELO",
    "EHLO",
    "MAIL FROM:",
    "RCPT TO:",
    "DATA",
    "RSET",
    "NOOP",
    "VRFY",
    "HELP",
    "STARTTLS",
    "AUTH",
    "BDAT",
    "XCLIENT",
    "mail from:",
    "rcpt to:",
    "",
]
PIECES = [
    "<",
    ">",
    "@",
    "sales",
    "acme.test",
    "[127.0.0.1]",
    "SIZE=",
    "BODY=8BITMIME",
    "SMTPUTF8",
    '"',
    "\\",
    ":",
    ",",
    "%",
    "!",
    " ",
    "\t",
    "é",
    "\x7f",
    "9" * 30,
    "=" * 3,
]
LINES = 300


def random_line(rng: random.Random) -> bytes:
    if rng.random() < 0.2:
        garbage = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(0, 80)))
        return garbage.replace(b"\r", b"").replace(b"\n", b"")
    verb = rng.choice(VERBS)
    argument = "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 12)))
    return (verb + (" " if verb and not verb.endswith(":") else "") + argument).encode(
        "utf-8", "surrogateescape"
    )


async def test_random_command_lines_each_get_a_reply_and_the_session_goes_on(
    mx_port: int,
) -> None:
    rng = random.Random(19)
    client, greeting = await RawSmtp.connect(mx_port)
    try:
        assert greeting.code == 220
        sent = 0
        while sent < LINES:
            line = random_line(rng)
            if line.upper().startswith((b"DATA", b"STARTTLS", b"AUTH", b"BDAT")):
                continue  # these change the channel; their refusals are tested one by one
            reply = await client.command(line)
            sent += 1
            assert 200 <= reply.code < 600, (line, reply)
            if reply.code == 421 or "goodbye" in " ".join(reply.lines).lower():
                # The server ends a session that keeps sending what it cannot understand.
                await client.close()
                client, greeting = await RawSmtp.connect(mx_port)
                assert greeting.code == 220
        assert (await client.command("NOOP")).code == 250
    finally:
        await client.close()

"""Issue 16: several sessions doing random commands against one folder, each checking every answer
against its own model of what it has been told (RFC 9051 §7.5.1: a session's sequence numbers
change only when it is told of EXISTS and EXPUNGE).

Each session keeps, in order, the UIDs of the messages it sees; every untagged EXISTS, EXPUNGE,
VANISHED and FETCH it receives is applied to that model as it arrives and checked against it: a
FETCH names a sequence number the session knows with the UID it knows for it, new messages come
with growing UIDs, EXISTS matches the count, and a keyword only this session sets is present on
every message it set it on (and absent where it removed it). At the end, every session is checked
against a fresh session's view. The runs are seeded, so a failure replays the same commands."""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass, field

import pytest

from mailmark.bootstrap import Listeners
from tests.imap.raw import Raw
from tests.support.world import World

SESSIONS = 4
COMMANDS_PER_SESSION = 60

_UNTAGGED = re.compile(rb"\* (\d+) (EXISTS|EXPUNGE|FETCH)(.*)\r\n\Z", re.DOTALL)
_UID = re.compile(rb"UID (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_VANISHED = re.compile(rb"\* VANISHED (?:\(EARLIER\) )?([\d:,]+)\r\n\Z")


def _uid_set(text: bytes) -> set[int]:
    uids: set[int] = set()
    for part in text.split(b","):
        low, _, high = part.partition(b":")
        uids.update(range(int(low), int(high or low) + 1))
    return uids


@dataclass
class Model:
    """What one session has been told: the UID at each sequence number (None until a FETCH
    names it), and the messages that carry this session's own keyword."""

    keyword: bytes
    uids: list[int | None] = field(default_factory=list)
    marked: set[int] = field(default_factory=set)
    # UIDs whose keyword this session is changing right now: a FETCH may show either state.
    changing: set[int] = field(default_factory=set)

    def apply(self, line: bytes) -> None:
        if vanished := _VANISHED.match(line):
            gone = _uid_set(vanished[1])
            self.uids = [uid for uid in self.uids if uid not in gone]
            return
        found = _UNTAGGED.match(line)
        if found is None:
            return
        number, kind, rest = int(found[1]), found[2], found[3]
        if kind == b"EXISTS":
            assert number >= len(self.uids), f"EXISTS {number} shrinks {len(self.uids)}"
            self.uids.extend([None] * (number - len(self.uids)))
        elif kind == b"EXPUNGE":
            assert 1 <= number <= len(self.uids), f"EXPUNGE {number} of {len(self.uids)}"
            del self.uids[number - 1]
        else:
            assert 1 <= number <= len(self.uids), f"FETCH {number} of {len(self.uids)}"
            uid_found = _UID.search(rest)
            if uid_found is not None:
                uid = int(uid_found[1])
                known = self.uids[number - 1]
                if known is None:
                    earlier = [u for u in self.uids[: number - 1] if u is not None]
                    assert not earlier or uid > earlier[-1], f"UID {uid} out of order"
                    self.uids[number - 1] = uid
                else:
                    assert known == uid, f"message {number} is UID {known}, told {uid}"
            flags = _FLAGS.search(rest)
            uid_here = self.uids[number - 1]
            if flags is not None and uid_here is not None and uid_here not in self.changing:
                has = self.keyword in flags[1].split()
                assert has == (uid_here in self.marked), (
                    f"UID {uid_here}: {self.keyword!r} {'present' if has else 'missing'}"
                )


class Client:
    def __init__(self, raw: Raw, model: Model, rng: random.Random) -> None:
        self.raw = raw
        self.model = model
        self.rng = rng
        self.tags = 0

    async def run(
        self, text: bytes, *, literal: bytes | None = None, may_race_expunge: bool = False
    ) -> bytes:
        """Send a command, apply every untagged line to the model, return the tagged status:
        OK, or (when `may_race_expunge`) NO [EXPUNGEISSUED] (RFC 9051 §7.1)."""
        self.tags += 1
        tag = b"T%d" % self.tags
        if literal is None:
            await self.raw.send(tag + b" " + text + b"\r\n")
        else:
            await self.raw.send(
                tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n"
            )
        while True:
            line = await self.raw.line()
            assert not line.startswith(b"* BYE"), line
            if line.startswith(tag + b" "):
                status = line[len(tag) + 1 :]
                raced = may_race_expunge and status.startswith(b"NO [EXPUNGEISSUED]")
                assert status.startswith(b"OK") or raced, (text, line)
                return status
            self.model.apply(line)

    def known_uids(self) -> list[int]:
        return [uid for uid in self.model.uids if uid is not None]

    async def learn_new(self) -> None:
        """Ask for the UIDs of messages announced by EXISTS, by sequence number (a plain FETCH
        moves no sequence numbers, RFC 9051 §7.5.1). More may arrive meanwhile. A message another
        session expunged cannot be fetched, and its EXPUNGE cannot be told during a FETCH
        (RFC 9051 §7.5.1), so after NO [EXPUNGEISSUED] a NOOP collects it before the next try."""
        for _ in range(10):
            missing = [b"%d" % (n + 1) for n, uid in enumerate(self.model.uids) if uid is None]
            if not missing:
                return
            status = await self.run(
                b"FETCH " + b",".join(missing) + b" (UID FLAGS)", may_race_expunge=True
            )
            if not status.startswith(b"OK"):
                await self.run(b"NOOP")
        assert None not in self.model.uids, self.model.uids

    async def step(self, number: int) -> None:
        action = self.rng.choice(
            ["append", "append", "mark", "unmark", "fetch", "expunge", "noop", "search"]
        )
        uids = self.known_uids()
        if action == "append" or not uids:
            message = b"From: s@example.org\r\nSubject: %d\r\n\r\nbody\r\n" % number
            await self.run(b"APPEND INBOX", literal=message)
        elif action in ("mark", "unmark"):
            uid = self.rng.choice(uids)
            sign = b"+" if action == "mark" else b"-"
            self.model.changing.add(uid)
            status = await self.run(
                b"UID STORE %d %sFLAGS.SILENT (%s)" % (uid, sign, self.model.keyword),
                may_race_expunge=True,
            )
            self.model.changing.discard(uid)
            if action == "mark" and status.startswith(b"OK"):
                self.model.marked.add(uid)
            elif action == "unmark":
                self.model.marked.discard(uid)
        elif action == "fetch":
            await self.run(b"FETCH 1:* (UID FLAGS)", may_race_expunge=True)
        elif action == "expunge":
            uid = self.rng.choice(uids)
            await self.run(b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid, may_race_expunge=True)
            await self.run(b"UID EXPUNGE %d" % uid)
            assert uid not in self.known_uids()
        elif action == "search":
            await self.run(b"UID SEARCH ALL")
        else:
            await self.run(b"NOOP")
        await self.learn_new()


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_sessions_agree_with_what_they_were_told(
    listeners: Listeners, world: World, seed: int
) -> None:
    clients = []
    for index in range(SESSIONS):
        raw = await Raw.connect(listeners.imaps_port)
        await raw.login()
        client = Client(raw, Model(b"$c%d" % index), random.Random(seed * 100 + index))
        await client.run(b"SELECT INBOX")
        await client.learn_new()
        clients.append(client)
    try:

        async def drive(client: Client) -> None:
            for number in range(COMMANDS_PER_SESSION):
                await client.step(number)

        await asyncio.gather(*(drive(client) for client in clients))
        for client in clients:
            await client.run(b"NOOP")
            await client.learn_new()
        raw = await Raw.connect(listeners.imaps_port)
        try:
            await raw.login()
            await raw.ok(b"S1", b"SELECT INBOX")
            truth_lines = await raw.ok(b"F1", b"UID FETCH 1:* (FLAGS)")
        finally:
            await raw.close()
        truth: dict[int, set[bytes]] = {}
        for line in truth_lines[:-1]:
            uid_found, flags = _UID.search(line), _FLAGS.search(line)
            assert uid_found is not None and flags is not None, line
            truth[int(uid_found[1])] = set(flags[1].split())
        for client in clients:
            assert client.known_uids() == sorted(truth), client.model.keyword
            for uid, flags in truth.items():
                assert (client.model.keyword in flags) == (uid in client.model.marked), uid
    finally:
        for client in clients:
            await client.raw.close()

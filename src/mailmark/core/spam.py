"""Spam filtering of inbound mail, and training the filter from what users file as Junk.

A `SpamFilter` judges each inbound message at DATA time (rspamd when configured, else DNS
blocklists); its verdict may refuse the message, adds header fields naming the score, and may file
it in Junk. The thresholds that turn a scanner's score into a verdict are policy, so they live
here, once. Moves into and out of Junk teach a `SpamTraining` scanner in the background: a move
never waits for it, and a failure is only logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from mailmark.core.errors import MailmarkError, SpamDeferred, SpamRefused
from mailmark.core.message_meta import header_fields, header_section

log = logging.getLogger(__name__)

# Header fields a spam filter writes: X-Spam-Flag/-Score/-Status/-Level (SpamAssassin's names, which
# mail clients filter on), X-Spam and X-Spamd-* (rspamd's), X-Rspamd-*. Only ours can be trusted,
# so any that arrive with a message are removed before the verdict is added.
_SPAM_FIELD = re.compile(rb"^(x-spam|x-rspamd-)", re.IGNORECASE)
# The scanner actions (rspamd's names) that send a message to Junk.
_JUNK_ACTIONS = frozenset({"add header", "rewrite subject"})
_DEFER_ACTIONS = frozenset({"soft reject", "greylist"})
# Symbols named in X-Spam-Status, highest scores first; the rest are left out of the field.
MAX_NAMED_SYMBOLS = 30
# Messages waiting to be learned; beyond this, further moves are not learned (and say so).
MAX_PENDING_LEARNS = 1000
CONCURRENT_LEARNS = 4


@dataclass(frozen=True)
class SpamScan:
    """A scanner's reading of one message: its action word and score (rspamd's terms)."""

    action: str  # "no action", "add header", "rewrite subject", "soft reject", "greylist", "reject"
    score: float
    required_score: float
    symbols: Sequence[tuple[str, float]] = ()
    message: str = ""  # the scanner's own reason, when it gave one


@dataclass(frozen=True)
class SpamVerdict:
    """What to do with an accepted message: header fields to add, and whether it goes to Junk."""

    headers: bytes = b""
    junk: bool = False


NO_VERDICT = SpamVerdict()


@dataclass(frozen=True)
class SpamThresholds:
    """Scores at and above which a message is refused or filed in Junk, whatever action the
    scanner proposed; `None` leaves the decision to the scanner's action alone."""

    reject_score: float | None = None
    junk_score: float | None = None
    # rspamd's "soft reject" and "greylist" answer 451 only when greylisting is wanted.
    greylisting: bool = False


class SpamFilter(Protocol):
    async def check(
        self,
        raw: bytes,
        *,
        transaction_id: str,
        client_ip: str,
        helo: str,
        mail_from: str,
        rcpt_tos: Sequence[str],
    ) -> SpamVerdict:
        """The verdict on a message about to be delivered. Raises SpamRefused, ClientBlocklisted
        or SpamDeferred to refuse it."""
        ...


class SpamTraining(Protocol):
    async def learn(self, raw: bytes, *, spam: bool) -> None:
        """Teach the scanner that this message is spam (or not); SpamFilterUnavailable when the
        scanner cannot be asked or refuses."""
        ...


def judge(scan: SpamScan, thresholds: SpamThresholds) -> SpamVerdict:
    """The verdict a scan earns under `thresholds` (raises to refuse the message)."""
    if scan.action == "reject" or (
        thresholds.reject_score is not None and scan.score >= thresholds.reject_score
    ):
        raise SpamRefused(
            f"Message refused as spam (score {scan.score:.1f}"
            + (f": {_printable(scan.message)}" if scan.message else "")
            + ")"
        )
    if scan.action in _DEFER_ACTIONS and thresholds.greylisting:
        # RFC 6647 §2.1: a temporary refusal that a real MTA retries and most spam engines do not.
        raise SpamDeferred("Greylisted: please try again later")
    junk = scan.action in _JUNK_ACTIONS or (
        thresholds.junk_score is not None and scan.score >= thresholds.junk_score
    )
    return SpamVerdict(verdict_headers(scan, junk), junk)


def verdict_headers(scan: SpamScan, junk: bool) -> bytes:
    """X-Spam-Flag, X-Spam-Score and X-Spam-Status (SpamAssassin's fields, which clients and Sieve
    scripts filter on), folded, ending in CRLF."""
    named = sorted(scan.symbols, key=lambda symbol: -abs(symbol[1]))[:MAX_NAMED_SYMBOLS]
    tests = ",".join(f"{_symbol_name(name)}={score:.2f}" for name, score in named)
    status = (
        f"X-Spam-Status: {'Yes' if junk else 'No'}, score={scan.score:.2f}"
        f" required={scan.required_score:.2f}\r\n\taction={_symbol_name(scan.action)}"
    )
    if tests:
        status += f"\r\n\ttests={tests}"
    flag = "YES" if junk else "NO"
    return f"X-Spam-Flag: {flag}\r\nX-Spam-Score: {scan.score:.2f}\r\n{status}\r\n".encode("ascii")


def without_spam_headers(raw: bytes) -> bytes:
    """The message without spam verdict fields: only the ones we add may be believed."""
    head = header_section(raw)
    fields = header_fields(raw)
    if not any(_SPAM_FIELD.match(field) for field in fields):
        return raw
    kept = b"".join(field for field in fields if not _SPAM_FIELD.match(field))
    return kept + raw[len(head) :]


def _symbol_name(name: str) -> str:
    return "".join(ch for ch in name if ch.isalnum() or ch in "_-. ")[:64].replace(" ", "_")


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable())[:200]


class SpamLearning:
    """Teaches the scanner in background tasks, a few at a time and a bounded number waiting."""

    def __init__(self, training: SpamTraining) -> None:
        self._training = training
        self._slots = asyncio.Semaphore(CONCURRENT_LEARNS)
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0

    def submit(
        self,
        folder_id: int,
        uids: Sequence[int],
        read: Callable[[int, int], Awaitable[bytes]],
        *,
        spam: bool,
    ) -> None:
        """Learn the messages `uids` of `folder_id` (read one at a time with `read`) as spam or
        ham, without waiting."""
        if not uids:
            return
        if self._pending + len(uids) > MAX_PENDING_LEARNS:
            log.warning("not learning %d messages as %s: too many waiting", len(uids), _kind(spam))
            return
        self._pending += len(uids)
        task = asyncio.get_running_loop().create_task(self._learn(folder_id, uids, read, spam))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _learn(
        self,
        folder_id: int,
        uids: Sequence[int],
        read: Callable[[int, int], Awaitable[bytes]],
        spam: bool,
    ) -> None:
        async with self._slots:
            for uid in uids:
                try:
                    await self._training.learn(await read(folder_id, uid), spam=spam)
                except MailmarkError as error:
                    log.warning(
                        "did not learn message %d as %s: %s", uid, _kind(spam), error.message
                    )
                except Exception:
                    log.exception("could not learn message %d as %s", uid, _kind(spam))
                finally:
                    self._pending -= 1

    async def close(self) -> None:
        """Stop learning (at shutdown): what has not been learned yet is not worth waiting for."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _kind(spam: bool) -> str:
    return "spam" if spam else "ham"


class SpamFilters:
    """Several filters in turn (blocklists before the content scanner): the first refusal wins,
    the header fields add up, and any one may file the message in Junk."""

    def __init__(self, filters: Sequence[SpamFilter]) -> None:
        self._filters = list(filters)

    async def check(
        self,
        raw: bytes,
        *,
        transaction_id: str,
        client_ip: str,
        helo: str,
        mail_from: str,
        rcpt_tos: Sequence[str],
    ) -> SpamVerdict:
        headers = b""
        junk = False
        for spam_filter in self._filters:
            verdict = await spam_filter.check(
                raw,
                transaction_id=transaction_id,
                client_ip=client_ip,
                helo=helo,
                mail_from=mail_from,
                rcpt_tos=rcpt_tos,
            )
            headers += verdict.headers
            junk = junk or verdict.junk
        return SpamVerdict(headers, junk)

"""Running a checked Sieve script against one message (RFC 5228 §2.10, RFC 5232, RFC 5230).

The result is a list of actions, not their effect: where copies go and with which flags,
where the message is sent on, what is answered. The delivery rule turns it into the mailbox's
disposition. A run is bounded in steps and actions; exceeding a bound is a run-time error,
and a run-time error keeps the message as if there were no script (RFC 5228 §2.10.6).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses
from functools import lru_cache

from mailmark.core.sieve.compiler import (
    AddressTest,
    AllOf,
    BodyTest,
    ChangeFlags,
    Condition,
    Constant,
    Discard,
    ExistsTest,
    FileInto,
    HasFlagTest,
    HeaderTest,
    If,
    Keep,
    Match,
    Not,
    Redirect,
    Script,
    SizeTest,
    Statement,
    Stop,
    Vacation,
)

MAX_STEPS = 10_000
MAX_ACTIONS = 64
MAX_REDIRECTS = 4
MAX_BODY_TEXT = 256 * 1024  # the body test reads at most this many characters of text
MAX_HEADER_VALUES = 100  # values of one field looked at, however many the message repeats


class SieveRuntimeError(Exception):
    """The script could not finish for this message; its actions are dropped."""


@dataclass(frozen=True)
class Copy:
    """A copy to store: `folder` None is the keep (the folder delivery chose)."""

    folder: str | None
    flags: tuple[str, ...]
    create: bool = False


@dataclass(frozen=True)
class Outcome:
    copies: tuple[Copy, ...]
    redirects: tuple[str, ...]
    replies: tuple[Vacation, ...]


@dataclass
class SieveMessage:
    """What a script may look at: the parsed message and its SMTP envelope."""

    message: EmailMessage
    size: int
    envelope_from: str
    envelope_to: str
    _body: str | None = field(default=None, init=False)
    _raw_headers: dict[str, list[str]] | None = field(default=None, init=False)
    _decoded: dict[str, list[str]] = field(default_factory=dict, init=False)
    _addresses: dict[str, list[str]] = field(default_factory=dict, init=False)

    def headers(self, name: str) -> list[str]:
        """The field's values, unfolded and with RFC 2047 encoded-words decoded (RFC 5228
        §2.7.2). Read from the raw fields: the email package's structured header objects
        cost a millisecond a field, which twenty rules would pay twenty times."""
        if name not in self._decoded:
            if self._raw_headers is None:
                table: dict[str, list[str]] = {}
                for key, value in self.message.raw_items():
                    table.setdefault(key.lower(), []).append(value)
                self._raw_headers = table
            raw = self._raw_headers.get(name, [])[:MAX_HEADER_VALUES]
            self._decoded[name] = [_header_text(value) for value in raw]
        return self._decoded[name]

    def addresses(self, name: str) -> list[str]:
        """The addresses in an address field (RFC 5228 §5.1), parsed once per message."""
        if name not in self._addresses:
            parsed = getaddresses(self.headers(name))
            self._addresses[name] = [address for _, address in parsed if address]
        return self._addresses[name]

    def has_header(self, name: str) -> bool:
        return bool(self.headers(name))

    def body_text(self) -> str:
        """The text parts, decoded, up to MAX_BODY_TEXT characters (RFC 5173 §5.2 :text)."""
        if self._body is None:
            texts: list[str] = []
            length = 0
            for part in self.message.walk():
                if part.get_content_maintype() != "text" or part.is_attachment():
                    continue
                text = _part_text(part)
                texts.append(text[: MAX_BODY_TEXT - length])
                length += len(texts[-1])
                if length >= MAX_BODY_TEXT:
                    break
            self._body = "\n".join(texts)
        return self._body


_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _header_text(value: str) -> str:
    text = _FOLD.sub("", str(value)).strip()
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except (ValueError, LookupError, UnicodeError):
        return text


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("latin-1")


@lru_cache(maxsize=512)
def _wildcard(pattern: str, fold: bool) -> re.Pattern[str]:
    """RFC 5228 §2.7.1 :matches: "*" any run, "?" one character, "\\" quotes the next one."""
    parts: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if fold else 0))


def matches(match: Match, values: Sequence[str]) -> bool:
    fold = match.comparator == "i;ascii-casemap"
    for value in values:
        subject = value.lower() if fold else value
        for key in match.keys:
            wanted = key.lower() if fold else key
            if match.kind == "is" and subject == wanted:
                return True
            if match.kind == "contains" and wanted in subject:
                return True
            if match.kind == "matches" and _wildcard(key, fold).fullmatch(value):
                return True
    return False


def _address_part(address: str, part: str) -> str:
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    if part == "localpart":
        return local
    if part == "domain":
        return domain
    return address


class _Run:
    def __init__(self, message: SieveMessage) -> None:
        self.message = message
        self.steps = 0
        self.flags: tuple[str, ...] = ()
        self.copies: list[Copy] = []
        self.redirects: list[str] = []
        self.replies: list[Vacation] = []
        self.implicit_keep = True
        self.actions = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise SieveRuntimeError(f"the script took more than {MAX_STEPS} steps")

    def act(self) -> None:
        self.actions += 1
        if self.actions > MAX_ACTIONS:
            raise SieveRuntimeError(f"the script took more than {MAX_ACTIONS} actions")

    def block(self, statements: tuple[Statement, ...]) -> bool:
        """Run the statements; False when a stop ended the script."""
        for statement in statements:
            self.step()
            if isinstance(statement, If):
                for condition, body in statement.branches:
                    if self.test(condition):
                        if not self.block(body):
                            return False
                        break
                else:
                    if not self.block(statement.otherwise):
                        return False
            elif isinstance(statement, Stop):
                return False
            else:
                self.action(statement)
        return True

    def action(self, action: Statement) -> None:
        self.act()
        if isinstance(action, Keep):
            self.copies.append(Copy(None, self.flags if action.flags is None else action.flags))
            self.implicit_keep = False
        elif isinstance(action, FileInto):
            flags = self.flags if action.flags is None else action.flags
            self.copies.append(Copy(action.folder, flags, action.create))
            if not action.copy:
                self.implicit_keep = False
        elif isinstance(action, Redirect):
            if len(self.redirects) >= MAX_REDIRECTS:
                raise SieveRuntimeError(
                    f"the script redirects the message more than {MAX_REDIRECTS} times"
                )
            if action.address.lower() not in (r.lower() for r in self.redirects):
                self.redirects.append(action.address)
            if not action.copy:
                self.implicit_keep = False
        elif isinstance(action, Discard):
            self.implicit_keep = False
        elif isinstance(action, ChangeFlags):
            if action.how == "set":
                self.flags = action.flags
            elif action.how == "add":
                self.flags = tuple(dict.fromkeys((*self.flags, *action.flags)))
            else:
                removed = {flag.lower() for flag in action.flags}
                self.flags = tuple(flag for flag in self.flags if flag.lower() not in removed)
        elif isinstance(action, Vacation):
            # RFC 5230 §4.7: one vacation response per script run at most.
            if self.replies:
                raise SieveRuntimeError("the script runs vacation twice for one message")
            self.replies.append(action)

    def test(self, condition: Condition) -> bool:
        self.step()
        if isinstance(condition, Constant):
            return condition.value
        if isinstance(condition, Not):
            return not self.test(condition.test)
        if isinstance(condition, AllOf):
            if condition.any:
                return any(self.test(test) for test in condition.tests)
            return all(self.test(test) for test in condition.tests)
        if isinstance(condition, HeaderTest):
            values = [v for name in condition.headers for v in self.message.headers(name)]
            return matches(condition.match, values)
        if isinstance(condition, AddressTest):
            return matches(condition.match, self.addresses(condition))
        if isinstance(condition, ExistsTest):
            return all(self.message.has_header(name) for name in condition.headers)
        if isinstance(condition, SizeTest):
            size = self.message.size
            return size > condition.limit if condition.over else size < condition.limit
        if isinstance(condition, BodyTest):
            return matches(condition.match, [self.message.body_text()])
        if isinstance(condition, HasFlagTest):
            return matches(condition.match, self.flags)
        raise AssertionError(condition)

    def addresses(self, test: AddressTest) -> list[str]:
        found: list[str] = []
        for name in test.headers:
            if test.envelope:
                raw = [self.message.envelope_from if name == "from" else self.message.envelope_to]
            else:
                raw = self.message.addresses(name)
            found.extend(_address_part(address, test.part) for address in raw)
        return found


def run(script: Script, message: SieveMessage) -> Outcome:
    """The script's actions for this message; SieveRuntimeError when a bound is exceeded."""
    state = _Run(message)
    state.block(script.statements)
    copies = list(state.copies)
    if state.implicit_keep:
        # RFC 5232 §3: the implicit keep takes the flags the script set last.
        copies.append(Copy(None, state.flags))
    return Outcome(tuple(copies), tuple(state.redirects), tuple(state.replies))

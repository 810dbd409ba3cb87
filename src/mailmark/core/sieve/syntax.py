"""The Sieve language's grammar (RFC 5228 §8): text in, a tree of commands out.

Pure and bounded: the script's size, the nesting of blocks and tests, the length of string
lists and the number of commands are limited, so a hostile script cannot make the parser
(or later the interpreter) work without end. Errors name the line they were found on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SCRIPT_BYTES = 64 * 1024
MAX_NESTING = 16
MAX_LIST_ITEMS = 256
MAX_COMMANDS = 1024


class SieveSyntaxError(ValueError):
    """A script that cannot be read, with the line (1-based) where reading stopped."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.reason = message


@dataclass(frozen=True)
class Tag:
    name: str  # without the colon, lower case (RFC 5228 §2.6.2: tags are case-insensitive)


@dataclass(frozen=True)
class Number:
    value: int


@dataclass(frozen=True)
class Strings:
    values: tuple[str, ...]
    is_list: bool  # written as [ ... ] (a single string where a list may stand is not)


Argument = Tag | Number | Strings


@dataclass(frozen=True)
class Test:
    name: str
    arguments: tuple[Argument, ...]
    tests: tuple[Test, ...]
    line: int


@dataclass(frozen=True)
class Command:
    name: str
    arguments: tuple[Argument, ...]
    tests: tuple[Test, ...]
    block: tuple[Command, ...] | None  # None: the command ended with ";"
    line: int


_TOKEN = re.compile(
    r"""
    (?P<space>[ \t]+|\r?\n)
  | (?P<hash>\#[^\n]*)
  | (?P<bracket>/\*.*?\*/)
  | (?P<multiline>text:[ \t]*(?:\#[^\n]*)?\r?\n)
  | (?P<quoted>"(?:[^"\\]|\\.)*")
  | (?P<number>[0-9]+[KkMmGg]?)
  | (?P<tag>:[A-Za-z_][A-Za-z0-9_]*)
  | (?P<identifier>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[;,\[\]{}()])
    """,
    re.VERBOSE | re.DOTALL,
)
_MULTILINE_END = re.compile(r"^\.\r?\n", re.MULTILINE)
_QUANTIFIER = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    line: int


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position, line = 0, 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text.startswith("/*", position):
                raise SieveSyntaxError(line, "a comment opened with /* is never closed with */")
            if text[position] == '"':
                raise SieveSyntaxError(line, "a string opened with a quote is never closed")
            raise SieveSyntaxError(line, f"unexpected character {text[position]!r}")
        kind = match.lastgroup
        assert kind is not None
        value = match.group()
        if kind == "multiline":
            end = _MULTILINE_END.search(text, match.end())
            if end is None:
                raise SieveSyntaxError(line, 'a "text:" string is never ended by a line with "."')
            body = text[match.end() : end.start()]
            # RFC 5228 §2.4.2: a line starting with "." has it doubled; undo that.
            lines = [part.removeprefix(".") for part in body.split("\n")]
            tokens.append(_Token("string", "\n".join(lines), line))
            line += text.count("\n", position, end.end())
            position = end.end()
            continue
        if kind == "quoted":
            # RFC 5228 §2.4.2: "\" followed by a character stands for that character.
            tokens.append(_Token("string", _ESCAPE.sub(r"\1", value[1:-1]), line))
        elif kind not in ("space", "hash", "bracket"):
            tokens.append(_Token(kind, value, line))
        line += value.count("\n")
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._at = 0
        self._commands = 0

    def _peek(self) -> _Token | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _line(self) -> int:
        token = self._peek()
        if token is not None:
            return token.line
        return self._tokens[-1].line if self._tokens else 1

    def _take(self) -> _Token:
        token = self._peek()
        if token is None:
            raise SieveSyntaxError(self._line(), "the script ends in the middle of a command")
        self._at += 1
        return token

    def commands(self, depth: int, opened_on: int | None) -> tuple[Command, ...]:
        """The commands up to the end of the script, or of the block opened on `opened_on`."""
        commands: list[Command] = []
        while True:
            token = self._peek()
            if token is None:
                if opened_on is not None:
                    raise SieveSyntaxError(
                        opened_on, 'the block opened here with "{" is never closed'
                    )
                return tuple(commands)
            if token.text == "}":
                if opened_on is None:
                    raise SieveSyntaxError(token.line, 'a "}" closes no block')
                self._at += 1
                return tuple(commands)
            commands.append(self.command(depth))

    def command(self, depth: int) -> Command:
        token = self._take()
        if token.kind != "identifier":
            raise SieveSyntaxError(token.line, f"expected a command name, found {token.text!r}")
        self._commands += 1
        if self._commands > MAX_COMMANDS:
            raise SieveSyntaxError(token.line, f"more than {MAX_COMMANDS} commands")
        arguments = self.arguments()
        tests = self.tests(depth)
        end = self._peek()
        if end is not None and end.text == "{":
            if depth + 1 > MAX_NESTING:
                raise SieveSyntaxError(end.line, f"blocks nested deeper than {MAX_NESTING}")
            self._at += 1
            block: tuple[Command, ...] | None = self.commands(depth + 1, opened_on=end.line)
        elif end is None or end.text != ";":
            found = "the end of the script" if end is None else repr(end.text)
            # Name the line the ";" is missing from, not the line of what came next.
            missing_on = self._tokens[self._at - 1].line
            raise SieveSyntaxError(
                missing_on, f'expected ";" after {token.text.lower()}, found {found}'
            )
        else:
            self._at += 1
            block = None
        return Command(token.text.lower(), arguments, tests, block, token.line)

    def arguments(self) -> tuple[Argument, ...]:
        arguments: list[Argument] = []
        while (token := self._peek()) is not None:
            if token.kind == "tag":
                arguments.append(Tag(token.text[1:].lower()))
            elif token.kind == "number":
                digits, unit = token.text, 1
                if digits[-1].isalpha():
                    digits, unit = digits[:-1], _QUANTIFIER[digits[-1].lower()]
                if len(digits) > 10:
                    raise SieveSyntaxError(token.line, f"the number {token.text} is too large")
                arguments.append(Number(int(digits) * unit))
            elif token.kind == "string":
                arguments.append(Strings((token.text,), is_list=False))
            elif token.text == "[":
                self._at += 1
                arguments.append(Strings(self.string_list(), is_list=True))
                continue
            else:
                break
            self._at += 1
        return tuple(arguments)

    def string_list(self) -> tuple[str, ...]:
        values: list[str] = []
        while True:
            token = self._take()
            if token.kind != "string":
                raise SieveSyntaxError(
                    token.line, f"expected a string in a list, found {token.text!r}"
                )
            values.append(token.text)
            if len(values) > MAX_LIST_ITEMS:
                raise SieveSyntaxError(token.line, f"a list of more than {MAX_LIST_ITEMS} strings")
            token = self._take()
            if token.text == "]":
                return tuple(values)
            if token.text != ",":
                raise SieveSyntaxError(
                    token.line, f'expected "," or "]" in a list, found {token.text!r}'
                )

    def tests(self, depth: int) -> tuple[Test, ...]:
        token = self._peek()
        if token is None:
            return ()
        if token.kind == "identifier":
            return (self.test(depth),)
        if token.text != "(":
            return ()
        self._at += 1
        tests = [self.test(depth)]
        while (token := self._take()).text == ",":
            tests.append(self.test(depth))
        if token.text != ")":
            raise SieveSyntaxError(
                token.line, f'expected "," or ")" in a test list, found {token.text!r}'
            )
        return tuple(tests)

    def test(self, depth: int) -> Test:
        if depth + 1 > MAX_NESTING:
            raise SieveSyntaxError(self._line(), f"tests nested deeper than {MAX_NESTING}")
        token = self._take()
        if token.kind != "identifier":
            raise SieveSyntaxError(token.line, f"expected a test, found {token.text!r}")
        self._commands += 1
        if self._commands > MAX_COMMANDS:
            raise SieveSyntaxError(token.line, f"more than {MAX_COMMANDS} commands and tests")
        return Test(token.text.lower(), self.arguments(), self.tests(depth + 1), token.line)


def parse(text: str) -> tuple[Command, ...]:
    """The script's commands; SieveSyntaxError for anything RFC 5228's grammar does not allow."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SCRIPT_BYTES:
        raise SieveSyntaxError(1, f"the script is larger than {MAX_SCRIPT_BYTES // 1024} KiB")
    return _Parser(_tokens(text)).commands(0, opened_on=None)

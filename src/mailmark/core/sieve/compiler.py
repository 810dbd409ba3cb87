"""From the grammar's tree to a checked script the interpreter runs (RFC 5228 and extensions).

Every command and test is checked here, once, when a script is saved: the extensions it uses
must be required, tags and arguments must be those the RFCs define, addresses must be
addresses. The interpreter then never meets a script it cannot run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from mailmark.core.sieve.syntax import (
    Argument,
    Command,
    Number,
    SieveSyntaxError,
    Strings,
    Tag,
    Test,
    parse,
)

# What `require` may ask for (advertised as the ManageSieve "SIEVE" capability would be).
EXTENSIONS = (
    "fileinto",
    "envelope",
    "imap4flags",
    "copy",
    "vacation",
    "body",
    "mailbox",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
)
COMPARATORS = ("i;ascii-casemap", "i;octet")
MATCH_TYPES = ("is", "contains", "matches")
ADDRESS_PARTS = ("all", "localpart", "domain")
MAX_VACATION_DAYS = 365
ADDRESS_PATTERN = re.compile(r"^[^\s@<>\"(),;:\\\[\]]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")
HEADER_NAME_PATTERN = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")  # RFC 5322 §3.6.8 field-name


# Tests


@dataclass(frozen=True)
class Match:
    """How keys are compared with values: RFC 5228 §2.7.1 match type, §2.7.3 comparator."""

    kind: str  # is | contains | matches
    comparator: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class HeaderTest:
    headers: tuple[str, ...]
    match: Match


@dataclass(frozen=True)
class AddressTest:
    headers: tuple[str, ...]
    part: str
    match: Match
    envelope: bool  # the "envelope" test (RFC 5228 §5.4): "from" and "to" of the SMTP envelope


@dataclass(frozen=True)
class ExistsTest:
    headers: tuple[str, ...]


@dataclass(frozen=True)
class SizeTest:
    over: bool
    limit: int


@dataclass(frozen=True)
class BodyTest:
    """RFC 5173 with the :text transform (the default): the message's text parts, decoded."""

    match: Match


@dataclass(frozen=True)
class HasFlagTest:
    match: Match
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Constant:
    value: bool


@dataclass(frozen=True)
class AllOf:
    tests: tuple[Condition, ...]
    any: bool  # anyof instead of allof


@dataclass(frozen=True)
class Not:
    test: Condition


Condition = (
    HeaderTest
    | AddressTest
    | ExistsTest
    | SizeTest
    | BodyTest
    | HasFlagTest
    | Constant
    | AllOf
    | Not
)


# Actions and control


@dataclass(frozen=True)
class Keep:
    flags: tuple[str, ...] | None  # None: the current flags (RFC 5232 §5)


@dataclass(frozen=True)
class FileInto:
    folder: str
    flags: tuple[str, ...] | None
    copy: bool  # RFC 3894: does not cancel the implicit keep
    create: bool  # RFC 5490 §3.1: create the folder when it does not exist


@dataclass(frozen=True)
class Redirect:
    address: str
    copy: bool


@dataclass(frozen=True)
class Discard:
    pass


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class ChangeFlags:
    """setflag / addflag / removeflag on the internal flag variable (RFC 5232 §4)."""

    how: str  # set | add | remove
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Vacation:
    reason: str
    days: int
    subject: str | None
    from_address: str | None
    addresses: tuple[str, ...]
    handle: str | None


@dataclass(frozen=True)
class If:
    branches: tuple[tuple[Condition, tuple[Statement, ...]], ...]
    otherwise: tuple[Statement, ...]


Statement = Keep | FileInto | Redirect | Discard | Stop | ChangeFlags | Vacation | If


@dataclass(frozen=True)
class Script:
    statements: tuple[Statement, ...]
    extensions: frozenset[str]


def split_flags(values: tuple[str, ...]) -> tuple[str, ...]:
    """RFC 5232 §3: a flag list's strings hold flags separated by spaces."""
    return tuple(dict.fromkeys(flag for value in values for flag in value.split()))


_KIND_NAMES = {"string": "a string", "strings": "a string list", "number": "a number"}


class _Arguments:
    """A command's arguments: tags (with the value a tag takes) and then positional ones."""

    def __init__(self, where: Command | Test, takes_value: dict[str, str | None]) -> None:
        self.where = where
        self.tags: dict[str, Argument | None] = {}
        self.positional: list[Argument] = []
        arguments = list(where.arguments)
        index = 0
        while index < len(arguments):
            argument = arguments[index]
            index += 1
            if not isinstance(argument, Tag):
                self.positional.append(argument)
                continue
            if self.positional:
                self.fail(f":{argument.name} must come before the other arguments")
            if argument.name not in takes_value:
                self.fail(f"{where.name} has no :{argument.name} argument")
            if argument.name in self.tags:
                self.fail(f":{argument.name} is given twice")
            kind = takes_value[argument.name]
            value: Argument | None = None
            if kind is not None:
                if index >= len(arguments):
                    self.fail(f":{argument.name} needs a value")
                value = arguments[index]
                index += 1
                if kind == "number" and not isinstance(value, Number):
                    self.fail(f":{argument.name} needs a number")
                if kind in ("string", "strings") and not isinstance(value, Strings):
                    self.fail(f":{argument.name} needs a string")
                if kind == "string" and isinstance(value, Strings) and value.is_list:
                    self.fail(f":{argument.name} needs a single string, not a list")
            self.tags[argument.name] = value

    def fail(self, message: str) -> None:
        raise SieveSyntaxError(self.where.line, message)

    def one_of(self, names: tuple[str, ...], default: str) -> str:
        given = [name for name in names if name in self.tags]
        if len(given) > 1:
            self.fail("only one of " + ", ".join(f":{name}" for name in given) + " may be given")
        return given[0] if given else default

    def strings(self, name: str) -> tuple[str, ...] | None:
        value = self.tags.get(name)
        return value.values if isinstance(value, Strings) else None

    def string(self, name: str) -> str | None:
        values = self.strings(name)
        return values[0] if values else None

    def expect(self, *kinds: str) -> list[tuple[str, ...] | int]:
        """The positional arguments, each a "string", "strings" or "number"; a kind may say
        what the argument is for after a colon ("strings:header names")."""
        if len(self.positional) != len(kinds):
            labels = [kind.partition(":")[2] or _KIND_NAMES[kind] for kind in kinds]
            wanted = " and ".join(labels) if labels else "no arguments"
            self.fail(f"{self.where.name} takes {wanted}")
        kinds = tuple(kind.partition(":")[0] for kind in kinds)
        values: list[tuple[str, ...] | int] = []
        for kind, argument in zip(kinds, self.positional, strict=True):
            if kind == "number":
                if not isinstance(argument, Number):
                    self.fail(f"{self.where.name} needs a number")
                assert isinstance(argument, Number)
                values.append(argument.value)
                continue
            if not isinstance(argument, Strings):
                self.fail(f"{self.where.name} needs a string here")
            assert isinstance(argument, Strings)
            if kind == "string" and argument.is_list:
                self.fail(f"{self.where.name} needs a single string here, not a list")
            values.append(argument.values)
        return values


class _Compiler:
    def __init__(self) -> None:
        self.required: set[str] = set()

    def need(self, extension: str, where: Command | Test) -> None:
        if extension not in self.required:
            raise SieveSyntaxError(
                where.line, f'{where.name} needs require "{extension}" at the top of the script'
            )

    def block(self, commands: tuple[Command, ...], top: bool) -> tuple[Statement, ...]:
        statements: list[Statement] = []
        position = 0
        seen_other = False
        while position < len(commands):
            command = commands[position]
            position += 1
            if command.name == "require":
                if not top or seen_other:
                    raise SieveSyntaxError(
                        command.line, "require must come before every other command (RFC 5228 §3.2)"
                    )
                self.require(command)
                continue
            seen_other = True
            if command.name in ("elsif", "else"):
                raise SieveSyntaxError(command.line, f"{command.name} without an if before it")
            if command.name == "if":
                branches = [(self.condition_of(command), self.body(command))]
                otherwise: tuple[Statement, ...] = ()
                while position < len(commands) and commands[position].name in ("elsif", "else"):
                    follower = commands[position]
                    position += 1
                    if follower.name == "else":
                        if follower.tests or follower.arguments:
                            raise SieveSyntaxError(follower.line, "else takes no test")
                        otherwise = self.body(follower)
                        break
                    branches.append((self.condition_of(follower), self.body(follower)))
                statements.append(If(tuple(branches), otherwise))
                continue
            if command.block is not None:
                raise SieveSyntaxError(command.line, f"{command.name} takes no block")
            if command.tests:
                raise SieveSyntaxError(command.line, f"{command.name} takes no test")
            statements.append(self.action(command))
        return tuple(statements)

    def body(self, command: Command) -> tuple[Statement, ...]:
        if command.block is None:
            raise SieveSyntaxError(command.line, f"{command.name} needs a block in {{ }}")
        return self.block(command.block, top=False)

    def condition_of(self, command: Command) -> Condition:
        if command.arguments or len(command.tests) != 1:
            raise SieveSyntaxError(command.line, f"{command.name} needs exactly one test")
        return self.condition(command.tests[0])

    def require(self, command: Command) -> None:
        arguments = _Arguments(command, {})
        [names] = arguments.expect("strings:extension names")
        assert isinstance(names, tuple)
        for name in names:
            if name not in EXTENSIONS:
                raise SieveSyntaxError(command.line, f'the extension "{name}" is not supported')
            self.required.add(name)

    def action(self, command: Command) -> Statement:
        name = command.name
        builder = self._actions.get(name)
        if builder is None:
            raise SieveSyntaxError(command.line, f'unknown command "{name}"')
        return builder(self, command)

    def keep(self, command: Command) -> Statement:
        arguments = _Arguments(command, {"flags": "strings"})
        arguments.expect()
        return Keep(self.flags_tag(arguments))

    def flags_tag(self, arguments: _Arguments) -> tuple[str, ...] | None:
        flags = arguments.strings("flags")
        if flags is None:
            return None
        self.need("imap4flags", arguments.where)
        return split_flags(flags)

    def fileinto(self, command: Command) -> Statement:
        self.need("fileinto", command)
        arguments = _Arguments(command, {"flags": "strings", "copy": None, "create": None})
        [folder] = arguments.expect("string:a folder name")
        assert isinstance(folder, tuple)
        if "copy" in arguments.tags:
            self.need("copy", command)
        if "create" in arguments.tags:
            self.need("mailbox", command)
        if not folder[0].strip():
            arguments.fail("fileinto needs a folder name")
        return FileInto(
            folder[0],
            self.flags_tag(arguments),
            copy="copy" in arguments.tags,
            create="create" in arguments.tags,
        )

    def redirect(self, command: Command) -> Statement:
        arguments = _Arguments(command, {"copy": None})
        [address] = arguments.expect("string:an address")
        assert isinstance(address, tuple)
        if "copy" in arguments.tags:
            self.need("copy", command)
        if not ADDRESS_PATTERN.match(address[0].strip()):
            arguments.fail(f"redirect needs an email address, not {address[0]!r}")
        return Redirect(address[0].strip(), copy="copy" in arguments.tags)

    def discard(self, command: Command) -> Statement:
        _Arguments(command, {}).expect()
        return Discard()

    def stop(self, command: Command) -> Statement:
        _Arguments(command, {}).expect()
        return Stop()

    def change_flags(self, command: Command) -> Statement:
        self.need("imap4flags", command)
        arguments = _Arguments(command, {})
        if len(arguments.positional) == 2:
            arguments.fail(f"{command.name} with a variable name needs the variables extension")
        [flags] = arguments.expect("strings:flags")
        assert isinstance(flags, tuple)
        return ChangeFlags(command.name.removesuffix("flag"), split_flags(flags))

    def vacation(self, command: Command) -> Statement:
        self.need("vacation", command)
        arguments = _Arguments(
            command,
            {
                "days": "number",
                "subject": "string",
                "from": "string",
                "addresses": "strings",
                "handle": "string",
                "mime": None,
            },
        )
        if "mime" in arguments.tags:
            arguments.fail("vacation :mime is not supported: give the reply as plain text")
        [reason] = arguments.expect("string:the reply text")
        assert isinstance(reason, tuple)
        days_value = arguments.tags.get("days")
        days = days_value.value if isinstance(days_value, Number) else 7
        from_address = arguments.string("from")
        if from_address is not None and not ADDRESS_PATTERN.match(from_address.strip()):
            arguments.fail(f"vacation :from needs an email address, not {from_address!r}")
        return Vacation(
            reason=reason[0],
            # RFC 5230 §4.1: sites may bound :days; 0 would answer every message.
            days=min(max(days, 1), MAX_VACATION_DAYS),
            subject=arguments.string("subject"),
            from_address=from_address.strip() if from_address else None,
            addresses=arguments.strings("addresses") or (),
            handle=arguments.string("handle"),
        )

    _actions: ClassVar[dict[str, Callable[[_Compiler, Command], Statement]]] = {
        "keep": keep,
        "fileinto": fileinto,
        "redirect": redirect,
        "discard": discard,
        "stop": stop,
        "setflag": change_flags,
        "addflag": change_flags,
        "removeflag": change_flags,
        "vacation": vacation,
    }

    def condition(self, test: Test) -> Condition:
        name = test.name
        if name in ("allof", "anyof"):
            if test.arguments or not test.tests:
                raise SieveSyntaxError(test.line, f"{name} needs a list of tests in ( )")
            return AllOf(tuple(self.condition(t) for t in test.tests), any=name == "anyof")
        if test.tests and name != "not":
            raise SieveSyntaxError(test.line, f"{name} takes no tests")
        if name == "not":
            if test.arguments or len(test.tests) != 1:
                raise SieveSyntaxError(test.line, "not needs one test")
            return Not(self.condition(test.tests[0]))
        if name in ("true", "false"):
            _Arguments(test, {}).expect()
            return Constant(name == "true")
        if name == "exists":
            [headers] = _Arguments(test, {}).expect("strings:header names")
            assert isinstance(headers, tuple)
            return ExistsTest(self.header_names(test, headers))
        if name == "size":
            arguments = _Arguments(test, {"over": None, "under": None})
            if len(arguments.tags) != 1:
                arguments.fail("size needs one of :over or :under")
            [limit] = arguments.expect("number")
            assert isinstance(limit, int)
            return SizeTest("over" in arguments.tags, limit)
        if name in ("header", "address", "envelope", "body", "hasflag"):
            return self.comparison(test)
        raise SieveSyntaxError(test.line, f'unknown test "{name}"')

    def comparison(self, test: Test) -> Condition:
        name = test.name
        takes: dict[str, str | None] = {"comparator": "string"}
        takes.update(dict.fromkeys(MATCH_TYPES))
        if name in ("address", "envelope"):
            takes.update(dict.fromkeys(ADDRESS_PARTS))
        if name == "body":
            self.need("body", test)
            takes.update({"text": None, "raw": None, "content": "strings"})
        if name == "envelope":
            self.need("envelope", test)
        if name == "hasflag":
            self.need("imap4flags", test)
        arguments = _Arguments(test, takes)
        comparator = arguments.string("comparator") or "i;ascii-casemap"
        if comparator not in COMPARATORS:
            arguments.fail(f'the comparator "{comparator}" is not supported')
        kind = arguments.one_of(MATCH_TYPES, "is")
        if name == "body":
            transform = arguments.one_of(("text", "raw", "content"), "text")
            if transform != "text":
                arguments.fail(f"body :{transform} is not supported; use body :text")
            [keys] = arguments.expect("strings:keys to compare")
            assert isinstance(keys, tuple)
            return BodyTest(Match(kind, comparator, keys))
        if name == "hasflag":
            if len(arguments.positional) == 2:
                arguments.fail("hasflag with a variable name needs the variables extension")
            [keys] = arguments.expect("strings")
            assert isinstance(keys, tuple)
            return HasFlagTest(Match(kind, comparator, keys), ())
        headers, keys = arguments.expect("strings:header names", "strings:keys to compare")
        assert isinstance(headers, tuple) and isinstance(keys, tuple)
        headers = self.header_names(test, headers)
        if name == "header":
            return HeaderTest(headers, Match(kind, comparator, keys))
        part = arguments.one_of(ADDRESS_PARTS, "all")
        if name == "envelope":
            for header in headers:
                if header not in ("from", "to"):
                    arguments.fail(f'envelope tests "from" or "to", not "{header}"')
        return AddressTest(
            headers, part, Match(kind, comparator, keys), envelope=name == "envelope"
        )

    def header_names(self, test: Test, headers: tuple[str, ...]) -> tuple[str, ...]:
        for header in headers:
            if not HEADER_NAME_PATTERN.match(header):
                raise SieveSyntaxError(test.line, f"{header!r} is not a header field name")
        return tuple(header.lower() for header in headers)


def compile_script(text: str) -> Script:
    """The checked script; SieveSyntaxError (with its line) for one that cannot run."""
    compiler = _Compiler()
    statements = compiler.block(parse(text), top=True)
    return Script(statements, frozenset(compiler.required))

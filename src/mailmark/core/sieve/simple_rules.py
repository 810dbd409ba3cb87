"""The dashboard's simple filter rules, written as Sieve and read back from it.

A script made from rules starts with a comment holding the rules as JSON. When the rest of the
script is exactly what those rules generate, the dashboard shows the rules again; a script
edited by hand (or made by another client) no longer matches and is shown as text only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from mailmark.core.errors import InvalidInput
from mailmark.core.sieve.compiler import ADDRESS_PATTERN, HEADER_NAME_PATTERN

MARKER = "# mailmark-rules: "
FIELDS = ("from", "to", "subject", "header")
OPERATORS = ("contains", "is", "matches")
ACTIONS = ("move", "read", "flag", "forward", "discard")
MAX_RULES = 100
MAX_VALUE = 1000


@dataclass(frozen=True)
class SimpleRule:
    """If [field] [operator] [value] then [action] [target]."""

    field: str
    operator: str
    value: str
    action: str
    header: str = ""  # the field name when `field` is "header"
    target: str = ""  # the folder to move to, or the address to forward to


def check_rule(rule: SimpleRule, position: int) -> None:
    where = f"Rule {position}"
    if rule.field not in FIELDS:
        raise InvalidInput(f"{where}: the field is one of {', '.join(FIELDS)}.", field="rules")
    if rule.field == "header" and not HEADER_NAME_PATTERN.match(rule.header):
        raise InvalidInput(f"{where}: give the name of the header field.", field="rules")
    if rule.operator not in OPERATORS:
        raise InvalidInput(f"{where}: compare with {', '.join(OPERATORS)}.", field="rules")
    if not rule.value or len(rule.value) > MAX_VALUE:
        raise InvalidInput(f"{where}: give a value of 1 to {MAX_VALUE} characters.", field="rules")
    if rule.action not in ACTIONS:
        raise InvalidInput(f"{where}: the action is one of {', '.join(ACTIONS)}.", field="rules")
    if rule.action == "move" and not rule.target.strip():
        raise InvalidInput(f"{where}: choose the folder to move to.", field="rules")
    if rule.action == "forward" and not ADDRESS_PATTERN.match(rule.target.strip()):
        raise InvalidInput(f"{where}: give the address to forward to.", field="rules")


def _quoted(text: str) -> str:
    """A Sieve quoted string (RFC 5228 §2.4.2)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _body(rules: list[SimpleRule]) -> str:
    needs = []
    lines = []
    for rule in rules:
        name = rule.header.lower() if rule.field == "header" else rule.field
        test = f"header :{rule.operator} {_quoted(name)} {_quoted(rule.value)}"
        if rule.action == "move":
            action = f"fileinto {_quoted(rule.target.strip())};"
            needs.append("fileinto")
        elif rule.action == "read":
            action = 'addflag "\\\\Seen";'
            needs.append("imap4flags")
        elif rule.action == "flag":
            action = 'addflag "\\\\Flagged";'
            needs.append("imap4flags")
        elif rule.action == "forward":
            action = f"redirect :copy {_quoted(rule.target.strip())};"
            needs.append("copy")
        else:
            action = "discard;"
        lines.append(f"if {test} {{\n    {action}\n}}\n")
    require = ""
    if needs:
        names = ", ".join(_quoted(name) for name in sorted(set(needs)))
        require = f"require [{names}];\n"
    return require + "".join(lines)


def rules_to_sieve(rules: list[SimpleRule]) -> str:
    """The script for these rules, with the marker that lets `sieve_to_rules` read them back."""
    if len(rules) > MAX_RULES:
        raise InvalidInput(f"At most {MAX_RULES} rules.", field="rules")
    for position, rule in enumerate(rules, 1):
        check_rule(rule, position)
    marker = json.dumps([asdict(rule) for rule in rules], separators=(",", ":"))
    return f"{MARKER}{marker}\n{_body(rules)}"


def sieve_to_rules(script: str) -> list[SimpleRule] | None:
    """The rules a script was generated from; None when it was not, or was edited since."""
    first, _, rest = script.partition("\n")
    if not first.startswith(MARKER):
        return None
    try:
        loaded = json.loads(first.removeprefix(MARKER))
        rules = [SimpleRule(**item) for item in loaded]
    except (ValueError, TypeError):
        return None
    if not all(isinstance(value, str) for rule in rules for value in asdict(rule).values()):
        return None
    try:
        expected = _body(rules)
    except InvalidInput:
        return None
    return rules if rest == expected else None

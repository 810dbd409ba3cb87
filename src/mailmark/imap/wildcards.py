"""LIST/LSUB wildcard matching (RFC 9051 §6.3.9) in time linear in the folder name.

`*` matches any run of characters, `%` any run without the hierarchy delimiter. A backtracking
regular expression built from a pattern such as `*%*%*%…x` takes exponential time on a name that
almost matches, so the pattern is run as a set of states instead (a Thompson automaton held as the
bits of an integer): each character of the name moves every live state at once, in a fixed number
of bitwise operations, whatever the pattern looks like.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

# Longer patterns are refused: the state set of a pattern is an integer with one bit per token,
# and no folder name (at most 255 characters) is matched by more literal characters than that.
MAX_PATTERN_TOKENS = 1024


class PatternTooLong(ValueError):
    """A LIST pattern with more than MAX_PATTERN_TOKENS tokens after wildcard runs collapse."""


def _same(char: str) -> str:
    return char


def _folded(char: str) -> str:
    lower = char.lower()
    return lower if len(lower) == 1 else char


class WildcardPattern:
    """One compiled pattern; `steps` counts the state-set updates made by every `match` so far."""

    def __init__(self, pattern: str, delimiter: str, *, fold_case: bool = False) -> None:
        self._fold: Callable[[str], str] = _folded if fold_case else _same
        self._delimiter = delimiter
        tokens = _collapse(pattern)
        if len(tokens) > MAX_PATTERN_TOKENS:
            raise PatternTooLong(f"LIST pattern too long (at most {MAX_PATTERN_TOKENS} characters)")
        # Bit i is the state "the first i tokens are matched"; bit len(tokens) accepts.
        self._accept = 1 << len(tokens)
        self._star = 0  # states sitting on a `*`: stay there on any character
        self._percent = 0  # states sitting on a `%`: stay there on any but the delimiter
        self._literal: dict[str, int] = {}  # states that move on when the character is this one
        for position, token in enumerate(tokens):
            bit = 1 << position
            if token == "*":
                self._star |= bit
            elif token == "%":
                self._percent |= bit
            else:
                key = self._fold(token)
                self._literal[key] = self._literal.get(key, 0) | bit
        self._wild = self._star | self._percent
        self.steps = 0

    def _closure(self, states: int) -> int:
        # A wildcard also matches nothing. Runs of wildcards were collapsed to one token, so a
        # single shift reaches every state the empty match can.
        return states | ((states & self._wild) << 1)

    def match(self, name: str) -> bool:
        states = self._closure(1)
        for char in name:
            self.steps += 1
            moved = (states & self._literal.get(self._fold(char), 0)) << 1
            stay = states & (self._star if char == self._delimiter else self._wild)
            states = self._closure(moved | stay)
            if not states:
                return False
        return bool(states & self._accept)


def _collapse(pattern: str) -> list[str]:
    """Tokens of `pattern`, each run of wildcards made one: any run holding a `*` matches what `*`
    matches, and a run of `%` what one `%` matches."""
    tokens: list[str] = []
    for char in pattern:
        if char in "*%" and tokens and tokens[-1] in "*%":
            if char == "*":
                tokens[-1] = "*"
        else:
            tokens.append(char)
    return tokens


@lru_cache(maxsize=256)
def compile_pattern(pattern: str, delimiter: str, fold_case: bool = False) -> WildcardPattern:
    """A cached compiled pattern (clients repeat the same few LIST patterns)."""
    return WildcardPattern(pattern, delimiter, fold_case=fold_case)

"""LIST/LSUB wildcards: a table of patterns, the same answers as a reference matcher on generated
input, and a bound on the work one name costs whatever the pattern."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmark.imap.wildcards import MAX_PATTERN_TOKENS, PatternTooLong, WildcardPattern


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*", "", True),
        ("*", "a/b/c", True),
        ("%", "a", True),
        ("%", "a/b", False),
        ("%/%", "a/b", True),
        ("a/%", "a/b/c", False),
        ("a/*", "a/b/c", True),
        ("INBOX", "INBOX", True),
        ("INBOX", "INBOXES", False),
        ("Sent", "sent", False),
        ("*x", "abcx", True),
        ("*x", "abcxy", False),
        ("%x", "a/x", False),
        ("a%b%c", "axbyc", True),
        ("a%b%c", "ab/c", False),
        ("", "", True),
        ("", "a", False),
        ("a*", "a", True),
        ("*%*%", "a/b", True),
        ("%*", "a/b", True),
        ("%%", "a/b", False),
    ],
)
def test_pattern_table(pattern: str, name: str, expected: bool) -> None:
    assert WildcardPattern(pattern, "/").match(name) is expected


def test_case_folding_matches_any_case() -> None:
    assert WildcardPattern("inbox/%", "/", fold_case=True).match("INBOX/Work")
    assert not WildcardPattern("inbox/%", "/").match("INBOX/Work")


def _reference(pattern: str, name: str) -> bool:
    regex = "".join(
        ".*" if char == "*" else "[^/]*" if char == "%" else re.escape(char) for char in pattern
    )
    return re.fullmatch(regex, name, re.DOTALL) is not None


@settings(max_examples=400, deadline=None)
@given(
    pattern=st.text(alphabet="ab/*%", max_size=10),
    name=st.text(alphabet="ab/", max_size=10),
)
def test_answers_as_a_regular_expression_does(pattern: str, name: str) -> None:
    assert WildcardPattern(pattern, "/").match(name) is _reference(pattern, name)


@pytest.mark.parametrize(
    "pattern",
    [
        "*%" * 5000 + "x",  # collapses to `*x`
        "*a" * 500 + "x",  # every `*` a state of its own
        "%a" * 500 + "x",
    ],
)
def test_one_state_update_per_character_whatever_the_pattern(pattern: str) -> None:
    # A backtracking matcher tries each way of splitting the name among the wildcards: for these
    # patterns and names that is exponential in the number of wildcards.
    matcher = WildcardPattern(pattern, "/")
    name = "a" * 255
    assert not matcher.match(name)
    assert matcher.steps <= len(name)


def test_a_pattern_over_the_bound_is_refused() -> None:
    with pytest.raises(PatternTooLong):
        WildcardPattern("a" * (MAX_PATTERN_TOKENS + 1), "/")
    # Wildcard runs collapse before the bound is applied.
    WildcardPattern("*%" * MAX_PATTERN_TOKENS, "/")

"""Typed search criteria: UID sets, bounds, MODSEQ detection (the SQL is tested in test_mailstore)."""

from __future__ import annotations

from datetime import date

import pytest

from mailmark.core import search as s


@pytest.mark.parametrize(
    ("uids", "ranges"),
    [
        ([], ()),
        ([7], ((7, 7),)),
        ([3, 1, 2, 2], ((1, 3),)),
        ([1, 2, 4, 5, 9], ((1, 2), (4, 5), (9, 9))),
    ],
)
def test_uid_set_of_collapses_ranges(uids: list[int], ranges: tuple[tuple[int, int], ...]) -> None:
    assert s.UidSet.of(uids).ranges == ranges


def test_bounds_allow_reasonable_criteria() -> None:
    criteria = s.And((s.Or(s.Flag("\\Seen"), s.Not(s.Text("x"))), s.Since(date(2025, 1, 1))))
    s.check_bounds(criteria)
    assert s.children(criteria)[1] == s.Since(date(2025, 1, 1))
    assert s.children(s.Text("x")) == ()


def test_bounds_refuse_deep_or_wide_criteria() -> None:
    deep: s.Criteria = s.All()
    for _ in range(s.MAX_DEPTH):
        deep = s.Not(deep)
    with pytest.raises(ValueError, match="deeper"):
        s.check_bounds(deep)
    with pytest.raises(ValueError, match="more than"):
        s.check_bounds(s.And(tuple(s.Larger(i) for i in range(s.MAX_NODES))))


def test_uses_modseq_looks_everywhere() -> None:
    assert s.uses_modseq(s.Or(s.All(), s.And((s.Flag("x"), s.ModSeq(5)))))
    assert not s.uses_modseq(s.Or(s.All(), s.Not(s.Flag("x"))))


def test_uses_index_finds_full_text_criteria() -> None:
    assert s.uses_index(s.Not(s.Or(s.Flag("x"), s.Header("X-A", "b"))))
    assert s.uses_index(s.And((s.Subject("a"),)))
    assert not s.uses_index(s.And((s.Larger(3), s.UidSet(((1, 2),)))))

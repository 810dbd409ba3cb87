"""The affiliate program's pure rules: commission and clawback in integer cents, the $50
minimum, the statement calendar, the referral cookie's window and who counts as the same person."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailmark.core.affiliates import (
    check_month,
    clawback_for,
    commission_on,
    cookie_value,
    format_cents,
    last_closable_month,
    payable_on,
    payout_due,
    read_cookie,
    same_person,
)
from mailmark.core.errors import InvalidInput

NOW = datetime(2030, 5, 20, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("paid", "earned"),
    [(1000, 300), (5000, 1500), (10000, 3000), (999, 300), (1, 0), (2, 1), (0, 0)],
)
def test_commission_is_30_percent_to_the_nearest_cent(paid: int, earned: int) -> None:
    assert commission_on(paid) == earned


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=0, max_value=10**9))
def test_refunds_never_take_back_more_than_the_commission(amount: int, refunded: int) -> None:
    commission = commission_on(amount)
    taken = clawback_for(commission, amount, refunded)
    assert isinstance(taken, int) and 0 <= taken <= commission
    assert clawback_for(commission, amount, amount) == commission


def test_a_refund_in_parts_takes_back_the_whole_commission_in_parts() -> None:
    first = clawback_for(300, 1000, 400)
    assert (first, clawback_for(300, 1000, 1000) - first) == (120, 180)


@pytest.mark.parametrize(("balance", "paid"), [(4999, 0), (5000, 5000), (12345, 12345), (-300, 0)])
def test_the_50_dollar_minimum(balance: int, paid: int) -> None:
    assert payout_due(balance) == paid


@pytest.mark.parametrize(
    ("now", "month"),
    [
        (datetime(2030, 2, 14, 23, 59, tzinfo=UTC), "2029-12"),
        (datetime(2030, 2, 15, tzinfo=UTC), "2030-01"),
        (datetime(2030, 1, 15, tzinfo=UTC), "2029-12"),
        (datetime(2030, 1, 3, tzinfo=UTC), "2029-11"),
    ],
)
def test_a_month_closes_on_the_15th_of_the_next(now: datetime, month: str) -> None:
    assert last_closable_month(now) == month


def test_payouts_fall_on_the_15th() -> None:
    assert payable_on("2030-12") == date(2031, 1, 15)
    assert payable_on("2030-01") == date(2030, 2, 15)


@pytest.mark.parametrize("month", ["2030-13", "2030-1", "30-01", "2030-01x", ""])
def test_months_are_checked(month: str) -> None:
    with pytest.raises(InvalidInput):
        check_month(month)


def test_the_cookie_counts_for_90_days_only() -> None:
    inside = cookie_value("abcdefgh", NOW - timedelta(days=89))
    assert read_cookie(inside, NOW) == ("abcdefgh", NOW - timedelta(days=89))
    assert read_cookie(cookie_value("abcdefgh", NOW - timedelta(days=91)), NOW) is None
    assert read_cookie(cookie_value("abcdefgh", NOW + timedelta(days=1)), NOW) is None
    for junk in ("", "abcdefgh", "abc.123", "abcdefgh.12x", "x" * 100):
        assert read_cookie(junk, NOW) is None


def test_the_same_person_under_a_tag_or_gmail_dots() -> None:
    assert same_person("Pat+ads@Partner.test", "pat@partner.test")
    assert same_person("p.a.t@gmail.com", "pat@googlemail.com")
    assert not same_person("p.at@partner.test", "pat@partner.test")


def test_amounts() -> None:
    assert (format_cents(6000), format_cents(5), format_cents(-1234)) == ("60.00", "0.05", "-12.34")

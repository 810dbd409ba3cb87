"""The pure parts of spam filtering: scanner answers read, thresholds applied, verdict fields
written, and verdict fields from outside removed."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from mailmark.config import Settings
from mailmark.core.errors import SpamDeferred, SpamRefused
from mailmark.core.spam import SpamScan, SpamThresholds, judge, without_spam_headers
from mailmark.spam.blocklists import query_name
from mailmark.spam.rspamd import read_scan

DEFAULT = SpamThresholds()


def scan(action: str, score: float) -> SpamScan:
    return SpamScan(action=action, score=score, required_score=15.0, symbols=(("BAYES", 1.5),))


@pytest.mark.parametrize(
    ("action", "score", "thresholds", "junk"),
    [
        ("no action", 1.0, DEFAULT, False),
        ("add header", 7.0, DEFAULT, True),
        ("rewrite subject", 9.0, DEFAULT, True),
        # Greylisting off: a soft reject is judged by its score alone.
        ("soft reject", 4.5, DEFAULT, False),
        ("greylist", 4.5, SpamThresholds(junk_score=4.0), True),
        ("no action", 5.0, SpamThresholds(junk_score=5.0), True),
        ("no action", 4.9, SpamThresholds(junk_score=5.0), False),
    ],
)
def test_actions_and_thresholds_choose_the_folder(
    action: str, score: float, thresholds: SpamThresholds, junk: bool
) -> None:
    verdict = judge(scan(action, score), thresholds)
    assert verdict.junk is junk
    flag = b"YES" if junk else b"NO"
    assert verdict.headers.startswith(b"X-Spam-Flag: " + flag + b"\r\nX-Spam-Score: ")
    assert verdict.headers.endswith(b"\ttests=BAYES=1.50\r\n")


@pytest.mark.parametrize(
    ("action", "score", "thresholds"),
    [
        ("reject", 16.0, DEFAULT),
        ("add header", 8.0, SpamThresholds(reject_score=8.0)),
    ],
)
def test_reject_action_or_reject_score_refuses(
    action: str, score: float, thresholds: SpamThresholds
) -> None:
    with pytest.raises(SpamRefused, match=r"^Message refused as spam \(score"):
        judge(scan(action, score), thresholds)


def test_greylisting_defers_only_when_enabled() -> None:
    with pytest.raises(SpamDeferred):
        judge(scan("soft reject", 3.0), SpamThresholds(greylisting=True))
    assert judge(scan("soft reject", 3.0), DEFAULT).junk is False


def test_a_reason_from_the_scanner_cannot_break_the_reply_line() -> None:
    hostile = SpamScan("reject", 20.0, 15.0, (), "bad\r\n250 ok")
    with pytest.raises(SpamRefused) as refused:
        judge(hostile, DEFAULT)
    assert "\r" not in refused.value.message and "\n" not in refused.value.message


@pytest.mark.parametrize(
    "answer",
    [[], {"action": "reject"}, {"score": 3.0}, {"action": 1, "score": 2}, "reject"],
)
def test_answers_that_are_not_a_scan_are_refused(answer: Any) -> None:
    with pytest.raises(ValueError):
        read_scan(answer)


def test_a_scan_keeps_symbol_scores_and_the_smtp_message() -> None:
    found = read_scan(
        {
            "action": "reject",
            "score": 15,
            "required_score": 15.0,
            "symbols": {"GTUBE": {"name": "GTUBE", "score": 0.0}, "ODD": "not a symbol"},
            "messages": {"smtp_message": "Gtube pattern"},
        }
    )
    assert found == SpamScan("reject", 15.0, 15.0, (("GTUBE", 0.0),), "Gtube pattern")


def test_verdict_fields_from_outside_are_removed_folded_lines_and_all() -> None:
    raw = (
        b"X-Spam-Status: No, score=-5\r\n\ttests=FORGED\r\n"
        b"Subject: hi\r\n"
        b"x-spam-flag: NO\r\n"
        b"X-Rspamd-Queue-Id: 1\r\n"
        b"X-Spammy-Name: kept? no, it is a spam field name too\r\n"
        b"X-Mailer: kept\r\n"
        b"\r\n"
        b"X-Spam-Flag: NO in the body stays\r\n"
    )
    assert without_spam_headers(raw) == (
        b"Subject: hi\r\nX-Mailer: kept\r\n\r\nX-Spam-Flag: NO in the body stays\r\n"
    )
    clean = b"Subject: hi\r\n\r\nbody\r\n"
    assert without_spam_headers(clean) is clean


@pytest.mark.parametrize(
    ("address", "name"),
    [
        ("192.0.2.99", "99.2.0.192.zen.example"),
        ("2001:db8::1", "1.0.0.0." + "0." * 20 + "8.b.d.0.1.0.0.2.zen.example"),
    ],
)
def test_blocklist_query_names(address: str, name: str) -> None:
    assert query_name(ipaddress.ip_address(address), "zen.example") == name


def test_spam_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILMARK_RSPAMD_URL", "http://127.0.0.1:11333")
    monkeypatch.setenv("MAILMARK_DNSBL_ZONES", "zen.spamhaus.org, bl.example.")
    monkeypatch.setenv("MAILMARK_RSPAMD_TIMEOUT", "3s")
    monkeypatch.setenv("MAILMARK_SPAM_JUNK_SCORE", "6.5")
    settings = Settings(hostname="mx.example.com")
    assert settings.rspamd_url == "http://127.0.0.1:11333"
    assert settings.dnsbl_zones == ["zen.spamhaus.org", "bl.example."]
    assert settings.rspamd_timeout == timedelta(seconds=3)
    assert settings.spam_junk_score == 6.5
    assert settings.spam_reject_score is None and settings.rspamd_unavailable == "accept"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("rspamd_url", "127.0.0.1:11333", "is not a URL"),
        ("rspamd_url", "http://127.0.0.1:11333/checkv2", "is not a URL"),
        ("dnsbl_zones", "zen spamhaus org", "is not a DNS zone"),
        ("rspamd_unavailable", "drop", "accept"),
    ],
)
def test_bad_spam_settings_are_refused_naming_the_setting(name: str, value: str, says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(hostname="mx.example.com", **{name: value})
    assert name in str(refused.value) and says in str(refused.value)

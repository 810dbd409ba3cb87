"""The DMARC aggregate and TLS report parsers: real-world shapes read right, and every hostile or
broken input refused with a reason (ReportRefused, never another exception), in bounded memory."""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import tracemalloc
import zipfile
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmark.core.aggregate_reports import (
    MAX_DECOMPRESSED,
    MAX_RECORDS,
    ReportKind,
    parse_dmarc,
    parse_report_message,
    parse_tls,
)
from mailmark.core.errors import ReportRefused
from tests.core.aggregate_report_samples import (
    billion_laughs,
    external_entity,
    google_report,
    google_xml,
    gzip_bomb,
    gzip_report,
    many_records_xml,
    microsoft_report,
    plain_report,
    tls_json,
    tls_report,
    yahoo_report,
    zip_bomb,
    zip_report,
)

TO = "dmarc@acme.test"


def test_google_zip() -> None:
    report = parse_report_message(google_report(TO, "acme.test"), ReportKind.DMARC)
    assert (report.org_name, report.report_id, report.domain) == (
        "google.com",
        "13790208385467380422",
        "acme.test",
    )
    assert report.begin is not None and report.begin.isoformat() == "2024-05-01T00:00:00+00:00"
    assert report.policy == {
        "adkim": "r",
        "aspf": "r",
        "p": "quarantine",
        "sp": "quarantine",
        "pct": "100",
        "np": "quarantine",
    }
    good, bad = report.records
    assert (good.source_ip, good.count, good.dmarc_pass) == ("203.0.113.25", 12, True)
    assert (good.dkim_result, good.dkim_domain, good.spf_domain) == (
        "pass",
        "acme.test",
        "mail.acme.test",
    )
    assert (bad.disposition, bad.dmarc_pass, bad.dkim_result, bad.spf_result) == (
        "quarantine",
        False,
        "none",
        "softfail",
    )


def test_microsoft_gzip_prefers_the_passing_signature_of_the_from_domain() -> None:
    report = parse_report_message(microsoft_report(TO, "acme.test"), ReportKind.DMARC)
    assert report.org_name == "Enterprise Outlook" and report.policy["fo"] == "0"
    forwarded = report.records[1]
    assert forwarded.source_ip == "2001:db8::42"  # canonical form of 2001:0db8:…:0042
    assert (forwarded.dkim_aligned, forwarded.spf_aligned) == ("pass", "fail")
    assert (forwarded.dkim_domain, forwarded.envelope_from) == ("acme.test", "lists.example")


def test_yahoo_gzip() -> None:
    [record] = parse_report_message(yahoo_report(TO, "acme.test"), ReportKind.DMARC).records
    assert (record.dkim_result, record.spf_result, record.disposition) == (
        "permerror",
        "fail",
        "quarantine",
    )


def test_dmarcbis_namespace_is_read_like_appendix_c() -> None:
    xml = google_xml("acme.test").replace(
        b"<feedback>", b'<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">'
    )
    assert len(parse_dmarc(iter([xml])).records) == 2


def test_a_report_fed_a_byte_at_a_time_reads_the_same() -> None:
    xml = google_xml("acme.test")
    whole = parse_dmarc(iter([xml]))
    assert parse_dmarc(iter(xml[i : i + 1] for i in range(len(xml)))) == whole


def test_tls_report_of_rfc_8460() -> None:
    report = parse_report_message(tls_report("tls-reports@acme.test", "acme.test"), ReportKind.TLS)
    assert (report.org_name, report.domain) == ("Company-X", "acme.test")
    [policy] = report.policies
    assert (policy.policy_type, policy.mx_hosts) == ("sts", ("*.mail.acme.test",))
    assert (policy.successful_sessions, policy.failed_sessions) == (5326, 303)
    assert [(f.result_type, f.sessions) for f in policy.failures] == [
        ("certificate-expired", 100),
        ("starttls-not-supported", 200),
        ("validation-failure", 3),
    ]
    assert policy.failures[2].failure_reason_code == "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"


def test_tls_report_mx_host_as_a_string_as_rfc_8460_prints_it() -> None:
    text = tls_json("acme.test").replace(b'["*.mail.acme.test"]', b'"*.mail.acme.test"')
    [policy] = parse_tls(text).policies
    assert policy.mx_hosts == ("*.mail.acme.test",)


def _zip(*members: tuple[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def _with_attachment(payload: bytes, content_type: str) -> bytes:
    """A report message whose whole body is the attachment, base64-encoded."""
    return (
        f"From: r@hostile.example\r\nTo: {TO}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + base64.encodebytes(payload).replace(b"\n", b"\r\n")


def _bomb_message() -> bytes:
    return _with_attachment(gzip_bomb(), "application/gzip")


def _truncated_gzip() -> bytes:
    return _with_attachment(gzip.compress(google_xml("acme.test"))[:300], "application/gzip")


def _corrupt_gzip() -> bytes:
    return _with_attachment(b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"not deflate", "application/gzip")


def _many_entries(count: int) -> bytes:
    """A one-file zip whose end of central directory record declares `count` entries."""
    archive = bytearray(_zip(("a.xml", b"<feedback/>")))
    end = archive.rfind(b"PK\x05\x06")
    archive[end + 8 : end + 12] = count.to_bytes(2, "little") * 2
    return bytes(archive)


REFUSED: dict[str, tuple[Callable[[], bytes], ReportKind, str]] = {
    "billion laughs": (lambda: plain_report(TO, billion_laughs()), ReportKind.DMARC, "DOCTYPE"),
    "external entity": (lambda: plain_report(TO, external_entity()), ReportKind.DMARC, "DOCTYPE"),
    "parameter entity": (
        lambda: plain_report(
            TO, b'<!DOCTYPE f [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x">%p;]><feedback/>'
        ),
        ReportKind.DMARC,
        "DOCTYPE",
    ),
    "gzip bomb": (_bomb_message, ReportKind.DMARC, "larger than 20 MiB"),
    "zip bomb": (
        lambda: zip_report(TO, zip_bomb(30 * 1024 * 1024)),
        ReportKind.DMARC,
        "larger than 20 MiB",
    ),
    "zip bomb declaring 1 KiB": (
        lambda: zip_report(TO, zip_bomb(30 * 1024 * 1024, lie=True)),
        ReportKind.DMARC,
        "corrupt",
    ),
    "two files in the zip": (
        lambda: zip_report(TO, _zip(("a.xml", b"<feedback/>"), ("../../b.xml", b"<feedback/>"))),
        ReportKind.DMARC,
        "holds 2 files",
    ),
    "a directory of 60,000 files": (
        lambda: zip_report(TO, _many_entries(60_000)),
        ReportKind.DMARC,
        "holds 60000 files",
    ),
    "attribute bomb": (
        lambda: gzip_report(
            TO,
            b"<feedback "
            + b" ".join(b'a%d=""' % i for i in range(200_000))
            + b"><report_metadata/></feedback>",
        ),
        ReportKind.DMARC,
        "more than 100000 attributes",
    ),
    "not a zip": (lambda: zip_report(TO, b"PK\x03\x04garbage"), ReportKind.DMARC, "corrupt"),
    "corrupt gzip": (_corrupt_gzip, ReportKind.DMARC, "gzip attachment is corrupt"),
    "truncated gzip": (_truncated_gzip, ReportKind.DMARC, "truncated"),
    "too many records": (
        lambda: gzip_report(TO, many_records_xml("acme.test", MAX_RECORDS + 1)),
        ReportKind.DMARC,
        f"more than {MAX_RECORDS} records",
    ),
    "invalid XML": (
        lambda: plain_report(TO, b"<feedback><a></b></feedback>"),
        ReportKind.DMARC,
        "well-formed",
    ),
    "unknown encoding": (
        lambda: plain_report(TO, b'<?xml version="1.0" encoding="U-F-8"?><feedback/>'),
        ReportKind.DMARC,
        "not well-formed XML (unknown encoding",
    ),
    "another root": (
        lambda: plain_report(TO, b"<html><body/></html>"),
        ReportKind.DMARC,
        "not <feedback>",
    ),
    "deep nesting": (
        lambda: plain_report(TO, b"<feedback>" + b"<a>" * 100 + b"</a>" * 100 + b"</feedback>"),
        ReportKind.DMARC,
        "nested too deeply",
    ),
    "no metadata": (lambda: plain_report(TO, b"<feedback></feedback>"), ReportKind.DMARC, "lacks"),
    "bad count": (
        lambda: plain_report(TO, google_xml("acme.test").replace(b"<count>12<", b"<count>-1<")),
        ReportKind.DMARC,
        "is not a count",
    ),
    "bad source IP": (
        lambda: plain_report(TO, google_xml("acme.test").replace(b"203.0.113.25", b"mail.evil")),
        ReportKind.DMARC,
        "not an IP address",
    ),
    "no attachment": (lambda: b"Subject: hi\r\n\r\nhello\r\n", ReportKind.DMARC, "No DMARC"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_with_a_reason(name: str) -> None:
    build, kind, reason = REFUSED[name]
    with pytest.raises(ReportRefused) as refusal:
        parse_report_message(build(), kind)
    assert reason in refusal.value.message


def test_a_100_mb_gzip_bomb_is_refused_after_20_mib_in_bounded_memory() -> None:
    bomb = gzip_bomb()
    tracemalloc.start()
    try:
        with pytest.raises(ReportRefused, match="larger than 20 MiB"):
            parse_report_message(_with_attachment(bomb, "application/gzip"), ReportKind.DMARC)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The message and its decoded attachment are ~0.3 MB; inflating goes 64 KiB at a time.
    assert peak < 4 * 1024 * 1024, peak
    assert MAX_DECOMPRESSED == 20 * 1024 * 1024


TLS_REFUSED = {
    "not JSON": (b"{", "not valid JSON"),
    "an array": (b"[]", "not a JSON object"),
    "no policies": (b'{"organization-name": "x", "report-id": "1"}', "lacks"),
    "empty objects": (b"[" + b",".join([b"{}"] * 20_001) + b"]", "more than 20000 JSON objects"),
    "deep arrays": (b"[" * 20_001 + b"]" * 20_001, "more than 20000 JSON objects"),
    "two domains": (
        tls_json("acme.test").replace(
            b'"policies": [{',
            b'"policies": [{"policy": {"policy-type": "sts", "policy-domain": "other.test"}, "summary": {}}, {',
            1,
        ),
        "about one policy-domain",
    ),
    "negative count": (tls_json("acme.test").replace(b"5326", b"-5"), "not a count"),
    "float count": (tls_json("acme.test").replace(b"5326", b"5.5"), "not a count"),
    "bool count": (tls_json("acme.test").replace(b"5326", b"true"), "not a count"),
    "bad date": (tls_json("acme.test").replace(b"2016-04-01T00:00:00Z", b"yesterday"), "RFC 3339"),
}


@pytest.mark.parametrize("name", list(TLS_REFUSED))
def test_tls_refused_with_a_reason(name: str) -> None:
    data, reason = TLS_REFUSED[name]
    with pytest.raises(ReportRefused) as refusal:
        parse_tls(data)
    assert reason in refusal.value.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_are_a_report_or_a_refusal(data: bytes) -> None:
    for kind in ReportKind:
        with contextlib.suppress(ReportRefused):
            parse_report_message(data, kind)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(google_xml("acme.test")) - 1), st.binary(max_size=8))
def test_a_mangled_report_is_read_or_refused(position: int, junk: bytes) -> None:
    xml = google_xml("acme.test")
    mangled = xml[:position] + junk + xml[position + len(junk) :]
    with contextlib.suppress(ReportRefused):
        parse_dmarc(iter([mangled]))
    with contextlib.suppress(ReportRefused):
        parse_tls(tls_json("acme.test")[:position] + junk)

"""DMARC aggregate report parsing: a 10,000-record report, against a plain parse, same run.

    cd /work/wt/<name> && PYTHONPATH=$PWD/src /work/main/.venv/bin/python bench/reports.py \
        [--records N] [--rounds R]

Mailmark: `parse_report_message` on a whole message carrying the report as Google sends it (one
zipped XML file, base64 in a multipart/mixed message) and as Microsoft and Yahoo do (gzip): MIME
walk, base64 decode, inflate 64 KiB at a time under the 20 MiB cap, expat with DOCTYPE refused,
every record checked (IP canonicalised, counts bounded) into typed records.

Baseline: the standard library's `xml.etree.ElementTree.fromstring` on the same XML, already
inflated (no MIME, no decompression, no checks, the whole tree in memory), then one findall over
the records: what an unbounded parser costs.

Prints, for each, the best of R rounds: seconds, records/s, the peak memory tracemalloc saw (in a
separate traced run: tracing slows parsing several times), and
Mailmark/baseline time. Then a 100 MB gzip bomb and a 20,001-record report: time to refusal and
peak memory. This is a benchmark, not a test: the figures depend on what else the machine does.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.core.aggregate_report_samples

from mailmark.core.aggregate_reports import MAX_RECORDS, ReportKind, parse_report_message
from mailmark.core.errors import ReportRefused
from tests.core.aggregate_report_samples import (
    gzip_bomb,
    gzip_report,
    many_records_xml,
    report_message,
    zip_archive,
)

TO = "dmarc@acme.test"


def measure(work: Callable[[], object], rounds: int) -> tuple[float, int]:
    """(best seconds of `rounds`, peak bytes of one traced run)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    try:
        work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return best, peak


def refusal(work: Callable[[], object]) -> tuple[float, int, str]:
    """(seconds to the refusal, untraced; peak bytes of a traced run; the reason)."""
    reason = "NOT REFUSED"
    start = time.perf_counter()
    try:
        work()
    except ReportRefused as error:
        reason = error.message
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    try:
        work()
    except ReportRefused:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return elapsed, peak, reason


def line(name: str, seconds: float, records: int, peak: int) -> str:
    return (
        f"{name:34} {seconds * 1000:8.0f} ms {records / seconds:10,.0f} records/s "
        f"{peak / 2**20:8.1f} MiB peak"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    xml = many_records_xml("acme.test", args.records)
    zipped = report_message(
        sender="noreply-dmarc-support@google.com",
        to=TO,
        subject="Report domain: acme.test Submitter: google.com",
        attachment=zip_archive("google.com!acme.test!1!2.xml", xml),
        maintype="application",
        subtype="zip",
        filename="google.com!acme.test!1!2.zip",
    )
    gzipped = gzip_report(TO, xml)
    print(
        f"report: {args.records} records, {len(xml) / 2**20:.1f} MiB of XML; messages "
        f"{len(zipped) / 2**20:.2f} MiB (zip), {len(gzipped) / 2**20:.2f} MiB (gzip)"
    )

    def mailmark_zip() -> object:
        report = parse_report_message(zipped, ReportKind.DMARC)
        assert len(report.records) == args.records
        return report

    def mailmark_gzip() -> object:
        return parse_report_message(gzipped, ReportKind.DMARC)

    def baseline() -> object:
        root = ElementTree.fromstring(xml)
        records = root.findall("record")
        assert len(records) == args.records
        return records

    base_time, base_peak = measure(baseline, args.rounds)
    zip_time, zip_peak = measure(mailmark_zip, args.rounds)
    gzip_time, gzip_peak = measure(mailmark_gzip, args.rounds)
    print(line("baseline ElementTree.fromstring", base_time, args.records, base_peak))
    print(line("mailmark, zip message", zip_time, args.records, zip_peak))
    print(line("mailmark, gzip message", gzip_time, args.records, gzip_peak))
    print(
        f"mailmark/baseline time: zip {zip_time / base_time:.2f}x, gzip {gzip_time / base_time:.2f}x"
    )

    bomb_payload = gzip_bomb()
    bomb_message = report_message(
        sender="reports@hostile.example",
        to=TO,
        subject="Report",
        attachment=bomb_payload,
        maintype="application",
        subtype="gzip",
        filename="bomb.xml.gz",
    )
    too_many = gzip_report(TO, many_records_xml("acme.test", MAX_RECORDS + 1))
    for name, message in (
        (f"100 MB gzip bomb ({len(bomb_payload) // 1024} KiB)", bomb_message),
        (f"{MAX_RECORDS + 1:,} records", too_many),
    ):
        elapsed, peak, reason = refusal(lambda m=message: parse_report_message(m, ReportKind.DMARC))
        print(
            f"{name:34} refused in {elapsed * 1000:6.0f} ms, {peak / 2**20:5.1f} MiB peak: {reason}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reading the aggregate reports receivers send about a domain's mail: DMARC aggregate reports
(RFC 7489 §7.2 and appendix C, XML, usually gzip or zip) and SMTP TLS reports (RFC 8460 §4, JSON,
usually gzip).

Pure functions from a message's bytes to typed reports; every refusal is `ReportRefused` with a
reason a person can read. Everything a reporter controls is bounded: the attachment is inflated
as a stream and abandoned past `MAX_DECOMPRESSED`, a zip may hold one member whose declared and
actual sizes are both checked, the XML is parsed incrementally by expat with any DOCTYPE refused
(no entities at all, so no entity expansion and no external entities), and the number of
records, failure details, element depth and text lengths are capped.
"""

from __future__ import annotations

import io
import ipaddress
import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from enum import StrEnum
from typing import Any
from xml.parsers import expat

from mailmark.core.errors import ReportRefused

MAX_DECOMPRESSED = 20 * 1024 * 1024  # what one attachment may inflate to
MAX_TLS_JSON = 2 * 1024 * 1024  # TLS reports are small; json.loads holds it all in memory
MAX_JSON_CONTAINERS = 20_000  # objects and arrays in one TLS report
MAX_RECORDS = 20_000  # <record> elements of one DMARC report
MAX_TLS_POLICIES = 1_000
MAX_FAILURE_DETAILS = 1_000  # per TLS report, over all its policies
MAX_MIME_PARTS = 50
MAX_XML_DEPTH = 16
# expat hands every start tag's attributes to Python as one dict: a single tag with millions of
# attributes would cost hundreds of MiB. Reports use a handful (namespace declarations), so the
# '=' signs of the whole document (attributes, and the odd one in a URL) are counted instead.
MAX_EQUALS_SIGNS = 100_000
MAX_ZIP_DIRECTORY = 64 * 1024  # the central directory of a one-file zip is a few hundred bytes
MAX_TEXT = 1_024  # characters kept of any one element's text or JSON string
CHUNK = 64 * 1024

_ZIP_TYPES = {"application/zip", "application/x-zip-compressed", "application/x-zip"}
_GZIP_TYPES = {"application/gzip", "application/x-gzip", "application/tlsrpt+gzip"}
_XML_TYPES = {"text/xml", "application/xml"}
_JSON_TYPES = {"application/json", "application/tlsrpt+json"}


class ReportKind(StrEnum):
    DMARC = "dmarc"
    TLS = "tls"


@dataclass(frozen=True)
class DmarcRecord:
    """One <record>: mail from one source IP with one set of results (RFC 7489 appendix C)."""

    source_ip: str
    count: int
    disposition: str  # none | quarantine | reject: what the receiver did
    dkim_aligned: str  # policy_evaluated: pass | fail (DKIM that passed *and* aligned)
    spf_aligned: str
    header_from: str
    envelope_from: str
    dkim_result: str  # auth_results: the best raw DKIM result ("none" without a signature)
    dkim_domain: str
    spf_result: str
    spf_domain: str

    @property
    def dmarc_pass(self) -> bool:
        """RFC 7489 §6.6.2: DMARC passes when either identifier passed aligned."""
        return self.dkim_aligned == "pass" or self.spf_aligned == "pass"


@dataclass(frozen=True)
class TlsFailure:
    """One entry of a policy's failure-details (RFC 8460 §4.3)."""

    result_type: str
    sessions: int
    sending_mta_ip: str
    receiving_mx_hostname: str
    receiving_ip: str
    failure_reason_code: str


@dataclass(frozen=True)
class TlsPolicy:
    """One policy's summary (RFC 8460 §4.4): sts, tlsa or no-policy-found."""

    policy_type: str
    policy_domain: str
    mx_hosts: tuple[str, ...]
    successful_sessions: int
    failed_sessions: int
    failures: tuple[TlsFailure, ...]


@dataclass(frozen=True)
class AggregateReport:
    """A report as the reporter sent it: the domain it is about, who, which period."""

    kind: ReportKind
    org_name: str
    report_id: str
    begin: datetime | None
    end: datetime | None
    domain: str  # the policy_published domain (DMARC) or the policies' domain (TLS)
    policy: dict[str, str] = field(default_factory=dict)  # DMARC policy_published
    records: tuple[DmarcRecord, ...] = ()
    policies: tuple[TlsPolicy, ...] = ()


# --- finding the report in the message ---------------------------------------------------------


def parse_report_message(raw: bytes, kind: ReportKind) -> AggregateReport:
    """The report of `kind` carried by a message (RFC 7489 §7.2.1.1, RFC 8460 §5.3): the first
    attachment of a report type, as the whole body or a part of a multipart message."""
    message = BytesParser(policy=compat32).parsebytes(raw)
    for count, part in enumerate(message.walk()):
        if count >= MAX_MIME_PARTS:
            break
        if part.is_multipart():
            continue
        container = _container(part, kind)
        if container is None:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            raise ReportRefused("The report attachment is empty.")
        if kind is ReportKind.DMARC:
            return parse_dmarc(_inflate(payload, container, MAX_DECOMPRESSED))
        return parse_tls(b"".join(_inflate(payload, container, MAX_TLS_JSON)))
    wanted = "DMARC aggregate report (XML)" if kind is ReportKind.DMARC else "TLS report (JSON)"
    raise ReportRefused(f"No {wanted} attached to the message.")


def _container(part: Message, kind: ReportKind) -> str | None:
    """ "zip", "gzip" or "plain" for a part that holds a report of `kind`, else None."""
    content_type = part.get_content_type()
    name = (part.get_filename() or "").lower()
    if content_type in _ZIP_TYPES or name.endswith(".zip"):
        return "zip"
    if content_type in _GZIP_TYPES or name.endswith(".gz"):
        return "gzip"
    plain = _XML_TYPES if kind is ReportKind.DMARC else _JSON_TYPES
    suffix = ".xml" if kind is ReportKind.DMARC else ".json"
    if content_type in plain or name.endswith(suffix):
        return "plain"
    return None


def _inflate(payload: bytes, container: str, limit: int) -> Iterator[bytes]:
    """The attachment's content in chunks; refused as soon as it passes `limit` bytes."""
    if container == "plain":
        if len(payload) > limit:
            raise _too_large(limit)
        return iter([payload])
    if container == "gzip":
        return _gunzip(payload, limit)
    return _unzip(payload, limit)


def _too_large(limit: int) -> ReportRefused:
    return ReportRefused(f"The report is larger than {limit // (1024 * 1024)} MiB uncompressed.")


def _gunzip(payload: bytes, limit: int) -> Iterator[bytes]:
    """RFC 1952, one or more members, inflated at most CHUNK bytes at a time."""
    produced = 0
    data = payload
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while True:
            try:
                chunk = inflater.decompress(data, CHUNK)
            except zlib.error as error:
                raise ReportRefused(f"The gzip attachment is corrupt ({error}).") from None
            data = inflater.unconsumed_tail
            produced += len(chunk)
            if produced > limit:
                raise _too_large(limit)
            if chunk:
                yield chunk
            if inflater.eof:
                data = inflater.unused_data
                break
            if not data and not chunk:
                raise ReportRefused("The gzip attachment is truncated.")
        if data.strip(b"\0") == b"":
            return  # padding after the last member


def _unzip(payload: bytes, limit: int) -> Iterator[bytes]:
    """A zip with exactly one stored or deflated member; its name is never used as a path."""
    _check_zip_directory(payload)
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise ReportRefused(f"The zip attachment is corrupt ({error}).") from None
    if len(members) != 1:
        raise ReportRefused(f"The zip attachment holds {len(members)} files; a report is one.")
    [member] = members
    if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ReportRefused("The zip attachment uses a compression method other than deflate.")
    if member.flag_bits & 0x1:
        raise ReportRefused("The zip attachment is encrypted.")
    if member.file_size > limit:
        raise _too_large(limit)
    produced = 0
    try:
        with archive.open(member) as content:
            while chunk := content.read(CHUNK):
                produced += len(chunk)
                # The declared size may lie; what is actually inflated is what counts.
                if produced > limit:
                    raise _too_large(limit)
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as error:
        raise ReportRefused(f"The zip attachment is corrupt ({error}).") from None


def _check_zip_directory(payload: bytes) -> None:
    """Read the end of central directory record (APPNOTE 4.3.16) before zipfile does: zipfile
    builds an object per entry, and a crafted directory can list hundreds of thousands."""
    end = payload.rfind(b"PK\x05\x06", max(0, len(payload) - 65_557))
    if end < 0 or len(payload) < end + 22:
        raise ReportRefused("The zip attachment is corrupt (no end of central directory).")
    entries = int.from_bytes(payload[end + 10 : end + 12], "little")
    directory_size = int.from_bytes(payload[end + 12 : end + 16], "little")
    if entries != 1:
        raise ReportRefused(f"The zip attachment holds {entries} files; a report is one.")
    if directory_size > MAX_ZIP_DIRECTORY:
        raise ReportRefused("The zip attachment's directory is too large for one file.")


# --- DMARC aggregate reports (XML) -------------------------------------------------------------


class _DmarcBuilder:
    """expat callbacks that collect report_metadata, policy_published and each record, keeping
    only the elements of appendix C (namespaces dropped, as in DMARCbis' 2.0 schema)."""

    def __init__(self) -> None:
        self.path: list[str] = []
        self.text: list[str] = []
        self.text_length = 0
        self.meta: dict[str, str] = {}
        self.policy: dict[str, str] = {}
        self.record: dict[str, str] = {}
        self.auth: dict[str, str] = {}
        self.dkim_results: list[tuple[str, str]] = []
        self.spf_results: list[tuple[str, str]] = []
        self.records: list[DmarcRecord] = []
        self.root_seen = False

    def start(self, name: str, attributes: dict[str, str]) -> None:
        local = name.rpartition(" ")[2]
        path = self.path
        depth = len(path)
        if not depth:
            if self.root_seen or local != "feedback":
                raise ReportRefused(f"Not a DMARC aggregate report: <{local}> is not <feedback>.")
            self.root_seen = True
        elif depth >= MAX_XML_DEPTH:
            raise ReportRefused("The report's XML is nested too deeply.")
        path.append(local)
        self.text = []
        self.text_length = 0
        if depth == 1 and local == "record":
            if len(self.records) >= MAX_RECORDS:
                raise ReportRefused(f"The report holds more than {MAX_RECORDS} records.")
            self.record, self.dkim_results, self.spf_results = {}, [], []
        elif depth == 3 and path[2] == "auth_results":
            self.auth = {}

    def characters(self, data: str) -> None:
        if self.text_length < MAX_TEXT:
            self.text.append(data)
            self.text_length += len(data)

    def end(self, name: str) -> None:
        """Keep what the element holds; positions are those of appendix C's schema:
        feedback / record / row | identifiers | auth_results / … (depth = len(path))."""
        path = self.path
        depth = len(path)
        section = path[1] if depth > 1 else ""
        if section == "record":
            if depth == 2:
                self.records.append(self._finish_record())
            else:
                group = path[2]
                if depth == 4 and group in ("row", "identifiers"):
                    self.record[path[3]] = self._text()
                elif depth == 5 and group == "row" and path[3] == "policy_evaluated":
                    self.record["evaluated_" + path[4]] = self._text()
                elif depth == 5 and group == "auth_results":
                    self.auth[path[4]] = self._text()
                elif depth == 4 and group == "auth_results":
                    auth = self.auth
                    result = (auth.get("result", "").lower()[:20], auth.get("domain", "")[:253])
                    target = self.dkim_results if path[3] == "dkim" else self.spf_results
                    if len(target) < 16:
                        target.append(result)
        elif section == "report_metadata" and depth in (3, 4):
            key = "/".join(path[2:])
            if key in ("org_name", "report_id", "email", "date_range/begin", "date_range/end"):
                self.meta[key] = self._text()
        elif section == "policy_published" and depth == 3:
            self.policy[path[2]] = self._text()
        self.text = []
        self.text_length = 0
        path.pop()

    def _text(self) -> str:
        return "".join(self.text).strip()[:MAX_TEXT]

    def _finish_record(self) -> DmarcRecord:
        record = self.record
        source_ip = _ip(record.get("source_ip", ""))
        if not source_ip:
            raise ReportRefused("A record of the report has no source_ip.")
        header_from = record.get("header_from", "").lower()[:253]
        dkim_result, dkim_domain = _best(self.dkim_results, header_from)
        spf_result, spf_domain = _best(self.spf_results, header_from)
        return DmarcRecord(
            source_ip=source_ip,
            count=_count(record.get("count", ""), "record count"),
            disposition=_word(record.get("evaluated_disposition", "none")),
            dkim_aligned=_word(record.get("evaluated_dkim", "fail")),
            spf_aligned=_word(record.get("evaluated_spf", "fail")),
            header_from=header_from,
            envelope_from=record.get("envelope_from", "").lower()[:253],
            dkim_result=dkim_result,
            dkim_domain=dkim_domain,
            spf_result=spf_result,
            spf_domain=spf_domain,
        )


def _best(results: list[tuple[str, str]], header_from: str) -> tuple[str, str]:
    """The result worth showing: a pass, preferably for the From domain; else the first."""
    if not results:
        return "none", ""
    ranked = sorted(results, key=lambda r: (r[0] != "pass", r[1].lower() != header_from))
    result, domain = ranked[0]
    return _word(result or "none"), domain.lower()


def parse_dmarc(chunks: Iterator[bytes]) -> AggregateReport:
    """A DMARC aggregate report from its XML, fed to expat chunk by chunk."""
    builder = _DmarcBuilder()
    parser = expat.ParserCreate(namespace_separator=" ")
    _refuse_dtd(parser)
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.characters
    parser.buffer_text = True
    equals_signs = 0
    try:
        for chunk in chunks:
            equals_signs += chunk.count(b"=")
            if equals_signs > MAX_EQUALS_SIGNS:
                raise ReportRefused(
                    f"The report holds more than {MAX_EQUALS_SIGNS} attributes or '=' signs."
                )
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except (expat.ExpatError, LookupError, ValueError) as error:
        # LookupError: an encoding declaration naming no codec expat or Python knows.
        raise ReportRefused(f"The report is not well-formed XML ({error}).") from None
    except RecursionError:
        raise ReportRefused("The report's XML is nested too deeply.") from None
    meta = builder.meta
    domain = builder.policy.get("domain", "").lower().rstrip(".")
    org_name = meta.get("org_name", "")[:255]
    report_id = meta.get("report_id", "")[:255]
    if not builder.root_seen or not org_name or not report_id or not domain:
        raise ReportRefused(
            "The report lacks its org_name, report_id or policy_published domain (RFC 7489 "
            "appendix C)."
        )
    policy = {
        key: builder.policy[key][:100]
        for key in ("adkim", "aspf", "p", "sp", "pct", "fo", "np")
        if builder.policy.get(key)
    }
    return AggregateReport(
        kind=ReportKind.DMARC,
        org_name=org_name,
        report_id=report_id,
        begin=_epoch(meta.get("date_range/begin", "")),
        end=_epoch(meta.get("date_range/end", "")),
        domain=domain[:253],
        policy=policy,
        records=tuple(builder.records),
    )


def _refuse_dtd(parser: Any) -> None:
    """No report needs a DTD: refusing the DOCTYPE itself means no entity is ever declared, so
    neither expansion (billion laughs) nor external entities (XXE) can happen."""

    def refuse(*_: object) -> None:
        raise ReportRefused("The report's XML has a DOCTYPE; reports never need one.")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)


# --- SMTP TLS reports (JSON) -------------------------------------------------------------------

_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[{]')


def parse_tls(data: bytes) -> AggregateReport:
    """An RFC 8460 §4 report. The JSON is held in memory whole, so it is counted first: a small
    document of many empty objects would otherwise inflate to far more memory than its size."""
    if len(data) > MAX_TLS_JSON:
        raise _too_large(MAX_TLS_JSON)
    containers = sum(1 for token in _JSON_TOKENS.finditer(data) if token.group() in (b"[", b"{"))
    if containers > MAX_JSON_CONTAINERS:
        raise ReportRefused(f"The report holds more than {MAX_JSON_CONTAINERS} JSON objects.")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ReportRefused(f"The report is not valid JSON ({error}).") from None
    if not isinstance(document, dict):
        raise ReportRefused("The report is not a JSON object (RFC 8460 §4.4).")
    org_name = _string(document.get("organization-name"))[:255]
    report_id = _string(document.get("report-id"))[:255]
    dates = document.get("date-range")
    dates = dates if isinstance(dates, dict) else {}
    raw_policies = document.get("policies")
    if not org_name or not report_id or not isinstance(raw_policies, list) or not raw_policies:
        raise ReportRefused(
            "The report lacks its organization-name, report-id or policies (RFC 8460 §4.4)."
        )
    if len(raw_policies) > MAX_TLS_POLICIES:
        raise ReportRefused(f"The report holds more than {MAX_TLS_POLICIES} policies.")
    policies: list[TlsPolicy] = []
    details = 0
    for entry in raw_policies:
        policy = _tls_policy(entry)
        details += len(policy.failures)
        if details > MAX_FAILURE_DETAILS:
            raise ReportRefused(f"The report holds more than {MAX_FAILURE_DETAILS} failures.")
        policies.append(policy)
    domains = {policy.policy_domain for policy in policies}
    if len(domains) != 1 or "" in domains:
        raise ReportRefused("The report's policies must all be about one policy-domain.")
    return AggregateReport(
        kind=ReportKind.TLS,
        org_name=org_name,
        report_id=report_id,
        begin=_iso(dates.get("start-datetime")),
        end=_iso(dates.get("end-datetime")),
        domain=domains.pop(),
        policies=tuple(policies),
    )


def _tls_policy(entry: object) -> TlsPolicy:
    if not isinstance(entry, dict):
        raise ReportRefused("A policy of the report is not a JSON object.")
    policy = entry.get("policy")
    summary = entry.get("summary")
    if not isinstance(policy, dict) or not isinstance(summary, dict):
        raise ReportRefused("A policy of the report lacks its policy or summary (RFC 8460 §4.4).")
    hosts = policy.get("mx-host", [])
    # RFC 8460 §4.4 shows mx-host as a string, its erratum 6241 as a list: take both.
    host_list = hosts if isinstance(hosts, list) else [hosts]
    raw_failures = entry.get("failure-details", [])
    if not isinstance(raw_failures, list):
        raise ReportRefused("A policy's failure-details is not a list.")
    failures = []
    for failure in raw_failures[: MAX_FAILURE_DETAILS + 1]:
        if not isinstance(failure, dict):
            raise ReportRefused("A failure detail of the report is not a JSON object.")
        failures.append(
            TlsFailure(
                result_type=_word(_string(failure.get("result-type")) or "unknown"),
                sessions=_count(failure.get("failed-session-count", 0), "failed-session-count"),
                sending_mta_ip=_ip(_string(failure.get("sending-mta-ip"))),
                receiving_mx_hostname=_string(failure.get("receiving-mx-hostname"))[:253],
                receiving_ip=_ip(_string(failure.get("receiving-ip"))),
                failure_reason_code=_string(failure.get("failure-reason-code"))[:255],
            )
        )
    return TlsPolicy(
        policy_type=_word(_string(policy.get("policy-type")) or "unknown"),
        policy_domain=_string(policy.get("policy-domain")).lower().rstrip(".")[:253],
        mx_hosts=tuple(_string(host)[:253] for host in host_list[:20] if _string(host)),
        successful_sessions=_count(
            summary.get("total-successful-session-count", 0), "total-successful-session-count"
        ),
        failed_sessions=_count(
            summary.get("total-failure-session-count", 0), "total-failure-session-count"
        ),
        failures=tuple(failures),
    )


# --- values ------------------------------------------------------------------------------------

MAX_COUNT = 10**15  # fits a BIGINT with room for sums


def _count(value: object, what: str) -> int:
    try:
        number = int(value) if isinstance(value, int | str) and not isinstance(value, bool) else -1
    except ValueError:
        number = -1
    if not 0 <= number <= MAX_COUNT:
        raise ReportRefused(f"The report's {what} {str(value)[:40]!r} is not a count.")
    return number


def _word(text: str) -> str:
    """A result keyword (pass, fail, quarantine, starttls-not-supported…), lowercased and short."""
    return text.strip().lower()[:40]


def _string(value: object) -> str:
    return value.strip()[:MAX_TEXT] if isinstance(value, str) else ""


def _ip(text: str) -> str:
    """The address in its canonical form; anything else is refused."""
    if not text:
        return ""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ReportRefused(f"{text[:60]!r} in the report is not an IP address.") from None


def _epoch(text: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(text), UTC) if text else None
    except (ValueError, OverflowError, OSError):
        raise ReportRefused(f"The report's date {text[:40]!r} is not a UNIX time.") from None


def _iso(value: object) -> datetime | None:
    text = _string(value)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)  # 3.11+: "Z" included
    except ValueError:
        raise ReportRefused(f"The report's date {text[:40]!r} is not an RFC 3339 time.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- what is stored and shown -----------------------------------------------------------------


class ReportStatus(StrEnum):
    PARSED = "parsed"
    FAILED = "failed"  # kept with the reason, so the domain's owner sees who sends broken ones


@dataclass(frozen=True)
class StoredReport:
    kind: ReportKind
    status: ReportStatus
    org_name: str
    report_id: str | None
    begin: datetime | None
    end: datetime | None
    policy: dict[str, str]
    messages: int  # DMARC: messages counted; TLS: sessions counted
    reason: str | None
    sender: str
    received_at: datetime


@dataclass(frozen=True)
class SourceSummary:
    """Everything the reports say about mail from one IP address claiming to be the domain."""

    source_ip: str
    messages: int
    dmarc_pass: int
    spf_pass: int
    spf_aligned: int
    dkim_pass: int
    dkim_aligned: int
    quarantined: int
    rejected: int
    reporters: int


@dataclass(frozen=True)
class TlsFailureSummary:
    result_type: str
    receiving_mx_hostname: str
    sessions: int


@dataclass(frozen=True)
class ReportOverview:
    """A domain's deliverability as its reports tell it: totals, sources by volume, TLS."""

    domain: str
    reports: int
    failed_reports: int
    totals: SourceSummary  # source_ip "": every source together
    sources: tuple[SourceSummary, ...]
    tls_successful: int
    tls_failed: int
    tls_failures: tuple[TlsFailureSummary, ...]
    recent: tuple[StoredReport, ...]

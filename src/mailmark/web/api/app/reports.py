"""/api/domains/{name}/reports: what the DMARC aggregate and TLS reports received at the domain's
report addresses say. Owners and admins only; the rules are core's (ReportService)."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, get
from litestar.params import FromPath

from mailmark.core.access import Viewer
from mailmark.core.aggregate_reports import ReportOverview, SourceSummary
from mailmark.core.reports import ReportService
from mailmark.web.api.v1.auth import Injected


class SourceOut(msgspec.Struct, rename="camel"):
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


class TlsFailureOut(msgspec.Struct, rename="camel"):
    result_type: str
    receiving_mx: str
    sessions: int


class TlsOut(msgspec.Struct, rename="camel"):
    successful_sessions: int
    failed_sessions: int
    failures: list[TlsFailureOut]


class ReportOut(msgspec.Struct, rename="camel"):
    kind: str
    status: str
    organization: str
    report_id: str | None
    begin: datetime | None
    end: datetime | None
    policy: dict[str, str]
    messages: int
    reason: str | None
    received_at: datetime


class ReportOverviewOut(msgspec.Struct, rename="camel"):
    domain: str
    reports: int
    failed_reports: int
    totals: SourceOut
    sources: list[SourceOut]
    tls: TlsOut
    recent: list[ReportOut]


def source_out(source: SourceSummary) -> SourceOut:
    return SourceOut(
        source.source_ip,
        source.messages,
        source.dmarc_pass,
        source.spf_pass,
        source.spf_aligned,
        source.dkim_pass,
        source.dkim_aligned,
        source.quarantined,
        source.rejected,
        source.reporters,
    )


def overview_out(overview: ReportOverview) -> ReportOverviewOut:
    return ReportOverviewOut(
        domain=overview.domain,
        reports=overview.reports,
        failed_reports=overview.failed_reports,
        totals=source_out(overview.totals),
        sources=[source_out(source) for source in overview.sources],
        tls=TlsOut(
            overview.tls_successful,
            overview.tls_failed,
            [
                TlsFailureOut(f.result_type, f.receiving_mx_hostname, f.sessions)
                for f in overview.tls_failures
            ],
        ),
        recent=[
            ReportOut(
                kind=r.kind,
                status=r.status,
                organization=r.org_name,
                report_id=r.report_id,
                begin=r.begin,
                end=r.end,
                policy=r.policy,
                messages=r.messages,
                reason=r.reason,
                received_at=r.received_at,
            )
            for r in overview.recent
        ],
    )


class ReportController(Controller):
    path = "/domains/{name:str}/reports"
    tags = ("Domains",)

    @get(operation_id="appDomainReports", summary="What the domain's DMARC and TLS reports say")
    async def overview(
        self, viewer: Injected[Viewer], reports: Injected[ReportService], name: FromPath[str]
    ) -> ReportOverviewOut:
        """Which sources send as the domain (by IP, biggest first, with SPF, DKIM and alignment
        pass counts), TLS sessions and failures by type and MX, and the latest reports (those
        that could not be read with the reason)."""
        return overview_out(await reports.overview_for(viewer, name))

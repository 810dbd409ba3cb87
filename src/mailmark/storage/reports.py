"""DMARC aggregate and TLS reports: stored once per reporter and report id, summed per domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailmark.core.aggregate_reports import (
    AggregateReport,
    ReportKind,
    ReportOverview,
    ReportStatus,
    SourceSummary,
    StoredReport,
    TlsFailureSummary,
)
from mailmark.storage.sql import Repository
from mailmark.storage.tables import aggregate_reports, dmarc_records, tls_policies
from mailmark.storage.tables import tls_failures as tls_failure_rows

# Rows per INSERT: far under SQLite's bound-parameter limit with 12 columns.
ROWS_PER_STATEMENT = 500


def _passes(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((column, dmarc_records.c.count), else_=0)), 0).cast(
        sa.BigInteger
    )


_SOURCE_COLUMNS = (
    sa.func.coalesce(sa.func.sum(dmarc_records.c.count), 0).cast(sa.BigInteger).label("messages"),
    _passes(
        sa.or_(dmarc_records.c.dkim_aligned == "pass", dmarc_records.c.spf_aligned == "pass")
    ).label("dmarc_pass"),
    _passes(dmarc_records.c.spf_result == "pass").label("spf_pass"),
    _passes(dmarc_records.c.spf_aligned == "pass").label("spf_aligned"),
    _passes(dmarc_records.c.dkim_result == "pass").label("dkim_pass"),
    _passes(dmarc_records.c.dkim_aligned == "pass").label("dkim_aligned"),
    _passes(dmarc_records.c.disposition == "quarantine").label("quarantined"),
    _passes(dmarc_records.c.disposition == "reject").label("rejected"),
    sa.func.count(sa.distinct(aggregate_reports.c.org_name)).label("reporters"),
)


def _summary(source_ip: str, row: Any) -> SourceSummary:
    return SourceSummary(
        source_ip,
        int(row.messages),
        int(row.dmarc_pass),
        int(row.spf_pass),
        int(row.spf_aligned),
        int(row.dkim_pass),
        int(row.dkim_aligned),
        int(row.quarantined),
        int(row.rejected),
        int(row.reporters),
    )


class SqlReports(Repository):
    async def add(
        self, domain_id: int, report: AggregateReport, *, received_at: datetime, sender: str
    ) -> bool:
        messages = sum(record.count for record in report.records) + sum(
            policy.successful_sessions + policy.failed_sessions for policy in report.policies
        )
        inserted = await self._conn.execute(
            self._dialect.insert_or_ignore(aggregate_reports)
            .values(
                domain_id=domain_id,
                kind=report.kind,
                status=ReportStatus.PARSED,
                org_name=report.org_name,
                external_id=report.report_id,
                begin_at=report.begin,
                end_at=report.end,
                policy=report.policy,
                messages=messages,
                reason=None,
                sender=sender,
                received_at=received_at,
            )
            .returning(aggregate_reports.c.id)
        )
        report_pk = inserted.scalar_one_or_none()
        if report_pk is None:
            return False  # the same reporter's report of that id is stored already
        records = [
            {
                "report_id": report_pk,
                "source_ip": r.source_ip,
                "count": r.count,
                "disposition": r.disposition,
                "dkim_aligned": r.dkim_aligned,
                "spf_aligned": r.spf_aligned,
                "header_from": r.header_from,
                "envelope_from": r.envelope_from,
                "dkim_result": r.dkim_result,
                "dkim_domain": r.dkim_domain,
                "spf_result": r.spf_result,
                "spf_domain": r.spf_domain,
            }
            for r in report.records
        ]
        await self._insert_rows(dmarc_records, records)
        await self._insert_rows(
            tls_policies,
            [
                {
                    "report_id": report_pk,
                    "policy_type": p.policy_type,
                    "policy_domain": p.policy_domain,
                    "mx_hosts": list(p.mx_hosts),
                    "successful_sessions": p.successful_sessions,
                    "failed_sessions": p.failed_sessions,
                }
                for p in report.policies
            ],
        )
        await self._insert_rows(
            tls_failure_rows,
            [
                {
                    "report_id": report_pk,
                    "policy_type": p.policy_type,
                    "result_type": f.result_type,
                    "sessions": f.sessions,
                    "sending_mta_ip": f.sending_mta_ip,
                    "receiving_mx_hostname": f.receiving_mx_hostname,
                    "receiving_ip": f.receiving_ip,
                    "failure_reason_code": f.failure_reason_code,
                }
                for p in report.policies
                for f in p.failures
            ],
        )
        return True

    async def _insert_rows(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            await self._conn.execute(table.insert(), rows[start : start + ROWS_PER_STATEMENT])

    async def add_failed(
        self, domain_id: int, kind: ReportKind, reason: str, *, received_at: datetime, sender: str
    ) -> None:
        await self._conn.execute(
            aggregate_reports.insert().values(
                domain_id=domain_id,
                kind=kind,
                status=ReportStatus.FAILED,
                org_name="",
                external_id=None,
                policy={},
                messages=0,
                reason=reason,
                sender=sender,
                received_at=received_at,
            )
        )

    async def overview(
        self, domain_id: int, domain: str, *, sources: int, reports: int, tls_failures: int
    ) -> ReportOverview:
        parsed = sa.and_(
            aggregate_reports.c.domain_id == domain_id,
            aggregate_reports.c.status == ReportStatus.PARSED,
        )
        counts = (
            await self._conn.execute(
                sa.select(
                    sa.func.count().label("reports"),
                    sa.func.coalesce(
                        sa.func.sum(
                            sa.case((aggregate_reports.c.status == ReportStatus.FAILED, 1), else_=0)
                        ),
                        0,
                    ).label("failed"),
                ).where(aggregate_reports.c.domain_id == domain_id)
            )
        ).one()
        records = dmarc_records.join(aggregate_reports)
        totals = (
            await self._conn.execute(sa.select(*_SOURCE_COLUMNS).select_from(records).where(parsed))
        ).one()
        by_source = await self._conn.execute(
            sa.select(dmarc_records.c.source_ip, *_SOURCE_COLUMNS)
            .select_from(records)
            .where(parsed)
            .group_by(dmarc_records.c.source_ip)
            .order_by(sa.desc("messages"), dmarc_records.c.source_ip)
            .limit(sources)
        )
        tls = (
            await self._conn.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(tls_policies.c.successful_sessions), 0),
                    sa.func.coalesce(sa.func.sum(tls_policies.c.failed_sessions), 0),
                )
                .select_from(tls_policies.join(aggregate_reports))
                .where(parsed)
            )
        ).one()
        sessions = sa.func.sum(tls_failure_rows.c.sessions).cast(sa.BigInteger).label("sessions")
        failures = await self._conn.execute(
            sa.select(
                tls_failure_rows.c.result_type, tls_failure_rows.c.receiving_mx_hostname, sessions
            )
            .select_from(tls_failure_rows.join(aggregate_reports))
            .where(parsed)
            .group_by(tls_failure_rows.c.result_type, tls_failure_rows.c.receiving_mx_hostname)
            .order_by(sa.desc("sessions"), tls_failure_rows.c.result_type)
            .limit(tls_failures)
        )
        recent = await self._conn.execute(
            aggregate_reports.select()
            .where(aggregate_reports.c.domain_id == domain_id)
            .order_by(aggregate_reports.c.received_at.desc(), aggregate_reports.c.id.desc())
            .limit(reports)
        )
        return ReportOverview(
            domain=domain,
            reports=int(counts.reports),
            failed_reports=int(counts.failed),
            totals=_summary("", totals),
            sources=tuple(_summary(row.source_ip, row) for row in by_source),
            tls_successful=int(tls[0]),
            tls_failed=int(tls[1]),
            tls_failures=tuple(
                TlsFailureSummary(row.result_type, row.receiving_mx_hostname, int(row.sessions))
                for row in failures
            ),
            recent=tuple(
                StoredReport(
                    kind=row.kind,
                    status=row.status,
                    org_name=row.org_name,
                    report_id=row.external_id,
                    begin=row.begin_at,
                    end=row.end_at,
                    policy=dict(row.policy),
                    messages=int(row.messages),
                    reason=row.reason,
                    sender=row.sender,
                    received_at=row.received_at,
                )
                for row in recent
            ),
        )

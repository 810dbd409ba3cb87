"""DMARC aggregate and TLS reports received at a domain's report addresses, with their records,
policies and failures.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 01:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def _report_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["report_id"],
        ["aggregate_reports.id"],
        name=op.f(f"fk_{table}_report_id_aggregate_reports"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "aggregate_reports",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("domain_id", Id, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("org_name", sa.String(length=255), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("begin_at", When, nullable=True),
        sa.Column("end_at", When, nullable=True),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("received_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_aggregate_reports_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aggregate_reports")),
        sa.UniqueConstraint(
            "domain_id",
            "kind",
            "org_name",
            "external_id",
            name=op.f("uq_aggregate_reports_domain_id_kind_org_name_external_id"),
        ),
    )
    with op.batch_alter_table("aggregate_reports") as batch:
        batch.create_index(
            "ix_aggregate_reports_domain_id_received_at", ["domain_id", "received_at"]
        )

    op.create_table(
        "dmarc_records",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("report_id", Id, nullable=False),
        sa.Column("source_ip", sa.String(length=45), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("disposition", sa.String(length=40), nullable=False),
        sa.Column("dkim_aligned", sa.String(length=40), nullable=False),
        sa.Column("spf_aligned", sa.String(length=40), nullable=False),
        sa.Column("header_from", sa.String(length=253), nullable=False),
        sa.Column("envelope_from", sa.String(length=253), nullable=False),
        sa.Column("dkim_result", sa.String(length=40), nullable=False),
        sa.Column("dkim_domain", sa.String(length=253), nullable=False),
        sa.Column("spf_result", sa.String(length=40), nullable=False),
        sa.Column("spf_domain", sa.String(length=253), nullable=False),
        _report_fk("dmarc_records"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dmarc_records")),
    )
    with op.batch_alter_table("dmarc_records") as batch:
        batch.create_index("ix_dmarc_records_report_id", ["report_id"])

    op.create_table(
        "tls_policies",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("report_id", Id, nullable=False),
        sa.Column("policy_type", sa.String(length=40), nullable=False),
        sa.Column("policy_domain", sa.String(length=253), nullable=False),
        sa.Column("mx_hosts", sa.JSON(), nullable=False),
        sa.Column("successful_sessions", sa.BigInteger(), nullable=False),
        sa.Column("failed_sessions", sa.BigInteger(), nullable=False),
        _report_fk("tls_policies"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tls_policies")),
    )
    with op.batch_alter_table("tls_policies") as batch:
        batch.create_index("ix_tls_policies_report_id", ["report_id"])

    op.create_table(
        "tls_failures",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("report_id", Id, nullable=False),
        sa.Column("policy_type", sa.String(length=40), nullable=False),
        sa.Column("result_type", sa.String(length=40), nullable=False),
        sa.Column("sessions", sa.BigInteger(), nullable=False),
        sa.Column("sending_mta_ip", sa.String(length=45), nullable=False),
        sa.Column("receiving_mx_hostname", sa.String(length=253), nullable=False),
        sa.Column("receiving_ip", sa.String(length=45), nullable=False),
        sa.Column("failure_reason_code", sa.String(length=255), nullable=False),
        _report_fk("tls_failures"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tls_failures")),
    )
    with op.batch_alter_table("tls_failures") as batch:
        batch.create_index("ix_tls_failures_report_id", ["report_id"])


def downgrade() -> None:
    op.drop_table("tls_failures")
    op.drop_table("tls_policies")
    op.drop_table("dmarc_records")
    op.drop_table("aggregate_reports")

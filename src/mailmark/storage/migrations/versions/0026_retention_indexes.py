"""Indexes for retention: events, idempotency keys and finished webhook deliveries are pruned
oldest first, a batch at a time, without scanning their tables.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 07:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_events_created_at", "events", "created_at"),
    ("ix_idempotency_keys_created_at", "idempotency_keys", "created_at"),
    ("ix_webhook_deliveries_updated_at", "webhook_deliveries", "updated_at"),
)


def upgrade() -> None:
    for name, table, column in _INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)

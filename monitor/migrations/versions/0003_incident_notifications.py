"""The notifiers' outbox: every incident change, and how far each notifier got.

``incident_changes`` is written in the same transaction as each lifecycle change (opened,
severity raised, contained, resolved); ``notifier_cursors`` holds, per notifier and
incident, the last change delivered, retry state and what the notifier keeps (the Slack
message's channel and ts). See :mod:`agentwatch.notify`.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_changes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("change", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(op.f("ix_incident_changes_incident_id"), "incident_changes", ["incident_id"], unique=False)
    op.create_table(
        "notifier_cursors",
        sa.Column("notifier", sa.String(length=128), nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("delivered_seq", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=True),
        sa.Column("claim_ms", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("notifier", "incident_id"),
    )


def downgrade() -> None:
    op.drop_table("notifier_cursors")
    op.drop_index(op.f("ix_incident_changes_incident_id"), table_name="incident_changes")
    op.drop_table("incident_changes")

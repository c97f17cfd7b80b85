"""Baseline: the schema of agentwatch before Alembic (``schema_version`` 2).

Idempotent over any store written before Alembic: it creates only the tables a store lacks
(``create_all`` used to add new tables without a version bump) and the one column schema
version 1 lacked (``actions.owner``), then records ``schema_version`` 2 so an older
agentwatch that reads that table still recognises the store.

Revision ID: 0001
Revises:
Create Date: 2026-11-30 23:30:42.707978
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    offline = context.is_offline_mode()  # `agentwatch store upgrade --sql`: SQL for an empty database
    inspector = None if offline else sa.inspect(op.get_bind())
    existing: set[str] = set() if inspector is None else set(inspector.get_table_names())
    if "actions" not in existing:
        op.create_table(
            "actions",
            sa.Column("action_key", sa.String(length=200), nullable=False),
            sa.Column("incident_id", sa.String(length=64), nullable=False),
            sa.Column("playbook", sa.String(length=128), nullable=False),
            sa.Column("step", sa.String(length=128), nullable=False),
            sa.Column("position", sa.Integer(), nullable=False),
            sa.Column("action", sa.String(length=128), nullable=False),
            sa.Column("mode", sa.String(length=16), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("params", sa.JSON(), nullable=False),
            sa.Column("result", sa.JSON(), nullable=False),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("actor", sa.String(length=300), nullable=False),
            sa.Column("created_ms", sa.BigInteger(), nullable=False),
            sa.Column("started_ms", sa.BigInteger(), nullable=True),
            sa.Column("finished_ms", sa.BigInteger(), nullable=True),
            sa.Column("next_attempt_ms", sa.BigInteger(), nullable=True),
            sa.Column("owner", sa.String(length=64), nullable=True),
            sa.PrimaryKeyConstraint("action_key"),
        )
        with op.batch_alter_table("actions", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_actions_incident_id"), ["incident_id"], unique=False)
            batch_op.create_index("ix_actions_status", ["status"], unique=False)

    if "alert_log_positions" not in existing:
        op.create_table(
            "alert_log_positions",
            sa.Column("topic", sa.String(length=255), nullable=False),
            sa.Column("partition", sa.Integer(), nullable=False),
            sa.Column("next_offset", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("topic", "partition"),
        )

    if "approval_votes" not in existing:
        op.create_table(
            "approval_votes",
            sa.Column("approval_id", sa.String(length=64), nullable=False),
            sa.Column("voter", sa.String(length=320), nullable=False),
            sa.Column("user_id", sa.String(length=300), nullable=False),
            sa.Column("channel", sa.String(length=16), nullable=False),
            sa.Column("decision", sa.String(length=16), nullable=False),
            sa.Column("ts_ms", sa.BigInteger(), nullable=False),
            sa.Column("elapsed_ms", sa.BigInteger(), nullable=False),
            sa.Column("announced", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("approval_id", "voter"),
        )

    if "approvals" not in existing:
        op.create_table(
            "approvals",
            sa.Column("approval_id", sa.String(length=64), nullable=False),
            sa.Column("incident_id", sa.String(length=64), nullable=False),
            sa.Column("step_key", sa.String(length=200), nullable=False),
            sa.Column("action", sa.String(length=128), nullable=False),
            sa.Column("action_params", sa.JSON(), nullable=False),
            sa.Column("subject", sa.JSON(), nullable=False),
            sa.Column("approvers", sa.JSON(), nullable=False),
            sa.Column("escalate_to", sa.JSON(), nullable=False),
            sa.Column("escalation_level", sa.Integer(), nullable=False),
            sa.Column("quorum", sa.Integer(), nullable=False),
            sa.Column("timeout_ms", sa.BigInteger(), nullable=False),
            sa.Column("on_timeout", sa.String(length=16), nullable=False),
            sa.Column("reading_time_ms", sa.BigInteger(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("note", sa.Text(), nullable=True),
            sa.Column("requested_ms", sa.BigInteger(), nullable=False),
            sa.Column("expires_ms", sa.BigInteger(), nullable=False),
            sa.Column("touched_ms", sa.BigInteger(), nullable=False),
            sa.Column("decided_ms", sa.BigInteger(), nullable=True),
            sa.Column("received_ms", sa.BigInteger(), nullable=True),
            sa.Column("started_ms", sa.BigInteger(), nullable=True),
            sa.Column("executed_ms", sa.BigInteger(), nullable=True),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("next_attempt_ms", sa.BigInteger(), nullable=True),
            sa.Column("result", sa.JSON(), nullable=False),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("slack_channel", sa.String(length=64), nullable=True),
            sa.Column("slack_ts", sa.String(length=32), nullable=True),
            sa.Column("slack_posted_ms", sa.BigInteger(), nullable=True),
            sa.Column("slack_rev", sa.Integer(), nullable=False),
            sa.Column("slack_synced_rev", sa.Integer(), nullable=False),
            sa.Column("slack_announced", sa.String(length=32), nullable=False),
            sa.Column("slack_attempts", sa.Integer(), nullable=False),
            sa.Column("slack_next_ms", sa.BigInteger(), nullable=True),
            sa.Column("slack_claim_ms", sa.BigInteger(), nullable=True),
            sa.Column("slack_error", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("approval_id"),
            sa.UniqueConstraint("step_key"),
        )
        with op.batch_alter_table("approvals", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_approvals_incident_id"), ["incident_id"], unique=False)
            batch_op.create_index("ix_approvals_status", ["status"], unique=False)

    if "audit_log" not in existing:
        op.create_table(
            "audit_log",
            sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("ts_ms", sa.BigInteger(), nullable=False),
            sa.Column("actor", sa.String(length=300), nullable=False),
            sa.Column("action", sa.String(length=64), nullable=False),
            sa.Column("subject", sa.String(length=300), nullable=False),
            sa.Column("data", sa.JSON(), nullable=False),
            sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
            sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
            sa.PrimaryKeyConstraint("seq"),
        )

    if "incident_alerts" not in existing:
        op.create_table(
            "incident_alerts",
            sa.Column("alert_id", sa.String(length=64), nullable=False),
            sa.Column("revision", sa.Integer(), nullable=False),
            sa.Column("incident_id", sa.String(length=64), nullable=False),
            sa.Column("detector", sa.String(length=128), nullable=False),
            sa.Column("severity", sa.String(length=16), nullable=False),
            sa.Column("score", sa.Float(), nullable=False),
            sa.Column("event_id", sa.String(length=256), nullable=False),
            sa.Column("ts_ms", sa.BigInteger(), nullable=False),
            sa.Column("body", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("alert_id", "revision"),
        )
        with op.batch_alter_table("incident_alerts", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_incident_alerts_incident_id"), ["incident_id"], unique=False)

    if "incident_events" not in existing:
        op.create_table(
            "incident_events",
            sa.Column("incident_id", sa.String(length=64), nullable=False),
            sa.Column("event_id", sa.String(length=256), nullable=False),
            sa.Column("ts_ms", sa.BigInteger(), nullable=False),
            sa.Column("body", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("incident_id", "event_id"),
        )

    if "incidents" not in existing:
        op.create_table(
            "incidents",
            sa.Column("incident_id", sa.String(length=64), nullable=False),
            sa.Column("group_key", sa.String(length=600), nullable=False),
            sa.Column("session_id", sa.String(length=256), nullable=False),
            sa.Column("agent_id", sa.String(length=256), nullable=False),
            sa.Column("principal", sa.String(length=256), nullable=True),
            sa.Column("severity", sa.String(length=16), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("title", sa.Text(), nullable=False),
            sa.Column("opened_ms", sa.BigInteger(), nullable=False),
            sa.Column("updated_ms", sa.BigInteger(), nullable=False),
            sa.Column("contained_ms", sa.BigInteger(), nullable=True),
            sa.Column("resolved_ms", sa.BigInteger(), nullable=True),
            sa.Column("first_malicious_ts_ms", sa.BigInteger(), nullable=True),
            sa.Column("first_alert_ts_ms", sa.BigInteger(), nullable=True),
            sa.Column("detectors", sa.JSON(), nullable=False),
            sa.Column("categories", sa.JSON(), nullable=False),
            sa.Column("mode", sa.String(length=16), nullable=False),
            sa.PrimaryKeyConstraint("incident_id"),
        )
        with op.batch_alter_table("incidents", schema=None) as batch_op:
            batch_op.create_index("ix_incidents_group_status", ["group_key", "status"], unique=False)
            batch_op.create_index("ix_incidents_status_severity", ["status", "severity"], unique=False)

    if "learned_state" not in existing:
        op.create_table(
            "learned_state",
            sa.Column("group_id", sa.String(length=255), nullable=False),
            sa.Column("detector", sa.String(length=128), nullable=False),
            sa.Column("key", sa.String(length=300), nullable=False),
            sa.Column("state", sa.LargeBinary(), nullable=False),
            sa.Column("seq", sa.BigInteger(), nullable=False),
            sa.Column("writer", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("group_id", "detector", "key"),
        )
        with op.batch_alter_table("learned_state", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_learned_state_seq"), ["seq"], unique=False)

    if "learned_state_clock" not in existing:
        op.create_table(
            "learned_state_clock",
            sa.Column("group_id", sa.String(length=255), nullable=False),
            sa.Column("seq", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("group_id"),
        )

    if "partition_positions" not in existing:
        op.create_table(
            "partition_positions",
            sa.Column("group_id", sa.String(length=255), nullable=False),
            sa.Column("topic", sa.String(length=255), nullable=False),
            sa.Column("partition", sa.Integer(), nullable=False),
            sa.Column("next_offset", sa.BigInteger(), nullable=True),
            sa.Column("epoch", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("group_id", "topic", "partition"),
        )

    if "published_alerts" not in existing:
        op.create_table(
            "published_alerts",
            sa.Column("alert_id", sa.String(length=64), nullable=False),
            sa.Column("revision", sa.Integer(), nullable=False),
            sa.Column("severity_rank", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("alert_id"),
        )

    if "schema_version" not in existing:
        op.create_table(
            "schema_version", sa.Column("version", sa.Integer(), nullable=False), sa.PrimaryKeyConstraint("version")
        )

    if "session_checkpoints" not in existing:
        op.create_table(
            "session_checkpoints",
            sa.Column("group_id", sa.String(length=255), nullable=False),
            sa.Column("partition", sa.Integer(), nullable=False),
            sa.Column("session_id", sa.String(length=256), nullable=False),
            sa.Column("state", sa.LargeBinary(), nullable=False),
            sa.PrimaryKeyConstraint("group_id", "partition", "session_id"),
        )

    if "session_status" not in existing:
        op.create_table(
            "session_status",
            sa.Column("session_id", sa.String(length=256), nullable=False),
            sa.Column("agent_id", sa.String(length=256), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("incident_id", sa.String(length=64), nullable=False),
            sa.Column("command_id", sa.String(length=64), nullable=False),
            sa.Column("updated_ms", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("session_id"),
        )

    if "slack_requests_seen" not in existing:
        op.create_table(
            "slack_requests_seen",
            sa.Column("request_key", sa.String(length=100), nullable=False),
            sa.Column("seen_ms", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("request_key"),
        )
        with op.batch_alter_table("slack_requests_seen", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_slack_requests_seen_seen_ms"), ["seen_ms"], unique=False)

    if "timeline" not in existing:
        op.create_table(
            "timeline",
            sa.Column("entry_id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("incident_id", sa.String(length=64), nullable=False),
            sa.Column("ts_ms", sa.BigInteger(), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("actor", sa.String(length=300), nullable=False),
            sa.Column("text", sa.Text(), nullable=False),
            sa.Column("data", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("entry_id"),
        )
        with op.batch_alter_table("timeline", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_timeline_incident_id"), ["incident_id"], unique=False)
    if inspector is not None and "actions" in existing:
        if "owner" not in {c["name"] for c in inspector.get_columns("actions")}:
            # schema version 1: the monitor incarnation running a step (agentwatch.respond.liveness)
            with op.batch_alter_table("actions") as batch_op:
                batch_op.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
    version = sa.table("schema_version", sa.column("version", sa.Integer))
    op.execute(version.delete())
    op.execute(version.insert().values(version=2))


def downgrade() -> None:
    with op.batch_alter_table("timeline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timeline_incident_id"))

    op.drop_table("timeline")
    with op.batch_alter_table("slack_requests_seen", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slack_requests_seen_seen_ms"))

    op.drop_table("slack_requests_seen")
    op.drop_table("session_status")
    op.drop_table("session_checkpoints")
    op.drop_table("schema_version")
    op.drop_table("published_alerts")
    op.drop_table("partition_positions")
    op.drop_table("learned_state_clock")
    with op.batch_alter_table("learned_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_learned_state_seq"))

    op.drop_table("learned_state")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_status_severity")
        batch_op.drop_index("ix_incidents_group_status")

    op.drop_table("incidents")
    op.drop_table("incident_events")
    with op.batch_alter_table("incident_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_alerts_incident_id"))

    op.drop_table("incident_alerts")
    op.drop_table("audit_log")
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_index("ix_approvals_status")
        batch_op.drop_index(batch_op.f("ix_approvals_incident_id"))

    op.drop_table("approvals")
    op.drop_table("approval_votes")
    op.drop_table("alert_log_positions")
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_index("ix_actions_status")
        batch_op.drop_index(batch_op.f("ix_actions_incident_id"))

    op.drop_table("actions")

"""Redacted identifiers on incidents and the ``incidents_dashboard`` view Grafana reads.

Grafana's PostgreSQL datasource reads the store directly, with no agentwatch process in
between to redact what agents wrote. Incidents therefore keep their identifiers a second
time, secret-redacted (``agent_shown``, ``session_shown``, ``principal_shown``; filled for
existing rows here), and the view exposes only those and agentwatch's own fields. On
PostgreSQL, a role ``agentwatch_dashboard`` (compose creates it) gets ``SELECT`` on the
view and on nothing else.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

VIEW = """
CREATE VIEW incidents_dashboard AS
SELECT incident_id, severity, status, mode, categories, detectors,
       agent_shown AS agent, session_shown AS session, principal_shown AS principal,
       opened_ms, contained_ms, resolved_ms, first_malicious_ts_ms,
       CASE WHEN contained_ms IS NOT NULL AND first_malicious_ts_ms IS NOT NULL
            THEN (contained_ms - first_malicious_ts_ms) / 1000.0 END AS time_to_contain_s
FROM incidents
"""

GRANT = """
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentwatch_dashboard') THEN
    GRANT SELECT ON incidents_dashboard TO agentwatch_dashboard;
  END IF;
END
$$
"""


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.add_column(sa.Column("agent_shown", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("session_shown", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("principal_shown", sa.String(length=256), nullable=True))
    if not context.is_offline_mode():
        _backfill()
    op.execute(VIEW)
    if op.get_context().dialect.name == "postgresql":
        op.execute(GRANT)


def _backfill() -> None:
    from agentwatch.respond.redaction import redact  # the same redaction as new rows get

    bind = op.get_bind()
    incidents = sa.table(
        "incidents",
        sa.column("incident_id", sa.String),
        sa.column("agent_id", sa.String),
        sa.column("session_id", sa.String),
        sa.column("principal", sa.String),
        sa.column("agent_shown", sa.String),
        sa.column("session_shown", sa.String),
        sa.column("principal_shown", sa.String),
    )
    rows = bind.execute(sa.select(incidents.c.incident_id, incidents.c.agent_id, incidents.c.session_id,
                                  incidents.c.principal)).all()  # fmt: skip
    for row in rows:
        bind.execute(
            incidents.update()
            .where(incidents.c.incident_id == row.incident_id)
            .values(
                agent_shown=redact(row.agent_id)[:256],
                session_shown=redact(row.session_id)[:256],
                principal_shown=None if row.principal is None else redact(row.principal)[:256],
            )
        )


def downgrade() -> None:
    op.execute("DROP VIEW incidents_dashboard")
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.drop_column("principal_shown")
        batch_op.drop_column("session_shown")
        batch_op.drop_column("agent_shown")

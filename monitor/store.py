"""The store: SQLAlchemy Core over SQLite by default, PostgreSQL by URL.

It holds the *alert ledger* (which revision of which alert was published, and how far
into the alerts topic that record is complete — what lets a restarted monitor
re-process events without publishing an alert twice), incidents with their alerts,
timeline, journal of session events and response actions, the status of terminated
sessions, and the hash-chained audit log (:mod:`agentwatch.respond.audit_log`).

The schema is created on first use and migrated forward by :func:`open_store` with
Alembic (:mod:`agentwatch.migrations`; ``alembic_version`` records where a database stands).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

#: The ``schema_version`` that pre-Alembic agentwatch wrote; Alembic's baseline revision is
#: exactly that schema and keeps the table at this value for older readers.
SCHEMA_VERSION = 2
#: Serialises schema creation and migration across processes (PostgreSQL advisory lock key).
_SCHEMA_LOCK_ID = 0x61677473

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
)

published_alerts = Table(
    "published_alerts",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("severity_rank", Integer, nullable=False),
)

alert_log_positions = Table(
    "alert_log_positions",
    metadata,
    Column("topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    Column("incident_id", String(64), primary_key=True),
    Column("group_key", String(600), nullable=False),
    Column("session_id", String(256), nullable=False),
    Column("agent_id", String(256), nullable=False),
    Column("principal", String(256)),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # open | contained | resolved
    Column("title", Text, nullable=False),
    Column("opened_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("contained_ms", BigInteger),
    Column("resolved_ms", BigInteger),
    Column("first_malicious_ts_ms", BigInteger),
    Column("first_alert_ts_ms", BigInteger),
    Column("detectors", JSON, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("mode", String(16), nullable=False),  # highest alert mode: shadow < alert < enforce
    # The identifiers secret-redacted, for what reads the store without agentwatch's redaction
    # in between (the ``incidents_dashboard`` view Grafana queries; migration 0002).
    Column("agent_shown", String(256)),
    Column("session_shown", String(256)),
    Column("principal_shown", String(256)),
)
#: What Grafana's PostgreSQL datasource may read (``GRANT SELECT`` to ``agentwatch_dashboard``):
#: no raw agent-written text, only the redacted identifiers and agentwatch's own fields.
DASHBOARD_VIEW = "incidents_dashboard"
Index("ix_incidents_group_status", incidents.c.group_key, incidents.c.status)
Index("ix_incidents_status_severity", incidents.c.status, incidents.c.severity)

incident_alerts = Table(
    "incident_alerts",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("detector", String(128), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("event_id", String(256), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("body", JSON, nullable=False),
)

incident_events = Table(
    "incident_events",
    metadata,
    Column("incident_id", String(64), primary_key=True),
    Column("event_id", String(256), primary_key=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("body", JSON, nullable=False),
)

timeline = Table(
    "timeline",
    metadata,
    Column("entry_id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # alert | action | decision | status | note
    Column("actor", String(300), nullable=False),
    Column("text", Text, nullable=False),
    Column("data", JSON, nullable=False),
)

actions = Table(
    "actions",
    metadata,
    Column("action_key", String(200), primary_key=True),  # <incident_id>:<playbook>:<step>
    Column("incident_id", String(64), nullable=False, index=True),
    Column("playbook", String(128), nullable=False),
    Column("step", String(128), nullable=False),
    Column("position", Integer, nullable=False),
    Column("action", String(128), nullable=False),
    Column("mode", String(16), nullable=False),  # shadow | enforce
    Column("status", String(16), nullable=False),  # pending | running | done | failed | skipped
    Column("attempts", Integer, nullable=False),
    Column("params", JSON, nullable=False),
    Column("result", JSON, nullable=False),
    Column("error", Text),
    Column("actor", String(300), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("started_ms", BigInteger),
    Column("finished_ms", BigInteger),
    Column("next_attempt_ms", BigInteger),
    # While running: the monitor incarnation that claimed it (agentwatch.respond.liveness); a step
    # whose owner is gone is taken over at once. NULL for rows of schema version 1.
    Column("owner", String(64)),
)
Index("ix_actions_status", actions.c.status)

session_status = Table(
    "session_status",
    metadata,
    Column("session_id", String(256), primary_key=True),
    Column("agent_id", String(256), nullable=False),
    Column("status", String(16), nullable=False),  # terminated
    Column("reason", Text, nullable=False),
    Column("incident_id", String(64), nullable=False),
    Column("command_id", String(64), nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("actor", String(300), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("data", JSON, nullable=False),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
)

# -- approvals (agentwatch.approve): a human decision before gated containment ---------
approvals = Table(
    "approvals",
    metadata,
    Column("approval_id", String(64), primary_key=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("step_key", String(200), nullable=False, unique=True),  # the request_approval step
    Column("action", String(128), nullable=False),  # the gated action
    Column("action_params", JSON, nullable=False),
    Column("subject", JSON, nullable=False),  # exactly what will be contained, as approvers saw it
    Column("approvers", JSON, nullable=False),  # Slack user ids (U…/W…) and user-group ids (S…)
    Column("escalate_to", JSON, nullable=False),  # one list of ids per escalation level
    Column("escalation_level", Integer, nullable=False),
    Column("quorum", Integer, nullable=False),
    Column("timeout_ms", BigInteger, nullable=False),
    Column("on_timeout", String(16), nullable=False),  # escalate | expire
    Column("reading_time_ms", BigInteger, nullable=False),
    # pending | approved | running | executed | failed | denied | expired | cancelled
    Column("status", String(16), nullable=False),
    Column("note", Text),
    Column("requested_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("touched_ms", BigInteger, nullable=False),  # written first in every change: the row lock
    Column("decided_ms", BigInteger),
    Column("received_ms", BigInteger),  # when the deciding request arrived
    Column("started_ms", BigInteger),
    Column("executed_ms", BigInteger),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger),
    Column("result", JSON, nullable=False),
    Column("error", Text),
    Column("slack_channel", String(64)),
    Column("slack_ts", String(32)),
    Column("slack_posted_ms", BigInteger),
    Column("slack_rev", Integer, nullable=False),  # bumped by every change the message shows
    Column("slack_synced_rev", Integer, nullable=False),
    Column("slack_announced", String(32), nullable=False),  # last state posted to the thread
    Column("slack_attempts", Integer, nullable=False),
    Column("slack_next_ms", BigInteger),
    Column("slack_claim_ms", BigInteger),
    Column("slack_error", Text),
)
Index("ix_approvals_status", approvals.c.status)

approval_votes = Table(
    "approval_votes",
    metadata,
    Column("approval_id", String(64), primary_key=True),
    Column("voter", String(320), primary_key=True),  # the approver's e-mail, case-folded: one vote per person
    Column("user_id", String(300), nullable=False),
    Column("channel", String(16), nullable=False),  # slack | cli
    Column("decision", String(16), nullable=False),  # approve | deny
    Column("ts_ms", BigInteger, nullable=False),
    Column("elapsed_ms", BigInteger, nullable=False),  # since the request was shown
    Column("announced", Integer, nullable=False),  # 1 once posted to the Slack thread
)

# -- notifiers (agentwatch.notify): every incident change, and how far each notifier got --
#: One row per lifecycle change (opened, severity_raised, contained, resolved), written in the
#: same transaction as the change: the durable outbox every notifier reads.
incident_changes = Table(
    "incident_changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("change", String(32), nullable=False),  # opened | severity_raised | contained | resolved
    Column("severity", String(16), nullable=False),  # the incident's severity after the change
    Column("status", String(16), nullable=False),  # the incident's status after the change
    Column("ts_ms", BigInteger, nullable=False),
    Column("actor", String(300), nullable=False),
)

#: Per (notifier, incident): the last change delivered, retry state and what the notifier keeps
#: (the Slack message's channel and ts). ``incident_id = "*"`` holds the notifier's floor: changes
#: recorded before it was first configured are not sent.
notifier_cursors = Table(
    "notifier_cursors",
    metadata,
    Column("notifier", String(128), primary_key=True),
    Column("incident_id", String(64), primary_key=True),
    Column("delivered_seq", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger),
    Column("claim_ms", BigInteger),
    Column("error", Text),
    Column("state", JSON, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

slack_requests_seen = Table(
    "slack_requests_seen",
    metadata,
    Column("request_key", String(100), primary_key=True),  # sig:<signature> | payload:<digest>
    Column("seen_ms", BigInteger, nullable=False, index=True),
)


def insert_ignoring_duplicates(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` in one statement; rows whose primary key exists are skipped."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(postgresql_insert(table).on_conflict_do_nothing(), rows)
    elif conn.dialect.name == "sqlite":
        conn.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)
    else:
        for row in rows:
            conn.execute(table.insert().prefix_with("IGNORE"), row)


#: How long opening a SQLite store retries SQLite's immediate "database is locked" (see :func:`open_store`).
SQLITE_OPEN_RETRY_S = 30.0


def open_store(url: str) -> Engine:
    """Connect, create the schema where missing and migrate it to :data:`SCHEMA_VERSION`."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        # Take SQLite's write lock when a transaction begins, not at its first write: a
        # read-then-write (the audit chain's "last hash, then append") can then never
        # interleave with another writer — the same guarantee PostgreSQL gets from its
        # advisory lock.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    # One transaction, one writer at a time: processes opening a fresh store at the same
    # moment must not both create the tables (PostgreSQL: UniqueViolation on pg_type or
    # schema_version). PostgreSQL serialises on a transaction-scoped advisory lock; on
    # SQLite the transaction's BEGIN IMMEDIATE takes the write lock. DDL is transactional
    # on both, so the waiter then sees the complete schema.
    deadline = time.monotonic() + SQLITE_OPEN_RETRY_S
    while True:
        try:
            _create_or_migrate(engine)
            return engine
        except OperationalError as exc:
            # SQLite answers "database is locked" without waiting out busy_timeout in a few
            # cases (switching a fresh file to WAL while another process does, WAL recovery):
            # opening is retried, bounded, instead of failing a process that merely started
            # at the same moment as another.
            if engine.dialect.name != "sqlite" or "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            engine.dispose()
            time.sleep(0.05)


@functools.cache
def _migration_scripts() -> Any:
    """Alembic's script directory (:mod:`agentwatch.migrations`), parsed once per process."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(__file__).parent / "migrations"))


def migration_config(connection: Connection | None = None) -> Any:
    """An Alembic config for :mod:`agentwatch.migrations`, bound to ``connection`` if given."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migration_head() -> str:
    """The newest schema revision this agentwatch knows."""
    return str(_migration_scripts().get_current_head())


def offline_sql(url: str) -> str:
    """The SQL that creates this agentwatch's schema in an empty database of ``url``'s dialect."""
    import io

    from alembic import command

    buffer = io.StringIO()
    config = migration_config()
    config.output_buffer = buffer
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser interpolation
    command.upgrade(config, "head", sql=True)
    return buffer.getvalue()


def store_revision(conn: Connection) -> str | None:
    """The Alembic revision a store stands at (``None``: no schema yet, or from before Alembic)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()  # type: ignore[no-any-return]


def drop_store(engine: Engine) -> None:
    """Drop every agentwatch table and the migration record (tests and benchmarks start empty)."""
    with engine.begin() as conn:
        conn.execute(text(f"DROP VIEW IF EXISTS {DASHBOARD_VIEW}"))
        metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def _create_or_migrate(engine: Engine) -> None:
    from alembic import command

    scripts = _migration_scripts()
    head = scripts.get_current_head()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SCHEMA_LOCK_ID})
        current = store_revision(conn)
        if current == head:
            return
        where = engine.url.render_as_string(hide_password=True)
        if current is not None and current not in {script.revision for script in scripts.walk_revisions()}:
            raise RuntimeError(
                f"the store at {where} is at schema revision {current}, newer than this agentwatch; upgrade agentwatch"
            )
        if current is None and inspect(conn).has_table("schema_version"):  # written before Alembic
            legacy = conn.execute(select(schema_version.c.version)).scalar()
            if legacy is not None and legacy > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the store at {where} has schema version {legacy}, newer than this agentwatch "
                    f"({SCHEMA_VERSION}); upgrade agentwatch"
                )
        command.upgrade(migration_config(conn), "head")


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" listener issues BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")  # first: switching to WAL waits for other openers too
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class AlertLedger:
    """Which (alert, revision) pairs have been published; cached in memory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._published: dict[str, tuple[int, int]] = {}
        with engine.connect() as conn:
            for row in conn.execute(select(published_alerts)):
                self._published[row.alert_id] = (row.revision, row.severity_rank)

    def reload(self) -> None:
        """Re-read the published revisions: another monitor sharing this store (the one a
        partition was handed over from) may have recorded alerts since this one started."""
        with self.engine.connect() as conn:
            for row in conn.execute(select(published_alerts)):
                known = self._published.get(row.alert_id)
                if known is None or known[0] < row.revision:
                    self._published[row.alert_id] = (row.revision, row.severity_rank)

    def next_revision(self, alert_id: str, severity_rank: int) -> int | None:
        """The revision to publish for this severity, or ``None`` if already published."""
        known = self._published.get(alert_id)
        if known is None:
            return 1
        revision, rank = known
        return revision + 1 if severity_rank > rank else None

    def positions(self, topic: str) -> dict[int, int]:
        """Per partition of the alerts ``topic``: the offset up to which the ledger is complete."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(alert_log_positions).where(alert_log_positions.c.topic == topic))
            return {row.partition: row.next_offset for row in rows}

    def merge(self, seen: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        """Of ``seen`` revisions, the ones newer than the ledger's (to be recorded)."""
        return {
            alert_id: (revision, rank)
            for alert_id, (revision, rank) in seen.items()
            if alert_id not in self._published or self._published[alert_id][0] < revision
        }

    def record(
        self, entries: dict[str, tuple[int, int]], topic: str = "", positions: dict[int, int] | None = None
    ) -> None:
        """Durably note published ``{alert_id: (revision, severity_rank)}`` and, for the
        alerts ``topic``, the per-partition offsets those messages reached."""
        if not entries and not positions:
            return
        with self.engine.begin() as conn:
            for partition, next_offset in (positions or {}).items():
                key = (alert_log_positions.c.topic == topic, alert_log_positions.c.partition == partition)
                stored = conn.execute(select(alert_log_positions.c.next_offset).where(*key)).scalar()
                if stored is None:
                    conn.execute(
                        alert_log_positions.insert().values(topic=topic, partition=partition, next_offset=next_offset)
                    )
                elif stored < next_offset:
                    conn.execute(alert_log_positions.update().where(*key).values(next_offset=next_offset))
            for alert_id, (revision, rank) in entries.items():
                updated = conn.execute(
                    published_alerts.update()
                    .where(published_alerts.c.alert_id == alert_id)
                    .values(revision=revision, severity_rank=rank)
                ).rowcount
                if not updated:
                    conn.execute(
                        published_alerts.insert().values(alert_id=alert_id, revision=revision, severity_rank=rank)
                    )
        self._published.update(entries)


# -- durable monitor state (agentwatch.ingest.state_checkpoint) ----------------------------------
# Where each input partition stands and the state of its live sessions, written in one
# transaction after every batch (the store, not Kafka's committed offset, is the source of
# truth for the consumed position); and the learned per-agent baselines every monitor of
# the consumer group shares.

partition_positions = Table(
    "partition_positions",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger),  # NULL: claimed, nothing checkpointed yet
    Column("epoch", BigInteger, nullable=False),  # bumped by every new owner; fences the previous one
)

session_checkpoints = Table(
    "session_checkpoints",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),  # partition number, shared by co-partitioned inputs
    Column("session_id", String(256), primary_key=True),
    Column("state", LargeBinary, nullable=False),  # pickled SessionState (scratch included)
)

learned_state = Table(
    "learned_state",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("detector", String(128), primary_key=True),
    Column("key", String(300), primary_key=True),  # an agent / principal / fleet key; "" = whole checkpoint
    Column("state", LargeBinary, nullable=False),
    Column("seq", BigInteger, nullable=False, index=True),  # learned_state_clock value of the write
    Column("writer", String(64), nullable=False),  # the monitor process that wrote it
)

learned_state_clock = Table(
    "learned_state_clock",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], update: tuple[str, ...]) -> None:
    """Insert ``rows``; where the primary key exists, overwrite the ``update`` columns."""
    if not rows:
        return
    if conn.dialect.name in ("postgresql", "sqlite"):
        insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(table)
        keys = [c.name for c in table.primary_key.columns]
        # executemany: SQLAlchemy batches the rows into multi-row VALUES ("insertmanyvalues")
        conn.execute(
            stmt.on_conflict_do_update(index_elements=keys, set_={name: stmt.excluded[name] for name in update}), rows
        )
        return
    for row in rows:  # other dialects: update, insert when nothing matched
        where = [table.c[c.name] == row[c.name] for c in table.primary_key.columns]
        if not conn.execute(table.update().where(*where).values({k: row[k] for k in update})).rowcount:
            conn.execute(table.insert().values(row))

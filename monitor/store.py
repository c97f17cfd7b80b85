"""The store: SQLAlchemy Core over SQLite by default, PostgreSQL by URL.

So far it holds the *alert ledger* — which revision of which alert has been published,
and how far into the alerts topic that record is complete — which is what lets a
restarted monitor re-process events (at-least-once) without publishing a second copy
of an alert.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, create_engine, select
from sqlalchemy.engine import Engine

metadata = MetaData()

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


def open_store(url: str) -> Engine:
    """Connect and create the schema where missing."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if url.startswith("sqlite"):
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    metadata.create_all(engine)
    return engine


class AlertLedger:
    """Which (alert, revision) pairs have been published; cached in memory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._published: dict[str, tuple[int, int]] = {}
        with engine.connect() as conn:
            for row in conn.execute(select(published_alerts)):
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
                row = {"topic": topic, "partition": partition}
                updated = conn.execute(
                    alert_log_positions.update()
                    .where(alert_log_positions.c.topic == topic, alert_log_positions.c.partition == partition)
                    .where(alert_log_positions.c.next_offset < next_offset)
                    .values(next_offset=next_offset)
                ).rowcount
                if not updated:
                    exists = conn.execute(
                        select(alert_log_positions.c.next_offset)
                        .where(alert_log_positions.c.topic == topic, alert_log_positions.c.partition == partition)
                    ).first()
                    if exists is None:
                        conn.execute(alert_log_positions.insert().values(**row, next_offset=next_offset))
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

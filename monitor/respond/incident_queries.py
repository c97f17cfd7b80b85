"""Reading incidents back: rows for `incidents list`, whole records for `show`, evidence, postmortems."""

from __future__ import annotations

from typing import Any, Final

import msgspec
from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from agentwatch.detect.alerts import Alert
from agentwatch.events.audit_event import AuditEvent, from_mapping
from agentwatch.respond.evidence import EvidenceRecord
from agentwatch.respond.incident_record import ActionRecord, IncidentRecord, TimelineEntry
from agentwatch.store import actions, incident_alerts, incident_events, incidents, timeline

#: Where a journal row's body keeps when the event reached agentwatch's input (set by the responder,
#: not by the agent: popped before the body is decoded as an event).
OBSERVED_KEY: Final = "agentwatch.observed_ms"


def list_incidents(
    conn: Connection,
    status: str | None = None,
    limit: int = 100,
    *,
    severity: str | None = None,
    after: tuple[int, str] | None = None,
) -> list[dict[str, Any]]:
    """Newest first (ties by id), with alert and action counts; ``after`` (opened ms, id) pages on."""
    query = select(incidents).order_by(incidents.c.opened_ms.desc(), incidents.c.incident_id.desc()).limit(limit)
    if status:
        query = query.where(incidents.c.status == status)
    if severity:
        query = query.where(incidents.c.severity == severity)
    if after is not None:
        opened_ms, incident_id = after
        query = query.where(
            or_(
                incidents.c.opened_ms < opened_ms,
                and_(incidents.c.opened_ms == opened_ms, incidents.c.incident_id < incident_id),
            )
        )
    rows = [dict(row._mapping) for row in conn.execute(query)]
    if not rows:
        return rows
    ids = [row["incident_id"] for row in rows]
    alert_counts: dict[str, int] = dict(
        conn.execute(
            select(incident_alerts.c.incident_id, func.count())
            .where(incident_alerts.c.incident_id.in_(ids))
            .group_by(incident_alerts.c.incident_id)
        ).all()
    )
    pending: dict[str, int] = dict(
        conn.execute(
            select(actions.c.incident_id, func.count())
            .where(actions.c.incident_id.in_(ids), actions.c.status.in_(("pending", "running", "failed")))
            .group_by(actions.c.incident_id)
        ).all()
    )
    for row in rows:
        row["alerts"] = alert_counts.get(row["incident_id"], 0)
        row["open_steps"] = pending.get(row["incident_id"], 0)
    return rows


def count_incidents(conn: Connection, status: str | None = None) -> int:
    """How many incidents (with ``status``) the store holds: ``list_incidents`` shows the newest ``limit``."""
    query = select(func.count()).select_from(incidents)
    if status:
        query = query.where(incidents.c.status == status)
    return int(conn.execute(query).scalar_one())


#: Incident ids are ``inc-`` + hex; a short id keeps at least this many hex digits (git's default abbreviation).
ID_PREFIX = "inc-"
MIN_SHORT_HEX = 8
MAX_CANDIDATES = 10


class AmbiguousIncident(LookupError):
    """A prefix more than one incident id starts with; ``candidates`` are (some of) them."""

    def __init__(self, prefix: str, candidates: list[str], total: int) -> None:
        super().__init__(prefix)
        self.prefix, self.candidates, self.total = prefix, candidates, total


def short_ids(conn: Connection, ids: list[str]) -> dict[str, str]:
    """Each id's shortest prefix no other incident in the store shares, ``inc-`` + at least 8 hex digits.

    Git's rule: only an id's neighbours in sorted order can share its longest common prefix,
    so two indexed look-ups per id settle it whatever the size of the store.
    """
    shortest: dict[str, str] = {}
    column = incidents.c.incident_id
    for incident_id in ids:
        before = conn.execute(select(func.max(column)).where(column < incident_id)).scalar()
        after = conn.execute(select(func.min(column)).where(column > incident_id)).scalar()
        shared = max(_common_prefix(incident_id, other) for other in (before or "", after or ""))
        floor = len(ID_PREFIX) + MIN_SHORT_HEX if incident_id.startswith(ID_PREFIX) else MIN_SHORT_HEX
        shortest[incident_id] = incident_id[: max(shared + 1, floor)]
    return shortest


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def resolve_incident_id(conn: Connection, given: str) -> str:
    """The one incident ``given`` names: its id, or a unique prefix of it (``inc-`` optional).

    ``KeyError`` when none matches; :class:`AmbiguousIncident` when several do.
    """
    column = incidents.c.incident_id
    if conn.execute(select(column).where(column == given)).first() is not None:
        return given
    prefixes = {given} if given.startswith(ID_PREFIX) or not given else {given, ID_PREFIX + given}
    matches: set[str] = set()
    total = 0
    for prefix in prefixes:
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        condition = column.like(like, escape="\\")
        total += int(conn.execute(select(func.count()).where(condition)).scalar_one())
        matches.update(conn.execute(select(column).where(condition).order_by(column).limit(MAX_CANDIDATES)).scalars())
    if not matches or not given:
        raise KeyError(given)
    if total > 1:
        raise AmbiguousIncident(given, sorted(matches)[:MAX_CANDIDATES], total)
    return matches.pop()


def load_incident(conn: Connection, incident_id: str) -> IncidentRecord:
    """The whole incident: alerts, journal, actions, timeline. ``KeyError`` if unknown."""
    row = conn.execute(select(incidents).where(incidents.c.incident_id == incident_id)).first()
    if row is None:
        raise KeyError(incident_id)
    alerts = [
        msgspec.convert(r.body, Alert)
        for r in conn.execute(
            select(incident_alerts.c.body)
            .where(incident_alerts.c.incident_id == incident_id)
            .order_by(incident_alerts.c.ts_ms, incident_alerts.c.revision)
        )
    ]
    events: list[AuditEvent] = []
    observed: dict[str, int] = {}
    for r in conn.execute(
        select(incident_events.c.body)
        .where(incident_events.c.incident_id == incident_id)
        .order_by(incident_events.c.ts_ms, incident_events.c.event_id)
    ):
        body = dict(r.body)
        seen = body.pop(OBSERVED_KEY, None)
        event = from_mapping(body)
        if isinstance(seen, int) and not isinstance(seen, bool) and seen > 0:
            observed[event.event_id] = seen
        events.append(event)
    action_rows = [
        ActionRecord(
            action_key=r.action_key,
            step=r.step,
            action=r.action,
            status=r.status,
            actor=r.actor,
            started_ms=r.started_ms,
            finished_ms=r.finished_ms,
            result=r.result or {},
            error=r.error,
        )
        for r in conn.execute(
            select(actions).where(actions.c.incident_id == incident_id).order_by(actions.c.playbook, actions.c.position)
        )
    ]
    entries = [
        TimelineEntry(ts_ms=r.ts_ms, kind=r.kind, actor=r.actor, text=r.text, data=r.data or {})
        for r in conn.execute(
            select(timeline)
            .where(timeline.c.incident_id == incident_id)
            .order_by(timeline.c.ts_ms, timeline.c.entry_id)
        )
    ]
    return IncidentRecord(
        incident_id=row.incident_id,
        session_id=row.session_id,
        agent_id=row.agent_id,
        principal=row.principal,
        severity=row.severity,
        status=row.status,
        opened_ms=row.opened_ms,
        contained_ms=row.contained_ms,
        resolved_ms=row.resolved_ms,
        first_malicious_ts_ms=row.first_malicious_ts_ms,
        first_alert_ts_ms=row.first_alert_ts_ms,
        alerts=alerts,
        events=events,
        actions=action_rows,
        timeline=entries,
        detector_context={
            "detectors": row.detectors,
            "categories": row.categories,
            "mode": row.mode,
            "title": row.title,
        },
        observed_ms=observed,
    )


def evidence_records(conn: Connection, incident_ids: list[str]) -> list[EvidenceRecord]:
    """What the store kept of the evidence bundles written for ``incident_ids``: each done
    ``collect_evidence`` step's path, version and manifest digest."""
    rows = conn.execute(
        select(actions.c.incident_id, actions.c.result).where(
            actions.c.action == "collect_evidence",
            actions.c.status == "done",
            actions.c.incident_id.in_(sorted(set(incident_ids))),
        )
    )
    records = []
    for row in rows:
        result = row.result or {}
        if isinstance(result.get("digest"), str) and isinstance(result.get("path"), str):
            records.append(
                EvidenceRecord(row.incident_id, result["path"], int(result.get("version") or 1), result["digest"])
            )
    return records

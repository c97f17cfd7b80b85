"""Incidents: alerts grouped (one per session by default), with a lifecycle and a timeline.

An incident's severity is the highest of its alerts; its status goes
``open → contained → resolved``; everything that happens to it — alerts, actions,
decisions, status changes — is a timeline entry and an audit-log record, written in the
same transaction as the change itself. Each lifecycle change (opened, severity raised,
contained, resolved) is also a row of ``incident_changes``, the outbox the notifiers
(:mod:`agentwatch.notify`) deliver from.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import msgspec
from sqlalchemy import select
from sqlalchemy.engine import Connection

from agentwatch.detect.alerts import Alert
from agentwatch.detect.policy import SEVERITY_RANK
from agentwatch.respond import audit_log
from agentwatch.respond.redaction import redact
from agentwatch.store import incident_alerts, incident_changes, incidents, timeline

STATUSES = ("open", "contained", "resolved")
MODE_RANK = {"shadow": 0, "alert": 1, "enforce": 2}


class IncidentSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How alerts group into incidents (``[incidents]`` in the config file).

    Parameters
    ----------
    group_by
        Alerts sharing this field's value join the same incident.
    window_s
        …as long as that incident was opened less than this long ago (event time)
        and is not resolved.
    """

    group_by: Literal["session_id", "agent_id", "principal"] = "session_id"
    window_s: float = 86_400.0


class IncidentChange(msgspec.Struct, kw_only=True):
    incident_id: str
    created: bool
    attached: bool  # False when this alert revision was already recorded (a replay)
    severity: str
    status: str
    #: This alert raised the severity of an incident that was already open.
    raised: bool = False


def incident_id_for(group_key: str, first_alert_id: str) -> str:
    digest = hashlib.sha256(f"{group_key}\x00{first_alert_id}".encode()).hexdigest()
    return f"inc-{digest[:20]}"


def incident_title(alert: Alert) -> str:
    """What an incident is called: its most severe alert's category and the agent.

    Set from the opening alert and renamed whenever a more severe alert joins, so an
    incident opened by an anomaly and then raised to critical by a credential read is a
    "secret access" incident, not an "anomaly" one.
    """
    return f"{alert.category.replace('_', ' ')} by agent {redact(alert.agent_id)}"[:300]  # shown as is: redacted


def attach_alert(
    conn: Connection, alert: Alert, settings: IncidentSettings, now_ms: int, first_malicious_ms: int
) -> IncidentChange:
    """Record ``alert`` in its incident (opening one if needed); idempotent per revision.

    Incident times are wall-clock: ``now_ms`` is when the alert was raised and
    ``first_malicious_ms`` the estimated wall time of the first malicious event (the
    raising event's Kafka record time, moved back by the event-time gap to the
    earliest supporting event).
    """
    value = getattr(alert, settings.group_by) or alert.session_id
    group_key = f"{settings.group_by}={value}"
    ts_ms = now_ms
    row = conn.execute(
        select(incidents)
        .where(
            incidents.c.group_key == group_key,
            incidents.c.status != "resolved",
            incidents.c.opened_ms >= ts_ms - int(settings.window_s * 1000),
        )
        .order_by(incidents.c.opened_ms.desc())
        .limit(1)
    ).first()
    created = row is None
    if row is None:
        incident_id = incident_id_for(group_key, alert.alert_id)
        row = conn.execute(select(incidents).where(incidents.c.incident_id == incident_id)).first()
        created = row is None
    if row is None:
        conn.execute(
            incidents.insert().values(
                incident_id=incident_id,
                group_key=group_key,
                session_id=alert.session_id,
                agent_id=alert.agent_id,
                principal=alert.principal,
                severity=alert.severity,
                status="open",
                title=incident_title(alert),
                opened_ms=ts_ms,
                updated_ms=ts_ms,
                first_alert_ts_ms=ts_ms,
                first_malicious_ts_ms=first_malicious_ms,
                detectors=[alert.detector],
                categories=[alert.category],
                mode=alert.mode,
                agent_shown=redact(alert.agent_id)[:256],
                session_shown=redact(alert.session_id)[:256],
                principal_shown=None if alert.principal is None else redact(alert.principal)[:256],
            )
        )
        add_timeline(conn, incident_id, ts_ms, "status", "agentwatch", "incident opened", {"group_key": group_key})
        audit_log.append(
            conn,
            "agentwatch",
            "incident.opened",
            incident_id,
            {"group_key": group_key, "alert_id": alert.alert_id},
            ts_ms,
        )
        severity, status = alert.severity, "open"
        record_change(conn, incident_id, "opened", severity, status, ts_ms, "agentwatch")
    else:
        incident_id = row.incident_id
        severity, status = row.severity, row.status
    known = conn.execute(
        select(incident_alerts.c.alert_id).where(
            incident_alerts.c.alert_id == alert.alert_id, incident_alerts.c.revision == alert.revision
        )
    ).first()
    if known is not None:
        return IncidentChange(incident_id=incident_id, created=False, attached=False, severity=severity, status=status)
    conn.execute(
        incident_alerts.insert().values(
            alert_id=alert.alert_id,
            revision=alert.revision,
            incident_id=incident_id,
            detector=alert.detector,
            severity=alert.severity,
            score=alert.score,
            event_id=alert.event_id,
            ts_ms=ts_ms,
            body=msgspec.to_builtins(alert),
        )
    )
    add_timeline(
        conn,
        incident_id,
        ts_ms,
        "alert",
        f"detector:{alert.detector}",
        f"{alert.severity} alert (rev {alert.revision}): {alert.summary}",
        {"alert_id": alert.alert_id, "revision": alert.revision, "score": alert.score},
    )
    audit_log.append(
        conn,
        "agentwatch",
        "alert.attached",
        incident_id,
        {"alert_id": alert.alert_id, "revision": alert.revision, "severity": alert.severity},
        ts_ms,
    )
    if row is not None:
        updates: dict[str, Any] = {"updated_ms": max(row.updated_ms, ts_ms)}
        raised = SEVERITY_RANK[alert.severity] > SEVERITY_RANK[row.severity]
        if raised:
            updates["severity"] = severity = alert.severity
            updates["title"] = incident_title(alert)  # the title names the most severe category
        if alert.detector not in row.detectors:
            updates["detectors"] = [*row.detectors, alert.detector]
        if alert.category not in row.categories:
            updates["categories"] = [*row.categories, alert.category]
        if MODE_RANK[alert.mode] > MODE_RANK[row.mode]:
            updates["mode"] = alert.mode
        if row.first_malicious_ts_ms is None or first_malicious_ms < row.first_malicious_ts_ms:
            updates["first_malicious_ts_ms"] = first_malicious_ms
        conn.execute(incidents.update().where(incidents.c.incident_id == incident_id).values(**updates))
        if raised:
            record_change(
                conn, incident_id, "severity_raised", severity, row.status, ts_ms, f"detector:{alert.detector}"
            )
        return IncidentChange(
            incident_id=incident_id, created=created, attached=True, severity=severity, status=status, raised=raised
        )
    return IncidentChange(incident_id=incident_id, created=created, attached=True, severity=severity, status=status)


def set_status(conn: Connection, incident_id: str, status: str, actor: str, ts_ms: int, why: str) -> bool:
    """Move an incident forward in its lifecycle; returns False if it was already there or past."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    row = conn.execute(
        select(incidents.c.status, incidents.c.severity).where(incidents.c.incident_id == incident_id)
    ).first()
    if row is None:
        raise KeyError(f"no incident {incident_id}")
    if STATUSES.index(status) <= STATUSES.index(row.status):
        return False
    values: dict[str, Any] = {"status": status, "updated_ms": ts_ms, f"{status}_ms": ts_ms}
    conn.execute(incidents.update().where(incidents.c.incident_id == incident_id).values(**values))
    record_change(conn, incident_id, status, row.severity, status, ts_ms, actor)
    add_timeline(conn, incident_id, ts_ms, "status", actor, f"incident {status}: {why}", {})
    audit_log.append(conn, actor, f"incident.{status}", incident_id, {"why": why}, ts_ms)
    return True


def add_timeline(
    conn: Connection, incident_id: str, ts_ms: int, kind: str, actor: str, text: str, data: dict[str, Any]
) -> None:
    conn.execute(
        timeline.insert().values(
            incident_id=incident_id, ts_ms=ts_ms, kind=kind, actor=actor[:300], text=text[:2000], data=data
        )
    )


#: The lifecycle changes notifiers hear about, in ``incident_changes.change``.
CHANGES = ("opened", "severity_raised", "contained", "resolved")


def record_change(
    conn: Connection, incident_id: str, change: str, severity: str, status: str, ts_ms: int, actor: str
) -> None:
    """Append one lifecycle change to the notifiers' outbox (same transaction as the change)."""
    conn.execute(
        incident_changes.insert().values(
            incident_id=incident_id, change=change, severity=severity, status=status, ts_ms=ts_ms, actor=actor[:300]
        )
    )

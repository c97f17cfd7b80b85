"""An incident change as a :class:`~agentwatch.notify.spec.Notification`: read from the store,
every agent-written text redacted (:func:`~agentwatch.respond.redaction.redact`) and bounded."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.engine import Connection

from agentwatch.destinations import bucket_names, email_addresses, url_hosts
from agentwatch.detect.policy import SEVERITY_RANK
from agentwatch.notify.attack import techniques_for
from agentwatch.notify.spec import Notification
from agentwatch.respond.redaction import redact
from agentwatch.store import incident_alerts, incident_events, incidents

MAX_ITEMS: Final = 20
MAX_TEXT: Final = 500
MAX_SUMMARIES: Final = 5


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    return redact(str(value if value is not None else ""))[:limit]


class IncidentFacts:
    """What every notification of one incident shares (read once per delivery round)."""

    def __init__(self, conn: Connection, incident_id: str) -> None:
        row = conn.execute(select(incidents).where(incidents.c.incident_id == incident_id)).first()
        if row is None:
            raise KeyError(f"no incident {incident_id}")
        self.row = row
        bodies = [
            r.body
            for r in conn.execute(select(incident_alerts.c.body).where(incident_alerts.c.incident_id == incident_id))
            if isinstance(r.body, dict)
        ]
        latest: dict[str, dict[str, Any]] = {}
        for body in bodies:  # the highest revision of each alert
            alert_id = str(body.get("alert_id"))
            if alert_id not in latest or int(body.get("revision") or 0) > int(latest[alert_id].get("revision") or 0):
                latest[alert_id] = body
        alerts = sorted(latest.values(), key=lambda b: -SEVERITY_RANK.get(str(b.get("severity")), 0))
        self.summaries = [_text(b.get("summary")) for b in alerts[:MAX_SUMMARIES]]
        self.rules: list[str] = []
        self.techniques: list[str] = []
        event_ids: set[str] = set()
        for body in alerts:
            detector = str(body.get("detector"))
            rules = [str(r) for r in body.get("rules") or []]
            for rule in rules:
                name = _text(f"{detector}/{rule}", 200)
                if name not in self.rules and len(self.rules) < MAX_ITEMS:
                    self.rules.append(name)
            for technique in techniques_for(detector, rules):
                if technique not in self.techniques:
                    self.techniques.append(technique)
            event_ids.update(str(e) for e in (body.get("event_ids") or [])[:50])
        self.resources: list[str] = []
        self.destinations: list[str] = []
        if event_ids:
            events = conn.execute(
                select(incident_events.c.body).where(
                    incident_events.c.incident_id == incident_id, incident_events.c.event_id.in_(sorted(event_ids))
                )
            )
            for (body,) in events:
                if isinstance(body, dict):
                    self._add_event(body)

    def _add_event(self, body: dict[str, Any]) -> None:
        target = body.get("target")
        if isinstance(target, str) and target:
            value = _text(target, 300)
            if value not in self.resources and len(self.resources) < MAX_ITEMS:
                self.resources.append(value)
        text = " ".join(str(x) for x in (target, body.get("args")) if x)[:4096]
        found = [*url_hosts(text), *bucket_names(text), *email_addresses(body.get("args") or {})]
        for item in found:
            value = _text(item, 300)
            if value not in self.destinations and len(self.destinations) < MAX_ITEMS:
                self.destinations.append(value)

    def notification(self, change: Any, first: bool) -> Notification:
        row = self.row
        return Notification(
            seq=int(change.seq),
            change=change.change,
            first=first,
            incident_id=row.incident_id,
            title=_text(row.title, 300),
            severity=change.severity,
            status=change.status,
            ts_ms=int(change.ts_ms),
            actor=_text(change.actor, 300),
            session_id=_text(row.session_id, 256),
            agent_id=_text(row.agent_id, 256),
            principal=_text(row.principal, 256) if row.principal else None,
            mode=row.mode,
            opened_ms=row.opened_ms,
            contained_ms=row.contained_ms,
            resolved_ms=row.resolved_ms,
            detectors=[_text(d, 128) for d in row.detectors][:MAX_ITEMS],
            categories=[_text(c, 128) for c in row.categories][:MAX_ITEMS],
            summaries=list(self.summaries),
            rules=list(self.rules),
            techniques=list(self.techniques),
            resources=list(self.resources),
            destinations=list(self.destinations),
        )

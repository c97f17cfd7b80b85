"""``alertmanager``: each incident as an Alertmanager alert (``POST /api/v2/alerts``).

Labels identify the alert (``alertname="AgentwatchIncident"``, ``incident_id``, ``severity``,
``agent_id``, ``mode`` and the configured ``labels``); annotations carry the title, the alert
summaries, the status, the ATT&CK techniques and the incident link (also ``generatorURL``).
``startsAt`` is when the incident opened. Alertmanager resolves an alert that is not re-sent by
its ``endsAt``: while the incident is open or contained, ``endsAt`` is the change time plus
``firing_s`` (default 24 h); when it is resolved, the resolution time. A severity rise changes
the ``severity`` label, i.e. the alert's identity: the old one is resolved in the same request.
"""

from __future__ import annotations

from typing import Any

import msgspec

from agentwatch.events.audit_event import rfc3339_ms
from agentwatch.notify.http import check_url, incident_link, post_json
from agentwatch.notify.spec import Notification, Notifier, NotifierContext, NotifierParams, secret

ALERTNAME = "AgentwatchIncident"


class AlertmanagerParams(NotifierParams, kw_only=True, forbid_unknown_fields=True):
    url: str | None = None  #: Alertmanager's base URL, e.g. ``http://alertmanager:9093``
    url_env: str | None = None
    url_file: str | None = None
    labels: dict[str, str] = msgspec.field(default_factory=dict)  #: added to every alert (routing)
    incident_url: str | None = None
    firing_s: float = 86_400.0
    timeout_s: float = 10.0


class Alertmanager(Notifier):
    name = "alertmanager"
    params_type = AlertmanagerParams

    def __init__(self, params: AlertmanagerParams, context: NotifierContext) -> None:
        self.params = params
        base = params.url or secret(params, "url", context) or ""
        self.endpoint = check_url(base, "alertmanager url").rstrip("/") + "/api/v2/alerts"
        if params.incident_url:
            check_url(params.incident_url, "incident_url")

    def labels(self, note: Notification) -> dict[str, str]:
        return {
            **self.params.labels,
            "alertname": ALERTNAME,
            "incident_id": note.incident_id,
            "severity": note.severity,
            "agent_id": note.agent_id,
            "mode": note.mode,
        }

    def alerts(self, note: Notification, previous: dict[str, str] | None) -> list[dict[str, Any]]:
        link = incident_link(self.params.incident_url, note.incident_id)
        resolved = note.status == "resolved"
        ends_ms = (note.resolved_ms or note.ts_ms) if resolved else note.ts_ms + int(self.params.firing_s * 1000)
        annotations = {
            "summary": note.title,
            "description": "\n".join(note.summaries),
            "status": note.status,
            "change": note.change,
            "session_id": note.session_id,
            "techniques": ",".join(note.techniques),
        }
        if link:
            annotations["incident_url"] = link
        alert: dict[str, Any] = {
            "labels": self.labels(note),
            "annotations": {k: v for k, v in annotations.items() if v},
            "startsAt": rfc3339_ms(note.opened_ms),
            "endsAt": rfc3339_ms(ends_ms),
        }
        if link:
            alert["generatorURL"] = link
        out = [alert]
        if previous and previous != alert["labels"]:
            out.append({"labels": previous, "startsAt": rfc3339_ms(note.opened_ms), "endsAt": rfc3339_ms(note.ts_ms)})
        return out

    def send(self, note: Notification, state: dict[str, Any]) -> dict[str, Any]:
        previous = state.get("labels") if isinstance(state.get("labels"), dict) else None
        alerts = self.alerts(note, previous)
        post_json(self.endpoint, msgspec.json.encode(alerts), {}, self.params.timeout_s)
        return {**state, "labels": alerts[0]["labels"]}

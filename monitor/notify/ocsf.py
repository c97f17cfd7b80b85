"""Incident changes as OCSF 1.3 **Detection Finding** events (class 2004, category 2 Findings).

One finding per incident (``finding_info.uid`` = the incident id), one event per change:
``activity_id`` 1 Create (the first this output sends), 3 Close (resolved), else 2 Update.
The README's "OCSF mapping" table lists every field. Outputs: :class:`OcsfFile` (JSON lines,
what Splunk, Elastic, Sentinel or a data lake tail) and :class:`OcsfKafka` (a topic).
"""

from __future__ import annotations

import ipaddress
import os
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import msgspec

from agentwatch.notify.http import check_url, incident_link
from agentwatch.notify.spec import Notification, Notifier, NotifierContext, NotifierParams, Severity
from agentwatch.respond.action_spec import OutgoingMessage

OCSF_VERSION: Final = "1.3.0"
CLASS_UID: Final = 2004
CATEGORY_UID: Final = 2
SEVERITY_ID: Final = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
SEVERITY_NAME: Final = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
ACTIVITY_NAME: Final = {1: "Create", 2: "Update", 3: "Close"}
#: The incident's status → the finding's ``status_id``: New, In Progress, Resolved.
STATUS_ID: Final = {"open": (1, "New"), "contained": (2, "In Progress"), "resolved": (4, "Resolved")}
#: Observable ``type_id``s used here (OCSF 1.3 observable object).
HOSTNAME, IP_ADDRESS, USER_NAME, EMAIL_ADDRESS, RESOURCE_UID, OTHER = 1, 2, 4, 5, 10, 99


def _product_version() -> str:
    try:
        return version("agentwatch")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "0"


def activity_id(note: Notification) -> int:
    if note.change == "resolved":
        return 3
    return 1 if note.first else 2


def _destination(value: str) -> tuple[int, str]:
    if "@" in value:
        return EMAIL_ADDRESS, "Email Address"
    try:
        ipaddress.ip_address(value)
        return IP_ADDRESS, "IP Address"
    except ValueError:
        pass
    if "." in value and "/" not in value:
        return HOSTNAME, "Hostname"
    return RESOURCE_UID, "Resource UID"


def observables(note: Notification) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": "actor.session.uid", "type_id": OTHER, "type": "Other", "value": note.session_id},
        {"name": "actor.app_name", "type_id": OTHER, "type": "Other", "value": note.agent_id},
    ]
    if note.principal:
        kind = (EMAIL_ADDRESS, "Email Address") if "@" in note.principal else (USER_NAME, "User Name")
        out.append({"name": "actor.user.name", "type_id": kind[0], "type": kind[1], "value": note.principal})
    for resource in note.resources:
        out.append({"name": "resources.name", "type_id": RESOURCE_UID, "type": "Resource UID", "value": resource})
    for destination in note.destinations:
        type_id, type_name = _destination(destination)
        out.append({"name": "unmapped.destinations", "type_id": type_id, "type": type_name, "value": destination})
    return out


def attacks(techniques: list[str]) -> list[dict[str, Any]]:
    out = []
    for technique in techniques:
        base, _, sub = technique.partition(".")
        attack: dict[str, Any] = {"technique": {"uid": base}}
        if sub:
            attack["sub_technique"] = {"uid": technique}
        out.append(attack)
    return out


def detection_finding(note: Notification, incident_url: str | None = None) -> dict[str, Any]:
    """The OCSF Detection Finding for one incident change."""
    activity = activity_id(note)
    severity_id = SEVERITY_ID.get(note.severity, 0)
    status_id, status = STATUS_ID.get(note.status, (0, "Unknown"))
    link = incident_link(incident_url, note.incident_id)
    finding_info: dict[str, Any] = {
        "uid": note.incident_id,
        "title": note.title,
        "desc": "\n".join(note.summaries),
        "types": list(note.categories),
        "created_time": note.opened_ms,
        "modified_time": note.ts_ms,
        "analytic": {"name": ",".join(note.detectors), "type_id": 1, "type": "Rule"},
        "attacks": attacks(note.techniques),
    }
    if link:
        finding_info["src_url"] = link
    actor: dict[str, Any] = {"app_name": note.agent_id, "session": {"uid": note.session_id}}
    if note.principal:
        actor["user"] = {"name": note.principal}
    event: dict[str, Any] = {
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": activity,
        "activity_name": ACTIVITY_NAME[activity],
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": f"Detection Finding: {ACTIVITY_NAME[activity]}",
        "time": note.ts_ms,
        "severity_id": severity_id,
        "severity": SEVERITY_NAME.get(severity_id, "Unknown"),
        "status_id": status_id,
        "status": status,
        "message": note.title,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": f"{note.incident_id}:{note.seq}",
            "correlation_uid": note.incident_id,
            "product": {"name": "agentwatch", "vendor_name": "agentwatch", "version": _product_version()},
        },
        "finding_info": finding_info,
        "actor": actor,
        "resources": [{"name": r} for r in note.resources],
        "observables": observables(note),
        "unmapped": {
            "change": note.change,
            "mode": note.mode,
            "rules": list(note.rules),
            "destinations": list(note.destinations),
        },
    }
    if note.status == "resolved" and note.resolved_ms:
        event["end_time"] = note.resolved_ms
    return event


class OcsfParams(NotifierParams, kw_only=True, forbid_unknown_fields=True):
    min_severity: Severity = "info"  # a SIEM keeps every finding: NotifierParams default overridden
    incident_url: str | None = None


class OcsfFileParams(OcsfParams, kw_only=True, forbid_unknown_fields=True):
    #: The JSON-lines file; default ``<data_dir>/ocsf/findings.jsonl``. Rotate it with ``copytruncate``.
    path: str | None = None


class OcsfKafkaParams(OcsfParams, kw_only=True, forbid_unknown_fields=True):
    topic: str = "agentwatch.findings"


class OcsfFile(Notifier):
    """``ocsf_file``: one Detection Finding per line, appended and flushed (``fsync``) per change."""

    name = "ocsf_file"
    params_type = OcsfFileParams

    def __init__(self, params: OcsfFileParams, context: NotifierContext) -> None:
        self.params = params
        if params.incident_url:
            check_url(params.incident_url, "incident_url")
        self.path = Path(params.path) if params.path else context.data_dir / "ocsf" / "findings.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def send(self, note: Notification, state: dict[str, Any]) -> dict[str, Any]:
        line = msgspec.json.encode(detection_finding(note, self.params.incident_url)) + b"\n"
        with self._lock, open(self.path, "ab") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())
        return state


class OcsfKafka(Notifier):
    """``ocsf_kafka``: one Detection Finding per message on ``topic``, keyed by incident id."""

    name = "ocsf_kafka"
    params_type = OcsfKafkaParams

    def __init__(self, params: OcsfKafkaParams, context: NotifierContext) -> None:
        if context.send is None:
            raise ValueError("needs Kafka (run with --bootstrap-servers)")
        if params.incident_url:
            check_url(params.incident_url, "incident_url")
        self.params = params
        self.deliver = context.send

    def send(self, note: Notification, state: dict[str, Any]) -> dict[str, Any]:
        value = msgspec.json.encode(detection_finding(note, self.params.incident_url))
        self.deliver([OutgoingMessage(self.params.topic, note.incident_id.encode(), value)])
        return state

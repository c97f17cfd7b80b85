"""Alerts: one per (session, detector), updated in place — never one per event.

An alert's id derives from its inputs (detector and session), so a replayed event or a
restarted monitor arrives at the same id; a new *revision* is published only when the
alert's severity rises. Consumers keep the highest revision per ``alert_id``. Each
published revision names, in ``event_id`` and ``ts``, the event that raised it to its
severity — what time-to-detect is measured against.

What is published (the alerts topic, ``replay --alerts``) is :func:`public_alert`: every
agent-written field — identifiers included — redacted, and ``session_key`` (SHA-256 of
the real session id, hex) to correlate with control commands and the agent's own records.
"""

from __future__ import annotations

import hashlib
from typing import Final

import msgspec

from agentwatch.detect.detector_spec import Finding
from agentwatch.detect.policy import SEVERITY_RANK
from agentwatch.detect.session_state import SessionState
from agentwatch.events.audit_event import AuditEvent, rfc3339_ms
from agentwatch.respond.control import identity_key
from agentwatch.respond.redaction import redact

MAX_REASONS: Final = 10
MAX_EVENT_IDS: Final = 50
MAX_RULES: Final = 20


class Alert(msgspec.Struct, kw_only=True, gc=False):
    """The public alert record (``agentwatch.alerts`` and ``replay --alerts`` lines)."""

    alert_id: str
    revision: int
    session_id: str
    agent_id: str
    principal: str | None
    detector: str
    category: str
    severity: str
    score: float
    mode: str
    event_id: str
    ts: str
    summary: str
    reasons: list[str]
    event_ids: list[str]
    finding_count: int
    first_ts_ms: int
    updated_ts_ms: int
    #: When the raising event reached the monitor's input (Kafka record time): the
    #: wall-clock anchor for time-to-detect and time-to-contain.
    observed_ms: int = 0
    #: SHA-256 (hex) of the unredacted ``session_id``; set on published alerts (:func:`public_alert`).
    session_key: str = ""
    #: Which rules of the detector fired (``Finding.rule``, at most :data:`MAX_RULES`): what the
    #: notifiers map to ATT&CK techniques through the rules' tags.
    rules: list[str] = msgspec.field(default_factory=list)


def alert_id_for(detector: str, session_id: str) -> str:
    """Deterministic alert id: the same detector on the same session is one alert."""
    digest = hashlib.sha256(f"{detector}\x00{session_id}".encode()).hexdigest()
    return f"al-{digest[:24]}"


def raise_or_update(
    session: SessionState,
    detector: str,
    finding: Finding,
    severity: str,
    mode: str,
    event: AuditEvent,
    observed_ms: int = 0,
) -> Alert | None:
    """Fold ``finding`` into the session's alert for ``detector``.

    Returns the alert when it must be (re)published: when it is new, or when its
    severity rose. Otherwise the stored alert is updated silently and ``None`` returned.
    """
    current: Alert | None = session.alerts.get(detector)
    if current is None:
        alert = Alert(
            alert_id=alert_id_for(detector, session.session_id),
            revision=1,
            session_id=session.session_id,
            agent_id=session.agent_id,
            principal=session.principal,
            detector=detector,
            category=finding.category,
            severity=severity,
            score=round(finding.score, 4),
            mode=mode,
            event_id=event.event_id,
            ts=rfc3339_ms(event.ts_ms),
            summary=finding.reason,
            reasons=[finding.reason],
            event_ids=list(finding.event_ids[-MAX_EVENT_IDS:]),
            finding_count=1,
            first_ts_ms=event.ts_ms,
            updated_ts_ms=event.ts_ms,
            observed_ms=observed_ms,
            rules=[finding.rule] if finding.rule else [],
        )
        session.alerts[detector] = alert
        return _snapshot(alert)
    current.finding_count += 1
    if finding.rule and finding.rule not in current.rules and len(current.rules) < MAX_RULES:
        current.rules.append(finding.rule)
    current.updated_ts_ms = event.ts_ms
    if finding.reason not in current.reasons and len(current.reasons) < MAX_REASONS:
        current.reasons.append(finding.reason)
    for event_id in finding.event_ids:
        if event_id not in current.event_ids and len(current.event_ids) < MAX_EVENT_IDS:
            current.event_ids.append(event_id)
    if SEVERITY_RANK[severity] <= SEVERITY_RANK[current.severity]:
        if finding.score > current.score:
            current.score = round(finding.score, 4)
        return None
    current.revision += 1
    current.event_id = event.event_id
    current.ts = rfc3339_ms(event.ts_ms)
    current.observed_ms = observed_ms
    current.severity = severity
    current.score = round(max(current.score, finding.score), 4)
    current.category = finding.category
    current.summary = finding.reason
    return _snapshot(current)


def public_alert(alert: Alert) -> Alert:
    """The alert as it may leave the process: agent-written fields redacted, ``session_key`` set.

    Identifiers without a secret are unchanged; ``alert_id`` derives from the real
    session id, so it stays the same either way.

    >>> a = Alert(alert_id="al-1", revision=1, session_id="s_AKIA" + "QWERTYUIOPASDFGH", agent_id="coder-7",
    ...           principal=None, detector="d", category="c", severity="high", score=1.0, mode="alert",
    ...           event_id="e1", ts="t", summary="read token=abc", reasons=["read token=abc"], event_ids=["e1"],
    ...           finding_count=1, first_ts_ms=0, updated_ts_ms=0)
    >>> shown = public_alert(a)
    >>> shown.session_id, shown.agent_id, shown.summary, shown.session_key == identity_key(a.session_id)
    ('s_[REDACTED:aws_access_key]', 'coder-7', 'read token=[REDACTED:token]', True)
    """
    seen: dict[str, str] = {}  # the summary repeats a reason, event ids repeat: redact each text once

    def r(text: str) -> str:
        done = seen.get(text)
        if done is None:
            done = seen[text] = redact(text)
        return done

    return msgspec.structs.replace(
        alert,
        session_id=r(alert.session_id),
        agent_id=r(alert.agent_id),
        principal=None if alert.principal is None else r(alert.principal),
        event_id=r(alert.event_id),
        summary=r(alert.summary),
        reasons=[r(reason) for reason in alert.reasons],
        event_ids=[r(e) for e in alert.event_ids],
        session_key=alert.session_key or identity_key(alert.session_id),
    )


def _snapshot(alert: Alert) -> Alert:
    """A copy to publish: the session keeps updating its own alert in place."""
    return msgspec.structs.replace(
        alert, reasons=list(alert.reasons), event_ids=list(alert.event_ids), rules=list(alert.rules)
    )

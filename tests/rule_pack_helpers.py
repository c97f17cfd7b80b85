"""Running rule-based detectors on hand-written events, the way the pipeline runs them (shared by their tests)."""

from __future__ import annotations

from typing import Any

from agentwatch.detect.detector_spec import Detector, Finding
from agentwatch.detect.effects import effects_of
from agentwatch.detect.session_state import SessionTable
from agentwatch.events.audit_event import AuditEvent, from_mapping

TS = 1_767_225_600_000


def events(*raw: dict[str, Any]) -> list[AuditEvent]:
    """Events ``e1``, ``e2`` … of one session ``s`` (a ``tool_call`` unless ``kind`` is given), a second apart."""
    base = {"session_id": "s", "agent_id": "a", "kind": "tool_call"}
    return [from_mapping({**base, "event_id": f"e{i}", "ts": TS + i * 1000, **r}) for i, r in enumerate(raw, 1)]


def run(det: Detector, *raw: dict[str, Any]) -> list[Finding]:
    """Every finding of ``det`` on the events, effects computed first into the session as the pipeline does."""
    table = SessionTable()
    found: list[Finding] = []
    for ev in events(*raw):
        session = table.touch(ev)[0]
        session.effects = effects_of(ev, session)
        found.extend(det.observe(ev, session))
    return found


def top(det: Detector, *raw: dict[str, Any]) -> float:
    """The highest score ``det`` gives the events (0 when nothing)."""
    return max((f.score for f in run(det, *raw)), default=0.0)


def bash(cmd: str, **kw: Any) -> dict[str, Any]:
    """A Bash tool call of ``cmd``."""
    return {"tool": "Bash", "target": cmd, "args": {"command": cmd}, **kw}

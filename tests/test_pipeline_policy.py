"""The decision layer and plugin isolation in the shared pipeline (no Kafka needed)."""

from __future__ import annotations

from collections.abc import Sequence

from agentwatch.detect.detector_registry import ActiveDetector
from agentwatch.detect.detector_spec import Detector, Finding
from agentwatch.detect.pipeline import Pipeline
from agentwatch.detect.policy import DetectorPolicy
from agentwatch.detect.session_state import SessionState, SessionTable
from agentwatch.events.audit_event import AuditEvent, from_mapping
from tests.kafka_helpers import MarkerDetector


def marker_events(times_s: list[int], session: str = "s1") -> list[AuditEvent]:
    return [
        from_mapping(
            {
                "event_id": f"{session}:{i}",
                "ts": 1_767_225_600_000 + t * 1000,
                "session_id": session,
                "agent_id": "a",
                "kind": "tool_call",
                "target": "EVIL",
            }
        )
        for i, t in enumerate(times_s)
    ]


def run(policy: DetectorPolicy, events: list[AuditEvent], *extra: ActiveDetector) -> tuple[Pipeline, list]:  # type: ignore[type-arg]
    pipeline = Pipeline([ActiveDetector(MarkerDetector(), policy), *extra], SessionTable())
    alerts = [a for e in events for a in pipeline.process(e)]
    return pipeline, alerts


def test_n_findings_in_a_window() -> None:
    policy = DetectorPolicy(min_count=3, window_s=10)
    assert run(policy, marker_events([0, 5]))[1] == []
    _, alerts = run(policy, marker_events([0, 4, 9]))
    assert [a.event_id for a in alerts] == ["s1:2"]
    assert run(policy, marker_events([0, 15, 30]))[1] == []  # three, but never three within 10 s


def test_shadow_mode_counts_but_publishes_nothing() -> None:
    pipeline, alerts = run(DetectorPolicy(mode="shadow"), marker_events([0, 1]))
    assert alerts == [] and pipeline.shadow_alerts["marker"] == 1


def test_thresholds_and_severity_ladder_come_from_config() -> None:
    assert run(DetectorPolicy(min_score=0.99), marker_events([0]))[1] == []
    _, alerts = run(DetectorPolicy(severity={"medium": 0.5, "high": 0.97}), marker_events([0]))
    assert [a.severity for a in alerts] == ["medium"]


class Exploding(Detector):
    name = "exploding"
    categories = frozenset({"anomaly"})
    summary = "raises"

    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        raise RuntimeError("bug in a plugin")


def test_a_raising_detector_is_isolated_and_counted() -> None:
    pipeline, alerts = run(DetectorPolicy(), marker_events([0, 1, 2]), ActiveDetector(Exploding(), DetectorPolicy()))
    assert [a.detector for a in alerts] == ["marker"]  # the others carry on
    assert pipeline.plugin_errors[("exploding", "observe")] == 3

"""Helpers for tests that talk to the embedded broker."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import msgspec

from agentwatch.config import Config
from agentwatch.detect.detector_registry import ActiveDetector
from agentwatch.detect.detector_spec import Detector, DetectorConfig, Finding
from agentwatch.detect.pipeline import Pipeline
from agentwatch.detect.policy import DetectorPolicy
from agentwatch.detect.session_state import SessionState, SessionTable
from agentwatch.events.audit_event import AuditEvent
from agentwatch.ingest.kafka_runner import KafkaMonitor, recover_ledger
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.lab.topic_io import read_topic
from agentwatch.store import AlertLedger, open_store


class MarkerDetector(Detector):
    """Test detector: an event whose target contains ``EVIL`` scores 0.95."""

    name = "marker"
    categories = frozenset({"secret_access"})
    config_type = DetectorConfig
    cost_us = 1.0

    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        if event.target and "EVIL" in event.target:
            return (Finding(score=0.95, reason="marker seen", event_ids=(event.event_id,), category="secret_access"),)
        return ()


def marker_monitor(bootstrap: str, config: Config, exit_on_idle_s: float = 3.0) -> KafkaMonitor:
    ensure_topics(bootstrap, all_topics(config.monitor), partitions=3)
    pipeline = Pipeline([ActiveDetector(MarkerDetector(), DetectorPolicy())], SessionTable())
    ledger = AlertLedger(open_store(config.store_url))
    recover_ledger(ledger, bootstrap, config.monitor.alerts_topic)
    return KafkaMonitor(bootstrap, config.monitor, pipeline, ledger, exit_on_idle_s=exit_on_idle_s)


def run_in_thread(monitor: KafkaMonitor) -> threading.Thread:
    thread = threading.Thread(target=monitor.run, daemon=True)
    thread.start()
    return thread


def read_json(bootstrap: str, topic: str) -> list[dict]:  # type: ignore[type-arg]
    return [msgspec.json.decode(v) for v in read_topic(bootstrap, topic)]


def event(n: int, session: str = "s1", target: str = "ls", **extra: object) -> dict:  # type: ignore[type-arg]
    return {
        "event_id": f"{session}:{n}",
        "ts": 1_767_225_600_000 + n * 1000,
        "session_id": session,
        "agent_id": "coder-1",
        "kind": "tool_call",
        "tool": "Bash",
        "target": target,
        **extra,
    }

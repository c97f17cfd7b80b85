"""Prometheus metrics, module-level and bounded.

Names follow ``agentwatch_<subsystem>_<name>_<unit>``. Label values come from small
closed sets (topic, format, reason, detector, severity, mode, outcome) — never a
session, agent or user id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "agentwatch_ingest_events_total", "Audit events decoded and processed.", ["topic", "format"]
)
MESSAGES = Counter(
    "agentwatch_ingest_messages_total", "Raw messages consumed.", ["topic", "format"]
)
DECODE_FAILURES = Counter(
    "agentwatch_ingest_decode_failures_total", "Records that could not be decoded.", ["format", "reason"]
)
DLQ_WRITES = Counter(
    "agentwatch_ingest_dlq_writes_total", "Records written to the dead-letter topic.", ["reason"]
)
BATCH_SECONDS = Histogram(
    "agentwatch_pipeline_batch_duration_seconds",
    "Wall time to process one polled batch, effects included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DETECTOR_SECONDS = Histogram(
    "agentwatch_detector_observe_duration_seconds",
    "Time one detector spends on one event (sampled).",
    ["detector"],
    buckets=(1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2),
)
FINDINGS = Counter(
    "agentwatch_detector_findings_total", "Findings returned by detectors.", ["detector", "mode"]
)
ALERTS = Counter(
    "agentwatch_alerts_total",
    "Alerts raised or escalated (shadow mode counted, not published).",
    ["detector", "severity", "mode"],
)
PLUGIN_ERRORS = Counter(
    "agentwatch_plugin_errors_total", "Exceptions raised by plugins (isolated).", ["plugin", "hook"]
)
SESSIONS_ACTIVE = Gauge("agentwatch_sessions_active", "Live sessions held in memory.")
SESSIONS_CLOSED = Counter(
    "agentwatch_sessions_closed_total", "Sessions closed, by why.", ["reason"]
)
CONSUMER_LAG = Gauge(
    "agentwatch_consumer_lag_messages", "High watermark minus position.", ["topic", "partition"]
)
KAFKA_RECONNECTS = Counter(
    "agentwatch_kafka_reconnects_total", "Times the monitor lost and re-established Kafka.", []
)

INCIDENTS_OPENED = Counter(
    "agentwatch_incidents_opened_total", "Incidents opened, by severity at opening.", ["severity"]
)
ACTIONS = Counter(
    "agentwatch_response_actions_total", "Playbook steps finished, by action and outcome.", ["action", "outcome"]
)
ACTION_SECONDS = Histogram(
    "agentwatch_response_action_duration_seconds", "Time an action takes to execute.", ["action"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TIME_TO_CONTAIN = Histogram(
    "agentwatch_time_to_contain_seconds",
    "First malicious event (wall clock, estimated from Kafka record time) to containment.",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0),
)

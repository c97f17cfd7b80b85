"""Prometheus metrics, module-level and bounded.

Names follow ``agentwatch_<subsystem>_<name>_<unit>``. Label values come from small
closed sets (topic, format, reason, detector, severity, mode, outcome) — never a
session or user id, and an agent id only hashed and capped (the hook decision counters).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from agentwatch import __version__

EVENTS = Counter("agentwatch_ingest_events_total", "Audit events decoded and processed.", ["topic", "format"])
MESSAGES = Counter("agentwatch_ingest_messages_total", "Raw messages consumed.", ["topic", "format"])
DECODE_FAILURES = Counter(
    "agentwatch_ingest_decode_failures_total", "Records that could not be decoded.", ["format", "reason"]
)
EVENTS_WITHOUT_TOOL_DETAILS = Counter(
    "agentwatch_ingest_events_without_tool_details_total",
    "Claude Code tool results whose input (file, URL) is unknown: OTEL_LOG_TOOL_DETAILS=1 is not set.",
)
REKEY_MESSAGES = Counter(
    "agentwatch_rekey_messages_total",
    "agentwatch rekey: Collector messages read (in), per-session messages written (out), written unkeyed.",
    ["direction"],
)
DLQ_WRITES = Counter("agentwatch_ingest_dlq_writes_total", "Records written to the dead-letter topic.", ["reason"])
FIELDS_DROPPED = Counter(
    "agentwatch_ingest_fields_dropped_total",
    "Malformed optional fields dropped from an event that was kept and scored (named in its "
    "attributes['agentwatch.invalid']); field is an optional number's name, or other.",
    ["field"],
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
FINDINGS = Counter("agentwatch_detector_findings_total", "Findings returned by detectors.", ["detector", "mode"])
ALERTS = Counter(
    "agentwatch_alerts_total",
    "Alerts raised or escalated (shadow mode counted, not published).",
    ["detector", "category", "severity", "mode"],
)
PLUGIN_ERRORS = Counter(
    "agentwatch_plugin_errors_total", "Exceptions raised by plugins (isolated).", ["plugin", "hook"]
)
SESSIONS_ACTIVE = Gauge("agentwatch_sessions_active", "Live sessions held in memory.")
SESSIONS_CLOSED = Counter("agentwatch_sessions_closed_total", "Sessions closed, by why.", ["reason"])
CONSUMER_LAG = Gauge("agentwatch_consumer_lag_messages", "High watermark minus position.", ["topic", "partition"])
KAFKA_RECONNECTS = Counter("agentwatch_kafka_reconnects_total", "Times the monitor lost and re-established Kafka.", [])
KAFKA_CONNECTED = Gauge(
    "agentwatch_kafka_connected", "1 while the monitor's consumer reaches Kafka, 0 during an outage."
)
BEST_EFFORT_FAILURES = Counter(
    "agentwatch_pipeline_best_effort_failures_total",
    "Periodic or best-effort steps that raised and were skipped (the loop carries on).",
    ["step"],
)

NOTIFICATIONS = Counter(
    "agentwatch_notifications_total",
    "Incident changes per notifier, by outcome: sent, failed (an attempt; retried), dropped (gave up after "
    "max_attempts), filtered (below the notifier's min_severity).",
    ["notifier", "outcome"],
)
INCIDENTS_OPENED = Counter(
    "agentwatch_incidents_opened_total", "Incidents opened, by severity at opening.", ["severity"]
)
for _severity in ("info", "low", "medium", "high", "critical"):  # zero from the start: the first one counts
    INCIDENTS_OPENED.labels(_severity)
ACTIONS = Counter(
    "agentwatch_response_actions_total", "Playbook steps finished, by action and outcome.", ["action", "outcome"]
)
ACTION_SECONDS = Histogram(
    "agentwatch_response_action_duration_seconds",
    "Time an action takes to execute.",
    ["action"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TIME_TO_CONTAIN = Histogram(
    "agentwatch_time_to_contain_seconds",
    "First malicious event (wall clock, estimated from Kafka record time) to containment.",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0),
)
TIME_TO_DETECT = Histogram(
    "agentwatch_time_to_detect_seconds",
    "First malicious event (wall clock, estimated from Kafka record time) to the incident's first alert.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 30.0, 60.0, 300.0, 1800.0),
)
SESSION_STATE_BYTES = Gauge("agentwatch_session_state_bytes", "Estimated memory held by live session state (sampled).")
STATE_CHECKPOINT_SECONDS = Histogram(
    "agentwatch_state_checkpoint_duration_seconds",
    "Time to write one batch's session state and consumed position to the store.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
STATE_SESSIONS_RESTORED = Counter(
    "agentwatch_state_sessions_restored_total", "Sessions loaded from the store when their partition was assigned."
)
BASELINE_AGENTS = Gauge(
    "agentwatch_baseline_agents",
    "Agents a learned detector holds a profile for, by whether the baseline is ready (cold start is visible).",
    ["detector", "state"],
)
TOOL_CALLS_BY_TIER = Counter(
    "agentwatch_tool_calls_by_tier_total",
    "Tool calls by consequence tier (agentwatch.detect.consequence); tier=unknown counts unclassified tools.",
    ["tier"],
)
COLD_START_FINDINGS = Counter(
    "agentwatch_cold_start_findings_total",
    "Findings on agents without a baseline yet, by the consequence tier of the call (novelty's cold-start table).",
    ["detector", "tier"],
)
INFO = Gauge("agentwatch_build_info", "Constant 1, labelled with the running version.", ["version"])
INFO.labels(__version__).set(1)

# -- approvals (agentwatch.approve) ---------------------------------------------------------------
# Approval rate: rate(agentwatch_approvals_decisions_total{outcome="approved"}) over all outcomes.
APPROVALS_REQUESTED = Counter(
    "agentwatch_approvals_requested_total", "Human approvals requested for a gated action.", ["action"]
)
APPROVAL_DECISIONS = Counter(
    "agentwatch_approvals_decisions_total",
    "Approvals closed, by outcome (approved, denied, expired, cancelled).",
    ["action", "outcome"],
)
APPROVAL_ATTEMPTS = Counter(
    "agentwatch_approvals_attempts_total",
    "Approve/deny attempts, by outcome (approve, deny, or the refusal reason).",
    ["action", "outcome"],
)
APPROVAL_SECONDS = Histogram(
    "agentwatch_approvals_time_to_decision_seconds",
    "Request shown to a human → final decision (approved or denied).",
    ["action", "outcome"],
    buckets=(1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0),
)
APPROVAL_FAST_VOTES = Counter(
    "agentwatch_approvals_fast_votes_total",
    "Votes cast sooner after the request was shown than the configured reading time (approval fatigue).",
    ["action", "outcome"],
)
APPROVAL_EXECUTIONS = Counter(
    "agentwatch_approvals_executions_total",
    "Gated actions run after approval, by outcome (done, failed).",
    ["action", "outcome"],
)
APPROVAL_EXECUTION_SECONDS = Histogram(
    "agentwatch_approvals_execution_latency_seconds",
    "Deciding request received → gated action executed.",
    ["action"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
APPROVAL_NOTIFICATIONS = Counter(
    "agentwatch_approvals_slack_calls_total",
    "Slack Web API calls for approvals, by outcome (posted, updated, thread, failed, ratelimited).",
    ["outcome"],
)
NOTIFY_SLACK_CALLS = Counter(
    "agentwatch_notify_slack_calls_total",
    "Slack Web API calls of the incident notifier, by outcome (posted, updated, failed, ratelimited).",
    ["outcome"],
)
APPROVAL_INTERACTIONS = Counter(
    "agentwatch_approvals_interactions_total",
    "Requests to /slack/interactions, by outcome (accepted, bad_signature, stale, replay, oversize, timeout, "
    "malformed, missing_user, ignored).",
    ["outcome"],
)

# -- serve's Claude Code hook endpoint (agentwatch.observe.hook_gate) -------------------------
# ``rule`` is a detector name (configuration-bounded), ``containment:<kind>`` or ``none``; ``agent`` is one of
# the first ``[hooks] max_agent_labels`` agent ids seen (reduced to a short hash), then ``other``.
HOOK_DECISIONS = Counter(
    "agentwatch_hook_decisions_total",
    "PreToolUse decisions serve answered, by decision and the rule that decided it.",
    ["decision", "rule"],
)
HOOK_DECISIONS_BY_AGENT = Counter(
    "agentwatch_hook_agent_decisions_total",
    "PreToolUse decisions serve answered, by decision and agent (hashed, capped: see [hooks] max_agent_labels).",
    ["decision", "agent"],
)
HOOK_EVENTS = Counter(
    "agentwatch_hook_events_total",
    "Hook events serve received, by event and what became of them.",
    ["event", "outcome"],
)
HOOK_DECISION_SECONDS = Histogram(
    "agentwatch_hook_decision_seconds",
    "Time from a hook request's body being read to its answer (decode, detection, containment lookup).",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)

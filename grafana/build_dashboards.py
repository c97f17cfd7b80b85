"""Generate agentwatch's Grafana dashboards (JSON) from one Python description.

    python grafana/build_dashboards.py          # rewrite grafana/dashboards/*.json
    python grafana/build_dashboards.py --check  # exit 1 if the committed JSON is stale

Every panel query is plain PromQL over metrics agentwatch exports (windows are literal,
so the same text runs through Prometheus's HTTP API in tests/test_prometheus_live.py,
which also checks every metric name against a live exposition).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "agentwatch-prometheus"}


def q(expr: str, legend: str = "") -> dict[str, Any]:
    return {"expr": expr, "legendFormat": legend}


def panel(
    title: str,
    targets: list[dict[str, Any]],
    kind: str = "timeseries",
    unit: str = "short",
    width: int = 8,
    height: int = 8,
    description: str = "",
) -> dict[str, Any]:
    return {
        "title": title,
        "type": kind,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "gridPos": {"w": width, "h": height},
        "options": {},
    }


def quantiles(metric: str, by: str = "") -> list[dict[str, Any]]:
    group = f"le{', ' + by if by else ''}"
    legend = "{{" + by + "}} " if by else ""
    return [
        q(f"histogram_quantile({p}, sum by ({group}) (rate({metric}_bucket[5m])))", f"{legend}p{int(p * 100)}")
        for p in (0.5, 0.95, 0.99)
    ]


SOC = (
    "agentwatch — SOC overview",
    "agentwatch-soc",
    [
        panel(
            "Time to contain (first malicious event → contained)",
            quantiles("agentwatch_time_to_contain_seconds"),
            unit="s",
            description="Dwell time: the number that matters most. SLO: 99% within 1 s.",
        ),
        panel(
            "Time to detect (first malicious event → alert)", quantiles("agentwatch_time_to_detect_seconds"), unit="s"
        ),
        panel(
            "Open incidents by severity",
            [q('max by (severity) (agentwatch_incidents{status="open"})', "{{severity}}")],
            kind="bargauge",
        ),
        panel(
            "Containment waiting on humans",
            [
                q('max(agentwatch_approvals{status="pending"})', "approvals pending"),
                q('max(agentwatch_incidents{status="contained"})', "contained, not resolved"),
            ],
            kind="stat",
        ),
        panel(
            "Alerts by detector (published)",
            [q('sum by (detector) (rate(agentwatch_alerts_total{mode!="shadow"}[5m]))', "{{detector}}")],
            unit="ops",
        ),
        panel(
            "Threat categories alerting (coverage, last hour)",
            [q('sum by (category) (increase(agentwatch_alerts_total{mode!="shadow"}[1h]))', "{{category}}")],
            kind="bargauge",
        ),
        panel(
            "Events per second",
            [q("sum by (topic) (rate(agentwatch_ingest_events_total[5m]))", "{{topic}}")],
            unit="ops",
        ),
        panel("Consumer lag", [q("sum by (topic) (agentwatch_consumer_lag_messages)", "{{topic}}")]),
        panel(
            "Incidents opened",
            [q("sum by (severity) (increase(agentwatch_incidents_opened_total[1h]))", "{{severity}}")],
        ),
    ],
)

DETECTORS = (
    "agentwatch — detector health",
    "agentwatch-detectors",
    [
        panel(
            "Per-detector latency p99 (sampled)",
            [
                q(
                    "histogram_quantile(0.99, sum by (le, detector) "
                    "(rate(agentwatch_detector_observe_duration_seconds_bucket[5m])))",
                    "{{detector}}",
                )
            ],
            unit="s",
        ),
        panel(
            "Plugin errors",
            [q("sum by (plugin, hook) (increase(agentwatch_plugin_errors_total[5m]))", "{{plugin}} {{hook}}")],
        ),
        panel(
            "Shadow vs. published alerts (judge a rollout)",
            [q("sum by (detector, mode) (increase(agentwatch_alerts_total[1h]))", "{{detector}} {{mode}}")],
            kind="bargauge",
        ),
        panel(
            "Findings by detector",
            [q("sum by (detector) (rate(agentwatch_detector_findings_total[5m]))", "{{detector}}")],
            unit="ops",
        ),
        panel(
            "Dead letters by reason",
            [q("sum by (reason) (rate(agentwatch_ingest_dlq_writes_total[5m]))", "{{reason}}")],
            unit="ops",
        ),
        panel(
            "Claude Code events without tool details",
            [q("sum(rate(agentwatch_ingest_events_without_tool_details_total[5m]))", "events/s")],
            unit="ops",
            description="Tool results whose file or URL is unknown because OTEL_LOG_TOOL_DETAILS=1 is not set: "
            "secret-access and exfiltration rules cannot fire on them. Should be 0 (README, Connect Claude Code).",
        ),
        panel("Batch processing time", quantiles("agentwatch_pipeline_batch_duration_seconds"), unit="s"),
        panel("Live sessions", [q("sum(agentwatch_sessions_active)", "sessions")]),
        panel("Session state memory", [q("sum(agentwatch_session_state_bytes)", "bytes")], unit="bytes"),
        panel(
            "Kafka reconnects", [q("sum(increase(agentwatch_kafka_reconnects_total[1h]))", "reconnects")], kind="stat"
        ),
    ],
)

RESPONSE = (
    "agentwatch — response",
    "agentwatch-response",
    [
        panel(
            "Actions by type and outcome",
            [q("sum by (action, outcome) (increase(agentwatch_response_actions_total[1h]))", "{{action}} {{outcome}}")],
            kind="bargauge",
        ),
        panel(
            "Action duration p95",
            [
                q(
                    "histogram_quantile(0.95, sum by (le, action) "
                    "(rate(agentwatch_response_action_duration_seconds_bucket[5m])))",
                    "{{action}}",
                )
            ],
            unit="s",
        ),
        panel(
            "Playbook steps by status",
            [q("max by (status) (agentwatch_response_steps)", "{{status}}")],
            kind="bargauge",
        ),
        panel(
            "Incidents by status",
            [q("sum by (status) (max by (status, severity) (agentwatch_incidents))", "{{status}}")],
            kind="bargauge",
        ),
    ],
)

DECIDED = 'status=~"approved|running|executed|failed|denied"'
APPROVAL_PANELS: list[dict[str, Any]] = [
    panel("Approvals by status", [q("max by (status) (agentwatch_approvals)", "{{status}}")], kind="bargauge"),
    panel(
        "Approval rate (fatigue: field reports ~93%)",
        [
            q(
                'sum(max by (status) (agentwatch_approvals{status=~"approved|running|executed|failed"})) / '
                f"sum(max by (status) (agentwatch_approvals{{{DECIDED}}}))",
                "approved / decided",
            )
        ],
        kind="stat",
        unit="percentunit",
    ),
    panel(
        "Time to decision",
        [q("max by (quantile) (agentwatch_approvals_decision_seconds)", "p{{quantile}}")],
        kind="bargauge",
        unit="s",
    ),
    panel(
        "Decisions faster than the reading time",
        [q("max(agentwatch_approvals_fast_decisions)", "too fast")],
        kind="stat",
        description="Approvals clicked before anyone could have read the request.",
    ),
    panel(
        "Approval attempts by outcome (refusals included)",
        [q("sum by (outcome) (increase(agentwatch_approvals_attempts_total[1h]))", "{{outcome}}")],
    ),
]


def dashboard(title: str, uid: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    laid_out = []
    x = y = 0
    for number, p in enumerate(panels, start=1):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24:
            x, y = 0, y + h
        laid_out.append({**p, "id": number, "gridPos": {"x": x, "y": y, "w": w, "h": h}})
        x += w
    return {
        "uid": uid,
        "title": title,
        "tags": ["agentwatch"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": laid_out,
    }


def build() -> dict[str, dict[str, Any]]:
    response_title, response_uid, response_panels = RESPONSE
    return {
        "soc-overview.json": dashboard(*SOC),
        "detector-health.json": dashboard(*DETECTORS),
        "response.json": dashboard(response_title, response_uid, response_panels + APPROVAL_PANELS),
    }


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    OUT.mkdir(exist_ok=True)
    for name, board in build().items():
        path = OUT / name
        text = render(board)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale dashboards (run python grafana/build_dashboards.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generate agentwatch's Grafana dashboards (JSON) from one Python description.

    python grafana/build_dashboards.py          # rewrite grafana/dashboards/*.json
    python grafana/build_dashboards.py --check  # exit 1 if the committed JSON is stale

Every panel query is PromQL over metrics agentwatch exports. The dashboards import into an
existing Grafana: the Prometheus datasource is a variable (``$datasource``), every selector is
scoped to the ``$job`` and ``$instance`` variables (default: all), and short rate windows
are ``$__rate_interval``. :func:`expand` fills those in the way Grafana does, so the same
text runs through Prometheus's HTTP API in tests/test_prometheus_live.py (which also checks
every metric name against a live exposition).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: The agentwatch store (PostgreSQL), read through the redacted ``incidents_dashboard`` view.
STORE = {"type": "grafana-postgresql-datasource", "uid": "${store}"}
INCIDENTS_SQL = """SELECT incident_id AS "incident", to_timestamp(opened_ms / 1000.0) AS "opened",
  severity, status, categories::text AS "categories", agent, session, principal,
  time_to_contain_s AS "time to contain"
FROM incidents_dashboard
WHERE $__unixEpochFilter(opened_ms / 1000)
ORDER BY opened_ms DESC
LIMIT 500"""
#: Every agentwatch metric selector gets these matchers (the job/instance variables).
SCOPE = 'job=~"$job", instance=~"$instance"'
_SELECTOR = re.compile(r"\b(agentwatch_[a-z_]+)(\{[^}]*\})?")


def scoped(expr: str) -> str:
    """``expr`` with every agentwatch selector limited to the dashboard's job and instance.

    >>> scoped('rate(agentwatch_x_total{mode="a"}[$__rate_interval])')
    'rate(agentwatch_x_total{job=~"$job", instance=~"$instance", mode="a"}[$__rate_interval])'
    >>> scoped("sum(agentwatch_y)")
    'sum(agentwatch_y{job=~"$job", instance=~"$instance"})'
    """

    def add(match: re.Match[str]) -> str:
        inner = (match.group(2) or "{}")[1:-1].strip()
        return f"{match.group(1)}{{{SCOPE}{', ' + inner if inner else ''}}}"

    return _SELECTOR.sub(add, expr)


def expand(expr: str, job: str = ".*", instance: str = ".*", rate_interval: str = "1m") -> str:
    """A panel query with the dashboard variables filled in, as Grafana sends it.

    >>> expand('rate(agentwatch_x_total{job=~"$job", instance=~"$instance"}[$__rate_interval])')
    'rate(agentwatch_x_total{job=~".*", instance=~".*"}[1m])'
    """
    return expr.replace("$__rate_interval", rate_interval).replace("$job", job).replace("$instance", instance)


def q(expr: str, legend: str = "") -> dict[str, Any]:
    return {"expr": scoped(expr.replace("[5m]", "[$__rate_interval]")), "legendFormat": legend, "refId": "A"}


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    """Grafana thresholds: ``(None, "green"), (1, "red")`` — base colour, then from each value up."""
    return {"mode": "absolute", "steps": [{"value": value, "color": color} for value, color in steps]}


def panel(
    title: str,
    targets: list[dict[str, Any]],
    kind: str = "timeseries",
    unit: str = "short",
    width: int = 8,
    height: int = 8,
    description: str = "",
    limits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if limits is not None:  # an SLO panel: the threshold drawn on the graph, the stat coloured by it
        defaults["thresholds"] = limits
        defaults["custom"] = {"thresholdsStyle": {"mode": "line+area"}} if kind == "timeseries" else {}
        defaults["color"] = {"mode": "thresholds"} if kind != "timeseries" else {"mode": "palette-classic"}
    for number, target in enumerate(targets):
        target["refId"] = chr(ord("A") + number)
    return {
        "title": title,
        "type": kind,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
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


def incidents_table() -> dict[str, Any]:
    """Incidents from the store (newest first, in the dashboard's time range), severity coloured."""
    colours = {"critical": "dark-red", "high": "red", "medium": "orange", "low": "yellow", "info": "blue"}
    return {
        "title": "Incidents (from the store; identifiers redacted)",
        "type": "table",
        "description": "agentwatch incidents, read-only through the incidents_dashboard view. "
        "`agentwatch incidents show <id>` or GET /v1/incidents/<id> for the whole record.",
        "datasource": STORE,
        "targets": [{"refId": "A", "format": "table", "rawQuery": True, "editorMode": "code", "rawSql": INCIDENTS_SQL}],
        "fieldConfig": {
            "defaults": {"custom": {"cellOptions": {"type": "auto"}, "filterable": True}},
            "overrides": [
                {
                    "matcher": {"id": "byName", "options": "severity"},
                    "properties": [
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                        {
                            "id": "mappings",
                            "value": [
                                {
                                    "type": "value",
                                    "options": {
                                        k: {"color": v, "index": i} for i, (k, v) in enumerate(colours.items())
                                    },
                                }
                            ],
                        },
                    ],
                },  # fmt: skip
                {
                    "matcher": {"id": "byName", "options": "time to contain"},
                    "properties": [{"id": "unit", "value": "s"}],
                },
            ],
        },
        "gridPos": {"w": 24, "h": 10},
        "options": {"showHeader": True, "sortBy": [{"displayName": "opened", "desc": True}]},
    }


SOC = (
    "agentwatch — SOC overview",
    "agentwatch-soc",
    [
        panel(
            "Time to contain (first malicious event → contained)",
            quantiles("agentwatch_time_to_contain_seconds"),
            unit="s",
            description="Dwell time: the number that matters most. SLO: 99% within 1 s.",
            limits=thresholds((None, "green"), (1, "red")),
        ),
        panel(
            "Time to detect (first malicious event → alert)",
            quantiles("agentwatch_time_to_detect_seconds"),
            unit="s",
            description="Detection within the batch: alerts are published before offsets commit.",
            limits=thresholds((None, "green"), (0.25, "orange"), (1, "red")),
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
        panel(
            "Consumer lag",
            [q("sum by (topic) (agentwatch_consumer_lag_messages)", "{{topic}}")],
            description="Events waiting to be verified; the AgentwatchConsumerLagGrowing rule pages above 10k.",
            limits=thresholds((None, "green"), (1000, "orange"), (10000, "red")),
        ),
        panel(
            "Incidents opened",
            [q("sum by (severity) (increase(agentwatch_incidents_opened_total[1h]))", "{{severity}}")],
        ),
        panel(
            "Claude Code hooks: ask rate (and deny rate)",
            [
                q(
                    'sum(increase(agentwatch_hook_decisions_total{decision="ask"}[1h])) '
                    "/ sum(increase(agentwatch_hook_decisions_total[1h]))",
                    "ask",
                ),
                q(
                    'sum(increase(agentwatch_hook_decisions_total{decision="deny"}[1h])) '
                    "/ sum(increase(agentwatch_hook_decisions_total[1h]))",
                    "deny",
                ),
            ],
            unit="percentunit",
            description="Share of PreToolUse decisions (last hour) that asked the developer or blocked. A guard "
            "that asks about everything is a guard people click through: watch the ask rate.",
        ),
        panel(
            "Claude Code hooks: asks and denies by rule (last hour)",
            [
                q(
                    'sum by (decision, rule) (increase(agentwatch_hook_decisions_total{decision!="allow"}[1h]))',
                    "{{decision}} {{rule}}",
                )
            ],
            kind="bargauge",
            description="Which rules make developers click (ask) or stop them (deny).",
        ),
        incidents_table(),
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
        description="Approvers who approve nearly everything are clicking through: above 93% is red.",
        limits=thresholds((None, "green"), (0.8, "orange"), (0.93, "red")),
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


def _label_variable(name: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": name,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-variable"},
        "definition": query,
        "refresh": 2,  # on time-range change
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


#: The datasource (pick your Prometheus when importing), then job and instance (default: all).
TEMPLATING: list[dict[str, Any]] = [
    {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {"selected": True, "text": "Prometheus", "value": "agentwatch-prometheus"},
        "refresh": 1,
    },
    {
        "name": "store",
        "label": "agentwatch store",
        "type": "datasource",
        "query": "grafana-postgresql-datasource",
        "current": {"selected": True, "text": "agentwatch store", "value": "agentwatch-store"},
        "refresh": 1,
    },
    _label_variable(
        "job", 'label_values({__name__=~"agentwatch_(ingest_events_total|incidents|response_actions_total)"}, job)'
    ),
    _label_variable("instance", 'label_values({__name__=~"agentwatch_.+", job=~"$job"}, instance)'),
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
        "templating": {"list": TEMPLATING},
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

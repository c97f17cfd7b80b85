"""The dashboards import into an existing Grafana (issue 15): the Prometheus datasource is a
variable, every query is scoped to the job/instance variables and uses ``$__rate_interval``
for short windows, and the SLO panels carry thresholds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from grafana.build_dashboards import expand, scoped

BOARDS = sorted((Path(__file__).resolve().parent.parent / "grafana" / "dashboards").glob("*.json"))
SELECTOR = re.compile(r"\bagentwatch_[a-z_]+(\{[^}]*\})?")


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.name)
def test_a_dashboard_imports_anywhere(path: Path) -> None:
    board = json.loads(path.read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    for panel in board["panels"]:
        for target in panel["targets"]:
            if "expr" not in target:
                assert target.get("rawSql"), panel["title"]  # the only other kind: SQL over the store
                continue
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            expr = target["expr"]
            for selector in SELECTOR.finditer(expr):
                assert 'job=~"$job", instance=~"$instance"' in (selector.group(1) or ""), (panel["title"], expr)
            windows = set(re.findall(r"\[([^\]]+)\]", expr))
            assert windows <= {"$__rate_interval", "1h"}, (panel["title"], windows)  # "last hour" panels stay 1h


def test_slo_panels_have_thresholds() -> None:
    soc = json.loads(next(p for p in BOARDS if p.name == "soc-overview.json").read_text())
    panels = {p["title"]: p for p in soc["panels"]}
    contain = panels["Time to contain (first malicious event → contained)"]["fieldConfig"]["defaults"]
    assert [s["value"] for s in contain["thresholds"]["steps"]] == [None, 1]  # SLO: within 1 s
    assert contain["custom"]["thresholdsStyle"]["mode"] != "off"
    assert panels["Consumer lag"]["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 10000


def test_scoping_and_expansion_round_trip() -> None:
    expr = scoped('sum(rate(agentwatch_alerts_total{mode!="shadow"}[$__rate_interval]))')
    assert expand(expr, job="agentwatch-monitor") == (
        'sum(rate(agentwatch_alerts_total{job=~"agentwatch-monitor", instance=~".*", mode!="shadow"}[1m]))'
    )

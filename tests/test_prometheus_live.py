"""A real Prometheus scrapes a live `agentwatch run` and `serve` fed by the simulator; every
dashboard panel's PromQL is executed through Prometheus's HTTP API and must return data,
and every metric name a panel uses must be in the live exposition."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_stack import LiveStack, prometheus_binary

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parent.parent
METRIC = re.compile(r"\bagentwatch_[a-z_]+\b")


def panel_queries() -> list[tuple[str, str, str]]:
    """Every PromQL panel query, its dashboard variables filled in as Grafana does (all jobs and instances)."""
    from grafana.build_dashboards import expand

    out = []
    for board in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(board.read_text())["panels"]:
            for target in panel["targets"]:
                if "expr" in target:  # SQL panels (the store's incidents table) are not PromQL
                    out.append((board.name, panel["title"], expand(target["expr"])))
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    if prometheus_binary() is None:
        pytest.fail("prometheus is not installed: `apt-get install prometheus` (.ci/run does it)")
    live = LiveStack(tmp_path_factory.mktemp("live")).start()
    try:
        live.feed(sessions=120, rate=600.0)
        live.wait_for(lambda: live.scrapes() >= 8, 60, "eight scrapes")
        live.wait_for(
            lambda: bool(live.query("sum(agentwatch_time_to_contain_seconds_count) > 0")),
            60,
            "a containment to be scraped",
        )
        time.sleep(3)
        yield live
    finally:
        live.stop()


def test_dashboards_are_generated_from_code_and_fresh() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / "grafana" / "build_dashboards.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_every_panel_names_only_exported_metrics(stack: LiveStack) -> None:
    exposition = stack.exposition()
    exported = set(re.findall(r"^(agentwatch_[a-z_]+)", exposition, flags=re.M))
    missing = sorted(
        {
            (board, name)
            for board, _title, expr in panel_queries()
            for name in METRIC.findall(expr)
            if name not in exported
        }
    )
    assert missing == []


def test_every_panel_query_returns_data(stack: LiveStack) -> None:
    empty = [(board, title, expr) for board, title, expr in panel_queries() if not stack.query(expr)]
    assert empty == []


def test_rules_load_into_prometheus(stack: LiveStack) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{stack.prometheus_url}/api/v1/rules", timeout=10) as response:
        groups = json.loads(response.read())["data"]["groups"]
    assert {rule["name"] for group in groups for rule in group["rules"]} >= {
        "AgentwatchMonitorDown",
        "AgentwatchConsumerLagGrowing",
        "AgentwatchDeadLetters",
        "AgentwatchPluginErrors",
        "AgentwatchContainmentSLOFastBurn",
    }

"""bench/run_bench.py: scenario names, sizes, budgets and verdicts, and tiny real runs on the shared broker.

The tiny runs check the plumbing (every figure present, the stores used and dropped, the
responder's backlog read back), never the figures themselves: those are the bench's.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from agentwatch.lab import simulator
from bench import run_bench
from bench.run_bench import SIZES, figures, parse_args, parse_scenarios, run, summarize_runs
from tests.conftest import PG_ADMIN_URL

SCENARIO_KEYS = {
    "bare_events_per_s",
    "run_events_per_s",
    "ratio",
    "backlog_throughput",
    "alert_p99_ms",
    "terminate_p99_ms",
    "backlog_latency",
}
VERDICTS = {"met", "met (stretch)", "missed", "no samples", ""}


def test_scenario_names_give_the_attack_share_and_the_store() -> None:
    scenarios = parse_scenarios("2pct-sqlite, 10pct-postgresql,2.5pct-sqlite")
    assert [(s.name, s.attack_ratio, s.store) for s in scenarios] == [
        ("2pct-sqlite", 0.02, "sqlite"),
        ("10pct-postgresql", 0.1, "postgresql"),
        ("2.5pct-sqlite", 0.025, "sqlite"),
    ]
    assert scenarios[1].label == "10% attacks, PostgreSQL"
    for bad in ("2-sqlite", "10pct-mysql", "101pct-sqlite", "2pct-sqlite,2pct-sqlite", " , "):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_scenarios(bad)


def test_defaults_are_the_issues_and_quick_shrinks_what_is_not_given() -> None:
    full = parse_args([])
    assert [s.name for s in full.scenarios] == ["2pct-sqlite", "10pct-sqlite", "10pct-postgresql"]
    assert (full.sessions, full.latency_sessions, full.memory_sessions, full.rate) == (4000, 1000, 100_000, 2000.0)
    quick = parse_args(["--quick", "--sessions", "50"])
    assert quick.sessions == 50
    assert (quick.latency_sessions, quick.memory_sessions) == (
        SIZES["latency_sessions"][1],
        SIZES["memory_sessions"][1],
    )


def _latency(alert: dict[str, Any], terminate: dict[str, Any], left: int = 0, tail_ms: int = 100) -> dict[str, Any]:
    return {
        "rate": 2000.0,
        "events": 1000,
        "event_to_alert_ms": alert,
        "event_to_terminate_ms": terminate,
        "backlog": {"steps": 10, "by_status": {"done": 10 - left, "pending": left}, "left": left, "tail_ms": tail_ms},
    }


def _scenario(name: str, ratio: float, latency: dict[str, Any], tail_ms: int = 0) -> dict[str, Any]:
    return {
        "scenario": name,
        "events": 1000,
        "throughput": {
            "bare_events_per_s": 100_000,
            "run_events_per_s": round(ratio * 100_000),
            "ratio": ratio,
            "alerts": 3,
            "stop_s": 0.1,
            "backlog": {"steps": 4, "by_status": {"done": 4}, "left": 0, "tail_ms": tail_ms},
        },
        "latency": latency,
    }


def test_each_figure_gets_its_budget_and_verdict() -> None:
    ok = {"n": 5, "p50": 40, "p99": 250, "max": 250}
    results: dict[str, Any] = {
        "scenarios": [
            _scenario("2pct-sqlite", 0.72, _latency(ok, {"n": 3, "p50": 90, "p99": 501, "max": 501})),
            _scenario("10pct-sqlite", 0.2, _latency({"n": 5, "p50": 40, "p99": 251, "max": 300}, {"n": 0}, left=1)),
            _scenario("10pct-postgresql", 0.39, _latency(ok, ok, tail_ms=60_000), tail_ms=59_999),
            _scenario("1pct-postgresql", 0.55, _latency(ok, ok)),
        ],
        "replay": {"scenario": "2pct-sqlite", "events_per_s": 29_999.6, "json_loads_events_per_s": 200_000.0},
        "memory": {"sessions": 100_001, "bytes_per_session": 4096, "rss_total_mib": 500.5, "rss_growth_mib": 390.6},
    }
    verdicts = {(f["scenario"], f["key"]): (f["budget"], f["verdict"]) for f in figures(results)}
    assert verdicts[("2pct-sqlite", "ratio")] == ("≥ 0.50 (stretch 0.70)", "met (stretch)")
    assert verdicts[("1pct-postgresql", "ratio")][1] == "met"  # the card's budget at ≤ 2% attacks
    assert verdicts[("10pct-sqlite", "ratio")] == ("", "")  # no budget at 10% on SQLite
    assert verdicts[("10pct-postgresql", "ratio")] == ("≥ 0.40", "missed")
    assert verdicts[("2pct-sqlite", "alert_p99_ms")] == ("p99 ≤ 250", "met")
    assert verdicts[("2pct-sqlite", "terminate_p99_ms")] == ("p99 ≤ 500", "missed")
    assert verdicts[("10pct-sqlite", "alert_p99_ms")][1] == "missed"
    assert verdicts[("10pct-sqlite", "terminate_p99_ms")][1] == "no samples"
    assert verdicts[("10pct-sqlite", "backlog_latency")][1] == "missed"  # a step never drained
    assert verdicts[("10pct-postgresql", "backlog_throughput")][1] == "met"
    assert verdicts[("10pct-postgresql", "backlog_latency")][1] == "missed"  # a minute-long tail
    assert verdicts[(None, "replay_events_per_s")] == ("≥ 30,000", "missed")
    assert verdicts[(None, "json_loads_events_per_s")] == ("", "")
    assert verdicts[(None, "bytes_per_idle_session")] == ("≤ 4,096", "met")
    assert verdicts[(None, "rss_total_mib")] == ("≤ 500 at 100,000", "missed")
    results["memory"]["sessions"] = 5000  # the total's budget is stated at 100,000 sessions only
    assert (None, "rss_total_mib") not in {(f["scenario"], f["key"]) for f in figures(results)}


def test_several_runs_report_min_median_max_and_the_median_runs_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    ok = {"n": 5, "p50": 40, "p99": 200, "max": 200}
    runs = []
    for ratio, replay in ((0.45, 31_000.0), (0.52, 29_000.0), (0.71, 30_500.0)):
        results: dict[str, Any] = {
            "scenarios": [_scenario("2pct-sqlite", ratio, _latency(ok, ok))],
            "replay": {"scenario": "2pct-sqlite", "events_per_s": replay, "json_loads_events_per_s": 1e5},
        }
        results["figures"] = figures(results)
        runs.append(results)
    summary = {(row["scenario"], row["key"]): row for row in summarize_runs(runs)}
    ratio_row = summary[("2pct-sqlite", "ratio")]
    assert (ratio_row["min"], ratio_row["median"], ratio_row["max"]) == (0.45, 0.52, 0.71)
    assert ratio_row["verdict"] == "met" and ratio_row["met_runs"] == 2 and ratio_row["runs"] == 3
    replay_row = summary[(None, "replay_events_per_s")]
    assert replay_row["median"] == 30_500 and replay_row["verdict"] == "met" and replay_row["met_runs"] == 2
    assert summary[(None, "json_loads_events_per_s")]["met_runs"] is None  # no budget, no count
    for results in runs:
        results.update(cpus=2, load_at_start=1.5)
    run_bench.print_summary(runs, list(summary.values()))
    printed = capsys.readouterr().out
    assert "3 runs" in printed and "met (met in 2/3)" in printed and "0.45" in printed and "0.71" in printed


def test_a_postgresql_scenario_without_a_server_fails_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--scenarios", "10pct-postgresql", "--pg-url", "postgresql+psycopg://nobody@127.0.0.1:1/postgres"]
    assert run_bench.main([*argv, "--bootstrap-servers", "127.0.0.1:1", "--memory-sessions", "0"]) == 2
    assert "no PostgreSQL server at" in capsys.readouterr().err


def _tiny(broker_servers: str, scenarios: str, *extra: str) -> argparse.Namespace:
    return parse_args(
        [
            "--scenarios",
            scenarios,
            "--sessions",
            "60",
            "--latency-sessions",
            "40",
            "--join-wait",
            "4",
            "--bootstrap-servers",
            broker_servers,
            *extra,
        ]
    )


def _check_scenario(results: dict[str, Any], name: str, attack_ratio: float) -> None:
    res = next(r for r in results["scenarios"] if r["scenario"] == name)
    assert res["events"] == len(simulator.simulate(seed=11, sessions=60, attack_ratio=attack_ratio).events)
    t = res["throughput"]
    assert t["run_events_per_s"] > 0 and t["bare_events_per_s"] > 0
    assert t["ratio"] == pytest.approx(t["run_events_per_s"] / t["bare_events_per_s"], abs=0.002)
    lat = res["latency"]
    assert lat["events"] == len(simulator.simulate(seed=12, sessions=40, attack_ratio=attack_ratio).events)
    for key in ("event_to_alert_ms", "event_to_terminate_ms"):
        ms = lat[key]
        assert ms["n"] > 0, key  # 10% of 40 sessions attack: each raises an alert and is terminated
        assert 0 <= ms["p50"] <= ms["p99"] <= ms["max"]
    for backlog in (t["backlog"], lat["backlog"]):
        # Stopping drains the responder: every planned step is finished, and the store says so.
        assert backlog["steps"] > 0 and backlog["left"] == 0
        assert sum(backlog["by_status"].values()) == backlog["steps"]
    keys = {f["key"] for f in results["figures"] if f["scenario"] == name}
    assert keys == SCENARIO_KEYS


@pytest.mark.broker
def test_a_tiny_sqlite_run_reports_every_figure_with_its_budget(broker) -> None:  # type: ignore[no-untyped-def]
    results = run(_tiny(broker.bootstrap_servers, "10pct-sqlite", "--memory-sessions", "300"))
    _check_scenario(results, "10pct-sqlite", 0.1)
    assert results["replay"]["events"] == results["scenarios"][0]["events"]  # the same fleet, from a file
    assert results["replay"]["json_loads_events_per_s"] > results["replay"]["events_per_s"] > 0
    assert results["memory"]["sessions"] == 301  # session_memory.py's warm-up session and the 300
    rows = results["figures"]
    assert all(f["verdict"] in VERDICTS for f in rows)
    assert all(f["verdict"] == "" or f["budget"] for f in rows)  # no verdict without a budget
    run_wide = {f["key"] for f in rows if f["scenario"] is None}
    assert run_wide == {"replay_events_per_s", "json_loads_events_per_s", "bytes_per_idle_session"}


@pytest.mark.broker
def test_a_postgresql_scenario_runs_on_throwaway_databases_it_drops(  # type: ignore[no-untyped-def]
    broker, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[str] = []
    original = run_bench.throwaway_postgres

    @contextlib.contextmanager
    def spy(admin_url: str, name: str) -> Iterator[str]:
        with original(admin_url, name) as url:
            created.append(name)
            yield url

    monkeypatch.setattr(run_bench, "throwaway_postgres", spy)
    results = run(
        _tiny(broker.bootstrap_servers, "10pct-postgresql", "--memory-sessions", "0", "--pg-url", PG_ADMIN_URL)
    )
    _check_scenario(results, "10pct-postgresql", 0.1)
    assert len(created) == 2 and all(name.endswith(("_throughput", "_latency")) for name in created)
    assert "memory" not in results
    admin = create_engine(PG_ADMIN_URL)
    with admin.connect() as conn:
        left = set(conn.execute(text("SELECT datname FROM pg_database")).scalars())
    admin.dispose()
    assert not left & set(created)

"""Metrics read from the store at scrape time — the same answer from every ``serve``.

Incidents by status and severity and playbook steps by status are facts of the store,
not of one process's counters, so ``agentwatch serve`` computes them per scrape with
two small GROUP BY queries (dashboards take ``max`` across servers).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from monitor.store import actions, incidents


class StoreCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_state = GaugeMetricFamily("agentwatch_incidents", "Incidents in the store, by status and severity.",
                                     labels=["status", "severity"])
        steps = GaugeMetricFamily("agentwatch_response_steps", "Playbook steps in the store, by status.",
                                  labels=["status"])
        with self.engine.connect() as conn:
            counts = {(status, severity): n for status, severity, n in conn.execute(
                select(incidents.c.status, incidents.c.severity, func.count()).group_by(
                    incidents.c.status, incidents.c.severity))}
            step_counts = dict(conn.execute(select(actions.c.status, func.count()).group_by(actions.c.status)).all())
        for status in ("open", "contained", "resolved"):
            for severity in ("info", "low", "medium", "high", "critical"):
                by_state.add_metric([status, severity], counts.get((status, severity), 0))
        for status in ("pending", "running", "done", "failed", "skipped"):
            steps.add_metric([status], step_counts.get(status, 0))
        yield by_state
        yield steps

"""Metrics read from the store at scrape time — the same answer from every ``serve``.

Incidents by status and severity and playbook steps by status are facts of the store,
not of one process's counters, so ``agentwatch serve`` computes them per scrape with
two small GROUP BY queries (dashboards take ``max`` across servers).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from agentwatch.store import actions, approvals, incidents

APPROVAL_STATUSES = ("pending", "approved", "running", "executed", "failed", "denied", "expired", "cancelled")
#: Time-to-decision quantiles are computed over the most recent decisions only.
DECISION_SAMPLE = 1000


class StoreCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_state = GaugeMetricFamily(
            "agentwatch_incidents", "Incidents in the store, by status and severity.", labels=["status", "severity"]
        )
        steps = GaugeMetricFamily(
            "agentwatch_response_steps", "Playbook steps in the store, by status.", labels=["status"]
        )
        with self.engine.connect() as conn:
            counts = {
                (status, severity): n
                for status, severity, n in conn.execute(
                    select(incidents.c.status, incidents.c.severity, func.count()).group_by(
                        incidents.c.status, incidents.c.severity
                    )
                )
            }
            step_counts: dict[str, int] = dict(
                conn.execute(select(actions.c.status, func.count()).group_by(actions.c.status)).all()
            )
        for status in ("open", "contained", "resolved"):
            for severity in ("info", "low", "medium", "high", "critical"):
                by_state.add_metric([status, severity], counts.get((status, severity), 0))
        for status in ("pending", "running", "done", "failed", "skipped"):
            steps.add_metric([status], step_counts.get(status, 0))
        yield by_state
        yield steps
        yield from self._approvals()

    def _approvals(self) -> Iterator[GaugeMetricFamily]:
        """Approvals as the store knows them, whichever process took the decision
        (Slack through ``serve``, or ``agentwatch approve`` on a laptop)."""
        by_status = GaugeMetricFamily("agentwatch_approvals", "Approvals in the store, by status.", labels=["status"])
        decision = GaugeMetricFamily(
            "agentwatch_approvals_decision_seconds",
            "Request → decision, over the most recent decisions.",
            labels=["quantile"],
        )
        fast = GaugeMetricFamily(
            "agentwatch_approvals_fast_decisions",
            "Decisions taken faster than the approval's reading time (approval fatigue).",
        )
        oldest = GaugeMetricFamily(
            "agentwatch_approvals_oldest_pending_seconds",
            "Age of the oldest approval still waiting for a decision (0: none waiting).",
        )
        with self.engine.connect() as conn:
            counts: dict[str, int] = dict(
                conn.execute(select(approvals.c.status, func.count()).group_by(approvals.c.status)).all()
            )
            rows = conn.execute(
                select(approvals.c.decided_ms - approvals.c.requested_ms, approvals.c.reading_time_ms)
                .where(approvals.c.decided_ms.is_not(None))
                .order_by(approvals.c.decided_ms.desc())
                .limit(DECISION_SAMPLE)
            ).all()
            first_pending = conn.execute(
                select(func.min(approvals.c.requested_ms)).where(approvals.c.status == "pending")
            ).scalar()
        for status in APPROVAL_STATUSES:
            by_status.add_metric([status], counts.get(status, 0))
        waits = sorted(max(0, wait) / 1000 for wait, _ in rows)
        for q in (0.5, 0.9, 0.99):
            decision.add_metric([str(q)], waits[min(len(waits) - 1, int(q * len(waits)))] if waits else 0.0)
        fast.add_metric([], sum(1 for wait, reading in rows if wait < reading))
        oldest.add_metric([], max(0.0, time.time() - first_pending / 1000) if first_pending else 0.0)
        yield by_status
        yield decision
        yield fast
        yield oldest

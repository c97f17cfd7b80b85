"""The periodic part: one round executes approved approvals, sweeps overdue ones, then tells people.

:meth:`ApprovalRuntime.tick` is run by the worker threads (:mod:`agentwatch.approve.worker`)
of ``agentwatch run`` and ``agentwatch serve``: execute approved approvals
(:mod:`agentwatch.approve.executor`), expire, escalate and cancel overdue ones
(:mod:`agentwatch.approve.sweeper`); then, off the execution path, rewrite postmortem drafts
and bring what approvers see up to date through an :class:`Outbox`.

Outboxes are how approvers are reached — Slack's (:class:`agentwatch.approve.slack.outbox.SlackOutbox`)
is wired in by :func:`agentwatch.approve.worker.approval_runtime`; this module knows only the
interface. The store is written first and the outbox told after, from the store, so a
failed call is retried with backoff — nothing is lost and nothing is auto-approved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.engine import Engine, Row

from agentwatch.approve import sweeper
from agentwatch.approve.executor import Executor, Outcome, Send
from agentwatch.approve.request import IN_FLIGHT_GRACE_MS, OPEN, now_ms
from agentwatch.respond.action_spec import Action
from agentwatch.respond.incident_queries import load_incident
from agentwatch.store import approvals, incidents

log = logging.getLogger(__name__)


class Outbox(Protocol):
    """Where approvers see approvals, kept in step with the store (one message per incident, …).

    ``slack_rev``/``slack_synced_rev`` on the approval row say what is behind: every change of
    an approval bumps ``slack_rev``; the outbox records what it has shown.
    """

    def flush(self) -> int:
        """Bring every incident that is behind (and not backing off) up to date; returns how many."""

    def sync_incident(self, incident_id: str) -> int:
        """Bring one incident up to date now; returns 1 when it did."""


@dataclass(slots=True)
class TickStats:
    executed: int = 0
    failed: int = 0
    escalated: int = 0
    expired: int = 0
    cancelled: int = 0
    synced: int = 0

    def count(self, outcome: Outcome | sweeper.Outcome) -> None:
        if outcome and outcome != "retrying":
            setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass
class ApprovalRuntime:
    """Executor, sweeper and outbox for one process.

    Parameters
    ----------
    send
        Delivers gated actions' control commands (waits for the broker's ack); without
        it, actions that publish (``needs_sender``) are left for a process that has one.
    outbox
        How approvers are told; ``None`` leaves messages unsent (the store keeps them pending).
    """

    engine: Engine
    data_dir: Path
    control_topic: str
    send: Send | None = None
    outbox: Outbox | None = None
    registry: dict[str, type[Action]] | None = None
    clock: Callable[[], int] = now_ms
    executor: Executor = field(init=False)
    _closed: set[str] = field(default_factory=set)  # incidents whose postmortem needs the new decisions
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.executor = Executor(
            self.engine, self.data_dir, self.control_topic, self.registry, self.clock, on_closed=self._postmortem_later
        )

    def tick(self, after_effects: bool = True) -> TickStats:
        """One round: execute approved, expire/escalate overdue; then (``after_effects``)
        rewrite postmortems and sync the outbox. Cheap when idle."""
        stats = TickStats()
        now = self.clock()
        for row in self._due(now):
            if row.status in ("approved", "running"):
                stats.count(self.executor.maybe_execute(row, now, self.send))
            elif row.status == "pending":
                outcome = sweeper.sweep(self.engine, row, now)
                stats.count(outcome)
                if outcome == "expired":
                    self._postmortem_later(row.incident_id)
        if after_effects:
            stats.synced = self.after_effects()
        return stats

    def execute(self, approval_id: str, now: int | None = None, stats: TickStats | None = None) -> bool:
        """Claim an approved approval and run its gated action once (``agentwatch approve`` does it at once)."""
        outcome = self.executor.execute(approval_id, self.send, now)
        if stats is not None:
            stats.count(outcome)
        return outcome == "executed"

    def action_class(self, name: str) -> type[Action] | None:
        return self.executor.action_class(name)

    def after_effects(self) -> int:
        """What follows decisions, off the execution path: postmortem drafts, then the outbox."""
        with self._lock:
            closed, self._closed = self._closed, set()
        for incident_id in sorted(closed):
            self.refresh_postmortem(incident_id)
        return 0 if self.outbox is None else self.outbox.flush()

    def sync_incident(self, incident_id: str) -> int:
        """Bring the incident's messages up to date now (``agentwatch approve|deny``)."""
        return 0 if self.outbox is None else self.outbox.sync_incident(incident_id)

    def _postmortem_later(self, incident_id: str) -> None:
        with self._lock:
            self._closed.add(incident_id)

    def _due(self, now: int) -> list[Row[Any]]:
        """Open approvals with something to do now: execute, expire, escalate, cancel."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(approvals, incidents.c.status.label("incident_status"))
                .join(incidents, incidents.c.incident_id == approvals.c.incident_id)
                .where(approvals.c.status.in_(OPEN))
                .order_by(approvals.c.requested_ms)
            ).all()
        return [r for r in rows if self._is_due(r, now)]

    @staticmethod
    def _is_due(row: Any, now: int) -> bool:
        if row.status == "approved":
            return row.next_attempt_ms is None or row.next_attempt_ms <= now
        if row.status == "running":
            return row.started_ms is not None and row.started_ms < now - IN_FLIGHT_GRACE_MS
        return row.expires_ms <= now or row.incident_status == "resolved"

    def refresh_postmortem(self, incident_id: str) -> None:
        """Rewrite the postmortem draft (if one was drafted) so it shows the decisions."""
        from agentwatch.respond.postmortem import write_postmortem

        with self.engine.connect() as conn:
            record = load_incident(conn, incident_id)
        draft = next(
            (
                a
                for a in record.actions
                if a.action == "draft_postmortem" and a.status == "done" and a.result.get("path")
            ),
            None,
        )
        if draft is None:
            return
        evidence = next(
            (
                Path(a.result["path"])
                for a in reversed(record.actions)
                if a.action == "collect_evidence" and a.status == "done" and a.result.get("path")
            ),
            None,
        )
        try:
            write_postmortem(record, Path(draft.result["path"]).parent.parent, evidence)
        except OSError as exc:
            log.warning("could not refresh the postmortem of %s: %s", incident_id, exc)

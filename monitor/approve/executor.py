"""The executor: runs an approved gated action once per claim, and records what happened.

An ``approved`` approval is claimed with a conditional ``UPDATE`` (``running``, one more
attempt), so of several executors (processes) exactly one runs it; a claim abandoned by a
crash is taken over after :data:`~agentwatch.approve.request.IN_FLIGHT_GRACE_MS`, so delivery
is at-least-once with idempotent effects (the control command id and the webhook request id
derive from the approval). The action gets ``ctx.settings["approval_id"]`` and checks the
claim itself (:func:`agentwatch.respond.gated_action_spec.require_approved`). Control
commands it returns are delivered by ``send`` (waiting for the broker's ack) before the
approval counts as executed. A failure is retried with backoff (1 s doubling, at most 60 s)
up to :data:`MAX_EXECUTION_ATTEMPTS`, then ``failed``.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec
from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection, Engine, Row

from agentwatch import backoff
from agentwatch.approve.request import IN_FLIGHT_GRACE_MS, now_ms
from agentwatch.approve.sweeper import cancel
from agentwatch.approve.votes import close_entry, touch
from agentwatch.observe import metrics
from agentwatch.respond import audit_log
from agentwatch.respond.action_spec import Action, ActionContext, ActionOutcome, OutgoingMessage
from agentwatch.respond.incident_lifecycle import add_timeline, set_status
from agentwatch.respond.incident_queries import load_incident
from agentwatch.respond.incident_record import IncidentRecord
from agentwatch.store import approvals

log = logging.getLogger(__name__)

MAX_EXECUTION_ATTEMPTS = 3

#: What one call did: ran it (``executed``), failed and will retry (``retrying``), failed for
#: good (``failed``), cancelled it (the incident was resolved), or nothing (not claimed, or
#: left to a process that can deliver its control commands).
Outcome = Literal["executed", "retrying", "failed", "cancelled", ""]
Send = Callable[[list[OutgoingMessage]], None]


@dataclass
class Executor:
    """Runs approved gated actions for one process.

    Parameters
    ----------
    registry
        Installed actions by name (default: every ``agentwatch.actions`` entry point).
    on_closed
        Told the incident of an approval that closed here (executed, or failed for good).
    """

    engine: Engine
    data_dir: Path
    control_topic: str
    registry: dict[str, type[Action]] | None = None
    clock: Callable[[], int] = now_ms
    on_closed: Callable[[str], None] = lambda incident_id: None
    _instances: dict[str, Action] = field(default_factory=dict)

    def action_class(self, name: str) -> type[Action] | None:
        if self.registry is None:
            from agentwatch.respond.playbook_engine import discover_actions

            self.registry = discover_actions()
        return self.registry.get(name)

    def maybe_execute(self, row: Row[Any], now: int, send: Send | None) -> Outcome:
        """A due ``approved`` (or abandoned ``running``) approval: cancel it if its incident was
        resolved, else run it — unless its action publishes and this process has no ``send``."""
        cls = self.action_class(row.action)
        if cls is not None and getattr(cls, "needs_sender", False) and send is None:
            return ""  # a process with a Kafka producer (the monitor, serve --bootstrap-servers) takes it
        if row.incident_status == "resolved" and row.status == "approved":
            return "cancelled" if cancel(self.engine, row, now) else ""
        return self.execute(row.approval_id, send, now)

    def execute(self, approval_id: str, send: Send | None, now: int | None = None) -> Outcome:
        """Claim an approved approval and run its gated action once; record the result."""
        now = self.clock() if now is None else now
        with self.engine.begin() as conn:
            claimed = conn.execute(
                approvals.update()
                .where(
                    approvals.c.approval_id == approval_id,
                    or_(
                        and_(
                            approvals.c.status == "approved",
                            or_(approvals.c.next_attempt_ms.is_(None), approvals.c.next_attempt_ms <= now),
                        ),
                        and_(approvals.c.status == "running", approvals.c.started_ms < now - IN_FLIGHT_GRACE_MS),
                    ),
                )
                .values(status="running", attempts=approvals.c.attempts + 1, started_ms=now, touched_ms=now)
            ).rowcount
            if claimed != 1:
                return ""
            row = conn.execute(select(approvals).where(approvals.c.approval_id == approval_id)).one()
            incident = load_incident(conn, row.incident_id)
        outcome, error = self._run(row, incident, now)
        if outcome is not None and outcome.messages:
            if send is None:
                outcome, error = None, f"{row.action} produced control commands but no Kafka sender is configured"
            else:
                try:
                    send(outcome.messages)
                except Exception as exc:  # noqa: BLE001 - a delivery failure is stored, retried, shown
                    outcome, error = None, f"delivery failed: {_describe(exc)}"
        finished = self.clock()
        with self.engine.begin() as conn:
            touch(conn, approval_id, finished)
            if outcome is not None:
                self._executed(conn, row, outcome, finished)
            else:
                self._failed(conn, row, error or "unknown failure", finished)
        if outcome is not None:
            metrics.APPROVAL_EXECUTIONS.labels(row.action, "done").inc()
            if row.received_ms is not None:
                metrics.APPROVAL_EXECUTION_SECONDS.labels(row.action).observe(max(0, finished - row.received_ms) / 1000)
            self.on_closed(row.incident_id)
            return "executed"
        if row.attempts >= MAX_EXECUTION_ATTEMPTS:
            metrics.APPROVAL_EXECUTIONS.labels(row.action, "failed").inc()
            self.on_closed(row.incident_id)
            return "failed"
        return "retrying"

    def _run(self, row: Row[Any], incident: IncidentRecord, now: int) -> tuple[ActionOutcome | None, str | None]:
        cls = self.action_class(row.action)
        if cls is None:
            return None, f"action {row.action!r} is not installed"
        action = self._instances.setdefault(row.action, cls())
        ctx = ActionContext(
            incident=incident,
            action_key=f"{row.step_key}:{row.action}",
            engine=self.engine,
            data_dir=self.data_dir,
            control_topic=self.control_topic,
            now_ms=now,
            settings={"approval_id": row.approval_id},
        )
        started = time.perf_counter()
        try:
            params = msgspec.convert(row.action_params, cls.params_type)
            return action.execute(ctx, params), None
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin is stored with its approval
            detail = _describe(exc)
            log.warning(
                "gated action %s for %s failed (attempt %d): %s", row.action, row.approval_id, row.attempts, detail
            )
            return None, detail
        finally:
            metrics.ACTION_SECONDS.labels(row.action).observe(time.perf_counter() - started)

    def _executed(self, conn: Connection, row: Row[Any], outcome: ActionOutcome, now: int) -> None:
        conn.execute(
            approvals.update()
            .where(approvals.c.approval_id == row.approval_id)
            .values(
                status="executed",
                executed_ms=now,
                result={"summary": outcome.summary, **outcome.result},
                error=None,
                slack_rev=approvals.c.slack_rev + 1,
            )
        )
        add_timeline(
            conn,
            row.incident_id,
            now,
            "action",
            "agentwatch",
            f"{row.action} (approved, {row.approval_id}): {outcome.summary}",
            {"approval_id": row.approval_id, "status": "executed"},
        )
        audit_log.append(
            conn,
            "agentwatch",
            "approval.executed",
            row.incident_id,
            {
                "approval_id": row.approval_id,
                "action": row.action,
                "result": outcome.result,
                "latency_ms": None if row.received_ms is None else now - row.received_ms,
            },
            now,
        )
        close_entry(conn, row, "executed", now, f"— {outcome.summary}", audit=False)
        if outcome.contains:
            set_status(conn, row.incident_id, "contained", "agentwatch", now, f"{row.action} (approved)")

    def _failed(self, conn: Connection, row: Row[Any], error: str, now: int) -> None:
        final = row.attempts >= MAX_EXECUTION_ATTEMPTS
        delay = round(1000 * backoff.delay(row.attempts, 1.0, 60.0))
        conn.execute(
            approvals.update()
            .where(approvals.c.approval_id == row.approval_id)
            .values(
                status="failed" if final else "approved",
                error=error,
                next_attempt_ms=None if final else now + delay,
                slack_rev=approvals.c.slack_rev + 1,
            )
        )
        text = (
            f"{row.action} (approved, {row.approval_id}) failed"
            + (" for good" if final else f", retrying in {delay // 1000} s")
            + f": {error}"
        )
        add_timeline(
            conn,
            row.incident_id,
            now,
            "action",
            "agentwatch",
            text,
            {"approval_id": row.approval_id, "status": "failed" if final else "retrying"},
        )
        audit_log.append(
            conn,
            "agentwatch",
            "approval.execution_failed",
            row.incident_id,
            {
                "approval_id": row.approval_id,
                "action": row.action,
                "error": error,
                "attempt": row.attempts,
                "final": final,
            },
            now,
        )
        if final:
            close_entry(conn, row, "failed", now, f"— {error}", audit=False)


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]

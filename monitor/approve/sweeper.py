"""The sweeper: what happens to an approval nobody decided on in time, or whose incident closed.

* the incident was resolved → ``cancelled`` (pending or approved; never executes);
* the level's ``timeout_s`` passed, ``on_timeout = "escalate"`` and levels are left → the next
  ``escalate_to`` level is mentioned and may decide, with a fresh timeout (still ``pending``);
* otherwise → ``expired``: never executes, never auto-approves.

Each transition is a conditional ``UPDATE``, so of several sweepers (processes) exactly one
wins it; the runtime (:mod:`agentwatch.approve.runtime`) calls these on due rows.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import and_
from sqlalchemy.engine import Engine, Row

from agentwatch.approve.votes import close_entry
from agentwatch.observe import metrics
from agentwatch.respond import audit_log
from agentwatch.respond.incident_lifecycle import add_timeline
from agentwatch.store import approvals

#: What a sweep did ("" for nothing).
Outcome = Literal["escalated", "expired", "cancelled", ""]


def sweep(engine: Engine, row: Row[Any], now: int) -> Outcome:
    """Cancel, escalate or expire one pending approval if its time came; returns what it did."""
    if row.incident_status == "resolved":
        return "cancelled" if cancel(engine, row, now) else ""
    if row.expires_ms > now:
        return ""
    level = row.escalation_level
    escalate = row.on_timeout == "escalate" and level < len(row.escalate_to)
    with engine.begin() as conn:
        base = and_(
            approvals.c.approval_id == row.approval_id,
            approvals.c.status == "pending",
            approvals.c.escalation_level == level,
            approvals.c.expires_ms <= now,
        )
        if escalate:
            changed = conn.execute(
                approvals.update()
                .where(base)
                .values(
                    escalation_level=level + 1,
                    expires_ms=now + row.timeout_ms,
                    touched_ms=now,
                    slack_rev=approvals.c.slack_rev + 1,
                )
            ).rowcount
            if changed:
                who = ", ".join(row.escalate_to[level])
                add_timeline(
                    conn,
                    row.incident_id,
                    now,
                    "decision",
                    "agentwatch",
                    f"no decision on {row.action} in {row.timeout_ms / 1000:g} s: escalated to {who}",
                    {"approval_id": row.approval_id, "level": level + 1},
                )
                audit_log.append(
                    conn,
                    "agentwatch",
                    "approval.escalated",
                    row.incident_id,
                    {
                        "approval_id": row.approval_id,
                        "action": row.action,
                        "level": level + 1,
                        "approvers": row.escalate_to[level],
                    },
                    now,
                )
            return "escalated" if changed else ""
        changed = conn.execute(
            approvals.update()
            .where(base)
            .values(status="expired", decided_ms=now, touched_ms=now, slack_rev=approvals.c.slack_rev + 1)
        ).rowcount
        if changed:
            close_entry(conn, row, "expired", now, "without a decision: nothing was executed")
    if not changed:
        return ""
    metrics.APPROVAL_DECISIONS.labels(row.action, "expired").inc()
    return "expired"


def cancel(engine: Engine, row: Row[Any], now: int) -> bool:
    """Cancel a pending or approved approval of a resolved incident; ``True`` when this call did."""
    with engine.begin() as conn:
        changed = conn.execute(
            approvals.update()
            .where(approvals.c.approval_id == row.approval_id, approvals.c.status.in_(("pending", "approved")))
            .values(
                status="cancelled",
                decided_ms=now,
                touched_ms=now,
                note="the incident was resolved",
                slack_rev=approvals.c.slack_rev + 1,
            )
        ).rowcount
        if changed:
            close_entry(conn, row, "cancelled", now, "because the incident was resolved")
    if changed:
        metrics.APPROVAL_DECISIONS.labels(row.action, "cancelled").inc()
    return bool(changed)

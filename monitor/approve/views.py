"""Approvals as read back: plain views of the rows and their votes (no rendering).

The CLI prints them (``incidents list/show``), notifiers render them (Slack's Block Kit in
:mod:`agentwatch.approve.slack.messages`), the interaction handler answers with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from agentwatch.events.audit_event import rfc3339_ms
from agentwatch.store import approval_votes, approvals


@dataclass(frozen=True, slots=True)
class VoteView:
    user_id: str
    channel: str  # slack | cli
    decision: str  # approve | deny
    ts_ms: int


@dataclass(frozen=True, slots=True)
class ApprovalView:
    approval_id: str
    action: str
    subject: dict[str, Any]
    quorum: int
    approvers: list[str]
    escalate_to: list[list[str]]
    escalation_level: int
    status: str
    expires_ms: int
    votes: list[VoteView] = field(default_factory=list)
    decided_ms: int | None = None
    result_summary: str | None = None
    error: str | None = None
    note: str | None = None

    @property
    def active_approvers(self) -> list[str]:
        """Approvers plus every escalation level reached so far."""
        extra = [i for level in self.escalate_to[: self.escalation_level] for i in level]
        return list(dict.fromkeys([*self.approvers, *extra]))


def to_view(row: Any, votes: list[Any]) -> ApprovalView:
    result = row.result or {}
    return ApprovalView(
        approval_id=row.approval_id,
        action=row.action,
        subject=dict(row.subject or {}),
        quorum=row.quorum,
        approvers=list(row.approvers),
        escalate_to=[list(level) for level in row.escalate_to],
        escalation_level=row.escalation_level,
        status=row.status,
        expires_ms=row.expires_ms,
        votes=[to_vote_view(v) for v in votes],
        decided_ms=row.decided_ms,
        result_summary=result.get("summary") if row.status == "executed" else None,
        error=row.error if row.status in ("failed", "approved") else None,
        note=row.note,
    )


def to_vote_view(vote: Any) -> VoteView:
    return VoteView(user_id=vote.user_id, channel=vote.channel, decision=vote.decision, ts_ms=vote.ts_ms)


def approval_view(conn: Connection, approval_id: str) -> ApprovalView | None:
    row = conn.execute(select(approvals).where(approvals.c.approval_id == approval_id)).first()
    if row is None:
        return None
    votes = conn.execute(select(approval_votes).where(approval_votes.c.approval_id == approval_id)).all()
    return to_view(row, list(votes))


def approvals_for(conn: Connection, incident_ids: list[str]) -> dict[str, list[ApprovalView]]:
    """Views of every approval of these incidents (for ``incidents list/show``)."""
    if not incident_ids:
        return {}
    rows = conn.execute(
        select(approvals).where(approvals.c.incident_id.in_(incident_ids)).order_by(approvals.c.requested_ms)
    ).all()
    votes = (
        conn.execute(
            select(approval_votes)
            .where(approval_votes.c.approval_id.in_([r.approval_id for r in rows]))
            .order_by(approval_votes.c.ts_ms)
        ).all()
        if rows
        else []
    )
    out: dict[str, list[ApprovalView]] = {}
    for row in rows:
        out.setdefault(row.incident_id, []).append(to_view(row, [v for v in votes if v.approval_id == row.approval_id]))
    return out


def approval_rows(conn: Connection, incident_id: str) -> list[dict[str, Any]]:
    """The incident's approvals as plain rows (``incidents show``, text and ``--json``)."""
    slack = {
        r.approval_id: r
        for r in conn.execute(
            select(
                approvals.c.approval_id, approvals.c.slack_ts, approvals.c.slack_error, approvals.c.slack_attempts
            ).where(approvals.c.incident_id == incident_id)
        )
    }
    rows = []
    for view in approvals_for(conn, [incident_id]).get(incident_id, []):
        post = slack[view.approval_id]
        rows.append(
            {
                "approval_id": view.approval_id,
                "action": view.action,
                "status": view.status,
                "approves": sum(v.decision == "approve" for v in view.votes),
                "quorum": view.quorum,
                "approvers": view.active_approvers,
                "escalation_level": view.escalation_level,
                "expires": rfc3339_ms(view.expires_ms),
                "subject": view.subject,
                "votes": [
                    {"user": v.user_id, "via": v.channel, "decision": v.decision, "at": rfc3339_ms(v.ts_ms)}
                    for v in view.votes
                ],
                "result": view.result_summary,
                "error": view.error,
                "note": view.note,
                "slack": _slack_state(post),
            }
        )
    return rows


def _slack_state(row: Any) -> str:
    if row.slack_error:
        return f"retrying after {row.slack_attempts} failure(s): {row.slack_error}"
    return "posted" if row.slack_ts else "not posted"


def annotate_list(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add ``pending_approvals`` (count) to each ``incidents list`` row."""
    views = approvals_for(conn, [r["incident_id"] for r in rows])
    for row in rows:
        row["pending_approvals"] = sum(v.status == "pending" for v in views.get(row["incident_id"], []))

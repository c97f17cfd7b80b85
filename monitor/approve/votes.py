"""Votes: who may decide, one person one vote, quorum, and every attempt on the record.

Rules (:func:`cast_vote`), every attempt — refused ones included — written to the audit
log and the incident timeline with its reason, in the transaction that decides it:

* only listed approvers count: user ids directly, group members via the directory
  (:class:`agentwatch.approve.directory.Directory`); a lookup that fails refuses (fail closed);
* separation of duties: the principal the agent acted for cannot decide on their own
  agent's incident — the approver's e-mail (from the directory) is compared with the
  incident's principal, case-insensitively; no e-mail, no vote;
* one person, one vote (the primary key is the approval and the approver's e-mail);
* no decision once the approval expired, was decided, or the incident was resolved;
* one deny from an authorised approver denies.

Every change starts with a conditional ``UPDATE`` of the approval row (:func:`touch`), which
takes the row lock (PostgreSQL) or the write lock (SQLite) first, so concurrent voters,
executors and sweepers in several processes serialise on it and exactly one of them wins a
transition.

Approval fatigue: each vote's time since the request was shown and whether it came
faster than ``reading_time_s`` are data on its ``decision`` timeline entry (and in its
text, which the postmortem shows), and Prometheus counts them
(``agentwatch_approvals_*``). :func:`close_entry` writes the figures of an approval that
closes, whoever closes it (a vote, the executor, the sweeper).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from agentwatch.approve.directory import GROUP_ID, Directory, IdentityUnavailable
from agentwatch.approve.request import OPEN, now_ms
from agentwatch.observe import metrics
from agentwatch.respond import audit_log
from agentwatch.respond.incident_lifecycle import add_timeline
from agentwatch.store import approval_votes, approvals, incidents

REFUSALS: dict[str, str] = {
    "unknown_approval": "there is no such approval",
    "incident_resolved": "the incident is resolved",
    "closed": "the approval is already closed",
    "expired": "the approval expired",
    "not_an_approver": "you are not an approver for this action",
    "identity_unavailable": "your identity could not be verified (fail closed)",
    "self_approval": "you are the principal this agent acted for and cannot decide on its containment",
    "duplicate_vote": "you already voted on this approval",
}


@dataclass(slots=True, frozen=True)
class VoteResult:
    accepted: bool
    reason: str  # the decision ("approve"/"deny") or a key of REFUSALS
    message: str
    approval_id: str
    action: str
    status: str  # the approval's status afterwards


def cast_vote(
    engine: Engine,
    approval_id: str,
    user: str,
    decision: Literal["approve", "deny"],
    *,
    directory: Directory,
    channel: str,
    now: int | None = None,
    received_ms: int | None = None,
    context: dict[str, Any] | None = None,
) -> VoteResult:
    """Record ``user``'s decision if the rules allow it; every attempt is audited.

    Identity lookups (network) happen before the deciding transaction; state is checked
    again under the row lock inside it.
    """
    now = now_ms() if now is None else now
    extra = dict(context or {})
    with engine.connect() as conn:
        row = _load(conn, approval_id)
    if row is None:
        return _refuse(engine, None, approval_id, user, decision, channel, "unknown_approval", None, now, extra)
    refusal = _state_refusal(row, now)
    if refusal:
        return _refuse(engine, row, approval_id, user, decision, channel, refusal, None, now, extra)
    refusal, detail, email = _authorize(row, user, directory)
    if refusal:
        return _refuse(engine, row, approval_id, user, decision, channel, refusal, detail, now, extra)
    assert email is not None
    try:
        with engine.begin() as conn:
            touch(conn, approval_id, now)
            row = _load(conn, approval_id)
            refusal = _state_refusal(row, now) or _duplicate(conn, approval_id, email)
            if refusal or row is None:
                result = _record_refusal(
                    conn, row, approval_id, user, decision, channel, refusal or "unknown_approval", None, now, extra
                )
            else:
                result = _record_vote(conn, row, user, email, decision, channel, now, received_ms, extra)
    except IntegrityError:  # a concurrent vote by the same person won the primary key
        return _refuse(engine, row, approval_id, user, decision, channel, "duplicate_vote", None, now, extra)
    _count_vote(row, result, decision, now)
    return result


def find_approval(conn: Connection, incident_id: str, action: str) -> Row[Any] | None:
    """The incident's approval for ``action``: the open one, else the latest."""
    rows = conn.execute(
        select(approvals)
        .where(approvals.c.incident_id == incident_id, approvals.c.action == action)
        .order_by(approvals.c.requested_ms.desc())
    ).all()
    return next((r for r in rows if r.status in OPEN), rows[0] if rows else None)


def _load(conn: Connection, approval_id: str) -> Row[Any] | None:
    return conn.execute(
        select(approvals, incidents.c.status.label("incident_status"), incidents.c.principal)
        .join(incidents, incidents.c.incident_id == approvals.c.incident_id, isouter=True)
        .where(approvals.c.approval_id == approval_id)
    ).first()


def touch(conn: Connection, approval_id: str, now: int) -> int:
    """Take the row (and, on SQLite, the database) lock before reading what to change."""
    return conn.execute(
        approvals.update().where(approvals.c.approval_id == approval_id).values(touched_ms=now)
    ).rowcount


def _state_refusal(row: Row[Any] | None, now: int) -> str | None:
    if row is None:
        return "unknown_approval"
    if row.incident_status == "resolved":
        return "incident_resolved"
    if row.status != "pending":
        return "closed"
    if now >= row.expires_ms:
        return "expired"
    return None


def active_approvers(row: Any) -> list[str]:
    extra = [i for level in row.escalate_to[: row.escalation_level] for i in level]
    return list(dict.fromkeys([*row.approvers, *extra]))


def _authorize(row: Row[Any], user: str, directory: Directory) -> tuple[str | None, str | None, str | None]:
    """``(refusal, detail, email)``: approver list, group membership, e-mail, separation of duties."""
    listed = active_approvers(row)
    if user not in listed:
        unverified = []
        for group in (g for g in listed if GROUP_ID.match(g)):
            try:
                if user in directory.group_members(group):
                    break
            except IdentityUnavailable as exc:
                unverified.append(str(exc))
        else:
            if unverified:
                return "identity_unavailable", "; ".join(unverified), None
            return "not_an_approver", None, None
    try:
        email = directory.email(user)
    except IdentityUnavailable as exc:
        return "identity_unavailable", str(exc), None
    principal = (row.principal or "").strip().casefold()
    if principal and principal in (email.strip().casefold(), user.casefold()):
        return "self_approval", None, email
    return None, None, email


def _duplicate(conn: Connection, approval_id: str, email: str) -> str | None:
    voted = conn.execute(
        select(approval_votes.c.voter).where(
            approval_votes.c.approval_id == approval_id, approval_votes.c.voter == email.casefold()
        )
    ).first()
    return "duplicate_vote" if voted else None


def _shown_ms(row: Any) -> int:
    posted = row.slack_posted_ms
    return posted if posted is not None and posted >= row.requested_ms else row.requested_ms


def _record_vote(
    conn: Connection,
    row: Row[Any],
    user: str,
    email: str,
    decision: str,
    channel: str,
    now: int,
    received_ms: int | None,
    extra: dict[str, Any],
) -> VoteResult:
    elapsed = max(0, now - _shown_ms(row))
    fast = elapsed < row.reading_time_ms
    conn.execute(
        approval_votes.insert().values(
            approval_id=row.approval_id,
            voter=email.casefold(),
            user_id=user,
            channel=channel,
            decision=decision,
            ts_ms=now,
            elapsed_ms=elapsed,
            announced=0,
        )
    )
    approves = (
        conn.execute(
            select(func.count())
            .select_from(approval_votes)
            .where(approval_votes.c.approval_id == row.approval_id, approval_votes.c.decision == "approve")
        ).scalar()
        or 0
    )
    status = "denied" if decision == "deny" else "approved" if approves >= row.quorum else "pending"
    values: dict[str, Any] = {"slack_rev": approvals.c.slack_rev + 1}
    if status != "pending":
        values.update(status=status, decided_ms=now, received_ms=received_ms or now)
    conn.execute(
        approvals.update()
        .where(approvals.c.approval_id == row.approval_id, approvals.c.status == "pending")
        .values(**values)
    )
    reading_s = row.reading_time_ms / 1000
    text = (
        f"{decision} of {row.action} by {user} via {channel}"
        + (f" ({approves}/{row.quorum})" if decision == "approve" else "")
        + f" after {elapsed / 1000:.1f} s"
        + (f" — faster than the {reading_s:g} s reading time" if fast else "")
    )
    data = {
        "approval_id": row.approval_id,
        "decision": decision,
        "channel": channel,
        "user_id": user,
        "elapsed_s": round(elapsed / 1000, 3),
        "reading_time_s": reading_s,
        "faster_than_reading_time": fast,
    }
    add_timeline(conn, row.incident_id, now, "decision", f"human:{user}", text, data)
    audit_log.append(
        conn,
        f"human:{user}",
        "approval.vote",
        row.incident_id,
        {**data, "action": row.action, "email": email, **extra},
        now,
    )
    if status != "pending":
        close_entry(conn, row, status, now, f"by {user}")
    return VoteResult(
        True,
        decision,
        f"{decision} recorded" + (f"; {row.action} {status}" if status != "pending" else f" ({approves}/{row.quorum})"),
        row.approval_id,
        row.action,
        status,
    )


def close_entry(conn: Connection, row: Any, outcome: str, now: int, why: str, audit: bool = True) -> None:
    """The decision that closes an approval, with its fatigue figures (timeline, and audit unless
    the caller's own record already says it)."""
    votes = conn.execute(select(approval_votes).where(approval_votes.c.approval_id == row.approval_id)).all()
    fast = sum(v.elapsed_ms < row.reading_time_ms for v in votes)
    decided_s = max(0, now - _shown_ms(row)) / 1000
    reading_s = row.reading_time_ms / 1000
    text = (
        f"approval of {row.action} {outcome} {why}; time to decision {decided_s:.1f} s, {len(votes)} vote(s), "
        f"{fast} faster than the {reading_s:g} s reading time"
    )
    data = {
        "approval_id": row.approval_id,
        "outcome": outcome,
        "time_to_decision_s": round(decided_s, 3),
        "votes": len(votes),
        "fast_votes": fast,
        "reading_time_s": reading_s,
    }
    add_timeline(conn, row.incident_id, now, "decision", "agentwatch", text, data)
    if audit:
        audit_log.append(
            conn, "agentwatch", f"approval.{outcome}", row.incident_id, {**data, "action": row.action}, now
        )


def audited(engine: Engine, write: Callable[[Connection], Any], attempts: int = 3) -> Any:
    """Run ``write`` (which appends to the audit log) in its own transaction.

    Where nothing else in the transaction took the write lock first, two SQLite writers
    can pick the same audit sequence number; the loser's primary key fails and it simply
    goes again (PostgreSQL serialises appends with an advisory lock).
    """
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                return write(conn)
        except IntegrityError:
            if attempt == attempts:
                raise
    return None


def _refuse(
    engine: Engine,
    row: Row[Any] | None,
    approval_id: str,
    user: str,
    decision: str,
    channel: str,
    reason: str,
    detail: str | None,
    now: int,
    extra: dict[str, Any],
) -> VoteResult:
    def write(conn: Connection) -> VoteResult:
        if row is not None:
            touch(conn, approval_id, now)
        return _record_refusal(conn, row, approval_id, user, decision, channel, reason, detail, now, extra)

    result = audited(engine, write)
    metrics.APPROVAL_ATTEMPTS.labels(row.action if row is not None else "unknown", reason).inc()
    return result


def _record_refusal(
    conn: Connection,
    row: Row[Any] | None,
    approval_id: str,
    user: str,
    decision: str,
    channel: str,
    reason: str,
    detail: str | None,
    now: int,
    extra: dict[str, Any],
) -> VoteResult:
    message = REFUSALS[reason] + (f": {detail}" if detail else "")
    action = row.action if row is not None else "unknown"
    data = {
        "approval_id": approval_id,
        "action": action,
        "decision": decision,
        "channel": channel,
        "user_id": user,
        "reason": reason,
        "detail": detail,
    }
    subject = row.incident_id if row is not None else f"approval:{approval_id[:64]}"
    audit_log.append(conn, f"human:{user}", "approval.refused", subject, {**data, **extra}, now)
    if row is not None:
        add_timeline(
            conn,
            row.incident_id,
            now,
            "decision",
            f"human:{user}",
            f"refused {decision} of {action} by {user} via {channel}: {message}",
            data,
        )
    return VoteResult(False, reason, message, approval_id, action, row.status if row is not None else "unknown")


def _count_vote(row: Any, result: VoteResult, decision: str, now: int) -> None:
    metrics.APPROVAL_ATTEMPTS.labels(row.action, result.reason).inc()
    if not result.accepted:
        return
    if now - _shown_ms(row) < row.reading_time_ms:
        metrics.APPROVAL_FAST_VOTES.labels(row.action, decision).inc()
    if result.status in ("approved", "denied"):
        metrics.APPROVAL_DECISIONS.labels(row.action, result.status).inc()
        metrics.APPROVAL_SECONDS.labels(row.action, result.status).observe(max(0, now - _shown_ms(row)) / 1000)

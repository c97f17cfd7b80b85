"""Human approval before gated containment: request, vote, execute, expire, tell Slack.

Automatic steps stop the session. Containment beyond it — revoking the agent's
credentials, quarantining its identity, blocking egress, disabling a tool — is a
*gated* action (``Action.gated = True``) that runs only after people with the right to
decide said yes. A ``request_approval`` playbook step (:class:`ApprovalRequest`) names
the gated action, who may approve (Slack user ids ``U…``/``W…`` and user-group ids
``S…``, or ``$ENV_VAR`` holding a comma-separated list of them), the quorum, a timeout
and what a timeout does.

Life of an approval (one row in ``approvals``; votes in ``approval_votes``)::

    pending ──quorum of approves──▶ approved ──executor claims──▶ running ──▶ executed | failed
       │ └──one deny─────────────▶ denied
       ├──timeout, on_timeout=escalate, levels left──▶ pending (next level mentioned and allowed)
       ├──final timeout──────────▶ expired          (never executes)
       └──incident resolved──────▶ cancelled

Rules (:func:`cast_vote`), every attempt — refused ones included — written to the audit
log and the incident timeline with its reason, in the transaction that decides it:

* only listed approvers count: user ids directly, group members via the directory
  (``usergroups.users.list``, cached briefly); a lookup that fails refuses (fail closed);
* separation of duties: the principal the agent acted for cannot decide on their own
  agent's incident — the approver's e-mail (``users.info`` → ``user.profile.email``, or
  the approvals file for the CLI) is compared with the incident's principal,
  case-insensitively; no e-mail, no vote;
* one person, one vote (the primary key is the approval and the approver's e-mail);
* no decision once the approval expired, was decided, or the incident was resolved;
* one deny from an authorised approver denies.

Every change starts with a conditional ``UPDATE`` of the approval row, which takes the
row lock (PostgreSQL) or the write lock (SQLite) first, so concurrent voters, executors
and sweepers in several processes serialise on it and exactly one of them wins a
transition. The gated action runs once per claim; a claim abandoned by a crash is taken
over after :data:`IN_FLIGHT_GRACE_MS`, so delivery is at-least-once with idempotent
effects (the control command id and the webhook request id are derived from the
approval).

:class:`ApprovalRuntime.tick` is the periodic part, run by the responder's worker
thread (``agentwatch run``) and by ``agentwatch serve``: execute approved approvals,
expire and escalate overdue ones, and bring the incident's Slack message up to date
(post once, ``chat.update`` in place, votes and results in its thread). Slack calls are
an outbox: the store is written first, Slack is told after, and a failed call is
retried with backoff from the store — nothing is lost and nothing is auto-approved.

Approval fatigue: each vote's time since the request was shown and whether it came
faster than ``reading_time_s`` are data on its ``decision`` timeline entry (and in its
text, which the postmortem shows), and Prometheus counts them
(``agentwatch_approvals_*``). The postmortem draft is rewritten when an approval closes.

The CLI's identity (``agentwatch approve … --as NAME``) comes from the approvals file
(:class:`ApprovalsFile`; ``$AGENTWATCH_APPROVALS_FILE``, default
``<data_dir>/approvals.toml``)::

    [users.U012ALICE]              # the id approvers are listed by (a Slack user id)
    email = "alice@example.com"    # compared with the incident's principal
    names = ["alice"]              # what --as may say instead of the id

    [groups.S0SECOPS]              # members of a user group, for when Slack is not configured
    members = ["U012ALICE", "U034BOB"]

``--as`` takes a Slack user id or one of its ``names``; without an entry, a Slack user
id is looked up in Slack when a bot token is configured, else refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import tomllib
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol

import msgspec
from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from agentwatch.approve.slack.messages import (
    GROUP_ID,
    USER_ID,
    ApprovalView,
    VoteView,
    details_text,
    incident_message,
    incident_view,
    state_note,
    vote_note,
)
from agentwatch.approve.slack.notifier import IdentityUnavailable, SlackNotifier, SlackRejected, SlackUnavailable
from agentwatch.errors import ConfigError
from agentwatch.events.audit_event import rfc3339_ms
from agentwatch.observe import metrics
from agentwatch.respond import audit_log
from agentwatch.respond.action_spec import (
    Action,
    ActionContext,
    ActionFailed,
    ActionOutcome,
    ActionParams,
    OutgoingMessage,
)
from agentwatch.respond.control import ControlCommand, command_id_for, public_command
from agentwatch.respond.incident_lifecycle import add_timeline, set_status
from agentwatch.respond.incident_queries import load_incident
from agentwatch.respond.incident_record import IncidentRecord
from agentwatch.store import approval_votes, approvals, incidents

log = logging.getLogger(__name__)

OPEN = ("pending", "approved", "running")
CLOSED = ("executed", "failed", "denied", "expired", "cancelled")
#: A claim (execution, Slack sync) older than this was abandoned by a crash.
IN_FLIGHT_GRACE_MS = 30_000
MAX_EXECUTION_ATTEMPTS = 3
SLACK_MAX_BACKOFF_MS = 300_000
_ENV_REF = re.compile(r"^\$[A-Za-z_][A-Za-z0-9_]*$")


def now_ms() -> int:
    return int(time.time() * 1000)


# -- the request_approval step's parameters ----------------------------------------------
class ApprovalRequest(ActionParams):
    """``request_approval`` parameters (checked when the playbook loads).

    Parameters
    ----------
    action
        The gated action to run once approved (an installed action with ``gated = True``).
    action_params
        Its parameters (validated against its ``params_type``).
    approvers
        Slack user ids (``U…``/``W…``), user-group ids (``S…``), or ``$ENV_VAR`` naming a
        comma-separated list of them (read when the approval is requested).
    quorum
        Distinct approvers needed (2 = "four eyes").
    timeout_s
        How long each level has to decide.
    on_timeout
        ``escalate``: mention and allow the next ``escalate_to`` level, then expire after
        the last; ``expire``: expire at once. Expired never executes.
    escalate_to
        One entry per escalation level, each ids or ``$ENV_VAR`` like ``approvers``.
    reading_time_s
        Decisions faster than this after the request was shown are counted as hasty.
    """

    action: str
    action_params: dict[str, Any] = msgspec.field(default_factory=dict)
    approvers: list[str] = msgspec.field(default_factory=list)
    quorum: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=7 * 86_400)] = 900.0
    on_timeout: Literal["escalate", "expire"] = "escalate"
    escalate_to: list[str] = msgspec.field(default_factory=list)
    reading_time_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 10.0

    def __post_init__(self) -> None:
        for entry in [*self.approvers, *self.escalate_to]:
            if not _ENV_REF.match(entry):
                bad = [i for i in _split_ids(entry) if not (USER_ID.match(i) or GROUP_ID.match(i))]
                if bad:
                    raise ValueError(
                        f"approver ids must be Slack user (U…/W…) or user-group (S…) ids or $ENV_VAR, not {bad}"
                    )
        from agentwatch.respond.playbook_engine import discover_actions

        cls = discover_actions().get(self.action)
        if cls is None:
            raise ValueError(f"unknown gated action {self.action!r}")
        if not getattr(cls, "gated", False):
            raise ValueError(f"action {self.action!r} is not gated; run it as a plain step")
        try:
            msgspec.convert(self.action_params, cls.params_type)
        except msgspec.ValidationError as exc:
            raise ValueError(f"action_params for {self.action}: {exc}") from None


def _split_ids(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def expand_ids(entries: list[str], environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Entries with ``$ENV_VAR`` expanded; returns ``(valid ids, problems)``.

    >>> expand_ids(["U1AA", "$APPROVERS", "$MISSING"], {"APPROVERS": "SSECOPS, bad id"})
    (['U1AA', 'SSECOPS'], ["APPROVERS: 'bad id' is not a Slack user or group id", 'MISSING is not set'])
    """
    ids: list[str] = []
    problems: list[str] = []
    for entry in entries:
        if _ENV_REF.match(entry):
            name = entry[1:]
            value = environ.get(name, "")
            if not value.strip():
                problems.append(f"{name} is not set")
                continue
            for part in _split_ids(value):
                if USER_ID.match(part) or GROUP_ID.match(part):
                    ids.append(part)
                else:
                    problems.append(f"{name}: {part!r} is not a Slack user or group id")
        else:
            ids.extend(_split_ids(entry))
    return list(dict.fromkeys(ids)), problems


def approval_id_for(step_key: str) -> str:
    return "apr-" + hashlib.sha256(step_key.encode()).hexdigest()[:20]


def request(
    conn: Connection,
    *,
    step_key: str,
    incident: IncidentRecord,
    params: ApprovalRequest,
    subject: dict[str, Any],
    now: int,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, bool]:
    """Record a pending approval for ``step_key`` (idempotent); returns ``(approval_id, created)``."""
    approval_id = approval_id_for(step_key)
    if conn.execute(select(approvals.c.approval_id).where(approvals.c.approval_id == approval_id)).first():
        return approval_id, False
    env = os.environ if environ is None else environ
    approvers, problems = expand_ids(params.approvers, env)
    levels: list[list[str]] = []
    for entry in params.escalate_to if params.on_timeout == "escalate" else []:
        ids, more = expand_ids([entry], env)
        problems += more
        if ids:
            levels.append(ids)
    if not approvers:
        problems.insert(0, "no approvers configured: nobody can approve, it will escalate or expire")
    note = "; ".join(problems) or None
    timeout_ms = int(params.timeout_s * 1000)
    conn.execute(
        approvals.insert().values(
            approval_id=approval_id,
            incident_id=incident.incident_id,
            step_key=step_key,
            action=params.action,
            action_params=params.action_params,
            subject=subject,
            approvers=approvers,
            escalate_to=levels,
            escalation_level=0,
            quorum=params.quorum,
            timeout_ms=timeout_ms,
            on_timeout=params.on_timeout,
            reading_time_ms=int(params.reading_time_s * 1000),
            status="pending",
            note=note,
            requested_ms=now,
            expires_ms=now + timeout_ms,
            touched_ms=now,
            attempts=0,
            result={},
            slack_rev=1,
            slack_synced_rev=0,
            slack_announced="",
            slack_attempts=0,
        )
    )
    text = (
        f"approval requested: {params.action} (quorum {params.quorum}, approvers "
        f"{', '.join(approvers) or 'none'}, expires in {params.timeout_s:g} s)"
    )
    if note:
        text += f" — {note}"
    add_timeline(
        conn,
        incident.incident_id,
        now,
        "decision",
        "agentwatch",
        text,
        {"approval_id": approval_id, "action": params.action, "quorum": params.quorum},
    )
    audit_log.append(
        conn,
        "agentwatch",
        "approval.requested",
        incident.incident_id,
        {
            "approval_id": approval_id,
            "action": params.action,
            "quorum": params.quorum,
            "approvers": approvers,
            "escalate_to": levels,
            "subject": subject,
            "note": note,
        },
        now,
    )
    metrics.APPROVALS_REQUESTED.labels(params.action).inc()
    return approval_id, True


# -- who is who -----------------------------------------------------------------------
class Directory(Protocol):
    """Identity lookups; every method raises :class:`IdentityUnavailable` when it cannot tell."""

    def resolve(self, name: str) -> str:
        """The approver id a CLI ``--as`` name stands for."""

    def email(self, user_id: str) -> str:
        """The user's e-mail address."""

    def group_members(self, group_id: str) -> frozenset[str]:
        """User ids in a user group."""


class UserEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: str
    names: list[str] = msgspec.field(default_factory=list)


class GroupEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    members: list[str] = msgspec.field(default_factory=list)


class ApprovalsFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``approvals.toml``: identities for the CLI (and for groups when Slack is not configured)."""

    users: dict[str, UserEntry] = msgspec.field(default_factory=dict)
    groups: dict[str, GroupEntry] = msgspec.field(default_factory=dict)


def approvals_file_path(data_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("AGENTWATCH_APPROVALS_FILE") or data_dir / "approvals.toml")


def load_approvals_file(path: Path) -> ApprovalsFile:
    """The file's identities; an absent file is empty, a malformed one a :class:`ConfigError`."""
    if not path.is_file():
        return ApprovalsFile()
    try:
        return msgspec.convert(tomllib.loads(path.read_text()), ApprovalsFile)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise ConfigError(f"approvals file {path}: {exc}") from None


class FileDirectory:
    """Identities from :class:`ApprovalsFile`, falling back to another directory (Slack)."""

    def __init__(self, file: ApprovalsFile, fallback: Directory | None = None) -> None:
        self.file = file
        self.fallback = fallback
        self._names = {n.casefold(): uid for uid, u in file.users.items() for n in u.names}

    def resolve(self, name: str) -> str:
        if name in self.file.users:
            return name
        if name.casefold() in self._names:
            return self._names[name.casefold()]
        if USER_ID.match(name):
            return name
        raise IdentityUnavailable(f"{name!r} is neither a Slack user id nor a name in the approvals file")

    def email(self, user_id: str) -> str:
        entry = self.file.users.get(user_id)
        if entry is not None:
            return entry.email
        if self.fallback is not None:
            return self.fallback.email(user_id)
        raise IdentityUnavailable(f"no e-mail known for {user_id} (add it to the approvals file)")

    def group_members(self, group_id: str) -> frozenset[str]:
        entry = self.file.groups.get(group_id)
        if entry is not None:
            return frozenset(entry.members)
        if self.fallback is not None:
            return self.fallback.group_members(group_id)
        raise IdentityUnavailable(f"members of {group_id} unknown (add it to the approvals file)")


# -- votes ----------------------------------------------------------------------------
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
            _touch(conn, approval_id, now)
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


def _touch(conn: Connection, approval_id: str, now: int) -> int:
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
        _close_entry(conn, row, status, now, f"by {user}")
    return VoteResult(
        True,
        decision,
        f"{decision} recorded" + (f"; {row.action} {status}" if status != "pending" else f" ({approves}/{row.quorum})"),
        row.approval_id,
        row.action,
        status,
    )


def _close_entry(conn: Connection, row: Any, outcome: str, now: int, why: str, audit: bool = True) -> None:
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
            _touch(conn, approval_id, now)
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


# -- what gated actions may rely on -----------------------------------------------------
@dataclass(slots=True, frozen=True)
class ApprovalGrant:
    """Proof the executor hands a gated action: an approved approval, claimed for this run."""

    approval_id: str
    action: str
    subject: dict[str, Any]
    approved_by: list[str]


class ContainmentCommand(ControlCommand, kw_only=True):
    """A control command beyond ``terminate_session`` (``quarantine_agent``, ``disable_tool``,
    ``block_egress``): the public format plus what it applies to and who approved it."""

    target: str | None = None
    approval_id: str
    approved_by: list[str] = msgspec.field(default_factory=list)


class GatedAction(Action):
    """Base of containment that needs a human decision; refuses to run without one.

    Subclasses implement :meth:`plan` (what exactly will be contained, computed when the
    approval is requested and shown to the approvers) and :meth:`contain` (the effect,
    given the :class:`ApprovalGrant`).
    """

    gated: ClassVar[bool] = True
    #: True when :meth:`contain` returns Kafka messages (a process without a sender skips it).
    needs_sender: ClassVar[bool] = False

    def plan(self, incident: IncidentRecord, params: ActionParams) -> dict[str, Any]:
        return {"agent": incident.agent_id}

    def execute(self, ctx: ActionContext, params: ActionParams) -> ActionOutcome:
        return self.contain(ctx, params, require_approved(ctx, self.name))

    def contain(self, ctx: ActionContext, params: ActionParams, grant: ApprovalGrant) -> ActionOutcome:
        raise NotImplementedError


def require_approved(ctx: ActionContext, action: str) -> ApprovalGrant:
    """Defence in depth: the approval named in ``ctx.settings`` is this action's, for this
    incident, approved by a quorum without a deny, and claimed by the executor."""
    approval_id = ctx.settings.get("approval_id")
    if not isinstance(approval_id, str):
        raise ActionFailed(f"{action} is gated: it runs only from the approval executor, after a human approved it")
    with ctx.engine.connect() as conn:
        row = conn.execute(select(approvals).where(approvals.c.approval_id == approval_id)).first()
        votes = conn.execute(
            select(approval_votes.c.user_id, approval_votes.c.decision).where(
                approval_votes.c.approval_id == approval_id
            )
        ).all()
    approved_by = [v.user_id for v in votes if v.decision == "approve"]
    if (
        row is None
        or row.action != action
        or row.incident_id != ctx.incident.incident_id
        or row.status != "running"
        or len(approved_by) < row.quorum
        or any(v.decision == "deny" for v in votes)
    ):
        raise ActionFailed(
            f"{action} refused: approval {approval_id} is not an approved, claimed approval for "
            f"incident {ctx.incident.incident_id}"
        )
    return ApprovalGrant(approval_id, action, dict(row.subject), approved_by)


def control_message(
    ctx: ActionContext, command_type: str, grant: ApprovalGrant, target: str | None = None
) -> tuple[ContainmentCommand, OutgoingMessage]:
    """A :class:`ContainmentCommand` for ``agent.control``, keyed by agent. The reason is ours.

    Returned (and published) in its public form (:func:`agentwatch.respond.control.public_command`):
    identifiers and target redacted, ``session_key`` and ``agent_key`` set."""
    incident = ctx.incident
    subject = target or incident.agent_id
    command = ContainmentCommand(
        command_id=command_id_for(incident.incident_id, command_type, subject),
        type=command_type,
        session_id=incident.session_id,
        agent_id=incident.agent_id,
        incident_id=incident.incident_id,
        reason=f"agentwatch: {command_type.replace('_', ' ')} approved by {len(grant.approved_by)} human(s) "
        f"for incident {incident.incident_id} ({incident.severity})",
        issued_at=rfc3339_ms(ctx.now_ms),
        target=target,
        approval_id=grant.approval_id,
        approved_by=grant.approved_by,
    )
    public = public_command(command)  # identifiers redacted, session_key/agent_key added
    return public, OutgoingMessage(ctx.control_topic, public.agent_id.encode(), msgspec.json.encode(public))


# -- the periodic part ------------------------------------------------------------------
@dataclass(slots=True)
class TickStats:
    executed: int = 0
    failed: int = 0
    escalated: int = 0
    expired: int = 0
    cancelled: int = 0
    synced: int = 0


@dataclass
class ApprovalRuntime:
    """Executor, sweeper and Slack outbox for one process.

    Parameters
    ----------
    send
        Delivers gated actions' control commands (waits for the broker's ack); without
        it, actions that publish (``needs_sender``) are left for a process that has one.
    notifier
        Slack; ``None`` leaves messages unsent (the store keeps them pending).
    """

    engine: Engine
    data_dir: Path
    control_topic: str
    send: Callable[[list[OutgoingMessage]], None] | None = None
    notifier: SlackNotifier | None = None
    registry: dict[str, type[Action]] | None = None
    clock: Callable[[], int] = now_ms
    _instances: dict[str, Action] = field(default_factory=dict)
    _closed: set[str] = field(default_factory=set)  # incidents whose postmortem needs the new decisions
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self, after_effects: bool = True) -> TickStats:
        """One round: execute approved, expire/escalate overdue; then (``after_effects``)
        rewrite postmortems and sync Slack. Cheap when idle."""
        stats = TickStats()
        now = self.clock()
        for row in self._due(now):
            if row.status in ("approved", "running"):
                self._maybe_execute(row, now, stats)
            elif row.status == "pending":
                self._sweep(row, now, stats)
        if after_effects:
            stats.synced = self.after_effects()
        return stats

    def after_effects(self) -> int:
        """What follows decisions, off the execution path: postmortem drafts, then Slack."""
        with self._lock:
            closed, self._closed = self._closed, set()
        for incident_id in sorted(closed):
            self.refresh_postmortem(incident_id)
        if self.notifier is None:
            return 0
        return sum(self.sync_incident(incident_id) for incident_id in self._due_slack(self.clock()))

    def _select(self, where: Any) -> list[Row[Any]]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(approvals, incidents.c.status.label("incident_status"))
                    .join(incidents, incidents.c.incident_id == approvals.c.incident_id)
                    .where(where)
                    .order_by(approvals.c.requested_ms)
                ).all()
            )

    def _due(self, now: int) -> list[Row[Any]]:
        """Open approvals with something to do now: execute, expire, escalate, cancel."""
        return [r for r in self._select(approvals.c.status.in_(OPEN)) if self._is_due(r, now)]

    @staticmethod
    def _is_due(row: Any, now: int) -> bool:
        if row.status == "approved":
            return row.next_attempt_ms is None or row.next_attempt_ms <= now
        if row.status == "running":
            return row.started_ms is not None and row.started_ms < now - IN_FLIGHT_GRACE_MS
        return row.expires_ms <= now or row.incident_status == "resolved"

    def _due_slack(self, now: int) -> list[str]:
        """Incidents whose message is behind the store, not backing off, not being synced."""
        rows = self._select(approvals.c.slack_rev > approvals.c.slack_synced_rev)
        return list(
            dict.fromkeys(
                r.incident_id
                for r in rows
                if (r.slack_next_ms is None or r.slack_next_ms <= now)
                and (r.slack_claim_ms is None or r.slack_claim_ms < now - IN_FLIGHT_GRACE_MS)
            )
        )

    def _postmortem_later(self, incident_id: str) -> None:
        with self._lock:
            self._closed.add(incident_id)

    # -- executor ----------------------------------------------------------------------
    def action_class(self, name: str) -> type[Action] | None:
        if self.registry is None:
            from agentwatch.respond.playbook_engine import discover_actions

            self.registry = discover_actions()
        return self.registry.get(name)

    def _maybe_execute(self, row: Row[Any], now: int, stats: TickStats) -> None:
        cls = self.action_class(row.action)
        if cls is not None and getattr(cls, "needs_sender", False) and self.send is None:
            return  # a process with a Kafka producer (the monitor, serve --bootstrap-servers) takes it
        if row.incident_status == "resolved" and row.status == "approved":
            self._cancel(row, now, stats)
            return
        self.execute(row.approval_id, now, stats)

    def execute(self, approval_id: str, now: int | None = None, stats: TickStats | None = None) -> bool:
        """Claim an approved approval and run its gated action once; record the result."""
        now = self.clock() if now is None else now
        stats = stats if stats is not None else TickStats()
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
                return False
            row = conn.execute(select(approvals).where(approvals.c.approval_id == approval_id)).one()
            incident = load_incident(conn, row.incident_id)
        outcome, error = self._run(row, incident, now)
        if outcome is not None and outcome.messages:
            if self.send is None:
                outcome, error = None, f"{row.action} produced control commands but no Kafka sender is configured"
            else:
                try:
                    self.send(outcome.messages)
                except Exception as exc:  # noqa: BLE001 - a delivery failure is stored, retried, shown
                    outcome, error = None, f"delivery failed: {_describe(exc)}"
        finished = self.clock()
        with self.engine.begin() as conn:
            _touch(conn, approval_id, finished)
            if outcome is not None:
                self._executed(conn, row, outcome, finished)
            else:
                self._failed(conn, row, error or "unknown failure", finished)
        if outcome is not None:
            stats.executed += 1
            metrics.APPROVAL_EXECUTIONS.labels(row.action, "done").inc()
            if row.received_ms is not None:
                metrics.APPROVAL_EXECUTION_SECONDS.labels(row.action).observe(max(0, finished - row.received_ms) / 1000)
            self._postmortem_later(row.incident_id)
        elif row.attempts >= MAX_EXECUTION_ATTEMPTS:
            stats.failed += 1
            metrics.APPROVAL_EXECUTIONS.labels(row.action, "failed").inc()
            self._postmortem_later(row.incident_id)
        return outcome is not None

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
        _close_entry(conn, row, "executed", now, f"— {outcome.summary}", audit=False)
        if outcome.contains:
            set_status(conn, row.incident_id, "contained", "agentwatch", now, f"{row.action} (approved)")

    def _failed(self, conn: Connection, row: Row[Any], error: str, now: int) -> None:
        final = row.attempts >= MAX_EXECUTION_ATTEMPTS
        delay = min(60_000, 1000 * 2**row.attempts)
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
            _close_entry(conn, row, "failed", now, f"— {error}", audit=False)

    # -- sweeper -----------------------------------------------------------------------
    def _sweep(self, row: Row[Any], now: int, stats: TickStats) -> None:
        if row.incident_status == "resolved":
            self._cancel(row, now, stats)
            return
        if row.expires_ms > now:
            return
        level = row.escalation_level
        escalate = row.on_timeout == "escalate" and level < len(row.escalate_to)
        with self.engine.begin() as conn:
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
                    stats.escalated += 1
                return
            changed = conn.execute(
                approvals.update()
                .where(base)
                .values(status="expired", decided_ms=now, touched_ms=now, slack_rev=approvals.c.slack_rev + 1)
            ).rowcount
            if changed:
                _close_entry(conn, row, "expired", now, "without a decision: nothing was executed")
        if changed:
            stats.expired += 1
            metrics.APPROVAL_DECISIONS.labels(row.action, "expired").inc()
            self._postmortem_later(row.incident_id)

    def _cancel(self, row: Row[Any], now: int, stats: TickStats) -> None:
        with self.engine.begin() as conn:
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
                _close_entry(conn, row, "cancelled", now, "because the incident was resolved")
        if changed:
            stats.cancelled += 1
            metrics.APPROVAL_DECISIONS.labels(row.action, "cancelled").inc()

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

    # -- Slack outbox ------------------------------------------------------------------
    def sync_incident(self, incident_id: str) -> int:
        """Bring the incident's one message (and its thread) up to date; returns 1 when synced."""
        assert self.notifier is not None
        now = self.clock()
        with self.engine.begin() as conn:
            claimed = conn.execute(
                approvals.update()
                .where(
                    approvals.c.incident_id == incident_id,
                    or_(approvals.c.slack_claim_ms.is_(None), approvals.c.slack_claim_ms < now - IN_FLIGHT_GRACE_MS),
                    or_(approvals.c.slack_next_ms.is_(None), approvals.c.slack_next_ms <= now),
                )
                .values(slack_claim_ms=now)
            ).rowcount
        if not claimed:
            return 0
        try:
            self._sync(incident_id)
        except (SlackUnavailable, SlackRejected) as exc:
            self._slack_failed(incident_id, exc, now)
            return 0
        finally:
            with self.engine.begin() as conn:
                conn.execute(
                    approvals.update()
                    .where(approvals.c.incident_id == incident_id, approvals.c.slack_claim_ms == now)
                    .values(slack_claim_ms=None)
                )
        return 1

    def _sync(self, incident_id: str) -> None:
        assert self.notifier is not None
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(approvals)
                .where(approvals.c.incident_id == incident_id)
                .order_by(approvals.c.requested_ms, approvals.c.approval_id)
            ).all()
            votes = conn.execute(
                select(approval_votes)
                .where(approval_votes.c.approval_id.in_([r.approval_id for r in rows]))
                .order_by(approval_votes.c.ts_ms)
            ).all()
            incident = incident_view(load_incident(conn, incident_id))
        views = {r.approval_id: _view(r, [v for v in votes if v.approval_id == r.approval_id]) for r in rows}
        text, blocks = incident_message(incident, list(views.values()), sum(r.slack_rev for r in rows))
        posted = next(((r.slack_channel, r.slack_ts) for r in rows if r.slack_ts), None)
        existed = posted is not None
        if posted is None:
            posted = self.notifier.post(text, blocks)
            with self.engine.begin() as conn:  # before anything else can fail: never post twice
                conn.execute(
                    approvals.update()
                    .where(approvals.c.incident_id == incident_id)
                    .values(slack_channel=posted[0], slack_ts=posted[1], slack_posted_ms=self.clock())
                )
            self.notifier.post(details_text(incident), thread_ts=posted[1])
        else:
            self.notifier.update(posted[0], posted[1], text, blocks)
        channel, ts = posted
        for vote in votes:
            if not vote.announced:
                view = views[vote.approval_id]
                self.notifier.post(vote_note(view, _vote_view(vote)), thread_ts=ts)
                with self.engine.begin() as conn:
                    conn.execute(
                        approval_votes.update()
                        .where(approval_votes.c.approval_id == vote.approval_id, approval_votes.c.voter == vote.voter)
                        .values(announced=1)
                    )
        for row in rows:
            key = f"{row.status}:{row.escalation_level}"
            if key == row.slack_announced or row.status == "running":
                continue
            note = state_note(views[row.approval_id])
            if note is not None and (existed or key != "pending:0"):
                self.notifier.post(note[0], thread_ts=ts, broadcast=note[1])
            with self.engine.begin() as conn:
                conn.execute(
                    approvals.update().where(approvals.c.approval_id == row.approval_id).values(slack_announced=key)
                )
        with self.engine.begin() as conn:
            for row in rows:
                conn.execute(
                    approvals.update()
                    .where(approvals.c.approval_id == row.approval_id, approvals.c.slack_rev == row.slack_rev)
                    .values(
                        slack_synced_rev=row.slack_rev,
                        slack_attempts=0,
                        slack_next_ms=None,
                        slack_error=None,
                        slack_channel=channel,
                        slack_ts=ts,
                    )
                )

    def _slack_failed(self, incident_id: str, exc: Exception, now: int) -> None:
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(approvals.c.approval_id, approvals.c.slack_attempts).where(
                    approvals.c.incident_id == incident_id
                )
            ).all()
            attempts = max((r.slack_attempts for r in rows), default=0)
            retry_after = getattr(exc, "retry_after_s", None)
            delay = min(SLACK_MAX_BACKOFF_MS, 2000 * 2**attempts)
            if retry_after:
                delay = max(delay, int(retry_after * 1000))
            conn.execute(
                approvals.update()
                .where(approvals.c.incident_id == incident_id)
                .values(slack_attempts=attempts + 1, slack_next_ms=now + delay, slack_error=str(exc)[:1000])
            )
            if attempts == 0:  # the first failure of a streak is worth a line; retries are counted
                add_timeline(
                    conn,
                    incident_id,
                    now,
                    "note",
                    "agentwatch",
                    f"Slack unreachable, approval message retried in the background: {exc}",
                    {"error": str(exc)[:500]},
                )
                audit_log.append(conn, "agentwatch", "slack.unreachable", incident_id, {"error": str(exc)[:500]}, now)
        log.warning("slack sync for %s failed (attempt %d): %s", incident_id, attempts + 1, exc)


def _view(row: Any, votes: list[Any]) -> ApprovalView:
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
        votes=[_vote_view(v) for v in votes],
        decided_ms=row.decided_ms,
        result_summary=result.get("summary") if row.status == "executed" else None,
        error=row.error if row.status in ("failed", "approved") else None,
        note=row.note,
    )


def _vote_view(vote: Any) -> VoteView:
    return VoteView(user_id=vote.user_id, channel=vote.channel, decision=vote.decision, ts_ms=vote.ts_ms)


def approval_view(conn: Connection, approval_id: str) -> ApprovalView | None:
    row = conn.execute(select(approvals).where(approvals.c.approval_id == approval_id)).first()
    if row is None:
        return None
    votes = conn.execute(select(approval_votes).where(approval_votes.c.approval_id == approval_id)).all()
    return _view(row, list(votes))


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
        out.setdefault(row.incident_id, []).append(_view(row, [v for v in votes if v.approval_id == row.approval_id]))
    return out


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]


class ApprovalWorker:
    """Two threads for one :class:`ApprovalRuntime`, every ``interval_s`` and at once on :meth:`wake`:
    one executes and sweeps, the other does the after-effects (postmortems, Slack) — so a
    slow or unreachable Slack never delays containment."""

    def __init__(self, runtime: ApprovalRuntime, interval_s: float = 0.2) -> None:
        self.runtime = runtime
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._wake_after = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if not self._threads:
            self._stop.clear()
            self._threads = [
                threading.Thread(
                    target=self._loop, args=(self._wake, self._execute), name="agentwatch-approvals", daemon=True
                ),
                threading.Thread(
                    target=self._loop,
                    args=(self._wake_after, self._after),
                    name="agentwatch-approvals-slack",
                    daemon=True,
                ),
            ]
            for thread in self._threads:
                thread.start()

    def wake(self) -> None:
        """A decision was recorded: execute now, and update Slack."""
        self._wake.set()
        self._wake_after.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._wake_after.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        self._threads = []

    def _loop(self, event: threading.Event, body: Callable[[], object]) -> None:
        while not self._stop.is_set():
            event.wait(timeout=self.interval_s)
            event.clear()
            if self._stop.is_set():
                return
            guarded(body)

    def _execute(self) -> None:
        stats = self.runtime.tick(after_effects=False)
        if stats.executed or stats.failed or stats.escalated or stats.expired or stats.cancelled:
            self._wake_after.set()

    def _after(self) -> None:
        self.runtime.after_effects()


def guarded(body: Callable[[], object]) -> object:
    """Run one round; a failure of the store is logged and counted, and the next round retries."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return body()
    except (SQLAlchemyError, OSError) as exc:
        log.warning("approval round failed; retrying: %s", exc)
        metrics.PLUGIN_ERRORS.labels("approvals", "worker").inc()
        return None

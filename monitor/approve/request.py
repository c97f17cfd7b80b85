"""An approval starts here: the ``request_approval`` step's parameters and the pending row it records.

Automatic steps stop the session. Containment beyond it — revoking the agent's
credentials, quarantining its identity, blocking egress, disabling a tool — is a
*gated* action (``Action.gated = True``, :mod:`agentwatch.respond.gated_action_spec`) that
runs only after people with the right to decide said yes. A ``request_approval`` playbook
step (:class:`ApprovalRequest`) names the gated action, who may approve (Slack user ids
``U…``/``W…`` and user-group ids ``S…``, or ``$ENV_VAR`` holding a comma-separated list of
them), the quorum, a timeout and what a timeout does. :func:`request` records it, once per
step (the approval id derives from the step key).

The states of an approval row (:data:`OPEN`, :data:`CLOSED`) and the claim grace
(:data:`IN_FLIGHT_GRACE_MS`) every worker of the package shares are defined here too.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from sqlalchemy import select
from sqlalchemy.engine import Connection

from agentwatch.approve.directory import GROUP_ID, USER_ID
from agentwatch.observe import metrics
from agentwatch.respond import audit_log
from agentwatch.respond.action_spec import ActionParams
from agentwatch.respond.incident_lifecycle import add_timeline
from agentwatch.respond.incident_record import IncidentRecord
from agentwatch.store import approvals

OPEN = ("pending", "approved", "running")
CLOSED = ("executed", "failed", "denied", "expired", "cancelled")
#: A claim (execution, a notifier's sync) older than this was abandoned by a crash.
IN_FLIGHT_GRACE_MS = 30_000
_ENV_REF = re.compile(r"^\$[A-Za-z_][A-Za-z0-9_]*$")


def now_ms() -> int:
    return int(time.time() * 1000)


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

"""The gated-action contract: containment that runs only after humans approved it.

Beside the action contract (:mod:`agentwatch.respond.action_spec`). A gated action
(:class:`GatedAction`, ``gated = True``) is never run as a plain playbook step: a
``request_approval`` step asks for it (:mod:`agentwatch.approve.request`), and the approval
executor (:mod:`agentwatch.approve.executor`) runs it once a quorum said yes, with
``ctx.settings["approval_id"]`` naming the approval it claimed. :func:`require_approved`
checks that claim again in the store before any effect (defence in depth) and hands the
action an :class:`ApprovalGrant`; :func:`control_message` builds the control command
(:class:`ContainmentCommand`) the gateways act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
from sqlalchemy import select

from agentwatch.events.audit_event import rfc3339_ms
from agentwatch.respond.action_spec import (
    Action,
    ActionContext,
    ActionFailed,
    ActionOutcome,
    ActionParams,
    OutgoingMessage,
)
from agentwatch.respond.control import ControlCommand, command_id_for, public_command
from agentwatch.respond.incident_record import IncidentRecord
from agentwatch.store import approval_votes, approvals


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

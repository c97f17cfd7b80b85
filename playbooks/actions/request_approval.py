"""``request_approval``: ask humans before a gated containment action runs.

Records a pending approval (:mod:`agentwatch.approve.request`) with exactly what the gated
action would contain — computed now, shown to the approvers, used as-is when it runs —
and returns. The Slack message is sent by the approval outbox
(:mod:`agentwatch.approve.slack.outbox`, run by the responder's worker and ``agentwatch serve``),
so a Slack outage delays the message, never the record.
Nothing is executed here: the approval executor runs the gated action once a quorum of
authorised approvers said yes. See :class:`agentwatch.approve.request.ApprovalRequest` for the
parameters::

  - name: approve_revoke_credentials
    action: request_approval
    params:
      action: revoke_credentials
      action_params: {url_env: AGENTWATCH_REVOKE_WEBHOOK_URL, secret_env: AGENTWATCH_WEBHOOK_SECRET}
      approvers: ["$AGENTWATCH_APPROVERS"]   # or ids: ["U012ALICE", "S0SECOPS"]
      quorum: 1
      timeout_s: 900
      on_timeout: escalate
      escalate_to: ["$AGENTWATCH_ESCALATION_APPROVERS"]
"""

from __future__ import annotations

import msgspec

from agentwatch.approve.request import ApprovalRequest, request
from agentwatch.respond.action_spec import Action, ActionContext, ActionFailed, ActionOutcome, ActionParams
from agentwatch.respond.playbook_engine import discover_actions


class RequestApproval(Action):
    name = "request_approval"
    params_type = ApprovalRequest
    summary = "Ask the listed approvers (Slack or CLI) before a gated containment action runs."

    def execute(self, ctx: ActionContext, params: ActionParams) -> ActionOutcome:
        assert isinstance(params, ApprovalRequest)
        cls = discover_actions().get(params.action)
        if cls is None or not getattr(cls, "gated", False):
            raise ActionFailed(f"{params.action!r} is not an installed gated action")
        gated = cls()
        plan = getattr(gated, "plan", None)
        action_params = msgspec.convert(params.action_params, cls.params_type)
        subject = plan(ctx.incident, action_params) if plan is not None else {"agent": ctx.incident.agent_id}
        if ctx.connection is not None:
            approval_id, created = request(
                ctx.connection,
                step_key=ctx.action_key,
                incident=ctx.incident,
                params=params,
                subject=subject,
                now=ctx.now_ms,
            )
        else:
            with ctx.engine.begin() as conn:
                approval_id, created = request(
                    conn, step_key=ctx.action_key, incident=ctx.incident, params=params, subject=subject, now=ctx.now_ms
                )
        return ActionOutcome(
            summary=f"approval {'requested' if created else 'already requested'} for {params.action} "
            f"(quorum {params.quorum}): {approval_id}",
            result={"approval_id": approval_id, "action": params.action, "quorum": params.quorum},
        )

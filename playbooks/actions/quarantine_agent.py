"""``quarantine_agent`` (gated): stop the agent identity everywhere, not just this session.

Publishes ``{type: "quarantine_agent", …}`` on ``agent.control`` (a
:class:`agentwatch.respond.gated_action_spec.ContainmentCommand`, keyed by agent id) for gateways to refuse
every session of the agent, and — when a webhook is configured (``webhook_url`` or the
environment variable ``webhook_url_env``) — tells the identity system through a signed
webhook as well. Runs only from the approval executor.
"""

from __future__ import annotations

from typing import Any

import msgspec

from agentwatch.respond.action_spec import ActionContext, ActionOutcome, ActionParams
from agentwatch.respond.gated_action_spec import ApprovalGrant, GatedAction, control_message
from agentwatch.respond.incident_record import IncidentRecord
from agentwatch.respond.webhook import OptionalWebhookConfig, post_signed


class QuarantineParams(OptionalWebhookConfig):
    """The control command always goes out; the webhook only when configured."""


class QuarantineAgent(GatedAction):
    name = "quarantine_agent"
    params_type = QuarantineParams
    needs_sender = True
    summary = "Quarantine the agent identity across all its sessions (control command + webhook; approval needed)."

    def plan(self, incident: IncidentRecord, params: ActionParams) -> dict[str, Any]:
        return {"agent": incident.agent_id, "all_sessions": True}

    def contain(self, ctx: ActionContext, params: ActionParams, grant: ApprovalGrant) -> ActionOutcome:
        assert isinstance(params, QuarantineParams)
        command, message = control_message(ctx, self.name, grant)
        result: dict[str, Any] = {"command_id": command.command_id, "topic": ctx.control_topic}
        target = params.resolve_optional()
        if target is None:
            result["webhook"] = "not configured"
        else:
            url, secret = target
            # ``command`` is the published (redacted) form: control_message returns nothing else.
            answer = post_signed(
                url, msgspec.to_builtins(command), secret, request_id=command.command_id, timeout_s=params.timeout_s
            )
            result["webhook"] = f"HTTP {answer.status}"
        return ActionOutcome(
            summary=f"quarantine_agent published ({command.command_id}); webhook {result['webhook']}",
            result=result,
            messages=[message],
            contains=True,
        )

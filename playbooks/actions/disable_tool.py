"""``disable_tool`` (gated): take a tool away from the agent at its gateways.

One ``{type: "disable_tool", target: <tool>, …}`` control command per tool on
``agent.control``. Tools are ``tools`` plus, with ``from_incident``, the tools used by
the events that support the incident's alerts — fixed when the approval is requested.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from agentwatch.respond.action_spec import ActionContext, ActionOutcome, ActionParams
from agentwatch.respond.gated_action_spec import ApprovalGrant, GatedAction, control_message
from agentwatch.respond.incident_record import IncidentRecord


class DisableToolParams(ActionParams):
    tools: list[str] = msgspec.field(default_factory=list)
    from_incident: bool = True
    max_targets: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5


class DisableTool(GatedAction):
    name = "disable_tool"
    params_type = DisableToolParams
    needs_sender = True
    summary = "Disable the tools the flagged events used, for this agent (approval needed)."

    def plan(self, incident: IncidentRecord, params: ActionParams) -> dict[str, Any]:
        assert isinstance(params, DisableToolParams)
        supporting = {eid for alert in incident.alerts for eid in alert.event_ids}
        used = [e.tool for e in incident.events if e.event_id in supporting and e.tool] if params.from_incident else []
        return {"agent": incident.agent_id, "tools": list(dict.fromkeys([*params.tools, *used]))[: params.max_targets]}

    def contain(self, ctx: ActionContext, params: ActionParams, grant: ApprovalGrant) -> ActionOutcome:
        tools = [str(t) for t in grant.subject.get("tools", [])]
        pairs = [control_message(ctx, self.name, grant, target=t) for t in tools]
        return ActionOutcome(
            summary=f"disable_tool published for {', '.join(tools)}" if pairs else "no tool to disable",
            result={"tools": tools, "command_ids": [c.command_id for c, _ in pairs]},
            messages=[m for _, m in pairs],
            contains=bool(pairs),
        )

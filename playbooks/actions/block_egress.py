"""``block_egress`` (gated): block the destinations the flagged events reached.

One ``{type: "block_egress", target: <host>, …}`` control command per destination on
``agent.control``. Destinations are ``destinations`` plus, with ``from_incident``, the
hosts of URLs in the events that support the incident's alerts (not every host the
session touched), fixed when the approval is requested: approvers see the list that runs.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec

from agentwatch.respond.action_spec import ActionContext, ActionOutcome, ActionParams
from agentwatch.respond.gated_action_spec import ApprovalGrant, GatedAction, control_message
from agentwatch.respond.incident_record import IncidentRecord

MAX_TARGETS = 20


class EgressParams(ActionParams):
    destinations: list[str] = msgspec.field(default_factory=list)
    from_incident: bool = True
    max_targets: Annotated[int, msgspec.Meta(ge=1, le=MAX_TARGETS)] = 10


def flagged_hosts(incident: IncidentRecord) -> list[str]:
    """Hosts of URLs in the alerts' supporting events, in order of appearance."""
    supporting = {eid for alert in incident.alerts for eid in alert.event_ids}
    hosts: dict[str, None] = {}
    for event in incident.events:
        if event.event_id not in supporting:
            continue
        for text in (event.target, (event.args or {}).get("url")):
            if isinstance(text, str) and "://" in text:
                try:
                    host = urlsplit(text.strip()).hostname
                except ValueError:
                    host = None
                if host:
                    hosts[host.lower()] = None
    return list(hosts)


class BlockEgress(GatedAction):
    name = "block_egress"
    params_type = EgressParams
    needs_sender = True
    summary = "Block egress to the incident's destinations at the agent gateways (approval needed)."

    def plan(self, incident: IncidentRecord, params: ActionParams) -> dict[str, Any]:
        assert isinstance(params, EgressParams)
        found = flagged_hosts(incident) if params.from_incident else []
        return {
            "agent": incident.agent_id,
            "destinations": list(dict.fromkeys([*params.destinations, *found]))[: params.max_targets],
        }

    def contain(self, ctx: ActionContext, params: ActionParams, grant: ApprovalGrant) -> ActionOutcome:
        destinations = [str(d) for d in grant.subject.get("destinations", [])]
        pairs = [control_message(ctx, self.name, grant, target=d) for d in destinations]
        return ActionOutcome(
            summary=f"block_egress published for {len(pairs)} destination(s)" if pairs else "no destination to block",
            result={"destinations": destinations, "command_ids": [c.command_id for c, _ in pairs]},
            messages=[m for _, m in pairs],
            contains=bool(pairs),
        )

"""``revoke_credentials`` (gated): ask the identity system to revoke what the agent holds.

A signed webhook (:mod:`agentwatch.respond.webhook`) to the URL in ``url`` or the environment
variable ``url_env``, with the HMAC secret read from the environment variable
``secret_env``. The body names the incident, agent, session and principal, the approval
and who approved it; ``request_id`` (also ``X-Agentwatch-Request-Id``) is the same on
every retry, so the receiver can de-duplicate. Runs only from the approval executor.
"""

from __future__ import annotations

from typing import Any

from agentwatch.events.audit_event import rfc3339_ms
from agentwatch.respond.action_spec import ActionContext, ActionOutcome, ActionParams
from agentwatch.respond.control import command_id_for, identity_key
from agentwatch.respond.gated_action_spec import ApprovalGrant, GatedAction
from agentwatch.respond.incident_record import IncidentRecord
from agentwatch.respond.redaction import redact
from agentwatch.respond.webhook import WebhookConfig, post_signed


class RevokeParams(WebhookConfig):
    """Where the revocation webhook is and how it is signed."""


class RevokeCredentials(GatedAction):
    name = "revoke_credentials"
    params_type = RevokeParams
    summary = "Revoke the agent's credentials via a signed webhook (needs human approval)."

    def plan(self, incident: IncidentRecord, params: ActionParams) -> dict[str, Any]:
        return {"agent": incident.agent_id, "principal": incident.principal or "", "session": incident.session_id}

    def contain(self, ctx: ActionContext, params: ActionParams, grant: ApprovalGrant) -> ActionOutcome:
        assert isinstance(params, RevokeParams)
        incident = ctx.incident
        url, secret = params.resolve()
        request_id = command_id_for(incident.incident_id, self.name, grant.approval_id)
        # Identifiers redacted like any agent text; the *_key fields (SHA-256 of the real
        # values) let the identity system match them against its own records.
        principal = incident.principal
        payload = {
            "type": self.name,
            "request_id": request_id,
            "incident_id": incident.incident_id,
            "agent_id": redact(incident.agent_id),
            "session_id": redact(incident.session_id),
            "principal": None if principal is None else redact(principal),
            "agent_key": identity_key(incident.agent_id),
            "session_key": identity_key(incident.session_id),
            "principal_key": None if principal is None else identity_key(principal),
            "severity": incident.severity,
            "approval_id": grant.approval_id,
            "approved_by": grant.approved_by,
            "issued_at": rfc3339_ms(ctx.now_ms),
        }
        answer = post_signed(url, payload, secret, request_id=request_id, timeout_s=params.timeout_s)
        return ActionOutcome(
            summary=f"credentials revocation accepted (HTTP {answer.status}, {request_id})",
            result={"request_id": request_id, "http_status": answer.status},
            contains=True,
        )

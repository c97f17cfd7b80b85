"""``terminate_session``: stop the offending session now — no human needed.

Publishes the control command on ``agent.control`` (the public format in DESIGN.md) for
agent gateways to act on, and records the session as terminated in the store, which
is what ``agentwatch hook claude-code`` (directly, or through ``agentwatch serve``)
consults to deny the session's next tool call. Runs inside the monitor's batch
(``urgent``): the command is delivered before the triggering events' offsets commit.

The ``command_id`` derives from the incident and session, so a re-run publishes the
same command again at worst, which gateways de-duplicate. With ``[response] worker =
"alerts"``, ``run`` already sent the command in its batch, before any incident existed
(:mod:`agentwatch.respond.batch_containment`), under an id derived from the session alone
(:func:`~agentwatch.respond.control.session_command_id`); ``respond`` runs this step with
``ctx.settings["command_scope"] == "session"``, arrives at the same id, and does not send
what is already on the control topic. The reason is built from
detector names and categories only: it reaches the agent, so it carries no agent text.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from sqlalchemy import select

from agentwatch.events.audit_event import rfc3339_ms
from agentwatch.observe import metrics
from agentwatch.respond import audit_log
from agentwatch.respond.action_spec import Action, ActionContext, ActionOutcome, ActionParams, OutgoingMessage
from agentwatch.respond.control import ControlCommand, command_id_for, public_command, session_command_id
from agentwatch.respond.webhook import OptionalWebhookConfig, WebhookError, post_signed
from agentwatch.store import session_status

MAX_REASON_CHARS = 500


class TerminateParams(OptionalWebhookConfig, kw_only=True):
    """``reason_prefix`` starts the reason; optionally also POST the command, HMAC-signed,
    to ``webhook_url`` (or the URL in ``webhook_url_env``) with the secret in ``secret_env``.
    The webhook runs inside the batch, so keep ``timeout_s`` short (default 2 s)."""

    reason_prefix: str = "agentwatch"
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=10)] = 2.0


class TerminateSession(Action):
    name = "terminate_session"
    params_type = TerminateParams
    urgent = True
    summary = "Publish terminate_session on agent.control and mark the session terminated."

    def execute(self, ctx: ActionContext, params: ActionParams) -> ActionOutcome:
        assert isinstance(params, TerminateParams)
        incident = ctx.incident
        # Our words only: the reason reaches the agent (gateway, hook), so no agent text.
        detectors = sorted({a.detector for a in incident.alerts})
        categories = sorted({a.category for a in incident.alerts})
        reason = (
            f"{params.reason_prefix}: session terminated by incident {incident.incident_id} "
            f"({incident.severity}; {', '.join(categories) or 'policy'}; detectors {', '.join(detectors)})"
        )
        reason = reason[:MAX_REASON_CHARS]
        if ctx.settings.get("command_scope") == "session":
            command_id = session_command_id("terminate_session", incident.session_id)
        else:
            command_id = command_id_for(incident.incident_id, "terminate_session", incident.session_id)
        command = ControlCommand(
            command_id=command_id,
            type="terminate_session",
            session_id=incident.session_id,
            agent_id=incident.agent_id,
            incident_id=incident.incident_id,
            reason=reason,
            issued_at=rfc3339_ms(ctx.now_ms),
        )
        conn = ctx.connection
        if conn is None:
            with ctx.engine.begin() as own:
                self._record(own, command, ctx.now_ms)
        else:
            self._record(conn, command, ctx.now_ms)
        # The store keeps the real session id (the hook looks it up); what leaves the process
        # is redacted and carries session_key for gateways to match on.
        public = public_command(command)
        message = OutgoingMessage(
            ctx.control_topic, public.session_id.encode(), msgspec.json.encode(public), dedup_id=command.command_id
        )
        result: dict[str, object] = {"command_id": command.command_id, "topic": ctx.control_topic}
        summary = f"terminate_session published ({command.command_id})"
        webhook = params.resolve_optional()
        if webhook is not None:
            # The control command is what stops the session; a failed webhook is recorded
            # (result, timeline, metric) but does not hold the command back.
            url, secret = webhook
            try:
                post_signed(
                    url, msgspec.to_builtins(public), secret, request_id=command.command_id, timeout_s=params.timeout_s
                )
                result["webhook"] = "delivered"
            except WebhookError as exc:
                result["webhook"] = f"failed: {exc}"
                summary += f"; webhook failed: {exc}"
                metrics.ACTIONS.labels("terminate_session_webhook", "failed").inc()
        return ActionOutcome(summary=summary, result=result, messages=[message], contains=True)

    @staticmethod
    def _record(conn, command: ControlCommand, now_ms: int) -> None:  # type: ignore[no-untyped-def]
        exists = conn.execute(
            select(session_status.c.session_id).where(session_status.c.session_id == command.session_id)
        ).first()
        values = {
            "agent_id": command.agent_id,
            "status": "terminated",
            "reason": command.reason,
            "incident_id": command.incident_id,
            "command_id": command.command_id,
            "updated_ms": now_ms,
        }
        if exists is None:
            conn.execute(session_status.insert().values(session_id=command.session_id, **values))
            audit_log.append(
                conn,
                "agentwatch",
                "session.terminated",
                command.session_id,
                {"incident_id": command.incident_id, "command_id": command.command_id},
                now_ms,
            )

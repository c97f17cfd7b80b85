"""``terminate_session`` in ``run``'s batch without the store (``[response] worker = "alerts"``).

In this mode ``run``'s consume loop keeps only what stops the bleeding: decode, detect,
publish alerts and — for an alert that a playbook answers with ``terminate_session`` as its
first step — the control command, produced in the same delivery as the alert, before the
batch's offsets commit. No incident, step or journal row is written here: a playbook's
match is pure evaluation of the alert (:meth:`~agentwatch.respond.playbook_engine.Playbook.matches`),
so the decision needs no SQL, and a slow or locked store never delays a termination.

Incidents, steps, journals, evidence, postmortems, approvals and webhooks are ``agentwatch
respond``'s (:mod:`agentwatch.respond.alert_consumer`). It records the ``terminate_session``
step of the incident it opens, and recognises the command sent here by its id: the id
derives from the session alone (:func:`~agentwatch.respond.control.session_command_id`), so
a batch re-processed after a crash produces the same id (gateways de-duplicate it) and
``respond`` finds it on the control topic instead of sending it again.

The command's ``incident_id`` names the incident this alert opens (its id derives from the
group and the alert, :func:`~agentwatch.respond.incident_lifecycle.incident_id_for`); when an
earlier alert of the same group already opened one, ``respond`` records the command on that
incident and the command's ``incident_id`` names an id the store does not hold. The reason
is agentwatch's words (detector, category, severity), never agent text.

Only ``terminate_session`` runs here. Another urgent action a playbook starts with (a
third-party plugin) is run by ``respond`` when it takes the alert — later than in the batch;
:class:`BatchContainment` logs that once at start-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import msgspec

from agentwatch.detect.alerts import Alert
from agentwatch.events.audit_event import rfc3339_ms
from agentwatch.playbooks.actions.terminate_session import MAX_REASON_CHARS, TerminateParams, TerminateSession
from agentwatch.respond.action_spec import OutgoingMessage
from agentwatch.respond.control import ControlCommand, public_command, session_command_id
from agentwatch.respond.incident_lifecycle import IncidentSettings, incident_id_for
from agentwatch.respond.playbook_engine import Playbook

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class _Terminating:
    playbook: Playbook
    params: TerminateParams


class BatchContainment:
    """Which alerts stop their session now, and the command that does it."""

    def __init__(self, playbooks: list[Playbook], control_topic: str, settings: IncidentSettings | None = None) -> None:
        self.control_topic = control_topic
        self.settings = settings or IncidentSettings()
        self._terminating: list[_Terminating] = []
        for playbook in playbooks:
            if playbook.spec.mode != "enforce" or not playbook.actions:
                continue  # a shadow playbook only records what it would do: respond's business
            step, action, params = playbook.actions[0]
            if isinstance(action, TerminateSession) and isinstance(params, TerminateParams):
                self._terminating.append(_Terminating(playbook, params))
            elif action.urgent:
                log.warning(
                    'playbook %s starts with urgent step %s (%s): with worker = "alerts" only terminate_session '
                    "runs in run's batch; agentwatch respond runs this one when it takes the alert",
                    playbook.name,
                    step.name,
                    step.action,
                )

    def commands(self, alerts: list[Alert], now_ms: int) -> list[OutgoingMessage]:
        """The control commands for this batch's published ``alerts`` (real, unredacted ones):
        at most one per session, whichever terminating playbook matches first."""
        if not self._terminating:
            return []
        out: list[OutgoingMessage] = []
        done: set[str] = set()
        for alert in alerts:
            if alert.session_id in done:
                continue
            for terminating in self._terminating:
                if terminating.playbook.matches(alert):
                    out.append(self._command(alert, terminating.params, now_ms))
                    done.add(alert.session_id)
                    break
        return out

    def _command(self, alert: Alert, params: TerminateParams, now_ms: int) -> OutgoingMessage:
        group = self.settings.group_by
        incident_id = incident_id_for(f"{group}={getattr(alert, group) or alert.session_id}", alert.alert_id)
        reason = (
            f"{params.reason_prefix}: session terminated by incident {incident_id} "
            f"({alert.severity}; {alert.category}; detectors {alert.detector})"
        )[:MAX_REASON_CHARS]
        command = ControlCommand(
            command_id=session_command_id("terminate_session", alert.session_id),
            type="terminate_session",
            session_id=alert.session_id,
            agent_id=alert.agent_id,
            incident_id=incident_id,
            reason=reason,
            issued_at=rfc3339_ms(now_ms),
        )
        public = public_command(command)  # identifiers redacted; session_key for gateways to match on
        return OutgoingMessage(
            self.control_topic, public.session_id.encode(), msgspec.json.encode(public), dedup_id=command.command_id
        )

"""Block Kit for approvals — pure functions from views to ``(fallback text, blocks)``.

One message per incident, updated in place (``chat.update``) as approvals are
requested, decided and carried out; votes, escalations and results go to its thread.
Every string an agent could have influenced passes through :func:`agentwatch.approve.slack.text.mrkdwn`
(or :func:`~agentwatch.approve.slack.text.plain` for ``plain_text``); the only mentions in a
message are the ones built here from configured approver ids (:func:`mention`).

Buttons carry ``action_id`` :data:`APPROVE` / :data:`DENY` / :data:`DETAILS` and the
approval id as ``value``; :mod:`agentwatch.approve.slack.interactions` reads them back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from agentwatch.approve.directory import GROUP_ID, USER_ID
from agentwatch.approve.slack.text import FIELD_LIMIT, SECTION_LIMIT, cap, mrkdwn, plain
from agentwatch.approve.views import ApprovalView, VoteView
from agentwatch.events.audit_event import rfc3339_ms
from agentwatch.incident_links import incident_link
from agentwatch.respond.incident_record import ActionRecord, IncidentRecord

APPROVE: Final = "agentwatch_approve"
DENY: Final = "agentwatch_deny"
DETAILS: Final = "agentwatch_details"
BUTTON_ACTIONS: Final = frozenset({APPROVE, DENY, DETAILS})

MAX_REASONS: Final = 3
MAX_APPROVAL_CARDS: Final = 10  # Slack allows 50 blocks; 4 per card plus the incident's 6

_STATUS_ICON: Final = {
    "pending": ":hourglass_flowing_sand:",
    "approved": ":white_check_mark:",
    "running": ":gear:",
    "executed": ":white_check_mark:",
    "failed": ":x:",
    "denied": ":no_entry:",
    "expired": ":alarm_clock:",
    "cancelled": ":heavy_minus_sign:",
}
_SEVERITY_ICON: Final = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "medium": ":large_yellow_circle:",
    "low": ":white_circle:",
    "info": ":white_circle:",
}


@dataclass(frozen=True, slots=True)
class IncidentView:
    incident_id: str
    title: str
    severity: str
    status: str
    agent_id: str
    session_id: str
    principal: str | None
    summary: str
    reasons: list[str]
    evidence: str | None  # "collected (version N)"; never a server path
    postmortem: str | None
    alerts: list[str] = field(default_factory=list)
    link: str | None = None  # the incident on serve's API (AGENTWATCH_PUBLIC_URL), else None


def incident_view(record: IncidentRecord) -> IncidentView:
    """What the message shows of an incident (raw: escaping happens when rendering)."""
    alerts = sorted(record.alerts, key=lambda a: (-a.score, a.first_ts_ms))
    reasons = list(dict.fromkeys(r for a in alerts for r in a.reasons))[:MAX_REASONS]
    done = {a.action: a for a in record.actions if a.status == "done"}
    return IncidentView(
        incident_id=record.incident_id,
        title=str(record.detector_context.get("title") or record.incident_id),
        severity=record.severity,
        status=record.status,
        agent_id=record.agent_id,
        session_id=record.session_id,
        principal=record.principal,
        summary=alerts[0].summary if alerts else "",
        reasons=reasons,
        evidence=_produced("collected", done.get("collect_evidence")),
        postmortem=_produced("drafted", done.get("draft_postmortem")),
        alerts=[f"{a.severity} {a.detector} ({a.score:.2f}): {a.summary}" for a in alerts[:10]],
        link=incident_link(record.incident_id),
    )


def _produced(verb: str, action: ActionRecord | None) -> str | None:
    """``collected (version 2)``: that a step produced its artefact, without the server's path."""
    if action is None:
        return None
    version = action.result.get("version")
    return f"{verb} (version {int(version)})" if isinstance(version, int) else verb


def where_to_look(incident: IncidentView) -> str:
    """A link to the incident on serve's API, or the CLI command that shows it."""
    if incident.link:
        return f"<{incident.link}|open incident {mrkdwn(incident.incident_id, 100)}>"
    return f"agentwatch incidents show {mrkdwn(incident.incident_id, 100)}"


def mention(identity: str) -> str:
    """A mention for a configured Slack id; anything else is shown inert.

    >>> mention("U024BE7LH"), mention("SAZ94GDB8"), mention("<!here>")
    ('<@U024BE7LH>', '<!subteam^SAZ94GDB8>', '&lt;!here&gt;')
    """
    if USER_ID.match(identity):
        return f"<@{identity}>"
    if GROUP_ID.match(identity):
        return f"<!subteam^{identity}>"
    return mrkdwn(identity, 100)


def when(ts_ms: int) -> str:
    """Slack's localised date token with an RFC 3339 fallback."""
    return f"<!date^{ts_ms // 1000}^{{date_short_pretty}} {{time_secs}}|{rfc3339_ms(ts_ms)}>"


def action_label(action: str) -> str:
    """``revoke_credentials`` → ``revoke credentials``."""
    return re.sub(r"[^A-Za-z0-9]+", " ", action).strip()


def subject_text(subject: dict[str, Any], limit: int = 600) -> str:
    """``key: value`` pairs of what will be contained, inert."""
    parts = []
    for key, value in subject.items():
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        parts.append(f"{action_label(key)}: {shown or '—'}")
    return mrkdwn("; ".join(parts), limit)


def incident_message(
    incident: IncidentView, approvals: list[ApprovalView], revision: int = 0
) -> tuple[str, list[dict[str, Any]]]:
    """The incident's one message: summary, reasons, evidence, one card per approval."""
    sev = incident.severity
    fallback = mrkdwn(
        f"agentwatch {sev} incident {incident.incident_id}: {incident.title} — "
        f"{sum(a.status == 'pending' for a in approvals)} approval(s) pending",
        SECTION_LIMIT,
    )
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": plain(f"agentwatch: {sev} incident {incident.incident_id}", 150)},
        },
        {
            "type": "section",
            "text": _md(
                f"{_SEVERITY_ICON.get(sev, '')} *{mrkdwn(incident.title, 300)}*\n{mrkdwn(incident.summary, 1000)}"
            ),
        },
        {
            "type": "section",
            "fields": [
                _md(f"*Severity*\n{mrkdwn(sev, 20)}"),
                _md(f"*Status*\n{mrkdwn(incident.status, 20)}"),
                _md(f"*Agent*\n{mrkdwn(incident.agent_id, 300)}"),
                _md(f"*Principal*\n{mrkdwn(incident.principal or '—', 300)}"),
                _md(f"*Session*\n{mrkdwn(incident.session_id, 300)}"),
                _md(f"*Incident*\n{mrkdwn(incident.incident_id, 100)}"),
            ],
        },
    ]
    if incident.reasons:
        lines = "\n".join(f"• {mrkdwn(r, 600)}" for r in incident.reasons)
        blocks.append({"type": "section", "text": _md(cap(f"*Top reasons*\n{lines}", SECTION_LIMIT))})
    context = [
        f"*Evidence* {mrkdwn(incident.evidence or 'not collected yet', 900)}",
        f"*Postmortem draft* {mrkdwn(incident.postmortem or 'not drafted yet', 900)}",
        f"*Details* {where_to_look(incident)}",
    ]
    blocks.append({"type": "context", "elements": [_md(c) for c in context]})
    for approval in approvals[:MAX_APPROVAL_CARDS]:
        blocks.extend(approval_card(approval, revision))
    if len(approvals) > MAX_APPROVAL_CARDS:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    _md(f"{len(approvals) - MAX_APPROVAL_CARDS} more approvals: see agentwatch incidents show")
                ],
            }
        )
    return fallback, blocks


def approval_card(approval: ApprovalView, revision: int = 0) -> list[dict[str, Any]]:
    """Divider, what is asked and by whom, then the buttons (pending) or the outcome."""
    label = action_label(approval.action)
    approvals_given = [v for v in approval.votes if v.decision == "approve"]
    icon = _STATUS_ICON.get(approval.status, "")
    who = ", ".join(mention(i) for i in approval.active_approvers) or "_nobody is configured_"
    text = (
        f"{icon} *Approval: {label}* — {approval.status}\n"
        f"{subject_text(approval.subject)}\n"
        f"Quorum {len(approvals_given)}/{approval.quorum} · approvers {who}"
    )
    if approval.status == "pending":
        text += f" · expires {when(approval.expires_ms)}"
        if approval.escalation_level:
            text += f" · escalated ×{approval.escalation_level}"
    if approval.note:
        text += f"\n:warning: {mrkdwn(approval.note, 300)}"
    blocks: list[dict[str, Any]] = [{"type": "divider"}, {"type": "section", "text": _md(cap(text, SECTION_LIMIT))}]
    outcome = [
        f"{'Approved' if v.decision == 'approve' else 'Denied'} by {_voter(v)} {when(v.ts_ms)}" for v in approval.votes
    ]
    if approval.result_summary:
        outcome.append(f"Result: {mrkdwn(approval.result_summary, 500)}")
    if approval.error:
        outcome.append(f"Error: {mrkdwn(approval.error, 500)}")
    if approval.status == "expired":
        outcome.append("Expired without a decision — nothing was executed.")
    if outcome:
        blocks.append({"type": "context", "elements": [_md(cap(line, FIELD_LIMIT)) for line in outcome[:10]]})
    if approval.status == "pending":
        block_id = f"approval:{approval.approval_id}:{revision}"
        blocks.append(
            {
                "type": "actions",
                "block_id": block_id[:255],
                "elements": [
                    _button("Approve", APPROVE, approval.approval_id, "primary", confirm=_confirm(approval)),
                    _button("Deny", DENY, approval.approval_id, "danger"),
                    _button("Details", DETAILS, approval.approval_id),
                ],
            }
        )
    return blocks


def details_text(incident: IncidentView, approval: ApprovalView | None = None) -> str:
    """Thread or ephemeral text with the alerts and where the evidence is."""
    lines = [
        f"*Incident {mrkdwn(incident.incident_id, 100)}* — agent {mrkdwn(incident.agent_id, 200)}, "
        f"session {mrkdwn(incident.session_id, 200)}, principal {mrkdwn(incident.principal or '—', 200)}"
    ]
    lines += [f"• {mrkdwn(a, 400)}" for a in incident.alerts]
    if approval is not None:
        lines.append(f"*{action_label(approval.action)}* would act on {subject_text(approval.subject)}")
    lines.append(f"Evidence: {mrkdwn(incident.evidence or 'not collected yet', 500)}")
    lines.append(f"Postmortem draft: {mrkdwn(incident.postmortem or 'not drafted yet', 500)}")
    lines.append(f"Details: {where_to_look(incident)}")
    return cap("\n".join(lines), SECTION_LIMIT)


def vote_note(approval: ApprovalView, vote: VoteView) -> str:
    """Thread reply for one vote."""
    given = sum(v.decision == "approve" for v in approval.votes if v.ts_ms <= vote.ts_ms)
    verb = "approved" if vote.decision == "approve" else "denied"
    return f"{_voter(vote)} {verb} *{action_label(approval.action)}* {when(vote.ts_ms)}" + (
        f" ({given}/{approval.quorum})" if vote.decision == "approve" else ""
    )


def state_note(approval: ApprovalView) -> tuple[str, bool] | None:
    """Thread reply for the approval's current state and whether to broadcast it to the channel."""
    label = f"*{action_label(approval.action)}*"
    if approval.status == "pending" and approval.escalation_level:
        level = approval.escalate_to[approval.escalation_level - 1]
        who = ", ".join(mention(i) for i in level)
        return (
            f":rotating_light: No decision on {label} in time — escalating to {who}. "
            f"Nothing runs without a decision; expires {when(approval.expires_ms)}.",
            True,
        )
    if approval.status == "pending":
        return f":hourglass_flowing_sand: Approval requested: {label} (quorum {approval.quorum}).", False
    notes = {
        "approved": f":white_check_mark: {label} approved — running it now.",
        "denied": f":no_entry: {label} denied. Nothing was executed.",
        "expired": f":alarm_clock: {label} expired without a decision. Nothing was executed.",
        "cancelled": f":heavy_minus_sign: {label} cancelled: {mrkdwn(approval.note or 'incident resolved', 300)}",
        "executed": f":white_check_mark: {label} done: {mrkdwn(approval.result_summary or '', 1000)}",
        "failed": f":x: {label} failed: {mrkdwn(approval.error or '', 1000)}",
    }
    text = notes.get(approval.status)
    return None if text is None else (text, False)


def refusal_text(action: str, reason: str) -> str:
    """The ephemeral answer to a refused click."""
    return f":no_entry_sign: Your decision on *{action_label(action)}* was not recorded: {mrkdwn(reason, 500)}"


def _voter(vote: VoteView) -> str:
    if vote.channel == "slack" and USER_ID.match(vote.user_id):
        return mention(vote.user_id)
    return f"{mrkdwn(vote.user_id, 100)} (via {mrkdwn(vote.channel, 10)})"


def _md(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _button(
    text: str, action_id: str, value: str, style: str | None = None, confirm: dict[str, Any] | None = None
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def _confirm(approval: ApprovalView) -> dict[str, Any]:
    label = action_label(approval.action)
    return {
        "title": {"type": "plain_text", "text": plain(f"Approve {label}?", 100)},
        "text": {
            "type": "mrkdwn",
            "text": cap(
                f"This will {label} — {subject_text(approval.subject, 200)}. Read the incident before approving.", 300
            ),
        },
        "confirm": {"type": "plain_text", "text": "Approve"},
        "deny": {"type": "plain_text", "text": "Back"},
        "style": "primary",
    }

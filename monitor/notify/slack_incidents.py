"""``slack``: one Slack message per incident, posted when it first qualifies and updated in place
(``chat.update`` on the stored channel and ts) on every later change.

Agent-written text (title, summaries, identifiers) goes through
:func:`agentwatch.approve.slack.text.mrkdwn`: redacted, no mention, link or formatting survives.
The incident link is built from ``incident_url`` (a configured base URL), never a server path.
Token and channel come from the environment (``AGENTWATCH_SLACK_BOT_TOKEN``,
``AGENTWATCH_SLACK_CHANNEL``, as for approvals) or a token file.
"""

from __future__ import annotations

from typing import Any, Final

from agentwatch.approve.slack.notifier import SlackNotifier, SlackRejected, SlackUnavailable
from agentwatch.approve.slack.text import FIELD_LIMIT, mrkdwn, plain
from agentwatch.events.audit_event import rfc3339_ms
from agentwatch.notify.http import check_url, incident_link
from agentwatch.notify.spec import Notification, Notifier, NotifierContext, NotifierParams, NotifyError, secret
from agentwatch.observe import metrics

HEADLINE: Final = {
    "opened": "Incident opened",
    "severity_raised": "Severity raised",
    "contained": "Incident contained",
    "resolved": "Incident resolved",
}
ICON: Final = {"info": "⚪", "low": "🔵", "medium": "🟡", "high": "🟠", "critical": "🔴"}


class SlackParams(NotifierParams, kw_only=True, forbid_unknown_fields=True):
    token_env: str | None = "AGENTWATCH_SLACK_BOT_TOKEN"
    token_file: str | None = None
    channel: str | None = None  #: channel id; default ``$AGENTWATCH_SLACK_CHANNEL``
    channel_env: str | None = "AGENTWATCH_SLACK_CHANNEL"
    channel_file: str | None = None
    api_url_env: str | None = "AGENTWATCH_SLACK_API_URL"  #: Web API base URL (tests: a local fake)
    api_url_file: str | None = None
    incident_url: str | None = None


def render(note: Notification, link: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and blocks for the incident's message."""
    headline = f"{ICON.get(note.severity, '')} {HEADLINE[note.change]} · {note.severity.upper()} · {note.status}"
    title = mrkdwn(note.title, 300)
    text = f"{headline}: {title}"
    fields = [
        f"*Agent*\n{mrkdwn(note.agent_id, 200)}",
        f"*Session*\n{mrkdwn(note.session_id, 200)}",
        f"*Principal*\n{mrkdwn(note.principal or '-', 200)}",
        f"*Detectors*\n{mrkdwn(', '.join(note.detectors) or '-', 300)}",
        f"*Opened*\n{rfc3339_ms(note.opened_ms)}",
        f"*Mode*\n{mrkdwn(note.mode, 20)}",
    ]
    if note.techniques:
        fields.append(f"*ATT&amp;CK*\n{mrkdwn(', '.join(note.techniques), 300)}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": plain(headline, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f[:FIELD_LIMIT]} for f in fields]},
    ]
    if note.summaries:
        lines = "\n".join(f"• {mrkdwn(s, 400)}" for s in note.summaries)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": lines[:FIELD_LIMIT]}})
    context = f"`{note.incident_id}`"
    if link:
        context += f" · <{link}|Open incident>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return text, blocks


class SlackIncidents(Notifier):
    name = "slack"
    params_type = SlackParams

    def __init__(self, params: SlackParams, context: NotifierContext) -> None:
        self.params = params
        token = secret(params, "token", context) or ""
        channel = params.channel or secret(params, "channel", context) or ""
        api_url = secret(params, "api_url", context, required=False)
        if params.incident_url:
            check_url(params.incident_url, "incident_url")
        self.slack = SlackNotifier(token, channel, base_url=api_url, calls=metrics.NOTIFY_SLACK_CALLS)

    def send(self, note: Notification, state: dict[str, Any]) -> dict[str, Any]:
        text, blocks = render(note, incident_link(self.params.incident_url, note.incident_id))
        try:
            if state.get("channel") and state.get("ts"):
                self.slack.update(str(state["channel"]), str(state["ts"]), text, blocks)
                return state
            channel, ts = self.slack.post(text, blocks)
        except SlackUnavailable as exc:
            raise NotifyError(str(exc), exc.retry_after_s) from None
        except SlackRejected as exc:
            raise NotifyError(f"rejected: {exc}") from None
        return {**state, "channel": channel, "ts": ts}

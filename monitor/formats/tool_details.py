"""Claude Code tool results that arrive without tool details: counted, and named once per agent.

Claude Code's OpenTelemetry ``tool_result`` event carries the tool's input — the file a Read
opened, the URL a WebFetch fetched — only with ``OTEL_LOG_TOOL_DETAILS=1`` (``tool_input``).
Without it only Bash commands (``tool_parameters.full_command``) and MCP server/tool names
come through, so a ``Read ~/.ssh/id_rsa`` is a Read of nothing in particular and the
secret-access, exfiltration and provenance rules cannot fire on it. The decoder marks such an
event (``attributes["agentwatch.no_tool_details"]``); :func:`note` counts it
(``agentwatch_ingest_events_without_tool_details_total``) and logs one warning per agent, so
the lost coverage shows on the dashboard and in the log instead of as silence.
"""

from __future__ import annotations

import logging
from typing import Final

from agentwatch.events.audit_event import AuditEvent
from agentwatch.observe import metrics

log = logging.getLogger(__name__)

#: The attribute the decoder sets on a tool result whose input (and so target) is unknown.
FLAG: Final = "agentwatch.no_tool_details"
#: Agents warned about; past this many, warnings stop (the counter goes on).
MAX_WARNED: Final = 10_000

_warned: set[str] = set()


def note(event: AuditEvent) -> None:
    """Count one event without tool details; warn the first time its agent is seen so."""
    metrics.EVENTS_WITHOUT_TOOL_DETAILS.inc()
    if event.agent_id in _warned or len(_warned) >= MAX_WARNED:
        return
    _warned.add(event.agent_id)
    log.warning(
        "agent %r sends Claude Code tool results without tool details: set OTEL_LOG_TOOL_DETAILS=1 "
        "(managed settings) or file paths and URLs stay unseen and secret-access rules cannot fire",
        event.agent_id[:120],
    )

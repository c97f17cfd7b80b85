"""Control commands on ``agent.control`` — the public format agent gateways obey.

``{command_id, type, session_id, agent_id, incident_id, reason, issued_at}``; ``type``
is ``terminate_session`` for now. ``command_id`` derives from the incident and the
command's subject, so a command published twice is recognisably the same command.
``reason`` is written by agentwatch from detector names and categories — never agent
text — because a gateway may show it to the agent.
"""

from __future__ import annotations

import hashlib

import msgspec


class ControlCommand(msgspec.Struct, kw_only=True):
    command_id: str
    type: str
    session_id: str
    agent_id: str
    incident_id: str
    reason: str
    issued_at: str


def command_id_for(incident_id: str, command: str, subject: str) -> str:
    return "cmd-" + hashlib.sha256(f"{incident_id}\x00{command}\x00{subject}".encode()).hexdigest()[:24]

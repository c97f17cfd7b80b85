"""Control commands on ``agent.control`` — the public format agent gateways obey.

``{command_id, type, session_id, agent_id, session_key, agent_key, incident_id, reason,
issued_at}``; ``type`` is ``terminate_session`` (or, after an approval, one of the
gated types in :class:`agentwatch.respond.gated_action_spec.ContainmentCommand`). ``command_id`` derives
from the incident and the command's subject, so a command published twice is
recognisably the same command. ``reason`` is written by agentwatch from detector names
and categories — never agent text — because a gateway may show it to the agent.

Identifiers are agent-written: a session id can carry a token. What is published goes
through :func:`public_command`, which redacts ``session_id``, ``agent_id`` and
``target`` like any other agent text (unchanged when they hold no secret) and adds
``session_key`` / ``agent_key``, the SHA-256 (hex) of the *unredacted* ids. A gateway
matches a command to its session by ``sha256(its own session id) == session_key``
(:func:`identity_key`), which works whether or not the id was redacted.

>>> cmd = ControlCommand(command_id="cmd-1", type="terminate_session", session_id="s-AKIA" + "QWERTYUIOPASDFGH",
...                      agent_id="coder-7", incident_id="inc-1", reason="r", issued_at="t")
>>> shown = public_command(cmd)
>>> shown.session_id, shown.agent_id, shown.session_key == identity_key(cmd.session_id)
('s-[REDACTED:aws_access_key]', 'coder-7', True)
"""

from __future__ import annotations

import hashlib
from typing import TypeVar

import msgspec

from agentwatch.respond.redaction import redact


class ControlCommand(msgspec.Struct, kw_only=True):
    command_id: str
    type: str
    session_id: str
    agent_id: str
    incident_id: str
    reason: str
    issued_at: str
    #: SHA-256 (hex) of the unredacted ``session_id`` / ``agent_id``: what gateways match on.
    session_key: str = ""
    agent_key: str = ""


def command_id_for(incident_id: str, command: str, subject: str) -> str:
    return "cmd-" + hashlib.sha256(f"{incident_id}\x00{command}\x00{subject}".encode()).hexdigest()[:24]


def session_command_id(command: str, session_id: str) -> str:
    """The id of ``command`` for a session when the incident is not known yet (``worker = "alerts"``:
    ``run`` sends ``terminate_session`` in its batch, before any incident exists). It derives
    from the session alone, so ``run`` re-processing the batch after a crash, and ``respond``
    recording the step later, arrive at the same id: gateways de-duplicate it and ``respond``
    finds it on the control topic instead of sending it again."""
    return command_id_for("session", command, session_id)


def identity_key(identifier: str) -> str:
    """The stable fingerprint of an identifier: SHA-256 of its UTF-8 bytes, hex.

    >>> identity_key("exfil-1")[:16]
    '86c33c74cc9ea336'
    """
    return hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()


_Command = TypeVar("_Command", bound=ControlCommand)


def public_command(command: _Command) -> _Command:
    """The command as it may leave the process: identifiers redacted, keys filled in (same type as given)."""
    changes: dict[str, object] = {
        "session_id": redact(command.session_id),
        "agent_id": redact(command.agent_id),
        "session_key": command.session_key or identity_key(command.session_id),
        "agent_key": command.agent_key or identity_key(command.agent_id),
    }
    target = getattr(command, "target", None)
    if isinstance(target, str):
        changes["target"] = redact(target)
    approved_by = getattr(command, "approved_by", None)
    if isinstance(approved_by, list):
        changes["approved_by"] = [redact(str(who)) for who in approved_by]
    return msgspec.structs.replace(command, **changes)

"""Claude Code hook input → one audit event.

A Claude Code hook receives one JSON object on stdin (``session_id``, ``transcript_path``,
``cwd``, ``permission_mode``, ``hook_event_name`` and per-event fields such as ``tool_name``,
``tool_input``, ``tool_response``, ``tool_use_id``, ``prompt``, ``source``, ``reason``). The
``claude-hook`` format is that object, as a hook forwarder publishes it; the CLI hook calls
:func:`hook_input_to_event` directly.

====================  ============  ======================================================
``hook_event_name``   ``kind``      fields
====================  ============  ======================================================
PreToolUse            tool_call     ``tool_name``→tool; ``tool_input``→args; target from
                                    the input (:mod:`agentwatch.formats.claude_code`);
                                    encoded input size→bytes_out
PostToolUse           tool_result   as PreToolUse, plus outcome from ``tool_response``
                                    (``success``/``is_error``/``error``; ``ok`` if silent),
                                    the response text→``attributes["content"]`` and its
                                    size (or WebFetch ``bytes``)→bytes_in
PostToolUseFailure    tool_result   as PostToolUse with outcome error
UserPromptSubmit      prompt        ``prompt`` stays in attributes
SessionStart/End      session_start / session_end (``source``/``reason`` in attributes)
any other             lower-snake of the name (``SubagentStop``→``subagent_stop``)
====================  ============  ======================================================

ts is the broker (or CLI) time: hooks carry none. ``agent_id`` is the caller's
``agent_id=`` argument, else ``agentwatch.agent_id`` (the object ``agentwatch serve`` adds
when it publishes a hook event: the installation's id), else an ``agent_id`` key a wrapper
added, else ``claude-code``;
Claude Code itself sends ``agent_id`` *with* ``agent_type`` for subagent events — that id
names one short-lived subagent, so it is kept as ``attributes["subagent_id"]`` and never
used as the identity. principal is ``principal=``, else ``agentwatch.principal``, else a
``principal`` or ``user`` key.
``event_id`` is ``<tool_use_id>:<hook_event_name>`` when there is a tool use, else
``cc-hook-`` + 40 hex digits of SHA-256 over the key-sorted input and ``received_ms`` (the
Kafka timestamp, stable on re-delivery; it keeps two identical prompts apart). Everything
not mapped (``cwd``, ``transcript_path``, ``permission_mode``, ``tool_use_id``, …) goes to
``attributes``; long strings are cut and listed in ``attributes["agentwatch.truncated"]``.

>>> ev = hook_input_to_event({"session_id": "s1", "hook_event_name": "PreToolUse",
...     "tool_name": "WebFetch", "tool_input": {"url": "https://example.com", "prompt": "sum"},
...     "tool_use_id": "toolu_01", "cwd": "/repo"}, 1767225600000)
>>> ev.event_id, ev.kind, ev.tool, ev.target, ev.agent_id, ev.attributes["cwd"]
('toolu_01:PreToolUse', 'tool_call', 'WebFetch', 'https://example.com', 'claude-code', '/repo')
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import msgspec

from agentwatch.errors import DecodeError
from agentwatch.events.audit_event import MAX_MESSAGE_BYTES, AuditEvent, from_mapping
from agentwatch.formats import DecodeResult
from agentwatch.formats.claude_code import (
    DEFAULT_AGENT_ID,
    camel_to_snake,
    cap_args,
    clip_attributes,
    clip_fields,
    json_error_reason,
    tool_response_outcome,
    tool_response_text,
    tool_target,
)

_KINDS: Final = {
    "PreToolUse": "tool_call",
    "PostToolUse": "tool_result",
    "PostToolUseFailure": "tool_result",
    "UserPromptSubmit": "prompt",
    "SessionStart": "session_start",
    "SessionEnd": "session_end",
}
_MAX_TOOL_USE_ID: Final = 200
#: The key ``agentwatch serve`` adds to a hook input it publishes: ``{"agent_id": …, "principal": …}``, the
#: identity serve established (installation and principal headers, token), ahead of any other.
SERVE_STAMP: Final = "agentwatch"
_MISSING: Final = object()
# ``1e400`` anywhere in the input becomes inf rather than rejecting the action it describes.
_decoder = msgspec.json.Decoder(dict[str, Any], float_hook=float)
_encoder = msgspec.json.Encoder()
_canonical = msgspec.json.Encoder(order="sorted")


def decode_claude_hook(raw: bytes, received_ms: int) -> DecodeResult:
    """Decode one hook input (JSON object) into one event, or one error.

    Parameters
    ----------
    raw
        The hook's stdin JSON, as published to Kafka.
    received_ms
        Broker time; it is the event's ``ts`` (hooks carry no time).

    Returns
    -------
    DecodeResult
        One event, or one :class:`~agentwatch.errors.DecodeError`.
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        return _fail("oversized", f"message is {len(raw)} bytes (cap {MAX_MESSAGE_BYTES})")
    try:
        obj = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        return _fail("invalid_field", f"hook input must be a JSON object: {exc}")
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        return _fail(json_error_reason(raw), str(exc) or type(exc).__name__)
    try:
        return DecodeResult([hook_input_to_event(obj, received_ms)], [])
    except DecodeError as exc:
        return DecodeResult([], [exc])


def hook_input_to_event(
    obj: dict[str, Any],
    received_ms: int,
    *,
    agent_id: str | None = None,
    principal: str | None = None,
) -> AuditEvent:
    """Map one parsed hook input onto a validated native event.

    Parameters
    ----------
    obj
        The hook input object (not modified).
    received_ms
        Epoch milliseconds the input was received; becomes ``ts``.
    agent_id, principal
        Identity the caller knows better than the input (e.g. from the CLI's config).

    Returns
    -------
    AuditEvent

    Raises
    ------
    DecodeError
        ``missing_field``/``invalid_field`` when ``session_id`` or ``hook_event_name`` is
        absent or not a string, or the mapped event fails validation.
    """
    hook = _required_str(obj, "hook_event_name")
    session_id = _required_str(obj, "session_id")
    rest = dict(obj)
    del rest["hook_event_name"], rest["session_id"]
    truncated: list[str] = []

    stamped = rest.pop(SERVE_STAMP, None)  # what `agentwatch serve` adds before publishing: its own identity
    if isinstance(stamped, dict):
        if agent_id is None and isinstance(stamped.get("agent_id"), str) and stamped["agent_id"]:
            agent_id = stamped["agent_id"]
        if principal is None and isinstance(stamped.get("principal"), str) and stamped["principal"]:
            principal = stamped["principal"]
    elif stamped is not None:
        rest[SERVE_STAMP] = stamped
    subagent = isinstance(rest.get("agent_type"), str) and "agent_id" in rest
    if subagent:
        rest["subagent_id"] = rest.pop("agent_id")
    wrapper_agent = rest.pop("agent_id", None)
    if agent_id is None:
        agent_id = wrapper_agent if isinstance(wrapper_agent, str) and wrapper_agent else DEFAULT_AGENT_ID
    elif wrapper_agent is not None:
        rest["agent_id"] = wrapper_agent
    for key in ("principal", "user"):
        value = rest.pop(key, None)
        if principal is None and isinstance(value, str) and value:
            principal = value
        elif value is not None:
            rest[key] = value

    native: dict[str, Any] = {
        "event_id": _event_id(obj, hook, received_ms),
        "ts": received_ms,
        "session_id": session_id,
        "agent_id": agent_id,
        "kind": _KINDS.get(hook) or camel_to_snake(hook),
        "principal": principal,
    }
    tool = rest.pop("tool_name", None)
    if tool is not None:
        if not isinstance(tool, str):
            raise DecodeError("invalid_field", "`tool_name` is not a string")
        native["tool"] = tool
    tool_input = rest.pop("tool_input", None)
    if isinstance(tool_input, dict):
        native["target"] = tool_target(tool, tool_input)
        native["args"], cut = cap_args(tool_input)
        truncated.extend(cut)
        native["bytes_out"] = len(_encoder.encode(tool_input))
    elif tool_input is not None:
        rest["tool_input"] = tool_input
    response = rest.pop("tool_response", _MISSING)
    if response is not _MISSING:
        _map_response(response, rest, native, truncated)
    if hook == "PostToolUse":
        native["outcome"] = native.get("outcome") or "ok"
    elif hook == "PostToolUseFailure":
        native["outcome"] = "error"
    clip_fields(native, truncated)
    clip_attributes(rest, truncated)
    if truncated:
        rest["agentwatch.truncated"] = truncated
    rest["hook_event_name"] = hook
    native["attributes"] = rest
    return from_mapping(native)


def _map_response(response: Any, rest: dict[str, Any], native: dict[str, Any], truncated: list[str]) -> None:
    """The tool's answer: its text as ``attributes["content"]``, its size, its outcome."""
    native["outcome"] = tool_response_outcome(response)
    text = tool_response_text(response)
    if text is None:
        return
    reported = response.get("bytes") if isinstance(response, dict) else None
    if isinstance(reported, int) and not isinstance(reported, bool) and reported >= 0:
        native["bytes_in"] = reported
    else:
        native["bytes_in"] = len(text.encode("utf-8", errors="replace"))
    if "content" in rest:  # a wrapper's own `content` key must not hide the tool's answer
        rest["hook_content"] = rest.pop("content")
    rest["content"] = text  # cut to MAX_TEXT_CHARS by clip_attributes with the rest


def _event_id(obj: dict[str, Any], hook: str, received_ms: int) -> str:
    tool_use_id = obj.get("tool_use_id")
    if isinstance(tool_use_id, str) and 0 < len(tool_use_id) <= _MAX_TOOL_USE_ID:
        return f"{tool_use_id}:{hook}"
    digest = hashlib.sha256(_canonical.encode(obj))
    digest.update(b"\x1f%d" % received_ms)
    return "cc-hook-" + digest.hexdigest()[:40]


def _required_str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None or value == "":
        raise DecodeError("missing_field", f"`{key}` is missing")
    if not isinstance(value, str):
        raise DecodeError("invalid_field", f"`{key}` is not a string")
    return value


def _fail(reason: str, detail: str) -> DecodeResult:
    return DecodeResult([], [DecodeError(reason, detail)])

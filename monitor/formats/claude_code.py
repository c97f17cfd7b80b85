"""What the monitor knows about Claude Code's tools, shared by the ``otlp-json`` and ``claude-hook`` decoders.

Claude Code names a tool (``Bash``, ``Read``, ``WebFetch``, ``mcp__github__create_issue`` …) and gives
it an input object. The native event wants the input as ``args`` and one ``target`` string: what the
tool acted on (the command, the file, the URL, the query). Everything here is pure data handling —
every value is agent-written and kept verbatim, never evaluated.

>>> tool_target("Bash", {"command": "ls -la", "description": "list files"})
'ls -la'
>>> tool_target("Edit", {"file_path": "CLAUDE.md", "old_string": "a", "new_string": "b"})
'CLAUDE.md'
>>> tool_target("mcp__gmail__send_email", {"to": ["a@x.io", "b@y.io"], "body": "hi"})
'a@x.io, b@y.io'
>>> tool_target("SomeNewTool", {"flag": True}) is None
True
>>> camel_to_snake("SubagentStop")
'subagent_stop'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from agentwatch.events.audit_event import MAX_ARGS_BYTES, MAX_ID_CHARS, MAX_TEXT_CHARS, TRUNCATION_MARK

#: ``agent_id`` when nothing better identifies the installation.
DEFAULT_AGENT_ID: Final = "claude-code"

#: Input keys holding the target, per built-in tool, most specific first.
TOOL_TARGET_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "Bash": ("command", "full_command"),
    "PowerShell": ("command", "full_command"),
    "BashOutput": ("bash_id", "shell_id"),
    "KillShell": ("shell_id", "bash_id"),
    "Read": ("file_path",),
    "Write": ("file_path",),
    "Edit": ("file_path",),
    "MultiEdit": ("file_path",),
    "NotebookEdit": ("notebook_path", "file_path"),
    "NotebookRead": ("notebook_path", "file_path"),
    "LS": ("path",),
    "WebFetch": ("url",),
    "WebSearch": ("query",),
    "Grep": ("pattern",),
    "Glob": ("pattern",),
    "Task": ("description", "prompt"),
    "Agent": ("description", "prompt"),
    "Skill": ("skill", "command"),
    "SlashCommand": ("command",),
}

#: Keys tried, in order, for MCP and unknown tools (and for built-ins missing their own key).
COMMON_TARGET_KEYS: Final = (
    "url",
    "uri",
    "path",
    "file_path",
    "to",
    "recipient",
    "recipients",
    "channel",
    "query",
    "command",
    "pattern",
)

_SMALL_STRING: Final = 1024
_ATTRIBUTE_CHARS: Final = MAX_TEXT_CHARS // 2
_FULL_TEXT_ATTRIBUTES: Final = frozenset({"content", "prompt"})
_ARGS_STRING_BUDGET: Final = MAX_ARGS_BYTES // 2
_CAMEL_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_TRUE: Final = frozenset({"true", "1", "yes"})
_FALSE: Final = frozenset({"false", "0", "no"})
_encoder = msgspec.json.Encoder()


def tool_target(tool: str | None, args: Mapping[str, Any] | None) -> str | None:
    """The one string a tool call acted on, or None when the input names none.

    Parameters
    ----------
    tool
        Claude Code tool name as given (built-in, ``mcp__server__tool`` or unknown).
    args
        The tool's input object.

    Returns
    -------
    str or None
        The first usable value under the tool's own keys, then under :data:`COMMON_TARGET_KEYS`;
        a list of strings (e.g. several recipients) is joined with ``", "``.
    """
    if not args:
        return None
    for key in TOOL_TARGET_KEYS.get(tool or "", ()):
        found = _as_target(args.get(key))
        if found is not None:
            return found
    for key in COMMON_TARGET_KEYS:
        found = _as_target(args.get(key))
        if found is not None:
            return found
    return None


def _as_target(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, list):
        parts = [v for v in value if isinstance(v, str) and v]
        return ", ".join(parts) if parts else None
    return None


def normalise_otel_parameters(tool: str | None, params: dict[str, Any]) -> dict[str, Any]:
    """Make OTel's ``tool_parameters`` look like the tool input where they overlap.

    Claude Code's ``tool_result`` event reports a Bash command as ``full_command`` (plus the
    first word as ``bash_command``); the hook input calls it ``command``. Renaming keeps one
    shape for detectors.

    >>> normalise_otel_parameters("Bash", {"bash_command": "git", "full_command": "git push"})
    {'bash_command': 'git', 'command': 'git push'}
    """
    if "full_command" in params and "command" not in params:
        params = dict(params)
        params["command"] = params.pop("full_command")
    return params


def cap_args(args: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Shorten long top-level strings so the object keeps its shape under the ``args`` cap.

    Without this, one huge value (a whole file in ``Write.content``, a padded ``old_string``)
    would make :func:`agentwatch.events.audit_event.from_wire` collapse ``args`` into a truncated JSON head
    and drop the keys after it — such as the ``new_string`` that carries an injected
    instruction. Long strings share a budget of half the cap; short ones are untouched.

    Returns
    -------
    tuple
        The (possibly copied) object and the ``args.<key>`` names that were truncated.
    """
    long_keys = [k for k, v in args.items() if isinstance(v, str) and len(v) > _SMALL_STRING]
    if not long_keys:
        return args, []
    per_key = max(_SMALL_STRING, _ARGS_STRING_BUDGET // len(long_keys))
    out = dict(args)
    truncated: list[str] = []
    for key in long_keys:
        out[key], cut = clip_text(out[key], per_key)
        if cut:
            truncated.append(f"args.{key}")
    return out, truncated


def clip_text(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` characters, ending in the truncation mark; and whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[: max(0, limit - len(TRUNCATION_MARK))] + TRUNCATION_MARK, True


def clip_attributes(attributes: dict[str, Any], truncated: list[str]) -> None:
    """Cap every top-level string attribute in place; ``content``/``prompt`` get the full text cap.

    Capping each value keeps the other attributes when one is huge (the object-level cap in
    :mod:`agentwatch.events.audit_event` would otherwise replace them all with a truncated JSON head).
    """
    for key, value in attributes.items():
        if isinstance(value, str) and len(value) > _ATTRIBUTE_CHARS:
            limit = MAX_TEXT_CHARS if key in _FULL_TEXT_ATTRIBUTES else _ATTRIBUTE_CHARS
            if len(value) > limit:
                attributes[key], _ = clip_text(value, limit)
                truncated.append(f"attributes.{key}")


def clip_fields(native: dict[str, Any], truncated: list[str]) -> None:
    """Cut ``tool`` and ``target`` to the caps of :mod:`agentwatch.events.audit_event` in place.

    :func:`agentwatch.events.audit_event.from_wire` would cut them too, but it replaces
    ``attributes["agentwatch.truncated"]`` with its own list; cutting here keeps one
    complete list.
    """
    for name, limit in (("tool", MAX_ID_CHARS), ("target", MAX_TEXT_CHARS)):
        value = native.get(name)
        if isinstance(value, str) and len(value) > limit:
            native[name], _ = clip_text(value, limit)
            truncated.append(name)


def parse_bool(value: Any) -> bool | None:
    """A bool from a bool or a ``"true"``/``"false"`` string (OTel sends strings); else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def tool_response_text(response: Any) -> str | None:
    """The text a tool returned to the agent, from a hook's ``tool_response``.

    Knows the shapes of Claude Code's built-ins (Bash ``stdout``/``stderr``, WebFetch
    ``result``, Read ``file.content``, Write ``content``) and of MCP content blocks
    (``[{"type": "text", "text": …}]``); anything else is its compact JSON, so nothing the
    agent saw is invisible to the content detectors.
    """
    if response is None:
        return None
    if isinstance(response, str):
        return response
    if isinstance(response, list):
        parts = [text for item in response if (text := _block_text(item))]
        return "\n".join(parts) if parts else _json_text(response)
    if isinstance(response, dict):
        if "stdout" in response or "stderr" in response:
            streams = [response.get("stdout"), response.get("stderr")]
            return "\n".join(s for s in streams if isinstance(s, str) and s)
        for key in ("content", "result", "output", "text"):
            value = response.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, list):
                parts = [text for item in value if (text := _block_text(item))]
                if parts:
                    return "\n".join(parts)
        file = response.get("file")
        if isinstance(file, dict) and isinstance(file.get("content"), str):
            return file["content"]
    return _json_text(response)


def _block_text(item: Any) -> str | None:
    if isinstance(item, str):
        return item or None
    if isinstance(item, dict):
        for key in ("text", "content"):
            value = item.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _json_text(value: Any) -> str:
    return _encoder.encode(value).decode()


def tool_response_outcome(response: Any) -> str | None:
    """``error`` or ``ok`` when a hook's ``tool_response`` says so, else None."""
    if not isinstance(response, dict):
        return None
    if (
        parse_bool(response.get("success")) is False
        or parse_bool(response.get("is_error")) is True
        or parse_bool(response.get("isError")) is True
        or (isinstance(response.get("error"), str) and response["error"])
    ):
        return "error"
    if parse_bool(response.get("success")) is True:
        return "ok"
    return None


def camel_to_snake(name: str) -> str:
    """``PreCompact`` → ``pre_compact``: the kind for hook events without a mapping."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def json_error_reason(raw: bytes) -> str:
    """``invalid_utf8`` or ``invalid_json`` for a message JSON decoding rejected."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    return "invalid_json"

"""Tool calls → effects: structured tools map directly, shells and code go to the analysers.

:func:`effects_of` is the entry point (re-exported by :mod:`agentwatch.detect.effects`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Final

from agentwatch.detect.effects.classify import endpoint_classes, normalise_path, path_classes
from agentwatch.detect.effects.infra import CLI_TOOLS, cli_line, sql_effects_of, sql_tool_text
from agentwatch.detect.effects.memory import memory_of
from agentwatch.detect.effects.model import NO_CLASSES, Effect, make
from agentwatch.detect.effects.python_code import analyse_python
from agentwatch.detect.effects.shell import Analysis, analyse_shell

#: Event kinds that record an action (a tool_result is the only record on Claude Code's OTel path).
ACTION_KINDS: Final = frozenset({"tool_call", "tool_result", "memory_write"})

_SHELL_TOOLS: Final = frozenset(
    {
        "bash",
        "shell",
        "terminal",
        "run_command",
        "execute_command",
        "run_shell_command",
        "exec",
        "execute",
        "run_terminal_cmd",
        "shell_exec",
        "local_shell",
        "container.exec",
    }
)
_NOTHING_TOOLS: Final = frozenset(
    {
        "task",
        "agent",
        "todowrite",
        "todoread",
        "exitplanmode",
        "bashoutput",
        "killshell",
        "killbash",
        "skill",
        "slashcommand",
        "askuserquestion",
        "websearch",
        "listmcpresourcestool",
        "enterplanmode",
    }
)
_READ_TOOLS: Final = frozenset(
    {
        "read",
        "notebookread",
        "ls",
        "read_file",
        "view",
        "read_text_file",
        "read_multiple_files",
        "list_directory",
        "get_file_contents",
        "directory_tree",
    }
)
_WRITE_TOOLS: Final = frozenset(
    {
        "write",
        "edit",
        "multiedit",
        "notebookedit",
        "write_file",
        "edit_file",
        "create_file",
        "str_replace_editor",
        "str_replace_based_edit_tool",
        "apply_patch",
    }
)
_SHELL_KEYS: Final = ("command", "cmd", "script", "shell", "commandline", "command_line")
_CODE_KEYS: Final = ("code", "source", "python", "snippet")
_URL_KEYS: Final = (
    "url",
    "uri",
    "endpoint",
    "href",
    "link",
    "webhook",
    "webhook_url",
    "api_url",
    "base_url",
    "target_url",
    "callback_url",
    "website",
)
_PATH_KEYS: Final = (
    "file_path",
    "path",
    "filepath",
    "file",
    "filename",
    "notebook_path",
    "directory",
    "dir",
    "source",
    "src",
    "destination",
    "dest",
    "target_path",
    "output_path",
    "paths",
)
_RECIPIENT_KEYS: Final = (
    "to",
    "recipient",
    "recipients",
    "email",
    "cc",
    "bcc",
    "channel",
    "phone",
    "phone_number",
    "chat_id",
    "user_email",
    "address",
    "emails",
)
_PAYLOAD_KEYS: Final = ("body", "data", "content", "message", "text", "payload", "json", "attachment", "attachments")
_WORD: Final = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_WRITE_VERBS: Final = frozenset(
    {
        "write",
        "edit",
        "create",
        "save",
        "put",
        "update",
        "append",
        "insert",
        "replace",
        "patch",
        "set",
        "modify",
        "store",
        "add",
        "upload",
        "mkdir",
        "copy",
    }
)
_DELETE_VERBS: Final = frozenset(
    {"delete", "remove", "rm", "unlink", "erase", "destroy", "drop", "purge", "trash", "wipe", "rmdir"}
)
_MOVE_VERBS: Final = frozenset({"move", "rename", "mv"})
_SEND_VERBS: Final = frozenset(
    {
        "send",
        "post",
        "email",
        "mail",
        "message",
        "notify",
        "publish",
        "share",
        "upload",
        "submit",
        "reply",
        "forward",
        "tweet",
        "comment",
        "invite",
        "transfer",
        "push",
        "broadcast",
        "dm",
        "sms",
        "webhook",
    }
)
_FETCH_VERBS: Final = frozenset(
    {
        "fetch",
        "get",
        "read",
        "download",
        "browse",
        "navigate",
        "scrape",
        "open",
        "crawl",
        "visit",
        "request",
        "curl",
        "http",
    }
)

_SHELL_KEY_SET: Final = frozenset(_SHELL_KEYS)
_CODE_KEY_SET: Final = frozenset(_CODE_KEYS)
#: Argument names :func:`_from_args` reads effects from; a call with none of them has no effects.
_EFFECT_ARG_KEYS: Final = frozenset(_URL_KEYS + _PATH_KEYS + _RECIPIENT_KEYS)

_last: list[Any] = [None, None, ()]


def effects_of(event: Any, session: Any = None) -> tuple[Effect, ...]:
    """The effects of one event, in the order found; ``()`` for events that record no action.

    Parameters
    ----------
    event
        A :class:`agentwatch.events.audit_event.AuditEvent` (``kind``, ``tool``, ``target``, ``args``, ``outcome``,
        ``attributes`` are read).
    session
        The event's :class:`agentwatch.detect.session_state.SessionState`, or None. When given, writes whose
        content is known are remembered in ``session.scratch`` and running a remembered file
        adds its effects (``via="script:<path>"``). Calling again with the same event object and
        session returns the same tuple without recomputing or re-remembering.
    """
    if _last[0] is event and _last[1] is session:
        return _last[2]
    effects = _compute(event, session)
    _last[0], _last[1], _last[2] = event, session, effects
    return effects


def _compute(event: Any, session: Any) -> tuple[Effect, ...]:
    if event.kind not in ACTION_KINDS:
        return ()
    tool: str = event.tool or ""
    args: Mapping[str, Any] = event.args if isinstance(event.args, dict) else {}
    attributes = event.attributes if isinstance(event.attributes, dict) else {}
    cwd = attributes.get("cwd") if isinstance(attributes.get("cwd"), str) else None
    scratch = getattr(session, "scratch", None) if session is not None else None
    performed = event.outcome != "denied"
    leaf = tool.rpartition("__")[2].lower()
    if event.kind == "memory_write":
        target = event.target or _first_str(args, _PATH_KEYS) or "memory"
        return (make("write", target, path_classes(target) | {"agent_instructions"}, "tool", "memory"),)
    if leaf in _NOTHING_TOOLS:
        return ()
    if leaf in _READ_TOOLS:
        path = _first_str(args, _PATH_KEYS) or event.target
        return (
            (_path_effect("read", path, "list" if leaf in ("ls", "list_directory", "directory_tree") else None),)
            if path
            else ()
        )
    if leaf in _WRITE_TOOLS:
        return _write_tool(leaf, args, event.target, scratch, cwd, performed)
    if leaf == "webfetch" or leaf == "fetch":
        url = _first_str(args, _URL_KEYS) or event.target
        if not url:
            return ()
        classes = endpoint_classes(url)
        return (make("connect", url, classes, "tool"), make("download", url, classes, "tool"))
    if leaf in ("glob", "grep"):
        return (
            _search_effect(
                leaf,
                _first_str(args, ("path",)) or ".",
                _first_str(args, ("pattern",)) or "",
                _first_str(args, ("glob",)),
            ),
        )
    command = None if _SHELL_KEY_SET.isdisjoint(args) else _first_str(args, _SHELL_KEYS)
    if leaf in _SHELL_TOOLS or leaf == "powershell" or command is not None:
        text = command if command is not None else (event.target or "")
        if leaf == "powershell":
            from agentwatch.detect.effects.commands import sniff
            from agentwatch.detect.effects.shell import Collector

            col = Collector()
            sniff(col, text)
            return col.result().effects
        return _with_memory(analyse_shell(text), scratch, cwd, performed)
    code = None if _CODE_KEY_SET.isdisjoint(args) else _first_str(args, _CODE_KEYS)
    if code is not None and (
        "python" in tool.lower()
        or "jupyter" in tool.lower()
        or "notebook" in tool.lower()
        or args.get("language") in ("python", "python3", "py")
    ):
        return _with_memory(analyse_python(code), scratch, cwd, performed)
    program = leaf.partition(".")[0]
    if program in CLI_TOOLS:  # a tool named for a program (`kubectl`, `aws.cli`): its target or argv is the command
        line = cli_line(program, event.target, args)
        if line is not None:
            return _with_memory(analyse_shell(line), scratch, cwd, performed)
    statement = sql_tool_text(tool, args)
    if statement is not None:  # a database tool (`sql.query`): what its statement drops, truncates or empties
        return sql_effects_of(statement) + _from_args(tool, args, event.target, scratch, cwd, performed)
    return _from_args(tool, args, event.target, scratch, cwd, performed)


def _with_memory(
    analysis: Analysis, scratch: dict[str, Any] | None, cwd: str | None, performed: bool
) -> tuple[Effect, ...]:
    effects = analysis.effects
    if scratch is None or not (analysis.runs or analysis.writes):
        return effects
    mem = memory_of(scratch, create=bool(analysis.writes) and performed)
    if mem is None:
        return effects
    extra: list[Effect] = []
    if performed:  # writes first: `cat > x.sh <<EOF … EOF; bash x.sh` runs the new content
        for w in analysis.writes:
            if w.content is not None:
                mem.put(w.path, w.content, cwd)
            elif w.origin is not None:
                mem.put_origin(w.path, w.origin, cwd)
            else:
                mem.forget(w.path, cwd)
    for path in analysis.runs:
        found = mem.find(path, cwd)
        if found is not None:
            via = f"script:{found[0]}"[:200]
            extra.extend(Effect(e.op, e.resource, e.classes, via, e.detail) for e in found[1].effects)
            extra.extend(_downloaded_run(found[0], found[1].effects, via))
    if not extra:
        return effects
    return tuple(dict.fromkeys(effects + tuple(extra)))


def _downloaded_run(path: str, effects: tuple[Effect, ...], via: str) -> tuple[Effect, ...]:
    """``execute <url> (downloaded)`` when the file run at ``path`` is itself the download of ``<url>``.

    The write memory keeps a downloaded file as one ``download <url>`` effect with detail ``to <path>``
    (:meth:`WriteMemory.put_origin`); running that file runs what was downloaded, as ``curl … | sh`` does.
    """
    own = f"to {path}"[:120]
    return tuple(
        Effect("execute", e.resource, e.classes, via, "downloaded")
        for e in effects
        if e.op == "download" and e.detail == own
    )


def _write_tool(
    leaf: str,
    args: Mapping[str, Any],
    target: str | None,
    scratch: dict[str, Any] | None,
    cwd: str | None,
    performed: bool,
) -> tuple[Effect, ...]:
    path = _first_str(args, _PATH_KEYS) or target
    if not path:
        return ()
    norm = normalise_path(path)
    classes = path_classes(norm)
    detail = "edit" if leaf != "write" and leaf != "write_file" and leaf != "create_file" else None
    out = [make("write", norm, classes, "tool", detail)]
    if "persistence" in classes:
        out.append(make("persist", norm, classes, "tool", detail))
    if "agent_settings" in classes:
        out.append(make("change_settings", norm, classes, "tool", detail))
    if scratch is not None and performed:
        content, merge = _written_content(leaf, args)
        if content is not None:
            memory_of(scratch).put(norm, content, cwd, merge=merge)  # type: ignore[union-attr]
    return tuple(out)


def _written_content(leaf: str, args: Mapping[str, Any]) -> tuple[str | None, bool]:
    """The text a write tool put in the file, and whether it is only part of the file (an edit)."""
    for key in ("content", "file_text", "text"):
        value = args.get(key)
        if isinstance(value, str):
            return value, False
    if isinstance(args.get("new_string"), str):
        return args["new_string"], True
    if isinstance(args.get("new_str"), str):
        return args["new_str"], True
    if isinstance(args.get("new_source"), str):
        return args["new_source"], True
    edits = args.get("edits")
    if isinstance(edits, list):
        parts: list[str] = [
            e["new_string"] for e in edits if isinstance(e, dict) and isinstance(e.get("new_string"), str)
        ]
        if parts:
            return "\n".join(parts), True
    return None, False


def _strings(value: object, limit: int = 8) -> list[str]:
    """An argument that holds one string or a list of them, as a list (the first ``limit``)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value[: limit * 4] if isinstance(v, str)][:limit]
    return []


def _from_args(
    tool: str,
    args: Mapping[str, Any],
    target: str | None,
    scratch: dict[str, Any] | None,
    cwd: str | None,
    performed: bool,
) -> tuple[Effect, ...]:
    """Best effort for MCP and unknown tools, from the verbs of the tool name and the names of its arguments."""
    if _EFFECT_ARG_KEYS.isdisjoint(args):  # no argument names an endpoint, a path or a recipient (the usual case)
        return ()
    send_verb, fetch_verb, write_verb, op = _tool_verbs(tool)
    detail = tool[:60]
    out: list[Effect] = []
    sending = send_verb or any(k in args for k in _PAYLOAD_KEYS) and not fetch_verb
    for key in _URL_KEYS:
        url = args.get(key)
        if isinstance(url, str) and url:
            classes = endpoint_classes(url)
            out.append(make("connect", url, classes, "args"))
            if sending:
                out.append(make("send", url, classes, "args", detail))
            elif fetch_verb or not write_verb:
                out.append(make("download", url, classes, "args", detail))
    for key in _PATH_KEYS:
        for p in _strings(args.get(key)):
            if not p or "://" in p[:12]:
                continue
            this_op = "write" if op == "move" and key in ("destination", "dest", "target_path", "output_path") else op
            out.append(_path_effect(this_op, p, None, "args"))
            if this_op == "write" and scratch is not None and performed:
                content = _first_str(args, ("content", "text", "file_text", "data"))
                if content is not None:
                    memory_of(scratch).put(p, content, cwd)  # type: ignore[union-attr]
    for key in _RECIPIENT_KEYS:
        for r in _strings(args.get(key)):
            if r:
                domain = r.rsplit("@", 1)[1] if "@" in r else ""
                classes = endpoint_classes(domain) if domain else NO_CLASSES
                out.append(make("send", r, classes, "args", detail))
    return tuple(dict.fromkeys(out))


@functools.lru_cache(maxsize=2048)
def _tool_verbs(tool: str) -> tuple[bool, bool, bool, str]:
    """What a tool's name says, for :func:`_from_args`: (send verb, fetch verb, write verb, op on its paths)."""
    words = {w.lower() for w in _WORD.findall(tool.replace("__", " "))}
    op = (
        "delete"
        if words & _DELETE_VERBS
        else "move"
        if words & _MOVE_VERBS
        else ("write" if words & _WRITE_VERBS else "read")
    )
    return bool(words & _SEND_VERBS), bool(words & _FETCH_VERBS), bool(words & _WRITE_VERBS), op


@functools.lru_cache(maxsize=4096)
def _search_effect(leaf: str, base: str, pattern: str, glob: str | None) -> Effect:
    if leaf == "glob":
        target = normalise_path(
            f"{base.rstrip('/')}/{pattern}" if pattern and not pattern.startswith("/") else pattern or base
        )
        flat = target.replace("**/", "")
        classes = path_classes(flat.replace("*", "")) | path_classes(flat.replace("*", "x")) | path_classes(base)
        return make("read", target, classes, "tool", "list")
    classes = path_classes(base) | (path_classes(glob.replace("*", "x")) if glob else NO_CLASSES)
    return make("read", base, classes, "tool", "grep")


@functools.lru_cache(maxsize=8192)
def _path_effect(op: str, path: str, detail: str | None = None, via: str = "tool") -> Effect:
    norm = normalise_path(path)
    return make(op, norm, path_classes(norm), via, detail)


def _first_str(args: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in args:
            value = args[key]
            if isinstance(value, str) and value:
                return value
    return None

"""Python checks of the ``privilege_changes`` rule pack (``detectors/rules/privilege_changes.yaml``).

Only the judgements the effects layer does not make:

``command_line``
    A program the action really runs (an ``execute`` effect) is given arguments that switch a guardrail
    off or grant admin rights — a flag, a role name, a setting the effects vocabulary has no word for.
    The pattern is a named ``data`` table of regular expressions; it is searched only in the command or
    code the action runs (never in file content or prose), and only when one of ``programs`` runs.
``sql_statement``
    The SQL a database tool or a SQL client sends makes a role superuser, grants admin rights or turns
    audit logging off (SQL is not parsed into effects).
``written_content``
    Content written by a file tool sets a bypass-permissions mode or launches an agent without its
    permission prompts (optionally not in prose files, which may document the flag).
``settings_change``
    What a write to the agent's own settings does: bypass mode, hooks removed, sandbox off, allow-list
    or MCP servers added, or another change; paths from the operator's ``extra_settings_paths`` count too.
``tool_argument``
    A structured tool's argument has a given value (``dangerouslyDisableSandbox: true``).
``tool_grants_role``
    A tool whose name is about access (members, roles, collaborators …) is asked for an admin role.
``denied_retry``
    An action the user denied is retried through another tool or wrapped in another command. The only
    check with session memory: the last few denied actions (bounded) in ``session.scratch``.

Each check reads at most the ``max_scan_chars`` of text the ``privilege_limits`` table gives, skips the
``tool_result`` of a call already judged (no effects to show), and never raises on odd argument shapes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Final

from agentwatch.detect.effects.model import Effect, make
from agentwatch.detect.rules.checks import CheckContext, check

__all__ = ["DENIED_KEY", "LIMITS_TABLE", "command_text", "retry_of", "segments", "settings_change_kind"]

#: The data table holding this pack's bounds (``max_scan_chars``, ``max_denied_remembered``).
LIMITS_TABLE: Final = "privilege_limits"
#: ``session.scratch`` key of the denied actions remembered (and of the last retry found).
DENIED_KEY: Final = "privilege_changes.denied"
_DEFAULT_SCAN: Final = 2048
_DEFAULT_DENIED: Final = 4
_ACTIONS: Final = frozenset({"tool_call", "tool_result"})
#: Argument keys holding a command line or code the action runs.
_COMMAND_KEYS: Final = ("command", "cmd", "script", "shell", "commandline", "command_line", "code", "source")
#: Argument keys holding SQL.
_SQL_KEYS: Final = ("sql", "query", "statement", "q", "command")
#: Argument keys holding content a file tool writes (``edits`` lists hold ``new_string`` too).
_CONTENT_KEYS: Final = ("content", "new_string", "text", "new_source", "file_text", "contents")
_OLD_KEYS: Final = ("old_string",)
_PROSE_SUFFIXES: Final = (".md", ".rst", ".txt", ".adoc", ".html")
#: Parts of a database tool's name.
_SQL_TOOL_WORDS: Final = (
    "sql", "query", "database", "postgres", "mysql", "bigquery", "snowflake", "warehouse", "redshift",
    "clickhouse", "duckdb", "supabase", "db.", "db_", ".db", "_db",
)  # fmt: skip
#: Programs that send SQL given on their command line.
_SQL_CLIENTS: Final = frozenset(
    "psql mysql mariadb sqlite3 sqlcmd clickhouse clickhouse-client snowsql duckdb cockroach pgcli trino presto "
    "spark-sql bq".split()
)
#: Text right before a denied command that runs it another way (a shell, an interpreter, another user, a host).
_WRAPPED: Final = re.compile(
    r"(?:(?:ba|z|da)?sh\s+-c|eval|sudo(?:\s+-\S+)*|doas|xargs(?:\s+-\S+)*|nohup|setsid|env(?:\s+\S+=\S*)*"
    r"|ssh\s+(?:-\S+\s+)*\S+|(?:docker|kubectl)\s+exec\s+(?:-\S+\s+)*\S+(?:\s+--)?|python3?\s+-c|node\s+-e"
    r"|perl\s+-e|script\s+-c|timeout\s+\d+\w?)\s*[\"'`]?$"
)


# -- helpers -----------------------------------------------------------------------------------------
def _limit(ctx: CheckContext, key: str, default: int) -> int:
    table = ctx.data.get(LIMITS_TABLE)
    value = table.get(key) if isinstance(table, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _is_action(ctx: CheckContext) -> bool:
    """An action to judge: a call, or a result that is the only record of its call (it then has effects)."""
    kind = ctx.event.kind
    return kind in _ACTIONS and (kind == "tool_call" or bool(ctx.effects)) and ctx.event.outcome != "denied"


def _clip(text: str, cap: int) -> str:
    """At most ``cap`` characters: the first three quarters and the last quarter of longer text."""
    if len(text) <= cap:
        return text
    head = cap * 3 // 4
    return text[:head] + "\n" + text[-(cap - head) :]


def _strings(value: object, cap: int) -> list[str]:
    if isinstance(value, str):
        return [value[:cap]]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value[:64]):
        return [" ".join(value[:64])[:cap]]
    return []


def command_text(event: Any, cap: int = _DEFAULT_SCAN) -> str:
    """The command lines or code an event runs (its target, then command-like arguments), bounded by ``cap``."""
    args = event.args if isinstance(event.args, dict) else {}
    parts = [event.target] if isinstance(event.target, str) and event.target else []
    for key in _COMMAND_KEYS:
        for text in _strings(args.get(key), cap):
            if text and text not in parts:
                parts.append(text)
    return _clip("\n".join(parts), cap)


def _written(args: Mapping[str, Any], keys: tuple[str, ...], cap: int) -> str:
    parts = [v[:cap] for k in keys if isinstance(v := args.get(k), str)]
    edits = args.get("edits")
    if isinstance(edits, list):
        for edit in edits[:32]:
            if isinstance(edit, dict):
                parts.extend(v[:cap] for k in keys if isinstance(v := edit.get(k), str))
    return _clip("\n".join(parts), cap)


@functools.lru_cache(maxsize=64)
def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


_PATTERNS: dict[str, tuple[object, re.Pattern[str]]] = {}


def _pattern(data: Mapping[str, Any], name: object) -> re.Pattern[str]:
    """The named table's regular expressions as one pattern (KeyError/ValueError when unusable)."""
    if not isinstance(name, str):
        raise ValueError(f"`pattern` must name a data table, got {name!r}")
    table = data[name]
    known = _PATTERNS.get(name)
    if known is not None and known[0] is table:
        return known[1]
    compiled = _table_pattern(name, table)
    if len(_PATTERNS) >= 256:
        _PATTERNS.clear()
    _PATTERNS[name] = (table, compiled)
    return compiled


def _table_pattern(name: str, table: object) -> re.Pattern[str]:
    items = (table,) if isinstance(table, str) else table
    if not isinstance(items, list | tuple) or not items or not all(isinstance(p, str) for p in items):
        raise ValueError(f"data table {name!r} must be a regular expression or a list of them")
    try:
        return _compile(tuple(items))
    except re.error as exc:
        raise ValueError(f"data table {name!r}: bad regular expression: {exc}") from None


def _snippet(text: str, m: re.Match[str]) -> str:
    return " ".join(text[max(0, m.start() - 20) : m.end() + 20].split())[:100]


def _names(args: Mapping[str, Any], key: str) -> frozenset[str]:
    """The names an argument lists (one name or a list), as a set (ValueError when not names).

    A rule's args are built once at load and never change, so the set is remembered per args object."""
    memo_key = (id(args), key)
    found = _NAMES_MEMO.get(memo_key)
    if found is not None and found[0] is args:
        return found[1]
    names = _names_of(args, key)
    if len(_NAMES_MEMO) < 4096:
        _NAMES_MEMO[memo_key] = (args, names)
    return names


_NAMES_MEMO: dict[tuple[int, str], tuple[Mapping[str, Any], frozenset[str]]] = {}


def _names_of(args: Mapping[str, Any], key: str) -> frozenset[str]:
    value = args.get(key, ())
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"`{key}` must be a name or a list of them")
    return _frozen(tuple(value))


@functools.lru_cache(maxsize=256)
def _frozen(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(names)


#: The memo key of the lower-cased :func:`command_text` of an action.
_LOWER_TEXT: Final = ("command_text", True)


def _action_text(ctx: CheckContext, lower: bool = False) -> str:
    """:func:`command_text` of the action (lower-cased on request), computed once per action."""
    key = ("command_text", lower)
    text = ctx.memo.get(key)
    if text is None:
        text = command_text(ctx.event, _limit(ctx, "max_scan_chars", _DEFAULT_SCAN))
        ctx.memo[("command_text", False)] = text
        if lower:
            text = ctx.memo[key] = text.lower()
    return str(text)


def _validate_pattern(args: Mapping[str, Any], data: Mapping[str, Any], optional: tuple[str, ...] = ()) -> None:
    unknown = set(args) - {"pattern", *optional}
    if unknown:
        raise ValueError(f"unknown args {sorted(unknown)}; known: pattern, {', '.join(optional)}")
    _pattern(data, args.get("pattern"))


# -- command_line ------------------------------------------------------------------------------------
def _validate_command_line(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    _validate_pattern(args, data, ("programs", "gate"))
    _names(args, "programs")
    if any(w != w.lower() or not w for w in _names(args, "gate")):
        raise ValueError("`gate` words must be non-empty and lower-case")


def _runs_named_program(
    effects: tuple[Effect, ...], tool: str, args: Mapping[str, Any], data: Mapping[str, Any]
) -> bool:
    """Prefilter of ``command_line``: with ``programs``, the action must run one of them."""
    programs = _names(args, "programs")
    return not programs or any(e.op == "execute" and e.resource.rpartition("/")[2] in programs for e in effects)


@check("command_line", validate=_validate_command_line, prefilter=_runs_named_program)
def command_line(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """A program this action runs gets arguments matching the data table ``pattern`` (its command line only).

    ``programs``: the pattern is searched only in the commands that name one of them, and only when the
    action runs one; without it, in the whole command text, and then ``gate`` (lower-case words, one of
    which the text must contain) keeps the regular expression off most actions.
    """
    if not _is_action(ctx):
        return None
    args = ctx.args
    programs = _names(args, "programs")
    runs: tuple[Effect, ...] = ()
    if programs:
        runs = tuple(e for e in ctx.effects if e.op == "execute" and e.resource.rpartition("/")[2] in programs)
        if not runs:
            return None
    gate = _names(args, "gate")
    if gate:
        low = ctx.memo.get(_LOWER_TEXT)
        if low is None:
            low = _action_text(ctx, lower=True)
        for word in gate:  # most actions hold no gate word: a plain loop, no generator per call
            if word in low:
                break
        else:
            return None
    text = _action_text(ctx)
    pattern = _pattern(ctx.data, ctx.args["pattern"])
    if programs:
        named = _program_words(tuple(sorted({e.resource.rpartition("/")[2] for e in runs})))
        spans = [(a, b) for a, b in segments(text) if named.search(text, a, b)]
    else:
        spans = [(0, len(text))]
    for start, end in spans:
        m = pattern.search(text, start, end)
        if m is not None:
            return (make("execute", runs[0].resource if runs else "command", via="shell", detail=_snippet(text, m)),)
    return None


@functools.lru_cache(maxsize=64)
def _program_words(programs: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<![\w.-])(?:" + "|".join(map(re.escape, programs)) + r")(?![\w.-])")


def segments(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` between command separators (``&&``, ``||``, ``;``, ``|``, newline) that are outside
    quotes and ``$( … )``: one command each, so a pattern meant for one program's arguments does not reach
    into the next command.

    >>> text = 'npx x && node s.js --no-sandbox; bash -c "$(echo a | base64 -d)"'
    >>> [text[a:b].strip() for a, b in segments(text)]
    ['npx x', 'node s.js --no-sandbox', 'bash -c "$(echo a | base64 -d)"']
    """
    spans: list[tuple[int, int]] = []
    start, depth, quote, i, n = 0, 0, "", 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"`":
            quote = c
        elif c == "\\":
            i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and (c in ";\n" or c in "|&" and (c == "|" or text.startswith("&&", i))):
            spans.append((start, i))
            i += 2 if text.startswith(("&&", "||"), i) else 1
            start = i
            continue
        i += 1
    spans.append((start, n))
    return spans


# -- sql_statement -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1024)
def _is_sql_tool(tool: str) -> bool:
    low = tool.lower()
    return any(w in low for w in _SQL_TOOL_WORDS)


def _may_send_sql(effects: tuple[Effect, ...], tool: str, args: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """Prefilter of ``sql_statement``: a database tool, or an action that runs a SQL client."""
    return _is_sql_tool(tool) or any(e.op == "execute" and e.resource in _SQL_CLIENTS for e in effects)


def _sql_sent(ctx: CheckContext) -> tuple[str, str] | tuple[()]:
    """(the SQL text the action sends, where it goes: the tool or "SQL client"), or ``()`` when it sends none."""
    event = ctx.event
    if event.kind not in _ACTIONS or event.outcome == "denied":
        return ()
    cap = _limit(ctx, "max_scan_chars", _DEFAULT_SCAN)
    tool = event.tool or ""
    args = event.args if isinstance(event.args, dict) else {}
    if _is_sql_tool(tool):
        if event.kind == "tool_result" and not args:
            return ()  # the result of a query already judged as a call (a result carries no arguments)
        parts = [event.target or ""] + [t for k in _SQL_KEYS for t in _strings(args.get(k), cap)]
        return _clip("\n".join(parts), cap), tool
    if _is_action(ctx) and any(e.op == "execute" and e.resource in _SQL_CLIENTS for e in ctx.effects):
        return _action_text(ctx), "SQL client"
    return ()


@check("sql_statement", validate=_validate_pattern, prefilter=_may_send_sql)
def sql_statement(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """SQL a database tool or a SQL client sends matches the data table ``pattern``."""
    sent = ctx.memo.get("sql_statement.sent")
    if sent is None:  # the three SQL rules read the same text: found once per action
        sent = ctx.memo["sql_statement.sent"] = _sql_sent(ctx)
    if not sent:
        return None
    text, where = sent
    tool = ctx.event.tool or ""
    m = _pattern(ctx.data, ctx.args["pattern"]).search(text)
    if m is None:
        return None
    return (make("send", where[:80], via="tool" if where == tool else "shell", detail=_snippet(text, m)),)


# -- written_content ---------------------------------------------------------------------------------
def _validate_written(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    _validate_pattern(args, data, ("prose",))
    if not isinstance(args.get("prose", True), bool):
        raise ValueError("`prose` must be true or false")


def _tool_writes(effects: tuple[Effect, ...], args: Mapping[str, Any]) -> tuple[Effect, ...]:
    """The writes of a file tool ``written_content`` reads (none when ``prose: false`` and all are prose files)."""
    writes = tuple(e for e in effects if e.op == "write" and e.via == "tool")
    if writes and not args.get("prose", True) and all(e.resource.lower().endswith(_PROSE_SUFFIXES) for e in writes):
        return ()
    return writes


def _has_tool_writes(effects: tuple[Effect, ...], tool: str, args: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """Prefilter of ``written_content``: a file tool writes (and not only prose, with ``prose: false``)."""
    return bool(_tool_writes(effects, args))


@check("written_content", validate=_validate_written, prefilter=_has_tool_writes)
def written_content(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """Content a file tool writes matches the data table ``pattern`` (``prose: false``: not in .md/.txt …)."""
    if not _is_action(ctx):
        return None
    writes = _tool_writes(ctx.effects, ctx.args)
    if not writes:
        return None
    args = ctx.event.args if isinstance(ctx.event.args, dict) else {}
    text = _written(args, _CONTENT_KEYS, _limit(ctx, "max_scan_chars", _DEFAULT_SCAN))
    m = _pattern(ctx.data, ctx.args["pattern"]).search(text)
    if m is None:
        return None
    return (make("write", writes[0].resource, writes[0].classes, "tool", _snippet(text, m)),)


# -- settings_change ---------------------------------------------------------------------------------
#: What a settings write does, most telling first (a write is judged as the first that applies).
SETTINGS_CHANGES: Final = ("bypass", "hooks_off", "sandbox_off", "widened", "other")
_SETTINGS_OPS: Final = frozenset({"write", "change_settings", "delete", "move"})
#: Hook scripts are agent settings too, but what is done to them is the hook rules' to judge.
_HOOK_SCRIPTS: Final = re.compile(r"(?:^|/)\.claude/hooks(?:/|$)")


def _validate_settings(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    if set(args) != {"change"} or args["change"] not in (*SETTINGS_CHANGES, "any"):
        raise ValueError(f"takes `change`: one of {', '.join(SETTINGS_CHANGES)}, any")
    extra = data.get("extra_settings_paths", [])
    if not isinstance(extra, list) or not all(isinstance(p, str) for p in extra):
        raise ValueError("data table `extra_settings_paths` must be a list of path fragments")


def _settings_effects(effects: tuple[Effect, ...], data: Mapping[str, Any]) -> tuple[Effect, ...]:
    """The effects that change the agent's settings (or an operator-listed settings path), hook scripts aside."""
    extra = [p.lower() for p in data.get("extra_settings_paths", ()) if isinstance(p, str) and p]
    return tuple(
        e
        for e in effects
        if e.op in _SETTINGS_OPS
        and not _HOOK_SCRIPTS.search(e.resource)
        and ("agent_settings" in e.classes or (extra and any(p in e.resource.lower() for p in extra)))
    )


def settings_change_kind(new: str, old: str, command: str, deletes: bool) -> str:
    """What a write to agent settings does (one of :data:`SETTINGS_CHANGES`), from the text written, the text
    replaced and the command line (all lower-case).

    >>> settings_change_kind('{"permissions": {"defaultmode": "bypasspermissions"}}', "", "", False)
    'bypass'
    >>> settings_change_kind('"hooks": {}', '"hooks": {"pretooluse": [{"command": "x"}]}', "", False)
    'hooks_off'
    >>> settings_change_kind("", "", "", True), settings_change_kind('"allow": ["bash(*)"]', "", "", False)
    ('hooks_off', 'widened')
    """
    both = new + "\n" + command
    if "bypasspermissions" in both or "dangerously" in both or "skip-permissions" in both:
        return "bypass"
    if (
        deletes
        or "disableallhooks" in both
        or ('"hooks"' in old and ('"hooks"' not in new or ('"command"' in old and '"command"' not in new)))
    ):
        return "hooks_off"
    if (
        ('"enabled": true' in old and '"enabled": false' in new)
        or '"enabled": false' in command
        or ("sandbox" in new and ("false" in new or "disabled" in new))
    ):
        return "sandbox_off"
    if "allow" in new or "mcpservers" in new or "allow" in command:
        return "widened"
    return "other"


def _touches_settings(effects: tuple[Effect, ...], tool: str, args: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """Prefilter of ``settings_change``: some effect changes the agent's settings."""
    return bool(_settings_effects(effects, data))


@check("settings_change", validate=_validate_settings, prefilter=_touches_settings)
def settings_change(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """A write to the agent's own settings (or an operator-listed settings path) that does ``change``."""
    if not _is_action(ctx):
        return None
    touched = _settings_effects(ctx.effects, ctx.data)
    if not touched:
        return None
    want = ctx.args["change"]
    if want == "any":
        return touched
    key = "settings_change"  # the memo is this action's: rules asking for different changes judge once
    kind = ctx.memo.get(key)
    if kind is None:
        cap = _limit(ctx, "max_scan_chars", _DEFAULT_SCAN)
        args = ctx.event.args if isinstance(ctx.event.args, dict) else {}
        command = "" if any(e.via == "tool" for e in touched) else _action_text(ctx, lower=True)
        kind = ctx.memo[key] = settings_change_kind(
            _written(args, _CONTENT_KEYS, cap).lower(),
            _written(args, _OLD_KEYS, cap).lower(),
            command,
            any(e.op in ("delete", "move") and e.resource == touched[0].resource for e in touched),
        )
    return touched if kind == want else None


# -- tool_argument -----------------------------------------------------------------------------------
def _validate_tool_argument(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    if set(args) != {"key", "value"} or not isinstance(args["key"], str):
        raise ValueError("takes `key` (an argument name) and `value`")


@check("tool_argument", validate=_validate_tool_argument)
def tool_argument(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """The event's argument ``key`` equals ``value`` (a structured tool's own switch)."""
    if not _is_action(ctx):
        return None
    args = ctx.event.args if isinstance(ctx.event.args, dict) else {}
    key, want = ctx.args["key"], ctx.args["value"]
    if key not in args or args[key] != want or type(args[key]) is not type(want):
        return None
    return (make("change_settings", f"{ctx.event.tool or 'tool'} {key}", via="tool", detail=repr(want)[:40]),)


# -- tool_grants_role --------------------------------------------------------------------------------
def _validate_grants(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    if set(args) != {"tools", "roles"}:
        raise ValueError("takes `tools` and `roles` (data table names)")
    for name in ("tools", "roles"):
        table = data[args[name]]
        if not isinstance(table, list) or not all(isinstance(w, str) and w for w in table):
            raise ValueError(f"data table {args[name]!r} must be a list of words")


def _access_tool(effects: tuple[Effect, ...], tool: str, args: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """Prefilter of ``tool_grants_role``: the tool's name holds a word of table ``tools``."""
    low = tool.lower()
    return any(w in low for w in data[args["tools"]])


@check("tool_grants_role", validate=_validate_grants, prefilter=_access_tool)
def tool_grants_role(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """A tool named for access control (a word of table ``tools``) is asked for a role of table ``roles``."""
    event = ctx.event
    if event.kind != "tool_call" or event.outcome == "denied":
        return None
    tool = (event.tool or "").lower()
    if not any(w in tool for w in ctx.data[ctx.args["tools"]]):
        return None
    args = event.args if isinstance(event.args, dict) else {}
    cap = _limit(ctx, "max_scan_chars", _DEFAULT_SCAN)
    values = [event.target or ""] + [t for v in list(args.values())[:32] for t in _strings(v, cap)]
    words = set(re.findall(r"[a-z]+", _clip(" ".join(values), cap).lower()))
    role = next((r for r in ctx.data[ctx.args["roles"]] if r in words), None)
    if role is None:
        return None
    return (make("account", tool[:80], frozenset({"access_control"}), "args", f"role {role}"),)


# -- denied_retry ------------------------------------------------------------------------------------
@check("denied_retry")
def denied_retry(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """An action the user denied, retried through another tool or wrapped in another command.

    A denied event is remembered (tool, target, event id; at most ``max_denied_remembered`` per session,
    oldest forgotten first). A later action whose command or target holds a remembered target fires when
    its tool differs, or when the target follows a wrapper (``bash -c``, ``sudo``, ``env``, ``ssh host`` …).
    The denied event's id is left in ``session.scratch`` for the detector to name (:func:`retry_of`).
    """
    event, scratch = ctx.event, ctx.session.scratch
    if event.outcome == "denied":
        _remember_denied(ctx)
        return None
    memory = scratch.get(DENIED_KEY)
    if not memory or not _is_action(ctx):
        return None
    text = _action_text(ctx, lower=True)
    tool = (event.tool or "").lower()
    for denied_tool, target, denied_id in memory["denied"]:
        at = text.find(target)
        if at < 0:
            continue
        if tool != denied_tool:
            how = f"retries a denied {denied_tool or 'action'} through {tool or 'another tool'}"
        elif _WRAPPED.search(text, max(0, at - 80), at):
            how = "retries a denied action wrapped in another command"
        else:
            continue
        memory["retry"] = (event.event_id, denied_id)
        return (make("execute", target, via="tool" if tool != denied_tool else "shell", detail=how),)
    return None


def _remember_denied(ctx: CheckContext) -> None:
    target = (ctx.event.target or "").strip().lower()
    if len(target) < 6:
        return
    memory = ctx.session.scratch.setdefault(DENIED_KEY, {"denied": [], "retry": None})
    denied: list[tuple[str, str, str]] = memory["denied"]
    denied.append(((ctx.event.tool or "").lower(), target[:200], ctx.event.event_id))
    del denied[: max(0, len(denied) - _limit(ctx, "max_denied_remembered", _DEFAULT_DENIED))]


def retry_of(scratch: Mapping[str, Any], event_id: str) -> str | None:
    """The denied event that ``event_id`` retried, when :func:`denied_retry` found one on that event."""
    memory = scratch.get(DENIED_KEY)
    retry = memory.get("retry") if isinstance(memory, dict) else None
    return retry[1] if retry and retry[0] == event_id else None

"""The toolkit the built-in rule detectors share.

``secret_access``, ``destructive_ops``, ``privilege_changes``, ``supply_chain`` and
``prompt_injection`` all look at the same things the same way: a text view of a tool
call (its target plus its command- or path-like arguments), capped to its head and tail
so a pathological event costs no more than a normal one; the class of the tool (shell,
SQL, file, other) that decides which rule families can apply; shell command lines cut
into commands and words; and tables of regex rules opened by cheap substring *gates*,
evaluated highest score first. This module holds that once.

Third-party detectors may import it, but it is not part of the plugin contract
(:mod:`agentwatch.detect.detector_spec` is): names here may change between releases.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple

import msgspec

from agentwatch.detect.detector_spec import Finding, quote
from agentwatch.events.audit_event import AuditEvent

_encode = msgspec.json.Encoder().encode


def json_text(value: object) -> str:
    """``value`` as compact JSON text."""
    return _encode(value).decode()


# -- tools -----------------------------------------------------------------------------
#: Argument keys holding file content or prose rather than a command or a path.
CONTENT_KEYS: Final = frozenset(
    """
    content new_string old_string text body edits new_source description prompt message messages
    subject summary title comment notes todos
    """.split()
)
#: Tools that write a file (lower-cased; an MCP tool matches on its last ``__`` segment).
WRITE_TOOLS: Final = frozenset(
    """
    write edit multiedit notebookedit write_file edit_file create_file str_replace_editor
    apply_patch
    """.split()
)


def tool_leaf(tool: str | None) -> str:
    """``mcp__fs__write_file`` → ``write_file``, lower-cased (``""`` for no tool)."""
    if not tool:
        return ""
    return tool.rpartition("__")[2].lower()


def is_write_tool(tool: str | None) -> bool:
    """Whether ``tool`` writes a file (see :data:`WRITE_TOOLS`)."""
    return tool is not None and tool.rpartition("__")[2].lower() in WRITE_TOOLS


# -- tool classes: which rule families can apply to a tool call ----------------------
SHELL: Final = "shell"
SQL: Final = "sql"
FILE: Final = "file"
DATA: Final = "data"
_SQL_NAME_WORDS: Final = tuple(
    """
    sql query database postgres mysql bigquery snowflake warehouse redshift clickhouse duckdb
    """.split()
)
_SHELL_NAME_WORDS: Final = tuple(
    """
    bash shell exec terminal command cmd run script code notebook cli kubectl terraform tofu helm
    docker ssh python console process aws gcloud
    """.split()
)
_FILE_NAME_WORDS: Final = tuple("read write edit grep glob file patch dir fs. fs_ path view".split())
_FILE_LEAVES: Final = frozenset({"ls", "cat", "find", "search_files", "list_directory"})
_SHELL_ARG_KEYS: Final = frozenset({"command", "cmd", "argv", "script", "code", "shell", "commands"})
_FILE_ARG_KEYS: Final = frozenset(
    {"file_path", "path", "paths", "filename", "file", "notebook_path", "directory", "dir", "source", "src"}
)
_CLASS_CACHE: dict[str, str] = {}


def tool_class(tool: str | None, args: Mapping[str, Any] | None) -> str:
    """:data:`SHELL` (runs commands or code), :data:`SQL`, :data:`FILE` (a path) or :data:`DATA`.

    Decided from the tool's name (cached) and upgraded by its argument keys, so an
    unknown MCP tool taking ``{"command": …}`` is treated as a shell.

    >>> tool_class("Bash", None), tool_class("mcp__db__query", None), tool_class("Read", None)
    ('shell', 'sql', 'file')
    >>> tool_class("mcp__x__do", {"command": "ls"}), tool_class("gmail.send", {"to": "a@b.c"})
    ('shell', 'data')
    """
    name = tool or ""
    cls = _CLASS_CACHE.get(name)
    if cls is None:
        low = name.lower()
        if any(w in low for w in _SQL_NAME_WORDS):
            cls = SQL
        elif any(w in low for w in _SHELL_NAME_WORDS):
            cls = SHELL
        elif low.rpartition("__")[2] in _FILE_LEAVES or any(w in low for w in _FILE_NAME_WORDS):
            cls = FILE
        else:
            cls = DATA
        if len(_CLASS_CACHE) >= 4096:
            _CLASS_CACHE.clear()
        _CLASS_CACHE[name] = cls
    if args and cls is not SHELL:
        if not _SHELL_ARG_KEYS.isdisjoint(args):
            return SHELL
        if cls is DATA and not _FILE_ARG_KEYS.isdisjoint(args):
            return FILE
    return cls


# -- SQL -------------------------------------------------------------------------------
#: A database tool's name contains one of these (wider than the :data:`SQL` class: a
#: notebook or a Supabase tool runs SQL among other things).
SQL_TOOL_WORDS: Final = tuple(
    """
    sql query database postgres mysql bigquery snowflake warehouse redshift clickhouse duckdb
    supabase notebook db. db_ .db _db
    """.split()
)
#: A command line that runs SQL names one of these clients.
SQL_CLIENTS: Final = tuple(
    """
    psql mysql sqlite3 sqlcmd clickhouse snowsql snowflake duckdb cockroach mariadb pgcli mongo
    redis-cli trino presto spark-sql
    """.split()
) + ("bq query",)


_SQL_TOOL_CACHE: dict[str | None, bool] = {}


def is_sql_tool(tool: str | None) -> bool:
    """Whether ``tool`` is a database tool (its name contains one of :data:`SQL_TOOL_WORDS`)."""
    known = _SQL_TOOL_CACHE.get(tool)
    if known is None:
        low = (tool or "").lower()
        known = any(w in low for w in SQL_TOOL_WORDS)
        if len(_SQL_TOOL_CACHE) >= 4096:
            _SQL_TOOL_CACHE.clear()
        _SQL_TOOL_CACHE[tool] = known
    return known


def names_sql_client(low: str) -> bool:
    """Whether the lower-cased command line ``low`` names a SQL client."""
    for client in SQL_CLIENTS:
        if client in low:
            return True
    return False


def runs_sql(low: str, at: int, tool: str | None) -> bool:
    """Whether the SQL keyword at ``at`` runs: sent to a database tool (and not inside a
    string literal), or in a command line that names a SQL client.

    >>> runs_sql("drop table t", 0, "mcp__db__query"), runs_sql("select 'drop table t'", 8, "run_sql")
    (True, False)
    >>> runs_sql("psql -c 'drop table t'", 9, "Bash"), runs_sql("drop table t", 0, "Bash")
    (True, False)
    """
    if is_sql_tool(tool) and low.count("'", 0, at) % 2 == 0:
        return True
    return names_sql_client(low)


# -- text views --------------------------------------------------------------------------
def surface(event: AuditEvent) -> str:
    """Target plus command- and path-like argument values, one a line.

    Lists of strings are joined with spaces (an ``argv``), other lists and dicts become
    JSON, content and prose (:data:`CONTENT_KEYS`) are skipped, and a value equal to the
    target is not repeated.
    """
    target = event.target or ""
    args = event.args
    if not args:
        return target
    parts = [target] if target else []
    for key, value in args.items():
        if key in CONTENT_KEYS:
            continue
        if type(value) is str:
            if value and value != target:
                parts.append(value)
        elif type(value) is list:
            if all(type(v) is str for v in value):
                joined = " ".join(value)
                if joined not in target:
                    parts.append(joined)
            else:
                parts.append(_encode(value).decode())
        elif type(value) is dict:
            parts.append(_encode(value).decode())
    return "\n".join(parts)


def clip(text: str, limit: int) -> str:
    """``text`` if short, else its head and tail (three quarters and one quarter of ``limit``).

    Bounds the per-event cost on very long text; what sits in the middle of a longer
    text is not examined (a detector's ``max_scan_chars`` trades cost for coverage).

    >>> clip("abcdefgh", 4)
    'abc\\nh'
    """
    if len(text) <= limit:
        return text
    return text[: limit - limit // 4] + "\n" + text[-(limit // 4) :]


def window(original: str, searched: str, start: int, end: int, before: int = 30, after: int = 60) -> str:
    """The matched region of ``searched`` with some context, taken from ``original``
    (the text before lower-casing) when the offsets agree."""
    source = original if len(original) == len(searched) else searched
    return source[max(0, start - before) : end + after]


# -- shell command lines -----------------------------------------------------------------
#: Characters that may stand right before a command word.
COMMAND_BOUNDARY: Final = frozenset(" \t\n;&|(`'\"{$")
#: The rest of one shell command, for building rule regexes.
CMD: Final = r"[^;&|\n]*"
#: Commands whose quoted argument is text, not a command that runs.
_QUOTE_OWNER: Final = re.compile(r"(?:echo|printf|grep|rg|ag|-m|--message|comment|logger|format|pretty)\s*=?\s*$")
_SEGMENT_END: Final = re.compile(r"[;&|\n)`]")
_STOP_WORDS: Final = ("<", ">", "#", "2>", "1>", "&>")


def starts_command(low: str, at: int) -> bool:
    """``at`` begins a command word, and not inside text quoted for echo/printf/grep/commit.

    >>> starts_command("ls; rm -rf x", 4), starts_command("git commit -m 'rm -rf x'", 15)
    (True, False)
    """
    if at and low[at - 1] not in COMMAND_BOUNDARY:
        return False
    line_start = low.rfind("\n", 0, at) + 1
    for q in ("'", '"'):
        opened = low.rfind(q, line_start, at)
        if opened >= 0 and low.count(q, line_start, at) % 2 == 1:
            return _QUOTE_OWNER.search(low, max(line_start, opened - 40), opened) is None
    return True


def segment(low: str, start: int) -> str:
    """From ``start`` to the end of that shell command (``;``, ``&&``, ``|``, ``)``, newline)."""
    end = _SEGMENT_END.search(low, start)
    return low[start : end.start() if end else len(low)]


def command_words(low: str, start: int) -> list[str]:
    """The words of the shell command starting at ``start``, up to a redirection or a comment.

    >>> command_words("rm -rf build/ 2>/dev/null && ls", 3)
    ['-rf', 'build/']
    """
    found = segment(low, start).split()
    for i, word in enumerate(found):
        if word.startswith(_STOP_WORDS):
            return found[:i]
    return found


# -- gated rule tables ---------------------------------------------------------------------
#: What a rule check returns: None (no finding), a score, :data:`RULE_SCORE` (the rule's own
#: score), or ``(score, rule, what)`` to report under a more specific rule.
Verdict = float | tuple[float, str, str] | None
#: A check returning this keeps the rule's own score.
RULE_SCORE: Final = 0.0
#: ``check(text, match, context)``; the context is whatever the detector passes (the event, itself …).
Check = Callable[..., Verdict]


class Rule(NamedTuple):
    """One pattern rule: a regex on the (usually lower-cased) text, opened by cheap gates."""

    rule: str
    score: float
    what: str
    #: Cheap substring tests; the regex runs only when one of them is in the text.
    gates: tuple[str, ...]
    rx: re.Pattern[str]
    check: Check | None = None
    #: The finding's category, for a detector whose rules span several.
    category: str = ""


class Hit(NamedTuple):
    """The best match so far: what a detector turns into a finding."""

    score: float
    rule: str
    what: str
    snippet: str
    category: str = ""


class Gated(NamedTuple):
    """Rules (highest score first) and an index from cheap substring gates to the rules they open."""

    rules: tuple[Rule, ...]
    gates: tuple[tuple[str, tuple[int, ...]], ...]


def gated(rules: Sequence[Rule], lower: bool = True) -> Gated:
    """Index ``rules`` by their gates; ``lower``: the text searched is lower-cased, so are the gates."""
    if lower:
        rules = [r._replace(gates=tuple(g.lower() for g in r.gates)) for r in rules]
    ordered = tuple(sorted(rules, key=lambda r: -r.score))
    gates = sorted({g for r in ordered for g in r.gates}, key=len)
    kept: list[str] = []
    for gate in gates:  # a gate containing a shorter gate adds nothing: the shorter one is tested anyway
        if not any(g in gate for g in kept):
            kept.append(gate)
    index = tuple((g, tuple(i for i, r in enumerate(ordered) if any(g in rg for rg in r.gates))) for g in kept)
    return Gated(ordered, index)


def candidates(table: Gated, text: str) -> list[Rule]:
    """The rules whose gate is in ``text``, highest score first (usually none)."""
    hit: set[int] | None = None
    for gate, ids in table.gates:
        if gate in text:
            if hit is None:
                hit = set(ids)
            else:
                hit.update(ids)
    if hit is None:
        return []
    return [table.rules[i] for i in sorted(hit)]


def best_hit(
    rules: Sequence[Rule],
    text: str,
    original: str,
    context: Any,
    best: Hit | None = None,
    *,
    before: int = 30,
    after: int = 60,
    scores: Mapping[str, float] | None = None,
) -> Hit | None:
    """The highest-scoring accepted match of ``rules`` (ordered by score) on ``text``, or ``best``.

    Each rule's regex is tried at up to four places; ``rule.check(text, match, context)``
    accepts a place (a :data:`Verdict`) or not (None). ``scores`` overrides the score of a
    verdict by its rule name (configured scores). The snippet comes from ``original``.
    """
    for rule in rules:
        if best is not None and rule.score <= best[0]:
            break
        m = rule.rx.search(text)
        tries = 4
        while m is not None:
            verdict = rule.score if rule.check is None else rule.check(text, m, context)
            if verdict is not None:
                if isinstance(verdict, tuple):
                    score, name, what = verdict
                else:
                    score, name, what = (verdict or rule.score), rule.rule, rule.what
                if scores:
                    score = scores.get(name, score)
                if best is None or score > best[0]:
                    snippet = window(original, text, m.start(), m.end(), before, after)
                    best = Hit(score, name, what, snippet, rule.category)
                break
            tries -= 1
            m = rule.rx.search(text, m.end()) if tries else None
    return best


def report(hit: Hit, event_ids: tuple[str, ...], category: str = "", joiner: str = "with") -> tuple[Finding]:
    """``hit`` as the one finding of an event: ``"<rule>: the agent <what> with "<snippet>"."``."""
    return (
        Finding(
            score=hit.score,
            reason=f"{hit.rule}: the agent {hit.what} {joiner} {quote(hit.snippet)}.",
            event_ids=event_ids,
            category=category or hit.category,
            rule=hit.rule,
        ),
    )

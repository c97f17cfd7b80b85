"""The checks the ``destructive_ops`` rules name: the judgements that need code or configuration.

* ``protected_ref`` — a remote ref the action force-pushes over or deletes (``git:branch/<name>``
  effects with the ``detail`` given) is a protected branch (tables ``protected_branches``,
  ``protected_branch_prefixes``); ``git:branch/HEAD`` is the branch the event's attributes name
  (``git_branch`` / ``branch``), when they name one;
* ``unnamed_ref`` — a force-push names no branch and the event's attributes do not say which;
* ``working_tree`` — a recursive delete of the session's working directory or a directory up to two
  levels above it (the event's ``cwd`` attribute, else the session start's), of ``../<its name>``, or of
  a path the operator protected (table ``protected_paths``); any ``../<name>`` counts when no working
  directory is known (``cd .. && rm -rf <repo>``);
* ``production_target`` — the action is aimed at production: a word of the ``prod_markers`` table
  (``prod``, ``prod-eu``, ``prd1``, ``infra/envs/prod`` — whole words, so ``products`` is not one) is in
  a destroyed resource, its detail, or the event's target and arguments;
* ``bulk_deletion`` — a deletion tool (its name has a word of ``bulk_delete_words``) is given at least
  ``bulk_delete_threshold`` ids (args ``{breadth: many}``), or a query that no sender, subject or
  words narrow, or an ``all``/``recursive`` flag (``{breadth: broad}``).

Each reads at most a few kilobytes of agent-written text and never raises on odd argument shapes.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from agentwatch.detect.effects.model import Effect, make
from agentwatch.detect.rules.checks import CheckContext, bounded_text, check

__all__ = ["CWD_KEY", "is_protected_branch", "marker_words"]

#: session.scratch key under which the detector keeps the working directory a session started in.
CWD_KEY: Final = "destructive_ops.cwd"
#: At most this many characters of target and argument text are searched for production markers.
MAX_MARKER_CHARS: Final = 4096
#: At most this many argument values are read.
MAX_VALUES: Final = 32
_WORD: Final = re.compile(r"[a-z0-9]+")
_BRANCH_ATTRS: Final = ("git_branch", "branch")


# -- validation -----------------------------------------------------------------------------------
def _tables(*names: str) -> Any:
    def validate(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        extra = set(args) - {"detail", "breadth"}
        if extra:
            raise ValueError(f"unknown args {sorted(extra)}")
        for name in names:
            if name not in data:
                raise KeyError(f"needs the data table {name!r}")
        if "breadth" in args and args["breadth"] not in ("many", "broad"):
            raise ValueError("breadth must be 'many' or 'broad'")

    return validate


# -- branches ----------------------------------------------------------------------------------------
def is_protected_branch(name: str, exact: Iterable[str], prefixes: Iterable[str]) -> bool:
    """Whether a branch name is protected (lower-case comparison; a ``refs/heads/`` prefix is dropped).

    >>> is_protected_branch("refs/heads/Main", ["main"], [])
    True
    >>> is_protected_branch("release/1.2", [], ["release/"]), is_protected_branch("feature/x", ["main"], ["release/"])
    (True, False)
    """
    name = name.lower().removeprefix("refs/heads/")
    return name in {b.lower() for b in exact} or name.startswith(tuple(p.lower() for p in prefixes))


def _attribute_branch(ctx: CheckContext) -> str:
    attributes = ctx.event.attributes if isinstance(ctx.event.attributes, dict) else {}
    for key in _BRANCH_ATTRS:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value[:200]
    return ""


def _refs(ctx: CheckContext) -> list[Effect]:
    detail = ctx.args.get("detail")
    return [
        e
        for e in ctx.effects
        if e.op == "delete" and e.resource.startswith("git:branch/") and (detail is None or e.detail == detail)
    ]


@check("protected_ref", validate=_tables("protected_branches", "protected_branch_prefixes"))
def protected_ref(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """A force-pushed or deleted remote branch is protected (HEAD resolved through the event's attributes)."""
    exact, prefixes = ctx.data["protected_branches"], ctx.data["protected_branch_prefixes"]
    found: list[Effect] = []
    for e in _refs(ctx):
        name = e.resource[len("git:branch/") :]
        if name == "HEAD":
            name = _attribute_branch(ctx)
            if not name:
                continue
            e = make(e.op, f"git:branch/{name}", e.classes, e.via, e.detail)
        if is_protected_branch(name, exact, prefixes):
            found.append(e)
    return tuple(found) or None


@check("unnamed_ref", validate=_tables())
def unnamed_ref(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """A force-push names no branch and the event's attributes do not name the current one."""
    if _attribute_branch(ctx):
        return None
    found = tuple(e for e in _refs(ctx) if e.resource == "git:branch/HEAD")
    return found or None


# -- the working tree ---------------------------------------------------------------------------------
def _cwd(ctx: CheckContext) -> str:
    attributes = ctx.event.attributes if isinstance(ctx.event.attributes, dict) else {}
    cwd = attributes.get("cwd")
    if not isinstance(cwd, str) or len(cwd) < 2:
        cwd = ctx.session.scratch.get(CWD_KEY, "")
    return posixpath.normpath(cwd[:1024]) if isinstance(cwd, str) and cwd.startswith("/") else ""


def _under_or_at(path: str, directory: str) -> bool:
    """Whether deleting ``path`` deletes ``directory`` (it is the directory or one of its ancestors)."""
    return directory == path or directory.startswith(path.rstrip("/") + "/")


@check("working_tree", validate=_tables("protected_paths"))
def working_tree(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """A recursive delete takes the working directory (or a protected path) with it."""
    cwd = _cwd(ctx)
    protected = {posixpath.normpath(p.lower()) for p in ctx.data["protected_paths"] if isinstance(p, str) and p}
    found: list[Effect] = []
    for e in ctx.effects:
        if e.op != "delete" or not (e.detail or "").startswith("recursive"):
            continue
        path = e.resource.rstrip("*").rstrip("/") or "/"
        if path in ("/", "~") or not path:
            continue  # the root and home rules judge those
        if posixpath.normpath(path.lower()) in protected:
            found.append(e)
        elif cwd and path.startswith("/") and _under_or_at(path, cwd) and cwd.count("/") - path.count("/") <= 2:
            found.append(e)  # the tree itself or up to two levels above it (not `/home`: the home rule's)
        elif path.startswith("../") and path.count("/") == 1:
            if not cwd or path[3:] == posixpath.basename(cwd):
                found.append(e)
    return tuple(found) or None


# -- production ----------------------------------------------------------------------------------------
def marker_words(text: str, markers: Iterable[str]) -> list[str]:
    """The words of ``text`` that are production markers (a marker alone or followed by digits).

    >>> marker_words("infra/envs/prod bq-prod prd1 products reproduction", ["prod", "prd"])
    ['prod', 'prod', 'prd1']
    """
    wanted = tuple(m.lower() for m in markers if m)
    out = []
    for word in _WORD.findall(text.lower()):
        for m in wanted:
            rest = word[len(m) :]
            if word.startswith(m) and (not rest or rest.isdigit()):
                out.append(word)
                break
    return out


def _argument_text(ctx: CheckContext) -> str:
    parts = [bounded_text(ctx.event.target, MAX_MARKER_CHARS)]
    args = ctx.event.args if isinstance(ctx.event.args, dict) else {}
    for n, value in enumerate(args.values()):
        if n >= MAX_VALUES:
            break
        if isinstance(value, str):
            parts.append(value[:MAX_MARKER_CHARS])
        elif isinstance(value, list):
            parts.extend(v[:256] for v in value[:MAX_VALUES] if isinstance(v, str))
    return " ".join(parts)[:MAX_MARKER_CHARS]


@check("production_target", validate=_tables("prod_markers"))
def production_target(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """The destroyed resource, its detail or the command carries a production marker word."""
    markers = ctx.data["prod_markers"]
    found = tuple(
        e
        for e in ctx.effects
        if e.op in ("delete", "write") and marker_words(f"{e.resource} {e.detail or ''}", markers)
    )
    if found:
        return found
    return () if marker_words(_argument_text(ctx), markers) else None


# -- bulk deletion through a tool ----------------------------------------------------------------------
def _is_broad(query: str, data: Mapping[str, Any]) -> bool:
    """``in:anywhere``, ``*``, ``older_than:1d``: no sender, subject or words narrow it."""
    q = query.strip().lower()[:512]
    if q in data["bulk_broad_queries"]:
        return True
    operators = tuple(data["bulk_broad_operators"])
    return all(word.startswith(operators) for word in q.split())


def _bulk_evidence(tool: str, what: str) -> tuple[Effect, ...]:
    return (make("delete", f"{tool[:80]} {what}", via="tool", detail="bulk"),)


def _is_deletion_tool(effects: tuple[Effect, ...], tool: str, args: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """Prefilter of ``bulk_deletion``: the tool's own name (after an MCP server's ``__``) says it deletes."""
    return _deletes(tool.rpartition("__")[2].lower(), tuple(data["bulk_delete_words"]))


@check(
    "bulk_deletion",
    prefilter=_is_deletion_tool,
    validate=_tables(
        "bulk_delete_words",
        "bulk_delete_threshold",
        "bulk_id_keys",
        "bulk_query_keys",
        "bulk_broad_queries",
        "bulk_broad_operators",
    ),
)
def bulk_deletion(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """A deletion tool aimed at many ids (``breadth: many``) or at everything (``breadth: broad``)."""
    event, data = ctx.event, ctx.data
    args = event.args if isinstance(event.args, dict) else None
    if not args or event.tool is None:
        return None
    if event.kind == "tool_result" and ctx.session.kind_counts.get("tool_call"):
        return None  # its tool_call was judged (a result is the action only where no calls are recorded)
    if not _deletes(event.tool.rpartition("__")[2].lower(), tuple(data["bulk_delete_words"])):
        return None
    if ctx.args.get("breadth") == "broad":
        return _broad(event.tool, args, data)
    return _many(event.tool, args, int(data["bulk_delete_threshold"]), data)


@functools.lru_cache(maxsize=1024)
def _deletes(leaf: str, words: tuple[str, ...]) -> bool:
    return any(w in leaf for w in words)


def _broad(tool: str, args: Mapping[str, Any], data: Mapping[str, Any]) -> tuple[Effect, ...] | None:
    for key in data["bulk_query_keys"]:
        value = args.get(key)
        if isinstance(value, str) and _is_broad(value, data):
            return _bulk_evidence(tool, f"{key}={value[:60]!r}")
    flags = [k for k in ("all", "delete_all", "recursive") if args.get(k) is True]
    return _bulk_evidence(tool, f"{flags[0]}=true") if flags else None


def _many(tool: str, args: Mapping[str, Any], threshold: int, data: Mapping[str, Any]) -> tuple[Effect, ...] | None:
    for key in data["bulk_id_keys"]:
        value = args.get(key)
        if isinstance(value, list) and len(value) >= threshold:
            return _bulk_evidence(tool, f"{key}=[{len(value)} items]")
    count = args.get("count") or args.get("max_results") or args.get("limit")
    if isinstance(count, int) and not isinstance(count, bool) and count >= threshold * 5:
        return _bulk_evidence(tool, f"count={count}")
    return None

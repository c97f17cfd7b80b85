"""YAML rule files → validated, compiled :class:`Rule` s; every mistake is one line naming file and rule.

A rule file holds two top-level keys, both optional: ``macros`` (name → condition) and
``rules`` (a list). Macros are shared by every file loaded together. See
:mod:`agentwatch.detect.rules` for the language; this module only parses and checks it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from agentwatch.detect.detector_spec import THREAT_CATEGORIES
from agentwatch.detect.effects.model import CLASSES, OPS, VIAS, Effect
from agentwatch.detect.rules import checks
from agentwatch.errors import ConfigError

#: Keys of a rule, each with what it holds.
RULE_KEYS: Final = {
    "id": "stable identifier: lower-case letters, digits, '.', '_' and '-'",
    "title": "one line an analyst reads",
    "description": "optional: what the rule means and why",
    "category": f"one of {', '.join(THREAT_CATEGORIES)}",
    "tags": "ATT&CK technique ids (T1552.001) and OWASP agentic ids (ASI01 … ASI10)",
    "status": "stable | test | experimental",
    "score": "in (0, 1]; the policy maps it to a severity (0.5 medium, 0.75 high, 0.9 critical)",
    "condition": "what the action's effects (and the session's recent actions) must show",
    "within": "optional: the parts of a top-level `all` may match in different actions this many apart (≥ 1)",
    "exceptions": "optional: effect matchers whose effects never count for this rule",
    "falsepositives": "optional: known benign cases, as text",
    "references": "optional: URLs",
}
#: Keys of an effect matcher: an effect of the action matches when every key given matches.
MATCHER_KEYS: Final = {
    "op": "an op or a list of ops (any)",
    "classes": "classes the resource must all carry",
    "classes_any": "classes of which the resource must carry at least one",
    "classes_none": "classes the resource must not carry",
    "resource": "glob(s) over the resource (`*` crosses '/'); any may match",
    "resource_not": "glob(s) the resource must not match",
    "resource_regex": "a regular expression searched in the resource",
    "detail": "glob(s) over the effect's detail (absent detail: empty text)",
    "detail_not": "glob(s) the effect's detail must not match",
    "via": "tool | shell | python | args | script (a file the session wrote)",
    "program": "glob(s) over the base name of an executed program (implies op: execute)",
    "tool": "glob(s) over the event's tool name",
    "agent": "glob(s) over the event's agent id",
}
COMBINATORS: Final = ("all", "any", "not", "macro", "check")
STATUSES: Final = ("stable", "test", "experimental")
_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_TAG: Final = re.compile(r"^(?:T\d{4}(?:\.\d{3})?|ASI(?:0[1-9]|10))$")
_MAX_DEPTH: Final = 16


class RuleError(ConfigError):
    """A rule file, rule or override that cannot be used (one line: where and what)."""


@dataclass(frozen=True, slots=True)
class EffectMatch:
    """Compiled effect matcher (see :data:`MATCHER_KEYS`)."""

    ops: frozenset[str] | None = None
    classes: frozenset[str] = frozenset()
    classes_any: frozenset[str] | None = None
    classes_none: frozenset[str] = frozenset()
    resource: re.Pattern[str] | None = None
    resource_not: re.Pattern[str] | None = None
    resource_regex: re.Pattern[str] | None = None
    detail: re.Pattern[str] | None = None
    detail_not: re.Pattern[str] | None = None
    via: tuple[str, ...] | None = None
    program: re.Pattern[str] | None = None
    tool: re.Pattern[str] | None = None
    agent: re.Pattern[str] | None = None

    def matches(self, e: Effect, tool: str, agent: str) -> bool:
        if self.ops is not None and e.op not in self.ops:
            return False
        cls = e.classes
        if self.classes and not self.classes <= cls:
            return False
        if self.classes_any is not None and cls.isdisjoint(self.classes_any):
            return False
        if self.classes_none and not cls.isdisjoint(self.classes_none):
            return False
        if self.program is not None and (e.op != "execute" or not self.program.fullmatch(_basename(e.resource))):
            return False
        if self.resource is not None and not self.resource.fullmatch(e.resource):
            return False
        if self.resource_not is not None and self.resource_not.fullmatch(e.resource):
            return False
        if self.resource_regex is not None and not self.resource_regex.search(e.resource):
            return False
        if self.detail is not None and not self.detail.fullmatch(e.detail or ""):
            return False
        if self.detail_not is not None and self.detail_not.fullmatch(e.detail or ""):
            return False
        if self.via is not None and not e.via.startswith(self.via):
            return False
        if self.tool is not None and not self.tool.fullmatch(tool):
            return False
        return self.agent is None or bool(self.agent.fullmatch(agent))


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition: ``kind`` is ``effect`` (with ``match``), ``all``, ``any``, ``not``, or
    ``check`` (a named Python check, :mod:`agentwatch.detect.rules.checks`, with its ``args``)."""

    kind: str
    match: EffectMatch | None = None
    parts: tuple[Condition, ...] = ()
    check: str = ""
    args: tuple[tuple[str, Any], ...] = ()
    #: the check and its args as one string: a check named twice with the same args runs once per action
    memo_key: str = ""
    #: for the engine's partially evaluated conditions (kind ``const``): the effects that made it hold
    evidence: tuple[Effect, ...] = ()
    #: ``args`` as the mapping a check reads (built once; checks must not change it)
    args_map: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def uses_checks(self) -> bool:
        """Whether this condition (or a part of it) calls a Python check."""
        return self.kind == "check" or any(p.uses_checks for p in self.parts)


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule. ``exceptions`` are effect matchers; ``within`` ≥ 2 makes it a window rule."""

    id: str
    title: str
    category: str
    score: float
    condition: Condition
    tags: tuple[str, ...] = ()
    status: str = "stable"
    within: int = 1
    exceptions: tuple[EffectMatch, ...] = ()
    falsepositives: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    #: ops at least one of which an action must have for the rule to be worth evaluating (None: any)
    trigger_ops: frozenset[str] | None = field(default=None, compare=False)
    #: whether the condition calls a Python check (then it depends on more than the effects: never cached)
    dynamic: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    macros: Mapping[str, Any]
    #: named data tables (top-level ``data``) the checks read, e.g. marker lists; shared by the files
    data: Mapping[str, Any] = field(default_factory=dict)

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}


def load_files(paths: Iterable[str | Path]) -> RuleSet:
    """Parse, validate and compile every rule of ``paths`` (macros shared among them)."""
    docs: list[tuple[str, dict[str, Any]]] = []
    macros: dict[str, tuple[str, Any]] = {}
    data: dict[str, tuple[str, Any]] = {}
    for path in paths:
        where = str(path)
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RuleError(f"{where}: rule file does not exist") from None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise RuleError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from None
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise RuleError(f"{where}: expected a mapping with `macros`, `data` and/or `rules`")
        extra = set(raw) - {"macros", "rules", "data"}
        if extra:
            raise RuleError(f"{where}: unknown top-level key(s) {sorted(extra)}; known: macros, data, rules")
        table = raw.get("data") or {}
        if not isinstance(table, dict):
            raise RuleError(f"{where}: `data` must be a mapping of name → table")
        for name, body in table.items():
            if not isinstance(name, str) or not _ID.match(name):
                raise RuleError(f"{where}: data table name {name!r} must match {_ID.pattern}")
            if name in data:
                raise RuleError(f"{where}: data table {name!r} already defined in {data[name][0]}")
            data[name] = (where, body)
        for name, body in (raw.get("macros") or {}).items():
            if not isinstance(name, str) or not _ID.match(name):
                raise RuleError(f"{where}: macro name {name!r} must match {_ID.pattern}")
            if name in macros:
                raise RuleError(f"{where}: macro {name!r} already defined in {macros[name][0]}")
            macros[name] = (where, body)
        docs.append((where, raw))
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for where, raw in docs:
        items = raw.get("rules") or []
        if not isinstance(items, list):
            raise RuleError(f"{where}: `rules` must be a list")
        for index, item in enumerate(items):
            rule = compile_rule(item, where, index, macros)
            if rule.id in seen:
                raise RuleError(f"{where}: rule {rule.id}: id already used in {seen[rule.id]}")
            seen[rule.id] = where
            rules.append(rule)
    for name, (where, body) in macros.items():  # unused macros are still checked
        _condition(body, f"{where}: macro {name}", macros, 0, (name,))
    tables = {k: v[1] for k, v in data.items()}
    for rule in rules:  # each check validates its args and the data tables it reads, once, at load
        for cond in _checks(rule.condition):
            try:
                checks.CHECKS[cond.check].validate(dict(cond.args), tables)
            except (ValueError, TypeError, KeyError) as exc:
                raise RuleError(f"{rule.source}: rule {rule.id}: check {cond.check}: {exc}") from None
    return RuleSet(tuple(rules), {k: v[1] for k, v in macros.items()}, tables)


def _checks(cond: Condition) -> list[Condition]:
    if cond.kind == "check":
        return [cond]
    return [c for part in cond.parts for c in _checks(part)]


def compile_rule(item: Any, where: str, index: int, macros: Mapping[str, tuple[str, Any]]) -> Rule:
    if not isinstance(item, dict):
        raise RuleError(f"{where}: rule #{index + 1}: expected a mapping")
    rid = item.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise RuleError(f"{where}: rule #{index + 1}: `id` must match {_ID.pattern}, got {rid!r}")
    at = f"{where}: rule {rid}"
    unknown = set(item) - set(RULE_KEYS)
    if unknown:
        raise RuleError(f"{at}: unknown key(s) {sorted(unknown)}; known: {', '.join(RULE_KEYS)}")
    for key in ("title", "category", "score", "condition"):
        if key not in item:
            raise RuleError(f"{at}: missing `{key}` ({RULE_KEYS[key]})")
    title = item["title"]
    if not isinstance(title, str) or not title.strip():
        raise RuleError(f"{at}: `title` must be non-empty text")
    category = item["category"]
    if category not in THREAT_CATEGORIES:
        raise RuleError(f"{at}: unknown category {category!r}; known: {', '.join(THREAT_CATEGORIES)}")
    score = _score(item["score"], at)
    tags = tuple(_str_list(item.get("tags", []), f"{at}: tags"))
    bad = [t for t in tags if not _TAG.match(t)]
    if bad:
        raise RuleError(f"{at}: tags {bad} are neither ATT&CK ids (T1234, T1234.001) nor OWASP agentic (ASI01…ASI10)")
    status = item.get("status", "stable")
    if status not in STATUSES:
        raise RuleError(f"{at}: unknown status {status!r}; known: {', '.join(STATUSES)}")
    within = item.get("within", 1)
    if not isinstance(within, int) or isinstance(within, bool) or not 1 <= within <= 1000:
        raise RuleError(f"{at}: `within` must be an integer in [1, 1000], got {within!r}")
    condition = _condition(item["condition"], f"{at}: condition", macros, 0, ())
    if within > 1 and condition.kind != "all":
        raise RuleError(f"{at}: `within` needs a top-level `all` condition (its parts may match in different actions)")
    exceptions = tuple(
        compile_matcher(m, f"{at}: exceptions[{i}]") for i, m in enumerate(_list(item.get("exceptions", []), at))
    )
    return Rule(
        id=rid,
        title=" ".join(title.split()),
        category=category,
        score=score,
        condition=condition,
        tags=tags,
        status=status,
        within=within,
        exceptions=exceptions,
        falsepositives=tuple(_str_list(item.get("falsepositives", []), f"{at}: falsepositives")),
        description=str(item.get("description", "")),
        source=where,
        trigger_ops=_trigger_ops(condition, windowed=within > 1),
        dynamic=condition.uses_checks,
    )


def compile_matcher(raw: Any, at: str) -> EffectMatch:
    """One effect matcher (a mapping of :data:`MATCHER_KEYS`)."""
    if not isinstance(raw, dict) or not raw:
        raise RuleError(f"{at}: expected an effect matcher (keys: {', '.join(MATCHER_KEYS)})")
    unknown = set(raw) - set(MATCHER_KEYS)
    if unknown:
        raise RuleError(f"{at}: unknown key(s) {sorted(unknown)}; known: {', '.join(MATCHER_KEYS)}")
    ops = None
    if "op" in raw:
        ops = frozenset(_str_list(raw["op"], f"{at}: op"))
        bad = sorted(ops - set(OPS))
        if bad:
            raise RuleError(f"{at}: unknown op(s) {bad}; known: {', '.join(OPS)}")
    if "program" in raw:
        if ops is not None and ops != {"execute"}:
            raise RuleError(f"{at}: `program` matches executed programs; drop `op` or make it execute")
        ops = frozenset({"execute"})

    def classes(key: str) -> frozenset[str]:
        found = frozenset(_str_list(raw[key], f"{at}: {key}"))
        bad = sorted(found - set(CLASSES))
        if bad:
            raise RuleError(f"{at}: unknown class(es) {bad} in `{key}`; known: {', '.join(CLASSES)}")
        return found

    via = None
    if "via" in raw:
        via = tuple(_str_list(raw["via"], f"{at}: via"))
        bad = [v for v in via if v not in VIAS and v != "script"]
        if bad:
            raise RuleError(f"{at}: unknown via {bad}; known: {', '.join(sorted(VIAS))}, script")
    return EffectMatch(
        ops=ops,
        classes=classes("classes") if "classes" in raw else frozenset(),
        classes_any=classes("classes_any") if "classes_any" in raw else None,
        classes_none=classes("classes_none") if "classes_none" in raw else frozenset(),
        resource=_globs(raw, "resource", at),
        resource_not=_globs(raw, "resource_not", at),
        resource_regex=_regex(raw, "resource_regex", at),
        detail=_globs(raw, "detail", at),
        detail_not=_globs(raw, "detail_not", at),
        via=via,
        program=_globs(raw, "program", at),
        tool=_globs(raw, "tool", at, ignore_case=True),
        agent=_globs(raw, "agent", at),
    )


def _condition(
    raw: Any, at: str, macros: Mapping[str, tuple[str, Any]], depth: int, using: tuple[str, ...]
) -> Condition:
    if depth > _MAX_DEPTH:
        raise RuleError(f"{at}: nested deeper than {_MAX_DEPTH}")
    if not isinstance(raw, dict) or not raw:
        raise RuleError(f"{at}: expected a mapping (an effect matcher or one of {', '.join(COMBINATORS)})")
    combinators = [k for k in raw if k in COMBINATORS]
    if not combinators:
        return Condition("effect", match=compile_matcher(raw, at))
    if len(raw) != 1 and not (combinators == ["check"] and set(raw) <= {"check", "args"}):
        raise RuleError(f"{at}: `{combinators[0]}` must stand alone in its mapping, found {sorted(raw)}")
    if "check" in raw:
        return _check_condition(raw, at)
    key, value = next(iter(raw.items()))
    if key == "macro":
        if not isinstance(value, str) or value not in macros:
            raise RuleError(f"{at}: unknown macro {value!r}; defined: {', '.join(sorted(macros)) or 'none'}")
        if value in using:
            raise RuleError(f"{at}: macro {value!r} refers to itself ({' → '.join((*using, value))})")
        return _condition(macros[value][1], f"{at} → macro {value}", macros, depth + 1, (*using, value))
    if key == "not":
        return Condition("not", parts=(_condition(value, f"{at}.not", macros, depth + 1, using),))
    parts = _list(value, f"{at}.{key}")
    if not parts:
        raise RuleError(f"{at}: `{key}` needs at least one condition")
    return Condition(
        key, parts=tuple(_condition(p, f"{at}.{key}[{i}]", macros, depth + 1, using) for i, p in enumerate(parts))
    )


def _check_condition(raw: Mapping[str, Any], at: str) -> Condition:
    """``{check: name}`` or ``{check: name, args: {...}}``: a Python check registered under ``name``."""
    name = raw["check"]
    if not isinstance(name, str) or name not in checks.CHECKS:
        known = ", ".join(sorted(checks.CHECKS)) or "none registered"
        raise RuleError(f"{at}: unknown check {name!r}; known: {known}")
    args = raw.get("args", {})
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise RuleError(f"{at}: check {name}: `args` must be a mapping of name → value")
    items = tuple(sorted(args.items()))
    return Condition("check", check=name, args=items, memo_key=f"{name}:{items!r}", args_map=dict(items))


def _trigger_ops(cond: Condition, windowed: bool = False) -> frozenset[str] | None:
    """Ops one of which must be present for ``cond`` to hold on an action (None: no such bound)."""
    if cond.kind == "effect":
        return cond.match.ops if cond.match is not None else None
    if cond.kind in ("not", "check"):
        return None
    if cond.kind == "all" and not windowed:
        for part in cond.parts:
            ops = _trigger_ops(part)
            if ops is not None:
                return ops
        return None
    union: set[str] = set()
    for part in cond.parts:  # any, or a window's parts: each may be what this action contributes
        ops = _trigger_ops(part)
        if ops is None:
            return None
        union |= ops
    return frozenset(union)


def glob_regex(globs: Iterable[str], ignore_case: bool = False) -> re.Pattern[str]:
    """Globs as one anchored pattern: ``*`` any text (``/`` included), ``?`` one character, ``[…]`` a set."""
    parts = []
    for g in globs:
        out, i = [], 0
        while i < len(g):
            c = g[i]
            if c == "*":
                out.append(".*")
            elif c == "?":
                out.append(".")
            elif c == "[" and g.find("]", i + 2) != -1 and g[i + 1 : i + 3] != "!]":
                end = g.find("]", i + 2)  # a set holds at least one character: ``[]x]`` is the set of ] and x
                body = g[i + 1 : end]
                negate = body.startswith("!")
                body = body[1:] if negate else body
                # a set keeps its ranges (``[0-7]``); only what is special inside [] is escaped
                body = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
                out.append("[" + ("^" if negate else "") + body + "]")
                i = end
            else:
                out.append(re.escape(c))
            i += 1
        parts.append("".join(out))
    return re.compile("(?:" + "|".join(parts) + ")", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _globs(raw: Mapping[str, Any], key: str, at: str, ignore_case: bool = False) -> re.Pattern[str] | None:
    if key not in raw:
        return None
    globs = _str_list(raw[key], f"{at}: {key}")
    if not globs:
        raise RuleError(f"{at}: `{key}` is empty")
    try:
        return glob_regex(globs, ignore_case)
    except re.error as exc:
        raise RuleError(f"{at}: bad glob in `{key}` {globs!r}: {exc}") from None


def _regex(raw: Mapping[str, Any], key: str, at: str) -> re.Pattern[str] | None:
    if key not in raw:
        return None
    value = raw[key]
    if not isinstance(value, str):
        raise RuleError(f"{at}: `{key}` must be a string")
    try:
        return re.compile(value)
    except re.error as exc:
        raise RuleError(f"{at}: bad regular expression in `{key}` {value!r}: {exc}") from None


def _score(value: Any, at: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
        raise RuleError(f"{at}: `score` must be a number in (0, 1], got {value!r}")
    return float(value)


def _list(value: Any, at: str) -> list[Any]:
    if not isinstance(value, list):
        raise RuleError(f"{at}: expected a list")
    return value


def _str_list(value: Any, at: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise RuleError(f"{at}: expected text or a list of text")
    return items


def _basename(resource: str) -> str:
    return resource.rstrip("/").rpartition("/")[2]

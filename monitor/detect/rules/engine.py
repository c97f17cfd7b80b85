"""Evaluating compiled rules on one action's effects, with the session's recent matches for window rules.

:class:`RuleEngine` holds the rules after the operator's overrides (disabled, rescored, extra
exceptions). :meth:`RuleEngine.evaluate` takes one action's effects and a small, picklable
window state (kept by the caller in session scratch) and returns the rules that fire with the
effects that made them fire.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from agentwatch.detect.effects.model import Effect
from agentwatch.detect.rules.checks import CHECKS, CheckContext
from agentwatch.detect.rules.loader import Condition, EffectMatch, Rule, RuleError, RuleSet, compile_matcher


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that fired on an action: the effects that matched, and earlier events a window rule used."""

    rule: Rule
    effects: tuple[Effect, ...]
    earlier_event_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Override:
    """The operator's change to one rule (``[detectors.effect_rules.config.rules.<id>]``)."""

    enabled: bool = True
    score: float | None = None
    exceptions: tuple[Mapping[str, Any], ...] = ()


class RuleEngine:
    """The rules to evaluate, overrides applied; immutable once built."""

    def __init__(
        self,
        ruleset: RuleSet,
        overrides: Mapping[str, Override] | None = None,
        where: str = "config",
        data: Mapping[str, Any] | None = None,
    ):
        known = ruleset.by_id()
        overrides = overrides or {}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise RuleError(f"{where}: overrides name unknown rule(s) {unknown}; known: {', '.join(sorted(known))}")
        rules: list[Rule] = []
        for rule in ruleset.rules:
            o = overrides.get(rule.id)
            if o is None:
                rules.append(rule)
                continue
            if not o.enabled:
                continue
            changes: dict[str, Any] = {}
            if o.score is not None:
                if not 0.0 < o.score <= 1.0:
                    raise RuleError(f"{where}: rule {rule.id}: score must be in (0, 1], got {o.score}")
                changes["score"] = float(o.score)
            if o.exceptions:
                extra = tuple(
                    compile_matcher(dict(m), f"{where}: rule {rule.id}: exceptions[{i}]")
                    for i, m in enumerate(o.exceptions)
                )
                changes["exceptions"] = rule.exceptions + extra
            rules.append(dataclasses.replace(rule, **changes) if changes else rule)
        self.rules: tuple[Rule, ...] = tuple(rules)
        #: the rule files' data tables, with the detector's configuration-derived tables over them
        self.data: Mapping[str, Any] = {**ruleset.data, **(data or {})}
        #: rules that call a Python check: evaluated on every action their trigger ops allow, never cached
        self.dynamic: tuple[Rule, ...] = tuple(r for r in self.rules if r.dynamic)
        # per rule with checks, its condition when that is one check without a prefilter (and the rule has no
        # ops, exceptions or window): then the check itself is the rule's part of every action's plan
        self._dynamic_bare: tuple[tuple[Rule, tuple[Condition, ...] | None], ...] = tuple(
            (r, (r.condition,) if _is_bare_check(r) else None) for r in self.dynamic
        )
        self._static = tuple(r for r in self.rules if not r.dynamic)
        matchers = [m for r in self.rules for m in (*_matchers(r.condition), *r.exceptions)]
        # Whether any matcher looks at the tool or agent name; when none does, they are not part of a plan's key.
        # A check's prefilter reads the tool name too (it is decided once per distinct action, like a matcher).
        prefiltered = any(CHECKS[c.check].prefilter is not None for r in self.dynamic for c in _checks(r.condition))
        self._keyed_by_tool = prefiltered or any(m.tool is not None for m in matchers)
        self._keyed_by_agent = any(m.agent is not None for m in matchers)
        # Memos (bounded; rules are pure functions of an action's effects, tool and agent, so caching is exact):
        # the rules worth evaluating per set of ops, and the evaluation plan per distinct action.
        self._by_ops: dict[frozenset[str], tuple[Rule, ...]] = {}
        self._plans: dict[tuple[tuple[Effect, ...], str, str], tuple[_Step, ...]] = {}
        # per distinct action, the rules with checks that may still hold (their effect parts allow it), with the
        # effects their exceptions leave: the checks then run only for those
        self._dyn_plans: dict[tuple[tuple[Effect, ...], str, str], tuple[_Candidate, ...]] = {}

    def evaluate(
        self,
        effects: Sequence[Effect],
        tool: str,
        agent: str,
        index: int,
        event_id: str,
        window: dict[str, list[Any]],
        context: CheckContext | None = None,
    ) -> list[RuleHit]:
        """Rules that fire on one action (the ``index``-th action of its session).

        ``window`` maps a window rule's id to, per part of its ``all``, ``[action index, event id]``
        of the part's last match (or ``None``); it is updated in place and stays small.
        ``context`` is what rules with a Python check see; without it those rules do not fire.
        """
        key = (
            effects if isinstance(effects, tuple) else tuple(effects),
            tool if self._keyed_by_tool else "",
            agent if self._keyed_by_agent else "",
        )
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plan(key[0], tool, agent)
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        hits: list[RuleHit] = []
        for rule, hit, parts in plan:
            if hit is None:
                hit = _apply_window(rule, parts, index, event_id, window)
                if hit is None:
                    continue
            hits.append(hit)
        if self.dynamic and context is not None:
            candidates = self._dyn_plans.get(key)
            if candidates is None:
                candidates = self._dynamic_candidates(key[0], tool, agent)
                if len(self._dyn_plans) >= _MAX_PLANS:
                    self._dyn_plans.clear()
                self._dyn_plans[key] = candidates
            if candidates:
                hits.extend(self._dynamic_hits(candidates, tool, agent, index, event_id, window, context))
        return hits

    def _dynamic_candidates(self, effects: tuple[Effect, ...], tool: str, agent: str) -> tuple[_Candidate, ...]:
        """The rules with checks whose effect conditions may hold on this action, each with the effects its
        exceptions leave and its condition partially evaluated on them (only the checks are left to run)."""
        present = frozenset([e.op for e in effects])
        out: list[_Candidate] = []
        for rule, fixed in self._dynamic_bare:
            if fixed is not None:
                out.append((rule, effects, fixed))
                continue
            if rule.trigger_ops is not None and present.isdisjoint(rule.trigger_ops):
                continue
            usable = _without_exceptions(effects, rule.exceptions, tool, agent) if rule.exceptions else effects
            parts = rule.condition.parts if rule.within > 1 else (rule.condition,)
            residual = tuple(_residual(part, usable, tool, agent, self.data) for part in parts)
            if any(r.kind != "false" for r in residual):
                out.append((rule, usable, residual))
        return tuple(out)

    def _dynamic_hits(
        self,
        candidates: tuple[_Candidate, ...],
        tool: str,
        agent: str,
        index: int,
        event_id: str,
        window: dict[str, list[Any]],
        context: CheckContext,
    ) -> list[RuleHit]:
        context.data = self.data
        hits: list[RuleHit] = []
        for rule, usable, residual in candidates:
            ctx = context
            if len(usable) != len(context.effects):  # the rule's checks see only the effects its exceptions leave
                ctx = dataclasses.replace(context, effects=usable, memo={})
            if rule.within <= 1:
                only = residual[0]
                if only.kind == "check":  # the common shape: the effect parts decided, one check left
                    matched = _run_check(only, ctx)
                else:
                    matched = _eval(only, usable, tool, agent, ctx)
                if matched is not None:
                    hits.append(RuleHit(rule, matched))
                continue
            parts = tuple(_eval(part, usable, tool, agent, ctx) for part in residual)
            if any(got is not None for got in parts):
                hit = _apply_window(rule, parts, index, event_id, window)
                if hit is not None:
                    hits.append(hit)
        return hits

    def _plan(self, effects: tuple[Effect, ...], tool: str, agent: str) -> tuple[_Step, ...]:
        """What every rule makes of one action, in rule order: a hit, or a window rule's per-part matches."""
        present = frozenset([e.op for e in effects])
        candidates = self._by_ops.get(present)
        if candidates is None:
            candidates = self._candidates(present)
        steps: list[_Step] = []
        for rule in candidates:
            usable = _without_exceptions(effects, rule.exceptions, tool, agent) if rule.exceptions else effects
            if not usable:
                continue
            if rule.within <= 1:
                matched = _eval(rule.condition, usable, tool, agent)
                if matched is not None:
                    steps.append((rule, RuleHit(rule, matched), ()))
                continue
            parts = tuple(_eval(part, usable, tool, agent) for part in rule.condition.parts)
            if any(got is not None for got in parts):
                steps.append((rule, None, parts))
        return tuple(steps)

    def _candidates(self, present: frozenset[str]) -> tuple[Rule, ...]:
        """The rules whose trigger ops meet ``present`` (or that have none), in rule order; memoised."""
        found = tuple(r for r in self._static if r.trigger_ops is None or not present.isdisjoint(r.trigger_ops))
        if len(self._by_ops) >= _MAX_OP_SETS:
            self._by_ops.clear()
        self._by_ops[present] = found
        return found


#: One rule's part of an evaluation plan: (rule, its hit when it fires alone, else a window rule's per-part matches).
_Step = tuple[Rule, RuleHit | None, tuple[tuple[Effect, ...] | None, ...]]
#: Bounds on :class:`RuleEngine`'s memos (distinct sets of ops: a few dozen in practice; distinct actions: many).
_MAX_OP_SETS = 4096
_MAX_PLANS = 8192


def _is_bare_check(rule: Rule) -> bool:
    """Whether a rule is one check without a prefilter, ops, exceptions or window (no plan decides anything)."""
    cond = rule.condition
    return (
        cond.kind == "check"
        and CHECKS[cond.check].prefilter is None
        and rule.trigger_ops is None
        and not rule.exceptions
        and rule.within <= 1
    )


def _checks(cond: Condition) -> list[Condition]:
    """Every check in a condition."""
    if cond.kind == "check":
        return [cond]
    return [c for part in cond.parts for c in _checks(part)]


def _matchers(cond: Condition) -> list[EffectMatch]:
    """Every effect matcher in a condition."""
    if cond.kind == "effect":
        return [cond.match] if cond.match is not None else []
    return [m for part in cond.parts for m in _matchers(part)]


def _without_exceptions(
    effects: Sequence[Effect], exceptions: tuple[EffectMatch, ...], tool: str, agent: str
) -> tuple[Effect, ...]:
    return tuple(e for e in effects if not any(x.matches(e, tool, agent) for x in exceptions))


def _eval(
    cond: Condition, effects: Sequence[Effect], tool: str, agent: str, context: CheckContext | None = None
) -> tuple[Effect, ...] | None:
    """The effects that make ``cond`` hold (``()`` for a `not` that holds), or None when it does not."""
    kind = cond.kind
    if kind == "const":
        return cond.evidence
    if kind == "false":
        return None
    if kind == "check":
        return _run_check(cond, context) if context is not None else None
    if kind == "effect":
        m = cond.match
        assert m is not None
        found = tuple(e for e in effects if m.matches(e, tool, agent))
        return found or None
    if kind == "all":
        out: list[Effect] = []
        for part in cond.parts:
            got = _eval(part, effects, tool, agent, context)
            if got is None:
                return None
            out.extend(got)
        return tuple(dict.fromkeys(out))
    if kind == "any":
        for part in cond.parts:
            got = _eval(part, effects, tool, agent, context)
            if got is not None:
                return got
        return None
    # not
    return () if _eval(cond.parts[0], effects, tool, agent, context) is None else None


def _run_check(cond: Condition, context: CheckContext) -> tuple[Effect, ...] | None:
    """A check's verdict on this action, computed once per (check, args) whatever rules name it; None without
    a call where the check's gate (asked once per action) is closed."""
    memo = context.memo
    memo_key = cond.memo_key
    if memo_key in memo:
        return memo[memo_key]  # type: ignore[no-any-return]
    registered = CHECKS[cond.check]
    if registered.gate is not None:
        is_open = memo.get(registered.gate_key)
        if is_open is None:
            is_open = memo[registered.gate_key] = bool(registered.gate(context))
        if not is_open:
            return None
    context.args = cond.args_map
    got = registered.fn(context)
    memo[memo_key] = got
    return got


#: A rule with checks, for one action: the effects its exceptions leave, and its condition (or, for a
#: window rule, each part of it) partially evaluated on them.
_Candidate = tuple[Rule, tuple[Effect, ...], tuple[Condition, ...]]
_FALSE: Final = Condition("false")


def _residual(cond: Condition, effects: Sequence[Effect], tool: str, agent: str, data: Mapping[str, Any]) -> Condition:
    """``cond`` with every effect matcher already decided on these effects: what is left is its checks.

    An effect matcher becomes ``const`` (holds; ``evidence``: the effects it matched) or ``false``; so does a
    check whose prefilter says it cannot hold on these effects and this tool; combinators fold constants
    away, keeping the order that decides which evidence an ``any`` reports.
    """
    kind = cond.kind
    if kind == "check":
        prefilter = CHECKS[cond.check].prefilter
        if prefilter is not None and not prefilter(tuple(effects), tool, cond.args_map, data):
            return _FALSE
        return cond
    if kind == "effect":
        m = cond.match
        found = tuple(e for e in effects if m is not None and m.matches(e, tool, agent))
        return Condition("const", evidence=found) if found else _FALSE
    if kind == "not":
        inner = _residual(cond.parts[0], effects, tool, agent, data)
        if inner.kind == "false":
            return Condition("const")
        return _FALSE if inner.kind == "const" else Condition("not", parts=(inner,))
    if kind == "all":
        parts = []
        for p in cond.parts:
            part = _residual(p, effects, tool, agent, data)
            if part.kind == "false":
                return _FALSE  # one part cannot hold: the rest need not be decided
            parts.append(part)
        if all(p.kind == "const" for p in parts):
            return Condition("const", evidence=tuple(dict.fromkeys(e for p in parts for e in p.evidence)))
        return Condition("all", parts=tuple(parts))
    parts = [_residual(p, effects, tool, agent, data) for p in cond.parts]
    kept = [p for p in parts if p.kind != "false"]  # any
    if not kept:
        return _FALSE
    if kept[0].kind == "const" or len(kept) == 1:
        return kept[0]  # the first part that can hold surely holds (or is the only one): it is what `any` reports
    return Condition("any", parts=tuple(kept))


def _apply_window(
    rule: Rule,
    parts: tuple[tuple[Effect, ...] | None, ...],
    index: int,
    event_id: str,
    window: dict[str, list[Any]],
) -> RuleHit | None:
    """Record a window rule's per-part matches on this action; its hit when every part now matched within range."""
    state = window.get(rule.id)
    if state is None or len(state) != len(parts):
        state = [None] * len(parts)
    matched: list[Effect] = []
    for i, got in enumerate(parts):
        if got is not None:
            state[i] = [index, event_id]
            matched.extend(got)
    window[rule.id] = state
    if any(s is None or index - s[0] >= rule.within for s in state):
        return None
    earlier = tuple(dict.fromkeys(s[1] for s in state if s[0] != index))
    window[rule.id] = [None] * len(parts)  # fired: the next hit needs fresh evidence
    return RuleHit(rule, tuple(dict.fromkeys(matched)), earlier)

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
from typing import Any

from agentwatch.detect.effects.model import Effect
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

    def __init__(self, ruleset: RuleSet, overrides: Mapping[str, Override] | None = None, where: str = "config"):
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

    def evaluate(
        self,
        effects: Sequence[Effect],
        tool: str,
        agent: str,
        index: int,
        event_id: str,
        window: dict[str, list[Any]],
    ) -> list[RuleHit]:
        """Rules that fire on one action (the ``index``-th action of its session).

        ``window`` maps a window rule's id to, per part of its ``all``, ``[action index, event id]``
        of the part's last match (or ``None``); it is updated in place and stays small.
        """
        present = {e.op for e in effects}
        hits: list[RuleHit] = []
        for rule in self.rules:
            if rule.trigger_ops is not None and present.isdisjoint(rule.trigger_ops):
                continue
            usable = _without_exceptions(effects, rule.exceptions, tool, agent) if rule.exceptions else effects
            if not usable:
                continue
            if rule.within <= 1:
                matched = _eval(rule.condition, usable, tool, agent)
                if matched is not None:
                    hits.append(RuleHit(rule, matched))
                continue
            hit = _eval_window(rule, usable, tool, agent, index, event_id, window)
            if hit is not None:
                hits.append(hit)
        return hits


def _without_exceptions(
    effects: Sequence[Effect], exceptions: tuple[EffectMatch, ...], tool: str, agent: str
) -> tuple[Effect, ...]:
    return tuple(e for e in effects if not any(x.matches(e, tool, agent) for x in exceptions))


def _eval(cond: Condition, effects: Sequence[Effect], tool: str, agent: str) -> tuple[Effect, ...] | None:
    """The effects that make ``cond`` hold (``()`` for a `not` that holds), or None when it does not."""
    kind = cond.kind
    if kind == "effect":
        m = cond.match
        assert m is not None
        found = tuple(e for e in effects if m.matches(e, tool, agent))
        return found or None
    if kind == "all":
        out: list[Effect] = []
        for part in cond.parts:
            got = _eval(part, effects, tool, agent)
            if got is None:
                return None
            out.extend(got)
        return tuple(dict.fromkeys(out))
    if kind == "any":
        for part in cond.parts:
            got = _eval(part, effects, tool, agent)
            if got is not None:
                return got
        return None
    # not
    return () if _eval(cond.parts[0], effects, tool, agent) is None else None


def _eval_window(
    rule: Rule,
    effects: Sequence[Effect],
    tool: str,
    agent: str,
    index: int,
    event_id: str,
    window: dict[str, list[Any]],
) -> RuleHit | None:
    parts = rule.condition.parts
    state = window.get(rule.id)
    if state is None or len(state) != len(parts):
        state = [None] * len(parts)
    matched: list[Effect] = []
    now = False
    for i, part in enumerate(parts):
        got = _eval(part, effects, tool, agent)
        if got is not None:
            state[i] = [index, event_id]
            matched.extend(got)
            now = True
    if not now:
        return None
    window[rule.id] = state
    if any(s is None or index - s[0] >= rule.within for s in state):
        return None
    earlier = tuple(dict.fromkeys(s[1] for s in state if s[0] != index))
    window[rule.id] = [None] * len(parts)  # fired: the next hit needs fresh evidence
    return RuleHit(rule, tuple(dict.fromkeys(matched)), earlier)

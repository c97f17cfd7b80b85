"""Regex rules opened by cheap substring *gates*: what ``taint_flow`` uses to find sensitive text.

A :class:`Rule` is a regex on (usually lower-cased) text; :func:`gated` indexes a table of them
by their gates, and :func:`candidates` returns the few rules whose gate occurs in a text, so the
regexes run only where they can match. (The five rule detectors that shared this module once are
YAML rule packs now: :mod:`agentwatch.detectors.rule_pack`.)

Third-party detectors may import it, but it is not part of the plugin contract
(:mod:`agentwatch.detect.detector_spec` is): names here may change between releases.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

#: What a rule's optional check returns: a score, (score, rule, what), or None (no match).
Verdict = float | tuple[float, str, str] | None
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

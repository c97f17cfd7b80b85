"""Python checks a YAML rule calls by name: the few judgements that need code.

Most of a rule is data: effect matchers, macros, windows. Some judgements are not — "a token
of a known secret shape is in the arguments (and is not a placeholder)", "text the agent read
carries instructions aimed at it". A rule names such a check in its condition::

    condition:
      all:
        - {op: write, classes: agent_instructions}
        - {check: standing_orders, args: {table: standing_orders}}

A check is registered with :func:`check` under a stable name; the loader rejects an unknown
name, and calls the check's ``validate`` once at load with the rule's ``args`` and the rule
files' ``data`` tables (so a bad argument is a start-up error naming file and rule, never an
error per event). At run time the check gets a :class:`CheckContext` — the event, its session,
its effects, the ``args`` and the tables — and returns the effects that are its evidence
(``()`` when it holds with none to show), or ``None`` when it does not hold.

Checks see agent-written text: each must bound what it reads (the ``bounded_text`` helper caps it)
and must not raise; an exception is caught by the detector and counted as a plugin error.

A rule with a check is evaluated on every action its other parts allow (it is not cached by
effects, since it reads more than effects); keep checks cheap — gate a regex on a substring.

A check may also declare a ``prefilter(effects, tool, args, data) -> bool``: a necessary condition on the
part of an action the engine caches per distinct action (its effects and its tool name). Where it is
False the check cannot hold, so the engine drops the check from that action's plan once, instead of
calling the check on every such event. It must be implied by the check's own early returns (a
prefilter that says False where the check could hold changes what fires) and must not raise.

A check that many rules name with different ``args`` (one per token kind, say) may declare a
``gate(context) -> bool``, the same for every ``args``: the engine asks it once per action and, where it
is False, none of those rules calls the check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from agentwatch.detect.effects.model import Effect
    from agentwatch.detect.session_state import SessionState
    from agentwatch.events.audit_event import AuditEvent

__all__ = ["CHECKS", "Check", "CheckContext", "Prefilter", "check"]


@dataclass(slots=True)
class CheckContext:
    """What a check sees for one action."""

    event: AuditEvent
    session: SessionState
    effects: tuple[Effect, ...]
    args: Mapping[str, Any] = field(default_factory=dict)
    #: the rule files' ``data`` tables, by name
    data: Mapping[str, Any] = field(default_factory=dict)
    #: per-check memo for this action (a check called by several rules computes once)
    memo: dict[Any, Any] = field(default_factory=dict)


def _no_validation(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    if args:
        raise ValueError(f"takes no args, got {sorted(args)}")


#: A check's necessary condition on an action's effects and tool name, given the rule's args and the data tables.
Prefilter = Callable[[tuple["Effect", ...], str, Mapping[str, Any], Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class Check:
    """A registered check: ``fn(context) -> evidence effects | None`` and its load-time validator."""

    name: str
    fn: Callable[[CheckContext], tuple[Effect, ...] | None]
    doc: str
    #: ``validate(args, data)`` raises ValueError/TypeError/KeyError (one line) when the rule's args are unusable
    validate: Callable[[Mapping[str, Any], Mapping[str, Any]], None] = _no_validation
    #: ``prefilter(effects, tool, args, data)``: False where the check surely does not hold (None: no such bound)
    prefilter: Prefilter | None = None
    #: ``gate(context)``: False where the check holds for no ``args`` (asked once per action; None: no gate)
    gate: Callable[[CheckContext], bool] | None = None
    #: the key of the gate's verdict in a context's memo
    gate_key: tuple[str, str] = ("", "")


#: Every registered check by name. Modules register at import (the rule-pack detectors import theirs).
CHECKS: Final[dict[str, Check]] = {}


def check(
    name: str,
    validate: Callable[[Mapping[str, Any], Mapping[str, Any]], None] | None = None,
    prefilter: Prefilter | None = None,
    gate: Callable[[CheckContext], bool] | None = None,
) -> Callable[
    [Callable[[CheckContext], tuple[Effect, ...] | None]], Callable[[CheckContext], tuple[Effect, ...] | None]
]:
    """Register ``fn`` as the check ``name`` (a second registration under one name is an error), with its
    load-time ``validate`` and its optional ``prefilter`` and ``gate`` (see the module's docstring).

    >>> @check("doc-example-never")
    ... def never(ctx):
    ...     return None
    >>> CHECKS["doc-example-never"].doc
    'never'
    >>> del CHECKS["doc-example-never"]
    """

    def register(
        fn: Callable[[CheckContext], tuple[Effect, ...] | None],
    ) -> Callable[[CheckContext], tuple[Effect, ...] | None]:
        existing = CHECKS.get(name)
        if existing is not None and existing.fn is not fn:
            raise ValueError(f"check {name!r} is already registered by {existing.fn.__module__}")
        doc = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
        CHECKS[name] = Check(name, fn, doc, validate or _no_validation, prefilter, gate, ("gate", name))
        return fn

    return register


def bounded_text(value: object, limit: int = 65_536) -> str:
    """``value`` as text (strings as they are, anything else empty), at most ``limit`` characters."""
    return value[:limit] if isinstance(value, str) else ""

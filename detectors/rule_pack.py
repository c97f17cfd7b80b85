"""Rule packs: detectors whose logic is YAML rules over what an action does.

A rule pack is a detector whose rules live in ``detectors/rules/<detector name>[.<part>].yaml``
(:mod:`agentwatch.detect.rules`): conditions over the effects layer's typed effects
(computed once per event by the pipeline), the session's recent actions, and, where a
judgement needs code, Python checks referenced by name (:mod:`agentwatch.detect.rules.checks`).
Every shipped rule-based detector is a rule pack on this one engine: ``effect_rules`` (the
general library), ``secret_access``, ``destructive_ops``, ``privilege_changes``,
``supply_chain`` and ``prompt_injection``; each keeps its own name, mode and overrides.

Every action — a ``tool_call``, or the ``tool_result`` that is its only record (Claude Code's
OpenTelemetry path), or a ``memory_write`` — is judged on ``session.effects``. When both the
``tool_call`` and the ``tool_result`` of one call arrive, the result is not judged a second
time as an action (matched by ``tool_use_id``, else by a digest of tool, target and arguments,
else — a result without arguments — by the oldest pending call of the same tool);
rules with checks still see it (a check may read the result's content).

A finding's ``rule`` is the rule id; its reason names the rule, its title and the effects
that made it fire (``describe``), so an analyst sees why.

Operator overrides, per rule (unknown rule ids and keys are errors)::

    [detectors.effect_rules.config.rules.discovery-system-info]
    enabled = false
    [detectors.effect_rules.config.rules.persistence-shell-rc]
    score = 0.4
    exceptions = [{ resource = "~/.bashrc", agent = "dotfiles-*" }]
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Final

import msgspec

from agentwatch.detect.detector_spec import Detector, DetectorConfig, Finding, every_kind_except
from agentwatch.detect.effects import describe, effects_of
from agentwatch.detect.rules import Override, RuleEngine, RuleSet, load_files
from agentwatch.detect.rules.checks import CheckContext
from agentwatch.detect.session_state import SessionState
from agentwatch.events.audit_event import AuditEvent

__all__ = ["RuleOverride", "RulePack", "RulePackConfig", "shipped_rule_files"]

RULES_DIR: Final = Path(__file__).with_name("rules")
#: Event kinds no rule pack reads: model calls and session bookkeeping (a third of all events).
SKIPPED_KINDS: Final = frozenset({"model_call", "session_start", "session_end"})
#: The event the rule packs are judging and its call key (the pipeline runs detectors on one event at a time).
_LAST_KEY: list[Any] = [None, ""]
#: tool_call keys remembered per session, to skip the tool_result of the same call.
MAX_PENDING_CALLS: Final = 8


def shipped_rule_files(detector: str = "effect_rules") -> list[Path]:
    """The rule files that ship with agentwatch for one rule-pack detector: ``detectors/rules/<detector>.yaml``
    and ``detectors/rules/<detector>.<part>.yaml``, in name order."""
    return sorted([*RULES_DIR.glob(f"{detector}.yaml"), *RULES_DIR.glob(f"{detector}.*.yaml")])


class RuleOverride(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The operator's change to one rule.

    Parameters
    ----------
    enabled
        ``false`` drops the rule.
    score
        A new score in (0, 1] (the policy maps it to a severity).
    exceptions
        More effect matchers whose effects never count for this rule (same keys as in YAML).
    """

    enabled: bool = True
    score: float | None = None
    exceptions: list[dict[str, Any]] = msgspec.field(default_factory=list)


class RulePackConfig(DetectorConfig):
    """Configuration of a rule-pack detector (:class:`RulePack`).

    Parameters
    ----------
    builtin
        Load the shipped rule files (``detectors/rules/<detector>[.<part>].yaml``).
    files
        More rule files (paths), loaded with the shipped ones; their macros are shared.
    rules
        Per-rule overrides by rule id (:class:`RuleOverride`).
    max_findings_per_action
        At most this many rules reported per action (highest scores first).
    """

    builtin: bool = True
    files: tuple[str, ...] = ()
    rules: dict[str, RuleOverride] = msgspec.field(default_factory=dict)
    max_findings_per_action: int = 4


@functools.lru_cache(maxsize=8)
def _ruleset(files: tuple[str, ...]) -> RuleSet:
    return load_files(files)


class RulePack(Detector):
    """A detector made of YAML rules (``detectors/rules/<name>[.<part>].yaml``) and the checks they name.

    Subclasses set ``name``, ``categories``, ``summary``, ``cost_us`` and ``check_modules``
    (modules imported first so that their checks are registered).
    """

    config_type: ClassVar[type[DetectorConfig]] = RulePackConfig
    kinds: ClassVar[frozenset[str] | None] = every_kind_except(*SKIPPED_KINDS)  # not dispatched to observe
    #: modules whose import registers the Python checks this pack's rules name
    check_modules: ClassVar[tuple[str, ...]] = ()
    #: whether this pack's checks read what a tool *returned* (prompt injection does): when False, a
    #: ``tool_result`` whose call was already judged is skipped outright
    reads_results: ClassVar[bool] = False

    def __init__(self, config: RulePackConfig | None = None) -> None:
        super().__init__(config)
        cfg: RulePackConfig = self.config  # type: ignore[assignment]
        for module in self.check_modules:
            importlib.import_module(module)
        files = tuple(str(p) for p in shipped_rule_files(self.name)) if cfg.builtin else ()
        files += tuple(cfg.files)
        overrides = {
            rid: Override(enabled=o.enabled, score=o.score, exceptions=tuple(o.exceptions))
            for rid, o in cfg.rules.items()
        }
        self._engine = RuleEngine(
            _ruleset(files), overrides, where=f"detectors.{self.name}.config.rules", data=self.config_tables(cfg)
        )
        self._max = max(1, cfg.max_findings_per_action)

    def config_tables(self, config: RulePackConfig) -> dict[str, Any]:
        """Data tables derived from this detector's own configuration keys, over the rule files' ``data``
        (a subclass with tunables — protected branches, allowed package indexes — maps them here)."""
        return {}

    @property
    def rules(self) -> tuple[Any, ...]:
        """The rules in force (after overrides)."""
        return self._engine.rules

    def checkpoint(self) -> bytes:
        return b""  # no learned state: everything is config and per-session scratch

    def restore(self, state: bytes) -> None:
        return None

    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        if event.kind in SKIPPED_KINDS:
            return ()  # bookkeeping: no action, no content a rule reads
        effects = session.effects
        if effects is None:
            effects = effects_of(event, session)
        dynamic = bool(self._engine.dynamic)
        if not effects and not dynamic:
            return ()
        state = session.scratch.get(self.name)
        if state is None:
            state = session.scratch[self.name] = {"n": 0, "pending": [], "w": {}}
        if _LAST_KEY[0] is event:  # every rule pack asks for the same event's key: computed once
            key = _LAST_KEY[1]
        else:
            key = _call_key(event)
            _LAST_KEY[:] = [event, key]
        calls: list[str] = state.setdefault("pending", [])
        repeated = event.kind == "tool_result" and _repeats_a_call(event, key, calls)
        if repeated:  # its tool_call was judged already as an action; checks may still read the result
            effects = ()
            if not dynamic or not self.reads_results:
                return ()
        elif event.kind == "tool_call":
            calls.append(key)
            calls.append("tool:" + (event.tool or "")[:80])
            if len(calls) > 2 * MAX_PENDING_CALLS:
                del calls[:2]
        state["n"] += 1
        context = CheckContext(event, session, tuple(effects)) if dynamic else None
        hits = self._engine.evaluate(
            effects, event.tool or "", event.agent_id, state["n"], event.event_id, state["w"], context
        )
        if not hits:
            return ()
        hits.sort(key=lambda h: -h.rule.score)
        out = []
        for hit in hits[: self._max]:
            rule = hit.rule
            shown = describe(hit.effects or effects)
            reason = f"{rule.id}: {rule.title}" + (f" — {shown}" if shown else "")
            if hit.earlier_event_ids:
                reason += f" (with earlier action {', '.join(hit.earlier_event_ids[-3:])[:120]})"
            out.append(
                Finding(
                    score=rule.score,
                    reason=reason,
                    event_ids=(*hit.earlier_event_ids, event.event_id),
                    category=rule.category,
                    rule=rule.id,
                )
            )
        return out


def _repeats_a_call(event: AuditEvent, key: str, calls: list[str]) -> bool:
    """Whether a ``tool_result`` records a call already judged (and forget that call).

    ``calls`` holds, per pending ``tool_call``, its key then ``tool:<name>``. A result pairs with its call
    by ``tool_use_id`` or by the same tool, target and arguments; a result that carries no arguments (many
    runtimes' results echo only the target) pairs with the oldest pending call of the same tool.
    """
    if key in calls:
        at = calls.index(key)
        del calls[at : at + 2]
        return True
    if event.args:
        return False  # a result with its own arguments is paired by them (or is the only record of its call)
    name = "tool:" + (event.tool or "")[:80]
    for at in range(1, len(calls), 2):
        if calls[at] == name:
            del calls[at - 1 : at + 1]
            return True
    return False


def _call_key(event: AuditEvent) -> str:
    """Which call an event records: its ``tool_use_id`` when known, else a digest of tool, target and args."""
    attributes = event.attributes if isinstance(event.attributes, dict) else {}
    use_id = attributes.get("tool_use_id")
    if isinstance(use_id, str) and use_id:
        return "id:" + use_id[:80]
    body = msgspec.json.encode([event.tool, event.target, event.args], order="sorted")
    return hashlib.blake2b(body, digest_size=8).hexdigest()

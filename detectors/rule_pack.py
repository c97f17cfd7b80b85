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
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
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
#: The args a check context starts with (the engine sets each check's own before calling it).
_NO_ARGS: Final[Mapping[str, Any]] = MappingProxyType({})
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
        self._dynamic = bool(self._engine.dynamic)
        self._data = self._engine.data
        _GROUPS[self.name] = (2 if self.reads_results else 1) if self._engine.dynamic else 0

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
        dynamic = self._dynamic
        if not effects and not dynamic:
            return ()
        shared = _shared_state(session.scratch)
        group = (2 if self.reads_results else 1) if dynamic else 0
        repeated, index = shared.pair(event, group)
        if repeated:  # its tool_call was judged already as an action; checks may still read the result
            effects = ()
            if group != 2:
                return ()
        windows = shared.windows
        window = windows.get(self.name) if windows is not None else None
        fresh = window is None
        if window is None:
            window = {}
        context = (
            CheckContext(event, session, effects if type(effects) is tuple else tuple(effects), _NO_ARGS, self._data)
            if dynamic
            else None
        )
        hits = self._engine.evaluate(effects, event.tool or "", event.agent_id, index, event.event_id, window, context)
        if fresh and window:  # kept only once a window rule has state
            if windows is None:
                windows = shared.windows = {}
            windows[self.name] = window
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


#: Where the rule packs keep their one shared per-session state in ``session.scratch``.
SCRATCH_KEY: Final = "rule_packs"


class _PackSessions:
    """What the rule packs remember about one session, shared by all of them (``session.scratch["rule_packs"]``).

    Whether a ``tool_result`` repeats a pending call, and the action index window rules count in,
    depend only on which events a pack judges, which depends on one of three *groups*: packs
    without Python checks (0: judge only events with effects), packs with checks (1), packs with
    checks that also read results (2: a repeated result still counts as an action). So the pending
    calls are kept once per group kind (0, and 1–2 together) and the pairing is done once per event
    and group, then reused by every pack of the group; each pack keeps only its window rules' state.
    Containers are created when first needed and dropped when empty (an idle session holds one small object).
    """

    __slots__ = ("pending0", "pending1", "count0", "count1", "count2", "windows", "_event", "_seen")

    def __init__(self) -> None:
        #: pending calls of packs without checks (0) and with checks (1): ``None`` or, per ``tool_call``,
        #: its key then ``tool:<name>`` (≤ ``MAX_PENDING_CALLS`` calls)
        self.pending0: list[str] | None = None
        self.pending1: list[str] | None = None
        #: per group, the actions judged so far (the index window rules count in)
        self.count0 = self.count1 = self.count2 = 0
        #: pack name → its window rules' state (``None`` until a window rule has state)
        self.windows: dict[str, dict[str, list[Any]]] | None = None
        #: the event last paired, and per group (a tuple of three), ``None`` or (repeated, index) for it
        self._event: AuditEvent | None = None
        self._seen: tuple[tuple[bool, int] | None, ...] = _UNSEEN

    def pair(self, event: AuditEvent, group: int) -> tuple[bool, int]:
        """For this event and group: whether it is a ``tool_result`` of a call already judged, and the index
        of the action (the count of actions judged, this one included; unchanged for a skipped result)."""
        if self._event is not event:
            self._event = event
            self._seen = _UNSEEN
        seen = self._seen
        done = seen[group]
        if done is not None:
            return done
        other = seen[3 - group] if group else None  # the other group with checks pairs the same calls
        repeated = other[0] if other is not None else self._pair_calls(event, group != 0)
        if group == 0:
            if not repeated:
                self.count0 += 1
            done = (repeated, self.count0)
        elif group == 1:
            if not repeated:
                self.count1 += 1
            done = (repeated, self.count1)
        else:
            self.count2 += 1
            done = (repeated, self.count2)
        self._seen = (*seen[:group], done, *seen[group + 1 :])
        return done

    def _pair_calls(self, event: AuditEvent, checks: bool) -> bool:
        kind = event.kind
        if kind != "tool_call" and kind != "tool_result":
            return False
        if _LAST_KEY[0] is event:  # every rule pack asks for the same event's key: computed once
            key = _LAST_KEY[1]
        else:
            key = _call_key(event)
            _LAST_KEY[:] = [event, key]
        calls = self.pending1 if checks else self.pending0
        if kind == "tool_result":
            if calls is None or not _repeats_a_call(event, key, calls):
                return False
            if not calls:  # nothing pending: no list kept
                if checks:
                    self.pending1 = None
                else:
                    self.pending0 = None
            return True
        if calls is None:
            calls = []
            if checks:
                self.pending1 = calls
            else:
                self.pending0 = calls
        calls.append(key)
        calls.append("tool:" + (event.tool or "")[:80])
        if len(calls) > 2 * MAX_PENDING_CALLS:
            del calls[:2]
        return False

    def __getstate__(self) -> tuple[Any, ...]:
        return self.pending0, self.pending1, self.count0, self.count1, self.count2, self.windows

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.pending0, self.pending1, self.count0, self.count1, self.count2, self.windows = state
        self._event = None
        self._seen = _UNSEEN

    def adopt(self, name: str, legacy: dict[str, Any], group: int) -> None:
        """Fold in one pack's per-session dict from a checkpoint written before the state was shared
        (``{"n": actions judged, "pending": calls, "w": windows}``; packs of one group held the same
        ``n`` and ``pending``)."""
        window = legacy.get("w")
        if isinstance(window, dict) and window:
            if self.windows is None:
                self.windows = {}
            self.windows[name] = window
        count = legacy.get("n")
        if isinstance(count, int):
            if group == 0:
                self.count0 = max(self.count0, count)
            elif group == 1:
                self.count1 = max(self.count1, count)
            else:
                self.count2 = max(self.count2, count)
        calls = legacy.get("pending")
        if isinstance(calls, list) and calls:
            if group == 0 and self.pending0 is None:
                self.pending0 = list(calls)
            elif group != 0 and self.pending1 is None:
                self.pending1 = list(calls)


#: No group has paired the current event yet.
_UNSEEN: Final[tuple[None, None, None]] = (None, None, None)


#: rule-pack name → its group (see :class:`_PackSessions`), to read checkpoints written before the state was shared
_GROUPS: dict[str, int] = {}


def _shared_state(scratch: dict[str, Any]) -> _PackSessions:
    shared = scratch.get(SCRATCH_KEY)
    if shared is None:
        shared = scratch[SCRATCH_KEY] = _PackSessions()
        for name, group in _GROUPS.items():  # a session restored from an older checkpoint
            legacy = scratch.get(name)
            if isinstance(legacy, dict) and "pending" in legacy:
                del scratch[name]
                shared.adopt(name, legacy, group)
    return shared  # type: ignore[no-any-return]


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

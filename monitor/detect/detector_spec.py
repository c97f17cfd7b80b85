"""The detector plugin contract — everything a detector may implement, in one file.

A detector *scores and explains*; it never decides. It returns :class:`Finding` s
(score in [0, 1], a reason, the supporting event ids, a threat category). Whether a
finding becomes an alert, at what severity, and whether it may trigger automatic
playbook steps is the operator's call, made in one place: :mod:`agentwatch.detect.policy`.

Who calls what
--------------
``observe(event, session)``
    The pipeline, once per event, after ``session`` has recorded the event. Return
    findings (an empty tuple when nothing is wrong). Must be cheap: the class
    declares ``cost_us``, its per-event cost as ``bench/detector_cost.py`` measures it;
    that bench compares every detector's cost, and their sum, with the pipeline's budget.
    ``session.effects`` holds the event's typed effects (:mod:`agentwatch.detect.effects`),
    computed once by the pipeline before any detector runs (empty for non-tool events).
    The class declares ``kinds``, the event kinds ``observe`` reads: the pipeline calls
    ``observe`` only with those (``None``, the default: every kind, including kinds this
    version does not know). Session state (``session``) records every event whatever a
    detector declares, and ``close_session`` is called for every session.
``close_session(session)``
    The pipeline, once, when a session ends (``session_end``), idles past its TTL or
    is evicted for room. Window detectors score here. Default: nothing.
``checkpoint()`` / ``restore(state)``
    The runtime, to survive restarts: ``checkpoint`` returns a picklable object that
    ``restore`` accepts on a fresh instance built with the same config, after which
    the detector behaves exactly as before. Default: pickles ``__dict__``. ``run``
    saves it every ``[monitor] state_sync_s`` and at a clean stop, and restores it at
    start (:mod:`agentwatch.ingest.state_checkpoint`) — for a detector without the two hooks below.
``export_learned()`` / ``merge_learned(key, state)``
    The runtime, to share learned state *per key* (an agent's baseline, a principal's,
    the fleet's) among every monitor of the consumer group, through the store, every
    ``state_sync_s``: ``export_learned`` returns the keys whose state changed since the
    last call, serialised; each peer folds them in with ``merge_learned``. The merge must
    be a *join* — idempotent, commutative, associative (sets: union; counters: max; a
    model that cannot be merged: the better-trained copy wins, ties broken by the bytes)
    — so that every monitor converges to the same baseline however often and in whatever
    order rows are merged; when this detector's state for ``key`` holds something
    ``state`` lacks, the key must count as changed again (so the join is written back).
    Helpers: :mod:`agentwatch.detect.learned_merge`. Default: ``export_learned`` returns ``None``
    (not shared per key; ``checkpoint``/``restore`` are used whole).

Where state lives
-----------------
Session-scoped state goes in ``session.scratch[self.name]``; it is forgotten with
the session (TTL and size cap), so it is bounded for free, and it is durable: ``run``
checkpoints every session touched by a batch together with the batch's offsets, so it
must pickle (a reference to the detector's own objects must not: pickle ``None`` in its
place and look it up again when it is found ``None``). Learned state that spans
sessions (an agent's baseline) lives on the detector and must be bounded by the
detector itself (caps on keys per agent, on agents).

Registering
-----------
Add an entry point in the ``agentwatch.detectors`` group pointing at the class::

    [project.entry-points."agentwatch.detectors"]
    my_detector = "my_package.my_module:MyDetector"

A fixture of events with expected outcomes sits beside the module as
``<module>.fixture.jsonl`` (see :mod:`agentwatch.detect.detector_fixtures`).
"""

from __future__ import annotations

import abc
import pickle
from collections.abc import Sequence
from typing import Any, ClassVar, Final

import msgspec

from agentwatch.detect.session_state import SessionState
from agentwatch.events.audit_event import KNOWN_KINDS, AuditEvent

#: The closed set of threat categories a finding may name (also the simulator's labels).
THREAT_CATEGORIES: Final = (
    "injection_exfiltration",
    "secret_access",
    "destructive",
    "privilege_escalation",
    "guardrail_circumvention",
    "runaway_cost",
    "memory_poisoning",
    "supply_chain",
)
#: Findings that are not a threat category of their own (learned anomalies).
ANOMALY_CATEGORY: Final = "anomaly"
CATEGORIES: Final = frozenset(THREAT_CATEGORIES) | {ANOMALY_CATEGORY}
#: In a detector's ``kinds``: every event kind outside :data:`~agentwatch.events.audit_event.KNOWN_KINDS`
#: (a newer runtime's kinds are accepted as given).
OTHER_KINDS: Final = "*"


def every_kind_except(*kinds: str) -> frozenset[str]:
    """A ``kinds`` declaration: every kind (known or not) but these.

    >>> sorted(every_kind_except("model_call", "session_start", "session_end", "message", "permission"))
    ['*', 'memory_write', 'prompt', 'tool_call', 'tool_result']
    """
    return (KNOWN_KINDS | {OTHER_KINDS}) - frozenset(kinds)


def reads_kind(kinds: frozenset[str] | None, kind: str) -> bool:
    """Whether a detector declaring ``kinds`` reads events of ``kind`` (the pipeline's dispatch rule).

    >>> reads_kind(None, "model_call"), reads_kind(frozenset({"tool_call"}), "model_call")
    (True, False)
    >>> reads_kind(every_kind_except("model_call"), "handoff")  # a kind this version does not know
    True
    """
    return kinds is None or kind in kinds or (kind not in KNOWN_KINDS and OTHER_KINDS in kinds)


class Finding(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One thing a detector found; the policy turns it into an alert or not.

    Parameters
    ----------
    score
        How strongly this points at misbehaviour, in [0, 1], on the detector's scale.
    reason
        One human-readable sentence. Agent-written text belongs in quotes and capped
        (use :func:`quote`); it is escaped again wherever it is displayed.
    event_ids
        The events that support the finding, most relevant last.
    category
        One of :data:`CATEGORIES`.
    rule
        Which rule of the detector fired (a short stable identifier).
    """

    score: float
    reason: str
    event_ids: tuple[str, ...]
    category: str
    rule: str = ""


class DetectorConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base class of a detector's typed configuration; unknown keys are an error."""


class Detector(abc.ABC):
    """Base class of every detector, built-in or third-party."""

    #: Unique name; the entry point name must match it.
    name: ClassVar[str]
    #: Categories this detector can report (subset of :data:`CATEGORIES`).
    categories: ClassVar[frozenset[str]]
    #: Typed configuration (a :class:`DetectorConfig` subclass).
    config_type: ClassVar[type[DetectorConfig]] = DetectorConfig
    #: Per-event cost in microseconds on the reference machine (``bench/detector_cost.py``).
    cost_us: ClassVar[float] = 10.0
    #: One line for ``agentwatch detectors list``.
    summary: ClassVar[str] = ""
    #: The event kinds :meth:`observe` reads; the pipeline calls it with no other kind. ``None`` (the
    #: default): every kind. A set may name kinds this version does not know, and :data:`OTHER_KINDS` for
    #: every kind nobody names (see :func:`every_kind_except`). Declare only kinds whose events ``observe``
    #: could score or learn from: skipping a kind must change nothing but the time spent.
    kinds: ClassVar[frozenset[str] | None] = None

    def __init__(self, config: DetectorConfig | None = None) -> None:
        if config is None:
            config = self.config_type()
        elif not isinstance(config, self.config_type):
            raise TypeError(f"{self.name} takes {self.config_type.__name__}, got {type(config).__name__}")
        self.config = config

    @abc.abstractmethod
    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        """Score one event in the context of its session; return findings (maybe none)."""

    def close_session(self, session: SessionState) -> Sequence[Finding]:
        """Score a session that just closed; default: nothing."""
        return ()

    def checkpoint(self) -> bytes:
        """Serialise learned state (not config)."""
        return pickle.dumps({k: v for k, v in self.__dict__.items() if k != "config"}, protocol=5)

    def restore(self, state: bytes) -> None:
        """Load what :meth:`checkpoint` returned, on an instance with the same config."""
        self.__dict__.update(pickle.loads(state))  # noqa: S301 - our own checkpoint file

    def export_learned(self) -> dict[str, bytes] | None:
        """Learned state changed since the last call, serialised per key; ``None``: not shared per key."""
        return None

    def merge_learned(self, key: str, state: bytes) -> None:
        """Fold a peer monitor's ``state`` of ``key`` (from its :meth:`export_learned`) in, as a join."""
        raise NotImplementedError(f"{self.name} exports no learned state per key")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


NO_FINDINGS: Final[tuple[Finding, ...]] = ()


def quote(text: str | None, limit: int = 120) -> str:
    """Agent-written ``text`` as a short quoted excerpt for a reason string.

    >>> quote("rm -rf / --no-preserve-root")
    '"rm -rf / --no-preserve-root"'
    >>> quote("x" * 300, limit=5)
    '"xxxxx…"'
    """
    if text is None:
        return '""'
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[:limit] + "…"
    return '"' + flat.replace('"', "'") + '"'


def supporting(*events: AuditEvent | None) -> tuple[str, ...]:
    """Event ids of the given events, skipping ``None``."""
    return tuple(e.event_id for e in events if e is not None)


def validate_detector_class(cls: Any) -> list[str]:
    """Problems with a detector class, as sentences (empty when it is well-formed)."""
    problems: list[str] = []
    if not (isinstance(cls, type) and issubclass(cls, Detector)):
        return [f"{cls!r} is not a subclass of agentwatch.detect.detector_spec.Detector"]
    if getattr(cls, "__abstractmethods__", None):
        problems.append(f"does not implement {sorted(cls.__abstractmethods__)}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        problems.append("`name` must be a Python identifier string")
    cats = getattr(cls, "categories", None)
    if not isinstance(cats, frozenset) or not cats or not cats <= CATEGORIES:
        problems.append(f"`categories` must be a non-empty frozenset within {sorted(CATEGORIES)}")
    if not (isinstance(cls.config_type, type) and issubclass(cls.config_type, DetectorConfig)):
        problems.append("`config_type` must subclass DetectorConfig")
    if not isinstance(cls.cost_us, (int, float)) or cls.cost_us <= 0:
        problems.append("`cost_us` must be a positive number")
    kinds = getattr(cls, "kinds", None)
    if kinds is not None and not (
        isinstance(kinds, frozenset) and kinds and all(isinstance(k, str) and k for k in kinds)
    ):
        problems.append("`kinds` must be None (every kind) or a non-empty frozenset of event kinds")
    return problems

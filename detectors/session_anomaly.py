"""Session anomaly: a multivariate outlier score over windows of a session's events.

**Roll this detector out in ``shadow`` mode** (``[detectors.session_anomaly] mode =
"shadow"``): it says "this window looks unlike what this agent (or the fleet) usually
does", not what is wrong, and its calibration depends on the fleet it learns from.
Promote it once its shadow findings have been reviewed.

What it learns
--------------
river ``anomaly.HalfSpaceTrees`` models over per-window features: one per
``agent_id`` (at most ``max_agent_models``, least recently used evicted) and one
shared *fleet* model. Per event the detector only bumps counters in
``session.scratch["session_anomaly"]`` (O(1), no model call); a window closes every
``window_events`` events of a session and, as a final partial window of at least
``min_window_events`` events, in ``close_session``. Only then is it scored (~0.1 ms)
and learned.

Features of a window, each scaled to [0, 1] with fixed limits (HST needs bounded
features; fixed limits keep models comparable and restores exact): share of
``tool_call`` / ``tool_result`` / ``model_call`` / other events (session start/end,
prompts and replies are bookkeeping and not counted), distinct tools, the share of
calls going to the single most repeated (tool, target), the error/denied ratio, and —
per event, so a long
window compares with a short one — ``bytes_out``, ``bytes_in``, tokens and cost, plus
the event rate (log scales).

Cold start, explicitly: an agent's own model is built once the agent has produced
``min_windows`` windows (they are buffered, then replayed into it); until then its
windows are scored by the fleet model, which itself scores only after
``min_fleet_windows`` windows. Before that: learn only, no findings.

Score mapping: each model keeps an exponentially weighted mean and variance (river
``stats.EWMean``/``EWVar``) of the raw HST scores of the windows it learned; a
window's finding score is ``base_score + score_per_sigma * (z - z_threshold)`` for
``z ≥ z_threshold`` standard deviations above that mean, capped at ``max_score``.
With the defaults a finding needs z ≥ 3 (score 0.3, ``low``) and reaches 0.5 at
z ≈ 4.5; on the fleet simulator about 1–2 % of benign windows produce a ``low``
finding and ~0.1–0.2 % of benign sessions reach 0.5, while runaway-loop windows sit
at z ≈ 4–11. Windows scoring a finding are not learned (river's
``AnomalyFilter`` convention, as :class:`agentwatch.detect.learn_filter.LearnFilter`
with ``threshold = 0``, the rule ``rates`` and ``novelty`` share); a window without one
is learned at once, whatever other detectors say of the session.
"""

from __future__ import annotations

import math
import pickle
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import ClassVar, Final

from river import anomaly, stats

from agentwatch.detect.detector_spec import NO_FINDINGS, Detector, DetectorConfig, Finding, every_kind_except
from agentwatch.detect.learn_filter import LearnFilter
from agentwatch.detect.learned_merge import better_of
from agentwatch.detect.session_state import SessionState
from agentwatch.events.audit_event import AuditEvent

#: Keys of the learned state shared with the other monitors (``export_learned``).
AGENT_KEY_PREFIX: Final = "a:"
FLEET_KEY: Final = "fleet"

__all__ = ["SessionAnomaly", "SessionAnomalyConfig", "FEATURES"]

FEATURES: Final = (
    "share_tool_call",
    "share_tool_result",
    "share_model_call",
    "share_other",
    "distinct_tools",
    "top_target_share",
    "error_ratio",
    "bytes_out",
    "bytes_in",
    "tokens",
    "cost",
    "rate",
)
# Fixed limits of the log-scaled features (per event, so a long window and a short one compare).
_LOG_BYTES: Final = math.log1p(1e9)
_LOG_TOKENS: Final = math.log1p(1e6)
_LOG_CENTS: Final = math.log1p(1e4)
_LOG_RATE: Final = math.log1p(6_000.0)
_LOG_TOOLS: Final = math.log1p(64.0)
#: Kinds that are session bookkeeping rather than behaviour; not counted in windows.
_LIFECYCLE: Final = frozenset({"session_start", "session_end", "prompt", "message"})
#: What a window may teach the models: none that scored a finding (threshold 0: every finding is anomalous).
_LEARN_FILTER: Final = LearnFilter("session_anomaly", threshold=0.0)


class SessionAnomalyConfig(DetectorConfig, kw_only=True, forbid_unknown_fields=True):
    """Tunables of :class:`SessionAnomaly`.

    Parameters
    ----------
    window_events
        A window closes (and is scored) every this many events of a session.
    min_window_events
        A session's final partial window is scored only with at least this many events.
    n_trees, height, seed
        ``HalfSpaceTrees`` shape of the fleet model, and the seed of every model
        (deterministic). Memory and build time grow as ``n_trees * 2 ** (height + 1)``
        nodes: 20 × height 5 is ~45 KB pickled and ~5 ms to build; ``height=15``
        would be ~50 MB per model and take seconds to build.
    agent_n_trees, agent_height
        Shape of the per-agent models (smaller: one agent's windows are homogeneous,
        and up to ``max_agent_models`` of them are kept — 10 × height 4 is ~15 KB and
        ~1.5 ms to build, so 1,000 models are ~15 MB).
    agent_window_size, fleet_window_size
        ``HalfSpaceTrees.window_size`` (reference window) of agent and fleet models.
    min_windows
        Windows an agent produces before its own model exists (≥ ``agent_window_size``).
    min_fleet_windows
        Windows the fleet model learns before it scores (≥ ``fleet_window_size``).
    max_agent_models
        Per-agent models kept (LRU); agents without one use the fleet model.
    max_pending_agents
        Agents whose first windows are buffered toward their own model (LRU).
    fleet_sample_every
        The fleet model learns every window of agents without a model of their own,
        and one in this many of the others (it scores only the former).
    score_fading
        Fading factor of the EW mean/variance of each model's raw scores.
    z_threshold, base_score, score_per_sigma, max_score, min_sigma
        Score mapping (see the module docstring); ``min_sigma`` floors the raw-score
        standard deviation.
    min_scored
        Raw scores a model must have folded into its mean/variance before it reports.
    max_distinct
        Distinct tools / (tool, target) pairs tracked per window.
    """

    window_events: int = 50
    min_window_events: int = 8
    n_trees: int = 20
    height: int = 5
    agent_n_trees: int = 10
    agent_height: int = 4
    seed: int = 42
    agent_window_size: int = 25
    fleet_window_size: int = 100
    min_windows: int = 25
    min_fleet_windows: int = 100
    max_agent_models: int = 1000
    max_pending_agents: int = 20_000
    fleet_sample_every: int = 4
    score_fading: float = 0.05
    z_threshold: float = 3.0
    base_score: float = 0.3
    score_per_sigma: float = 0.13
    max_score: float = 0.85
    min_sigma: float = 0.02
    min_scored: int = 20
    max_distinct: int = 256

    def __post_init__(self) -> None:
        if self.window_events < 2 or not 1 <= self.min_window_events <= self.window_events:
            raise ValueError("need window_events ≥ 2 and 1 ≤ min_window_events ≤ window_events")
        if (
            min(self.n_trees, self.agent_n_trees) < 1
            or not 1 <= min(self.height, self.agent_height) <= max(self.height, self.agent_height) <= 12
        ):
            raise ValueError("n_trees must be ≥ 1 and height within 1..12 (memory grows as 2**height)")
        if self.min_windows < self.agent_window_size or self.min_fleet_windows < self.fleet_window_size:
            raise ValueError("min_windows/min_fleet_windows must be ≥ the model's window size")
        if min(self.max_agent_models, self.max_pending_agents, self.max_distinct, self.fleet_sample_every) < 1:
            raise ValueError("caps must be ≥ 1")
        if not 0 < self.score_fading <= 1:
            raise ValueError("score_fading must be in (0, 1]")


class _Model:
    """A HalfSpaceTrees model, how many windows it learned, and its raw-score statistics."""

    __slots__ = ("hst", "learned", "scored", "mean", "var")

    def __init__(self, cfg: SessionAnomalyConfig, n_trees: int, height: int, window_size: int) -> None:
        self.hst = anomaly.HalfSpaceTrees(n_trees=n_trees, height=height, window_size=window_size, seed=cfg.seed)
        self.learned = 0
        #: raw scores folded into mean/var
        self.scored = 0
        self.mean = stats.EWMean(cfg.score_fading)
        self.var = stats.EWVar(cfg.score_fading)

    def learn(self, x: dict[str, float], raw: float | None) -> None:
        self.hst.learn_one(x)
        self.learned += 1
        if raw is not None:
            self.scored += 1
            self.mean.update(raw)
            self.var.update(raw)

    def __getstate__(self) -> tuple:
        return self.hst, self.learned, self.scored, self.mean, self.var

    def __setstate__(self, state: tuple) -> None:
        self.hst, self.learned, self.scored, self.mean, self.var = state


class _Window:
    """Counters of the open window, in ``session.scratch["session_anomaly"]``."""

    __slots__ = (
        "n",
        "calls",
        "results",
        "models",
        "errors",
        "judged",
        "tools",
        "targets",
        "bytes_out",
        "bytes_in",
        "tokens",
        "cost",
        "t0",
        "windows",
        "first_id",
    )

    def __init__(self) -> None:
        self.windows = 0
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.calls = 0
        self.results = 0
        self.models = 0
        self.errors = 0
        self.judged = 0
        #: distinct tools called (≤ ``max_distinct``); ``None`` while ``targets`` has room, as every call's
        #: tool is then one of its keys (the set is built when ``targets`` fills: one container less per session)
        self.tools: set[str] | None = None
        #: (tool, first 96 characters of the target) → calls in this window (≤ ``max_distinct`` keys)
        self.targets: dict[tuple[str | None, str | None], int] = {}
        self.bytes_out = 0
        self.bytes_in = 0
        self.tokens = 0
        self.cost = 0.0
        self.t0 = 0
        self.first_id = ""

    def distinct_tools(self) -> int:
        if self.tools is not None:
            return len(self.tools)
        return len({named[0] for named in self.targets if named[0]})

    def features(self, t1: int) -> dict[str, float]:
        n = self.n or 1
        seconds = max(0.0, (t1 - self.t0) / 1000.0)
        per_minute = n / max(seconds / 60.0, 1.0 / 60.0)
        other = n - self.calls - self.results - self.models
        return {
            "share_tool_call": self.calls / n,
            "share_tool_result": self.results / n,
            "share_model_call": self.models / n,
            "share_other": max(0, other) / n,
            "distinct_tools": math.log1p(self.distinct_tools()) / _LOG_TOOLS,
            "top_target_share": max(self.targets.values()) / self.calls if self.targets else 0.0,
            "error_ratio": self.errors / self.judged if self.judged else 0.0,
            "bytes_out": min(1.0, math.log1p(self.bytes_out / n) / _LOG_BYTES),
            "bytes_in": min(1.0, math.log1p(self.bytes_in / n) / _LOG_BYTES),
            "tokens": min(1.0, math.log1p(self.tokens / n) / _LOG_TOKENS),
            "cost": min(1.0, math.log1p(self.cost * 100.0 / n) / _LOG_CENTS),
            "rate": min(1.0, math.log1p(per_minute) / _LOG_RATE),
        }

    def __getstate__(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)


class SessionAnomaly(Detector):
    """Windows of a session that look unlike this agent's (or the fleet's) usual windows.

    Meant to run in ``shadow`` mode first — see the module docstring for features,
    models, the cold-start rule and the score mapping.

    Examples
    --------
    Per-event work only counts; nothing is scored before the fleet model has learned
    ``min_fleet_windows`` windows.

    >>> from agentwatch.events.audit_event import from_mapping
    >>> from agentwatch.detect.session_state import SessionTable
    >>> detector = SessionAnomaly(SessionAnomalyConfig(window_events=10, min_window_events=5))
    >>> found = []
    >>> for s in range(30):
    ...     table = SessionTable()
    ...     for i in range(10):
    ...         ev = from_mapping({"event_id": f"{s}-{i}", "ts": 1767225600000 + s * 60000 + i * 2000,
    ...                            "session_id": f"s{s}", "agent_id": "bot", "kind": "tool_call",
    ...                            "tool": "Read", "target": f"f{i}.py"})
    ...         found += detector.observe(ev, table.touch(ev)[0])
    ...     found += detector.close_session(table.get(f"s{s}"))
    >>> found, detector.windows_learned
    ([], 30)
    """

    name: ClassVar[str] = "session_anomaly"
    categories: ClassVar[frozenset[str]] = frozenset({"anomaly"})
    config_type: ClassVar[type[DetectorConfig]] = SessionAnomalyConfig
    kinds: ClassVar[frozenset[str] | None] = every_kind_except(*_LIFECYCLE)
    cost_us: ClassVar[float] = 6.5  # measured: bench/detector_cost.py, 2-core reference machine
    summary: ClassVar[str] = "Session windows unlike the agent's usual ones (HalfSpaceTrees; roll out in shadow)."

    config: SessionAnomalyConfig

    def __init__(self, config: SessionAnomalyConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self._fleet = _Model(cfg, cfg.n_trees, cfg.height, cfg.fleet_window_size)
        self._window_events = cfg.window_events
        self._max_distinct = cfg.max_distinct
        self._agents: OrderedDict[str, _Model] = OrderedDict()
        self._pending: OrderedDict[str, deque[dict[str, float]]] = OrderedDict()
        self.windows_learned = 0
        #: agents whose model (or buffered windows) changed since the last ``export_learned``
        self._changed: set[str] = set()
        self._fleet_changed = False

    # -- learned state shared across the group (agentwatch.detect.detector_spec) -------------------
    def export_learned(self) -> dict[str, bytes]:
        """Per agent (``a:<agent>``: its model, or the windows buffered before it has one)
        and the fleet model with the count of windows learned (``fleet``), changed since the last call."""
        out: dict[str, bytes] = {}
        for agent_id in self._changed:
            state = (self._agents.get(agent_id), self._pending.get(agent_id))
            if state != (None, None):
                out[AGENT_KEY_PREFIX + agent_id] = pickle.dumps(state, protocol=5)
        if self._fleet_changed:
            out[FLEET_KEY] = pickle.dumps((self._fleet, self.windows_learned), protocol=5)
        self._changed, self._fleet_changed = set(), False
        return out

    def merge_learned(self, key: str, state: bytes) -> None:
        """Half-space trees cannot be merged: the model that learned more windows wins (an
        agent's own model over buffered windows; of two buffers, the longer)."""
        remote = pickle.loads(state)  # noqa: S301 - written by a monitor of this group to our store
        if key == FLEET_KEY:
            fleet, windows = remote
            mine = (self._fleet, self.windows_learned)
            take, extra = better_of(
                (self._fleet.learned, self.windows_learned),
                (fleet.learned, windows),
                lambda: pickle.dumps(mine, protocol=5),
                state,
            )
            if take:
                self._fleet, self.windows_learned = fleet, windows
            self._fleet_changed |= extra
            return
        agent_id = key.removeprefix(AGENT_KEY_PREFIX)
        model, pending = self._agents.get(agent_id), self._pending.get(agent_id)
        remote_model, remote_pending = remote
        mine_agent = (model, pending)
        take, extra = better_of(
            (model is not None, model.learned if model is not None else len(pending or ())),
            (remote_model is not None, remote_model.learned if remote_model is not None else len(remote_pending)),
            lambda: pickle.dumps(mine_agent, protocol=5),
            state,
        )
        if take and remote_model is not None:
            self._pending.pop(agent_id, None)
            self._agents[agent_id] = remote_model
            self._agents.move_to_end(agent_id)
            while len(self._agents) > self.config.max_agent_models:
                self._agents.popitem(last=False)
        elif take:
            self._pending[agent_id] = remote_pending
            while len(self._pending) > self.config.max_pending_agents:
                self._pending.popitem(last=False)
        if extra:
            self._changed.add(agent_id)

    # -- hooks --------------------------------------------------------------------------
    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        kind = event.kind
        if kind in _LIFECYCLE:
            return NO_FINDINGS  # session bookkeeping: not behaviour, and would make short windows differ
        w = session.scratch.get("session_anomaly")
        if w is None:
            w = session.scratch["session_anomaly"] = _Window()
        if w.n == 0:
            w.t0 = event.ts_ms
            w.first_id = event.event_id
        w.n += 1
        if kind == "tool_call":
            w.calls += 1
            cap = self._max_distinct
            tools = w.tools
            if tools is not None and event.tool and len(tools) < cap:
                tools.add(event.tool)
            target = event.target
            key = (event.tool, target[:96] if target else target)
            targets = w.targets
            count = targets.get(key)
            if count is not None:
                targets[key] = count + 1
            elif len(targets) < cap:
                targets[key] = 1
                if tools is None and len(targets) >= cap:  # full: distinct tools are counted apart from now on
                    w.tools = {named[0] for named in targets if named[0]}
        elif kind == "tool_result":
            w.results += 1
            w.judged += 1
            if event.outcome == "error" or event.outcome == "denied":
                w.errors += 1
        elif kind == "model_call":
            w.models += 1
        elif kind == "permission":
            w.judged += 1
            if event.outcome == "denied":
                w.errors += 1
        if event.bytes_out:
            w.bytes_out += event.bytes_out
        if event.bytes_in:
            w.bytes_in += event.bytes_in
        if event.tokens_in or event.tokens_out:
            w.tokens += (event.tokens_in or 0) + (event.tokens_out or 0)
        if event.cost_usd:
            w.cost += event.cost_usd
        if w.n >= self._window_events:
            return self._close_window(w, session.agent_id, event.ts_ms, event.event_id)
        return NO_FINDINGS

    def close_session(self, session: SessionState) -> Sequence[Finding]:
        w = session.scratch.get("session_anomaly")
        if w is None or w.n < self.config.min_window_events:
            return NO_FINDINGS
        last = session.recent[-1].event_id if session.recent else w.first_id
        return self._close_window(w, session.agent_id, session.last_ts_ms, last)

    # -- windows ------------------------------------------------------------------------
    def _close_window(self, w: _Window, agent_id: str, t1: int, last: str) -> Sequence[Finding]:
        cfg = self.config
        x = w.features(t1)
        first, n = w.first_id, w.n
        w.windows += 1
        w.reset()
        agent = self._agents.get(agent_id)
        if agent is not None:
            self._agents.move_to_end(agent_id)
            model, scope = agent, "agent"
        elif self._fleet.learned >= cfg.min_fleet_windows:
            model, scope = self._fleet, "fleet"
        else:
            model, scope = None, ""
        found: Sequence[Finding] = NO_FINDINGS
        raw = None
        score = 0.0
        if model is not None:
            raw = model.hst.score_one(x)
            score, z = self._map(model, raw)
            if score > 0.0:
                found = (self._finding(score, z, raw, scope, x, n, first, last),)
        if found and _LEARN_FILTER.classify(score):
            return found  # flagged: not learned
        self._learn(agent_id, agent, x, raw if scope == "agent" else None)
        self._changed.add(agent_id)
        self.windows_learned += 1
        self._fleet_changed = True  # the count of windows learned travels with the fleet model
        if agent is None or self.windows_learned % cfg.fleet_sample_every == 0:
            self._fleet.learn(x, raw if scope == "fleet" else None)
        return found

    def _learn(self, agent_id: str, agent: _Model | None, x: dict[str, float], raw: float | None) -> None:
        cfg = self.config
        if agent is not None:
            agent.learn(x, raw if raw is not None else agent.hst.score_one(x))
            return
        pending = self._pending.get(agent_id)
        if pending is None:
            pending = self._pending[agent_id] = deque(maxlen=cfg.min_windows)
            while len(self._pending) > cfg.max_pending_agents:
                self._pending.popitem(last=False)
        else:
            self._pending.move_to_end(agent_id)
        pending.append(x)
        if len(pending) < cfg.min_windows:
            return
        # Enough history: build the agent's own model from its buffered windows.
        del self._pending[agent_id]
        model = _Model(cfg, cfg.agent_n_trees, cfg.agent_height, cfg.agent_window_size)
        for past in pending:
            model.learn(past, model.hst.score_one(past) if model.learned >= cfg.agent_window_size else None)
        self._agents[agent_id] = model
        while len(self._agents) > cfg.max_agent_models:
            self._agents.popitem(last=False)

    def _map(self, model: _Model, raw: float) -> tuple[float, float]:
        """Raw HST score → (finding score or 0, z)."""
        cfg = self.config
        if model.scored < cfg.min_scored:
            return 0.0, 0.0
        sd = max(math.sqrt(max(model.var.get(), 0.0)), cfg.min_sigma)
        z = (raw - model.mean.get()) / sd
        if z < cfg.z_threshold:
            return 0.0, z
        return min(cfg.max_score, cfg.base_score + cfg.score_per_sigma * (z - cfg.z_threshold)), z

    def _finding(
        self,
        score: float,
        z: float,
        raw: float,
        scope: str,
        x: dict[str, float],
        n: int,
        first: str,
        last: str,
    ) -> Finding:
        top = sorted(x.items(), key=lambda kv: -abs(kv[1] - 0.5))[:3]
        shown = ", ".join(f"{k}={v:.2f}" for k, v in top)
        reason = (
            f"window of {n} events is {z:.1f} sd above the {scope} model's usual HalfSpaceTrees "
            f"score ({raw:.3f}); scaled features {shown}"
        )
        return Finding(
            score=round(score, 4),
            reason=reason,
            event_ids=(first, last),
            category="anomaly",
            rule=f"{scope}_window",
        )

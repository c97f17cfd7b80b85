"""Rates: runaway sessions — call rate, tokens, cost, bytes out and tight loops.

What it learns
--------------
Per ``agent_id`` (and once for the whole fleet), an exponentially weighted mean and
variance (river ``stats.EWMean`` / ``stats.EWVar``) of five per-session figures, in
``log1p`` space (cost in cents) so one heavy session does not swamp the baseline:

* ``calls_per_minute`` — the most tool calls in any sliding 60 s of event time,
* ``tokens`` — ``tokens_in + tokens_out`` summed over the session,
* ``cost_usd`` — summed ``cost_usd``,
* ``bytes_out`` — summed ``bytes_out``,
* ``loop`` — the longest run of consecutive tool calls with the same tool *and* target.

A tool call is a ``tool_call`` event, or a ``tool_result`` that is the only record of its call
(Claude Code's OpenTelemetry path sends nothing else): a result is paired with a pending
``tool_call`` of the same tool (and the same ``tool_use_id`` when both carry one) and then not
counted again; an unpaired result is counted as the call.

A session's figures are learned when it closes, unless it fired (river's
``AnomalyFilter`` convention: a detector does not learn what it flagged) — except
that a session whose findings all stayed *marginal* (below ``learn_flagged_below``)
and that no other detector alerted on is learned, so a legitimate shift (an agent
that starts exporting 60 MB a day) alerts a few times and then becomes normal,
while a real runaway (scores ≥ 0.7, or corroborated) never enters the baseline.
The rule is :class:`agentwatch.detect.learn_filter.LearnFilter` (``threshold =
learn_flagged_below``, judged on the session's highest score), shared with
``session_anomaly`` and ``novelty``.

When it fires
-------------
A figure fires once it is above its absolute **floor** *and* above the baseline by
``k_sigma`` standard deviations; above its **ceiling** it fires regardless of any
baseline. The score is ``0.6`` at the floor rising to ``0.9`` at the ceiling (log
scale), so the policy sees how far above normal a session is; a figure re-fires only
when its score has risen by ``rescore_step``.

Cold start, explicitly: an agent with fewer than ``min_sessions_for_baseline`` learned
sessions is compared with the *fleet* baseline instead; while the fleet itself has
fewer than ``min_fleet_sessions`` learned sessions only the ceilings fire.

Per-event work is a few additions and comparisons (thresholds are computed once per
session, at its first event); the 60 s window is a list of at most 60 per-second
counters (O(1) amortised per call, a few hundred bytes per session).
"""

from __future__ import annotations

import math
import pickle
from collections import OrderedDict
from collections.abc import Sequence
from typing import ClassVar, Final

from river import stats

from agentwatch.detect.detector_spec import NO_FINDINGS, Detector, DetectorConfig, Finding, quote
from agentwatch.detect.learn_filter import LearnFilter
from agentwatch.detect.learned_merge import better_of
from agentwatch.detect.session_state import SessionState
from agentwatch.events.audit_event import AuditEvent

__all__ = ["Rates", "RatesConfig"]

#: The per-session figures, in a fixed order (index = slot in the arrays below).
METRICS: Final = ("calls_per_minute", "tokens", "cost_usd", "bytes_out", "loop")
_CPM, _TOK, _COST, _BYTES, _LOOP = range(5)
#: Per-figure multiplier before ``log1p`` (cost in cents, so small spends are not flattened).
_SCALE: Final = (1.0, 1.0, 100.0, 1.0, 1.0)
_BUCKETS: Final = 60
_KEEP_TARGET: Final = 256
#: Keys of the learned state shared with the other monitors (``export_learned``).
AGENT_KEY_PREFIX: Final = "a:"
FLEET_KEY: Final = "fleet"
_UNITS: Final = ("tool calls in 60 s", "tokens", "USD", "bytes out", "identical tool calls in a row")
#: ``tool_call`` s remembered per session (awaiting their ``tool_result``), to count each call once.
MAX_PENDING_CALLS: Final = 8


class RatesConfig(DetectorConfig, kw_only=True, forbid_unknown_fields=True):
    """Tunables of :class:`Rates`; every floor/ceiling pair is (fires-at-all, fires-regardless).

    Parameters
    ----------
    calls_per_minute_floor, calls_per_minute_ceiling
        Tool calls within any 60 s of event time.
    tokens_floor, tokens_ceiling
        Tokens (in + out) in one session.
    cost_floor_usd, cost_ceiling_usd
        Model spend in one session.
    bytes_out_floor, bytes_out_ceiling
        Bytes sent by tool calls in one session.
    loop_floor, loop_ceiling
        Consecutive tool calls with the same tool and target (a runaway retry or
        polling loop).
    k_sigma
        How many baseline standard deviations (log space) above the baseline mean a
        figure must be, besides being above its floor.
    min_sigma
        Floor on the baseline standard deviation in ``log1p`` space (0.5 ≈ a factor
        of 1.65), so a very regular agent does not fire on a modest change.
    fading_factor
        river ``EWMean``/``EWVar`` fading factor for an agent's baseline (weight of the
        newest session; 0.1 ≈ the last ten sessions matter most).
    fleet_fading_factor
        The same for the fleet-wide baseline.
    min_sessions_for_baseline
        Learned sessions before an agent's own baseline is used (before: the fleet's).
    min_fleet_sessions
        Learned sessions before the fleet baseline is used (before: ceilings only).
    window_s
        The sliding window for the call rate, in seconds of event time (counted in 60
        buckets of ``window_s / 60``; calls older than the window are not counted).
    rescore_step
        A figure that already fired fires again only once its score rose this much.
    learn_flagged_below
        A session that fired is still learned when its highest score stayed below this
        and no other detector alerted on it (see the module docstring).
    max_agents
        Agents whose baselines are kept (least recently active evicted first).
    """

    calls_per_minute_floor: float = 60.0
    calls_per_minute_ceiling: float = 240.0
    tokens_floor: float = 2_000_000.0
    tokens_ceiling: float = 20_000_000.0
    cost_floor_usd: float = 10.0
    cost_ceiling_usd: float = 50.0
    bytes_out_floor: float = 200_000_000.0
    bytes_out_ceiling: float = 5_000_000_000.0
    loop_floor: float = 25.0
    loop_ceiling: float = 100.0
    k_sigma: float = 4.0
    min_sigma: float = 0.5
    fading_factor: float = 0.1
    fleet_fading_factor: float = 0.02
    min_sessions_for_baseline: int = 5
    min_fleet_sessions: int = 30
    window_s: float = 60.0
    rescore_step: float = 0.05
    learn_flagged_below: float = 0.7
    max_agents: int = 50_000

    def __post_init__(self) -> None:
        for metric, (floor, ceiling) in zip(METRICS, self.limits(), strict=True):
            if not 0 < floor < ceiling:
                raise ValueError(f"{metric}: need 0 < floor < ceiling, got {floor}, {ceiling}")
        if not 0 < self.fading_factor <= 1 or not 0 < self.fleet_fading_factor <= 1:
            raise ValueError("fading factors must be in (0, 1]")
        if self.k_sigma <= 0 or self.min_sigma <= 0 or self.window_s <= 0 or self.rescore_step <= 0:
            raise ValueError("k_sigma, min_sigma, window_s and rescore_step must be positive")
        if self.max_agents < 1 or self.min_sessions_for_baseline < 1:
            raise ValueError("max_agents and min_sessions_for_baseline must be ≥ 1")

    def limits(self) -> tuple[tuple[float, float], ...]:
        """(floor, ceiling) per figure, in :data:`METRICS` order."""
        return (
            (self.calls_per_minute_floor, self.calls_per_minute_ceiling),
            (self.tokens_floor, self.tokens_ceiling),
            (self.cost_floor_usd, self.cost_ceiling_usd),
            (self.bytes_out_floor, self.bytes_out_ceiling),
            (self.loop_floor, self.loop_ceiling),
        )


class _Baseline:
    """EW mean and variance of each figure (log1p space) and how many sessions fed them."""

    __slots__ = ("sessions", "means", "variances")

    def __init__(self, fading_factor: float) -> None:
        self.sessions = 0
        self.means = [stats.EWMean(fading_factor) for _ in METRICS]
        self.variances = [stats.EWVar(fading_factor) for _ in METRICS]

    def learn(self, values: Sequence[float]) -> None:
        self.sessions += 1
        for mean, var, value, scale in zip(self.means, self.variances, values, _SCALE, strict=True):
            x = math.log1p(value * scale)
            mean.update(x)
            var.update(x)

    def threshold(self, index: int, k_sigma: float, min_sigma: float) -> float:
        """The figure value that is ``k_sigma`` above this baseline."""
        sd = max(math.sqrt(max(self.variances[index].get(), 0.0)), min_sigma)
        return math.expm1(min(self.means[index].get() + k_sigma * sd, 700.0)) / _SCALE[index]

    def __getstate__(self) -> tuple[int, list[stats.EWMean], list[stats.EWVar]]:
        return self.sessions, self.means, self.variances

    def __setstate__(self, state: tuple[int, list[stats.EWMean], list[stats.EWVar]]) -> None:
        self.sessions, self.means, self.variances = state


class _SessionRates:
    """Per-session accumulators, kept in ``session.scratch["rates"]``."""

    __slots__ = (
        "buckets",
        "in_window",
        "values",
        "next_at",
        "last_tool",
        "last_target",
        "run",
        "fired",
        "evidence",
        "pending",
    )

    def __init__(self, next_at: list[float]) -> None:
        #: [bucket number, calls] of the non-empty buckets of the sliding window, oldest first (≤ 60; a
        #: list, not a deque: a deque's first block alone is ~600 bytes per session)
        self.buckets: list[list[int]] = []
        #: calls in the window ending at the newest bucket
        self.in_window = 0
        self.values = [0.0, 0.0, 0.0, 0.0, 0.0]
        #: value at which each figure (re-)fires next
        self.next_at = next_at
        self.last_tool: str | None = None
        #: the previous call's target, shortened past ``_KEEP_TARGET`` characters
        self.last_target: str | None = None
        self.run = 0
        #: highest score reported in this session (0: none)
        self.fired = 0.0
        #: figure → event ids reported (``None`` until the session first fires)
        self.evidence: dict[int, tuple[str, ...]] | None = None
        #: (tool, tool_use_id) of recent ``tool_call`` s whose ``tool_result`` has not arrived, oldest first
        self.pending: list[tuple[str | None, str | None]] = []

    def __getstate__(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple) -> None:
        self.pending = []  # absent from state saved before it existed
        for name, value in zip(self.__slots__, state, strict=False):
            setattr(self, name, value)
        if not isinstance(self.buckets, list):  # a deque in state saved before the window was a list
            self.buckets = list(self.buckets)
        if not self.evidence:
            self.evidence = None

    def remember_call(self, tool: str | None, use_id: str | None) -> None:
        """Note a ``tool_call`` whose ``tool_result`` may follow (the oldest is forgotten past the bound)."""
        self.pending.append((tool, use_id))
        if len(self.pending) > MAX_PENDING_CALLS:
            del self.pending[0]

    def is_only_record(self, tool: str | None, use_id: str | None) -> bool:
        """Whether a ``tool_result`` is the only record of its call; if not, its ``tool_call`` is paired off.

        It pairs with the pending call of the same ``tool_use_id``, else with the oldest pending call
        of the same tool whose id does not contradict it (a result may carry no id or no arguments).
        """
        pending = self.pending
        if not pending:
            return True
        match = next((i for i, p in enumerate(pending) if use_id is not None and p == (tool, use_id)), None)
        if match is None:
            match = next((i for i, (t, u) in enumerate(pending) if t == tool and (u is None or use_id is None)), None)
        if match is None:
            return True
        del pending[match]
        return False


class Rates(Detector):
    """Runaway cost: a session far above its agent's call rate, tokens, spend, bytes or loop length.

    See the module docstring for what is learned and the cold-start rule. Findings are
    category ``runaway_cost``, scored 0.6 (at the floor, above baseline) to 0.9 (at the
    ceiling), one rule per figure (``calls_per_minute``, ``tokens``, ``cost_usd``,
    ``bytes_out``, ``loop``).

    Examples
    --------
    A tight polling loop on a brand-new agent: no baseline anywhere yet, so only the
    ceiling (100 identical calls in a row by default) fires.

    >>> from agentwatch.events.audit_event import from_mapping
    >>> from agentwatch.detect.session_state import SessionTable
    >>> detector, table = Rates(), SessionTable()
    >>> found = []
    >>> for i in range(150):
    ...     ev = from_mapping({"event_id": f"e{i}", "ts": 1767225600000 + i * 2000,
    ...                        "session_id": "s1", "agent_id": "bot", "kind": "tool_call",
    ...                        "tool": "kubectl", "target": "kubectl rollout status deploy/app"})
    ...     found += detector.observe(ev, table.touch(ev)[0])
    >>> [(f.rule, f.score, f.event_ids[-1]) for f in found]
    [('loop', 0.9, 'e99')]
    """

    name: ClassVar[str] = "rates"
    categories: ClassVar[frozenset[str]] = frozenset({"runaway_cost"})
    config_type: ClassVar[type[DetectorConfig]] = RatesConfig
    cost_us: ClassVar[float] = 4.0  # measured: bench/detector_cost.py, 2-core reference machine
    summary: ClassVar[str] = "Runaway sessions: call rate, tokens, cost, bytes out or a tight loop far above baseline."

    config: RatesConfig

    def __init__(self, config: RatesConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self._limits = cfg.limits()
        self._bucket_ms = max(1, int(cfg.window_s * 1000) // _BUCKETS)
        self._agents: OrderedDict[str, _Baseline] = OrderedDict()
        self._fleet = _Baseline(cfg.fleet_fading_factor)
        #: agents whose baseline changed since the last ``export_learned``; and the fleet's
        self._changed: set[str] = set()
        self._fleet_changed = False

    # -- learned state shared across the group (agentwatch.detect.detector_spec) -------------------
    def export_learned(self) -> dict[str, bytes]:
        """Baselines (``a:<agent>``, ``fleet``) changed since the last call."""
        out: dict[str, bytes] = {}
        for agent_id in self._changed:
            baseline = self._agents.get(agent_id)
            if baseline is not None:
                out[AGENT_KEY_PREFIX + agent_id] = pickle.dumps(baseline, protocol=5)
        if self._fleet_changed:
            out[FLEET_KEY] = pickle.dumps(self._fleet, protocol=5)
        self._changed, self._fleet_changed = set(), False
        return out

    def merge_learned(self, key: str, state: bytes) -> None:
        """EW means cannot be merged: the baseline fed by more sessions wins."""
        remote = pickle.loads(state)  # noqa: S301 - written by a monitor of this group to our store
        agent_id = None if key == FLEET_KEY else key.removeprefix(AGENT_KEY_PREFIX)
        local = self._fleet if agent_id is None else self._agents.get(agent_id)
        if local is None:
            self._agents[agent_id] = remote  # type: ignore[index]
            while len(self._agents) > self.config.max_agents:
                self._agents.popitem(last=False)
            return
        take, extra = better_of(local.sessions, remote.sessions, lambda: pickle.dumps(local, protocol=5), state)
        if take:
            local.__setstate__(remote.__getstate__())
        elif extra and agent_id is None:
            self._fleet_changed = True
        elif extra and agent_id is not None:
            self._changed.add(agent_id)

    # -- thresholds ---------------------------------------------------------------------
    def _thresholds(self, agent_id: str) -> list[float]:
        """Per figure, the value at which this session first fires."""
        cfg = self.config
        baseline = self._agents.get(agent_id)
        if baseline is not None:
            self._agents.move_to_end(agent_id)
            if baseline.sessions < cfg.min_sessions_for_baseline:
                baseline = None
        if baseline is None and self._fleet.sessions >= cfg.min_fleet_sessions:
            baseline = self._fleet
        out = []
        for index, (floor, ceiling) in enumerate(self._limits):
            if baseline is None:
                out.append(ceiling)  # cold start: ceilings only
            else:
                out.append(min(ceiling, max(floor, baseline.threshold(index, cfg.k_sigma, cfg.min_sigma))))
        return out

    def _score(self, index: int, value: float) -> float:
        floor, ceiling = self._limits[index]
        frac = math.log(value / floor) / math.log(ceiling / floor)
        return round(0.6 + 0.3 * min(1.0, max(0.0, frac)), 4)

    # -- hooks --------------------------------------------------------------------------
    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        st = session.scratch.get("rates")
        if st is None:
            st = session.scratch["rates"] = _SessionRates(self._thresholds(session.agent_id))
        kind = event.kind
        is_call = False
        if kind == "tool_call":
            is_call = True
            st.remember_call(event.tool, _use_id(event))
        elif kind == "tool_result":
            is_call = st.is_only_record(event.tool, _use_id(event))
            if not is_call and not event.bytes_out and not event.cost_usd and not event.tokens_in:
                return NO_FINDINGS  # the common case: the result of a counted call, carrying nothing counted here
        values = st.values
        next_at = st.next_at
        hits: list[int] | None = None
        if is_call:
            count = self._count_call(st, event.ts_ms // self._bucket_ms)
            if count > values[_CPM]:
                values[_CPM] = count
                if count >= next_at[_CPM]:
                    hits = [_CPM]
            target = event.target
            if target is not None and len(target) > _KEEP_TARGET:
                target = f"{target[:_KEEP_TARGET]}…({len(target)})"
            if event.tool == st.last_tool and target == st.last_target:
                st.run += 1
            else:
                st.run = 1
                st.last_tool = event.tool
                st.last_target = target
            if st.run > values[_LOOP]:
                values[_LOOP] = st.run
                if st.run >= next_at[_LOOP]:
                    hits = (hits or []) + [_LOOP]
        if event.tokens_in is not None or event.tokens_out is not None:
            values[_TOK] += (event.tokens_in or 0) + (event.tokens_out or 0)
            if values[_TOK] >= next_at[_TOK]:
                hits = (hits or []) + [_TOK]
        if event.cost_usd:
            values[_COST] += event.cost_usd
            if values[_COST] >= next_at[_COST]:
                hits = (hits or []) + [_COST]
        if event.bytes_out:
            values[_BYTES] += event.bytes_out
            if values[_BYTES] >= next_at[_BYTES]:
                hits = (hits or []) + [_BYTES]
        if hits is None:
            return NO_FINDINGS
        return self._fire(hits, st, event)

    @staticmethod
    def _count_call(st: _SessionRates, bucket: int) -> int:
        """Add one call in ``bucket``; return the calls in the window ending at the newest bucket."""
        buckets = st.buckets
        if buckets and bucket <= buckets[-1][0]:
            if bucket <= buckets[-1][0] - _BUCKETS:
                return st.in_window  # older than the window: not counted
            # A late call: into its own bucket, inserted in order if it had none (rare; ≤ 60 entries).
            position = len(buckets)
            for entry in reversed(buckets):
                if entry[0] == bucket:
                    entry[1] += 1
                    break
                if entry[0] < bucket:
                    buckets.insert(position, [bucket, 1])
                    break
                position -= 1
            else:
                buckets.insert(0, [bucket, 1])
            st.in_window += 1
            return st.in_window
        buckets.append([bucket, 1])
        st.in_window += 1
        low = bucket - _BUCKETS
        if buckets[0][0] <= low:
            gone = 1
            while buckets[gone][0] <= low:
                gone += 1
            st.in_window -= sum(entry[1] for entry in buckets[:gone])
            del buckets[:gone]
        return st.in_window

    def _fire(self, hits: list[int], st: _SessionRates, event: AuditEvent) -> list[Finding]:
        step_frac = self.config.rescore_step / 0.3
        out = []
        for index in hits:
            value = st.values[index]
            floor, ceiling = self._limits[index]
            score = self._score(index, value)
            if score > st.fired:
                st.fired = score
            # Next firing: when the score would have risen by one step (never again past the ceiling).
            st.next_at[index] = math.inf if value >= ceiling else value * (ceiling / floor) ** step_frac
            if st.evidence is None:
                st.evidence = {}
            evidence = st.evidence.get(index, ())
            if len(evidence) < 8:
                evidence = st.evidence[index] = (*evidence, event.event_id)
            shown = f"{value:.2f}" if index == _COST else f"{value:,.0f}"
            reason = f"{shown} {_UNITS[index]} this session (floor {floor:,.6g}, ceiling {ceiling:,.6g})"
            if index == _LOOP:
                reason += f": {quote(st.last_tool, 40)} on {quote(st.last_target, 80)}"
            out.append(
                Finding(
                    score=score,
                    reason=reason,
                    event_ids=evidence,
                    category="runaway_cost",
                    rule=METRICS[index],
                )
            )
        return out

    def close_session(self, session: SessionState) -> Sequence[Finding]:
        st = session.scratch.get("rates")
        if st is None:
            return NO_FINDINGS
        if not LearnFilter(self.name, threshold=self.config.learn_flagged_below).learnable(st.fired, session):
            return NO_FINDINGS  # flagged: do not learn it
        agents = self._agents
        baseline = agents.get(session.agent_id)
        if baseline is None:
            baseline = agents[session.agent_id] = _Baseline(self.config.fading_factor)
            while len(agents) > self.config.max_agents:
                agents.popitem(last=False)
        else:
            agents.move_to_end(session.agent_id)
        baseline.learn(st.values)
        self._fleet.learn(st.values)
        self._changed.add(session.agent_id)
        self._fleet_changed = True
        return NO_FINDINGS


def _use_id(event: AuditEvent) -> str | None:
    """The call id an event carries (``attributes.tool_use_id``), bounded, or None."""
    attributes = event.attributes
    use_id = attributes.get("tool_use_id") if isinstance(attributes, dict) else None
    return use_id[:80] if isinstance(use_id, str) and use_id else None

"""Deciding: the one place where a detector's score becomes (or not) an alert.

Detectors score; the operator decides here, per detector: its rollout ``mode``, the
score a finding needs, how scores map to severities, and "N findings in a window"
thresholds.

>>> p = DetectorPolicy(min_count=2, window_s=60)
>>> p.severity_for(0.95), p.severity_for(0.6), p.severity_for(0.1)
('critical', 'medium', 'info')
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final, Literal

import msgspec

SEVERITIES: Final = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK: Final = {name: rank for rank, name in enumerate(SEVERITIES)}
MODES: Final = ("shadow", "alert", "enforce")

Mode = Literal["shadow", "alert", "enforce"]


class DetectorPolicy(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, dict=True):
    """How one detector's findings are decided. Every field has a safe default.

    Parameters
    ----------
    enabled
        Run the detector at all.
    mode
        ``shadow``: score and count, publish nothing. ``alert``: publish alerts.
        ``enforce``: publish alerts that may trigger automatic playbook steps.
    min_score
        Findings scoring below this are counted but never alert.
    severity
        Lowest score for each severity; a finding takes the highest one it reaches.
    min_count, window_s
        Alert only once ``min_count`` qualifying findings fell within ``window_s``
        seconds of event time in the same session (``window_s = 0``: whole session).
    config
        The detector's own typed configuration (validated against its ``config_type``).
    """

    enabled: bool = True
    mode: Mode = "alert"
    min_score: float = 0.5
    severity: dict[str, float] = msgspec.field(
        default_factory=lambda: {"critical": 0.9, "high": 0.75, "medium": 0.5, "low": 0.3, "info": 0.0}
    )
    min_count: int = 1
    window_s: float = 0.0
    config: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError("min_score must be within [0, 1]")
        unknown = set(self.severity) - set(SEVERITIES)
        if unknown:
            raise ValueError(f"unknown severities {sorted(unknown)}; use {list(SEVERITIES)}")
        if self.min_count < 1 or self.window_s < 0:
            raise ValueError("min_count must be ≥ 1 and window_s ≥ 0")
        # Highest severity first, so the first threshold reached wins.
        self._ladder = sorted(
            ((score, name) for name, score in self.severity.items()),
            key=lambda pair: (pair[0], SEVERITY_RANK[pair[1]]),
            reverse=True,
        )

    def severity_for(self, score: float) -> str:
        for threshold, name in self._ladder:
            if score >= threshold:
                return name
        return "info"

    def qualifies(self, score: float) -> bool:
        return score >= self.min_score

    def count_reached(self, hits: deque[int] | None, ts_ms: int) -> tuple[bool, deque[int]]:
        """Record a qualifying finding at ``ts_ms``; say whether the threshold is met."""
        if hits is None:
            hits = deque(maxlen=self.min_count)
        hits.append(ts_ms)
        if len(hits) < self.min_count:
            return False, hits
        if self.window_s and ts_ms - hits[0] > self.window_s * 1000:
            return False, hits
        return True, hits

"""Learn only what was not flagged: the one rule of the learned detectors, stated once.

river's anomaly filters (``river.anomaly.ThresholdFilter``, base ``river.base.AnomalyFilter``)
wrap an anomaly detector, ``classify(score) -> bool`` a score as anomalous (``score >=
threshold``) and, with ``protect_anomaly_detector`` (the default), do not let the detector learn
what was classified anomalous — otherwise it slowly comes to consider anomalies normal.
:class:`LearnFilter` mirrors that interface rather than subclassing it: river's filter wraps a
river ``AnomalyDetector`` and learns inside its ``learn_one``, while what our detectors learn (EW
baselines, sets of items, HalfSpaceTrees routed between an agent's model and the fleet's) is not
one model, and learning waits for the session to close. So the filter only *decides*; each
detector learns where it learns.

The rule, for what a detector would learn and the highest score it *reported* for it
(``0.0``: nothing reported):

1. nothing reported: learnable (at once, or when the session closes);
2. reported at or above ``threshold`` (:meth:`LearnFilter.classify`): anomalous, never learned;
3. reported below ``threshold`` (marginal): learnable once the session closed *clean* — no
   other detector alerted on it (``session.alerts`` maps detector name → alert), so a legitimate
   shift alerts a few times and then becomes normal, while one another detector corroborated
   never does;
4. marginal and reported at or above ``confirm_at``: learnable only after ``confirm_sessions``
   such clean sessions (:meth:`LearnFilter.confirmed` counts them), alerting meanwhile.

Who uses it: ``rates`` (``threshold = learn_flagged_below``, a session's figures by its highest
score), ``session_anomaly`` (``threshold = 0``: a window with any finding is not learned; a window
without one is learned at once) and ``novelty`` (no threshold: the items of a reported event are
held and learned when the session closes clean, those reported at ``confirm_min_score`` or more
after ``confirm_sessions`` clean sessions; items of an event not reported are learned at once).

Examples
--------
>>> from agentwatch.events.audit_event import from_mapping
>>> from agentwatch.detect.session_state import SessionTable
>>> gate = LearnFilter("rates", threshold=0.7)
>>> event = from_mapping({"event_id": "e1", "ts": 1767225600000, "session_id": "s1",
...                       "agent_id": "bot", "kind": "tool_call", "tool": "Read"})
>>> session = SessionTable().touch(event)[0]
>>> gate.learnable(0.0, session), gate.learnable(0.65, session), gate.learnable(0.8, session)
(True, True, False)
>>> session.alerts["secret_access"] = None  # another detector alerted on the session
>>> gate.learnable(0.0, session), gate.learnable(0.65, session)
(True, False)
"""

from __future__ import annotations

import math
from collections import OrderedDict

from agentwatch.detect.session_state import SessionState

__all__ = ["LearnFilter"]


class LearnFilter:
    """Whether a learned detector may learn what it scored (see the module docstring).

    Parameters
    ----------
    detector
        The detector's name: its own alerts in ``session.alerts`` do not make a session unclean.
    threshold
        A reported score at or above this is anomalous and never learned (``math.inf``: none is).
    confirm_at, confirm_sessions
        A marginal score at or above ``confirm_at`` is learned only after ``confirm_sessions``
        clean sessions (``confirm_sessions ≤ 1``: after one, like any marginal score).
    """

    __slots__ = ("detector", "threshold", "confirm_at", "confirm_sessions")

    def __init__(
        self,
        detector: str,
        *,
        threshold: float = math.inf,
        confirm_at: float = math.inf,
        confirm_sessions: int = 1,
    ) -> None:
        self.detector = detector
        self.threshold = threshold
        self.confirm_at = confirm_at
        self.confirm_sessions = confirm_sessions

    def classify(self, score: float) -> bool:
        """Whether a reported score is anomalous: never learned (river's ``ThresholdFilter.classify``)."""
        return score >= self.threshold

    def clean(self, session: SessionState) -> bool:
        """Whether no *other* detector alerted on the session."""
        return all(name == self.detector for name in session.alerts)

    def learnable(self, score: float, session: SessionState) -> bool:
        """Whether what this detector reported at most ``score`` for (``0.0``: nothing) in ``session``
        may be learned when the session closes: rules 1–3 of the module docstring."""
        if not score:
            return True
        return not self.classify(score) and self.clean(session)

    def confirmed(self, counts: OrderedDict[str, int], key: str, score: float, cap: int) -> bool:
        """Rule 4, for ``key`` reported at ``score`` in a session that closed clean: whether it is learned now.

        ``counts`` holds the clean sessions seen so far per key not yet learned; it is raised here
        and the key forgotten once it is learned; at most ``cap`` keys are kept (oldest dropped).
        """
        if not (score >= self.confirm_at and self.confirm_sessions > 1):
            return True
        seen = counts.pop(key, 0) + 1
        if seen >= self.confirm_sessions:
            return True
        counts[key] = seen  # alerts again next time
        while len(counts) > cap:
            counts.popitem(last=False)
        return False

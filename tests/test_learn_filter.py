"""The one "learn only what was not flagged" rule (agentwatch.detect.learn_filter) and its three users."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from agentwatch.detect.learn_filter import LearnFilter
from agentwatch.detect.session_state import SessionState, SessionTable
from agentwatch.detectors.novelty import Novelty, NoveltyConfig
from agentwatch.detectors.rates import Rates, RatesConfig
from agentwatch.detectors.session_anomaly import SessionAnomaly, SessionAnomalyConfig
from agentwatch.events.audit_event import from_mapping

T0 = 1_767_225_600_000


def _session(sid: str = "s1", agent: str = "bot") -> SessionState:
    event = from_mapping(
        {"event_id": f"{sid}-0", "ts": T0, "session_id": sid, "agent_id": agent, "kind": "tool_call", "tool": "Read"}
    )
    return SessionTable().touch(event)[0]


# -- the rule ------------------------------------------------------------------------------


def test_classify_is_river_threshold_filter_at_or_above() -> None:
    gate = LearnFilter("rates", threshold=0.7)
    assert gate.classify(0.7) and gate.classify(0.95)
    assert not gate.classify(0.69)
    assert not LearnFilter("novelty").classify(0.99)  # no threshold: nothing is anomalous for good


def test_a_flagged_score_is_never_learned_even_in_a_clean_session() -> None:
    gate, session = LearnFilter("rates", threshold=0.7), _session()
    assert gate.clean(session)
    assert not gate.learnable(0.7, session)
    assert not gate.learnable(0.9, session)


def test_a_marginal_score_is_learned_in_a_clean_session() -> None:
    gate, session = LearnFilter("rates", threshold=0.7), _session()
    assert gate.learnable(0.6, session)
    session.alerts["rates"] = object()  # the detector's own alert does not make the session unclean
    assert gate.clean(session) and gate.learnable(0.6, session)


def test_another_detectors_alert_blocks_a_marginal_score_but_not_an_unreported_session() -> None:
    gate, session = LearnFilter("rates", threshold=0.7), _session()
    session.alerts["secret_access"] = object()
    assert not gate.clean(session)
    assert not gate.learnable(0.6, session)
    assert gate.learnable(0.0, session)  # nothing reported: learned whatever the others said


def test_threshold_zero_makes_every_finding_anomalous() -> None:
    gate, session = LearnFilter("session_anomaly", threshold=0.0), _session()
    assert gate.classify(0.3) and not gate.learnable(0.3, session)
    assert gate.learnable(0.0, session)


def test_confirm_counting_learns_after_n_clean_sessions_and_forgets_the_count() -> None:
    gate = LearnFilter("novelty", confirm_at=0.5, confirm_sessions=3)
    counts: OrderedDict[str, int] = OrderedDict()
    assert [gate.confirmed(counts, "domain\tevil.example", 0.6, 10) for _ in range(3)] == [False, False, True]
    assert "domain\tevil.example" not in counts  # learned: no longer counted
    # Below confirm_at: one clean session is enough, and nothing is counted.
    assert gate.confirmed(counts, "tool\tcrm.get", 0.49, 10)
    assert counts == OrderedDict()
    # confirm_sessions of 1 (or less): no counting at all.
    assert LearnFilter("novelty", confirm_at=0.5, confirm_sessions=1).confirmed(counts, "k", 0.9, 10)
    assert counts == OrderedDict()


def test_confirm_counts_are_bounded_oldest_first() -> None:
    gate = LearnFilter("novelty", confirm_at=0.5, confirm_sessions=3)
    counts: OrderedDict[str, int] = OrderedDict()
    for i in range(5):
        assert not gate.confirmed(counts, f"k{i}", 0.7, 3)
    assert list(counts) == ["k2", "k3", "k4"]
    # A key whose count was dropped starts over.
    assert not gate.confirmed(counts, "k0", 0.7, 3)
    assert counts["k0"] == 1


def test_nan_scores_behave_as_the_detectors_did() -> None:
    """NaN is not ≥ any threshold: not anomalous; and not confirm-level (learned after one clean session)."""
    gate = LearnFilter("x", threshold=0.7, confirm_at=0.5, confirm_sessions=3)
    assert not gate.classify(math.nan)
    assert gate.confirmed(OrderedDict(), "k", math.nan, 3)


# -- its users ---------------------------------------------------------------------------------


def _loop_session(detector: Rates, sid: str, other_alert: str | None = None) -> float:
    """A 100-call polling loop on agent ``bot`` (fires ``loop`` at its ceiling, 0.9); return the score."""
    table, found = SessionTable(), []
    session = None
    for i in range(100):
        ev = from_mapping(
            {"event_id": f"{sid}-{i}", "ts": T0 + i * 2000, "session_id": sid, "agent_id": "bot",
             "kind": "tool_call", "tool": "kubectl", "target": "kubectl rollout status deploy/app"}
        )  # fmt: skip
        session = table.touch(ev)[0]
        found += detector.observe(ev, session)
    assert session is not None
    if other_alert:
        session.alerts[other_alert] = object()
    detector.close_session(session)
    return max(f.score for f in found)


def _rates_learned(detector: Rates) -> int:
    baseline = detector._agents.get("bot")
    return 0 if baseline is None else baseline.sessions


def test_rates_does_not_learn_a_session_at_or_above_learn_flagged_below() -> None:
    detector = Rates()
    assert _loop_session(detector, "s1") == 0.9
    assert _rates_learned(detector) == 0


def test_rates_learns_a_marginal_session_only_when_no_other_detector_alerted() -> None:
    detector = Rates(RatesConfig(learn_flagged_below=0.95))  # 0.9 is marginal here
    assert _loop_session(detector, "s1", other_alert="taint_flow") == 0.9
    assert _rates_learned(detector) == 0
    assert _loop_session(detector, "s2", other_alert="rates") == 0.9
    assert _rates_learned(detector) == 1


def _window(i: int, sid: str, wild: bool) -> dict[str, Any]:
    call: dict[str, Any] = {"tool": "Read", "target": f"src/f{i % 3}.py"}
    if wild:
        call = {"tool": f"tool{i}", "target": f"https://x{i}.example/", "bytes_out": 50_000_000, "tokens_in": 90_000}
    return {"event_id": f"{sid}-{i}", "ts": T0 + i * 1000, "session_id": sid, "agent_id": "bot",
            "kind": "tool_call", **call}  # fmt: skip


def test_session_anomaly_does_not_learn_a_window_that_scored() -> None:
    cfg = SessionAnomalyConfig(
        window_events=5, min_window_events=5, fleet_window_size=10, min_fleet_windows=10, min_scored=5,
        min_windows=1000, agent_window_size=25,
    )  # fmt: skip
    detector = SessionAnomaly(cfg)
    table = SessionTable()
    for s in range(40):
        for i in range(5):
            ev = from_mapping(_window(i, f"r{s}", wild=False))
            assert detector.observe(ev, table.touch(ev)[0]) == ()
    learned = detector.windows_learned
    fleet_learned = detector._fleet.learned
    assert learned == 40
    found = []
    for i in range(5):
        ev = from_mapping(_window(i, "wild", wild=True))
        found += detector.observe(ev, table.touch(ev)[0])
    assert found and found[0].score > 0
    assert (detector.windows_learned, detector._fleet.learned) == (learned, fleet_learned)
    for i in range(5):
        ev = from_mapping(_window(i, "r-after", wild=False))
        assert detector.observe(ev, table.touch(ev)[0]) == ()
    assert detector.windows_learned == learned + 1


def _novelty_session(detector: Novelty, sid: str, calls: list[dict[str, Any]], alert: str | None) -> list[float]:
    """One session of agent ``mailbot``; ``alert`` (a detector name) is put on it before it closes."""
    table, scores = SessionTable(), []
    session = None
    for i, call in enumerate(calls):
        ev = from_mapping({"session_id": sid, "agent_id": "mailbot", "principal": "ann@acme.example",
                           "event_id": f"{sid}-{i}", "ts": T0 + i * 1000, "kind": "tool_call", **call})  # fmt: skip
        session = table.touch(ev)[0]
        scores += [f.score for f in detector.observe(ev, session)]
    assert session is not None
    if alert:
        session.alerts[alert] = object()
    detector.close_session(session)
    return scores


def test_novelty_learns_a_reported_item_when_only_its_own_alert_is_on_the_session() -> None:
    mail = {"tool": "gmail.send", "target": "bob@acme.example", "args": {"to": ["bob@acme.example"]}}
    lookup = {"tool": "crm.get_contact", "args": {"id": "c-1"}}  # a new read-only tool: below alert level
    for other, reported_again in (("novelty", False), ("taint_flow", True)):
        detector = Novelty(NoveltyConfig(report_min_score=0.2))
        for n in range(3):
            _novelty_session(detector, f"w{n}", [mail] * 12, None)
        [score] = _novelty_session(detector, "first", [lookup], other)
        assert 0.2 <= score < 0.5
        assert bool(_novelty_session(detector, "second", [lookup], None)) is reported_again, other

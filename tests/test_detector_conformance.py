"""One conformance suite for every registered detector (river `checks/` style).

Each detector found through the ``agentwatch.detectors`` entry point group — built-in
or third-party — goes through the same checks: contract, typed config, fixture,
determinism, checkpoint round-trip, missing and unknown fields, hostile strings,
bounded session state, and a declared cost (``cost_us``, the figure ``bench/detector_cost.py``
measured on the reference machine; that bench, not this suite, compares costs with the budget).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable

import msgspec
import pytest

from agentwatch.detect.detector_fixtures import fixture_path, load_cases, run_fixture
from agentwatch.detect.detector_registry import discover_detectors
from agentwatch.detect.detector_spec import CATEGORIES, Detector, Finding, validate_detector_class
from agentwatch.detect.session_state import SessionTable
from agentwatch.events.audit_event import AuditEvent, from_mapping
from agentwatch.lab import simulator

DETECTORS = discover_detectors()
#: Replay budget: ≥ 30,000 events/s on one core = 33 µs per event, of which decoding,
#: session state and the loop take about 8 µs (bench/run_bench.py measures the real thing).
DETECTOR_BUDGET_US = 25.0

params = pytest.mark.parametrize("cls", list(DETECTORS.values()), ids=list(DETECTORS))


def fleet_events(seed: int = 5, sessions: int = 80) -> list[AuditEvent]:
    fleet = simulator.simulate(seed=seed, sessions=sessions, attack_ratio=0.3)
    return [from_mapping(e) for e in fleet.events]


EVENTS = fleet_events()


def drive(
    detector: Detector, events: Iterable[AuditEvent], table: SessionTable | None = None
) -> tuple[list[tuple[str, float, str, tuple[str, ...]]], SessionTable]:
    """Feed events as the pipeline does; return every finding (comparable) and the table."""
    table = table or SessionTable()
    found: list[tuple[str, float, str, tuple[str, ...]]] = []

    def keep(findings: Iterable[Finding] | None) -> None:
        for f in findings or ():
            assert isinstance(f, Finding)
            found.append((f.rule, round(f.score, 9), f.category, f.event_ids))

    for event in events:
        session, evicted = table.touch(event)
        for old in evicted:
            keep(detector.close_session(old))
        keep(detector.observe(event, session))
        if session.ended:
            table.pop(session.session_id)
            keep(detector.close_session(session))
    return found, table


def test_the_built_in_library_is_registered() -> None:
    assert {
        "secret_access",
        "destructive_ops",
        "privilege_changes",
        "supply_chain",
        "prompt_injection",
        "novelty",
        "taint_flow",
        "rates",
        "session_anomaly",
    } <= set(DETECTORS)


def test_the_cost_bench_measures_every_detector_against_its_declaration_and_the_budget() -> None:
    """Costs are measured in bench/, never asserted from a wall clock here: this checks that the
    measuring tool covers every registered detector and reports the budget verdict."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "bench" / "detector_cost.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--sessions", "3", "--json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    rows = {row["detector"]: row for row in report["detectors"]}
    assert set(rows) == set(DETECTORS)
    for name, row in rows.items():
        assert row["declared_us"] == DETECTORS[name].cost_us
        assert row["measured_us"] > 0
    assert report["total"]["budget_us"] == DETECTOR_BUDGET_US
    assert report["total"]["declared_us"] == pytest.approx(sum(cls.cost_us for cls in DETECTORS.values()))


@params
def test_contract(cls: type[Detector]) -> None:
    assert validate_detector_class(cls) == []
    assert cls.summary, "a one-line summary for `agentwatch detectors list`"
    assert cls.__doc__, "a docstring (with a runnable example) on the class"


@params
def test_config_is_typed_and_rejects_unknown_keys(cls: type[Detector]) -> None:
    cls(cls.config_type())
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"no_such_option": 1}, cls.config_type)
    with pytest.raises(TypeError):
        cls(object())  # type: ignore[arg-type]


@params
def test_fixture_has_positives_and_negatives_and_passes(cls: type[Detector]) -> None:
    cases = load_cases(fixture_path(cls))
    assert any(c.expect == "alert" for c in cases) and any(c.expect == "none" for c in cases)
    failed = [r for r in run_fixture(cls) if not r.passed]
    assert failed == []


@params
def test_findings_are_well_formed(cls: type[Detector]) -> None:
    found, _ = drive(cls(), EVENTS)
    ids = {e.event_id for e in EVENTS}
    for _rule, score, category, event_ids in found:
        assert 0.0 <= score <= 1.0
        assert category in CATEGORIES and category in cls.categories
        assert event_ids and set(event_ids) <= ids


@params
def test_deterministic(cls: type[Detector]) -> None:
    assert drive(cls(), EVENTS)[0] == drive(cls(), EVENTS)[0]


@params
def test_checkpoint_round_trip(cls: type[Detector]) -> None:
    half = len(EVENTS) // 2
    original = cls()
    _, table = drive(original, EVENTS[:half])
    restored = cls(original.config)
    restored.restore(original.checkpoint())
    table_copy = pickle.loads(pickle.dumps(table))
    assert drive(original, EVENTS[half:], table)[0] == drive(restored, EVENTS[half:], table_copy)[0]


MINIMAL_KINDS = [
    "tool_call",
    "tool_result",
    "model_call",
    "prompt",
    "permission",
    "session_start",
    "session_end",
    "memory_write",
    "message",
    "some_future_kind",
]
HOSTILE = [
    "<!channel> <!here> @everyone <https://evil.example|click here>",
    "{{ 7*7 }} {% for x in y %} ${jndi:ldap://x} \x1b[31mred\x1b[0m \u202eevil\u200b",
    "'); DROP TABLE students;-- <script>alert(1)</script>",
    "A" * 8192,
    "\U0001f4a9" * 1000,
]


@params
def test_missing_fields_unknown_tools_and_hostile_strings(cls: type[Detector]) -> None:
    detector = cls()
    events = []
    for i, kind in enumerate(MINIMAL_KINDS):
        events.append(
            from_mapping(
                {
                    "event_id": f"m{i}",
                    "ts": 1_767_225_600_000 + i,
                    "session_id": "min",
                    "agent_id": "bare",
                    "kind": kind,
                }
            )
        )
    for i, text in enumerate(HOSTILE):
        events.append(
            from_mapping(
                {
                    "event_id": f"h{i}",
                    "ts": 1_767_225_700_000 + i,
                    "session_id": "hostile",
                    "agent_id": text[:200],
                    "principal": text[:200],
                    "kind": ["tool_call", "tool_result", "message", "memory_write", "prompt"][i],
                    "tool": f"mcp__{text[:50]}",
                    "target": text,
                    "args": {"x": text, "nested": {"y": [text, 1, None]}},
                    "attributes": {"content": text},
                    "bytes_out": 10**12,
                    "tokens_in": 10**9,
                    "cost_usd": 1e9,
                }
            )
        )
    found, table = drive(detector, events)
    for old in table.drain():
        detector.close_session(old)
    for rule, *_ in found:
        assert isinstance(rule, str)


@params
def test_session_state_stays_small(cls: type[Detector]) -> None:
    """A long, busy session must not grow the detector's per-session scratch without bound."""
    detector = cls()
    table = SessionTable()
    session = None
    for i in range(3000):
        event = from_mapping(
            {
                "event_id": f"b{i}",
                "ts": 1_767_225_600_000 + i * 50,
                "session_id": "busy",
                "agent_id": "loop",
                "kind": "tool_call",
                "tool": f"tool{i % 40}",
                "target": f"https://host{i}.example/path/{i}",
                "bytes_out": 100,
            }
        )
        session, _ = table.touch(event)
        detector.observe(event, session)
    assert session is not None
    assert len(pickle.dumps(session.scratch)) <= 8192

"""Detector fixtures: events that ship with a detector, with the expected outcome.

A fixture sits beside the detector's module as ``<module>.fixture.jsonl``; each line
is one case — a short session, optionally preceded by warm-up sessions that give a
learning detector its baseline::

    {"case": "reads the AWS credentials file",
     "expect": "alert",                 # or "none"
     "severity_at_least": "high",       # optional
     "category": "secret_access",       # optional
     "on_event": "e3",                  # optional: the alert's triggering event
     "trigger_rules": ["rule-a"],       # optional: exactly the rules (Finding.rule) whose findings
                                        #   qualified under the policy; [] with "none": no rule at all
     "warmup": [[{...}, ...], ...],     # optional: earlier sessions, same agent
     "events": [{"kind": "tool_call", "tool": "Read", "target": "~/.aws/credentials"}]}

Events may leave out ``event_id`` (``e1``, ``e2``… in case order), ``ts`` (one second
apart), ``session_id``, ``agent_id`` and ``kind`` (``tool_call``); the runner fills them.
Each case runs through a fresh :class:`~agentwatch.detect.pipeline.Pipeline` holding only the
detector under test, with its default policy in ``alert`` mode — the same code path
``run`` uses.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, Literal

import msgspec

from agentwatch.detect.detector_registry import ActiveDetector
from agentwatch.detect.detector_spec import Detector
from agentwatch.detect.pipeline import Pipeline
from agentwatch.detect.policy import SEVERITY_RANK, DetectorPolicy
from agentwatch.detect.session_state import SessionTable
from agentwatch.events.audit_event import AuditEvent, from_mapping

FIXTURE_START_MS = 1_767_225_600_000


class FixtureCase(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    case: str
    expect: Literal["alert", "none"]
    events: list[dict[str, Any]]
    severity_at_least: str | None = None
    category: str | None = None
    on_event: str | None = None
    trigger_rules: list[str] | None = None
    warmup: list[list[dict[str, Any]]] = msgspec.field(default_factory=list)
    agent_id: str = "fixture-agent"


class CaseResult(msgspec.Struct, kw_only=True):
    detector: str
    case: str
    passed: bool
    detail: str


def fixture_path(cls: type[Detector]) -> Path:
    """Where ``cls``'s fixture lives: beside its module, ``<module>.fixture.jsonl``."""
    module = sys.modules.get(cls.__module__) or importlib.import_module(cls.__module__)
    source = Path(module.__file__ or "")
    return source.with_name(source.stem + ".fixture.jsonl")


def load_cases(path: Path) -> list[FixtureCase]:
    """Parse a fixture file; a malformed line is an error naming the line."""
    cases: list[FixtureCase] = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(msgspec.json.decode(line, type=FixtureCase))
        except msgspec.MsgspecError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return cases


def materialise(raw_events: list[dict[str, Any]], session_id: str, agent_id: str, start_ms: int) -> list[AuditEvent]:
    """Fill the defaults a fixture may leave out and validate each event."""
    events = []
    for index, raw in enumerate(raw_events, start=1):
        full = {
            "event_id": f"{session_id}:e{index}" if session_id.startswith("warmup") else f"e{index}",
            "ts": start_ms + index * 1000,
            "session_id": session_id,
            "agent_id": agent_id,
            "kind": "tool_call",
            **raw,
        }
        events.append(from_mapping(full))
    return events


def run_case(cls: type[Detector], case: FixtureCase, policy: DetectorPolicy | None = None) -> CaseResult:
    """Run one case through a fresh pipeline and compare with its expectation."""
    policy = policy or DetectorPolicy(mode="alert")
    detector = cls()
    fired: set[str] = set()
    if case.trigger_rules is not None:  # record which rules qualified, without changing what is decided
        observe, close = detector.observe, detector.close_session

        def keep(found: Any) -> Any:
            fired.update(f.rule for f in found or () if policy.qualifies(f.score))
            return found

        detector.observe = lambda event, session: keep(observe(event, session))  # type: ignore[method-assign]
        detector.close_session = lambda session: keep(close(session))  # type: ignore[method-assign]
    pipeline = Pipeline([ActiveDetector(detector, policy)], SessionTable())
    start = FIXTURE_START_MS
    for number, session in enumerate(case.warmup):
        for event in materialise(session, f"warmup-{number}", case.agent_id, start):
            pipeline.process(event)
        pipeline.drain()
        start += (len(session) + 10) * 1000
    alerts = []
    for event in materialise(case.events, "case", case.agent_id, start):
        alerts.extend(pipeline.process(event))
    alerts.extend(pipeline.drain())
    errors = sum(pipeline.plugin_errors.values())
    if errors:
        return CaseResult(detector=cls.name, case=case.case, passed=False, detail=f"detector raised {errors}x")
    if case.trigger_rules is not None and fired != set(case.trigger_rules):
        return CaseResult(
            detector=cls.name,
            case=case.case,
            passed=False,
            detail=f"rules fired {sorted(fired)}, expected {sorted(case.trigger_rules)}",
        )
    if case.expect == "none":
        if alerts:
            first = alerts[0]
            return CaseResult(
                detector=cls.name,
                case=case.case,
                passed=False,
                detail=f"unexpected {first.severity} alert on {first.event_id}: {first.summary}",
            )
        return CaseResult(detector=cls.name, case=case.case, passed=True, detail="no alert, as expected")
    if not alerts:
        return CaseResult(detector=cls.name, case=case.case, passed=False, detail="expected an alert, got none")
    first, last = alerts[0], alerts[-1]
    problems = []
    if case.on_event and first.event_id != case.on_event:
        problems.append(f"alert on {first.event_id}, expected on {case.on_event}")
    if case.category and last.category != case.category:
        problems.append(f"category {last.category}, expected {case.category}")
    if case.severity_at_least and SEVERITY_RANK[last.severity] < SEVERITY_RANK[case.severity_at_least]:
        problems.append(f"severity {last.severity}, expected ≥ {case.severity_at_least}")
    if problems:
        return CaseResult(detector=cls.name, case=case.case, passed=False, detail="; ".join(problems))
    return CaseResult(
        detector=cls.name, case=case.case, passed=True, detail=f"{last.severity} alert on {first.event_id}"
    )


def run_fixture(cls: type[Detector]) -> list[CaseResult]:
    """Every case of ``cls``'s fixture; a detector without one fails loudly."""
    path = fixture_path(cls)
    if not path.exists():
        return [CaseResult(detector=cls.name, case="(fixture)", passed=False, detail=f"no fixture at {path}")]
    return [run_case(cls, case) for case in load_cases(path)]

"""Detector cost, measured: µs per ``observe`` against each detector's declared ``cost_us``.

    python bench/detector_cost.py [--sessions 300] [--json]

1. typical — every registered detector drives the same simulated fleet (the way the
   pipeline does: session table, evictions, ``close_session``, ``observe`` only for the
   kinds the detector declares); reported as measured
   µs/event beside the declared ``cost_us``, and the sum against the detectors' share of
   the replay budget (25 µs of the 33 µs an event may take at 30,000 events/s);
2. pathological — 8,000-character hostile strings (repetitions a regex could backtrack on)
   as a Bash command and as a tool result; the slowest single ``observe`` per detector,
   budget ≤ 50 ms.

Wall-clock numbers belong here, not in the unit tests: under coverage or on a loaded
machine a timed assertion fails for reasons that are not the code's.
"""

from __future__ import annotations

import argparse
import json
import time

from rich.console import Console
from rich.table import Table

from agentwatch.detect.detector_registry import discover_detectors
from agentwatch.detect.detector_spec import reads_kind
from agentwatch.detect.session_state import SessionTable
from agentwatch.events.audit_event import from_mapping
from agentwatch.lab import simulator

DETECTOR_BUDGET_US = 25.0
PATHOLOGICAL_BUDGET_S = 0.05
UNITS = (
    "A",
    "lorem ipsum dolor sit amet ",
    "=-",
    "\u00e9\u00e8\u00ea ",
    "rm -rf ",
    "pip install a ",
    "<!-- ",
    "@x.io ",
)


def typical_us(cls, events) -> float:  # type: ignore[no-untyped-def]
    detector, table = cls(), SessionTable()
    kinds = detector.kinds
    started = time.perf_counter()
    for event in events:
        session, evicted = table.touch(event)
        for old in evicted:
            detector.close_session(old)
        if reads_kind(kinds, event.kind):  # the pipeline calls observe only with the kinds it declares
            detector.observe(event, session)
        if session.ended:
            detector.close_session(table.pop(session.session_id) or session)
    return (time.perf_counter() - started) / len(events) * 1e6


def worst_pathological_s(cls) -> float:  # type: ignore[no-untyped-def]
    detector, table, worst = cls(), SessionTable(), 0.0
    for n, unit in enumerate(UNITS):
        text = (unit * (8000 // len(unit) + 1))[:8000]
        for i, raw in enumerate(
            (
                {"tool": "Bash", "target": text, "args": {"command": text}},
                {"kind": "tool_result", "tool": "Bash", "attributes": {"content": text}},
            )
        ):
            event = from_mapping(
                {
                    "event_id": f"p{n}-{i}",
                    "ts": 1_767_225_600_000 + n * 10 + i,
                    "session_id": "p",
                    "agent_id": "a",
                    "kind": "tool_call",
                    **raw,
                }
            )
            session = table.touch(event)[0]
            started = time.perf_counter()
            detector.observe(event, session)
            worst = max(worst, time.perf_counter() - started)
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    fleet = simulator.simulate(seed=5, sessions=args.sessions, attack_ratio=0.3)
    events = [from_mapping(e) for e in fleet.events]
    rows = []
    for name, cls in discover_detectors().items():
        rows.append(
            {
                "detector": name,
                "declared_us": cls.cost_us,
                "measured_us": round(typical_us(cls, events), 2),
                "worst_pathological_ms": round(worst_pathological_s(cls) * 1e3, 2),
            }
        )
    total = {
        "declared_us": sum(r["declared_us"] for r in rows),
        "measured_us": sum(r["measured_us"] for r in rows),
        "budget_us": DETECTOR_BUDGET_US,
    }
    if args.json:
        print(json.dumps({"events": len(events), "detectors": rows, "total": total}))
        return
    table = Table(title=f"detector cost over {len(events):,} simulated events")
    worst = f"worst pathological ms (≤ {PATHOLOGICAL_BUDGET_S * 1e3:g})"
    for column in ("detector", "declared µs", "measured µs", worst):
        table.add_column(column)
    for r in rows:
        slow = r["worst_pathological_ms"] > PATHOLOGICAL_BUDGET_S * 1e3
        table.add_row(
            r["detector"],
            f"{r['declared_us']:g}",
            f"{r['measured_us']:g}",
            f"[red]{r['worst_pathological_ms']:g}[/red]" if slow else f"{r['worst_pathological_ms']:g}",
        )
    table.add_row(
        "total", f"{total['declared_us']:g}", f"{total['measured_us']:g}", f"budget {DETECTOR_BUDGET_US:g} µs"
    )
    Console().print(table)


if __name__ == "__main__":
    main()

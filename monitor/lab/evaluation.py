"""Detection quality against labelled sessions: recall, false positives, time to detect.

Coverage and dwell time are the two numbers that matter; this is how they are
measured on a labelled fleet (the simulator writes labels beside its events). An
attack session counts as detected when it holds an alert at ``min_severity`` or
above; time-to-detect runs from the first malicious event to the event that raised
that alert, counted in the session's events and in seconds of event time.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import msgspec

from agentwatch.detect.policy import SEVERITY_RANK
from agentwatch.events.audit_event import to_epoch_ms


class CategoryScore(msgspec.Struct, kw_only=True):
    category: str
    sessions: int
    detected: int
    recall: float
    within_two_events: int
    ttd_events_median: float | None
    ttd_events_max: int | None
    ttd_seconds_median: float | None


class EvalReport(msgspec.Struct, kw_only=True):
    min_severity: str
    categories: list[CategoryScore]
    overall: CategoryScore
    benign_sessions: int
    benign_flagged: int
    false_positive_rate: float
    false_positive_sessions: list[str]
    missed_sessions: list[str]
    detectors_on_benign: dict[str, int]


def evaluate(
    events: Iterable[dict[str, Any]],
    labels: Iterable[dict[str, Any]],
    alerts: Iterable[dict[str, Any]],
    min_severity: str = "medium",
) -> EvalReport:
    """Score ``alerts`` (alert dicts, any revisions) against ``labels`` (simulator format)."""
    floor = SEVERITY_RANK[min_severity]
    position: dict[str, tuple[int, int]] = {}
    counters: dict[str, int] = defaultdict(int)
    for event in events:
        sid = event["session_id"]
        position[event["event_id"]] = (counters[sid], _ts_ms(event["ts"]))
        counters[sid] += 1
    first_hit: dict[str, tuple[int, int]] = {}
    detectors_by_session: dict[str, set[str]] = defaultdict(set)
    for alert in alerts:
        if SEVERITY_RANK[alert["severity"]] < floor:
            continue
        sid = alert["session_id"]
        detectors_by_session[sid].add(alert["detector"])
        where = position.get(alert["event_id"])
        if where is not None and (sid not in first_hit or where[0] < first_hit[sid][0]):
            first_hit[sid] = where
    per_category: dict[str, list[tuple[bool, int | None, float | None]]] = defaultdict(list)
    benign = flagged = 0
    fp_sessions: list[str] = []
    missed: list[str] = []
    on_benign: dict[str, int] = defaultdict(int)
    for label in labels:
        sid = label["session_id"]
        if label["label"] != "attack":
            benign += 1
            if sid in detectors_by_session:
                flagged += 1
                fp_sessions.append(sid)
                for name in detectors_by_session[sid]:
                    on_benign[name] += 1
            continue
        hit = first_hit.get(sid)
        start = position.get(label.get("first_malicious_event_id") or "")
        if hit is None or start is None:
            per_category[label["category"]].append((sid in detectors_by_session, None, None))
            if sid not in detectors_by_session:
                missed.append(sid)
            continue
        per_category[label["category"]].append((True, hit[0] - start[0], (hit[1] - start[1]) / 1000))
    scores = [_score(name, rows) for name, rows in sorted(per_category.items())]
    overall = _score("overall", [row for rows in per_category.values() for row in rows])
    return EvalReport(
        min_severity=min_severity,
        categories=scores,
        overall=overall,
        benign_sessions=benign,
        benign_flagged=flagged,
        false_positive_rate=flagged / benign if benign else 0.0,
        false_positive_sessions=fp_sessions,
        missed_sessions=missed,
        detectors_on_benign=dict(sorted(on_benign.items())),
    )


def _score(category: str, rows: list[tuple[bool, int | None, float | None]]) -> CategoryScore:
    detected = [r for r in rows if r[0]]
    ttd_events = [r[1] for r in detected if r[1] is not None]
    ttd_seconds = [r[2] for r in detected if r[2] is not None]
    return CategoryScore(
        category=category,
        sessions=len(rows),
        detected=len(detected),
        recall=len(detected) / len(rows) if rows else 0.0,
        within_two_events=sum(1 for t in ttd_events if t <= 2),
        ttd_events_median=statistics.median(ttd_events) if ttd_events else None,
        ttd_events_max=max(ttd_events) if ttd_events else None,
        ttd_seconds_median=round(statistics.median(ttd_seconds), 3) if ttd_seconds else None,
    )


def _ts_ms(ts: Any) -> int:
    if isinstance(ts, int):
        return ts
    return to_epoch_ms(dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00")))

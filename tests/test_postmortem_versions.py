"""Postmortems (issue 15): one clock (agentwatch's), no "+28,817,811 s" spans when the agent's
clock is months off, a new version — never an overwrite — when severity rises or a second
playbook drafts, and timeline labels that do not overlap."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import msgspec
import pytest

from agentwatch.detect.alerts import Alert
from agentwatch.events.audit_event import from_mapping, rfc3339_ms
from agentwatch.respond.incident_record import example_incident
from agentwatch.respond.playbook_engine import load_playbooks
from agentwatch.respond.postmortem import LABEL_CHAR_PX, postmortem_versions, render_timeline_svg
from agentwatch.respond.responder import Responder
from agentwatch.store import open_store
from tests.test_store import alert

AGENT_T0 = 1_767_225_600_000  # the agent's clock: 2026-01-01
WALL_T0 = 1_796_042_000_000  # agentwatch's: about 333 days (28.8 million seconds) later


class WallClock:
    def __init__(self) -> None:
        self.now = WALL_T0 + 5_000

    def __call__(self) -> int:
        self.now += 7
        return self.now


def events(session: str = "s1") -> list:  # type: ignore[type-arg]
    rows = [("session_start", None, None), ("tool_call", "Read", "/home/dev/.ssh/id_rsa")]
    return [
        from_mapping(
            {
                "event_id": f"{session}:e{i}",
                "ts": AGENT_T0 + i * 1000,
                "session_id": session,
                "agent_id": "coder-1",
                "kind": kind,
                "tool": tool,
                "target": target,
            }
        )
        for i, (kind, tool, target) in enumerate(rows)
    ]


def raised(severity: str, revision: int, mode: str = "enforce") -> Alert:
    return msgspec.structs.replace(
        alert(severity=severity, revision=revision, ts=AGENT_T0 + 1000),
        mode=mode,
        event_id="s1:e1",
        event_ids=["s1:e1"],
        observed_ms=WALL_T0 + 1000,  # the raising event's arrival, as the monitor stamps it
    )


@pytest.fixture
def responder(tmp_path: Path) -> Responder:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    return Responder(engine, load_playbooks(), tmp_path / "data", "agent.control", clock=WallClock())


def drafts(responder: Responder) -> list[Path]:
    found = list((responder.data_dir / "postmortems").glob("*/postmortem.md"))
    assert len(found) == 1
    return postmortem_versions(found[0].parent)


def run(responder: Responder, severity: str, revision: int, mode: str = "enforce") -> None:
    prepared = responder.prepare(events(), [raised(severity, revision, mode)], [WALL_T0, WALL_T0 + 1000])
    responder.confirm(prepared)
    responder.run_pending()


def test_one_clock_no_month_long_span_and_the_agent_time_beside_each_event(responder: Responder) -> None:
    run(responder, "high", 1)
    [draft] = drafts(responder)
    text = draft.read_text()
    times = re.findall(r"^\| (\d{4}-\d\d-\d\dT[\d:.]+Z) \|", text, re.M)
    assert times and all(t.startswith(rfc3339_ms(WALL_T0)[:13]) for t in times), times  # all within the hour
    assert f"[agent clock {rfc3339_ms(AGENT_T0 + 1000)}]" in text.replace("\\", "")
    assert "**Clock:** all times are agentwatch's (UTC)" in text
    assert "The agent's clock runs 28,816,400.000 s behind agentwatch's" in text
    svg = (draft.parent / "timeline.v1.svg").read_text()
    span = float(re.search(r"\(\+([\d.]+) s\)", svg).group(1))  # type: ignore[union-attr]
    assert span < 60, span
    summary = text.split("## Summary", 1)[1].split("##", 1)[0]
    assert "2026-01-01" not in summary  # the summary and the timeline tell one time


def test_a_severity_rise_drafts_a_new_version_and_keeps_the_first(responder: Responder) -> None:
    run(responder, "high", 1)
    [first] = drafts(responder)
    before = first.read_bytes()
    run(responder, "critical", 2)
    versions = drafts(responder)
    assert [p.name for p in versions] == ["postmortem.v1.md", "postmortem.v2.md"]
    assert versions[0].read_bytes() == before and "severity high" in before.decode()
    second = versions[1].read_text()
    assert "severity critical" in second and "supersedes postmortem.v1.md" in second
    assert (versions[0].parent / "postmortem.md").read_text().count("severity critical") >= 1
    run(responder, "critical", 2)  # the same alert again: nothing new
    assert len(drafts(responder)) == 2


def test_a_second_playbook_adds_a_version_instead_of_overwriting(responder: Responder) -> None:
    run(responder, "medium", 1, mode="alert")  # record_incident drafts
    [first] = drafts(responder)
    before = first.read_bytes()
    run(responder, "high", 2)  # contain_session terminates and drafts again
    versions = drafts(responder)
    assert len(versions) >= 2 and versions[0].read_bytes() == before
    assert "**Status:** contained" in versions[-1].read_text()


def test_alert_labels_in_the_timeline_do_not_overlap() -> None:
    base = example_incident()
    template = base.alerts[0]
    detectors = ["secret_access", "session_anomaly", "taint_flow", "effect_rules", "rates", "novelty", "provenance"]
    crowded = [
        msgspec.structs.replace(template, detector=name, alert_id=f"al-{i}", first_ts_ms=template.first_ts_ms + i)
        for i, name in enumerate(detectors)
    ]
    svg = render_timeline_svg(msgspec.structs.replace(base, alerts=crowded))
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t for t in ET.fromstring(svg).iter(f"{ns}text") if t.get("fill") == "#d62728"]
    assert len(labels) >= 3  # several lanes used
    boxes = []
    for label in labels:
        half = len(label.text or "") * LABEL_CHAR_PX / 2
        x, y = float(label.get("x")), float(label.get("y"))  # type: ignore[arg-type]
        boxes.append((x - half, x + half, y - 11, y))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2], (a, b)
    assert all(0 <= box[0] and box[1] <= 960 for box in boxes)

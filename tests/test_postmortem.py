"""Postmortem drafts: content, ordering, TTD/TTC, inert hostile text, sandbox, SVG, idempotence."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jinja2
import msgspec
import pytest
from jinja2.sandbox import SecurityError

from agentwatch.detect.alerts import Alert
from agentwatch.events.audit_event import AuditEvent, rfc3339_ms
from agentwatch.respond.evidence import write_bundle
from agentwatch.respond.incident_record import ActionRecord, IncidentRecord, TimelineEntry, example_incident
from agentwatch.respond.postmortem import (
    MAX_TIMELINE_EVENTS,
    blast_radius,
    make_environment,
    render_postmortem,
    render_timeline_svg,
    timeline_frame,
    write_postmortem,
)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<!channel> {{ 7*7 }} {% raw %} a|b `rm -rf` <script>alert(1)</script> [x](javascript:alert(1))"
SECTIONS = [
    "## Summary",
    "## Impact and blast radius",
    "## Timeline",
    "## Detections",
    "## Actions taken",
    "## Time to detect and contain",
    "## Evidence",
    "## Open questions for humans",
]
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def table_rows(text: str, title: str) -> list[list[str]]:
    lines = [line for line in section(text, title).splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in UNESCAPED_PIPE.split(line)[1:-1]] for line in lines[2:]]


def hostile_incident() -> IncidentRecord:
    base = example_incident()
    t = base.events[-1].ts_ms
    event = AuditEvent(
        event_id="e5",
        ts_ms=t + 500,
        session_id=base.session_id,
        agent_id=base.agent_id,
        kind="tool_call",
        tool="Bash|`",
        target=HOSTILE + "\n| forged | row | here |",
        principal="mallory<@U123>",
        args={"to": "exfil@evil.example", "body": HOSTILE},
    )
    alert = msgspec.structs.replace(base.alerts[0], reasons=[*base.alerts[0].reasons, HOSTILE], detector="det|`x`")
    action = ActionRecord(
        action_key="k",
        step="notify",
        action="slack_post",
        status="failed",
        actor="agentwatch",
        started_ms=t + 600,
        finished_ms=t + 700,
        result={"echo": HOSTILE},
        error=HOSTILE,
    )
    note = TimelineEntry(ts_ms=t + 800, kind="note", actor="human:eve", text=HOSTILE)
    return msgspec.structs.replace(
        base,
        events=[*base.events, event],
        alerts=[alert],
        actions=[*base.actions, action],
        timeline=[*base.timeline, note],
    )


def test_sections_title_and_svg_embed() -> None:
    text = render_postmortem(example_incident(), None)
    assert text.startswith("# Postmortem (draft): coder-7, session sess-42, severity high\n")
    assert "**Status:** contained" in text
    positions = [text.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    assert "![timeline](timeline.svg)" in text
    assert text.count("- [ ] ") == 5 and text.count("Owner: ________") == 5
    for topic in (
        "Root cause",
        "Disclosure obligations",
        "Customer communication",
        "Credential rotation",
        "Containment beyond the session",
    ):
        assert f"- [ ] **{topic}:**" in text
    assert "No evidence bundle was collected." in text


def test_summary_paragraph_is_one_generated_paragraph() -> None:
    summary = section(render_postmortem(example_incident(), None), "Summary").strip()
    assert "\n" not in summary
    assert "Agent coder-7" in summary and "1 alert (secret\\_access)" in summary
    assert "time to detect: 4.000 s" in summary and "time to contain: 9.000 s" in summary


def test_impact_and_blast_radius() -> None:
    incident = hostile_incident()
    radius = blast_radius(incident.events, incident)
    assert "/srv/app/.env" in radius["resources"]
    assert radius["domains"] == ["paste.example.net"]
    assert radius["recipients"] == ["exfil@evil.example"]
    assert radius["principals"] == ["ana@example.com", "mallory<@U123>"]
    assert "WebFetch ×1" in radius["tools"]
    text = section(render_postmortem(incident, None), "Impact and blast radius")
    assert "- exfil@evil.example" in text and "- paste.example.net" in text
    assert "mallory&lt;@U123&gt;" in text


def test_timeline_rows_are_in_time_order() -> None:
    base = example_incident()
    t0 = base.events[0].ts_ms
    # records delivered out of order: a late note first, an early action, an alert between events
    shuffled = msgspec.structs.replace(
        base,
        timeline=[
            TimelineEntry(ts_ms=t0 + 20_000, kind="note", actor="human:bob", text="late"),
            *base.timeline,
        ],
        actions=[
            *base.actions,
            ActionRecord(
                action_key="early",
                step="s",
                action="snapshot",
                status="done",
                actor="agentwatch",
                started_ms=t0 + 1,
                finished_ms=None,
            ),
        ],
    )
    rows = table_rows(render_postmortem(shuffled, None), "Timeline")
    times = [row[0] for row in rows]
    assert times == sorted(times)
    assert all(len(row) == 3 for row in rows)
    assert rows[1][2] == "s: snapshot started"
    assert rows[-1][2] == "late"
    frame = timeline_frame(shuffled)
    assert frame["ts_ms"].is_monotonic_increasing
    assert frame["time"].tolist() == [rfc3339_ms(ts) for ts in frame["ts_ms"]]
    assert len(rows) == len(frame)


def test_time_to_detect_and_contain() -> None:
    text = render_postmortem(example_incident(), None)
    assert "- **Time to detect:** 4.000 s" in text
    assert "- **Time to contain:** 9.000 s" in text
    t = example_incident().events[0].ts_ms
    odd = msgspec.structs.replace(
        example_incident(),
        first_malicious_ts_ms=t + 1_250,
        first_alert_ts_ms=t + 3_000,
        contained_ms=t + 61_251,
    )
    text = render_postmortem(odd, None)
    assert "- **Time to detect:** 1.750 s" in text and "- **Time to contain:** 60.001 s" in text


def test_not_yet_contained_and_unknown() -> None:
    open_incident = msgspec.structs.replace(example_incident(), status="open", contained_ms=None)
    text = render_postmortem(open_incident, None)
    assert "- **Time to contain:** not yet contained" in text
    assert "The session is not yet contained." in text
    unknown = msgspec.structs.replace(open_incident, first_malicious_ts_ms=None)
    assert "- **Time to detect:** unknown" in render_postmortem(unknown, None)


def test_detections_and_actions_tables() -> None:
    text = render_postmortem(example_incident(), None)
    detections = table_rows(text, "Detections")
    assert detections == [
        [
            "secret\\_access",
            "credential\\_access",
            "high",
            "0.93",
            "enforce",
            "2026-01-01T00:00:06.000Z",
            'read of credential file "/srv/app/.env"; upload to "paste.example.net" after secret read',
        ]
    ]
    actions = table_rows(text, "Actions taken")
    assert [row[:4] for row in actions] == [
        ["contain", "terminate\\_session", "done", "agentwatch"],
        ["collect", "collect\\_evidence", "running", "agentwatch"],
    ]
    assert actions[0][4:] == ["2026-01-01T00:00:10.000Z", "2026-01-01T00:00:11.000Z", '{"terminated":true}']
    assert actions[1][5] == "—"


@pytest.mark.parametrize("needle", ["<!channel>", "<script>", "](javascript:", "`rm -rf`", "[x]", "\n| forged"])
def test_hostile_strings_are_inert(needle: str) -> None:
    text = render_postmortem(hostile_incident(), None)
    assert needle not in text


def test_hostile_table_cells_stay_in_their_columns() -> None:
    text = render_postmortem(hostile_incident(), None)
    for title, width in (("Timeline", 3), ("Detections", 7), ("Actions taken", 7)):
        rows = table_rows(text, title)
        assert rows and all(len(row) == width for row in rows), title
    assert not any(line.lstrip().startswith("| forged") for line in text.splitlines())


def test_template_syntax_in_data_is_printed_not_run() -> None:
    text = render_postmortem(hostile_incident(), None)
    assert "{{ 7\\*7 }}" in text and "{% raw %}" in text
    assert "49" not in "".join(line for line in text.splitlines() if "7\\*7" in line)


def test_secrets_are_redacted_in_the_postmortem() -> None:
    token = "gh" + "p_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt" * 2
    incident = hostile_incident()
    incident.events[-1].target = f"git push https://{token}@github.com/o/r"
    text = render_postmortem(incident, None)
    assert token not in text and "wJalrXUtnFEMI" not in text
    assert "REDACTED:github\\_token" in text


def test_sandbox_blocks_attribute_escapes_and_undefined_is_strict() -> None:
    env = make_environment()
    with pytest.raises(SecurityError):
        env.from_string("{{ x.__class__.__mro__ }}").render(x="")
    with pytest.raises(SecurityError):
        env.from_string("{{ x.__class__.__mro__[1].__subclasses__() }}").render(x=example_incident())
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ not_passed }}").render()


def test_custom_template_dir_is_sandboxed_too(tmp_path: Path) -> None:
    (tmp_path / "postmortem.md.j2").write_text("{{ incident.incident_id|md }} {{ incident.__class__.__init__ }}")
    with pytest.raises(SecurityError):
        render_postmortem(example_incident(), None, template_dir=tmp_path)
    (tmp_path / "postmortem.md.j2").write_text("id={{ incident.incident_id|md }}\n")
    assert render_postmortem(example_incident(), None, template_dir=tmp_path) == "id=inc-sess-42\n"


def test_svg_is_well_formed_with_the_right_marks() -> None:
    incident = hostile_incident()
    incident.events[-1].target = "\x00\x1b]]><![CDATA[ & \ud800 " + HOSTILE
    svg = render_timeline_svg(incident)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    diamonds = [p for p in root.iter(f"{SVG}polygon") if p.get("fill") == "#d62728"]
    squares = [r for r in root.iter(f"{SVG}rect") if r.get("fill") == "#1f77b4"]
    green = [line for line in root.iter(f"{SVG}line") if line.get("stroke") == "#2ca02c"]
    assert len(diamonds) == 1 + len(incident.alerts)  # legend + one per alert
    assert len(squares) == 1 + 5  # legend + started/finished marks of three actions (one unfinished)
    assert len(green) == 2  # legend + containment
    assert "<script>" not in svg and "<!channel>" not in svg
    titles = [t.text or "" for t in root.iter(f"{SVG}title")]
    assert any("<script>" in t for t in titles)  # shown as text, escaped in the markup
    not_contained = msgspec.structs.replace(incident, contained_ms=None)
    root = ET.fromstring(render_timeline_svg(not_contained))
    assert len([line for line in root.iter(f"{SVG}line") if line.get("stroke") == "#2ca02c"]) == 1


def test_svg_single_instant_does_not_divide_by_zero() -> None:
    base = example_incident()
    t = base.opened_ms
    one = msgspec.structs.replace(
        base,
        events=[msgspec.structs.replace(base.events[0], ts_ms=t)],
        alerts=[],
        actions=[],
        contained_ms=None,
    )
    ET.fromstring(render_timeline_svg(one))


def test_write_postmortem_is_idempotent_and_quotes_evidence(tmp_path: Path) -> None:
    bundle = write_bundle(example_incident(), tmp_path / "evidence")
    out = write_postmortem(example_incident(), tmp_path / "pm", bundle.path)
    assert out == tmp_path / "pm" / "inc-sess-42" / "postmortem.md"
    svg = out.parent / "timeline.svg"
    first = (out.read_bytes(), svg.read_bytes(), out.stat().st_mtime_ns, svg.stat().st_mtime_ns)
    assert write_postmortem(example_incident(), tmp_path / "pm", bundle.path) == out
    assert (out.read_bytes(), svg.read_bytes(), out.stat().st_mtime_ns, svg.stat().st_mtime_ns) == first
    text = out.read_text()
    assert f"**Manifest digest (SHA-256 of manifest.json):** {bundle.digest}" in text
    assert "**Verification:** ok" in text
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "postmortem.md",
        "postmortem.v1.md",
        "timeline.svg",
        "timeline.v1.svg",
    ]
    # a moved incident gets a new version; the first is kept
    resolved = msgspec.structs.replace(example_incident(), status="resolved", resolved_ms=example_incident().opened_ms)
    write_postmortem(resolved, tmp_path / "pm", bundle.path)
    assert "**Status:** resolved" in out.read_text()
    assert "**Status:** contained" in (out.parent / "postmortem.v1.md").read_text()
    assert "**Status:** resolved" in (out.parent / "postmortem.v2.md").read_text()


def test_tampered_evidence_is_reported(tmp_path: Path) -> None:
    bundle = write_bundle(example_incident(), tmp_path)
    (bundle.path / "events.jsonl").write_text("{}\n")
    text = render_postmortem(example_incident(), bundle.path)
    assert "**Verification:** FAILED: events.jsonl: digest mismatch" in text


def test_long_journal_is_capped_keeping_supporting_events() -> None:
    base = example_incident()
    t = base.events[0].ts_ms
    filler = [
        AuditEvent(
            event_id=f"f{i}",
            ts_ms=t - 1_000_000 + i,
            session_id=base.session_id,
            agent_id=base.agent_id,
            kind="tool_call",
            tool="Bash",
            target=f"echo {i}",
        )
        for i in range(MAX_TIMELINE_EVENTS + 50)
    ]
    big = msgspec.structs.replace(base, events=[*filler, *base.events])
    frame = timeline_frame(big)
    assert frame.attrs["omitted_events"] == len(big.events) - MAX_TIMELINE_EVENTS
    assert frame["what"].str.contains("supports an alert").sum() == 2
    text = render_postmortem(big, None)
    assert f"{frame.attrs['omitted_events']} further events are not shown" in text


def test_alert_fields_are_used() -> None:
    alert: Alert = example_incident().alerts[0]
    text = render_postmortem(example_incident(), None)
    assert f"high secret\\_access \\(score {alert.score:.2f}\\)" in text

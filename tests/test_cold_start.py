"""Novelty's cold start (issue 12): a new agent is not a blind spot, and the table is silent once it has a baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwatch.config import load_config
from agentwatch.detect.detector_registry import active_detectors
from agentwatch.detect.session_state import SessionState, SessionTable
from agentwatch.detectors.cold_start import DEFAULT_COLD_START_SCORES
from agentwatch.detectors.novelty import Novelty, NoveltyConfig
from agentwatch.errors import ConfigError
from agentwatch.events.audit_event import from_mapping
from agentwatch.observe.metrics import COLD_START_FINDINGS

T0 = 1_767_225_600_000
PRINCIPAL = "ann@acme.example"
ROUTINE = [{"tool": "gmail.send", "target": "bob@acme.example", "args": {"to": ["bob@acme.example"]}}] * 12
GRANT = {
    "tool": "drive.share_file",
    "args": {"file_id": "q3-plan", "grantee": "dana.k.1987@gmail.com", "role": "writer"},
}


def run_session(detector: Novelty, sid: str, calls: list[dict], *, other_alert: bool = False) -> list:
    """One session of agent ``helper`` through ``detector`` (closed at the end); its findings."""
    table = SessionTable()
    found: list = []
    session: SessionState | None = None
    for i, call in enumerate(calls):
        raw = {"event_id": f"{sid}-{i}", "ts": T0 + i * 1000, "session_id": sid, "agent_id": "helper"}
        event = from_mapping(raw | {"kind": "tool_call", "principal": PRINCIPAL} | call)
        session = table.touch(event)[0]
        found += detector.observe(event, session)
    assert session is not None
    if other_alert:
        session.alerts["provenance"] = object()
    detector.close_session(session)
    return found


def cold_findings(found: list) -> list:
    return [f for f in found if (f.rule or "").startswith("cold-start-")]


def test_a_cold_agent_granting_access_to_a_gmail_address_is_reported() -> None:
    detector = Novelty()
    assert detector.baseline_status() == {}
    before = COLD_START_FINDINGS.labels("novelty", "access_change")._value.get()
    [finding] = cold_findings(run_session(detector, "s1", [GRANT]))
    assert finding.rule == "cold-start-access-change"
    assert finding.score == DEFAULT_COLD_START_SCORES["access_change"]["consumer"] >= 0.5
    assert finding.reason.startswith("cold start: no baseline for this agent yet (0 of 3 sessions, 0 of 30 events)")
    assert '"dana.k.1987@gmail.com"' in finding.reason and "access-change" in finding.reason
    assert finding.category == "anomaly" and finding.event_ids == ("s1-0",)
    assert COLD_START_FINDINGS.labels("novelty", "access_change")._value.get() == before + 1
    assert detector.baseline_status() == {"helper": False}


def test_after_a_baseline_the_cold_start_table_is_silent_and_novelty_judges_the_grant() -> None:
    detector = Novelty()
    for n in range(3):
        assert cold_findings(run_session(detector, f"w{n}", ROUTINE)) == []  # internal mail: nothing cold
    assert detector.baseline_status() == {"helper": True}
    found = run_session(detector, "after", [GRANT])
    assert cold_findings(found) == []
    assert [f.rule for f in found] == ["tier"] and found[0].score >= 0.75  # the learned score, once


def test_the_table_does_not_fire_on_internal_or_unnamed_parties_and_context_lowers_it() -> None:
    detector = Novelty()
    colleague = GRANT | {"args": {"file_id": "q3-plan", "grantee": "bob@acme.example", "role": "writer"}}
    assert cold_findings(run_session(detector, "c1", [colleague])) == []
    assert cold_findings(run_session(detector, "c2", [{"tool": "crm.update_contact", "args": {"id": "c-9"}}])) == []
    # a message to a consumer address: low (0.45), reported below the default min_score
    [low] = cold_findings(
        run_session(detector, "c3", [{"tool": "gmail.send", "args": {"to": ["lee.w@outlook.com"], "body": "hi"}}])
    )
    assert low.rule == "cold-start-external-comm" and low.score == 0.45
    # a payment to an IBAN in any argument: medium; the same IBAN given in the user's prompt: halved
    pay = {"tool": "bank.transfer_funds", "args": {"creditor_iban": "DE89 3704 0044 0532 0130 00", "amount": 90}}
    [paid] = cold_findings(run_session(detector, "c4", [pay]))
    assert paid.rule == "cold-start-financial" and paid.score == 0.55
    asked = {"kind": "prompt", "attributes": {"content": "pay invoice 7 to DE89370400440532013000 please"}}
    [halved] = cold_findings(run_session(detector, "c5", [asked, pay]))
    assert halved.score == 0.275 and "named in this session's context" in halved.reason


def test_reasons_quote_agent_text_and_stay_bounded() -> None:
    detector = Novelty()
    payee = ('Evil "Corp"\n' * 12)[:120]
    [finding] = cold_findings(
        run_session(detector, "h", [{"tool": "payments.send_payment", "args": {"payee": payee, "amount": 5}}])
    )
    assert finding.rule == "cold-start-financial" and finding.score == 0.55
    assert "\n" not in finding.reason and "evil 'corp' evil" in finding.reason and "…" in finding.reason
    assert len(finding.reason) < 300


def test_a_reported_cold_start_call_is_held_not_learned_at_once() -> None:
    """River's AnomalyFilter convention, as for reported novelties: not learned from a session another
    detector alerted on."""
    detector = Novelty()
    assert cold_findings(run_session(detector, "bad", [GRANT], other_alert=True))
    learned = detector._profiles["a:helper"].items.get("counterparty", {})
    assert "grantee:dana.k.1987@gmail.com" not in learned
    run_session(detector, "plain", [{"tool": "crm.update_contact", "args": {"id": "c-9"}}])
    assert "crm.update_contact" in detector._profiles["a:helper"].items["tool"]  # unreported: learned at once


def test_operator_entries_are_laid_over_the_defaults() -> None:
    cfg = NoveltyConfig(cold_start_scores={"external_comm": {"external": 0.3}, "financial": {"external": 0}})
    assert cfg.cold_start_scores["external_comm"] == {"consumer": 0.45, "external": 0.3}
    assert cfg.cold_start_scores["financial"] == {"consumer": 0.6, "external": 0.0}
    assert cfg.cold_start_scores["access_change"] == dict(DEFAULT_COLD_START_SCORES["access_change"])
    silent = NoveltyConfig(
        cold_start_scores={tier: dict.fromkeys(row, 0) for tier, row in DEFAULT_COLD_START_SCORES.items()}
    )
    assert cold_findings(run_session(Novelty(silent), "s", [GRANT])) == []


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("acces_change = { consumer = 0.6 }", "unknown tier 'acces_change'"),
        (
            "access_change = { consumer = 1.5 }",
            "cold_start_scores.access_change.consumer: score must be a number in [0, 1]",
        ),
        ("access_change = { consumer = -0.1 }", "score must be a number in [0, 1]"),
        ("access_change = { gmail = 0.6 }", "unknown counterparty class 'gmail'"),
        ('access_change = { consumer = "high" }', "Expected `float`, got `str`"),
    ],
)
def test_a_bad_table_is_a_one_line_config_error(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "agentwatch.toml"
    path.write_text(f"[detectors.novelty.config.cold_start_scores]\n{table}\n")
    with pytest.raises(ConfigError) as caught:
        active_detectors(load_config(path))
    text = str(caught.value)
    assert message in text and "detectors.novelty.config" in text and "\n" not in text


def test_the_cold_start_bench_picks_the_sessions_before_a_baseline_and_silences_the_table() -> None:
    from bench import cold_start
    from bench.corpus_assistants import _Session

    sessions = []
    for n, size in enumerate((4, 4, 4, 40, 4)):  # agent a: 3 sessions but 12 events, then 40 more
        session = _Session(f"a{n}", "a", "desk:a", f"task-a{n}")
        for _ in range(size):
            session.add("prompt", attributes={"content": "x"})
        sessions.append(session)
    other = _Session("b0", "b", "desk:b", "task-b0")
    assert cold_start.cold_sessions([*sessions, other], 3, 30) == {"a0", "a1", "a2", "a3", "b0"}
    config = cold_start.silenced(load_config())
    table = NoveltyConfig(cold_start_scores=config.detectors["novelty"].config["cold_start_scores"])
    assert not any(any(row.values()) for row in table.cold_start_scores.values())
    assert cold_findings(run_session(Novelty(table), "s", [GRANT])) == []

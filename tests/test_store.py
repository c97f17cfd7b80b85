"""The store suite — incidents, ledger, audit chain, actions — on SQLite and PostgreSQL."""

from __future__ import annotations

import msgspec
import pytest
from sqlalchemy import update

from agentwatch.detect.alerts import Alert, alert_id_for
from agentwatch.respond import audit_log
from agentwatch.respond.incident_lifecycle import IncidentSettings, attach_alert, set_status
from agentwatch.respond.incident_queries import list_incidents, load_incident
from agentwatch.store import AlertLedger, open_store
from agentwatch.store import audit_log as audit_table


def alert(
    session: str = "s1",
    detector: str = "secret_access",
    severity: str = "high",
    revision: int = 1,
    agent: str = "coder-1",
    ts: int = 1_767_225_600_000,
) -> Alert:
    return Alert(
        alert_id=alert_id_for(detector, session),
        revision=revision,
        session_id=session,
        agent_id=agent,
        principal="ana@example.com",
        detector=detector,
        category="secret_access",
        severity=severity,
        score=0.8,
        mode="enforce",
        event_id=f"{session}:e1",
        ts="2026-01-01T00:00:00.000Z",
        summary="read ~/.ssh/id_rsa",
        reasons=["read ~/.ssh/id_rsa"],
        event_ids=[f"{session}:e1"],
        finding_count=1,
        first_ts_ms=ts,
        updated_ts_ms=ts,
        observed_ms=ts,
    )


def test_schema_is_created_and_versioned(store_url: str) -> None:
    open_store(store_url)
    engine = open_store(store_url)  # second open: no error, same version
    from sqlalchemy import select

    from agentwatch.store import SCHEMA_VERSION, schema_version

    with engine.connect() as conn:
        assert conn.execute(select(schema_version.c.version)).scalar() == SCHEMA_VERSION


def test_alerts_group_into_one_incident_per_session_with_max_severity(store_url: str) -> None:
    engine = open_store(store_url)
    settings = IncidentSettings()
    with engine.begin() as conn:
        first = attach_alert(conn, alert(severity="medium"), settings, 1000, 900)
        second = attach_alert(conn, alert(detector="taint_flow", severity="critical"), settings, 2000, 800)
        other = attach_alert(conn, alert(session="s2"), settings, 2500, 2400)
        replay = attach_alert(conn, alert(severity="medium"), settings, 3000, 900)
    assert first.created and not second.created and second.incident_id == first.incident_id
    assert other.incident_id != first.incident_id
    assert not replay.attached  # the same alert revision again changes nothing
    with engine.connect() as conn:
        record = load_incident(conn, first.incident_id)
        rows = list_incidents(conn)
    assert record.severity == "critical" and record.first_malicious_ts_ms == 800
    assert [a.detector for a in record.alerts] == ["secret_access", "taint_flow"]
    assert {r["incident_id"]: r["alerts"] for r in rows}[first.incident_id] == 2
    assert [e.kind for e in record.timeline].count("alert") == 2


def test_grouping_by_agent_and_window(store_url: str) -> None:
    engine = open_store(store_url)
    settings = IncidentSettings(group_by="agent_id", window_s=60)
    with engine.begin() as conn:
        a = attach_alert(conn, alert(session="s1"), settings, 1_000, 1_000)
        b = attach_alert(conn, alert(session="s2"), settings, 30_000, 30_000)
        c = attach_alert(conn, alert(session="s3"), settings, 200_000, 200_000)
    assert a.incident_id == b.incident_id != c.incident_id


def test_lifecycle_moves_forward_only(store_url: str) -> None:
    engine = open_store(store_url)
    with engine.begin() as conn:
        change = attach_alert(conn, alert(), IncidentSettings(), 1000, 1000)
        assert set_status(conn, change.incident_id, "contained", "agentwatch", 2000, "terminated")
        assert not set_status(conn, change.incident_id, "open", "x", 2500, "reopen?")
        assert set_status(conn, change.incident_id, "resolved", "human:ana", 3000, "done")
        assert not set_status(conn, change.incident_id, "contained", "agentwatch", 4000, "late")
        with pytest.raises(KeyError):
            set_status(conn, "inc-nope", "resolved", "x", 1, "x")
    with engine.connect() as conn:
        record = load_incident(conn, change.incident_id)
    assert (record.status, record.contained_ms, record.resolved_ms) == ("resolved", 2000, 3000)


def test_audit_chain_detects_edits_deletions_and_reordering(store_url: str) -> None:
    engine = open_store(store_url)
    with engine.begin() as conn:
        for i in range(5):
            audit_log.append(conn, "human:ana", "approval.granted", f"inc-{i}", {"n": i, "why": "ok"}, 1000 + i)
    assert audit_log.verify_chain(engine).ok and audit_log.verify_chain(engine).records == 5
    with engine.begin() as conn:
        conn.execute(update(audit_table).where(audit_table.c.seq == 3).values(actor="human:mallory"))
    verdict = audit_log.verify_chain(engine)
    assert not verdict.ok and verdict.seq == 3 and "altered" in (verdict.problem or "")
    with engine.begin() as conn:
        conn.execute(audit_table.delete().where(audit_table.c.seq == 3))
    verdict = audit_log.verify_chain(engine)
    assert not verdict.ok and verdict.seq == 3 and "missing" in (verdict.problem or "")


def test_ledger_survives_reopening(store_url: str) -> None:
    ledger = AlertLedger(open_store(store_url))
    assert ledger.next_revision("al-1", 3) == 1
    ledger.record({"al-1": (1, 3)}, "agentwatch.alerts", {0: 5, 1: 7})
    ledger.record({}, "agentwatch.alerts", {0: 4})  # positions never move backwards
    again = AlertLedger(open_store(store_url))
    assert again.next_revision("al-1", 3) is None and again.next_revision("al-1", 4) == 2
    assert again.positions("agentwatch.alerts") == {0: 5, 1: 7}
    assert msgspec.json.encode(again.merge({"al-1": (2, 4), "al-2": (1, 1)})) == b'{"al-1":[2,4],"al-2":[1,1]}'

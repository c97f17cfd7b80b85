"""Incident titles name the most severe category (issue 15), not whichever alert came first
(the pipeline reports detectors in name order, so an anomaly used to name a credential theft)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from agentwatch.respond.incident_lifecycle import IncidentSettings, attach_alert
from agentwatch.respond.incident_queries import load_incident
from agentwatch.store import open_store
from tests.test_store import alert

T0 = 1_767_225_600_000


def test_a_more_severe_alert_renames_the_incident_and_a_milder_one_does_not(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'agentwatch.db'}")
    anomaly = msgspec.structs.replace(alert(detector="session_anomaly", severity="medium"), category="anomaly")
    secret = alert(detector="secret_access", severity="critical")
    rates = msgspec.structs.replace(alert(detector="rates", severity="high"), category="rate_abuse")
    with engine.begin() as conn:
        incident_id = attach_alert(conn, anomaly, IncidentSettings(), T0, T0).incident_id
        assert load_incident(conn, incident_id).detector_context["title"] == "anomaly by agent coder-1"
        attach_alert(conn, secret, IncidentSettings(), T0 + 1, T0)
        attach_alert(conn, rates, IncidentSettings(), T0 + 2, T0)
        record = load_incident(conn, incident_id)
    assert record.severity == "critical"
    assert record.detector_context["title"] == "secret access by agent coder-1"


def test_incidents_show_prints_the_title(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from agentwatch.cli.main import main

    monkeypatch.setenv("AGENTWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AGENTWATCH_STORE_URL", raising=False)
    monkeypatch.delenv("AGENTWATCH_CONFIG", raising=False)
    engine = open_store(f"sqlite:///{tmp_path / 'agentwatch.db'}")
    anomaly = msgspec.structs.replace(alert(detector="session_anomaly", severity="low"), category="anomaly")
    with engine.begin() as conn:
        incident_id = attach_alert(conn, anomaly, IncidentSettings(), T0, T0).incident_id
        attach_alert(conn, alert(severity="high"), IncidentSettings(), T0 + 1, T0)
    shown = CliRunner().invoke(main, ["incidents", "show", incident_id])
    assert shown.exit_code == 0 and shown.output.splitlines()[0].strip() == "secret access by agent coder-1"

"""One malformed optional number (issue 15: `bytes_out: -5`) costs that field, not the action:
the event is kept and scored, the field named in ``attributes["agentwatch.invalid"]`` and
counted in ``agentwatch_ingest_fields_dropped_total{field}``."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from agentwatch.cli.main import main
from agentwatch.events.audit_event import parse_native
from agentwatch.observe import metrics

EVENT = {
    "event_id": "e1",
    "ts": 1_767_225_600_000,
    "session_id": "s1",
    "agent_id": "coder-1",
    "kind": "tool_call",
    "tool": "Bash",
    "target": "cat ~/.aws/credentials",
    "bytes_out": -5,
}


def dropped(field: str) -> float:
    return metrics.FIELDS_DROPPED.labels(field)._value.get()


def test_a_negative_bytes_out_is_dropped_counted_and_the_credential_read_still_alerts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("AGENTWATCH_CONFIG", raising=False)
    events = tmp_path / "events.jsonl"
    events.write_bytes(msgspec.json.encode(EVENT) + b"\n")
    before = dropped("bytes_out")
    result = CliRunner().invoke(main, ["replay", str(events), "--alerts", str(tmp_path / "alerts.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    summary = msgspec.json.decode(result.stdout.splitlines()[-1])
    assert summary["events"] == 1 and summary["dead_letters"] == 0
    alerts = [msgspec.json.decode(line) for line in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
    assert any(a["detector"] == "secret_access" and a["event_id"] == "e1" for a in alerts)
    assert dropped("bytes_out") == before + 1


def test_the_metric_label_is_bounded_and_a_forged_marker_is_not_counted() -> None:
    other = dropped("other")
    bytes_in = dropped("bytes_in")
    forged = {**EVENT, "bytes_out": 3, "attributes": {"agentwatch.invalid": ["session-abc", "bytes_in"]}}
    ev = parse_native(msgspec.json.encode(forged))
    assert ev.bytes_out == 3
    assert dropped("other") == other and dropped("bytes_in") == bytes_in  # nothing was dropped
    from agentwatch.events.audit_event import count_dropped

    count_dropped(["attributes.agent-written-key"])
    assert dropped("other") == other + 1

"""A Claude Code session's OpenTelemetry records (the event shapes of tests/fixtures/otlp), for the
telemetry-path tests: one harmless session of the fixture plus a ``Read ~/.ssh/id_rsa``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).parent / "fixtures" / "otlp" / "claude_code_session.json"
SECRET = "/home/dev/.ssh/id_rsa"


def _kv(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def read_secret_record(session: str, seq: int, *, tool_details: bool, user: str = "u-dev-1") -> dict[str, Any]:
    """Claude Code's ``tool_result`` for a Read: ``tool_input`` only with OTEL_LOG_TOOL_DETAILS=1."""
    attributes = [
        _kv("user.id", user),
        _kv("session.id", session),
        _kv("event.name", "tool_result"),
        _kv("event.timestamp", f"2026-03-02T09:16:{seq:02d}.000Z"),
        {"key": "event.sequence", "value": {"intValue": str(seq)}},
        _kv("tool_name", "Read"),
        _kv("success", "true"),
        _kv("duration_ms", "4"),
        _kv("tool_result_size_bytes", "3243"),
    ]
    if tool_details:
        attributes.append(_kv("tool_input", json.dumps({"file_path": SECRET})))
    return {
        "timeUnixNano": str(1_772_442_960_000_000_000 + seq * 1_000_000_000),
        "body": {"stringValue": "claude_code.tool_result"},
        "attributes": attributes,
    }


def session_request(session: str, *, tool_details: bool, user: str = "u-dev-1") -> dict[str, Any]:
    """The fixture's session renamed to ``session`` (and ``user``), then a Read of an SSH key."""
    request = copy.deepcopy(json.loads(FIXTURE.read_text()))
    for resource_logs in request["resourceLogs"]:
        for scope_logs in resource_logs["scopeLogs"]:
            for record in scope_logs["logRecords"]:
                for pair in record["attributes"]:
                    if pair["key"] == "session.id":
                        pair["value"] = {"stringValue": session}
                    elif pair["key"] in ("user.id", "user.account_uuid", "user.email"):
                        pair["value"] = {"stringValue": user}
                if not tool_details:
                    record["attributes"] = [p for p in record["attributes"] if p["key"] != "tool_input"]
            scope_logs["logRecords"].append(read_secret_record(session, 59, tool_details=tool_details, user=user))
    return request

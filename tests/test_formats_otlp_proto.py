"""The ``otlp-proto`` decoder (the Collector Kafka exporter's default encoding) and ``otlp`` (either).

Both encodings of one batch must give the same events, ids and errors: the protobuf side
only converts, the mapping is the JSON path's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from opentelemetry.proto.logs.v1 import logs_pb2

from agentwatch.events.audit_event import MAX_MESSAGE_BYTES
from agentwatch.events.dead_letter import Origin, dead_letter
from agentwatch.formats import DecodeResult, get_decoder
from agentwatch.formats.otlp_json import MAX_BATCH_BYTES, decode_otlp_json
from agentwatch.formats.otlp_proto import decode_otlp, decode_otlp_proto
from tests.otlp_wire import exporter_messages, group_by_session, to_json, to_proto
from tests.test_formats_otlp import RECEIVED_MS, SESSION, kv, record

FIXTURES = Path(__file__).parent / "fixtures" / "otlp"
JSON_FIXTURE = FIXTURES / "claude_code_session.json"
PROTO_FIXTURE = FIXTURES / "claude_code_session.pb"


def request(*records: dict[str, Any], resource: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    if resource is None:
        resource = [kv("service.name", "claude-code"), kv("host.name", "dev-box-17")]
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": resource},
                "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": list(records)}],
            }
        ]
    }


def plain(result: DecodeResult) -> tuple[list[Any], list[tuple[str, str]]]:
    return msgspec.to_builtins(result.events), [(e.reason, e.detail) for e in result.errors]


def both(req: dict[str, Any]) -> tuple[DecodeResult, DecodeResult]:
    return decode_otlp_json(to_json(req), RECEIVED_MS), decode_otlp_proto(to_proto(req), RECEIVED_MS)


def test_the_recorded_protobuf_fixture_is_the_json_fixture_in_protobuf() -> None:
    assert PROTO_FIXTURE.read_bytes() == to_proto(json.loads(JSON_FIXTURE.read_text()))


def test_a_whole_claude_code_session_decodes_the_same_in_both_encodings() -> None:
    from_json = get_decoder("otlp-json")(JSON_FIXTURE.read_bytes(), RECEIVED_MS)
    from_proto = get_decoder("otlp-proto")(PROTO_FIXTURE.read_bytes(), RECEIVED_MS)
    assert from_proto.errors == [] and len(from_proto.events) == len(from_json.events) > 5
    assert plain(from_proto) == plain(from_json)
    kinds = {e.kind for e in from_proto.events}
    assert {"prompt", "tool_result", "model_call", "permission"} <= kinds


def test_otlp_tells_the_encodings_apart() -> None:
    raw_json = JSON_FIXTURE.read_bytes()
    expected = plain(decode_otlp_json(raw_json, RECEIVED_MS))
    assert plain(get_decoder("otlp")(raw_json, RECEIVED_MS)) == expected
    assert plain(get_decoder("otlp")(PROTO_FIXTURE.read_bytes(), RECEIVED_MS)) == expected
    assert plain(decode_otlp(b"\n  " + raw_json, RECEIVED_MS)) == expected  # JSON after whitespace
    assert [e.reason for e in decode_otlp(b"\x0a\x05ab", RECEIVED_MS).errors] == ["invalid_protobuf"]


def test_every_any_value_and_ids_map_as_in_json() -> None:
    rec = record(
        "tool_result",
        3,
        tool_name="Read",
        success=True,
        duration_ms=12,
        ratio=0.5,
        tool_input=json.dumps({"file_path": "/home/dev/.ssh/id_rsa"}),
        blob={"bytesValue": "AAEC/w=="},
        listed={"arrayValue": {"values": [{"intValue": "7"}, {"stringValue": "x"}, {"boolValue": False}]}},
        mapped={"kvlistValue": {"values": [kv("inner", "v"), {"key": "empty"}]}},
        unset={},
    )
    rec["traceId"] = "5b8efff798038103d269b633813fc60c"
    rec["spanId"] = "eee19b7ec3c1b174"
    rec["eventName"] = "tool_result"
    from_json, from_proto = both(request(rec))
    assert from_proto.errors == [] and plain(from_proto) == plain(from_json)
    [event] = from_proto.events
    assert event.target == "/home/dev/.ssh/id_rsa" and event.outcome == "ok"
    assert event.attributes is not None
    assert event.attributes["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert event.attributes["blob"] == "AAEC/w==" and event.attributes["listed"] == [7, "x", False]


def test_per_record_errors_are_the_same_and_isolated() -> None:
    good = record("tool_decision", 1, tool_name="Bash", decision="accept")
    no_session = record("tool_decision", 2, session=None, tool_name="Bash", decision="accept")
    no_name = record("tool_decision", 3)
    no_name["attributes"] = [a for a in no_name["attributes"] if a["key"] != "event.name"]
    no_name["body"] = {"stringValue": "free text"}
    from_json, from_proto = both(request(good, no_session, no_name))
    assert plain(from_proto) == plain(from_json)
    assert len(from_proto.events) == 1
    assert [e.reason for e in from_proto.errors] == ["missing_field", "missing_field"]
    assert "logRecords[1]" in from_proto.errors[0].detail


def test_a_session_moved_to_the_resource_by_groupbyattrs_decodes_the_same() -> None:
    """deploy/otel-collector.yaml groups records by ``session.id`` (moved onto the resource)."""
    original = json.loads(JSON_FIXTURE.read_text())
    other = record("tool_decision", 9, session="another-session", tool_name="Bash", decision="accept")
    original["resourceLogs"][0]["scopeLogs"][0]["logRecords"].append(other)
    grouped = group_by_session(original)
    assert len(grouped["resourceLogs"]) == 2
    expected = plain(decode_otlp_json(to_json(original), RECEIVED_MS))
    messages = exporter_messages(grouped, "otlp_proto", partition_by_resource=True)
    assert all(key is not None for key, _ in messages)
    events = [e for _, raw in messages for e in plain(decode_otlp_proto(raw, RECEIVED_MS))[0]]
    assert sorted(events, key=lambda e: e["event_id"]) == sorted(expected[0], key=lambda e: e["event_id"])
    # One message per session, and its key is the same for every batch of that session.
    sessions = [{e.session_id for e in decode_otlp_proto(raw, RECEIVED_MS).events} for _, raw in messages]
    assert sorted(map(sorted, sessions)) == sorted([["another-session"], [SESSION]])
    later = group_by_session(request(record("user_prompt", 40, prompt_length=3)))
    later["resourceLogs"][0]["resource"]["attributes"] = grouped["resourceLogs"][0]["resource"]["attributes"]
    assert exporter_messages(later, partition_by_resource=True)[0][0] == messages[0][0]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\x0a\xff\xff\xff\xff\x0f", id="length-past-the-end"),
        pytest.param(b"\x0b\x08\x01", id="unterminated-group"),
        pytest.param(bytes(range(256)) * 4, id="garbage"),
        pytest.param(b"\x0a\x06\x0a\x04\x0a\x02\x0a\x09", id="inner-length-past-its-parent"),
    ],
)
def test_malformed_protobuf_is_one_error_with_a_reason(raw: bytes) -> None:
    result = decode_otlp_proto(raw, RECEIVED_MS)
    assert result.events == []
    assert [e.reason for e in result.errors] == ["invalid_protobuf"]


def test_nesting_past_the_parsers_recursion_limit_is_malformed_not_a_crash() -> None:
    data = logs_pb2.LogsData()
    attribute = data.resource_logs.add().scope_logs.add().log_records.add().attributes.add()
    attribute.key, value = "deep", attribute.value
    for _ in range(60):  # three message levels each: past upb's limit of 100
        pair = value.kvlist_value.values.add()
        pair.key, value = "k", pair.value
    value.string_value = "bottom"
    result = decode_otlp_proto(data.SerializeToString(), RECEIVED_MS)
    assert [e.reason for e in result.errors] == ["invalid_protobuf"] and result.events == []


def test_invalid_utf8_in_a_string_field_is_malformed() -> None:
    raw = to_proto(request(record("user_prompt", 1)))
    assert raw.count(b"claude-code") == 1
    result = decode_otlp_proto(raw.replace(b"claude-code", b"claude\xffcode"), RECEIVED_MS)
    assert [e.reason for e in result.errors] == ["invalid_protobuf"] and result.events == []


def test_a_malformed_message_becomes_a_dead_letter_with_its_reason() -> None:
    raw = PROTO_FIXTURE.read_bytes()[:-7]  # cut mid-record, as a broken producer would
    result = decode_otlp_proto(raw, RECEIVED_MS)
    letter = dead_letter(
        raw, result.errors, "otlp-proto", Origin(topic="otlp_logs", partition=0, offset=9, timestamp_ms=0)
    )
    assert letter.reason == "invalid_protobuf" and letter.format == "otlp-proto" and letter.value_bytes == len(raw)


def test_empty_and_non_logs_requests() -> None:
    assert [e.reason for e in decode_otlp_proto(b"", RECEIVED_MS).errors] == ["empty_batch"]
    assert [e.reason for e in decode_otlp_proto(to_proto({"resourceLogs": [{}]}), RECEIVED_MS).errors] == [
        "empty_batch"
    ]


def test_oversized_batch_is_refused_before_parsing() -> None:
    result = decode_otlp_proto(b"\x0a" * (MAX_BATCH_BYTES + 1), RECEIVED_MS)
    assert [e.reason for e in result.errors] == ["oversized"]


def test_record_cap_applies_per_record_not_per_batch() -> None:
    small = [record("tool_decision", n, tool_name="Bash", decision="accept") for n in range(3)]
    big = record("user_prompt", 9, prompt="x" * (MAX_MESSAGE_BYTES + 10))
    from_json, from_proto = both(request(small[0], big, *small[1:]))
    assert len(from_proto.events) == 3
    assert [e.reason for e in from_proto.errors] == ["oversized"] == [e.reason for e in from_json.errors]
    assert "logRecords[1]" in from_proto.errors[0].detail


def test_deep_values_are_capped_like_json() -> None:
    value: dict[str, Any] = {"stringValue": "bottom"}
    for _ in range(30):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    from_json, from_proto = both(request(record("user_prompt", 1, deep=value)))
    assert from_proto.errors == [] and plain(from_proto) == plain(from_json)
    assert "…[nested]" in json.dumps(msgspec.to_builtins(from_proto.events[0].attributes), ensure_ascii=False)

"""Hostile values inside otherwise valid events: deep nesting and out-of-range numbers.

A compromised agent controls every byte of its events. A value nested hundreds deep or a
number like 10^400 must neither take the monitor down (a later pickle or float conversion
raising) nor get the event rejected (rejection is evasion); it is cut or dropped, and the
event says so in ``attributes``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from agentwatch.cli.main import main
from agentwatch.config import Config
from agentwatch.detect.pipeline import EXPIRY_EVERY, build_pipeline
from agentwatch.detect.session_state import SessionTable
from agentwatch.events.audit_event import MAX_NESTING, MAX_SAFE_INT, NESTED_MARK, parse_native
from agentwatch.formats.claude_hook import decode_claude_hook
from agentwatch.formats.otlp_json import decode_otlp_json
from agentwatch.observe import metrics

T0 = 1_767_225_600_000


def native(n: int, session: str = "s1", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{session}:{n}",
        "ts": T0 + n * 1000,
        "session_id": session,
        "agent_id": "coder",
        "kind": "tool_call",
        "tool": "Bash",
        "target": "ls",
        **extra,
    }


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def depth_of(value: Any) -> int:
    depth = 0
    while isinstance(value, dict | list):
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
        depth += 1
    return depth


def otlp(attributes: dict[str, Any], body: Any = None) -> bytes:
    record: dict[str, Any] = {"attributes": [{"key": k, "value": v} for k, v in attributes.items()]}
    if body is not None:
        record["body"] = body
    return msgspec.json.encode({"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]})


def otlp_attrs(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "event.name": {"stringValue": name},
        "session.id": {"stringValue": "s1"},
        "event.timestamp": {"stringValue": "2026-01-01T00:00:00.000Z"},
        **extra,
    }


# -- item 1: nesting depth ---------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 500, 900])
def test_native_args_nested_deep_are_cut_to_a_marker_not_rejected(depth: int) -> None:
    raw = msgspec.json.encode(native(1, args={"x": nested(depth)}, extra_field={"y": nested(depth)}))
    ev = parse_native(raw)
    assert depth_of(ev.args) <= MAX_NESTING
    assert NESTED_MARK in ev.args_text()
    assert depth_of(ev.attributes["extra_field"]) <= MAX_NESTING
    assert {"args", "attributes"} <= set(ev.attributes["agentwatch.truncated"])
    msgspec.json.encode(ev)  # every later step copes
    import pickle

    pickle.dumps(ev)


def test_native_args_at_the_limit_are_kept_whole() -> None:
    value = {"x": nested(MAX_NESTING - 1)}
    ev = parse_native(msgspec.json.encode(native(1, args=value)))
    assert ev.args == value and not (ev.attributes or {}).get("agentwatch.truncated")


def test_otlp_tool_input_nested_deep_is_cut() -> None:
    tool_input = json.dumps({"command": "ls", "deep": nested(900)})
    raw = otlp(otlp_attrs("tool_result", tool_name={"stringValue": "Bash"}, tool_input={"stringValue": tool_input}))
    result = decode_otlp_json(raw, T0)
    assert not result.errors
    ev = result.events[0]
    assert ev.target == "ls" and depth_of(ev.args) <= MAX_NESTING
    assert "args" in ev.attributes["agentwatch.truncated"]


def test_claude_hook_tool_input_nested_deep_is_cut() -> None:
    raw = json.dumps(
        {
            "session_id": "s1",
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": "cat ~/.aws/credentials", "deep": nested(900)},
        }
    ).encode()
    result = decode_claude_hook(raw, T0)
    assert not result.errors
    ev = result.events[0]
    assert ev.target == "cat ~/.aws/credentials" and depth_of(ev.args) <= MAX_NESTING
    assert "args" in ev.attributes["agentwatch.truncated"]


def test_replay_with_one_event_nested_900_deep_exits_0_and_alerts_as_normal(
    tmp_path: Path, isolated_config: Config
) -> None:
    """The reproduction from the issue: 1,023 ordinary events and one nested 900 deep."""
    lines = [native(i, session=f"s{i % 7}") for i in range(1023)]
    lines[500] = native(
        500,
        session="s3",
        tool="Read",
        target="/home/dev/.aws/credentials",
        args={"file_path": "/home/dev/.aws/credentials"},
    )
    lines.append(native(2000, session="deep", args={"x": nested(900)}))
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(msgspec.json.encode(line) for line in lines) + b"\n")
    alerts = tmp_path / "alerts.jsonl"
    result = CliRunner().invoke(main, ["replay", str(events), "--alerts", str(alerts), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["events"] == 1024 and summary["dead_letters"] == 0
    raised = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert any(a["session_id"] == "s3" and a["detector"] == "secret_access" for a in raised)


# -- item 1: best-effort steps cannot stop ingest ------------------------------------------


def test_session_memory_estimate_failing_does_not_stop_ingest(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: SessionTable, sample: int = 100) -> int:
        raise RecursionError("maximum recursion depth exceeded while pickling an object")

    from agentwatch import best_effort

    monkeypatch.setattr(SessionTable, "estimated_bytes", broken)
    monkeypatch.setattr(best_effort, "_last_logged", {})
    pipeline = build_pipeline(Config())
    failures = metrics.BEST_EFFORT_FAILURES.labels("session_state_bytes")
    before = failures._value.get()
    rounds = 40
    with caplog.at_level(logging.WARNING):
        for i in range(EXPIRY_EVERY * rounds):
            pipeline.ingest(msgspec.json.encode(native(i, session=f"s{i % 50}")), _native_decoder(), T0)
    assert pipeline.events_seen == EXPIRY_EVERY * rounds
    assert failures._value.get() - before >= 2  # estimated every 16 expiry rounds: 1, 17, 33
    logged = [r for r in caplog.records if "session_state_bytes" in r.getMessage()]
    assert 1 <= len(logged) <= 2  # rate-limited, not once per failure


def _native_decoder():  # type: ignore[no-untyped-def]
    from agentwatch.formats import get_decoder

    return get_decoder("native")


# -- item 3: integer range -------------------------------------------------------------------

HUGE = [10**400, 2**64, MAX_SAFE_INT + 1]


@pytest.mark.parametrize("value", HUGE, ids=["1e400", "2^64", "2^53"])
@pytest.mark.parametrize("field", ["bytes_in", "bytes_out", "tokens_in", "tokens_out", "cost_usd", "duration_ms"])
def test_native_out_of_range_number_is_dropped_and_recorded(field: str, value: int) -> None:
    neighbour = {"bytes_in": 10} if field != "bytes_in" else {"bytes_out": 10}
    raw = msgspec.json.encode(native(1, **neighbour, **{field: value}))
    ev = parse_native(raw)
    assert getattr(ev, field) is None
    assert ev.attributes["agentwatch.invalid"] == [field]
    assert getattr(ev, next(iter(neighbour))) == 10  # the valid neighbour stays


def test_native_float_literal_out_of_range_anywhere_is_not_a_rejection() -> None:
    head = msgspec.json.encode(native(1, tool="Read", target="/home/dev/.aws/credentials"))[:-1]
    raw = head + b', "cost_usd": 1e400, "padding": {"n": -1e999}}'
    ev = parse_native(raw)
    assert ev.cost_usd is None and ev.attributes["agentwatch.invalid"] == ["cost_usd"]
    assert ev.target == "/home/dev/.aws/credentials"


def test_native_wrong_type_optional_number_is_dropped_and_recorded() -> None:
    ev = parse_native(msgspec.json.encode(native(1, bytes_out="lots", tokens_in=-3, duration_ms=5)))
    assert ev.bytes_out is None and ev.tokens_in is None and ev.duration_ms == 5
    assert sorted(ev.attributes["agentwatch.invalid"]) == ["bytes_out", "tokens_in"]


def test_native_largest_allowed_number_passes() -> None:
    ev = parse_native(msgspec.json.encode(native(1, bytes_out=MAX_SAFE_INT, cost_usd=1e9)))
    assert ev.bytes_out == MAX_SAFE_INT and ev.cost_usd == 1e9 and ev.attributes is None


@pytest.mark.parametrize("text", [str(10**400), str(2**64), "1" * 5000])
def test_otlp_out_of_range_token_count_is_dropped_and_recorded(text: str) -> None:
    raw = otlp(
        otlp_attrs(
            "api_request",
            input_tokens={"intValue": text},
            output_tokens={"intValue": "7"},
            cost_usd={"doubleValue": 1e308},
            huge_attr={"intValue": text},
        )
    )
    result = decode_otlp_json(raw, T0)
    assert not result.errors
    ev = result.events[0]
    assert ev.tokens_in is None and ev.tokens_out == 7
    named = ev.attributes["agentwatch.invalid"]
    assert "tokens_in" in named or "attributes.input_tokens" in named  # over 4,300 digits: not even an int
    assert "cost_usd" in named


def test_otlp_malformed_number_in_the_body_is_not_an_exception() -> None:
    for body in ({"intValue": "abc"}, {"doubleValue": "zz"}, {"intValue": "1" * 5000}):
        result = decode_otlp_json(otlp(otlp_attrs("tool_decision"), body=body), T0)
        assert len(result.events) == 1 and not result.errors


def test_claude_hook_huge_reported_size_is_dropped_and_recorded() -> None:
    raw = json.dumps(
        {
            "session_id": "s1",
            "hook_event_name": "PostToolUse",
            "tool_name": "WebFetch",
            "tool_input": {"url": "https://x.io"},
            "tool_response": {"result": "ok", "bytes": 2**64},
        }
    )
    ev = decode_claude_hook(raw.encode(), T0).events[0]
    assert ev.bytes_in is None and ev.attributes["agentwatch.invalid"] == ["bytes_in"]


@pytest.mark.parametrize("fmt", ["native", "otlp-json"])
def test_rates_and_session_anomaly_do_not_raise_on_huge_numbers(fmt: str) -> None:
    config = Config()
    pipeline = build_pipeline(config, only=["rates", "session_anomaly"])
    from agentwatch.formats import get_decoder

    decoder = get_decoder(fmt)
    for i in range(300):
        if fmt == "native":
            raw = msgspec.json.encode(
                native(
                    i,
                    kind="tool_result",
                    bytes_out=2**64 if i % 2 else MAX_SAFE_INT,
                    tokens_in=10**400,
                    tokens_out=MAX_SAFE_INT,
                    cost_usd=2.0**62,
                )
            )
        else:
            raw = otlp(
                otlp_attrs(
                    "api_request",
                    input_tokens={"intValue": str(10**400)},
                    output_tokens={"intValue": str(MAX_SAFE_INT)},
                    cost_usd={"doubleValue": 2.0**62},
                )
            )
            raw = raw.replace(b"2026-01-01T00:00:00.000Z", f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000Z".encode())
        result = pipeline.ingest(raw, decoder, T0)
        assert result.events and not result.errors
    pipeline.drain()
    assert not pipeline.plugin_errors, pipeline.plugin_errors


def test_claude_hook_float_literal_out_of_range_is_not_a_rejection() -> None:
    raw = (
        b'{"session_id": "s1", "hook_event_name": "PreToolUse", "tool_name": "Bash",'
        b' "tool_input": {"command": "cat ~/.aws/credentials", "timeout": 1e400}}'
    )
    result = decode_claude_hook(raw, T0)
    assert not result.errors and result.events[0].target == "cat ~/.aws/credentials"

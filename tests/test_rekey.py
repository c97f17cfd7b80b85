"""``agentwatch rekey``'s split: one message per session, keyed by ``session.id``, nothing lost."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from agentwatch.formats import get_decoder
from agentwatch.ingest.rekey import MAX_KEY_BYTES, session_key, split_by_session
from tests.claude_otel import session_request
from tests.otlp_wire import group_by_session, to_json, to_proto
from tests.test_formats_otlp import record


def events_of(raw: bytes) -> list[dict]:  # type: ignore[type-arg]
    return msgspec.to_builtins(get_decoder("otlp")(raw, 0).events)


def batch_of_three_sessions() -> dict:  # type: ignore[type-arg]
    a = session_request("s-a", tool_details=True)
    b = session_request("s-b", tool_details=False)
    # Interleave: s-b's records inside s-a's scope too, and one record with no session at all.
    scope = a["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    scope.insert(2, record("tool_decision", 77, session="s-b", tool_name="Bash", decision="accept"))
    scope.append(record("tool_decision", 78, session=None, tool_name="Bash", decision="accept"))
    return {"resourceLogs": a["resourceLogs"] + b["resourceLogs"]}


@pytest.mark.parametrize("encode", [to_proto, to_json], ids=["otlp_proto", "otlp_json"])
def test_every_record_lands_once_under_its_session_key_in_order(encode) -> None:  # type: ignore[no-untyped-def]
    raw = encode(batch_of_three_sessions())
    parts = split_by_session(raw)
    assert sorted(k or b"" for k, _ in parts) == [b"", b"s-a", b"s-b"]
    for key, value in parts:
        assert value[:1] == raw[:1]  # same encoding out as in
        if key is not None:
            assert {e["session_id"] for e in events_of(value)} == {key.decode()}
    # Nothing lost, nothing changed: the same events (ids included), each session's in its order.
    original = events_of(raw)
    split = [e for _, value in parts for e in events_of(value)]
    assert sorted(e["event_id"] for e in split) == sorted(e["event_id"] for e in original)
    for session in ("s-a", "s-b"):
        assert [e for e in split if e["session_id"] == session] == [e for e in original if e["session_id"] == session]
    [unkeyed] = [v for k, v in parts if k is None]
    result = get_decoder("otlp")(unkeyed, 0)
    assert result.events == [] and [e.reason for e in result.errors] == ["missing_field"]


def test_a_session_on_the_resource_is_used() -> None:
    grouped = group_by_session(session_request("s-r", tool_details=True))
    [(key, value)] = split_by_session(to_proto(grouped))
    assert key == b"s-r" and {e["session_id"] for e in events_of(value)} == {"s-r"}


@pytest.mark.parametrize("raw", [b"\x0a\xff\xff", b"{not json", b'{"resourceLogs": 3}', b"", b"[]"])
def test_what_cannot_be_read_is_forwarded_unchanged_and_unkeyed(raw: bytes) -> None:
    assert split_by_session(raw) == [(None, raw)]


def test_keys_are_bounded() -> None:
    long = "x" * (MAX_KEY_BYTES + 1)
    assert session_key(long) == hashlib.sha256(long.encode()).digest()
    assert session_key("s1") == b"s1" and session_key("") is None and session_key(None) is None


def test_rekey_into_its_own_source_is_a_one_line_usage_error() -> None:
    from click.testing import CliRunner

    from agentwatch.cli.main import main

    result = CliRunner().invoke(
        main, ["rekey", "--bootstrap-servers", "127.0.0.1:1", "--from", "otlp_logs", "--to", "otlp_logs"]
    )
    assert result.exit_code == 2 and "loops" in result.output and "Traceback" not in result.output

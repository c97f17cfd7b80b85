"""What detection loses without OTEL_LOG_TOOL_DETAILS=1, and how the loss is made visible."""

from __future__ import annotations

import logging

import pytest

from agentwatch.config import Config
from agentwatch.detect.pipeline import build_pipeline
from agentwatch.formats import get_decoder, tool_details
from agentwatch.observe import metrics
from tests.claude_otel import SECRET, session_request
from tests.otlp_wire import to_json, to_proto


def missing_count() -> float:
    return metrics.EVENTS_WITHOUT_TOOL_DETAILS._value.get()


@pytest.mark.parametrize("encode", [to_proto, to_json], ids=["otlp_proto", "otlp_json"])
def test_the_same_ssh_key_read_alerts_with_tool_details_and_not_without(encode, caplog) -> None:  # type: ignore[no-untyped-def]
    tool_details._warned.clear()
    pipeline = build_pipeline(Config())
    decoder = get_decoder("otlp")
    with_details = pipeline.ingest(encode(session_request("with-details", tool_details=True)), decoder, 0)
    before = missing_count()
    with caplog.at_level(logging.WARNING, logger="agentwatch.formats.tool_details"):
        without = pipeline.ingest(encode(session_request("no-details", tool_details=False, user="u-dev-2")), decoder, 0)
        again = pipeline.ingest(encode(session_request("no-details-2", tool_details=False, user="u-dev-2")), decoder, 0)

    [read] = [e for e in with_details.events if e.tool == "Read"]
    assert read.target == SECRET
    assert any(a.detector == "secret_access" for a in with_details.alerts)

    [blind] = [e for e in without.events if e.tool == "Read"]
    assert blind.target is None and blind.attributes is not None and blind.attributes[tool_details.FLAG] is True
    assert not any(a.detector == "secret_access" for a in without.alerts + again.alerts)
    # Counted per event; one warning for the agent however many of its events lack details.
    assert missing_count() - before == 4  # the Write and the Read of each session
    warnings = [r for r in caplog.records if "OTEL_LOG_TOOL_DETAILS=1" in r.getMessage()]
    assert len(warnings) == 1 and "claude-code:u-dev-2" in warnings[0].getMessage()


def test_bash_keeps_its_command_without_tool_details() -> None:
    """Bash's ``tool_parameters.full_command`` comes without the flag: not counted as lost."""
    events = get_decoder("otlp")(to_proto(session_request("bash", tool_details=False)), 0).events
    [bash] = [e for e in events if e.kind == "tool_result" and e.tool == "Bash"]
    assert bash.target == "git status --short"
    assert tool_details.FLAG not in (bash.attributes or {})

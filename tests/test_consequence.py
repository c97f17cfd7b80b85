"""Consequence tiers for any tool: words of the name, arguments, MCP annotations, the operator's catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwatch.detect.consequence import TIERS, ToolCatalogue, classify, tool_words
from agentwatch.errors import ConfigError


@pytest.mark.parametrize(
    ("tool", "args", "tier"),
    [
        ("get_user_details", {"user_id": "u1"}, "read_only"),
        ("search_direct_flight", {"origin": "JFK"}, "read_only"),
        ("get_payment_methods", {"user_id": "u1"}, "read_only"),  # a read verb is never raised by nouns
        ("GmailSendEmail", {"to": "a@b.example"}, "external_comm"),
        ("slack.post_message", {"channel": "#x"}, "external_comm"),
        ("publish_post", {"text": "hi"}, "publication"),
        ("delete_repository", {"name": "r"}, "deletion"),
        ("cancel_pending_order", {"order_id": "#W1"}, "deletion"),
        ("mcp__bank__transfer_funds", {"amount": 10}, "financial"),
        ("book_reservation", {"payment_methods": [{"id": "c1"}]}, "financial"),  # a write with a payment
        ("transfer_to_human_agents", {"summary": "x"}, "internal_write"),  # transfer without money
        ("share_document", {"grantee": "x@y.example"}, "access_change"),
        ("reset_password", {"user": "bob"}, "access_change"),
        ("smart_lock.unlock", {"door_id": "front"}, "physical"),
        ("update_order", {"order_id": "1"}, "internal_write"),
        ("DataWiping", None, "deletion"),  # a nominalised verb finds its verb
        ("find_user_id_by_email", {"email": "a@b.example"}, "read_only"),
        ("frobnicate", {"x": 1}, "unknown"),
        ("TodoWrite", {"todos": []}, "read_only"),  # the agent's own to-do list (built-in)
    ],
)
def test_tiers_from_names_and_arguments(tool: str, args: dict | None, tier: str) -> None:
    assert classify(tool, args).tier == tier


def test_annotations_and_catalogue_come_first(tmp_path: Path) -> None:
    assert classify("frobnicate", attributes={"annotations": {"readOnlyHint": True}}).tier == "read_only"
    assert classify("get_x", attributes={"annotations": {"destructiveHint": True}}).tier == "deletion"
    assert classify("get_x", attributes={"mcp.annotations": {"openWorldHint": True}}).tier == "external_comm"
    path = tmp_path / "tools.yaml"
    path.write_text("tools:\n  'crm_*': internal_write\n  get_secret_*: access_change\n")
    catalogue = ToolCatalogue.load(path)
    got = classify("get_secret_value", {"id": 1}, catalogue=catalogue)
    assert (got.tier, got.why) == ("access_change", "catalogue")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tools: {x: nonsense}\n", "tier must be one of"),
        ("- a\n", "expected a mapping"),
        ("tools: [\n", "not valid YAML"),
    ],
)
def test_a_bad_catalogue_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        ToolCatalogue.load(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="does not exist"):
        ToolCatalogue.load(tmp_path / "missing.yaml")


def test_hostile_tool_names_are_bounded_and_classified() -> None:
    long = "send" + "A" * 100_000
    assert classify(long).tier in TIERS
    assert len(tool_words(long)) < 200
    assert classify("").tier == "unknown" and classify(None).tier == "unknown"
    assert classify("x", {1: "not a str key"}).tier == "unknown"  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("tool", "tier"),
    [
        # a read verb said as a verb: opening the tool's own name, or after a service prefix with its object
        ("get_user_details", "read_only"),
        ("searchFlights", "read_only"),
        ("list_all_airports", "read_only"),
        ("calculate", "read_only"),  # a one-word name is the imperative itself
        ("mcp__filesystem__read_file", "read_only"),  # after the namespace
        ("crm.get_contact", "read_only"),
        ("GmailSearchEmails", "read_only"),  # the service noun precedes the verb
        ("GoogleCalendarReadEvents", "read_only"),
        ("GmailReadEmail", "read_only"),  # the object is not a message being sent
        ("ListMcpResourcesTool", "read_only"),  # opening verb, whatever the name ends in
        ("WebFetch", "read_only"),  # runtimes' own tools still come first
        ("web_search", "read_only"),
        # a noun form or trailing noun names a thing: no evidence of read-only
        ("DataAnalyzerTool", "unknown"),
        ("AccuracyValidator", "unknown"),
        ("NetworkMonitoringTool", "unknown"),
        ("BiasDetectionTool", "unknown"),
        ("FakeProductReviews", "unknown"),
        ("SystemMonitor", "unknown"),  # a trailing base form is a noun
        ("DataIntegrityCheck", "unknown"),
        ("google_search", "unknown"),
        ("DataReviewTool", "unknown"),  # after a prefix, a name ending in a generic thing
        ("mcp__search__frobnicate", "unknown"),  # a server's name is not the call's verb
        ("browser_click", "unknown"),  # "browser" is not "browse"
        # … and then the name's other words decide
        ("CameraSystemMonitor", "physical"),
        ("VehicleOperationMonitor", "physical"),
        ("SoftwareUpdateManager", "internal_write"),
        ("InsiderTrading", "financial"),
        ("DataWiper", "deletion"),  # a consequential verb counts in any form
    ],
)
def test_a_read_verb_counts_only_said_as_a_verb(tool: str, tier: str) -> None:
    assert classify(tool).tier == tier


def test_why_names_the_discounted_read_word() -> None:
    assert classify("DataAnalyzerTool").why == "noun-use:analyzer"
    assert classify("searchFlights").why == "verb:search"
    assert classify("frobnicate").why == "no-evidence"
    # a noun form never hides a later consequential word, nor does a trailing read noun
    assert classify("DiskMonitoringWiper").tier == "deletion"
    assert classify("MonitorAndDeleteTool").tier == "read_only"  # the opening verb decides, as before
    assert classify("mcp__monitor__send_report").tier == "external_comm"

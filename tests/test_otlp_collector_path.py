"""The telemetry path as shipped, end to end on the embedded broker (no Collector binary can be
installed here: its Kafka exporter's messages are built as it builds them, tests/otlp_wire.py).

Claude Code sessions' OTLP records, as the Collector's Kafka exporter writes them (otlp_proto,
its default, and otlp_json; one request per message, many sessions per message), go through
``agentwatch rekey`` (one message per session, keyed by ``session.id``, co-partitioned with
``agent.audit``) into the monitor: they decode, alert and terminate; a malformed protobuf
message becomes a dead letter with its reason; a session without tool details raises nothing
but is counted.
"""

from __future__ import annotations

import threading

import msgspec
import pytest
from kafka.partitioner.default import murmur2

from agentwatch.config import Config
from agentwatch.formats import get_decoder
from agentwatch.ingest.monitor_process import start_monitor
from agentwatch.ingest.rekey import run_rekey
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.lab.broker import EmbeddedBroker
from agentwatch.lab.topic_io import publish_raw, read_records, read_topic
from agentwatch.observe import metrics
from tests.claude_otel import session_request
from tests.otlp_wire import exporter_messages

pytestmark = pytest.mark.broker

PARTITIONS = 4


def merged(*requests: dict) -> dict:  # type: ignore[type-arg]
    """One Collector batch holding several sessions' resources."""
    return {"resourceLogs": [rl for request in requests for rl in request["resourceLogs"]]}


def test_claude_code_otlp_records_arrive_decode_alert_and_terminate(
    broker: EmbeddedBroker, isolated_config: Config
) -> None:
    bootstrap = broker.bootstrap_servers
    native, otlp = list(isolated_config.monitor.inputs)
    config = msgspec.structs.replace(
        isolated_config,
        monitor=msgspec.structs.replace(isolated_config.monitor, inputs={native: "native", otlp: "otlp"}),
    )
    unkeyed = f"{otlp}.unkeyed"
    ensure_topics(bootstrap, [*all_topics(config.monitor), unkeyed], partitions=PARTITIONS)

    proto_batch = merged(
        session_request("cc-proto-1", tool_details=True, user="u-alice"),
        session_request("cc-blind-1", tool_details=False, user="u-bob"),
    )
    json_batch = session_request("cc-json-1", tool_details=True, user="u-carol")
    messages = [
        *exporter_messages(proto_batch, "otlp_proto"),
        *exporter_messages(json_batch, "otlp_json"),
        (None, b"\x0a\xff\xff\x03truncated"),  # a broken producer's message
    ]
    assert all(key is None for key, _ in messages)  # the exporter's messages carry no session key
    publish_raw(bootstrap, unkeyed, messages)

    stats = run_rekey(bootstrap, unkeyed, otlp, group_id=f"{config.monitor.group_id}-rekey", exit_on_idle_s=3)
    assert (stats.messages_in, stats.messages_out, stats.unkeyed) == (3, 4, 1)
    keyed = read_records(bootstrap, otlp)
    by_key = {r.key: r for r in keyed if r.key is not None}
    assert set(by_key) == {b"cc-proto-1", b"cc-blind-1", b"cc-json-1"}
    for key, record in by_key.items():
        # The partition a native event keyed by the same session goes to on agent.audit (the Java
        # client's and kafka-python's default: murmur2 of the key).
        assert record.partition == (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
        assert {e.session_id for e in get_decoder("otlp")(record.value, 0).events} == {key.decode()}

    missing_before = metrics.EVENTS_WITHOUT_TOOL_DETAILS._value.get()
    monitor = start_monitor(bootstrap, config, exit_on_idle_s=3.0)
    thread = threading.Thread(target=monitor.run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()

    alerts = [msgspec.json.decode(v) for v in read_topic(bootstrap, config.monitor.alerts_topic)]
    secret = {a["session_id"] for a in alerts if a["detector"] == "secret_access"}
    assert secret == {"cc-proto-1", "cc-json-1"}, "the Read without tool details raised nothing"
    commands = [msgspec.json.decode(v) for v in read_topic(bootstrap, config.monitor.control_topic)]
    terminated = {c["session_id"] for c in commands if c["type"] == "terminate_session"}
    assert terminated == {"cc-proto-1", "cc-json-1"}
    assert all(c["agent_id"].startswith("claude-code:u-") for c in commands)
    [letter] = [msgspec.json.decode(v) for v in read_topic(bootstrap, config.monitor.dlq_topic)]
    assert letter["reason"] == "invalid_protobuf" and letter["format"] == "otlp"
    assert metrics.EVENTS_WITHOUT_TOOL_DETAILS._value.get() - missing_before == 2  # cc-blind-1's Write and Read

"""`agentwatch run` as users run it — a subprocess against the embedded broker.

Covers: native and Claude Code (OTLP JSON) events in, alerts out; and a monitor killed
with SIGKILL mid-stream and restarted loses no event and publishes no duplicate alert.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from agentwatch.config import Config
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.lab.broker import EmbeddedBroker
from agentwatch.lab.topic_io import publish_events, publish_raw
from tests.conftest import write_config
from tests.kafka_helpers import read_json

pytestmark = pytest.mark.broker

AGENTWATCH = [sys.executable, "-m", "agentwatch.cli"]


def topics(config: Config) -> tuple[str, str]:
    native = next(t for t, f in config.monitor.inputs.items() if f == "native")
    otlp = next(t for t, f in config.monitor.inputs.items() if f == "otlp-json")
    return native, otlp


def agentwatch(config_path: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*AGENTWATCH, "--config", str(config_path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def otlp_batch(session: str, command: str, n: int) -> bytes:
    def attr(key: str, value: str) -> dict:  # type: ignore[type-arg]
        return {"key": key, "value": {"stringValue": value}}

    record = {
        "timeUnixNano": str(1_767_225_600_000_000_000 + n * 1_000_000_000),
        "body": {"stringValue": "claude_code.tool_result"},
        "attributes": [
            attr("event.name", "tool_result"),
            attr("session.id", session),
            attr("user.email", "dev@example.com"),
            attr("event.timestamp", f"2026-01-01T00:00:{n:02d}.000Z"),
            attr("tool_name", "Bash"),
            attr("success", "true"),
            {"key": "duration_ms", "value": {"intValue": "12"}},
            attr("tool_parameters", json.dumps({"bash_command": command, "full_command": command})),
        ],
    }
    return json.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": [attr("service.name", "claude-code"), attr("user.account_uuid", "acc-1")]
                    },
                    "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code"}, "logRecords": [record]}],
                }
            ]
        }
    ).encode()


def test_native_and_claude_code_events_come_out_as_alerts(
    broker: EmbeddedBroker, isolated_config: Config, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap_servers
    native, otlp = topics(isolated_config)
    ensure_topics(bootstrap, all_topics(isolated_config.monitor))
    publish_events(
        bootstrap,
        native,
        [
            {
                "event_id": "n1",
                "ts": "2026-01-01T00:00:00Z",
                "session_id": "native-1",
                "agent_id": "coder-1",
                "kind": "tool_call",
                "tool": "Bash",
                "target": "cat ~/.aws/credentials",
            },
        ],
    )
    publish_raw(bootstrap, otlp, [(b"cc-1", otlp_batch("cc-session-1", "cat ~/.ssh/id_rsa", 1))])
    config_path = write_config(isolated_config, tmp_path / "agentwatch.toml")
    proc = agentwatch(config_path, "run", "--bootstrap-servers", bootstrap, "--exit-on-idle", "3", "--quiet")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()
    alerts = read_json(bootstrap, isolated_config.monitor.alerts_topic)
    by_session = {a["session_id"]: a for a in alerts if a["detector"] == "secret_access"}
    assert set(by_session) == {"native-1", "cc-session-1"}
    assert by_session["cc-session-1"]["agent_id"].startswith("claude-code:")
    assert by_session["native-1"]["event_id"] == "n1"
    assert b"2 events" in stderr


def _alert_count(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values()) if tps else 0
    finally:
        consumer.close()


def test_killed_mid_stream_and_restarted_loses_nothing_and_duplicates_nothing(
    broker: EmbeddedBroker, isolated_config: Config, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap_servers
    native, _ = topics(isolated_config)
    ensure_topics(bootstrap, all_topics(isolated_config.monitor))
    sessions = 3000
    events = []
    for i in range(sessions):  # every session's one event raises exactly one secret_access alert
        events.append(
            {
                "event_id": f"k{i}",
                "ts": 1_767_225_600_000 + i,
                "session_id": f"kill-{i}",
                "agent_id": f"coder-{i % 7}",
                "kind": "tool_call",
                "tool": "Read",
                "target": f"/home/dev/project-{i}/.env",
            }
        )
    publish_events(bootstrap, native, events)
    # A small poll batch, so the kill lands between many batches, mid-stream; detection
    # only — this test is about events and alerts, not about 3,000 incident bundles.
    isolated_config.monitor.max_poll_records = 50
    isolated_config.monitor.respond = False
    config_path = write_config(isolated_config, tmp_path / "agentwatch.toml")
    alerts_topic = isolated_config.monitor.alerts_topic

    first = agentwatch(config_path, "run", "--bootstrap-servers", bootstrap, "--quiet")
    deadline = time.monotonic() + 90
    while _alert_count(bootstrap, alerts_topic) < sessions // 4:
        assert first.poll() is None, first.communicate()[1].decode()
        assert time.monotonic() < deadline, "monitor made no progress"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    published_before = _alert_count(bootstrap, alerts_topic)
    assert published_before < sessions, "the kill came too late to test anything"

    second = agentwatch(config_path, "run", "--bootstrap-servers", bootstrap, "--exit-on-idle", "3", "--quiet")
    _, stderr = second.communicate(timeout=180)
    assert second.returncode == 0, stderr.decode()

    alerts = [a for a in read_json(bootstrap, alerts_topic) if a["detector"] == "secret_access"]
    copies = Counter((a["alert_id"], a["revision"]) for a in alerts)
    assert [key for key, n in copies.items() if n > 1] == [], "duplicate alerts published"
    assert {a["session_id"] for a in alerts} == {f"kill-{i}" for i in range(sessions)}, "events lost"

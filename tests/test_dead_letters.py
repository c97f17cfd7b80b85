"""One dead letter per message, however many bad records it holds; delivery never raises.

The amplification this guards against: an OTLP message of 10,000 records lacking
``session.id`` used to become 10,000 dead letters, each carrying the whole original
(7 GB from one 606 KiB message), and a failing ``producer.close`` then crashed the loop.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import msgspec
import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from agentwatch.config import Config
from agentwatch.detect.pipeline import build_pipeline
from agentwatch.errors import DecodeError
from agentwatch.events import dead_letter
from agentwatch.ingest.replay import replay_file
from agentwatch.lab.broker import EmbeddedBroker
from agentwatch.lab.topic_io import publish_raw
from tests.kafka_helpers import event, marker_monitor, read_json

ORIGIN = dead_letter.Origin(topic="t", partition=0, offset=7, timestamp_ms=0)


def otlp_without_session_ids(records: int) -> bytes:
    record = {"attributes": [{"key": "event.name", "value": {"stringValue": "user_prompt"}}]}
    return msgspec.json.encode({"resourceLogs": [{"scopeLogs": [{"logRecords": [record] * records}]}]})


def test_a_message_with_many_bad_records_is_summarised_in_one_letter() -> None:
    errors = [DecodeError("missing_field", f"logRecords[{i}]: no session.id") for i in range(9_000)]
    errors += [DecodeError("invalid_field", f"logRecords[{i}]: bad ts") for i in range(1_000)]
    raw = b"x" * 700_000
    letter = dead_letter.dead_letter(raw, errors, "otlp-json", ORIGIN, accepted=3)
    assert letter.reason == "missing_field"  # the commonest
    assert letter.reasons == {"missing_field": 9_000, "invalid_field": 1_000}
    assert letter.records_rejected == 10_000 and letter.records_accepted == 3
    assert len(letter.details) == dead_letter.MAX_DETAILS
    assert letter.value_truncated and letter.value_bytes == 700_000
    assert len(dead_letter.encode(letter)) < 720_000  # the original once, capped, plus a small summary


def test_replay_writes_one_dead_letter_per_line(tmp_path: Path) -> None:
    events = tmp_path / "batch.jsonl"
    events.write_bytes(otlp_without_session_ids(10_000) + b"\n")
    out = tmp_path / "dlq.jsonl"
    with open(tmp_path / "alerts.jsonl", "wb") as alerts, open(out, "wb") as dlq:
        stats = replay_file(events, alerts, build_pipeline(Config()), "otlp-json", dlq)
    letters = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert stats.dead_letters == 1 and len(letters) == 1
    assert letters[0]["records_rejected"] == 10_000 and letters[0]["reasons"] == {"missing_field": 10_000}
    assert out.stat().st_size < 1_000_000


@pytest.mark.broker
def test_an_otlp_message_of_10000_bad_records_becomes_exactly_one_small_dead_letter(
    broker: EmbeddedBroker, isolated_config: Config
) -> None:
    bootstrap = broker.bootstrap_servers
    topic = next(t for t, f in isolated_config.monitor.inputs.items() if f == "otlp-json")
    raw = otlp_without_session_ids(10_000)
    assert 500_000 < len(raw) < 1_000_000
    publish_raw(bootstrap, topic, [(b"k", raw)])
    stats = marker_monitor(bootstrap, isolated_config).run()
    letters = read_json(bootstrap, isolated_config.monitor.dlq_topic)
    assert stats.dead_letters == 1 and len(letters) == 1
    letter = letters[0]
    assert letter["reason"] == "missing_field" and letter["reasons"] == {"missing_field": 10_000}
    assert letter["records_rejected"] == 10_000 and len(letter["details"]) == dead_letter.MAX_DETAILS
    assert base64.b64decode(letter["value_b64"]) == raw[: dead_letter.MAX_KEPT_BYTES]
    assert len(msgspec.json.encode(letter)) < 1_000_000


class _FailingProducer:
    """Wraps a real producer: sends time out and ``close`` raises, as a wedged one does."""

    def __init__(self, real: KafkaProducer) -> None:
        self.real = real
        self.closed = 0

    def send(self, *args: object, **kwargs: object) -> None:
        raise KafkaTimeoutError("Failed to update metadata after 10.0 secs.")

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None, **kwargs: object) -> None:
        self.closed += 1
        self.real.close(timeout=1)
        raise RuntimeError("producer close failed: I/O thread did not stop")


@pytest.mark.broker
def test_a_producer_whose_close_raises_is_replaced_and_delivery_carries_on(
    broker: EmbeddedBroker, isolated_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap = broker.bootstrap_servers
    topic = next(t for t, f in isolated_config.monitor.inputs.items() if f == "native")
    publish_raw(bootstrap, topic, [(b"s1", msgspec.json.encode(event(1, target="EVIL"))), (b"bad", b"{")])
    monitor = marker_monitor(bootstrap, isolated_config)
    monkeypatch.setattr(monitor, "_backoff", lambda attempt, why: None)
    created: list[object] = []
    real_new = monitor._new_producer
    failures = {"constructor": 1}

    def new_producer() -> KafkaProducer | _FailingProducer:
        if not created:  # the first producer is wedged
            created.append(_FailingProducer(real_new()))
            return created[-1]  # type: ignore[return-value]
        if failures["constructor"]:  # and the first replacement cannot even be built
            failures["constructor"] -= 1
            raise KafkaTimeoutError("NoBrokersAvailable")
        created.append(real_new())
        return created[-1]  # type: ignore[return-value]

    monkeypatch.setattr(monitor, "_new_producer", new_producer)
    started = time.monotonic()
    stats = monitor.run()
    assert stats.events == 1 and stats.dead_letters == 1 and stats.alerts_published == 1
    assert created[0].closed >= 1  # type: ignore[attr-defined]
    assert [a["session_id"] for a in read_json(bootstrap, isolated_config.monitor.alerts_topic)] == ["s1"]
    assert len(read_json(bootstrap, isolated_config.monitor.dlq_topic)) == 1
    assert time.monotonic() - started < 60


@pytest.mark.broker
def test_closing_never_raises(broker: EmbeddedBroker, isolated_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap = broker.bootstrap_servers
    topic = next(t for t, f in isolated_config.monitor.inputs.items() if f == "native")
    publish_raw(bootstrap, topic, [(b"s1", msgspec.json.encode(event(1)))])
    monitor = marker_monitor(bootstrap, isolated_config)
    real_new = monitor._new_producer

    def new_producer() -> KafkaProducer:
        producer = real_new()
        really_close = producer.close

        def close(timeout: float | None = None, **kwargs: object) -> None:
            if producer._closed:  # type: ignore[attr-defined]  # (kafka-python's finaliser closes again)
                return
            really_close(timeout=1)
            raise RuntimeError("close failed")

        producer.close = close  # type: ignore[method-assign]
        return producer

    monkeypatch.setattr(monitor, "_new_producer", new_producer)
    assert monitor.run().events == 1  # returns; nothing raises out of the finally

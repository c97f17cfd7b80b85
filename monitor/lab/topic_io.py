"""Producing to and reading back from topics — for the simulator, demo, bench and tests.

The monitor's own I/O is in :mod:`agentwatch.ingest.kafka_runner`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from agentwatch.ingest.kafka_security import KafkaSecurity, client_kwargs

_encoder = msgspec.json.Encoder()


def publish_events(
    bootstrap_servers: str,
    topic: str,
    events: Iterable[dict[str, Any]],
    *,
    rate: float | None = None,
    on_sent: Callable[[int], None] | None = None,
    stamp: bool = False,
    security: KafkaSecurity | None = None,
) -> int:
    """Produce ``events`` (native dicts) to ``topic`` keyed by ``session_id``.

    ``rate`` paces sends to about that many events per second (``None``: as fast as
    possible). ``stamp`` adds ``attributes["agentwatch.produced_ms"]`` (wall clock),
    which the latency benchmark reads back. Returns the number sent, all acknowledged.
    """
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5, **client_kwargs(security))
    sent = 0
    started = time.perf_counter()
    try:
        for event in events:
            if stamp:
                event = {
                    **event,
                    "attributes": {
                        **(event.get("attributes") or {}),
                        "agentwatch.produced_ms": int(time.time() * 1000),
                    },
                }
            producer.send(topic, key=str(event["session_id"]).encode(), value=_encoder.encode(event))
            sent += 1
            if rate:
                ahead = sent / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if on_sent is not None and sent % 500 == 0:
                on_sent(sent)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    if on_sent is not None:
        on_sent(sent)
    return sent


def publish_raw(
    bootstrap_servers: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    max_request_size: int = 4 * 1024 * 1024,
    security: KafkaSecurity | None = None,
) -> int:
    """Produce raw ``(key, value)`` messages, e.g. OTLP batches or deliberately bad input."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        max_request_size=max_request_size,
        **client_kwargs(security),
    )
    count = 0
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
            count += 1
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return count


def read_topic(
    bootstrap_servers: str, topic: str, timeout_s: float = 10.0, security: KafkaSecurity | None = None
) -> list[bytes]:
    """Every message value currently in ``topic`` (all partitions, no group, no commit)."""
    return [record.value for record in read_records(bootstrap_servers, topic, timeout_s, security)]


def read_records(
    bootstrap_servers: str, topic: str, timeout_s: float = 10.0, security: KafkaSecurity | None = None
) -> list[Any]:
    """Every record currently in ``topic`` (kafka-python ``ConsumerRecord`` s, with timestamps)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, **client_kwargs(security))
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach its end within {timeout_s}s")
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()

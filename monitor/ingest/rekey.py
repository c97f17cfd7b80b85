"""Re-key the Collector's OTLP batches by session: ``agentwatch rekey``.

agentwatch scales out on Kafka partitions: every input topic is keyed by ``session_id`` so a
session's events — from hooks on ``agent.audit`` and from telemetry on ``otlp_logs`` — land on
the same partition number and so in one monitor process (README, "How it scales"). The
OpenTelemetry Collector's Kafka exporter cannot key a message by a *log record* attribute,
which is where Claude Code puts ``session.id``: its keys are a hash of the resource attributes
(``partition_logs_by_resource_attributes``), a trace id, or a value from the request's
metadata, and one message holds a whole batch of many sessions. With the ``groupbyattrs``
processor in deploy/otel-collector.yaml, each message holds one session and its key is stable,
so a session stays on one partition of the Collector's topic — but that key is not the
session id, so the topic is not co-partitioned with ``agent.audit``.

This step closes the gap: it reads the Collector's topic, splits each message into one
message per session (same encoding, resource and scope kept, records in their order) keyed
by ``session.id``, produces them with kafka-python's default partitioner (murmur2, the Java
client's) to the topic the monitor reads, waits for the acks, *then* commits: at-least-once,
and a re-delivered record keeps its deterministic event id. A message it cannot read, or
records with no ``session.id``, are forwarded unchanged with no key, for the monitor to
dead-letter with its reason.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.logs.v1 import logs_pb2

from agentwatch.formats.otlp_json import MAX_BATCH_BYTES
from agentwatch.ingest.kafka_security import KafkaSecurity, client_kwargs
from agentwatch.observe import metrics

log = logging.getLogger(__name__)

#: A session id longer than this is keyed by its SHA-256 (same session, same key, bounded size).
MAX_KEY_BYTES: Final = 256
_SESSION: Final = "session.id"

Message = tuple[bytes | None, bytes]


def split_by_session(raw: bytes) -> list[Message]:
    """One OTLP logs message (protobuf or JSON) as ``(session key, message)`` pairs.

    Records without a string ``session.id`` (on the record, else its resource) share one
    message with no key; a message that cannot be read is returned unchanged, unkeyed.
    """
    if len(raw) > MAX_BATCH_BYTES:
        return [(None, raw)]
    if raw.lstrip()[:1] == b"{":
        return _split_json(raw) or [(None, raw)]
    return _split_proto(raw) or [(None, raw)]


def session_key(session: str | None) -> bytes | None:
    if session is None or session == "":
        return None
    key = session.encode("utf-8", "surrogatepass")
    return key if len(key) <= MAX_KEY_BYTES else hashlib.sha256(key).digest()


def _split_proto(raw: bytes) -> list[Message] | None:
    data = logs_pb2.LogsData()
    try:
        data.ParseFromString(raw)
    except ProtobufDecodeError:
        return None
    out: dict[str | None, logs_pb2.LogsData] = {}
    for resource_logs in data.resource_logs:
        default = _proto_session(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            placed: dict[str | None, logs_pb2.ScopeLogs] = {}
            for rec in scope_logs.log_records:
                session = _proto_session(rec.attributes) or default
                target = placed.get(session)
                if target is None:
                    batch = out.setdefault(session, logs_pb2.LogsData())
                    if batch.resource_logs and batch.resource_logs[-1].resource == resource_logs.resource:
                        into = batch.resource_logs[-1]
                    else:
                        into = batch.resource_logs.add()
                        into.resource.CopyFrom(resource_logs.resource)
                        into.schema_url = resource_logs.schema_url
                    target = placed[session] = into.scope_logs.add()
                    target.scope.CopyFrom(scope_logs.scope)
                    target.schema_url = scope_logs.schema_url
                target.log_records.append(rec)
    if not out:
        return None
    return [(session_key(s), batch.SerializeToString()) for s, batch in out.items()]


def _proto_session(attributes: Iterable[Any]) -> str | None:
    for pair in attributes:
        if pair.key == _SESSION and pair.value.WhichOneof("value") == "string_value":
            return str(pair.value.string_value) or None
    return None


def _split_json(raw: bytes) -> list[Message] | None:
    try:
        data = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    resources = data.get("resourceLogs") if isinstance(data, dict) else None
    if not isinstance(resources, list):
        return None
    out: dict[str | None, list[dict[str, Any]]] = {}
    for resource_logs in resources:
        if not isinstance(resource_logs, dict):
            return None
        resource = resource_logs.get("resource")
        default = _json_session(resource.get("attributes") if isinstance(resource, dict) else None)
        scopes = resource_logs.get("scopeLogs")
        for scope_logs in scopes if isinstance(scopes, list) else ():
            if not isinstance(scope_logs, dict) or not isinstance(scope_logs.get("logRecords"), list):
                return None
            placed: dict[str | None, list[Any]] = {}
            for rec in scope_logs["logRecords"]:
                session = (_json_session(rec.get("attributes")) if isinstance(rec, dict) else None) or default
                records = placed.get(session)
                if records is None:
                    batch = out.setdefault(session, [])
                    if not batch or batch[-1].get("resource") != resource:
                        batch.append({**_without(resource_logs, "scopeLogs"), "scopeLogs": []})
                    records = placed[session] = []
                    batch[-1]["scopeLogs"].append({**_without(scope_logs, "logRecords"), "logRecords": records})
                records.append(rec)
    if not out:
        return None
    return [(session_key(s), msgspec.json.encode({"resourceLogs": batch})) for s, batch in out.items()]


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def _json_session(attributes: Any) -> str | None:
    if not isinstance(attributes, list):
        return None
    for pair in attributes:
        if isinstance(pair, dict) and pair.get("key") == _SESSION:
            value = pair.get("value")
            session = value.get("stringValue") if isinstance(value, dict) else None
            return session if isinstance(session, str) and session else None
    return None


# --- The consume → split → produce → commit loop. ---


@dataclass
class RekeyStats:
    messages_in: int = 0
    messages_out: int = 0
    unkeyed: int = 0  # forwarded with no key: unreadable, or records without session.id


def run_rekey(
    bootstrap_servers: str,
    source: str,
    destination: str,
    *,
    group_id: str = "agentwatch-rekey",
    exit_on_idle_s: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    security: KafkaSecurity | None = None,
) -> RekeyStats:
    """Re-key ``source`` into ``destination`` until stopped (or idle for ``exit_on_idle_s``)."""
    from kafka import KafkaConsumer, KafkaProducer

    secured = client_kwargs(security)

    consumer = KafkaConsumer(
        source,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        **secured,
    )
    # acks from all replicas, and one request in flight: a retried send cannot overtake the next.
    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        retries=10,
        max_in_flight_requests_per_connection=1,
        max_request_size=MAX_BATCH_BYTES + 1024,
        **secured,
    )
    stats = RekeyStats()
    idle_since = time.monotonic()
    try:
        while not should_stop():
            polled = consumer.poll(timeout_ms=500)
            if not polled:
                if not consumer.assignment():  # still joining the group: not idle yet
                    idle_since = time.monotonic()
                elif exit_on_idle_s is not None and time.monotonic() - idle_since >= exit_on_idle_s:
                    break
                continue
            idle_since = time.monotonic()
            sent = []
            read = unkeyed = 0
            for records in polled.values():
                for record in records:
                    read += 1
                    for key, value in split_by_session(record.value or b""):
                        sent.append(producer.send(destination, key=key, value=value))
                        unkeyed += key is None
            producer.flush(timeout=60)
            for future in sent:
                future.get(timeout=60)  # raises if a send failed: the batch is not committed, read again
            consumer.commit()
            stats.messages_in += read
            stats.messages_out += len(sent)
            stats.unkeyed += unkeyed
            metrics.REKEY_MESSAGES.labels("in").inc(read)
            metrics.REKEY_MESSAGES.labels("out").inc(len(sent))
            metrics.REKEY_MESSAGES.labels("unkeyed").inc(unkeyed)
    finally:
        producer.close(timeout=10)
        consumer.close()
    return stats

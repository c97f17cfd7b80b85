"""OTLP/protobuf logs → audit events: what the Collector's Kafka exporter writes by default.

The Kafka exporter's default ``encoding: otlp_proto`` writes each batch as one message:
an ``ExportLogsServiceRequest`` in protobuf (the same bytes as a ``LogsData``: both are
``repeated ResourceLogs resource_logs = 1``). This module parses it with the
``opentelemetry-proto`` package (Google's upb parser, in C) and hands each resource and
log record to the *same* mapping as :mod:`agentwatch.formats.otlp_json`, so both
encodings of one batch give the same events, ids and errors (``tests/test_formats_otlp_proto.py``
checks it on a whole Claude Code session).

Bounds: a message over :data:`~agentwatch.formats.otlp_json.MAX_BATCH_BYTES` is refused
before it is parsed; a record over :data:`~agentwatch.events.audit_event.MAX_MESSAGE_BYTES`
(its encoded size) is rejected alone as ``oversized``; nested values are cut at the JSON
path's depth; upb refuses nesting past its recursion limit. Bytes that are not a
well-formed logs request (truncated, a wrong wire type, invalid UTF-8 in a string field)
are one ``invalid_protobuf`` error for the message: protobuf has no record boundaries to
recover at, so the whole message goes to the dead-letter topic, kept as it came.

>>> from opentelemetry.proto.logs.v1 import logs_pb2
>>> data = logs_pb2.LogsData()
>>> rec = data.resource_logs.add().scope_logs.add().log_records.add()
>>> for key, value in (("event.name", "tool_decision"), ("session.id", "s1"), ("user.id", "u1"),
...                    ("tool_name", "Bash"), ("decision", "reject")):
...     attribute = rec.attributes.add()
...     attribute.key, attribute.value.string_value = key, value
>>> rec.time_unix_nano = 1_767_225_600_000_000_000
>>> ev = decode_otlp_proto(data.SerializeToString(), 0).events[0]
>>> ev.kind, ev.tool, ev.outcome, ev.agent_id, ev.session_id, ev.ts_ms
('permission', 'Bash', 'denied', 'claude-code:u1', 's1', 1767225600000)
>>> decode_otlp_proto(b"\\x0a\\xff", 0).errors[0].reason
'invalid_protobuf'
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any, Final

from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

from agentwatch.errors import DecodeError
from agentwatch.events.audit_event import MAX_MESSAGE_BYTES
from agentwatch.formats import DecodeResult
from agentwatch.formats.otlp_json import (
    _MAX_VALUE_DEPTH,
    _NESTED_MARK,
    MAX_BATCH_BYTES,
    _AnyValue,
    _ArrayValue,
    _Batcher,
    _fail,
    _KeyValue,
    _KeyValueList,
    _PlainRecord,
    _Resolved,
    _Resource,
)

#: ``{`` is protobuf field 15 with wire type 3 (a group), never valid in a logs request:
#: a message starting with it is JSON. (``\n``, whitespace in JSON, is field 1 in protobuf,
#: the first byte of every logs request, so JSON with leading whitespace is tried second.)
_JSON_START: Final = ord("{")


def decode_otlp_proto(raw: bytes, received_ms: int) -> DecodeResult:
    """Decode one OTLP/protobuf logs request into native events and per-record errors.

    Parameters
    ----------
    raw
        The Kafka message value: one ``ExportLogsServiceRequest`` (or ``LogsData``) in protobuf.
    received_ms
        Broker time, used only for a record with no timestamp at all.
    """
    size = len(raw)
    if size > MAX_BATCH_BYTES:
        return _fail("oversized", f"message is {size} bytes (cap {MAX_BATCH_BYTES})")
    request = logs_pb2.LogsData()
    try:
        request.ParseFromString(raw)
    except ProtobufDecodeError as exc:
        return _fail("invalid_protobuf", f"not an OTLP logs request in protobuf: {exc}")
    out = _Batcher(received_ms)
    for ri, resource_logs in enumerate(request.resource_logs):
        resource = (
            _Resource(_resource_pairs(resource_logs.resource.attributes))
            if resource_logs.HasField("resource")
            else None
        )
        try:
            resolved = _Resolved(resource)
        except DecodeError as exc:
            out.reject(exc, f"resourceLogs[{ri}].resource")
            continue
        for si, scope_logs in enumerate(resource_logs.scope_logs):
            for li, rec in enumerate(scope_logs.log_records):
                where = f"resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]"
                record_bytes = rec.ByteSize() if size > MAX_MESSAGE_BYTES else 0
                if record_bytes > MAX_MESSAGE_BYTES:
                    out.records += 1
                    out.reject(
                        DecodeError("oversized", f"record is {record_bytes} bytes (cap {MAX_MESSAGE_BYTES})"), where
                    )
                    continue
                out.record(_record(rec), resolved, where)
    return out.result()


def decode_otlp(raw: bytes, received_ms: int) -> DecodeResult:
    """Either encoding the Kafka exporter writes: JSON (``{…``) or protobuf, told by the first byte."""
    from agentwatch.formats.otlp_json import decode_otlp_json

    if raw[:1] and raw[0] == _JSON_START:
        return decode_otlp_json(raw, received_ms)
    result = decode_otlp_proto(raw, received_ms)
    if result.errors and result.errors[0].reason == "invalid_protobuf" and raw.lstrip()[:1] == b"{":
        return decode_otlp_json(raw, received_ms)
    return result


def _record(rec: logs_pb2.LogRecord) -> _PlainRecord:
    """One protobuf record as plain values, as the JSON path's ``_flatten`` makes them: the
    mapping after this is shared. (Protobuf numbers are numbers already, so nothing here can
    be malformed the way an OTLP/JSON ``intValue`` string can.)"""
    return _PlainRecord(
        attributes=_plain_pairs(rec.attributes, 0),
        body=_plain(rec.body, 0),
        timeUnixNano=rec.time_unix_nano or None,
        observedTimeUnixNano=rec.observed_time_unix_nano or None,
        eventName=rec.event_name or None,
        # OTLP/JSON writes trace and span ids as hex, not base64: the same here.
        traceId=rec.trace_id.hex() or None,
        spanId=rec.span_id.hex() or None,
    )


def _plain_pairs(pairs: Iterable[common_pb2.KeyValue], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        value = pair.value  # unset: an empty AnyValue, None below, as JSON's missing "value"
        if value.WhichOneof("value") == "string_value":  # most attributes: the short path
            out[pair.key] = value.string_value
        else:
            out[pair.key] = _plain(value, depth)
    return out


def _plain(value: common_pb2.AnyValue, depth: int) -> Any:
    """One AnyValue as a plain value, as ``otlp_json._to_python`` makes it (same depth cap)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return value.double_value
    if kind == "array_value":
        if depth >= _MAX_VALUE_DEPTH:
            return _NESTED_MARK
        return [_plain(item, depth + 1) for item in value.array_value.values]
    if kind == "kvlist_value":
        if depth >= _MAX_VALUE_DEPTH:
            return _NESTED_MARK
        return _plain_pairs(value.kvlist_value.values, depth + 1)
    if kind == "bytes_value":
        # OTLP/JSON writes bytes as base64 text: the same here.
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def _resource_pairs(pairs: Iterable[common_pb2.KeyValue]) -> list[_KeyValue]:
    """A resource's attributes in the JSON path's shape (``_Resolved`` reads them; few per batch)."""
    return [_KeyValue(pair.key, _any_value(pair.value, 0)) for pair in pairs]


def _any_value(value: common_pb2.AnyValue, depth: int) -> _AnyValue:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return _AnyValue(stringValue=value.string_value)
    if kind == "int_value":
        return _AnyValue(intValue=value.int_value)
    if kind == "bool_value":
        return _AnyValue(boolValue=value.bool_value)
    if kind == "double_value":
        return _AnyValue(doubleValue=value.double_value)
    if kind == "array_value":
        items = [] if depth >= _MAX_VALUE_DEPTH else [_any_value(item, depth + 1) for item in value.array_value.values]
        return _AnyValue(arrayValue=_ArrayValue(items))
    if kind == "kvlist_value":
        pairs = (
            []
            if depth >= _MAX_VALUE_DEPTH
            else [_KeyValue(pair.key, _any_value(pair.value, depth + 1)) for pair in value.kvlist_value.values]
        )
        return _AnyValue(kvlistValue=_KeyValueList(pairs))
    if kind == "bytes_value":
        return _AnyValue(bytesValue=base64.b64encode(value.bytes_value).decode("ascii"))
    return _AnyValue()

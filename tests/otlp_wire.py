"""What the OpenTelemetry Collector's Kafka exporter puts on the wire, built without a Collector.

No Collector binary can be installed here (no PyPI, npm or Debian package ships otelcol-contrib,
and Docker images cannot be pulled), so the tests build the exporter's messages the way it
does (exporter/kafkaexporter in opentelemetry-collector-contrib):

- ``otlp_proto`` (its default): one ``ExportLogsServiceRequest`` serialised in protobuf
  per message (pdata's ``plog.ProtoMarshaler`` writes exactly that message).
- ``otlp_json``: the same request in OTLP/JSON (proto3 JSON names, 64-bit integers as
  strings, trace and span ids as hex, not base64).
- ``partition_logs_by_resource_attributes: true``: one message per ``ResourceLogs``, its key
  a hash of the sorted resource attributes (the exporter's hash is xxhash-based; its bytes
  are opaque to agentwatch, so a SHA-256 of the same sorted attributes stands in for it).
- the ``groupbyattrs`` processor with ``keys: [session.id]`` (deploy/otel-collector.yaml) moves
  ``session.id`` from each log record to a resource of its own, copied from the record's
  resource, records of one session grouped under it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest


def to_proto(request: dict[str, Any]) -> bytes:
    """An OTLP/JSON logs request (as a dict) as the exporter's ``otlp_proto`` bytes."""
    shaped = copy.deepcopy(request)
    for resource_logs in shaped.get("resourceLogs", []):
        for scope_logs in resource_logs.get("scopeLogs", []):
            for record in scope_logs.get("logRecords", []):
                for key in ("traceId", "spanId"):  # hex in OTLP/JSON, base64 in proto3 JSON
                    if record.get(key):
                        record[key] = base64.b64encode(bytes.fromhex(record[key])).decode()
    message = ExportLogsServiceRequest()
    json_format.ParseDict(shaped, message)
    return message.SerializeToString()


def to_json(request: dict[str, Any]) -> bytes:
    """The exporter's ``otlp_json`` bytes: compact, one request per message."""
    return json.dumps(request, separators=(",", ":")).encode()


def group_by_session(request: dict[str, Any]) -> dict[str, Any]:
    """What ``groupbyattrs`` with ``keys: [session.id]`` makes of a request."""
    out: list[dict[str, Any]] = []
    for resource_logs in request.get("resourceLogs", []):
        base = resource_logs.get("resource", {}).get("attributes", [])
        groups: dict[str | None, dict[str, Any]] = {}
        for scope_logs in resource_logs.get("scopeLogs", []):
            for record in scope_logs.get("logRecords", []):
                record = copy.deepcopy(record)
                found = [a for a in record.get("attributes", []) if a["key"] == "session.id"]
                record["attributes"] = [a for a in record.get("attributes", []) if a["key"] != "session.id"]
                session = found[0]["value"]["stringValue"] if found else None
                group = groups.get(session)
                if group is None:
                    attributes = [*base, *found]
                    group = groups[session] = {"resource": {"attributes": attributes}, "scopeLogs": []}
                scopes = group["scopeLogs"]
                scope = scope_logs.get("scope", {})
                if not scopes or scopes[-1].get("scope", {}) != scope:
                    scopes.append({"scope": scope, "logRecords": []})
                scopes[-1]["logRecords"].append(record)
        out.extend(groups.values())
    return {"resourceLogs": out}


def resource_key(resource_logs: dict[str, Any]) -> bytes:
    attributes = sorted(
        (a["key"], json.dumps(a.get("value"), sort_keys=True))
        for a in resource_logs.get("resource", {}).get("attributes", [])
    )
    return hashlib.sha256(json.dumps(attributes).encode()).digest()[:16]


def exporter_messages(
    request: dict[str, Any], encoding: str = "otlp_proto", *, partition_by_resource: bool = False
) -> list[tuple[bytes | None, bytes]]:
    """The ``(key, value)`` messages the exporter produces for one batch."""
    encode = to_proto if encoding == "otlp_proto" else to_json
    if not partition_by_resource:
        return [(None, encode(request))]
    return [(resource_key(rl), encode({"resourceLogs": [rl]})) for rl in request.get("resourceLogs", [])]

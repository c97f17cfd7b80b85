"""OTLP decode cost: the Collector Kafka exporter's two encodings, and the rekey split.

    python bench/otlp_decode.py [--sessions 1,64] [--repeat 5] [--json]

Builds Kafka messages as the exporter writes them — one ``ExportLogsServiceRequest`` per
message, ``otlp_proto`` (protobuf, its default) or ``otlp_json`` — from the recorded Claude
Code session (tests/fixtures/otlp/claude_code_session.json, 8 records), repeated under
``N`` session ids in one message (the Collector batches many sessions together; 64 × 8 =
512 records is the shipped config's ``send_batch_size``). For each size and encoding it
times, best of ``--repeat`` runs (one core, this process):

- ``decode``: the monitor's decoder (``otlp-json`` / ``otlp-proto``), bytes → native events;
- ``parse only``: the envelope alone — msgspec's typed JSON decode / upb's ``ParseFromString``
  — to show how much of ``decode`` is the shared mapping;
- ``rekey split``: ``agentwatch rekey``'s split of one message into per-session messages.

Figures are records per second and microseconds per message.
"""

from __future__ import annotations

import argparse
import base64
import copy
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1 import logs_pb2

from agentwatch.formats.otlp_json import _batch_decoder, decode_otlp_json
from agentwatch.formats.otlp_proto import decode_otlp_proto
from agentwatch.ingest.rekey import split_by_session

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "otlp" / "claude_code_session.json"


def request(sessions: int) -> dict[str, Any]:
    base = json.loads(FIXTURE.read_text())
    out: list[dict[str, Any]] = []
    for n in range(sessions):
        copy_ = copy.deepcopy(base["resourceLogs"])
        for resource_logs in copy_:
            for scope_logs in resource_logs["scopeLogs"]:
                for record in scope_logs["logRecords"]:
                    for pair in record["attributes"]:
                        if pair["key"] == "session.id":
                            pair["value"] = {"stringValue": f"{pair['value']['stringValue']}-{n}"}
        out.extend(copy_)
    return {"resourceLogs": out}


def to_proto(req: dict[str, Any]) -> bytes:
    shaped = copy.deepcopy(req)
    for resource_logs in shaped["resourceLogs"]:
        for scope_logs in resource_logs["scopeLogs"]:
            for record in scope_logs["logRecords"]:
                for key in ("traceId", "spanId"):
                    if record.get(key):
                        record[key] = base64.b64encode(bytes.fromhex(record[key])).decode()
    message = ExportLogsServiceRequest()
    json_format.ParseDict(shaped, message)
    return message.SerializeToString()


def best(fn: Callable[[], object], repeat: int, min_s: float = 0.2) -> float:
    """Seconds per call, best of ``repeat`` runs of at least ``min_s`` each."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - start >= min_s / 4:
            break
        calls *= 2
    results = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        results.append((time.perf_counter() - start) / calls)
    return min(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="1,64")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for sessions in (int(s) for s in args.sessions.split(",")):
        req = request(sessions)
        raw_json = json.dumps(req, separators=(",", ":")).encode()
        raw_proto = to_proto(req)
        records = len(decode_otlp_json(raw_json, 0).events)
        assert records == len(decode_otlp_proto(raw_proto, 0).events) > 0

        cases: list[tuple[str, str, bytes, Callable[[bytes], object]]] = [
            ("otlp_json", "decode", raw_json, lambda raw: decode_otlp_json(raw, 0)),
            ("otlp_proto", "decode", raw_proto, lambda raw: decode_otlp_proto(raw, 0)),
            ("otlp_json", "parse only", raw_json, _batch_decoder.decode),
            ("otlp_proto", "parse only", raw_proto, lambda raw: logs_pb2.LogsData().ParseFromString(raw)),
            ("otlp_json", "rekey split", raw_json, split_by_session),
            ("otlp_proto", "rekey split", raw_proto, split_by_session),
        ]
        for encoding, what, raw, fn in cases:
            seconds = best(functools.partial(fn, raw), args.repeat)
            rows.append(
                {
                    "sessions": sessions,
                    "records": records,
                    "encoding": encoding,
                    "what": what,
                    "bytes": len(raw),
                    "us_per_message": round(seconds * 1e6, 1),
                    "records_per_s": round(records / seconds),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'records':>7} {'encoding':<10} {'what':<11} {'bytes':>8} {'µs/message':>11} {'records/s':>10}")
    for row in rows:
        print(
            f"{row['records']:>7} {row['encoding']:<10} {row['what']:<11} {row['bytes']:>8} "
            f"{row['us_per_message']:>11,.1f} {row['records_per_s']:>10,}"
        )


if __name__ == "__main__":
    main()

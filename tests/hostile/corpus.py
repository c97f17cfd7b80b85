"""A generated corpus of hostile messages, in both Kafka input formats, each with what it must become.

Every message is labelled with its category and the outcome the monitor owes it:
``events`` (processed, no dead letter), ``dead:<reason>`` (exactly one dead letter with
that reason, no event), or ``mixed`` (its good records processed and one dead letter).
The point of each category is in its name; the generators are deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

T0 = 1_767_225_600_000
_enc = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Message:
    category: str
    fmt: str  # "native" or "otlp-json"
    key: bytes | None
    value: bytes | None  # None: a tombstone
    expect: str  # "events", "mixed" or "dead:<reason>"


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def _native(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"h{i}",
        "ts": T0 + i,
        "session_id": f"hs{i % 64}",
        "agent_id": "hostile-agent",
        "kind": "tool_call",
        "tool": "Bash",
        "target": f"ls {i}",
        **extra,
    }


def _enc_native(i: int, **extra: Any) -> bytes:
    return _enc.encode(_native(i, **extra))


def _kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def _record(
    i: int, *, session: bool = True, name: str = "api_request", extra: list[Any] | None = None, body: Any = None
) -> dict[str, Any]:
    attributes = [
        _kv("event.name", {"stringValue": name}),
        _kv("event.timestamp", {"stringValue": f"2026-01-01T00:{(i // 60) % 60:02d}:{i % 60:02d}.000Z"}),
        _kv("event.sequence", {"intValue": str(i)}),
        _kv("user.id", {"stringValue": "u-hostile"}),
        _kv("model", {"stringValue": "m"}),
    ]
    if session:
        attributes.append(_kv("session.id", {"stringValue": f"os{i % 32}"}))
    record: dict[str, Any] = {"attributes": attributes + (extra or [])}
    if body is not None:
        record["body"] = body
    return record


def _batch(*records: dict[str, Any]) -> bytes:
    return _enc.encode(
        {
            "resourceLogs": [
                {
                    "resource": {"attributes": [_kv("service.name", {"stringValue": "cc"})]},
                    "scopeLogs": [{"logRecords": list(records)}],
                }
            ]
        }
    )


def _deep_kvlist(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "bottom"}
    for _ in range(depth):
        value = {"kvlistValue": {"values": [_kv("k", value)]}}
    return value


Small = Callable[[int], tuple[bytes | None, bytes | None]]

#: (category, format, expected outcome, generator of (key, value) for copy i)
SMALL: list[tuple[str, str, str, Small]] = [
    # native --------------------------------------------------------------------------
    ("native_args_nested_600", "native", "events", lambda i: (b"k", _enc_native(i, args={"x": nested(600)}))),
    ("native_unknown_field_nested_900", "native", "events", lambda i: (b"k", _enc_native(i, padding=nested(900)))),
    (
        "native_args_nested_1500",
        "native",
        "dead:invalid_json",
        lambda i: (b"k", _enc_native(i)[:-1] + b', "args": {"x": ' + b"[" * 1500 + b"]" * 1500 + b"}}"),
    ),
    (
        "native_huge_integers",
        "native",
        "events",
        lambda i: (b"k", _enc_native(i, bytes_out=10**400, tokens_in=2**64, tokens_out=-1, duration_ms=2**53)),
    ),
    (
        "native_huge_float_literals",
        "native",
        "events",
        lambda i: (b"k", _enc_native(i)[:-1] + b', "cost_usd": 1e400, "attributes": {"x": -1e999, "y": 1e308}}'),
    ),
    (
        "native_invalid_utf8",
        "native",
        "dead:invalid_utf8",
        lambda i: (b"k", _enc_native(i).replace(b'"ls ', b'"ls \xff\xfe ')),
    ),
    (
        "native_control_characters",
        "native",
        "events",
        lambda i: (
            b"k",
            _enc_native(
                i,
                target="rm -rf /\u0000\u0007\u001b[31m\u202e\r\nFAKE log line",
                tool="Bash\u0000",
                attributes={"\u0000key": "\u001b]0;title\u0007"},
            ),
        ),
    ),
    ("native_nul_bytes", "native", "dead:invalid_json", lambda i: (b"k", b"\x00" * 64)),
    ("native_kind_wrong_type", "native", "dead:invalid_field", lambda i: (b"k", _enc_native(i, kind=5))),
    (
        "native_numbers_wrong_type",
        "native",
        "events",
        lambda i: (b"k", _enc_native(i, bytes_out="lots", tokens_in=[1], cost_usd={"a": 1}, duration_ms=True)),
    ),
    ("native_args_not_an_object", "native", "dead:invalid_field", lambda i: (b"k", _enc_native(i, args=[1, 2]))),
    (
        "native_top_level_not_an_object",
        "native",
        "dead:invalid_field",
        lambda i: (b"k", [b"[1, 2, 3]", b"null", b"42", b'"text"'][i % 4]),
    ),
    ("native_empty", "native", "dead:invalid_json", lambda i: (b"k", b"")),
    ("native_tombstone", "native", "dead:invalid_json", lambda i: (f"t{i}".encode(), None)),
    (
        "native_lone_surrogate",
        "native",
        "dead:invalid_json",
        lambda i: (b"k", _enc_native(i).replace(b'"ls ', b'"ls \\ud800 ')),
    ),
    ("native_truncated_json", "native", "dead:invalid_json", lambda i: (b"k", _enc_native(i)[:40])),
    (
        "native_missing_session",
        "native",
        "dead:missing_field",
        lambda i: (b"k", _enc.encode({k: v for k, v in _native(i).items() if k != "session_id"})),
    ),
    (
        "native_many_unknown_keys",
        "native",
        "events",
        lambda i: (b"k", _enc.encode({**_native(i), **{f"pad{j}": "x" * 8 for j in range(500)}})),
    ),
    ("native_epoch_seconds", "native", "dead:invalid_field", lambda i: (b"k", _enc_native(i, ts=1_767_225_600))),
    # otlp-json -----------------------------------------------------------------------
    (
        "otlp_no_session_ids",
        "otlp-json",
        "dead:missing_field",
        lambda i: (b"k", _batch(*(_record(i * 3 + j, session=False) for j in range(3)))),
    ),
    (
        "otlp_good_and_bad_records",
        "otlp-json",
        "mixed",
        lambda i: (b"k", _batch(_record(i), _record(i + 1, session=False), _record(i + 2))),
    ),
    (
        "otlp_huge_integers",
        "otlp-json",
        "events",
        lambda i: (
            b"k",
            _batch(
                _record(
                    i,
                    extra=[
                        _kv("input_tokens", {"intValue": str(10**400)}),
                        _kv("output_tokens", {"intValue": str(2**64)}),
                        _kv("cache_read_tokens", {"intValue": "9" * 5000}),
                        _kv("cost_usd", {"doubleValue": 1e308}),
                    ],
                )
            ),
        ),
    ),
    (
        "otlp_malformed_body_number",
        "otlp-json",
        "events",
        lambda i: (b"k", _batch(_record(i, body={"intValue": "abc"}), _record(i + 1, body={"doubleValue": "x"}))),
    ),
    (
        "otlp_tool_input_nested_900",
        "otlp-json",
        "events",
        lambda i: (
            b"k",
            _batch(
                _record(
                    i,
                    name="tool_result",
                    extra=[
                        _kv("tool_name", {"stringValue": "Bash"}),
                        _kv("tool_input", {"stringValue": json.dumps({"command": "ls", "deep": nested(900)})}),
                    ],
                )
            ),
        ),
    ),
    (
        "otlp_kvlist_nested_200",
        "otlp-json",
        "events",
        lambda i: (b"k", _batch(_record(i, extra=[_kv("deep", _deep_kvlist(200))]))),
    ),
    (
        "otlp_invalid_utf8",
        "otlp-json",
        "dead:invalid_utf8",
        lambda i: (b"k", _batch(_record(i)).replace(b'"u-hostile"', b'"u-\xff\xfe"')),
    ),
    (
        "otlp_control_characters",
        "otlp-json",
        "events",
        lambda i: (b"k", _batch(_record(i, extra=[_kv("prompt", {"stringValue": "\u0000\u001b[2J\u202eignore"})]))),
    ),
    (
        "otlp_traces_not_logs",
        "otlp-json",
        "dead:invalid_field",
        lambda i: (b"k", b'{"resourceSpans": [{"scopeSpans": []}]}'),
    ),
    ("otlp_empty_object", "otlp-json", "dead:empty_batch", lambda i: (b"k", b"{}")),
    ("otlp_wrong_shape", "otlp-json", "dead:invalid_field", lambda i: (b"k", b'{"resourceLogs": "nope"}')),
    ("otlp_tombstone", "otlp-json", "dead:invalid_json", lambda i: (f"t{i}".encode(), None)),
]


def big_messages() -> Iterator[Message]:
    """Few, large: 10,000-record batches, messages over 1 MiB, a megabyte of tiny records."""
    bad_10k = _batch(*(_record(i, session=False) for i in range(10_000)))
    for _ in range(3):
        yield Message("otlp_10k_records_without_session", "otlp-json", b"big", bad_10k, "dead:missing_field")
    yield Message("otlp_10k_good_records", "otlp-json", b"big", _batch(*(_record(i) for i in range(10_000))), "events")
    padded = [_record(i, extra=[_kv("pad", {"stringValue": "p" * 600})]) for i in range(2_000)]
    yield Message("otlp_batch_over_1_mib", "otlp-json", b"big", _batch(*padded), "events")
    tiny = b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [' + b",".join([b"{}"] * 300_000) + b"]}]}]}"
    yield Message("otlp_300k_empty_records", "otlp-json", b"big", tiny, "dead:missing_field")
    for i in range(3):
        yield Message("native_over_1_mib", "native", b"big", _enc_native(i, target="x" * 1_100_000), "dead:oversized")


def corpus(copies: int) -> list[Message]:
    """``copies`` of every small category, round-robin, then the big ones."""
    out: list[Message] = []
    for i in range(copies):
        for category, fmt, expect, make in SMALL:
            key, value = make(i)
            out.append(Message(category, fmt, key, value, expect))
    out.extend(big_messages())
    return out

"""The native audit event: the one shape every input format is mapped onto.

Every field was written by an agent that may be compromised, so validation is strict
where a wrong value would mislead detection (ids, ``kind``, ``ts``, numbers) and
capping is lenient where dropping the event would let an attacker evade detection by
padding it (free text is truncated, never rejected, and the event says so).

>>> ev = parse_native(b'{"event_id": "e1", "ts": 1767225600000, "session_id": "s1",'
...                   b' "agent_id": "coder", "kind": "tool_call", "tool": "Bash",'
...                   b' "target": "ls", "colour": "blue"}')
>>> ev.tool, ev.target, ev.attributes
('Bash', 'ls', {'colour': 'blue'})
>>> rfc3339_ms(ev.ts_ms)
'2026-01-01T00:00:00.000Z'
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

import msgspec

from agentwatch.errors import DecodeError

#: Kinds the monitor knows; unknown kinds are accepted (kept as given) so a newer
#: runtime does not fill the dead-letter topic, but they are capped like any id.
KNOWN_KINDS: Final = frozenset(
    {
        "tool_call",
        "tool_result",
        "model_call",
        "prompt",
        "permission",
        "session_start",
        "session_end",
        "memory_write",
        "message",
    }
)
OUTCOMES: Final = frozenset({"ok", "error", "denied"})

MAX_ID_CHARS: Final = 256
MAX_TEXT_CHARS: Final = 8192
MAX_ARGS_BYTES: Final = 16384
MAX_ATTRIBUTES_BYTES: Final = 16384
MAX_MESSAGE_BYTES: Final = 1_048_576
TRUNCATION_MARK: Final = "…[truncated]"

# Epoch-milliseconds sanity window: 2000-01-01 .. 2100-01-01. A value below it is
# almost always epoch *seconds*, which would silently shift a session by 50 years.
_MIN_TS_MS: Final = 946_684_800_000
_MAX_TS_MS: Final = 4_102_444_800_000

_encoder = msgspec.json.Encoder()


class AuditEvent(msgspec.Struct, kw_only=True, gc=False):
    """One thing an agent did, as the monitor sees it (validated and capped)."""

    event_id: str
    ts_ms: int
    session_id: str
    agent_id: str
    kind: str
    principal: str | None = None
    tool: str | None = None
    target: str | None = None
    args: dict[str, Any] | None = None
    outcome: str | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    duration_ms: float | None = None
    attributes: dict[str, Any] | None = None

    def to_native(self) -> dict[str, Any]:
        """The public JSON shape (``ts`` as RFC 3339), for files and evidence."""
        out = msgspec.structs.asdict(self)
        out["ts"] = rfc3339_ms(out.pop("ts_ms"))
        return {k: v for k, v in out.items() if v is not None}

    def args_text(self) -> str:
        """``args`` as compact JSON text (empty when absent), for pattern rules."""
        return _encoder.encode(self.args).decode() if self.args else ""


Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]
OptionalId = Annotated[str, msgspec.Meta(max_length=MAX_ID_CHARS)] | None
Count = Annotated[int, msgspec.Meta(ge=0)] | None
Amount = Annotated[float, msgspec.Meta(ge=0)] | None


class _WireEvent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    """The native wire format, decoded and range-checked in one pass (msgspec, in C)."""

    event_id: Id
    ts: dt.datetime | int
    session_id: Id
    agent_id: Id
    kind: Id
    principal: OptionalId = None
    tool: str | None = None
    target: str | None = None
    args: dict[str, Any] | None = None
    outcome: Literal["ok", "error", "denied"] | None = None
    bytes_in: Count = None
    bytes_out: Count = None
    tokens_in: Count = None
    tokens_out: Count = None
    cost_usd: Amount = None
    duration_ms: Amount = None
    attributes: dict[str, Any] | None = None


_WIRE_FIELDS: Final = frozenset(_WireEvent.__struct_fields__)
_wire_decoder = msgspec.json.Decoder(_WireEvent)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])


def parse_native(raw: bytes) -> AuditEvent:
    """Decode and validate one native JSON event; raise :class:`DecodeError` if bad."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise DecodeError("oversized", f"message is {len(raw)} bytes (cap {MAX_MESSAGE_BYTES})")
    try:
        wire = _wire_decoder.decode(raw)
        extra: dict[str, Any] | None = None
    except msgspec.ValidationError as exc:
        if "unknown field" not in str(exc):
            raise DecodeError(validation_reason(exc), str(exc)) from None
        wire, extra = _decode_with_unknown_fields(raw)
    except msgspec.DecodeError as exc:
        raise DecodeError(_json_reason(raw), str(exc)) from None
    except UnicodeDecodeError as exc:  # invalid UTF-8 inside a string literal
        raise DecodeError("invalid_utf8", str(exc)) from None
    except RecursionError:
        raise DecodeError("invalid_json", "nesting too deep") from None
    return from_wire(wire, extra, len(raw))


def from_mapping(obj: dict[str, Any]) -> AuditEvent:
    """Validate a native event given as a dict (unknown keys go to ``attributes``)."""
    known = {k: v for k, v in obj.items() if k in _WIRE_FIELDS}
    extra = {k: v for k, v in obj.items() if k not in _WIRE_FIELDS} or None
    try:
        wire = msgspec.convert(known, _WireEvent, strict=False)
    except msgspec.ValidationError as exc:
        raise DecodeError(validation_reason(exc), str(exc)) from None
    return from_wire(wire, extra)


def _decode_with_unknown_fields(raw: bytes) -> tuple[_WireEvent, dict[str, Any]]:
    try:
        obj = _dict_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise DecodeError(_json_reason(raw), str(exc)) from None
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid_utf8", str(exc)) from None
    except RecursionError:
        raise DecodeError("invalid_json", "nesting too deep") from None
    known = {k: v for k, v in obj.items() if k in _WIRE_FIELDS}
    extra = {k: v for k, v in obj.items() if k not in _WIRE_FIELDS}
    try:
        wire = msgspec.convert(known, _WireEvent)
    except msgspec.ValidationError as exc:
        raise DecodeError(validation_reason(exc), str(exc)) from None
    return wire, extra


def validation_reason(exc: msgspec.ValidationError) -> str:
    """``missing_field`` or ``invalid_field``, from msgspec's message."""
    text = str(exc)
    if "missing required field" in text or "length >= 1" in text:
        return "missing_field"
    return "invalid_field"


def _json_reason(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    return "invalid_json"


def from_wire(wire: _WireEvent, extra: dict[str, Any] | None = None, raw_len: int | None = None) -> AuditEvent:
    """Apply the caps and conversions the type system cannot express.

    ``raw_len`` is the size of the message the event was decoded from: a message no
    larger than the smallest cap cannot exceed any cap, so the checks are skipped.
    """
    tool, target, args, attributes = wire.tool, wire.target, wire.args, wire.attributes
    if extra:
        attributes = {**attributes, **extra} if attributes else extra
    if raw_len is None or raw_len > MAX_ID_CHARS:
        truncated: list[str] = []
        tool = _cap_text(tool, MAX_ID_CHARS, "tool", truncated)
        target = _cap_text(target, MAX_TEXT_CHARS, "target", truncated)
        if raw_len is None or raw_len > MAX_ARGS_BYTES:
            args = _cap_object(args, MAX_ARGS_BYTES, "args", truncated)
            attributes = _cap_object(attributes, MAX_ATTRIBUTES_BYTES, "attributes", truncated)
        if truncated:
            attributes = dict(attributes or {})
            earlier = attributes.get("agentwatch.truncated")
            if isinstance(earlier, list):
                truncated = [*earlier, *(name for name in truncated if name not in earlier)]
            attributes["agentwatch.truncated"] = truncated
    return AuditEvent(
        event_id=wire.event_id,
        ts_ms=to_epoch_ms(wire.ts),
        session_id=wire.session_id,
        agent_id=wire.agent_id,
        kind=wire.kind,
        principal=wire.principal,
        tool=tool,
        target=target,
        args=args,
        outcome=wire.outcome,
        bytes_in=wire.bytes_in,
        bytes_out=wire.bytes_out,
        tokens_in=wire.tokens_in,
        tokens_out=wire.tokens_out,
        cost_usd=wire.cost_usd,
        duration_ms=wire.duration_ms,
        attributes=attributes or None,
    )


def to_epoch_ms(ts: dt.datetime | int) -> int:
    """RFC 3339 (naive means UTC) or epoch milliseconds → epoch milliseconds."""
    if isinstance(ts, dt.datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=dt.UTC)
        ms = int(ts.timestamp() * 1000)
    else:
        ms = ts
    if not _MIN_TS_MS <= ms < _MAX_TS_MS:
        hint = " (epoch seconds? `ts` takes milliseconds)" if 0 < ms < _MIN_TS_MS // 1000 * 10 else ""
        raise DecodeError("invalid_field", f"`ts` {ms} outside 2000..2100{hint}")
    return ms


def rfc3339_ms(ts_ms: int) -> str:
    """Epoch milliseconds → ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    stamp = dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def _cap_text(value: str | None, cap: int, name: str, truncated: list[str]) -> str | None:
    if value is None or len(value) <= cap:
        return value
    truncated.append(name)
    return value[:cap] + TRUNCATION_MARK


def _cap_object(
    value: dict[str, Any] | None, cap: int, name: str, truncated: list[str]
) -> dict[str, Any] | None:
    """Keep an object under ``cap`` encoded bytes; past it, keep a truncated text copy."""
    if not value:
        return value
    encoded = _encoder.encode(value)
    if len(encoded) <= cap:
        return value
    truncated.append(name)
    head = encoded[:cap].decode("utf-8", errors="ignore")
    return {"agentwatch.truncated_json": head + TRUNCATION_MARK}

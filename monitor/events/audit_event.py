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
import re
from typing import Annotated, Any, Final, Literal, overload

import msgspec

from agentwatch.errors import DecodeError
from agentwatch.observe import metrics

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
#: Deepest container nesting kept inside ``args``/``attributes`` values; a container deeper
#: than this is replaced by :data:`NESTED_MARK` (far below what pickle, msgspec, Jinja or
#: any JSON encoder chokes on, far above what a real tool input needs).
MAX_NESTING: Final = 32
NESTED_MARK: Final = "…[nested]"
#: Largest count or amount accepted (2^53 - 1: exact as a float and as a JSON number anywhere).
MAX_SAFE_INT: Final = 2**53 - 1

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
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)] | None
Amount = Annotated[float, msgspec.Meta(ge=0, le=MAX_SAFE_INT)] | None
#: The optional numbers: a bad one (wrong type, negative, beyond 2^53, 10^400, NaN) is
#: dropped and named in ``attributes["agentwatch.invalid"]``; the event is kept, since
#: rejecting it would let an agent hide an action behind one bad number.
NUMERIC_FIELDS: Final[dict[str, Any]] = {
    "bytes_in": Count,
    "bytes_out": Count,
    "tokens_in": Count,
    "tokens_out": Count,
    "cost_usd": Amount,
    "duration_ms": Amount,
}
INVALID_KEY: Final = "agentwatch.invalid"
TRUNCATED_KEY: Final = "agentwatch.truncated"


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


def _float_literal(text: str) -> float:
    """A JSON float inside ``args``/``attributes``; out of range (``1e400``) becomes ±inf, not a rejection."""
    return float(text)


_WIRE_FIELDS: Final = frozenset(_WireEvent.__struct_fields__)
_wire_decoder = msgspec.json.Decoder(_WireEvent, float_hook=_float_literal)
_fields_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_any_decoder = msgspec.json.Decoder(float_hook=_float_literal)
_field_decoders: Final = {name: msgspec.json.Decoder(kind) for name, kind in NUMERIC_FIELDS.items()}
_ERROR_PATH = re.compile(r"at `\$\.([A-Za-z_]+)`$")


def parse_native(raw: bytes) -> AuditEvent:
    """Decode and validate one native JSON event; raise :class:`DecodeError` if bad."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise DecodeError("oversized", f"message is {len(raw)} bytes (cap {MAX_MESSAGE_BYTES})")
    extra: dict[str, Any] | None = None
    invalid: list[str] | None = None
    try:
        wire = _wire_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        if "unknown field" not in str(exc) and not _at_numeric_field(exc):
            raise DecodeError(validation_reason(exc), str(exc)) from None
        wire, extra, invalid = _decode_field_by_field(raw)
    except msgspec.DecodeError as exc:
        raise DecodeError(_json_reason(raw), str(exc)) from None
    except UnicodeDecodeError as exc:  # invalid UTF-8 inside a string literal
        raise DecodeError("invalid_utf8", str(exc)) from None
    except RecursionError:
        raise DecodeError("invalid_json", "nesting too deep") from None
    # A nesting deeper than the cap needs more brackets than that: most events skip the walk.
    may_nest = raw.count(b"[") + raw.count(b"{") > MAX_NESTING
    return from_wire(wire, extra, len(raw), invalid=invalid, may_nest=may_nest)


def from_mapping(obj: dict[str, Any]) -> AuditEvent:
    """Validate a native event given as a dict (unknown keys go to ``attributes``)."""
    known = {k: v for k, v in obj.items() if k in _WIRE_FIELDS}
    extra = {k: v for k, v in obj.items() if k not in _WIRE_FIELDS} or None
    invalid: list[str] | None = None
    try:
        wire = msgspec.convert(known, _WireEvent, strict=False)
    except msgspec.ValidationError as exc:
        if not _at_numeric_field(exc):
            raise DecodeError(validation_reason(exc), str(exc)) from None
        invalid = []
        for name, kind in NUMERIC_FIELDS.items():
            if known.get(name) is not None:
                try:
                    msgspec.convert(known[name], kind, strict=False)
                except msgspec.ValidationError:
                    del known[name]
                    invalid.append(name)
        try:
            wire = msgspec.convert(known, _WireEvent, strict=False)
        except msgspec.ValidationError as again:
            raise DecodeError(validation_reason(again), str(again)) from None
    return from_wire(wire, extra, invalid=invalid)


def _at_numeric_field(exc: msgspec.ValidationError) -> bool:
    """Whether msgspec's complaint is about one of the optional numbers."""
    found = _ERROR_PATH.search(str(exc))
    return found is not None and found.group(1) in NUMERIC_FIELDS


def _decode_field_by_field(raw: bytes) -> tuple[_WireEvent, dict[str, Any], list[str]]:
    """The slow path: unknown fields kept aside, bad optional numbers dropped, the rest strict."""
    try:
        fields = _fields_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise DecodeError(_json_reason(raw), str(exc)) from None
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid_utf8", str(exc)) from None
    except RecursionError:
        raise DecodeError("invalid_json", "nesting too deep") from None
    invalid: list[str] = []
    known: list[bytes] = []
    extra: dict[str, Any] = {}
    for key, value in fields.items():
        if key in NUMERIC_FIELDS:
            try:
                _field_decoders[key].decode(value)
            except msgspec.ValidationError:
                invalid.append(key)
                continue
        if key in _WIRE_FIELDS:
            known.append(_encoder.encode(key) + b":" + bytes(value))
        else:
            try:
                extra[key] = _any_decoder.decode(value)
            except RecursionError:
                raise DecodeError("invalid_json", "nesting too deep") from None
    try:
        wire = _wire_decoder.decode(b"{" + b",".join(known) + b"}")
    except msgspec.ValidationError as exc:
        raise DecodeError(validation_reason(exc), str(exc)) from None
    return wire, extra, invalid


def count_dropped(names: list[str]) -> None:
    """Count optional fields dropped from kept events (``agentwatch_ingest_fields_dropped_total``);
    the label is one of :data:`NUMERIC_FIELDS` or ``other`` (other names are agent-written keys)."""
    for name in names:
        metrics.FIELDS_DROPPED.labels(name if name in NUMERIC_FIELDS else "other").inc()


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


def from_wire(
    wire: _WireEvent,
    extra: dict[str, Any] | None = None,
    raw_len: int | None = None,
    *,
    invalid: list[str] | None = None,
    may_nest: bool = True,
) -> AuditEvent:
    """Apply the caps and conversions the type system cannot express.

    ``raw_len`` is the size of the message the event was decoded from: a message no
    larger than the smallest cap cannot exceed any cap, so the checks are skipped.
    ``invalid`` names optional numbers already dropped; ``may_nest`` False (the message
    has too few brackets to nest past :data:`MAX_NESTING`) skips the depth walk.
    """
    tool, target, args, attributes = wire.tool, wire.target, wire.args, wire.attributes
    if extra:
        attributes = {**attributes, **extra} if attributes else extra
    truncated: list[str] = []
    if may_nest:
        args = _cap_nesting(args, "args", truncated)
        attributes = _cap_nesting(attributes, "attributes", truncated)
    if raw_len is None or raw_len > MAX_ID_CHARS:
        tool = _cap_text(tool, MAX_ID_CHARS, "tool", truncated)
        target = _cap_text(target, MAX_TEXT_CHARS, "target", truncated)
        if raw_len is None or raw_len > MAX_ARGS_BYTES:
            args = _cap_object(args, MAX_ARGS_BYTES, "args", truncated)
            attributes = _cap_object(attributes, MAX_ATTRIBUTES_BYTES, "attributes", truncated)
    if invalid:
        count_dropped(invalid)
    if truncated or invalid:
        attributes = dict(attributes or {})
        _merge_names(attributes, TRUNCATED_KEY, truncated)
        _merge_names(attributes, INVALID_KEY, invalid or [])
    return AuditEvent(
        event_id=wire.event_id,
        ts_ms=to_epoch_ms(wire.ts),
        session_id=wire.session_id,
        agent_id=shared_id(wire.agent_id),
        kind=wire.kind,
        principal=shared_id(wire.principal),
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


#: Agent ids and principals seen lately → one copy shared by the events that carry them (live sessions
#: keep their recent events, and these repeat across events and sessions); cleared when full.
_SHARED_IDS: dict[str, str] = {}
MAX_SHARED_IDS: Final = 8192


@overload
def shared_id(value: str) -> str: ...
@overload
def shared_id(value: None) -> None: ...
def shared_id(value: str | None) -> str | None:
    """``value``, or an equal string already kept for an earlier event (ids are capped at MAX_ID_CHARS)."""
    if value is None:
        return None
    kept = _SHARED_IDS.get(value)
    if kept is None:
        if len(_SHARED_IDS) >= MAX_SHARED_IDS:
            _SHARED_IDS.clear()
        kept = _SHARED_IDS[value] = value
    return kept


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


def _merge_names(attributes: dict[str, Any], key: str, names: list[str]) -> None:
    """Add ``names`` to the list under ``attributes[key]`` (a decoder may have started it)."""
    if not names:
        return
    earlier = attributes.get(key)
    if isinstance(earlier, list):
        names = [*earlier, *(name for name in names if name not in earlier)]
    attributes[key] = names


def _cap_nesting(value: dict[str, Any] | None, name: str, truncated: list[str]) -> dict[str, Any] | None:
    """``value`` with every container deeper than :data:`MAX_NESTING` replaced by :data:`NESTED_MARK`."""
    if not value:
        return value
    capped = _nest(value, 1)
    if capped is value:
        return value
    truncated.append(name)
    return capped  # type: ignore[return-value]


def _nest(value: dict[str, Any] | list[Any], depth: int) -> Any:
    """The same object when nothing is cut (no copy on the common path); recursion stops at the cap."""
    if depth > MAX_NESTING:
        return NESTED_MARK
    changed: dict[Any, Any] = {}
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, dict | list):
            capped = _nest(item, depth + 1)
            if capped is not item:
                changed[key] = capped
    if not changed:
        return value
    if isinstance(value, dict):
        return {**value, **changed}
    return [changed.get(i, item) for i, item in enumerate(value)]


def _cap_text(value: str | None, cap: int, name: str, truncated: list[str]) -> str | None:
    if value is None or len(value) <= cap:
        return value
    truncated.append(name)
    return value[:cap] + TRUNCATION_MARK


def _cap_object(value: dict[str, Any] | None, cap: int, name: str, truncated: list[str]) -> dict[str, Any] | None:
    """Keep an object under ``cap`` encoded bytes; past it, keep a truncated text copy."""
    if not value:
        return value
    encoded = _encoder.encode(value)
    if len(encoded) <= cap:
        return value
    truncated.append(name)
    head = encoded[:cap].decode("utf-8", errors="ignore")
    return {"agentwatch.truncated_json": head + TRUNCATION_MARK}

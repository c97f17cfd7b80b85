"""OTLP/JSON logs → audit events: Claude Code's OpenTelemetry events, as the Collector ships them.

One Kafka message is what the OpenTelemetry Collector's Kafka exporter writes with
``encoding: otlp_json``: a whole ``ExportLogsServiceRequest``
(``{"resourceLogs": [{"resource": …, "scopeLogs": [{"scope": …, "logRecords": […]}]}]}``).
Each log record Claude Code emits (``CLAUDE_CODE_ENABLE_TELEMETRY=1``, ``OTEL_LOGS_EXPORTER=otlp``)
becomes one native event; one bad record becomes one :class:`~agentwatch.errors.DecodeError` and
never costs its neighbours.

Event mapping (the name comes from the ``event.name`` attribute, else the record's
``eventName``, else a ``claude_code.*`` body; the ``claude_code.`` prefix is dropped):

=================  ============  ==========================================================
Claude Code event  ``kind``      fields
=================  ============  ==========================================================
``user_prompt``    prompt        ``prompt`` (only with ``OTEL_LOG_USER_PROMPTS=1``) and
                                 ``prompt_length`` stay in attributes
``tool_result``    tool_result   ``tool_name``→tool; ``success``→outcome ok/error;
                                 ``duration_ms``; ``tool_result_size_bytes``→bytes_in;
                                 ``tool_input_size_bytes``→bytes_out; ``tool_input`` (JSON
                                 text, ``OTEL_LOG_TOOL_DETAILS=1``) else ``tool_parameters``
                                 (JSON text; Bash ``full_command``→``command``)→args;
                                 target from args (:mod:`agentwatch.formats.claude_code`)
``api_request``    model_call    ``model``→target; outcome ok; ``cost_usd``; ``duration_ms``;
                                 ``input_tokens``→tokens_in; ``output_tokens``→tokens_out
``api_error``      model_call    ``model``→target; outcome error; ``duration_ms``
``tool_decision``  permission    ``tool_name``→tool; ``decision`` accept/reject→outcome
                                 ok/denied (``decision``, ``source`` also kept)
anything else      its name      ``tool_name``→tool when present
=================  ============  ==========================================================

Every record: ``session.id``→session_id (required); principal = ``user.email``, else
``user.account_uuid``, else ``user.id``; ts = ``event.timestamp`` (RFC 3339), else
``timeUnixNano``, else ``observedTimeUnixNano``, else the broker time
(``attributes["agentwatch.ts_source"]`` says which fallback was used). All other record
attributes are kept flat in ``attributes`` (``key: value``; ``intValue`` strings become ints,
numeric strings Claude Code sends for token counts become ints); resource attributes are kept
as ``resource.<key>``. A JSON text that does not parse (``tool_parameters``, ``tool_input``)
stays as text. Long strings are cut to the caps in :mod:`agentwatch.events.audit_event` and listed in
``attributes["agentwatch.truncated"]``.

``agent_id`` — the stable identity detectors learn normal behaviour for: the resource
attribute ``agentwatch.agent_id`` if an operator set one (``OTEL_RESOURCE_ATTRIBUTES``),
else ``<service.name>:<who>`` where ``service.name`` defaults to ``claude-code`` and ``who``
is ``user.account_uuid``, else ``user.email``, else ``user.id`` (Claude Code's anonymous
per-installation id), else the resource ``host.name``; with none of them, ``service.name``.

``event_id`` — deterministic, so a re-delivered record gets the same id:
``cc-otel-`` + the first 40 hex digits of SHA-256 over ``session.id``, the event name,
``event.timestamp`` and ``event.sequence`` when Claude Code sent all three, else over the
record's canonical (key-sorted) attributes, body and timestamps. The record's position in
the batch is never part of it.

>>> raw = (b'{"resourceLogs": [{"resource": {"attributes": [{"key": "service.name",'
...        b' "value": {"stringValue": "claude-code"}}]}, "scopeLogs": [{"logRecords": [{'
...        b'"body": {"stringValue": "claude_code.tool_decision"}, "attributes": ['
...        b'{"key": "event.name", "value": {"stringValue": "tool_decision"}},'
...        b'{"key": "event.timestamp", "value": {"stringValue": "2026-01-01T00:00:00.000Z"}},'
...        b'{"key": "event.sequence", "value": {"intValue": "3"}},'
...        b'{"key": "session.id", "value": {"stringValue": "s1"}},'
...        b'{"key": "user.id", "value": {"stringValue": "u1"}},'
...        b'{"key": "tool_name", "value": {"stringValue": "Bash"}},'
...        b'{"key": "decision", "value": {"stringValue": "reject"}},'
...        b'{"key": "source", "value": {"stringValue": "user_reject"}}]}]}]}]}')
>>> ev = decode_otlp_json(raw, 0).events[0]
>>> ev.kind, ev.tool, ev.outcome, ev.agent_id, ev.principal, ev.ts_ms
('permission', 'Bash', 'denied', 'claude-code:u1', 'u1', 1767225600000)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable
from typing import Any, Final

import msgspec

from agentwatch.errors import DecodeError
from agentwatch.events.audit_event import (
    MAX_MESSAGE_BYTES,
    AuditEvent,
    count_dropped,
    from_mapping,
    to_epoch_ms,
    validation_reason,
)
from agentwatch.formats import DecodeResult
from agentwatch.formats.claude_code import (
    DEFAULT_AGENT_ID,
    cap_args,
    clip_attributes,
    clip_fields,
    json_error_reason,
    normalise_otel_parameters,
    parse_bool,
    tool_target,
)

#: Cap on one whole message (batch). ``MAX_MESSAGE_BYTES`` applies to each log record.
MAX_BATCH_BYTES: Final = 16 * 1024 * 1024
#: Errors of one message kept with their own detail; further ones share one per reason.
MAX_DETAILED_ERRORS: Final = 64

_EVENT_PREFIX: Final = "claude_code."
_MAX_VALUE_DEPTH: Final = 16
_NESTED_MARK: Final = "…[nested]"
_AGENT_OVERRIDE: Final = "agentwatch.agent_id"
_NO_TOOL_DETAILS: Final = "agentwatch.no_tool_details"  # agentwatch.formats.tool_details.FLAG
_KINDS: Final = {
    "user_prompt": "prompt",
    "tool_result": "tool_result",
    "api_request": "model_call",
    "api_error": "model_call",
    "tool_decision": "permission",
}
_DECISIONS: Final = {"accept": "ok", "reject": "denied"}


# --- The OTLP/JSON envelope (proto3 JSON field names; unknown fields are ignored). ---


class _AnyValue(msgspec.Struct, gc=False):
    stringValue: str | None = None
    boolValue: bool | None = None
    intValue: int | str | None = None
    doubleValue: float | str | None = None
    arrayValue: _ArrayValue | None = None
    kvlistValue: _KeyValueList | None = None
    bytesValue: str | None = None


class _ArrayValue(msgspec.Struct, gc=False):
    values: list[_AnyValue] = []


class _KeyValue(msgspec.Struct, gc=False):
    key: str
    value: _AnyValue | None = None


class _KeyValueList(msgspec.Struct, gc=False):
    values: list[_KeyValue] = []


class _Resource(msgspec.Struct, gc=False):
    attributes: list[_KeyValue] = []


class _LogRecord(msgspec.Struct, gc=False):
    timeUnixNano: int | str | None = None
    observedTimeUnixNano: int | str | None = None
    body: _AnyValue | None = None
    attributes: list[_KeyValue] = []
    eventName: str | None = None
    traceId: str | None = None
    spanId: str | None = None


class _PlainRecord(msgspec.Struct, gc=False):
    """A log record whose attributes and body another encoding already made plain values
    (:mod:`agentwatch.formats.otlp_proto`): the mapping below takes either."""

    attributes: dict[str, Any]
    body: Any = None
    timeUnixNano: int | None = None
    observedTimeUnixNano: int | None = None
    eventName: str | None = None
    traceId: str | None = None
    spanId: str | None = None


class _ScopeLogs(msgspec.Struct, gc=False):
    logRecords: list[_LogRecord] = []


class _ResourceLogs(msgspec.Struct, gc=False):
    resource: _Resource | None = None
    scopeLogs: list[_ScopeLogs] = []


class _Batch(msgspec.Struct, gc=False):
    resourceLogs: list[_ResourceLogs] = []
    resourceSpans: msgspec.Raw = msgspec.Raw()
    resourceMetrics: msgspec.Raw = msgspec.Raw()


# The same envelope with each part left raw, to pin a validation failure to one part.


class _IsolatedScopeLogs(msgspec.Struct, gc=False):
    logRecords: list[msgspec.Raw] = []


class _IsolatedResourceLogs(msgspec.Struct, gc=False):
    resource: _Resource | None = None
    scopeLogs: list[msgspec.Raw] = []


class _IsolatedBatch(msgspec.Struct, gc=False):
    resourceLogs: list[msgspec.Raw] = []
    resourceSpans: msgspec.Raw = msgspec.Raw()
    resourceMetrics: msgspec.Raw = msgspec.Raw()


_batch_decoder = msgspec.json.Decoder(_Batch)
_isolated_batch_decoder = msgspec.json.Decoder(_IsolatedBatch)
_isolated_resource_decoder = msgspec.json.Decoder(_IsolatedResourceLogs)
_isolated_scope_decoder = msgspec.json.Decoder(_IsolatedScopeLogs)
_record_decoder = msgspec.json.Decoder(_LogRecord)
_json_decoder = msgspec.json.Decoder()
_canonical = msgspec.json.Encoder(order="sorted")


class _Resolved:
    """What one resource contributes to each of its records."""

    __slots__ = ("attributes", "service", "override", "host", "session_id", "truncated", "invalid")

    def __init__(self, resource: _Resource | None) -> None:
        self.invalid: list[str] = []
        attrs = _flatten(resource.attributes, self.invalid, "resource.") if resource is not None else {}
        service = attrs.get("service.name")
        self.service: str = service if isinstance(service, str) and service else DEFAULT_AGENT_ID
        override = attrs.pop(_AGENT_OVERRIDE, None)
        self.override: str | None = override if isinstance(override, str) and override else None
        host = attrs.get("host.name")
        self.host: str | None = host if isinstance(host, str) and host else None
        # A Collector's `groupbyattrs` processor moves `session.id` here (deploy/otel-collector.yaml):
        # taken out, so the event is the same whichever side it came on.
        session_id = attrs.pop("session.id", None)
        self.session_id: str | None = session_id if isinstance(session_id, str) else None
        self.attributes: dict[str, Any] = {f"resource.{k}": v for k, v in attrs.items()}
        self.truncated: list[str] = []
        clip_attributes(self.attributes, self.truncated)


class _Batcher:
    """Accumulates one message's events, errors and record count.

    Past the first :data:`MAX_DETAILED_ERRORS` errors, one shared error per reason stands
    for each further bad record: a megabyte of tiny bad records costs a list of pointers,
    not a detail string each (the dead letter details only the first few anyway).
    """

    __slots__ = ("events", "errors", "records", "received_ms", "_shared")

    def __init__(self, received_ms: int) -> None:
        self.events: list[AuditEvent] = []
        self.errors: list[DecodeError] = []
        self.records = 0
        self.received_ms = received_ms
        self._shared: dict[str, DecodeError] = {}

    def record(self, rec: _LogRecord | _PlainRecord, resolved: _Resolved, where: str) -> None:
        self.records += 1
        try:
            self.events.append(_record_event(rec, resolved, self.received_ms))
        except DecodeError as exc:
            self.reject(exc, where)

    def reject(self, exc: DecodeError, where: str) -> None:
        if len(self.errors) < MAX_DETAILED_ERRORS:
            self.errors.append(_located(exc, where))
            return
        shared = self._shared.get(exc.reason)
        if shared is None:
            shared = self._shared[exc.reason] = DecodeError(exc.reason, "a further record rejected for this reason")
        self.errors.append(shared)

    def result(self, other_signal: bool = False) -> DecodeResult:
        """The message's result; ``other_signal``: it carried traces or metrics instead."""
        if self.records == 0 and not self.errors:
            if other_signal:
                return _fail("invalid_field", "a traces or metrics request, not `resourceLogs`")
            return _fail("empty_batch", "the request holds no log records")
        return DecodeResult(self.events, self.errors)


def decode_otlp_json(raw: bytes, received_ms: int) -> DecodeResult:
    """Decode one OTLP/JSON logs request into native events and per-record errors.

    Parameters
    ----------
    raw
        The Kafka message value: one ``ExportLogsServiceRequest`` as proto3 JSON.
    received_ms
        Broker time, used only for a record with no timestamp at all.

    Returns
    -------
    DecodeResult
        One event per good record, one error per bad record (or one for the message when
        the message itself is unusable, oversized or holds no records).
    """
    size = len(raw)
    if size > MAX_BATCH_BYTES:
        return _fail("oversized", f"message is {size} bytes (cap {MAX_BATCH_BYTES})")
    if size <= MAX_MESSAGE_BYTES:
        # Fast path: one typed decode. A small message cannot hold an oversized record.
        try:
            batch = _batch_decoder.decode(raw)
        except (msgspec.ValidationError, RecursionError):
            pass  # Some part has the wrong shape: decode part by part below to isolate it.
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            return _fail(json_error_reason(raw), str(exc))
        else:
            return _decode_typed(batch, received_ms)
    return _decode_isolated(raw, received_ms)


def _decode_typed(batch: _Batch, received_ms: int) -> DecodeResult:
    out = _Batcher(received_ms)
    for ri, resource_logs in enumerate(batch.resourceLogs):
        try:
            resolved = _Resolved(resource_logs.resource)
        except DecodeError as exc:
            out.reject(exc, f"resourceLogs[{ri}].resource")
            continue
        for si, scope_logs in enumerate(resource_logs.scopeLogs):
            for li, rec in enumerate(scope_logs.logRecords):
                out.record(rec, resolved, f"resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]")
    return out.result(bool(batch.resourceSpans or batch.resourceMetrics))


def _decode_isolated(raw: bytes, received_ms: int) -> DecodeResult:
    try:
        batch = _isolated_batch_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        return _fail("invalid_field", f"not an OTLP logs request: {exc}")
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        return _fail(json_error_reason(raw), str(exc) or type(exc).__name__)
    out = _Batcher(received_ms)
    for ri, resource_raw in enumerate(batch.resourceLogs):
        where = f"resourceLogs[{ri}]"
        try:
            resource_logs = _isolated_resource_decoder.decode(resource_raw)
            resolved = _Resolved(resource_logs.resource)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            out.reject(DecodeError(_reason(exc), str(exc) or type(exc).__name__), where)
            continue
        except DecodeError as exc:
            out.reject(exc, f"{where}.resource")
            continue
        for si, scope_raw in enumerate(resource_logs.scopeLogs):
            try:
                scope_logs = _isolated_scope_decoder.decode(scope_raw)
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
                out.reject(DecodeError(_reason(exc), str(exc) or type(exc).__name__), f"{where}.scopeLogs[{si}]")
                continue
            for li, record_raw in enumerate(scope_logs.logRecords):
                here = f"{where}.scopeLogs[{si}].logRecords[{li}]"
                if len(record_raw) > MAX_MESSAGE_BYTES:
                    out.records += 1
                    detail = f"record is {len(record_raw)} bytes (cap {MAX_MESSAGE_BYTES})"
                    out.reject(DecodeError("oversized", detail), here)
                    continue
                try:
                    rec = _record_decoder.decode(record_raw)
                except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
                    out.records += 1
                    out.reject(DecodeError(_reason(exc), str(exc) or type(exc).__name__), here)
                    continue
                out.record(rec, resolved, here)
    return out.result(bool(batch.resourceSpans or batch.resourceMetrics))


def _reason(exc: Exception) -> str:
    if isinstance(exc, msgspec.ValidationError):
        return validation_reason(exc)
    if isinstance(exc, UnicodeDecodeError):
        return "invalid_utf8"
    return "invalid_json"


def _fail(reason: str, detail: str) -> DecodeResult:
    return DecodeResult([], [DecodeError(reason, detail)])


def _located(exc: DecodeError, where: str) -> DecodeError:
    return DecodeError(exc.reason, f"{where}: {exc.detail}")


# --- One log record → one native event. ---


def _record_event(rec: _LogRecord | _PlainRecord, resolved: _Resolved, received_ms: int) -> AuditEvent:
    invalid = list(resolved.invalid)
    body: Any
    if isinstance(rec, _PlainRecord):
        attrs, body = rec.attributes, rec.body
    else:
        attrs = _flatten(rec.attributes, invalid, "attributes.")
        try:
            body = _to_python(rec.body, 0)
        except ValueError:  # a malformed number: the body is dropped and named, the record kept
            body = None
            invalid.append("body")
    name = _event_name(attrs.get("event.name"), rec.eventName, body)
    session_id = attrs.get("session.id", resolved.session_id)
    event_id = _event_id(name, session_id, attrs, body, rec)
    ts_ms, ts_source = _timestamp(attrs.get("event.timestamp"), rec, received_ms)
    if session_id is None or session_id == "":
        raise DecodeError("missing_field", "no `session.id` attribute (OTEL_METRICS_INCLUDE_SESSION_ID disabled?)")
    if not isinstance(session_id, str):
        raise DecodeError("invalid_field", "`session.id` is not a string")
    attrs.pop("session.id", None)
    attrs.pop("event.name", None)
    if ts_source == "event.timestamp":
        attrs.pop("event.timestamp", None)
    elif ts_source != "timeUnixNano":
        attrs["agentwatch.ts_source"] = ts_source
    native: dict[str, Any] = {
        "event_id": event_id,
        "ts": ts_ms,
        "session_id": session_id,
        "agent_id": _agent_id(attrs, resolved),
        "kind": _KINDS.get(name, name),
        "principal": _first_str(attrs, ("user.email", "user.account_uuid", "user.id")),
    }
    truncated: list[str] = []
    _MAPPERS.get(name, _map_other)(attrs, native, truncated)
    if body is not None and body != _EVENT_PREFIX + name and body != name:
        attrs["body"] = body
    if rec.traceId:
        attrs["trace_id"] = rec.traceId
    if rec.spanId:
        attrs["span_id"] = rec.spanId
    clip_fields(native, truncated)
    clip_attributes(attrs, truncated)
    attrs.update(resolved.attributes)
    truncated.extend(resolved.truncated)
    if truncated:
        attrs["agentwatch.truncated"] = truncated
    if invalid:
        count_dropped(invalid)
        attrs["agentwatch.invalid"] = invalid
    native["attributes"] = attrs or None
    return from_mapping(native)


def _event_name(attribute: Any, field: str | None, body: Any) -> str:
    for candidate in (attribute, field):
        if isinstance(candidate, str) and candidate:
            return candidate.removeprefix(_EVENT_PREFIX) or candidate
    if isinstance(body, str) and body.startswith(_EVENT_PREFIX) and len(body) > len(_EVENT_PREFIX):
        return body.removeprefix(_EVENT_PREFIX)
    raise DecodeError("missing_field", "no event name (`event.name`, `eventName` or a `claude_code.*` body)")


def _event_id(name: str, session_id: Any, attrs: dict[str, Any], body: Any, rec: _LogRecord | _PlainRecord) -> str:
    """Over the session (a record's, or its resource's where a Collector moved it there)."""
    stamp = attrs.get("event.timestamp")
    sequence = attrs.get("event.sequence")
    if (
        isinstance(session_id, str)
        and isinstance(stamp, str)
        and isinstance(sequence, int | str)
        and not isinstance(sequence, bool)
    ):
        basis = "\x1f".join((session_id, name, stamp, str(sequence))).encode()
    else:
        basis = _canonical.encode((attrs, body, rec.timeUnixNano, rec.observedTimeUnixNano))
    return "cc-otel-" + hashlib.sha256(basis).hexdigest()[:40]


def _timestamp(stamp: Any, rec: _LogRecord | _PlainRecord, received_ms: int) -> tuple[int, str]:
    """Epoch ms and where it came from; an unparseable ``event.timestamp`` falls back."""
    if isinstance(stamp, str):
        try:
            parsed = dt.datetime.fromisoformat(stamp)
        except ValueError:
            pass
        else:
            return to_epoch_ms(parsed), "event.timestamp"
    clocks = ((rec.timeUnixNano, "timeUnixNano"), (rec.observedTimeUnixNano, "observedTimeUnixNano"))
    for value, source in clocks:
        nanos = _nanos(value, source)
        if nanos:
            return to_epoch_ms(nanos // 1_000_000), source
    return received_ms, "received"


def _nanos(value: int | str | None, name: str) -> int | None:
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value)
    except ValueError:
        raise DecodeError("invalid_field", f"`{name}` {value[:40]!r} is not an integer") from None


def _agent_id(attrs: dict[str, Any], resolved: _Resolved) -> str:
    if resolved.override:
        return resolved.override
    who = _first_str(attrs, ("user.account_uuid", "user.email", "user.id")) or resolved.host
    return f"{resolved.service}:{who}" if who else resolved.service


def _first_str(attrs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, str) and value:
            return value
    return None


# --- Per-event field mapping; each moves what it maps out of ``attrs``. ---


def _map_tool_result(attrs: dict[str, Any], native: dict[str, Any], truncated: list[str]) -> None:
    tool = _pop_str(attrs, "tool_name")
    native["tool"] = tool
    success = parse_bool(attrs.get("success"))
    if success is not None:
        del attrs["success"]
        native["outcome"] = "ok" if success else "error"
    elif attrs.get("error"):
        native["outcome"] = "error"
    native["duration_ms"] = _pop_number(attrs, "duration_ms", float)
    native["bytes_in"] = _pop_number(attrs, "tool_result_size_bytes", int)
    native["bytes_out"] = _pop_number(attrs, "tool_input_size_bytes", int)
    params = _json_object(attrs.get("tool_parameters"))
    given = _json_object(attrs.get("tool_input"))
    args: dict[str, Any] | None = None
    if given is not None:
        del attrs["tool_input"]
        args = given
        if params is not None:
            attrs["tool_parameters"] = params
    elif params is not None:
        del attrs["tool_parameters"]
        args = normalise_otel_parameters(tool, params)
    if args:
        native["target"] = tool_target(tool, args)
        native["args"], cut = cap_args(args)
        truncated.extend(cut)
    if given is None and native.get("target") is None:
        attrs[_NO_TOOL_DETAILS] = True  # OTEL_LOG_TOOL_DETAILS unset: see agentwatch.formats.tool_details


def _map_tool_decision(attrs: dict[str, Any], native: dict[str, Any], truncated: list[str]) -> None:
    native["tool"] = _pop_str(attrs, "tool_name")
    decision = attrs.get("decision")
    if isinstance(decision, str):
        native["outcome"] = _DECISIONS.get(decision.lower())


def _map_api_request(attrs: dict[str, Any], native: dict[str, Any], truncated: list[str]) -> None:
    native["target"] = _pop_str(attrs, "model")
    native["outcome"] = "ok"
    native["cost_usd"] = _pop_number(attrs, "cost_usd", float)
    native["duration_ms"] = _pop_number(attrs, "duration_ms", float)
    native["tokens_in"] = _pop_number(attrs, "input_tokens", int)
    native["tokens_out"] = _pop_number(attrs, "output_tokens", int)
    _ints_in_place(attrs, ("cache_read_tokens", "cache_creation_tokens"))


def _map_api_error(attrs: dict[str, Any], native: dict[str, Any], truncated: list[str]) -> None:
    native["target"] = _pop_str(attrs, "model")
    native["outcome"] = "error"
    native["duration_ms"] = _pop_number(attrs, "duration_ms", float)
    _ints_in_place(attrs, ("status_code", "attempt"))


def _map_user_prompt(attrs: dict[str, Any], native: dict[str, Any], truncated: list[str]) -> None:
    _ints_in_place(attrs, ("prompt_length",))


def _map_other(attrs: dict[str, Any], native: dict[str, Any], truncated: list[str]) -> None:
    native["tool"] = _pop_str(attrs, "tool_name")


_MAPPERS: Final[dict[str, Callable[[dict[str, Any], dict[str, Any], list[str]], None]]] = {
    "tool_result": _map_tool_result,
    "tool_decision": _map_tool_decision,
    "api_request": _map_api_request,
    "api_error": _map_api_error,
    "user_prompt": _map_user_prompt,
}


def _pop_str(attrs: dict[str, Any], key: str) -> str | None:
    value = attrs.get(key)
    if isinstance(value, str) and value:
        del attrs[key]
        return value
    return None


def _pop_number(attrs: dict[str, Any], key: str, kind: type[int] | type[float]) -> Any:
    """``attrs[key]`` as a number, moved out; left in place if it is not one.

    The range (0 .. 2^53) is :func:`agentwatch.events.audit_event.from_mapping`'s to check: a number out of
    it is dropped there and named in ``attributes["agentwatch.invalid"]``.
    """
    number = _number(attrs.get(key), kind)
    if number is not None:
        del attrs[key]
    return number


def _ints_in_place(attrs: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        number = _number(attrs.get(key), int)
        if number is not None:
            attrs[key] = number


def _number(value: Any, kind: type[int] | type[float]) -> int | float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value  # any size: from_mapping drops one out of range (10^400 overflows a float)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number) or number < 0:
        return None
    if kind is int:
        return int(number) if number.is_integer() else None
    return number


def _json_object(value: Any) -> dict[str, Any] | None:
    """A JSON-object text (or an already structured kvlist) as a dict; None if it is not one."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.startswith("{"):
        return None
    try:
        parsed = _json_decoder.decode(value)
    except (msgspec.DecodeError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


# --- OTLP AnyValue → Python. ---


def _flatten(pairs: list[_KeyValue], invalid: list[str], prefix: str) -> dict[str, Any]:
    """Attributes as a dict; one holding a malformed number is dropped and named in ``invalid``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        try:
            out[pair.key] = _to_python(pair.value, 0)
        except ValueError:
            out.pop(pair.key, None)
            invalid.append(prefix + pair.key[:100])
    return out


def _to_python(value: _AnyValue | None, depth: int) -> Any:
    """One AnyValue as a plain value; ``intValue``/``doubleValue`` text is parsed (ValueError if bad)."""
    if value is None:
        return None
    if value.stringValue is not None:
        return value.stringValue
    if value.boolValue is not None:
        return value.boolValue
    if value.intValue is not None:
        return int(value.intValue) if isinstance(value.intValue, str) else value.intValue
    if value.doubleValue is not None:
        return float(value.doubleValue)
    if value.arrayValue is not None:
        if depth >= _MAX_VALUE_DEPTH:
            return _NESTED_MARK
        return [_to_python(item, depth + 1) for item in value.arrayValue.values]
    if value.kvlistValue is not None:
        if depth >= _MAX_VALUE_DEPTH:
            return _NESTED_MARK
        return {pair.key: _to_python(pair.value, depth + 1) for pair in value.kvlistValue.values}
    return value.bytesValue
